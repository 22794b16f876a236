"""The device-resident view of one split that every imputer receives.

Two storages with one interface: :class:`MaskedTable` holds float values (tables), and
:class:`CompactTable` holds uint8 codes and per-modality masks (images, 4-8 times smaller on the
device). Code that walks a split goes through :meth:`MaskedTable.rows` / ``chunks``, which
give float ``(b, D)`` values and a bool ``(b, D)`` mask from either; ``x`` and ``observed`` of a
compact table build the whole split in float, for small splits and tests only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from imputebench.schema import FeatureSchema

RowIndex = torch.Tensor | slice


class _Rows:
    """Row access shared by both storages (``_stored``: the tensor holding the values)."""

    schema: FeatureSchema
    _stored: torch.Tensor

    @property
    def n_rows(self) -> int:
        return int(self._stored.shape[0])

    @property
    def device(self) -> torch.device:
        return self._stored.device

    @property
    def observed_features(self) -> torch.Tensor:
        """``(n, d)`` bool: feature-level observation mask."""
        return self.observed[:, list(self.schema.offsets)]

    def feature_values(self) -> torch.Tensor:
        """``(n, d)`` feature space, NaN where unobserved (standardised numerics, category codes)."""
        values = self.schema.collapse(self.x)
        return values.masked_fill(~self.observed_features, float("nan"))

    def rows(self, index: RowIndex) -> tuple[torch.Tensor, torch.Tensor]:
        """Float values ``(b, D)`` (hidden entries 0) and the observed mask ``(b, D)`` of some rows."""
        return self.x[index], self.observed[index]

    def chunks(self, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`rows` of consecutive slices of at most ``size`` rows, in order."""
        for start in range(0, self.n_rows, size):
            yield self.rows(slice(start, start + size))


@dataclass(frozen=True)
class MaskedTable(_Rows):
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
    def _stored(self) -> torch.Tensor:
        return self.x

    def to(self, device: torch.device | str) -> MaskedTable:
        moved = (None if t is None else t.to(device) for t in (self.feature_mean, self.feature_std))
        return MaskedTable(self.x.to(device), self.observed.to(device), self.schema, *moved)

    def subset(self, index: RowIndex) -> MaskedTable:
        """The table of some rows."""
        return MaskedTable(self.x[index], self.observed[index], self.schema, self.feature_mean, self.feature_std)


@dataclass(frozen=True)
class CompactTable(_Rows):
    """One split of an image dataset in the encoded space, stored as uint8 on the device.

    ``codes`` are pixel intensities and one-hot 0/1 entries, 0 where hidden; a batch's float
    values are ``codes * scale`` (``scale`` ``(D,)``: ``1 / intensity_max`` for pixels, so they
    lie in ``[0, 1]``, and 1 for one-hot columns). Whole modalities are observed or missing
    (``modality_observed`` ``(n, M)``), so the mask is kept per modality and expanded per batch
    through ``column_modality`` ``(D,)``.
    """

    codes: torch.Tensor  # (n, D) uint8
    modality_observed: torch.Tensor  # (n, M) bool
    column_modality: torch.Tensor  # (D,) long
    scale: torch.Tensor  # (D,) float
    schema: FeatureSchema
    feature_mean: torch.Tensor | None = None
    feature_std: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n, d = self.codes.shape[0], self.schema.encoded_dim
        n_mod = len(self.schema.modality_groups)
        if self.codes.dtype != torch.uint8 or tuple(self.codes.shape) != (n, d):
            raise ValueError(f"CompactTable: codes must be uint8 (n, {d}), got {self.codes.dtype} {tuple(self.codes.shape)}")
        if self.modality_observed.dtype != torch.bool or tuple(self.modality_observed.shape) != (n, n_mod):
            raise ValueError(f"CompactTable: modality_observed must be bool (n, {n_mod}), got {tuple(self.modality_observed.shape)}")
        if tuple(self.column_modality.shape) != (d,) or tuple(self.scale.shape) != (d,):
            raise ValueError(f"CompactTable: column_modality and scale must have shape ({d},)")

    @property
    def _stored(self) -> torch.Tensor:
        return self.codes

    def rows(self, index: RowIndex) -> tuple[torch.Tensor, torch.Tensor]:
        observed = self.modality_observed[index].index_select(1, self.column_modality)  # (b, D)
        return self.codes[index].to(self.scale.dtype) * self.scale, observed

    @property
    def x(self) -> torch.Tensor:
        """The whole split in float ``(n, D)``: for small splits only."""
        return self.rows(slice(None))[0]

    @property
    def observed(self) -> torch.Tensor:
        """The whole split's mask ``(n, D)``."""
        return self.modality_observed.index_select(1, self.column_modality)

    def subset(self, index: RowIndex) -> CompactTable:
        """The table of some rows."""
        return CompactTable(
            self.codes[index], self.modality_observed[index], self.column_modality, self.scale, self.schema,
            self.feature_mean, self.feature_std,
        )

    def to(self, device: torch.device | str) -> CompactTable:
        moved = (None if t is None else t.to(device) for t in (self.feature_mean, self.feature_std))
        return CompactTable(
            self.codes.to(device), self.modality_observed.to(device), self.column_modality.to(device),
            self.scale.to(device), self.schema, *moved,
        )


Table = MaskedTable | CompactTable


@dataclass(frozen=True)
class ValidationSplit:
    """The validation split as model selection uses it (the papers pick the best epoch on it).

    ``table`` is what the model sees, masked like every split; ``truth`` holds the
    encoded complete values, used only to score the validation imputations: a float
    ``(n, D)`` tensor, or for a compact table the complete split as a compact table.
    """

    table: Table
    truth: torch.Tensor | CompactTable

    def __post_init__(self) -> None:
        shape = (self.truth.n_rows, self.truth.schema.encoded_dim) if isinstance(self.truth, CompactTable) else tuple(self.truth.shape)
        expected = (self.table.n_rows, self.table.schema.encoded_dim)
        if tuple(shape) != expected:
            raise ValueError(f"ValidationSplit: truth {tuple(shape)} != table {expected}")

    def chunks(self, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``(x, observed, truth)`` of consecutive slices of at most ``size`` rows, each ``(b, D)``."""
        for start in range(0, self.table.n_rows, size):
            rows = slice(start, start + size)
            truth = self.truth.rows(rows)[0] if isinstance(self.truth, CompactTable) else self.truth[rows]
            yield (*self.table.rows(rows), truth)

    def to(self, device: torch.device | str) -> ValidationSplit:
        return ValidationSplit(self.table.to(device), self.truth.to(device))
