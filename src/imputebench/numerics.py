"""The numerics version: part of every trial's identity (:mod:`imputebench.runner.trials`).

A commit that deliberately changes what a model, a metric, a mask or a split computes for the
same configuration, data and seed bumps :data:`NUMERICS_VERSION` and says why below. Trials
stored under another version are then other trials: a rerun computes them afresh instead of
reusing rows the code would no longer produce, and the leaderboard never averages the two.
A change that keeps every number (speed, logging, refactoring) leaves it alone.

History:

1. Trials identified by their full identity (this version's start, 2026-12-07).
"""

NUMERICS_VERSION = 1
