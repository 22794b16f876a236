"""``imputebench reproduce``: one published table per preset, run through the ordinary runner, a verdict per cell.

:mod:`~imputebench.reproduce.preset` reads a preset (``configs/reproduce/<name>.yaml``), :mod:`~imputebench.reproduce.verdict`
judges a cell by the rule of ``results/reproduce/README.md``, :mod:`~imputebench.reproduce.report` writes the
table's ``.md`` and ``.csv`` from the stored rows of the preset's trials.
"""
