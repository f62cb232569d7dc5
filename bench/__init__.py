"""Benchmarks: run each as `python -m bench.NAME`; they print figures and ratios."""
