"""Fakes at the process boundary: local servers started by fixtures and benchmarks."""
