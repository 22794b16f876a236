"""The verdict on one cell of a published table: ``reproduced``, ``not reproduced`` or ``not comparable``.

The rule, stated in ``results/reproduce/README.md`` before any preset was run (and tested here):

* **not comparable** when the paper's cell has no counterpart here (a dataset not available offline, a model we do
  not have, data that differ: the preset says which), or fewer than two of our seeds finished (no spread).
* Otherwise, with the paper's value ``p`` printed with ``k`` decimals, its spread ``e`` (a standard deviation over
  ``N_p`` runs; where it prints Δ, its stated bound on Δ; where it prints no spread, 0 over one run), and ours,
  mean ``m`` and standard deviation ``s`` (ddof 1) over ``n`` seeds:

  1. ``e' = max(e, s)``: a published spread smaller than our own seed-to-seed spread under the same protocol is
     taken to be ours (an independent rerun cannot be expected to scatter less than reruns here do; VSAE's
     "± Δ, Δ ≤ 0.001" would otherwise turn ordinary seed noise into failures);
  2. ``SE = sqrt(e'^2 / N_p + s^2 / n)``, the standard error of the difference of the two means;
  3. ``tolerance = max(2 SE, 0.5 * 10^-k)``: about a 95% band for the difference, and never finer than the
     printed precision of the paper's value;
  4. **reproduced** when ``|m - p| <= tolerance``, else **not reproduced**, with the direction (ours better or
     worse, by the table's sense of better) and the difference in tolerances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from imputebench.reproduce.preset import PaperValue

REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE = "reproduced", "not reproduced", "not comparable"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE)


@dataclass(frozen=True)
class Ours:
    """Our cell: mean and standard deviation (ddof 1) over ``n`` finished seeds."""

    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class Verdict:
    label: str
    reason: str
    difference: float | None = None  # ours - paper
    tolerance: float | None = None


def not_comparable(reason: str) -> Verdict:
    return Verdict(NOT_COMPARABLE, reason)


def judge(paper: PaperValue, ours: Ours | None, paper_runs: int, higher_is_better: bool) -> Verdict:
    """The verdict on one cell by the module's rule."""
    if ours is None or ours.n < 2 or not math.isfinite(ours.mean):
        finished = 0 if ours is None else ours.n
        return not_comparable(f"{finished} of our seeds finished: a verdict needs at least 2")
    spread = max(paper.error, ours.std)
    raised = paper.error < ours.std
    se = math.sqrt(spread**2 / paper_runs + ours.std**2 / ours.n)
    tolerance = max(2 * se, paper.rounding)
    difference = ours.mean - paper.value
    basis = (f"tolerance {tolerance:.3g} = max(2 SE, printed precision {paper.rounding:g}), SE from the paper's spread "
             f"{paper.error:g}" + (f" raised to our seed std {ours.std:.3g}" if raised else "")
             + f" over {paper_runs} runs and ours {ours.std:.3g} over {ours.n}")
    if abs(difference) <= tolerance:
        return Verdict(REPRODUCED, f"|difference| {abs(difference):.3g} within {basis}", difference, tolerance)
    better = (difference > 0) == higher_is_better
    return Verdict(NOT_REPRODUCED, f"ours {'better' if better else 'worse'} by {abs(difference):.3g} "
                                   f"({abs(difference) / tolerance:.1f} x the tolerance; {basis})", difference, tolerance)
