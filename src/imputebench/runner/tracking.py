"""Weights & Biases logging of stored trials: one W&B run per trial.

A trial's W&B run id is its store key (``config_hash``), so everything logged about one trial lands in
one run, whichever command logs it and however often (``resume="allow"``). Runs are grouped by
dataset / mechanism / ratio, the cells a leaderboard compares. W&B is optional (``pip install
'imputebench[wandb]'``) and imported only when logging is asked for. The API key is W&B's own
business (``wandb login`` or ``WANDB_API_KEY``): nothing here reads, stores or prints it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from imputebench.runner.store import row_config

MODES = ("online", "offline")


class TrackingError(RuntimeError):
    """W&B is missing, misconfigured or unreachable; stored results are unaffected."""


@dataclass(frozen=True)
class WandbOptions:
    """Where runs go: ``mode="offline"`` writes them under W&B's directory (``WANDB_DIR``) with no network."""

    project: str = "imputebench"
    entity: str | None = None
    mode: str = "online"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"W&B mode {self.mode!r}: choose one of {', '.join(MODES)}")


def _wandb():
    try:
        import wandb
    except ImportError as err:
        raise TrackingError("W&B logging needs the wandb package: pip install 'imputebench[wandb]'") from err
    return wandb


def trial_group(row: pd.Series) -> str:
    """The W&B group of a stored trial: runs of one leaderboard cell side by side."""
    return f"{row['dataset']}/{row['mechanism']}/{float(row['ratio']):g}"


def trial_name(row: pd.Series) -> str:
    return f"{row['model']} {row['dataset']} {row['mechanism']} {float(row['ratio']):g} seed {int(row['seed'])}"


def trial_config(row: pd.Series) -> dict:
    """What defines the trial (the store's key fields and the model configuration)."""
    keys = ("model", "dataset", "mechanism", "ratio", "seed", "protocol")
    return {**{k: row[k].item() if hasattr(row[k], "item") else row[k] for k in keys}, "model_config": row_config(row)}


def log_pictures(row: pd.Series, pictures: dict[str, Path], options: WandbOptions) -> str:
    """Log one trial's pictures (kind -> PNG file) as images ``pictures/<kind>`` of its W&B run; returns the run id."""
    wandb = _wandb()
    try:
        run = wandb.init(
            project=options.project,
            entity=options.entity,
            mode=options.mode,
            id=row["config_hash"],
            resume="allow",
            name=trial_name(row),
            group=trial_group(row),
            job_type="trial",
            config=trial_config(row),
        )
    except wandb.errors.Error as err:
        raise TrackingError(f"W&B could not start a run ({options.mode}): {err}") from None
    with run:
        run.log({f"pictures/{kind}": wandb.Image(str(path), caption=path.stem) for kind, path in pictures.items()})
    return run.id
