"""How a deep imputer is trained: a Lightning ``Trainer`` with the papers' selection callbacks.

There is one training path. ``imputebench run``, :meth:`ImputerModule.fit` and a user's own
script all call ``trainer.fit(model, datamodule=...)``; the runner's trainer is the one
:func:`trainer_for` builds, with

* the epoch budget of the model's configuration (``max_epochs``; GAIN converts its authors'
  iterations into epochs of the training table) and, unless the model trains every epoch
  (``patience: None``), Lightning's ``EarlyStopping`` after ``patience`` epochs without a
  better score;
* :class:`~imputebench.models.callbacks.BestWeights` on the model's validation score
  (``val_error``; VAEAC's ``val_iwae``), or on the training loss without a validation split;
* :class:`~imputebench.models.callbacks.StopOnDivergence`;
* :class:`~imputebench.models.history.EpochHistory` beside any logger given (W&B, CSV, ...).

A user who builds their own ``Trainer`` may take :func:`selection_callbacks` or replace any of them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.loggers import Logger

from imputebench.models.callbacks import BestWeights, StopOnDivergence
from imputebench.models.history import EpochHistory

#: True inside :func:`lightning_output` (``imputebench run --verbose``): fits keep Lightning's own messages
_LIGHTNING_VERBOSE: ContextVar[bool] = ContextVar("lightning_verbose", default=False)


@contextmanager
def lightning_output(verbose: bool) -> Iterator[None]:
    """Let the fits inside this block print Lightning's messages (``verbose``) or keep them quiet (default)."""
    token = _LIGHTNING_VERBOSE.set(verbose)
    try:
        yield
    finally:
        _LIGHTNING_VERBOSE.reset(token)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning announces devices and hints on every fit; a sweep runs thousands of fits."""
    if _LIGHTNING_VERBOSE.get():
        yield
        return
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"lightning\..*")
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")  # epoch-level logs only
            # under DDP: what is logged is already summed over ranks (ImputerModule.sum_over_ranks)
            warnings.filterwarnings("ignore", message=r".*sync_dist=True.*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def selection_callbacks(model: L.LightningModule, validated: bool = True, patience: int | None = None) -> list[Callback]:
    """The papers' selection of the best epoch (:class:`BestWeights` on the model's validation
    score, or on its training loss when ``validated`` is False), early stopping after
    ``patience`` epochs without a better score (None: none), and the divergence check."""
    monitor = model.monitor if validated else "train_loss"
    callbacks: list[Callback] = [BestWeights(monitor), StopOnDivergence()]
    if patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode="min", patience=patience, min_delta=0.0, check_finite=False))
    return callbacks


@dataclass(frozen=True)
class FitRecord:
    """What a fit leaves beside the weights: one row per trained epoch (``train_<part>`` means and
    the validation score) and the epoch whose weights were kept, with its score."""

    epochs: list[dict[str, float]]
    best_epoch: int
    best_score: float

    def summary(self) -> dict[str, float]:
        """Epochs trained and the epoch whose weights were kept (both counted from 0)."""
        return {"epochs": len(self.epochs), "best_epoch": self.best_epoch}


@dataclass
class Training:
    """A trainer built by :func:`trainer_for` and the callback and logger its record comes from."""

    trainer: L.Trainer
    history: EpochHistory
    best: BestWeights

    def fit(self, model: L.LightningModule, datamodule: L.LightningDataModule) -> FitRecord:
        """``trainer.fit(model, datamodule=datamodule)``, quietly; the fit's record. The model is
        left in eval mode with its best epoch's weights."""
        with quiet_lightning():
            self.trainer.fit(model, datamodule=datamodule)
        model.eval()
        return FitRecord(self.history.rows, self.best.best_epoch, self.best.best_score)


def trainer_for(
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    loggers: Sequence[Logger] = (),
    callbacks: Sequence[Callback] = (),
    max_epochs: int | None = None,
) -> Training:
    """The runner's trainer for ``model`` on ``datamodule``: quiet, on the data's device (or the
    model's :class:`~imputebench.models.distributed.Distribution`), the model's epoch budget
    (``max_epochs`` overrides it), :func:`selection_callbacks` and ``callbacks``, and
    :class:`EpochHistory` beside ``loggers``. Builds the model's networks for ``datamodule`` (which
    its ``setup`` would do) first: the epoch budget counts its batches, and under DDP every spawned
    rank starts from these weights and the main process takes rank 0's back into them."""
    model.build_for(datamodule)
    batches = len(model.train_batches(datamodule.training_table(model)))
    budget, patience = model.epoch_budget(batches)
    history = EpochHistory()
    selection = selection_callbacks(model, validated=datamodule.validation is not None, patience=patience)
    with quiet_lightning():  # Lightning announces the devices when it builds a trainer
        trainer = L.Trainer(
            **model.distribution.trainer_arguments(datamodule.device, quiet_lightning),
            max_epochs=budget if max_epochs is None else max_epochs,
            logger=[history, *loggers],
            callbacks=[*selection, *callbacks],
            enable_checkpointing=True,  # BestWeights is the checkpoint: in memory, no files
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=None if datamodule.validation is not None else 0,  # nothing to validate
        )
    return Training(trainer, history, next(cb for cb in selection if isinstance(cb, BestWeights)))
