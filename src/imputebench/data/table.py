"""The device-resident view of one split that every imputer receives."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from imputebench.schema import FeatureSchema


@dataclass(frozen=True)
class MaskedTable:
    """One split in the *encoded space* (see :mod:`imputebench.schema`).

    ``x`` holds standardised numeric features and one-hot categorical features,
    with every unobserved entry set to 0: a model never sees a hidden value.
    ``observed`` is True where the entry is observed, per encoded column (a
    categorical feature's columns are observed or missing together).
    """

    x: torch.Tensor  # (n, D) float
    observed: torch.Tensor  # (n, D) bool
    schema: FeatureSchema
    #: the transform's per-feature affine ``raw = x * feature_std + feature_mean`` ``(d,)``
    #: (statistics of observed training entries; 0 / 1 for one-hot kinds), for models whose
    #: likelihoods need raw values (HI-VAE's log-normal and Poisson); None when unknown
    feature_mean: torch.Tensor | None = None
    feature_std: torch.Tensor | None = None

    def __post_init__(self) -> None:
        expected = (self.x.shape[0], self.schema.encoded_dim)
        if tuple(self.x.shape) != expected or tuple(self.observed.shape) != expected:
            raise ValueError(f"MaskedTable: x {tuple(self.x.shape)} / observed {tuple(self.observed.shape)}, expected {expected}")
        if self.observed.dtype != torch.bool:
            raise TypeError("MaskedTable.observed must be a bool tensor (True = observed)")

    @property
    def n_rows(self) -> int:
        return int(self.x.shape[0])

    @property
    def observed_features(self) -> torch.Tensor:
        """``(n, d)`` bool: feature-level observation mask."""
        return self.observed[:, list(self.schema.offsets)]

    def feature_values(self) -> torch.Tensor:
        """``(n, d)`` feature space, NaN where unobserved (standardised numerics, category codes)."""
        values = self.schema.collapse(self.x)
        return values.masked_fill(~self.observed_features, float("nan"))

    def to(self, device: torch.device | str) -> MaskedTable:
        moved = (None if t is None else t.to(device) for t in (self.feature_mean, self.feature_std))
        return MaskedTable(self.x.to(device), self.observed.to(device), self.schema, *moved)


@dataclass(frozen=True)
class ValidationSplit:
    """The validation split as model selection uses it (the papers pick the best epoch on it).

    ``table`` is what the model sees, masked like every split; ``truth`` holds the
    encoded complete values, used only to score the validation imputations.
    """

    table: MaskedTable
    truth: torch.Tensor  # (n, D) float

    def __post_init__(self) -> None:
        if tuple(self.truth.shape) != tuple(self.table.x.shape):
            raise ValueError(f"ValidationSplit: truth {tuple(self.truth.shape)} != table {tuple(self.table.x.shape)}")

    def to(self, device: torch.device | str) -> ValidationSplit:
        return ValidationSplit(self.table.to(device), self.truth.to(device))
