"""Small synthetic datasets and shared steps of the tests, the quality smoke's table and schedules among
them; ``benchmarks/quality.py`` and ``benchmarks/quality_smoke_margins.py`` import them too, so that they
train and score models exactly as the tests do."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from imputebench.data.dataset import Dataset
from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
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


#: the adversarial models, trained on their authors' whole schedules in benchmarks/quality.py
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


#: The quality smoke (tests/test_quality_smoke.py): each deep model trains SMOKE_EPOCHS epochs (its family
#: preset's learning rate, every epoch trained, the best validation epoch kept) on a 1000-row correlated
#: table, or the schedule SMOKE_SCHEDULES gives it: the shortest found to beat mean imputation on every
#: seed measured by benchmarks/quality_smoke_margins.py (MisGAN's: the longest tried, and it does not).
SMOKE_ROWS = 1000
SMOKE_EPOCHS = 30
SMOKE_SCHEDULES: dict[str, dict] = {
    "vaeac": {"max_epochs": 15},  # its 25-sample IWAE validation makes an epoch 4x a VAE's
    "hivae": {"max_epochs": 100},  # its own lr 1e-3 and batches of 100: ~0.97 x the mean's NRMSE at 30 epochs
    "gain": {"max_epochs": 300},  # 1500 of its authors' 10,000 iterations (epochs of 5 batches of 128)
    "gain_vaeac": {"max_epochs": 300},  # seed 1 at 200 epochs: 1.03 x the mean's NRMSE
    # A WGAN-GP game at its authors' lr 1e-4 stays near or above the mean's NRMSE for hundreds of epochs;
    # ten times that rate for 300 epochs (~100 CPU s) still leaves one seed in five above it.
    "misgan": {"max_epochs": 300, "lr": 1e-3, "imputer_lr": 2e-3},
    # one linear layer on the ~40 complete training rows, one batch an epoch: at 30 epochs of lr 1e-3 it has
    # barely moved from its initialisation (1.62 x the mode's PFC on seed 0)
    "supervised_logreg": {"max_epochs": 200, "lr": 3e-2},
}


def smoke_data(seed: int = 0) -> PreparedData:
    """The smoke's table (:func:`correlated_dataset` of SMOKE_ROWS rows drawn with ``seed``), split and
    masked at MCAR 0.5 under the vsae protocol with ``seed``."""
    return prepare(correlated_dataset(SMOKE_ROWS, seed, "smoke"), get_protocol("vsae"), "mcar", 0.5, seed)


def smoke_model(name: str, data: PreparedData, seed: int = 0) -> Imputer:
    """Deep model ``name``, untrained, configured with its smoke schedule for ``data``."""
    schedule = {"max_epochs": SMOKE_EPOCHS, **SMOKE_SCHEDULES.get(name, {})}
    schedule.setdefault("patience", schedule["max_epochs"])
    return get_model(name)(seed=seed, **config_resolver({"smoke": data.dataset.schema}, **schedule)(name, "smoke"))
