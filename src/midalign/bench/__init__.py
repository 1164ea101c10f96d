"""Synthetic benchmarks that run on a CPU."""
