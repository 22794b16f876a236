"""The shared Lightning base of every deep imputer.

A model subclasses :class:`ImputerModule`, declares a frozen ``Config``
dataclass (extending :class:`TrainingConfig`) and writes three methods, top to
bottom beside its paper: ``build(schema)`` (networks), ``loss(x, observed)``
(the negative objective and its parts) and ``impute_batch(x, observed)`` (one
imputation draw). The base owns the rest of what the module declares: networks
built in ``setup()`` from the DataModule's schema (so a model is constructed
without data), Adam, its batching of the tables by index on the device,
epoch-level logging of the loss parts and of the validation score, multiple
imputation and its pooling. The Trainer and its callbacks run the fit: the best
epoch's selection, early stopping and the divergence check are callbacks
(:mod:`imputebench.models.callbacks`), configured by :mod:`imputebench.models.training`
or by the user::

    dm = TabularDataModule("yeast", mechanism="mcar", ratio=0.5, data_dir=...)
    model = get_model("vaeac")(seed=0)
    L.Trainer(max_epochs=20, callbacks=selection_callbacks(model)).fit(model, datamodule=dm)
    imputed = model.impute(dm)  # the test split, or trainer.predict(model, datamodule=dm)

Adversarial models (GAIN, MisGAN) have several players, each minimising its own
part of ``loss`` with its own Adam: they name them in :meth:`ImputerModule.players`
and write ``training_step`` as their paper's update schedule over
:meth:`ImputerModule.step_players`, recording each evaluation with
:meth:`ImputerModule.record`, so that logging, divergence detection and model
selection stay the base's.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import lightning as L
import torch

from imputebench.data.datamodule import IndexBatches, TableDataModule, ValidationBatches, dealt_chunk
from imputebench.data.table import Table, ValidationSplit
from imputebench.errors import DivergedError
from imputebench.models.config_check import resolve_config
from imputebench.models.config_types import Count, PixelLikelihood, PositiveFloat
from imputebench.models.distributed import Distribution, rank_seed
from imputebench.models.imputer import Imputer
from imputebench.models.training import FitRecord, trainer_for
from imputebench.nn.layout import SchemaLayout
from imputebench.schema import FeatureSchema
from imputebench.selection import SelectionError

FUSED_ADAM_DEVICES = ("cpu", "cuda", "mps")


@dataclass(frozen=True)
class TrainingConfig:
    """Training fields every deep model shares (VSAE appendix B.3; long version appendix D)."""

    lr: PositiveFloat = 1e-3  # Adam learning rate; per-family presets in configs/training.yaml
    batch_size: Count = 64  # not stated in the VSAE paper; the common choice of its baselines' code
    max_epochs: Count = 1000  # "find a best model in 1000 epochs"
    patience: Count = 100  # epochs without a better validation error before stopping (ours)
    n_imputations: Count = 10  # k draws pooled into the reported single imputation (VAEAC 5.1: 10)
    eval_rows: Count = 16384  # rows x draws per forward pass when imputing (memory bound only)
    fill_last_batch: bool = False  # top a short last training batch up to batch_size (IndexBatches)
    pixel_likelihood: PixelLikelihood = "bernoulli"  # images only: "bernoulli" (cross-entropy) or "gaussian" (squared error)


@dataclass(frozen=True)
class Player:
    """One optimiser's share of a model: the parameters it trains and its Adam settings."""

    parameters: list[torch.nn.Parameter]
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)  # torch's (and TensorFlow's) Adam defaults

    def adam(self) -> torch.optim.Adam:
        """Adam with the fused kernel where torch has one: a single pass over every parameter instead
        of about ten elementwise kernels per tensor, which took a fifth of a VAEAC step on one CPU thread."""
        fused = all(p.device.type in FUSED_ADAM_DEVICES for p in self.parameters)
        return torch.optim.Adam(self.parameters, lr=self.lr, betas=self.betas, fused=fused or None)


class ImputerModule(L.LightningModule, Imputer):
    """Base of the deep imputers: a LightningModule that fulfils the :class:`Imputer` contract."""

    Config: ClassVar[type[TrainingConfig]] = TrainingConfig
    #: False for deterministic models (AE): one draw is the imputation
    stochastic: ClassVar[bool] = True
    #: take configs/training.yaml's per-family learning rate and epochs (the VSAE paper's
    #: settings for the models it trains); False keeps the model's own paper's defaults
    uses_family_presets: ClassVar[bool] = True
    #: exceptions a DDP rank raises at the same point as every other rank (the divergence check
    #: reads epoch means summed over ranks), brought back to the main process with their type
    carried_errors: ClassVar[tuple[type[BaseException], ...]] = (DivergedError,)

    #: the validation score this model logs each epoch and is selected on (lower is better)
    monitor: ClassVar[str] = "val_error"

    def __init__(self, seed: int = 0, **config: object) -> None:
        L.LightningModule.__init__(self)
        Imputer.__init__(self, seed)
        self.cfg = self.Config(**resolve_config(type(self), config))  # checked: a clear error, not a late crash
        self.schema: FeatureSchema | None = None
        #: the epoch history and best epoch of the last :meth:`fit` (a user's own ``trainer.fit`` reads
        #: them from its callbacks and loggers)
        self.last_fit: FitRecord | None = None
        self.distribution = Distribution()
        # One optimiser and one backward per step: stepping it ourselves (through Lightning's
        # optimiser wrapper, so precision and strategy plugins still apply) skips the closure
        # machinery of automatic optimisation, ~60 us per step (benchmarks/README.md).
        self.automatic_optimization = False

    # --- what a model writes -----------------------------------------------------------
    @abstractmethod
    def build(self, schema: FeatureSchema) -> None:
        """Create the networks for ``schema`` (called once, from :meth:`setup`)."""

    @abstractmethod
    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"loss": scalar to minimise, ...parts to log}`` for a batch ``(b, D)``, hidden entries 0."""

    @abstractmethod
    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """One imputation draw ``(b, D)`` (means for numeric columns, one-hot modes for categories)."""

    # --- the Imputer contract -----------------------------------------------------------------
    @classmethod
    def config_fields(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls.Config))

    def config(self) -> dict:
        return asdict(self.cfg)

    def training_summary(self) -> dict[str, float]:
        return self.last_fit.summary() if self.last_fit is not None else {}

    def epoch_history(self) -> list[dict[str, float]]:
        return [dict(epoch) for epoch in self.last_fit.epochs] if self.last_fit is not None else []

    def build_networks(self, schema: FeatureSchema) -> ImputerModule:
        """Seed, then create the schema views and the networks: the untrained model a fit starts from."""
        torch.manual_seed(self.seed)
        self.schema = schema
        self.layout = SchemaLayout(schema)
        self.selection = SelectionError(schema)
        self.build(schema)
        return self

    def distribute(self, distribution: Distribution) -> ImputerModule:
        """Train with ``distribution`` (devices and strategy) from the next :meth:`fit` on; one
        device by default. Under DDP each rank steps on its own ``batch_size`` rows, so the
        effective batch is ``devices x batch_size`` (see :mod:`imputebench.models.distributed`)."""
        if distribution.distributed and type(self).players is not ImputerModule.players:
            # Each player's backward reaches its own parameters only, and DDP's reducer waits for
            # the gradients of every parameter after each backward: the ranks would never sync.
            raise ValueError(f"{self.name}: adversarial models (one optimiser per player) cannot train with --strategy ddp")
        self.distribution = distribution
        return self

    def setup(self, stage: str) -> None:
        """Build the networks from the trainer's DataModule (see :meth:`build_for`)."""
        self.build_for(self.trainer.datamodule if self._trainer is not None else None)

    def build_for(self, datamodule: TableDataModule | None) -> ImputerModule:
        """Build the networks from ``datamodule``'s schema and take the statistics of the table this
        model trains on; once: a second ``trainer.fit`` goes on training them."""
        if self.schema is not None:
            return self
        if not isinstance(datamodule, TableDataModule):
            raise TypeError(
                f"{self.name}: train with an imputebench DataModule, e.g. "
                f"trainer.fit(model, datamodule=TabularDataModule('yeast', mechanism='mcar', ratio=0.5)); got {datamodule!r}"
            )
        datamodule.setup("fit")
        train = datamodule.training_table(self)
        self.read_table_transform(train)
        self.build_networks(datamodule.schema)
        self.fit_statistics(train)
        return self

    def fit(self, train: Table, val: ValidationSplit | None = None) -> ImputerModule:
        """Train from scratch on ``train`` (``val`` for model selection): the runner's trainer
        (:func:`~imputebench.models.training.trainer_for`) fitted on a DataModule of these tables."""
        self.schema, self.last_fit = None, None  # a refit starts afresh
        datamodule = TableDataModule(train, val, train_complete=train)  # ``train`` whatever the model's kind
        self.last_fit = trainer_for(self, datamodule).fit(self, datamodule)
        return self

    def read_table_transform(self, train: Table) -> None:
        """What a model's networks are built from besides the schema, read from its training table
        before :meth:`build_networks` (HI-VAE's per-feature ``(m, sd)``); nothing by default."""

    def fit_statistics(self, train: Table) -> None:
        """Statistics a model keeps from its training table beside its networks (GAIN's [0, 1]
        scaling), set after :meth:`build_networks` and before training; none by default."""

    def epoch_budget(self, batches_per_epoch: int) -> tuple[int, int]:
        """``(max_epochs, patience)`` of a fit whose epochs take ``batches_per_epoch`` steps. A model
        may declare ``patience: int | None``: None trains every epoch (the best one is still kept)."""
        max_epochs, patience = self.epochs_for(batches_per_epoch), self.cfg.patience
        return max_epochs, max_epochs if patience is None else patience

    def epochs_for(self, batches_per_epoch: int) -> int:
        """The epoch budget: the configuration's; a model whose authors count iterations (GAIN)
        converts them here."""
        return self.cfg.max_epochs

    # --- how the tables are batched: the DataModule asks -----------------------------------------
    def train_batches(self, table: Table) -> IndexBatches:
        """Shuffled training batches of ``batch_size`` rows by index, seeded by the model's seed; the
        last one topped up where the model's authors do (``fill_last_batch``)."""
        return IndexBatches(
            table, self.cfg.batch_size, shuffle=True, seed=self.seed, min_rows=2, fill_last=self.cfg.fill_last_batch
        )  # min_rows: batch normalisation needs two rows

    def val_batches(self, split: ValidationSplit) -> ValidationBatches:
        """Validation chunks of ``eval_rows`` rows x draws, in order."""
        return ValidationBatches(split, max(1, self.cfg.eval_rows // self._draws()))

    def predict_batches(self, table: Table) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The ``(x, observed)`` chunks :meth:`impute` pools, for ``trainer.predict``."""
        return _Chunks(table, max(1, self.cfg.eval_rows // self._draws()))

    @torch.no_grad()
    def impute(self, table: Table | TableDataModule) -> torch.Tensor:
        """The single imputation of ``table`` (a DataModule: its test split): mean (numeric) / mode
        (categorical) over ``n_imputations`` draws, pooled chunk by chunk (the ``k`` draws of a
        whole image split would not fit). ``(n, D)``."""
        if isinstance(table, TableDataModule):
            table.setup("predict")
            table = table.test
        return self._over_chunks(table, self._draws(), self._pooled, 0)

    def _pooled(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """One chunk's single imputation ``(b, D)``, observed entries kept."""
        return torch.where(observed, x, self.pool(self._draw(x, observed, self._draws())))

    @torch.no_grad()
    def impute_multiple(self, table: Table, k: int) -> torch.Tensor:
        """``(k, n, D)`` imputations of ``table``, observed entries unchanged; reproducible per seed."""
        return self._over_chunks(table, k, lambda x, observed: torch.where(observed, x, self._draw(x, observed, k)), 1)

    def _over_chunks(self, table: Table, k: int, fn, dim: int) -> torch.Tensor:
        """``fn(x, observed)`` over row chunks of ``table`` of ``eval_rows // k`` rows (``k`` samples per
        row), concatenated along ``dim``; in eval mode, seeded by the model's seed."""
        self.eval()
        devices = [table.device] if table.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed + 1)
            parts = [fn(x, observed) for x, observed in _Chunks(table, max(1, self.cfg.eval_rows // k))]
        return torch.cat(parts, dim=dim)

    # --- trainer.predict: the same chunks and random stream as impute() --------------------------------
    def on_predict_start(self) -> None:
        self._rng_before_predict = torch.random.get_rng_state(), (torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None)
        torch.manual_seed(self.seed + 1)

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One chunk of the single imputation :meth:`impute` gives ``(b, D)``; concatenated in
        order, ``trainer.predict``'s list equals ``impute`` of the DataModule's test split."""
        return self._pooled(*batch)

    def on_predict_end(self) -> None:
        cpu, cuda = self._rng_before_predict
        torch.random.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)

    @torch.no_grad()
    def impute_from_nothing(self, n: int) -> torch.Tensor:
        """``n`` imputation draws of rows with every feature missing: generation by models
        whose prior is conditional (CVAE w/ data, VAEAC). ``(n, D)``."""
        self.eval()
        device = next(self.parameters()).device
        empty = torch.zeros(n, self.schema.encoded_dim, dtype=torch.bool, device=device)
        return self.impute_batch(torch.zeros(n, self.schema.encoded_dim, device=device), empty)

    def pool(self, draws: torch.Tensor) -> torch.Tensor:
        """``(k, n, D)`` -> ``(n, D)``: mean of numeric columns, majority category of one-hot blocks."""
        return self.layout.argmax_one_hot(draws.mean(0))

    def _draws(self) -> int:
        return self.cfg.n_imputations if self.stochastic else 1

    def _draw(self, x: torch.Tensor, observed: torch.Tensor, k: int) -> torch.Tensor:
        """``k`` draws for every row, ``eval_rows`` rows x draws per forward pass. ``(k, n, D)``."""
        x = x * observed
        chunk = max(1, self.cfg.eval_rows // k)
        parts = []
        for xs, os in zip(x.split(chunk), observed.split(chunk)):
            b = xs.shape[0]
            out = self.impute_batch(xs.repeat(k, 1), os.repeat(k, 1))  # (k*b, D)
            parts.append(out.view(k, b, -1))
        return torch.cat(parts, dim=1)

    # --- Lightning hooks ---------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        """Under DDP, a random stream per rank: spawned ranks start from the main process's state,
        and identical streams would draw the same noise for every rank's rows."""
        if self.trainer.world_size > 1:
            torch.manual_seed(rank_seed(self.seed, self.global_rank))

    def sum_over_ranks(self, *values: float | torch.Tensor) -> list[float]:
        """``values`` (each rank's share of an epoch's sums) summed over the ranks of a DDP fit, so
        that every rank logs and selects on the same numbers; as they are in one process."""
        if self.trainer.world_size == 1:
            return [float(v) for v in values]
        stacked = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)  # (len(values),)
        return self.trainer.strategy.reduce(stacked, reduce_op="sum").tolist()

    def validation_chunk(self, batch_idx: int) -> int:
        """The single-process index of this rank's validation batch ``batch_idx``, for randomness
        that must follow the rows rather than the rank (VAEAC's seeded validation)."""
        return dealt_chunk(batch_idx, self.global_rank, self.trainer.world_size)

    def players(self) -> dict[str, Player]:
        """Loss part -> the :class:`Player` (parameters, Adam) that minimises it. A likelihood model
        has one, ``"loss"``, training every parameter; an adversarial model names one per network
        (its parts of :meth:`loss`), and its players partition the parameters."""
        return {"loss": Player(list(self.parameters()), self.cfg.lr)}

    def configure_optimizers(self) -> torch.optim.Optimizer | list[torch.optim.Optimizer]:
        """One Adam per player, in :meth:`players` order (a single optimiser for a single player)."""
        self._players = self.players()
        self._player_index = {name: i for i, name in enumerate(self._players)}
        optimizers = [player.adam() for player in self._players.values()]
        return optimizers[0] if len(optimizers) == 1 else optimizers

    def on_train_epoch_start(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def record(self, parts: dict[str, torch.Tensor]) -> None:
        """Add one training evaluation's loss parts to the epoch's sums, kept on the device and read
        once per epoch (:meth:`on_train_epoch_end` logs each part's mean over the evaluations that
        gave it, and checks that all are finite). Parts may come from different passes, as a
        GAN's critics and generators do."""
        for name, value in parts.items():
            self._sums[name] = self._sums.get(name, 0.0) + value.detach()
            self._counts[name] = self._counts.get(name, 0) + 1

    def training_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The loss of a training batch as :meth:`fit` computes it: hidden entries zeroed,
        the parts recorded for the epoch's log."""
        x, observed = batch
        parts = self.loss(x * observed, observed)
        self.record(parts)
        return parts["loss"]

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.training_loss(batch)
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        return loss.detach()

    def step_players(self, parts: dict[str, torch.Tensor], names: Sequence[str]) -> None:
        """One optimiser step of each named player on its part of ``parts``, in order.

        Each backward reaches that player's parameters only (``inputs``), so one forward pass can
        serve several players; the graph is kept until the last of them has its gradients.
        """
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for i, name in enumerate(names):
            optimizer = optimizers[self._player_index[name]]
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(parts[name], inputs=self._players[name].parameters, retain_graph=i < len(names) - 1)
            optimizer.step()

    def _epoch_means(self) -> dict[str, float]:
        """Each recorded part's mean over the epoch's evaluations (of every rank, under DDP)."""
        names = list(self._sums)
        totals = self.sum_over_ranks(*(self._sums[name] for name in names), *(self._counts[name] for name in names))
        return {name: total / count for name, total, count in zip(names, totals, totals[len(names) :])}

    def on_train_epoch_end(self) -> None:
        """Log each loss part's epoch mean as ``train_<part>``: what the divergence check, the
        selection without a validation split and the loggers read."""
        self.log_dict({f"train_{name}": value for name, value in self._epoch_means().items()})

    def on_validation_epoch_start(self) -> None:
        self.selection.reset()

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        """Score one chunk's pooled imputation. A chunk of no rows is a DDP rank's padding
        (``ValidationBatches.shard``), which not every model's networks accept: a model that
        writes its own validation step must accept it too."""
        x, observed, truth = batch
        if not len(x):  # nothing to score, but every rank's metric has been updated when it syncs
            self.selection.update(x, truth, observed)
            return
        draws = self._draw(x, observed, self._draws())  # (k, b, D)
        imputed = torch.where(observed, x, self.pool(draws))
        self.selection.update(imputed, truth, observed)

    def on_validation_epoch_end(self) -> None:
        self.log(self.monitor, float(self.selection.compute()))


class _Chunks:
    """``(x, observed)`` of consecutive ``size``-row slices of a table, in order (an iterable, as
    Lightning takes a loader; a list would read as several loaders)."""

    def __init__(self, table: Table, size: int) -> None:
        self.table, self.size = table, size

    def __len__(self) -> int:
        return -(-self.table.n_rows // self.size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.table.chunks(self.size)
