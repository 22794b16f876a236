"""Sweeps: trial expansion, execution, the results store and provenance."""
