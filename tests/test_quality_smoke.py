"""Quality smoke: each registered deep model, on a short schedule, beats mean imputation (MisGAN cannot).

Each deep model trains its smoke schedule (``helpers.SMOKE_EPOCHS``, or ``SMOKE_SCHEDULES``) on a
1000-row correlated synthetic table (three numeric features driven by one factor, a categorical one
cut from it; MCAR 0.5, protocol vsae, seed 0) and must bring the test split's NRMSE and PFC below
``THRESHOLDS`` times the mean's (the mode's). A model that imputes the mean (or zeros: the mean of
standardised features) sits at 1 and fails; one that does not train, or ignores its inputs, lands at
or above 1 and fails.

The thresholds are measured, not guessed: ``benchmarks/results/quality_smoke_margins.md`` has each
model's ratio to the mean over seeds 0-4 (table, mask and initialisation drawn with the seed), and
each threshold is halfway between the worst seed and 1. A metric on which some seed did not beat the
mean is not checked; a model that beats it on neither is in ``NOT_SMOKED`` with the reason. The
full-schedule checks, on Yeast too, are ``benchmarks/quality.py``'s.
"""

from __future__ import annotations

import pytest

from helpers import fit_and_score, smoke_data, smoke_model
from imputebench.data.prepare import PreparedData
from imputebench.models.registry import is_classical, model_names

DEEP = [name for name in model_names() if not is_classical(name)]

#: model -> metric -> the ratio to mean imputation it must stay below (results/quality_smoke_margins.md)
THRESHOLDS: dict[str, dict[str, float]] = {
    "ae": {"nrmse": 0.93, "pfc": 0.92},
    "ae_logreg": {"nrmse": 0.97, "pfc": 0.97},  # benchmarks/results/quality_smoke_margins_latent_logreg.md
    "cvae_data": {"nrmse": 0.80, "pfc": 0.71},
    "cvae_mask": {"nrmse": 0.89, "pfc": 0.91},
    "gain": {"nrmse": 0.92, "pfc": 0.93},
    "gain_vaeac": {"nrmse": 0.96},  # PFC 1.05 x the mode's on seeds 1 and 2
    "hivae": {"nrmse": 0.88, "pfc": 0.85},
    "miwae": {"nrmse": 0.80, "pfc": 0.73},
    "mopoe": {"nrmse": 0.87, "pfc": 0.84},  # benchmarks/results/quality_smoke_margins_mopoe.md
    "mvae": {"nrmse": 0.82, "pfc": 0.87},
    # the supervised baselines learn the categorical feature only; numbers get their mean (benchmarks/results/
    # quality_smoke_margins_supervised.md)
    "supervised_logreg": {"pfc": 0.86},
    "supervised_nn": {"pfc": 0.78},
    "vae": {"nrmse": 0.89, "pfc": 0.86},
    "vae_logreg": {"nrmse": 0.91, "pfc": 0.95},  # benchmarks/results/quality_smoke_margins_latent_logreg.md
    "vaeac": {"nrmse": 0.96, "pfc": 0.95},
    "vsae": {"nrmse": 0.92, "pfc": 0.89},
    "vsae_zero_fill": {"nrmse": 0.84, "pfc": 0.77},  # benchmarks/results/quality_smoke_margins_vsae_zero_fill.md
}

#: deep models the smoke cannot check, and why
NOT_SMOKED = {
    "mrvae": "at the smoke's 30 epochs it does not beat the mean: seed 0 gives 1.004 x the mean's NRMSE and 1.067 x "
             "the mode's PFC (~93 CPU s a fit; `python benchmarks/quality_smoke_margins.py --models mrvae`); "
             "its subset selections and counts are resampled at every step and learn slowly (results/polymnist.md)",
    "misgan": "no schedule within the smoke's budget beats the mean on every seed: 300 epochs at ten times its "
              "authors' learning rates (~100 CPU s a fit) give 0.90-1.03 x the mean's NRMSE and 0.78-1.24 x the "
              "mode's PFC over seeds 0-4; at its authors' whole schedule it is below par on this table too "
              "(benchmarks/quality.py, synthetic)",
}


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return smoke_data(0)


def test_every_deep_model_is_smoked_or_excused():
    """A newly registered deep model needs its margins measured (benchmarks/quality_smoke_margins.py)."""
    assert not set(THRESHOLDS) & set(NOT_SMOKED)
    assert set(THRESHOLDS) | set(NOT_SMOKED) == set(DEEP)


@pytest.mark.parametrize("name", [name for name in DEEP if name in THRESHOLDS])
def test_beats_mean_imputation_on_a_short_schedule(name, data):
    got, mean = fit_and_score(smoke_model(name, data), data)
    ratios = {metric: got[metric] / mean[metric] for metric in THRESHOLDS[name]}
    assert all(ratios[m] < limit for m, limit in THRESHOLDS[name].items()), (ratios, THRESHOLDS[name])
