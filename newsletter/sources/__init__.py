"""Feeds in: one module per source kind, each turning bytes into ``Paper`` values."""
