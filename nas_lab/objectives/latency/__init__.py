"""Latency look-up tables measured on the machine at hand (AutoViT, seed 001): ``objective=latency.lut``.

``contract`` says what a space offers (its models as sequences of keyed blocks),
``table`` stores a table and looks archs up (numpy, no torch), ``measure`` builds
and validates one with torch (``nas-lab lut build`` / ``nas-lab lut validate``),
``objective`` is the ``latency`` objective family.
"""
