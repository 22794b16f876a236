"""Small synthetic datasets and shared steps of the tests; ``benchmarks/quality.py`` imports them too,
so that it trains and scores models exactly as the tests do."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imputebench.data.dataset import Dataset
from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.data.table import MaskedTable
from imputebench.evaluate import score
from imputebench.models.imputer import Imputer
from imputebench.models.registry import get_model
from imputebench.runner.presets import config_resolver
from imputebench.schema import Feature, FeatureSchema


def correlated_dataset(n: int = 400, seed: int = 0, name: str = "toy") -> Dataset:
    """Three correlated real features and one categorical feature driven by them."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 1))
    real = latent @ np.array([[1.0, -2.0, 0.5]]) + 0.3 * rng.normal(size=(n, 3)) + np.array([10.0, 0.0, -5.0])
    category = np.digitize(latent[:, 0], [-0.5, 0.5]).astype(float)
    schema = FeatureSchema((Feature("a"), Feature("b"), Feature("c"), Feature("k", "categorical", ("lo", "mid", "hi"))))
    return Dataset(name, np.column_stack([real, category]), schema)


#: the adversarial models, trained on their authors' whole schedules in the slow checks
ADVERSARIAL = ("gain", "gain_vaeac", "misgan")


class Constant(nn.Module):
    """A network whose output is ``value`` everywhere, ``(b, width)``, whatever its input."""

    def __init__(self, width: int, value: float) -> None:
        super().__init__()
        self.width, self.value = width, value

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.new_full((inputs.shape[0], self.width), self.value)


def training_table(model: Imputer, data: PreparedData) -> MaskedTable:
    """What the runner gives a model to train on: the complete training rows to a model trained on
    complete data (``cvae_data``), the incomplete ones to every other."""
    return data.train_complete if model.trained_on_complete_data else data.train


def fit_and_score(model: Imputer, data: PreparedData) -> tuple[dict[str, float], dict[str, float]]:
    """Fit ``model`` as the runner does, then the test-split scores (:func:`~imputebench.evaluate.score`)
    of its imputations and of mean imputation fitted on the same training split."""
    model.fit(training_table(model, data), data.validation)
    mean = get_model("mean")(seed=0).fit(data.train, data.validation)
    return score(data, model.impute(data.test)), score(data, mean.impute(data.test))


@functools.cache
def sweep_fit(name: str, dataset: str, mirror_dir: Path) -> tuple[Imputer, PreparedData]:
    """``name`` trained on ``dataset`` as a sweep trains it (the runner's configuration, vsae protocol,
    MCAR 0.5, seed 0), with its prepared data. Cached: the slow checks that need the same full
    training run (a GAN's, minutes each) share one fit."""
    data = prepare(load_dataset(dataset, mirror_dir), get_protocol("vsae"), "mcar", 0.5, 0)
    config = config_resolver({dataset: data.dataset.schema})(name, dataset)
    return get_model(name)(seed=0, **config).fit(data.train, data.validation), data
