"""Exceptions shared by several layers of the package."""

from __future__ import annotations


class DivergedError(RuntimeError):
    """Training produced a non-finite loss; the runner stores the trial as ``diverged``."""
