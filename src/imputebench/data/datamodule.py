"""LightningDataModule over device-resident tensors, batched by index.

Small tables live on the training device for the whole run: ``setup`` moves
them once, and every batch is an index slice (``torch.randperm(n).split(b)``)
of tensors already there, with no DataLoader workers, no collation and no
per-step host-to-device copy. Lightning accepts any iterable as a loader.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from pathlib import Path

import lightning as L
import torch

from imputebench.data.dataset import Dataset
from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.data.table import Table, ValidationSplit
from imputebench.schema import FeatureSchema


class IndexBatches:
    """Iterate ``(x, observed)`` mini-batches of a table by index slices.

    A short last batch is kept (if it has ``min_rows``), or with ``fill_last`` topped up to
    ``batch_size`` with the rows at the start of the epoch's order, cycling through them again
    when the table is smaller than a batch: every step then sees a full batch.

    Under DDP each rank iterates its :meth:`shard`: its share of the same epoch's order (every
    rank holds the same generator state, so all draw the same permutation), batched as above.
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
        self.rank, self.world_size = 0, 1

    def shard(self, rank: int, world_size: int, device: torch.device) -> IndexBatches:
        """Rank ``rank``'s share of every epoch, on ``device``: the epoch's order, cycled from its
        start up to a multiple of ``world_size`` rows (as torch's ``DistributedSampler`` pads),
        dealt row by row. Every rank gets ``ceil(n / world_size)`` rows, hence the same number of
        steps: a rank with one step more would wait forever for the others' gradients."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of {world_size} ranks")
        sharded = copy.copy(self)
        sharded.rank, sharded.world_size = rank, world_size
        if sharded._rows_per_rank() < self.min_rows:
            raise ValueError(
                f"{self.table.n_rows} rows on {world_size} devices: {sharded._rows_per_rank()} per device, "
                f"at least {self.min_rows} are needed per training batch"
            )
        if torch.device(device) != self.table.device:
            sharded.table = self.table.to(device)
            sharded.generator = torch.Generator(device=device)
            sharded.generator.set_state(self.generator.get_state())
        return sharded

    def __getstate__(self) -> dict:
        """The generator as its device and state bytes: torch.multiprocessing sends a tensor to a
        spawned DDP rank as shared memory that the sender must keep alive until the rank maps it,
        which a state read here for the message (or a pickled ``Generator``'s) is not."""
        state = self.__dict__.copy()
        state["generator"] = (self.generator.device, self.generator.get_state().numpy().tobytes())
        return state

    def __setstate__(self, state: dict) -> None:
        device, generator_state = state["generator"]
        state["generator"] = torch.Generator(device=device)
        state["generator"].set_state(torch.frombuffer(bytearray(generator_state), dtype=torch.uint8))
        self.__dict__.update(state)

    def _rows_per_rank(self) -> int:
        return -(-self.table.n_rows // self.world_size)

    def __len__(self) -> int:
        full, rest = divmod(self._rows_per_rank(), self.batch_size)
        return full + (rest > 0 if self.fill_last else rest >= max(self.min_rows, 1))

    def _share(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's rows of the epoch's ``order`` ``(n,)``: ``(ceil(n / world_size),)``."""
        if self.world_size == 1:
            return order
        rows = self._rows_per_rank() * self.world_size
        padded = order.repeat(-(-rows // len(order)))[:rows]  # (rows,): cycled from the start
        return padded[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, device = self.table.n_rows, self.table.device
        order = (
            torch.randperm(n, generator=self.generator, device=device)
            if self.shuffle
            else torch.arange(n, device=device)
        )
        order = self._share(order)  # (m,): every row, or this rank's share
        if self.fill_last:
            rows = len(self) * self.batch_size  # every step a full batch
            order = order.repeat(-(-rows // len(order)))[:rows]  # (steps * b,)
        for idx in order.split(self.batch_size):
            if len(idx) < self.min_rows:  # a last batch too small for batch normalisation is skipped
                return
            yield self.table.rows(idx)  # (b, D), (b, D)


def dealt_chunk(local_index: int, rank: int, world_size: int) -> int:
    """The single-process index of the ``local_index``-th validation chunk of ``rank`` (chunks are
    dealt round-robin by :meth:`ValidationBatches.shard`); past the last chunk for padding."""
    return local_index * world_size + rank


class ValidationBatches:
    """``(x, observed, truth)`` of consecutive row slices of a validation split, in order (an
    iterable, not a list: Lightning reads a list as several loaders)."""

    def __init__(self, split: ValidationSplit, batch_size: int) -> None:
        self.split, self.batch_size = split, batch_size
        self.rank, self.world_size = 0, 1

    def shard(self, rank: int, world_size: int, device: torch.device) -> ValidationBatches:
        """Rank ``rank``'s chunks, on ``device``: the single-process chunks dealt whole, round-robin
        (:func:`dealt_chunk`), so each chunk is scored exactly as one process scores it and a
        metric summed over ranks is the single-process one. A rank short of chunks gets empty
        ``(0, D)`` ones, so that all ranks take the same number of steps (each step is a DDP
        forward, which may broadcast buffers) and all reach the epoch's end, where the metric
        is synchronised."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of {world_size} ranks")
        sharded = copy.copy(self)
        sharded.rank, sharded.world_size = rank, world_size
        if torch.device(device) != self.split.table.device:
            sharded.split = self.split.to(device)
        return sharded

    def _chunks(self) -> int:
        return -(-self.split.table.n_rows // self.batch_size)

    def __len__(self) -> int:
        return -(-self._chunks() // self.world_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        dealt = 0
        for index, chunk in enumerate(self.split.chunks(self.batch_size)):
            if index % self.world_size == self.rank:
                dealt += 1
                yield chunk
        for _ in range(len(self) - dealt):
            yield tuple(t[:0] for t in chunk)  # (0, D) each: padding


class TableDataModule(L.LightningDataModule):
    """Prepared tables as a Lightning DataModule: ``train``, an optional validation split (with
    the truth of its hidden entries, for model selection) and an optional ``test`` table.

    The module decides how its tables are batched (its paper's batch size; VAEAC tops up the
    last batch; evaluation chunks bounded by its memory): every loader asks the trainer's
    module for its batches of the table (``train_batches``, ``val_batches``, ``predict_batches``),
    so one DataModule serves every model with each model's own batching. A model trained on
    complete data (the VSAE tables' rows marked †) gets ``train_complete``.
    """

    def __init__(
        self,
        train: Table | None = None,
        val: ValidationSplit | None = None,
        test: Table | None = None,
        train_complete: Table | None = None,
    ) -> None:
        super().__init__()
        self.train, self.validation, self.test, self._train_complete = train, val, test, train_complete

    def _ready(self) -> Table:
        if self.train is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before asking for its tables")
        return self.train

    @property
    def schema(self) -> FeatureSchema:
        return self._ready().schema

    @property
    def device(self) -> torch.device:
        return self._ready().device

    def complete_training_table(self) -> Table:
        if self._train_complete is None:
            raise ValueError(f"{type(self).__name__} has no complete training table for a model trained on complete data")
        return self._train_complete

    def training_table(self, module: object) -> Table:
        """The table ``module`` trains on: complete rows for a model trained on complete data."""
        return self.complete_training_table() if getattr(module, "trained_on_complete_data", False) else self._ready()

    def _module(self) -> object:
        module = self.trainer.lightning_module if self.trainer is not None else None
        if not hasattr(module, "train_batches"):
            raise TypeError(f"{type(self).__name__} batches its tables for an imputebench ImputerModule, got {type(module).__name__}")
        return module

    def train_dataloader(self) -> IndexBatches:
        module = self._module()
        return module.train_batches(self.training_table(module))

    def val_dataloader(self) -> ValidationBatches | list:
        return [] if self.validation is None else self._module().val_batches(self.validation)

    def predict_dataloader(self) -> Iterable:
        if self.test is None:
            raise ValueError(f"{type(self).__name__} has no test table to impute")
        return self._module().predict_batches(self.test)


class PreparedDataModule(TableDataModule):
    """The splits of a :class:`PreparedData` (one dataset, protocol, mask, seed): validation with its
    truth, the test split to impute, complete training rows drawn only when a model asks for them."""

    def __init__(self, data: PreparedData | None = None) -> None:
        super().__init__()
        self.data: PreparedData | None = None
        if data is not None:
            self._take(data)

    def _take(self, data: PreparedData) -> None:
        self.data, self.train, self.validation, self.test = data, data.train, data.validation, data.test

    def complete_training_table(self) -> Table:
        if self.data is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before asking for its tables")
        return self.data.train_complete


class TabularDataModule(PreparedDataModule):
    """One (dataset, protocol, mechanism, ratio, seed) cell as a Lightning DataModule.

    ``dataset`` is a :class:`Dataset` or a registered name (read from ``data_dir``, the mirror
    layout of ``imputebench data fetch``); ``setup`` splits, masks and transforms it once
    (:func:`~imputebench.data.prepare.prepare`) and moves the tables to ``device``.
    """

    def __init__(
        self,
        dataset: Dataset | str,
        protocol: str = "vsae",
        mechanism: str = "mcar",
        ratio: float = 0.5,
        seed: int = 0,
        data_dir: str | Path | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self.dataset, self.protocol = dataset, get_protocol(protocol)
        self.mechanism, self.ratio, self.seed = mechanism, ratio, seed
        self.data_dir, self.target_device = data_dir, device

    def setup(self, stage: str | None = None) -> None:
        if self.data is None:
            dataset = load_dataset(self.dataset, self.data_dir) if isinstance(self.dataset, str) else self.dataset
            self._take(prepare(dataset, self.protocol, self.mechanism, self.ratio, self.seed, self.target_device))
