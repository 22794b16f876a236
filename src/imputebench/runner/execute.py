"""The sweep's driver: hands attempts to an executor, stores each row as it ends, retries failures.

The driver alone writes to the store, one transaction per attempt, so a crash, Ctrl-C or
``kill -9`` loses at most the attempts that were running, and the same command later runs exactly
the trials not yet stored ``ok``. A trial that fails, diverges or times out is stored with its
status and reason and tried again, up to ``max_retries`` times, under the next attempt number.
"""

from __future__ import annotations

import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imputebench.data.dataset import Dataset
from imputebench.runner.executors import EpochCallback, Job, LocalExecutor
from imputebench.runner.store import ResultRow, ResultStore
from imputebench.runner.trials import Trial
from imputebench.runner.wandb_runs import WandbOptions
from imputebench.runner.worker import TrialOptions


class SweepInterrupted(BaseException):
    """Ctrl-C (SIGINT) or SIGTERM during a sweep.

    Not a KeyboardInterrupt: Lightning turns a KeyboardInterrupt inside ``fit`` into ``sys.exit(1)``
    and ignores SIGINT from then on; any other BaseException it tears down and re-raises.
    """


@contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`SweepInterrupted` (in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SweepInterrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class SweepSummary:
    total: int
    skipped: int
    ok: int = 0
    failed: int = 0
    retried: int = 0


def run_sweep(
    trials: Iterable[Trial],
    store: ResultStore,
    data_dir: Path | None = None,
    device: str = "cpu",
    on_trial_end: Callable[[Trial, ResultRow, bool], None] | None = None,
    datasets: Mapping[str, Dataset] | None = None,
    models_dir: Path | None = None,
    executor: object | None = None,
    max_retries: int = 0,
    on_trial_start: Callable[[Job], None] | None = None,
    wandb: WandbOptions | None = None,
    on_epoch: EpochCallback | None = None,
) -> SweepSummary:
    """Run every trial not yet stored with status ``ok``; each attempt is committed when it ends.

    ``datasets`` may hold datasets already loaded (by name); others are read from ``data_dir``.
    ``models_dir`` receives the weights of deep models trained on image datasets; with ``wandb``
    each deep trial logs its epochs to its W&B run while it trains. These five build the default executor, a :class:`~imputebench.runner.executors.LocalExecutor`; an
    ``executor`` given instead carries its own. ``on_trial_end(trial, row, retry)`` sees every
    attempt's row, with ``retry`` True when the trial will be tried again; ``on_epoch(job, epoch, max_epochs)``
    hears of each epoch a running deep trial finishes.
    """
    if max_retries < 0:
        raise ValueError(f"--max-retries must be >= 0, got {max_retries}")
    trials = list(trials)
    done, made = store.finished_keys(), store.attempts_made()
    pending = [t for t in trials if t.key not in done]
    summary = SweepSummary(total=len(trials), skipped=len(trials) - len(pending))
    if executor is None:
        executor = LocalExecutor(TrialOptions(data_dir, device, models_dir, wandb=wandb), datasets)
    first = {t.key: made.get(t.key, 0) + 1 for t in pending}  # attempt numbers go on from earlier sweeps
    queue = deque(Job(t, first[t.key]) for t in pending)
    with interruptible():
        for job, row in executor.run(queue, on_trial_start or (lambda job: None), on_epoch):
            store.write(row)
            retry = row.status != "ok" and job.attempt - first[job.trial.key] < max_retries
            if retry:
                summary.retried += 1
                queue.append(Job(job.trial, job.attempt + 1))
            elif row.status == "ok":
                summary.ok += 1
            else:
                summary.failed += 1
            if on_trial_end is not None:
                on_trial_end(job.trial, row, retry)
    return summary
