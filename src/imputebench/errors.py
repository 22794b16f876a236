"""Exceptions shared by several layers, in a module that imports nothing.

The lowest layers (``masks``, ``data``) raise these and the highest (``models``, ``runner``,
``cli``) catch them, so they cannot live in any one of those layers without an upward import
(``data`` importing ``models.registry`` for this class once closed a 17-module cycle).
"""

from __future__ import annotations


class UnknownNameError(KeyError):
    """An unknown model, dataset, mechanism or protocol name; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


class DivergedError(RuntimeError):
    """Training produced a non-finite loss; the runner stores the trial as ``diverged``."""
