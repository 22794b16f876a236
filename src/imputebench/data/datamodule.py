"""LightningDataModule over device-resident tensors, batched by index.

Small tables live on the training device for the whole run: ``setup`` moves
them once, and every batch is an index slice (``torch.randperm(n).split(b)``)
of tensors already there, with no DataLoader workers, no collation and no
per-step host-to-device copy. Lightning accepts any iterable as a loader.
"""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import torch

from imputebench.data.dataset import Dataset
from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.table import Table, ValidationSplit


class IndexBatches:
    """Iterate ``(x, observed)`` mini-batches of a table by index slices.

    A short last batch is kept (if it has ``min_rows``), or with ``fill_last`` topped up to
    ``batch_size`` with the rows at the start of the epoch's order, cycling through them again
    when the table is smaller than a batch: every step then sees a full batch.
    """

    def __init__(
        self,
        table: Table,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        min_rows: int = 1,
        fill_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if table.n_rows < min_rows:
            raise ValueError(f"{table.n_rows} rows: at least {min_rows} are needed per training batch")
        self.table, self.batch_size, self.shuffle, self.min_rows = table, batch_size, shuffle, min_rows
        self.fill_last = fill_last
        self.generator = torch.Generator(device=table.device).manual_seed(seed)

    def __len__(self) -> int:
        full, rest = divmod(self.table.n_rows, self.batch_size)
        return full + (rest > 0 if self.fill_last else rest >= max(self.min_rows, 1))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, device = self.table.n_rows, self.table.device
        order = (
            torch.randperm(n, generator=self.generator, device=device)
            if self.shuffle
            else torch.arange(n, device=device)
        )
        if self.fill_last:
            rows = len(self) * self.batch_size  # every step a full batch
            order = order.repeat(-(-rows // n))[:rows]  # (steps * b,)
        for idx in order.split(self.batch_size):
            if len(idx) < self.min_rows:  # a last batch too small for batch normalisation is skipped
                return
            yield self.table.rows(idx)  # (b, D), (b, D)


class ValidationBatches:
    """``(x, observed, truth)`` of consecutive row slices of a validation split, in order (an
    iterable, not a list: Lightning reads a list as several loaders)."""

    def __init__(self, split: ValidationSplit, batch_size: int) -> None:
        self.split, self.batch_size = split, batch_size

    def __len__(self) -> int:
        return -(-self.split.table.n_rows // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        return self.split.chunks(self.batch_size)


class TabularDataModule(L.LightningDataModule):
    """One (dataset, protocol, mechanism, ratio, seed) cell as a Lightning DataModule."""

    def __init__(
        self,
        dataset: Dataset,
        protocol: str = "vsae",
        mechanism: str = "mcar",
        ratio: float = 0.5,
        seed: int = 0,
        batch_size: int = 64,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self.dataset, self.protocol = dataset, get_protocol(protocol)
        self.mechanism, self.ratio, self.seed = mechanism, ratio, seed
        self.batch_size, self.device = batch_size, device
        self.data: PreparedData | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.data is None:
            self.data = prepare(self.dataset, self.protocol, self.mechanism, self.ratio, self.seed, self.device)

    def _prepared(self) -> PreparedData:
        if self.data is None:
            raise RuntimeError("call setup() before asking for a loader")
        return self.data

    def train_dataloader(self) -> IndexBatches:
        return IndexBatches(self._prepared().train, self.batch_size, shuffle=True, seed=self.seed)

    def val_dataloader(self) -> IndexBatches | list:
        val = self._prepared().val
        return [] if val is None else IndexBatches(val, self.batch_size, shuffle=False)

    def test_dataloader(self) -> IndexBatches:
        return IndexBatches(self._prepared().test, self.batch_size, shuffle=False)
