"""Objectives: map batches of archs to metrics (tabular lookups, zero-cost proxies, supernets, latency)."""
