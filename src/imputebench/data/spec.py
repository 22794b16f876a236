"""What a registered dataset is: its files (where each lives, how to check it) and its loader.

These declarations sit below both the registry (:mod:`.sources`), the image sets it registers
(:mod:`.multimodal`) and the downloader (:mod:`.download`), so each of those imports them
without importing another: the registry imports the image sets' specs, the downloader
imports the registry, and nothing imports back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from imputebench.data.dataset import Dataset

Loader = Callable[[Path], Dataset]
Task = Literal["classification", "regression"]
SKLEARN = "scikit-learn (bundled)"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: where it lives in the cache/mirror and how to check it.

    ``url`` is the canonical upstream address (from MANIFEST.md). ``member``
    names the file inside a zip served at ``url``. ``mirror_only`` marks a file
    the canonical URL does not serve byte for byte (``url`` then only records provenance).
    """

    folder: str
    filename: str
    url: str
    sha256: str
    size: int
    member: str | None = None
    mirror_only: bool = False

    @property
    def relpath(self) -> str:
        return f"{self.folder}/{self.filename}"

    def local_path(self, data_dir: Path) -> Path:
        return Path(data_dir) / self.folder / self.filename


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: provenance, files (empty for embedded ones), loader and documented size."""

    name: str
    source: str
    licence: str
    files: tuple[RemoteFile, ...]
    loader: Loader
    description: str
    task: Task = "classification"
    rows: int | None = None
