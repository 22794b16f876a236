"""From a dataset to device-resident, masked, transformed splits.

The order is fixed: complete cases -> split (protocol, seed) -> mask
(mechanism, ratio, seed) -> transforms fitted on the observed training entries
-> tensors on the device. The mask is drawn once over the whole table for a
(dataset, mechanism, ratio, seed), independently of the protocol and of the
model, so every model in a comparison sees the same hidden entries and the
training, validation and test rows share the mechanism's parameters (MAR's
always-observed features, the MNAR weights). Drawing it over the whole table is
the same as drawing each split with shared parameters.

A dataset that declares modalities (images, image + label) is masked a modality at a time
(:func:`~imputebench.masks.modality_mask`): MCAR is one Bernoulli(r) per (row, modality), as
the VSAE long version's E.2 draws its masks. Rows that lose every modality are kept, for every
model alike: they train nothing but a model of the mask, and at test time their imputation is
an unconditional generation, scored like any other hidden modality.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from imputebench.data.dataset import Dataset
from imputebench.data.protocols import Protocol, Splits, split_rows
from imputebench.data.table import CompactTable, Table, ValidationSplit
from imputebench.data.transforms import TableTransform
from imputebench.masks import make_mask, mask_hash


@dataclass(frozen=True)
class PreparedData:
    """Everything a trial needs; nothing later re-reads files or redraws masks."""

    dataset: Dataset  # complete cases
    splits: Splits
    observed: np.ndarray  # (n, d) bool over the whole table, True = observed
    mask_hash: str
    transform: TableTransform
    train: Table
    val: Table | None
    test: Table
    device: torch.device | str = "cpu"

    def complete(self, rows: np.ndarray) -> Table:
        """``rows`` with every entry observed: for models trained on complete data (CVAE w/ data),
        and as the scoring truth of the validation split. Never given to a partially-observed model."""
        return self.transform.encode(self.dataset.values[rows], np.ones((len(rows), len(self.dataset.schema)), bool), self.device)

    @cached_property
    def train_complete(self) -> Table:
        return self.complete(self.splits.train)

    @cached_property
    def validation(self) -> ValidationSplit | None:
        """The validation split with the true values of its hidden entries, for model selection; None without
        one, or when it hides nothing (unpaired at ratio 0): no imputation to score, so the epoch is selected on
        the training loss, as without a validation split."""
        if self.val is None or self.observed[self.splits.val].all():
            return None
        truth = self.complete(self.splits.val)
        return ValidationSplit(self.val, truth if isinstance(truth, CompactTable) else truth.x)

    @property
    def test_truth(self) -> np.ndarray:
        """``(n_test, d)`` true test values in original units (never shown to a model)."""
        return self.dataset.values[self.splits.test]

    @property
    def test_held_out(self) -> np.ndarray:
        """``(n_test, d)`` bool: test entries hidden by the mask; the entries that are scored."""
        return ~self.observed[self.splits.test]


def mask_input(dataset: Dataset) -> np.ndarray:
    """What a missingness mechanism sees: numeric features standardised over the whole
    table (the mechanism is part of the data-generating process, not of a model),
    categorical features as their codes."""
    values = dataset.values
    numeric = list(dataset.schema.numeric_indices)
    out = values.copy()
    out[:, numeric] = (values[:, numeric] - values[:, numeric].mean(0)) / values[:, numeric].std(0)
    return out


def prepare(
    dataset: Dataset,
    protocol: Protocol,
    mechanism: str,
    ratio: float,
    seed: int,
    device: torch.device | str = "cpu",
) -> PreparedData:
    data = dataset.complete_cases().validate()
    splits = split_rows(data.n_rows, protocol, seed, data.source_test)
    per_modality = bool(data.schema.modalities)
    observed = make_mask(mask_input(data), mechanism, ratio, seed, schema=data.schema, per_modality=per_modality)
    transform = TableTransform.fit(data.values[splits.train], observed[splits.train], data.schema)

    def table(rows: np.ndarray) -> Table:
        return transform.encode(data.values[rows], observed[rows], device)

    val = table(splits.val) if len(splits.val) else None
    return PreparedData(
        data, splits, observed, mask_hash(observed), transform, table(splits.train), val, table(splits.test), device
    )
