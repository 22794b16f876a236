"""Datasets, downloads, transforms and the DataModule."""
