"""Transforms fitted on the OBSERVED TRAINING entries only.

Numeric features are standardised with the mean and standard deviation of their
observed training entries; categorical features are one-hot encoded with the
number of categories the schema declares (never the number seen in training).
Nothing about the validation/test splits or about hidden training values can
reach the fitted statistics: :meth:`TableTransform.fit` sees only the training
values where ``observed`` is True.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from imputebench.data.dataset import DatasetError
from imputebench.data.table import MaskedTable
from imputebench.schema import FeatureSchema


@dataclass(frozen=True)
class TableTransform:
    """Per-feature affine standardisation plus one-hot encoding, via the schema."""

    schema: FeatureSchema
    mean: np.ndarray  # (d,) 0 for categorical features
    std: np.ndarray  # (d,) 1 for categorical features

    @classmethod
    def fit(cls, values: np.ndarray, observed: np.ndarray, schema: FeatureSchema) -> TableTransform:
        """Statistics of ``values[observed]`` per feature; ``values``/``observed`` are ``(n, d)``."""
        counts = observed.sum(axis=0)  # (d,)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            names = [schema.names[j] for j in empty]
            raise DatasetError(f"features {names} have no observed training entries; raise the data or lower the ratio")
        masked = np.where(observed, values, 0.0)
        mean = masked.sum(axis=0) / counts
        var = (np.where(observed, values - mean, 0.0) ** 2).sum(axis=0) / counts
        std = np.sqrt(var)
        numeric = np.zeros(len(schema), dtype=bool)
        numeric[list(schema.numeric_indices)] = True
        constant = np.flatnonzero(numeric & (std == 0))
        if constant.size:
            names = [schema.names[j] for j in constant]
            raise DatasetError(f"features {names} are constant over their observed training entries: cannot standardise")
        return cls(schema, np.where(numeric, mean, 0.0), np.where(numeric, std, 1.0))

    def encode(
        self,
        values: np.ndarray,
        observed: np.ndarray,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> MaskedTable:
        """Feature space ``(n, d)`` + mask -> :class:`MaskedTable` on ``device``; hidden entries become 0."""
        scaled = (values - self.mean) / self.std  # (n, d)
        scaled = np.where(observed, scaled, np.nan)
        features = torch.as_tensor(scaled, dtype=dtype, device=device)
        x = self.schema.one_hot(features).nan_to_num_(0.0)  # (n, D)
        observed_t = torch.as_tensor(observed, dtype=torch.bool, device=device)
        mean, std = (torch.as_tensor(a, dtype=dtype, device=device) for a in (self.mean, self.std))
        return MaskedTable(x, self.schema.expand(observed_t), self.schema, mean, std)

    def decode(self, encoded: torch.Tensor) -> np.ndarray:
        """Encoded ``(n, D)`` -> feature space ``(n, d)`` in original units (category codes)."""
        features = self.schema.collapse(encoded.detach()).to("cpu", torch.float64).numpy()
        return features * self.std + self.mean
