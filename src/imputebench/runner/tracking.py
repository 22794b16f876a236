"""Weights & Biases logging of trials: one W&B run per trial, and one per sweep for its leaderboard.

A trial's W&B run id is its store key (``config_hash``), so everything logged about one trial lands in
one run, whichever command logs it and however often (``resume="allow"``): a sweep logs each trial as
it ends (:class:`SweepTracker`), ``imputebench plot --wandb`` adds pictures later (:func:`log_pictures`).
Runs are grouped by dataset / mechanism / ratio, the cells a leaderboard compares. W&B is optional
(``pip install 'imputebench[wandb]'``) and imported only when logging is asked for, in the process that
logs (a sweep's driver, never its trial workers). The API key is W&B's own business (``wandb login`` or
``WANDB_API_KEY``): nothing here reads, stores or prints it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from imputebench.models.registry import UnknownNameError
from imputebench.runner.pictures import plot_dir_for, plot_store
from imputebench.runner.store import ResultRow, ResultStore, StoreError, row_config
from imputebench.runner.trials import Trial
from imputebench.runner.worker import models_dir_for

MODES = ("online", "offline")
#: what defines a trial, as both a :class:`Trial` and a store row name it
TRIAL_FIELDS = ("model", "dataset", "mechanism", "ratio", "seed", "protocol")
#: the prefixes of a model's epoch history (``train_<part>``, ``val_<score>``), charted against the epoch
HISTORY_PREFIXES = ("train", "val")


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


def result_summary(row: ResultRow) -> dict:
    """A trial's outcome for its run's summary: status and reason (``None`` too, so that a rerun that
    succeeds clears a failed attempt's reason), cost, and the final metrics as ``metrics/<name>``
    (the store's ``metric.<name>`` columns)."""
    outcome = {"status": row.status, "reason": row.reason, "attempt": getattr(row, "attempt", 1), "wall_time_s": row.wall_time_s,
               "peak_rss_mb": row.peak_rss_mb, "n_params": row.n_params, "hardware": row.hardware}
    return {**outcome, **{f"metrics/{name}": value for name, value in row.metrics.items()}}


def history_step(entry: dict) -> dict:
    """One epoch of a model's history as W&B keys: ``train_kl`` -> ``train/kl``, ``val_error`` -> ``val/error``,
    so that W&B's panels group a run's training parts and its validation score."""
    return {"epoch": entry["epoch"], **{k.replace("_", "/", 1): v for k, v in entry.items() if k != "epoch"}}


def sweep_id(keys: Iterable[str]) -> str:
    """The leaderboard run of a sweep: the same trials (in any order) give the same run, so a rerun that
    resumes a sweep updates its table instead of adding a second leaderboard."""
    digest = hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()[:16]
    return f"leaderboard-{digest}"


def _init(options: WandbOptions, **run: object):
    """Start a W&B run. Its console capture is off: the logging process's output is not the trial's
    (which ran before, possibly in another process)."""
    wandb = _wandb()
    try:
        return wandb.init(project=options.project, entity=options.entity, mode=options.mode,
                          settings=wandb.Settings(console="off"), **run)
    except wandb.errors.Error as err:
        raise TrackingError(f"W&B could not start a run ({options.mode}): {err}") from None


def _trial_run(trial: Trial | pd.Series, options: WandbOptions, config: dict):
    return _init(options, id=trial_key(trial), resume="allow", name=trial_name(trial), group=trial_group(trial),
                 job_type="trial", config=config)


@contextmanager
def _finishing(run, exit_code: int = 0) -> Iterator:
    """Finish ``run`` whatever happens while logging to it; a W&B failure becomes a :class:`TrackingError`."""
    wandb = _wandb()
    try:
        yield run
    except wandb.errors.Error as err:
        raise TrackingError(f"W&B could not log to run {run.id}: {err}") from None
    finally:
        run.finish(exit_code=exit_code)


def _images(pictures: dict[str, Path]) -> dict:
    wandb = _wandb()
    return {f"pictures/{kind}": wandb.Image(str(path), caption=path.stem) for kind, path in pictures.items()}


def log_pictures(row: pd.Series, pictures: dict[str, Path], options: WandbOptions) -> str:
    """Log one stored trial's pictures (kind -> PNG file) as images ``pictures/<kind>`` of its W&B run; returns the run id."""
    run = _trial_run(row, options, trial_config(row, row_config(row)))
    with _finishing(run):
        run.log(_images(pictures))
    return run.id


class SweepTracker:
    """Logs a sweep to W&B from its driver process: each trial's run as the trial ends, then the leaderboard.

    Call :meth:`trial_finished` after the trial's row is written to the store (its pictures are drawn
    from the stored row and weights), and :meth:`sweep_finished` once the sweep's leaderboard is made.
    A :class:`TrackingError` from either leaves the store as it is.
    """

    def __init__(self, options: WandbOptions, store: Path, data_dir: Path | None = None, columns: int = 8) -> None:
        _wandb()  # a missing package fails before the sweep, not after its first trial
        self.options, self.store, self.data_dir, self.columns = options, Path(store), data_dir, columns

    def trial_finished(self, row: ResultRow) -> str:
        """Log one trial's run (config, per-epoch history, outcome, pictures of an image trial), finished
        with exit code 1 unless the trial is ``ok``; returns the run id (the trial's key)."""
        config = {**trial_config(row.trial, row.config), "attempt": getattr(row, "attempt", 1)}
        run = _trial_run(row.trial, self.options, config)
        with _finishing(run, exit_code=0 if row.status == "ok" else 1):
            for prefix in HISTORY_PREFIXES:
                run.define_metric(f"{prefix}/*", step_metric="epoch")  # epochs, not steps: a resumed run's steps go on
            for entry in row.history:
                run.log(history_step(entry))
            run.summary.update(result_summary(row))
            pictures = self._pictures(row)
            if pictures:
                run.log(_images(pictures))
        return run.id

    def _pictures(self, row: ResultRow) -> dict[str, Path]:
        """The pictures of an ``ok`` image trial whose weights were kept, drawn as ``imputebench plot`` draws
        them (into ``<store>.plots``) from the stored row; none for other trials."""
        if row.status != "ok" or not (models_dir_for(self.store) / f"{row.trial.key}.pt").is_file():
            return {}  # no kept weights, no pictures: a table trial need not read the store
        try:
            with ResultStore(self.store) as results:
                frame = results.frame({row.trial.key})
            written = plot_store(frame, self.store, plot_dir_for(self.store), self.data_dir, columns=self.columns)
        except (StoreError, UnknownNameError, ValueError, OSError, RuntimeError) as err:
            raise TrackingError(f"the pictures of trial {row.trial.key} could not be drawn: {err}") from None
        return written[0][1] if written else {}

    def sweep_finished(self, summary: pd.DataFrame, keys: Iterable[str], name: str | None = None) -> str:
        """Log the sweep's leaderboard (:func:`imputebench.leaderboard.summarise`'s long frame, the CSV's
        columns) as the W&B Table ``leaderboard`` of a ``job_type="leaderboard"`` run whose id comes from
        the sweep's trial ``keys``; returns that id."""
        keys = set(keys)
        run = _init(self.options, id=sweep_id(keys), resume="allow", name=name or f"leaderboard of {len(keys)} trials",
                    job_type="leaderboard", config={"trials": len(keys)})
        with _finishing(run):
            run.log({"leaderboard": _wandb().Table(dataframe=summary)})
        return run.id
