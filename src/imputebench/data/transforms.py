"""Transforms fitted on the OBSERVED TRAINING entries only.

Numeric features are standardised with the mean and standard deviation of their
observed training entries; categorical features are one-hot encoded with the
number of categories the schema declares (never the number seen in training);
pixels are divided by their declared ``intensity_max`` (a fixed range, nothing fitted).
uint8 image datasets encode into a :class:`CompactTable` (uint8 codes on the device).
Nothing about the validation/test splits or about hidden training values can
reach the fitted statistics: :meth:`TableTransform.fit` sees only the training
values where ``observed`` is True.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from imputebench.data.dataset import DatasetError
from imputebench.data.table import CompactTable, MaskedTable, Table
from imputebench.schema import FeatureSchema


@dataclass(frozen=True)
class TableTransform:
    """Per-feature affine standardisation plus one-hot encoding, via the schema."""

    schema: FeatureSchema
    mean: np.ndarray  # (d,) 0 for categorical features
    std: np.ndarray  # (d,) 1 for categorical features

    @classmethod
    def fit(cls, values: np.ndarray, observed: np.ndarray, schema: FeatureSchema) -> TableTransform:
        """Statistics of ``values[observed]`` per feature; ``values``/``observed`` are ``(n, d)``.

        Pixels take mean 0 and std ``intensity_max`` and are not read (an image split is large)."""
        counts = observed.sum(axis=0)  # (d,)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            names = [schema.names[j] for j in empty]
            raise DatasetError(f"features {names} have no observed training entries; raise the data or lower the ratio")
        numeric = list(schema.numeric_indices)
        mean, std = np.zeros(len(schema)), np.ones(len(schema))
        for j in schema.pixel_indices:
            std[j] = schema.features[j].intensity_max
        if numeric:
            part, seen = values[:, numeric].astype(np.float64), observed[:, numeric]
            mean[numeric] = np.where(seen, part, 0.0).sum(axis=0) / counts[numeric]
            std[numeric] = np.sqrt((np.where(seen, part - mean[numeric], 0.0) ** 2).sum(axis=0) / counts[numeric])
            # A feature the mask left constant over its observed training entries (yeast's `pox`, 0 in 99% of rows,
            # at 70% MCAR) is only centred: scale 1, as scikit-learn's StandardScaler does for zero variance. A
            # feature constant in the whole dataset is refused earlier, as bad input (Dataset.validate).
            std[numeric] = np.where(std[numeric] == 0, 1.0, std[numeric])
        return cls(schema, mean, std)

    def encode(
        self,
        values: np.ndarray,
        observed: np.ndarray,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Table:
        """Feature space ``(n, d)`` + mask -> a table on ``device``; hidden entries become 0.

        uint8 values (image datasets) give a :class:`CompactTable`, anything else a :class:`MaskedTable`."""
        if values.dtype == np.uint8:
            return self.encode_compact(values, observed, device, dtype)
        scaled = (values - self.mean) / self.std  # (n, d)
        scaled = np.where(observed, scaled, np.nan)
        features = torch.as_tensor(scaled, dtype=dtype, device=device)
        x = self.schema.one_hot(features).nan_to_num_(0.0)  # (n, D)
        observed_t = torch.as_tensor(observed, dtype=torch.bool, device=device)
        mean, std = (torch.as_tensor(a, dtype=dtype, device=device) for a in (self.mean, self.std))
        return MaskedTable(x, self.schema.expand(observed_t), self.schema, mean, std)

    def encode_compact(
        self,
        values: np.ndarray,
        observed: np.ndarray,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> CompactTable:
        """uint8 pixels and category codes ``(n, d)`` -> :class:`CompactTable`: pixels kept as codes
        (scaled by ``1 / intensity_max`` per batch), categories one-hot; the mask per modality."""
        schema = self.schema
        if schema.numeric_indices:
            raise DatasetError("compact (uint8) storage holds pixels and categories only, not standardised numbers")
        groups = schema.modality_groups
        firsts = [members[0] for _, members in groups]
        modality_observed = observed[:, firsts]  # (n, M)
        for m, (name, members) in enumerate(groups):
            if (observed[:, list(members)] != modality_observed[:, m : m + 1]).any():
                raise ValueError(f"modality {name!r} is partly observed in some rows: compact tables mask whole modalities")
        hidden_rows = ~observed  # (n, d)
        codes = np.zeros((len(values), schema.encoded_dim), dtype=np.uint8)  # (n, D)
        pixels = list(schema.pixel_indices)
        if pixels:
            cols = [schema.offsets[j] for j in pixels]
            codes[:, cols] = np.where(hidden_rows[:, pixels], 0, values[:, pixels])
        for j in schema.categorical_indices:
            rows = np.flatnonzero(observed[:, j])
            codes[rows, schema.offsets[j] + values[rows, j].astype(np.int64)] = 1
        column_modality = np.repeat(schema.feature_modality, schema.widths)  # (D,) modality of each encoded column
        scale = np.repeat(1.0 / self.std, schema.widths)  # (D,) 1 / intensity_max for pixels, 1 for one-hot
        mean, std = (torch.as_tensor(a, dtype=dtype, device=device) for a in (self.mean, self.std))
        return CompactTable(
            torch.as_tensor(codes, device=device),
            torch.as_tensor(modality_observed, dtype=torch.bool, device=device),
            torch.as_tensor(column_modality, dtype=torch.long, device=device),
            torch.as_tensor(scale, dtype=dtype, device=device),
            schema, mean, std,
        )

    def decode(self, encoded: torch.Tensor) -> np.ndarray:
        """Encoded ``(n, D)`` -> feature space ``(n, d)`` in original units (category codes)."""
        features = self.schema.collapse(encoded.detach()).to("cpu", torch.float64).numpy()
        return features * self.std + self.mean
