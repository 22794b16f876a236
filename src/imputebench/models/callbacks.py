"""Callbacks of a fit: the papers' model selection and the divergence check, for any ``Trainer``.

The papers select "the best model on the validation set" (VSAE appendix B.3; VAEAC A.2 by
validation IWAE): :class:`BestWeights` keeps that epoch's weights in memory and loads them
when the fit ends. Writing a checkpoint file per improvement, as ``ModelCheckpoint`` does,
costs more than an epoch of a small table; a user who wants files adds ``ModelCheckpoint``.
Early stopping is Lightning's own ``EarlyStopping`` on the same score (the patience is ours,
to save time; the papers train a fixed budget). :class:`StopOnDivergence` ends a fit whose
training loss is no longer finite with :class:`~imputebench.errors.DivergedError`, which the
runner stores as a ``diverged`` trial.

Both are "monitoring" callbacks in Lightning's sense (a ``Checkpoint`` and an
``EarlyStopping``): Lightning calls their ``on_train_epoch_end`` after the module's, where the
epoch's training losses are logged, and after the epoch's validation, so they see both.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint, EarlyStopping

from imputebench.errors import DivergedError


class BestWeights(Checkpoint):
    """Keep the weights of the epoch with the lowest ``monitor`` (in memory) and load them at the end of the fit.

    ``best_epoch`` and ``best_score`` say which epoch that was; -1 and inf until one is scored.
    Its :meth:`state_dict` holds those two, so a DDP fit brings them back from its rank 0.
    """

    def __init__(self, monitor: str) -> None:
        super().__init__()
        self.monitor = monitor
        self.best_score, self.best_epoch = math.inf, -1
        self._weights: dict | None = None
        self._state_key = f"{type(self).__name__}[monitor={monitor}]"

    @property
    def state_key(self) -> str:
        """Built once: Lightning reads it at every hook of every step."""
        return self._state_key

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.best_score, self.best_epoch, self._weights = math.inf, -1, None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        score = float(trainer.callback_metrics[self.monitor])
        if score < self.best_score:  # strictly better: the earliest of equal epochs is kept
            self.best_score, self.best_epoch = score, trainer.current_epoch
            self._weights = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Load the best epoch's weights in the process that trained: under DDP's spawned ranks,
        the weights that reach the main process are rank 0's at this point."""
        if self._weights is not None:
            pl_module.load_state_dict(self._weights)

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best_score": self.best_score, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score, self.best_epoch = state_dict["best_score"], state_dict["best_epoch"]


class StopOnDivergence(EarlyStopping):
    """Raise :class:`DivergedError` at the end of an epoch whose logged training loss parts
    (``train_<part>``, epoch means over every rank) are not all finite.

    Lightning's ``EarlyStopping(check_finite=True)`` would stop such a fit quietly and keep its
    last finite weights: a diverged trial must be stored as such, not scored.
    """

    def __init__(self, prefix: str = "train_") -> None:
        super().__init__(monitor=f"{prefix}loss", check_finite=True, patience=0)
        self.prefix = prefix

    @property
    def state_key(self) -> str:
        return "StopOnDivergence"

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logged = {name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith(self.prefix)}
        diverged = sorted(name.removeprefix(self.prefix) for name, value in logged.items() if not math.isfinite(value))
        if diverged:
            name = getattr(pl_module, "name", type(pl_module).__name__)
            raise DivergedError(f"{name}: non-finite training loss ({', '.join(diverged)}) at epoch {trainer.current_epoch}")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Nothing: the training losses are checked once per epoch, above."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Stateless."""
