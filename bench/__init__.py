"""Benchmarks: `python -m bench` prints one JSON line per benchmark."""
