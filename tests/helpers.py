"""Small synthetic datasets for tests that need no files."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from imputebench.data.dataset import Dataset
from imputebench.schema import Feature, FeatureSchema


def correlated_dataset(n: int = 400, seed: int = 0, name: str = "toy") -> Dataset:
    """Three correlated real features and one categorical feature driven by them."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 1))
    real = latent @ np.array([[1.0, -2.0, 0.5]]) + 0.3 * rng.normal(size=(n, 3)) + np.array([10.0, 0.0, -5.0])
    category = np.digitize(latent[:, 0], [-0.5, 0.5]).astype(float)
    schema = FeatureSchema((Feature("a"), Feature("b"), Feature("c"), Feature("k", "categorical", ("lo", "mid", "hi"))))
    return Dataset(name, np.column_stack([real, category]), schema)


class Constant(nn.Module):
    """A network whose output is ``value`` everywhere, ``(b, width)``, whatever its input."""

    def __init__(self, width: int, value: float) -> None:
        super().__init__()
        self.width, self.value = width, value

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.new_full((inputs.shape[0], self.width), self.value)
