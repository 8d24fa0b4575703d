"""Tabular benchmarks: columnar tables with one row per arch index, read by vectorised lookups.

``table.Table`` is the in-memory form and the .npz/.csv file format;
``hyvitas_sim`` embeds the simulated HyViTas-Bench table (``hyvitas-sim``).
"""
