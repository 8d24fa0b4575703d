"""Comparison studies: grids of runs with repeats, executed in parallel, stored durably, reported."""
