"""A Lightning logger that keeps a fit's per-epoch metrics in memory: the history a result row stores.

Lightning hands every logger the epoch's logged metrics (``train_<part>`` from
``on_train_epoch_end``, the validation score from ``on_validation_epoch_end``) with the epoch
number; this one merges them into one row per epoch. The runner attaches it beside the user's
or W&B's logger, so the stored history and the dashboards come from the same calls.
"""

from __future__ import annotations

from argparse import Namespace
from typing import Any

from lightning.pytorch.loggers import Logger


class EpochHistory(Logger):
    """``rows``: one ``{"epoch": e, "train_loss": ..., "val_error": ...}`` per epoch trained, in order."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[int, dict[str, float]] = {}

    @property
    def name(self) -> str:
        return "history"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Nothing: a row's configuration is stored beside its history."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if "epoch" not in metrics:  # only epoch-level logs carry the epoch (all of ours are)
            return
        epoch = int(metrics["epoch"])
        row = self._rows.setdefault(epoch, {"epoch": epoch})
        row.update((name, float(value)) for name, value in metrics.items() if name != "epoch")

    @property
    def rows(self) -> list[dict[str, float]]:
        return [dict(self._rows[epoch]) for epoch in sorted(self._rows)]

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rows = {int(row["epoch"]): dict(row) for row in state["rows"]}
