"""What names a trial's Weights & Biases run, and the Lightning logger a trial trains with.

One W&B run per trial, its id the trial's store key, grouped by dataset / mechanism / ratio
(:mod:`imputebench.runner.tracking` explains who logs what to it). This module holds what both
a trial's worker (which logs its epochs while training, through Lightning's ``WandbLogger``) and
the sweep's driver (which adds the outcome) need, and imports W&B only when a run is started.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from imputebench.runner.trials import Trial

MODES = ("online", "offline")
#: what defines a trial, as both a :class:`Trial` and a store row name it
TRIAL_FIELDS = ("model", "dataset", "mechanism", "ratio", "seed", "protocol")


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


def wandb_module():
    """``wandb``, or a :class:`TrackingError` naming the install command."""
    try:
        import wandb
    except ImportError as err:
        raise TrackingError("W&B logging needs the wandb package: pip install 'imputebench[wandb]'") from err
    return wandb


def _field(trial: Trial | pd.Series, name: str):
    """One defining field of a trial or of a store row, as a plain Python value (W&B cannot serialise numpy's)."""
    value = getattr(trial, name) if isinstance(trial, Trial) else trial[name]
    return value.item() if hasattr(value, "item") else value


def trial_key(trial: Trial | pd.Series) -> str:
    """The trial's store key, its W&B run id."""
    return trial.key if isinstance(trial, Trial) else trial["config_hash"]


def trial_group(trial: Trial | pd.Series) -> str:
    """The W&B group of a trial: runs of one leaderboard cell side by side."""
    return f"{_field(trial, 'dataset')}/{_field(trial, 'mechanism')}/{float(_field(trial, 'ratio')):g}"


def trial_name(trial: Trial | pd.Series) -> str:
    model, dataset, mechanism, ratio, seed = (_field(trial, k) for k in ("model", "dataset", "mechanism", "ratio", "seed"))
    return f"{model} {dataset} {mechanism} {float(ratio):g} seed {int(seed)}"


def trial_config(trial: Trial | pd.Series, model_config: dict) -> dict:
    """What defines the trial: its key fields and the model's configuration."""
    return {**{k: _field(trial, k) for k in TRIAL_FIELDS}, "model_config": model_config}


def run_arguments(options: WandbOptions) -> dict:
    """``wandb.init`` arguments of every run: where it goes, and no console capture (the output of a
    process that runs a sweep is not one trial's)."""
    return {"project": options.project, "entity": options.entity, "mode": options.mode,
            "settings": wandb_module().Settings(console="off")}


def trial_run_arguments(trial: Trial | pd.Series, config: dict) -> dict:
    """``wandb.init`` arguments naming ``trial``'s run; ``resume="allow"``: every process adds to the same run."""
    return {"id": trial_key(trial), "resume": "allow", "name": trial_name(trial), "group": trial_group(trial),
            "job_type": "trial", "config": config}


def trial_logger(trial: Trial, options: WandbOptions, config: dict):
    """Lightning's ``WandbLogger`` on ``trial``'s run, started now: losses and validation scores reach
    W&B at the end of each epoch. Finish it with ``logger.experiment.finish()`` when the fit ends."""
    from lightning.pytorch.loggers import WandbLogger

    wandb = wandb_module()
    # save_dir None: W&B's own folder (WANDB_DIR), where the driver's additions to the run go too
    logger = WandbLogger(save_dir=None, **run_arguments(options), **trial_run_arguments(trial, config))
    try:
        logger.experiment  # noqa: B018 - starts the run, so that a W&B failure shows before training
    except wandb.errors.Error as err:
        raise TrackingError(f"W&B could not start a run ({options.mode}): {err}") from None
    return logger
