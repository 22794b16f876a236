"""Weights & Biases logging of trials: one W&B run per trial, and one per sweep for its leaderboard.

A trial's W&B run id is its store key (``config_hash``), so everything logged about one trial lands in
one run, whichever process logs it and however often (``resume="allow"``): the trial itself logs its
losses and validation score while it trains (Lightning's ``WandbLogger``,
:func:`~imputebench.runner.wandb_runs.trial_logger`), the sweep's driver adds the outcome and pictures
when the trial ends (:class:`SweepTracker`), and ``imputebench plot --wandb`` adds pictures later
(:func:`log_pictures`). Runs are grouped by dataset / mechanism / ratio, the cells a leaderboard
compares. W&B is optional (``pip install 'imputebench[wandb]'``) and imported only when logging is
asked for. The API key is W&B's own business (``wandb login`` or ``WANDB_API_KEY``, on every machine
that runs trials): nothing here reads, stores or prints it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from imputebench.models.registry import UnknownNameError
from imputebench.runner.pictures import plot_dir_for, plot_store
from imputebench.runner.store import ResultRow, ResultStore, StoreError, row_config
from imputebench.runner.trials import Trial
from imputebench.runner.wandb_runs import (  # noqa: F401 - the names a sweep's W&B logging is configured by
    MODES, TrackingError, WandbOptions, trial_config, trial_group, trial_key, trial_name, trial_run_arguments,
    run_arguments, wandb_module,
)
from imputebench.runner.worker import models_dir_for

def result_summary(row: ResultRow) -> dict:
    """A trial's outcome for its run's summary: status and reason (``None`` too, so that a rerun that
    succeeds clears a failed attempt's reason), cost, and the final metrics as ``metrics/<name>``
    (the store's ``metric.<name>`` columns)."""
    outcome = {"status": row.status, "reason": row.reason, "attempt": getattr(row, "attempt", 1), "wall_time_s": row.wall_time_s,
               "peak_rss_mb": row.peak_rss_mb, "n_params": row.n_params, "hardware": row.hardware}
    return {**outcome, **{f"metrics/{name}": value for name, value in row.metrics.items()}}


def sweep_id(keys: Iterable[str]) -> str:
    """The leaderboard run of a sweep: the same trials (in any order) give the same run, so a rerun that
    resumes a sweep updates its table instead of adding a second leaderboard."""
    digest = hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()[:16]
    return f"leaderboard-{digest}"


def _init(options: WandbOptions, **run: object):
    """Start a W&B run (its console capture off: the logging process's output is not the trial's)."""
    wandb = wandb_module()
    try:
        return wandb.init(**run_arguments(options), **run)
    except wandb.errors.Error as err:
        raise TrackingError(f"W&B could not start a run ({options.mode}): {err}") from None


def _trial_run(trial: Trial | pd.Series, options: WandbOptions, config: dict):
    return _init(options, **trial_run_arguments(trial, config))


@contextmanager
def _finishing(run, exit_code: int = 0) -> Iterator:
    """Finish ``run`` whatever happens while logging to it; a W&B failure becomes a :class:`TrackingError`."""
    wandb = wandb_module()
    try:
        yield run
    except wandb.errors.Error as err:
        raise TrackingError(f"W&B could not log to run {run.id}: {err}") from None
    finally:
        run.finish(exit_code=exit_code)


def _images(pictures: dict[str, Path]) -> dict:
    wandb = wandb_module()
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
        wandb_module()  # a missing package fails before the sweep, not after its first trial
        self.options, self.store, self.data_dir, self.columns = options, Path(store), data_dir, columns

    def trial_finished(self, row: ResultRow) -> str:
        """Complete one trial's run with its outcome and, for an image trial, its pictures, finished with
        exit code 1 unless the trial is ``ok``; returns the run id (the trial's key). A deep model's
        per-epoch history is already there: its trial logged it while it trained (:func:`trial_logger`)."""
        config = {**trial_config(row.trial, row.config), "attempt": getattr(row, "attempt", 1)}
        run = _trial_run(row.trial, self.options, config)
        with _finishing(run, exit_code=0 if row.status == "ok" else 1):
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
            run.log({"leaderboard": wandb_module().Table(dataframe=summary)})
        return run.id
