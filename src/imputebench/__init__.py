"""imputebench: a fair, reproducible benchmark for missing-data imputation."""

__version__ = "0.1.0"
