"""Which way a stored metric improves, readable without torch (the leaderboard and the reproduce reports read it).

Imputation errors (NRMSE, PFC, MSE) are lower-is-better; the post-imputation prediction scores of
:mod:`imputebench.downstream` (VAEAC, Ivanov et al. 2019, Table 2: R² and accuracy) and the label accuracy of
:mod:`imputebench.label_accuracy` (MVAE, Wu & Goodman 2018, Tables 8-9) are higher-is-better.
"""

from __future__ import annotations

#: the evaluation a trial asks for by this name (:attr:`imputebench.runner.trials.Trial.evaluation`) to be scored
#: by post-imputation prediction as well
DOWNSTREAM = "downstream"

#: the stored downstream metric of each kind of prediction target
DOWNSTREAM_METRICS = {"regression": "downstream_r2", "classification": "downstream_accuracy"}

#: the evaluation by which a trial asks for its test labels to be imputed from the images alone (MVAE Tables 8-9),
#: and the metric it stores (:mod:`imputebench.label_accuracy`)
LABEL = "label"
LABEL_ACCURACY = "label_accuracy"

#: each evaluation a trial may ask for beyond imputation, with the metrics it stores
EVALUATIONS: dict[str, tuple[str, ...]] = {DOWNSTREAM: tuple(DOWNSTREAM_METRICS.values()), LABEL: (LABEL_ACCURACY,)}

#: metrics where a larger value is better; every other stored metric is an error
HIGHER_IS_BETTER = frozenset({*DOWNSTREAM_METRICS.values(), LABEL_ACCURACY})


def sign(metric: str) -> int:
    """+1 for an error (lower is better), -1 for a score: ``sign(metric) * value`` is always lower-is-better."""
    return -1 if metric in HIGHER_IS_BETTER else 1


def evaluation_of(metric: str) -> str | None:
    """The evaluation that stores ``metric`` (None for the imputation metrics every trial stores)."""
    return next((name for name, metrics in EVALUATIONS.items() if metric in metrics), None)
