"""The in-memory dataset every later stage starts from, and the provenance of its content."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal, TypedDict

import numpy as np

from imputebench.schema import FeatureSchema


class DatasetError(ValueError):
    """A dataset that cannot be used: empty, malformed, constant or all-missing columns."""


@dataclass(frozen=True)
class FileDigest:
    """One file a dataset was read from: its path in the data directory (``folder/filename``), the
    sha256 the manifest records for it (``expected``) and the sha256 of the bytes read (``actual``)."""

    relpath: str
    expected: str
    actual: str

    @property
    def modified(self) -> bool:
        """True when the bytes read are not the manifest's (loaded only when modified data was allowed)."""
        return self.actual.lower() != self.expected.lower()


class Provenance(TypedDict):
    """What a dataset was built from: see :meth:`Dataset.provenance`."""

    sha256: str
    status: Literal["verified", "modified", "unverified"]
    files: dict[str, str]


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

    ``files`` records the file(s) the dataset was read from with their expected and actual sha256
    (empty for a dataset built in memory or bundled with scikit-learn); see :meth:`provenance`.
    """

    name: str
    values: np.ndarray
    schema: FeatureSchema
    target: np.ndarray | None = None
    target_name: str | None = None
    source_test: np.ndarray | None = None
    files: tuple[FileDigest, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(self.files))
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
        return replace(self, values=self.values[keep], target=target, source_test=source_test)

    def provenance(self) -> Provenance:
        """``{"sha256", "status", "files"}``: what this dataset was read from.

        Read from files: ``sha256`` is the actual sha256 of the one file, or for several
        :func:`files_sha256` (one line ``<relpath> <actual sha256>`` per file, sorted by path);
        ``status`` is ``"modified"`` when any file differs from the manifest (loaded only when
        modified data was allowed), else ``"verified"``; ``files`` maps each path to its actual
        sha256. A derived dataset (e.g. :meth:`complete_cases`) keeps its files, so its provenance
        is theirs.

        Not read from files (scikit-learn's bundled sets, datasets built in memory): ``sha256`` is
        :attr:`content_sha256`, ``status`` ``"unverified"`` (nothing to check it against), ``files`` empty.
        """
        if not self.files:
            return {"sha256": self.content_sha256, "status": "unverified", "files": {}}
        status = "modified" if any(f.modified for f in self.files) else "verified"
        files = {f.relpath: f.actual for f in self.files}
        return {"sha256": files_sha256(self.files), "status": status, "files": files}

    @cached_property
    def content_sha256(self) -> str:
        """sha256 of the content, whatever the name: ``values``, then ``target`` and ``source_test`` when
        present, each as its dtype, shape and bytes. Computed once per object (arrays are not copied
        when already contiguous); modifying the arrays in place afterwards is not noticed."""
        digest = hashlib.sha256()
        for label, array in (("values", self.values), ("target", self.target), ("source_test", self.source_test)):
            if array is not None:
                header, data = _framed(label, np.asarray(array))
                digest.update(header)
                digest.update(data)
        return digest.hexdigest()

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


def files_sha256(files: tuple[FileDigest, ...]) -> str:
    """The actual sha256 of a single file, else the sha256 of one line ``<relpath> <actual sha256>`` per file
    (each ended by a newline), sorted by path."""
    if len(files) == 1:
        return files[0].actual
    lines = "".join(f"{f.relpath} {f.actual}\n" for f in sorted(files, key=lambda f: f.relpath))
    return hashlib.sha256(lines.encode()).hexdigest()


def _framed(label: str, array: np.ndarray) -> tuple[bytes, memoryview]:
    """One array as hashed: a header naming it, its dtype and shape, then its bytes in C order (a view, not a copy)."""
    if array.dtype.kind == "O":  # object arrays hold pointers: hash their text instead
        array = array.astype(str)
    header = f"{label} {array.dtype.str} {array.shape}\n".encode()
    return header, np.ascontiguousarray(array).reshape(-1).view(np.uint8).data
