"""The in-memory dataset every later stage starts from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imputebench.schema import FeatureSchema


class DatasetError(ValueError):
    """A dataset that cannot be used: empty, malformed, constant or all-missing columns."""


@dataclass(frozen=True)
class Dataset:
    """A table in *feature space* plus its declared schema.

    ``values`` is ``(n, d)`` float64: numeric features in their original units,
    categorical features as integer codes ``0..K-1`` (``schema.features[j].categories``
    names them), ``NaN`` where the source file itself has no value. ``target``
    holds the prediction target (class label or regression response) when the
    dataset has one; it is not part of the imputation table (``values``) and is
    kept for post-imputation downstream scores.

    Image datasets keep ``values`` as uint8 (pixel intensities and label codes; images have no
    value missing at the source), 8 times smaller than float64. ``source_test`` lists the rows
    of the source's own test split (MNIST's 10,000 test images) when the benchmark keeps it
    (VSAE long version, appendix E.2); protocols then test on exactly those rows.
    """

    name: str
    values: np.ndarray
    schema: FeatureSchema
    target: np.ndarray | None = None
    target_name: str | None = None
    source_test: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.schema):
            raise DatasetError(
                f"dataset {self.name!r}: values of shape {self.values.shape} do not match "
                f"a schema of {len(self.schema)} features"
            )
        if self.target is not None and len(self.target) != len(self.values):
            raise DatasetError(f"dataset {self.name!r}: target length differs from the number of rows")
        if self.values.dtype not in (np.float64, np.uint8):
            raise DatasetError(f"dataset {self.name!r}: values must be float64 (tables) or uint8 (images), not {self.values.dtype}")
        if self.source_test is not None:
            rows = np.asarray(self.source_test)
            if rows.ndim != 1 or len(np.unique(rows)) != len(rows) or (rows.size and not 0 <= rows.min() <= rows.max() < len(self.values)):
                raise DatasetError(f"dataset {self.name!r}: source_test must list distinct row indices")

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])

    def complete_cases(self) -> Dataset:
        """Rows with no value missing in the source file: the benchmark's ground truth."""
        if self.values.dtype == np.uint8:  # nothing can be missing
            return self
        keep = ~np.isnan(self.values).any(axis=1)
        target = None if self.target is None else self.target[keep]
        source_test = None
        if self.source_test is not None:
            renumber = np.cumsum(keep) - 1  # (n,) new index of each kept row
            source_test = renumber[self.source_test[keep[self.source_test]]]
        return Dataset(self.name, self.values[keep], self.schema, target, self.target_name, source_test)

    def validate(self) -> Dataset:
        """Reject tables no imputation benchmark can score, with a message naming the problem."""
        if self.n_rows == 0:
            raise DatasetError(f"dataset {self.name!r} has no rows")
        pixels = list(self.schema.pixel_indices)
        if pixels:
            limits = np.array([self.schema.features[j].intensity_max for j in pixels])  # (p,)
            over = np.flatnonzero(self.values[:, pixels].max(axis=0) > limits)
            if over.size:
                feature = self.schema.features[pixels[over[0]]]
                raise DatasetError(f"dataset {self.name!r}: pixel {feature.name!r} exceeds its intensity_max {feature.intensity_max}")
        for j, feature in enumerate(self.schema.features):
            if feature.is_pixel:  # never standardised; a blank border pixel is a real pixel
                continue
            column = self.values[:, j]
            finite = column[~np.isnan(column)]
            if finite.size == 0:
                raise DatasetError(f"dataset {self.name!r}: feature {feature.name!r} is entirely missing")
            if np.unique(finite).size < 2:
                raise DatasetError(
                    f"dataset {self.name!r}: feature {feature.name!r} is constant ({finite[0]!r}); "
                    "it cannot be standardised and its NRMSE would divide by zero: drop it"
                )
        return self
