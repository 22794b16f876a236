"""The sweep's driver: hands attempts to an executor, stores each row as it ends, retries failures.

The driver alone writes to the store, one transaction per attempt, so a crash, Ctrl-C or
``kill -9`` loses at most the attempts that were running, and the same command later runs exactly
the trials not yet stored ``ok``. A trial that fails, diverges or times out is stored with its
status and reason and tried again, up to ``max_retries`` times, under the next attempt number.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imputebench.data.dataset import Dataset
from imputebench.runner.executors import EpochCallback, Job, LocalExecutor
from imputebench.runner.store import HEARTBEAT_S, ResultRow, ResultStore
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
    #: trials another sweep on the same store stored while this one ran (it claimed them first)
    elsewhere: int = 0


#: how often a sweep whose remaining trials another sweep is running looks again (claims end or go stale)
WAIT_POLL_S = 2.0


class ClaimingQueue:
    """The sweep's queue of attempts, as executors see it (``bool``, ``popleft``, ``append``): taking the next
    attempt first claims its trial in the store. A trial another sweep holds a live claim on is set aside
    (:attr:`deferred`), one it stored meanwhile is dropped and counted in :attr:`elsewhere`; so is a trial another
    sweep attempted and stored as failed after this one started (its attempt numbers went past ``first``, this
    sweep's first attempt of each trial): that failure is this sweep's answer too."""

    def __init__(self, jobs: Iterable[Job], store: ResultStore, owner: str, first: Mapping[str, int],
                 on_elsewhere: Callable[[Trial, str], None] | None = None) -> None:
        self._jobs, self.deferred = deque(jobs), deque()
        self.store, self.owner, self.first = store, owner, first
        self.elsewhere: dict[str, str] = {}  # key -> status stored by another sweep
        self._on_elsewhere = on_elsewhere
        self._head: Job | None = None

    def _stored_elsewhere(self, trial: Trial, status: str) -> None:
        self.elsewhere[trial.key] = status
        if self._on_elsewhere is not None:
            self._on_elsewhere(trial, status)

    def _claim_next(self) -> Job | None:
        while self._head is None and self._jobs:
            job = self._jobs.popleft()
            key = job.trial.key
            if job.attempt == self.first[key]:
                status = self.store.attempted_since(key, job.attempt)
                if status is not None:
                    self._stored_elsewhere(job.trial, status)
                    continue
            state = self.store.claim(key, self.owner)
            if state == "claimed":
                self._head = job
            elif state == "done":
                self._stored_elsewhere(job.trial, "ok")
            else:
                self.deferred.append(job)
        return self._head

    def __bool__(self) -> bool:
        return self._claim_next() is not None

    def __len__(self) -> int:
        return len(self._jobs) + (self._head is not None)

    def popleft(self) -> Job:
        job = self._claim_next()
        if job is None:
            raise IndexError("no trial left to claim")
        self._head = None
        return job

    def append(self, job: Job) -> None:
        self._jobs.append(job)

    def retry_deferred(self) -> int:
        """Put the set-aside attempts back in the queue (their claims may have ended); how many."""
        count = len(self.deferred)
        self._jobs.extend(self.deferred)
        self.deferred.clear()
        return count


@contextmanager
def heartbeat(store: ResultStore, owner: str) -> Iterator[None]:
    """Within the block, a thread refreshes the heartbeat of ``owner``'s claims every ``HEARTBEAT_S`` (on its own
    connection); at its end ``owner``'s remaining claims are released, so an interrupted sweep's trials are free."""
    stop = threading.Event()

    def beat() -> None:
        with ResultStore(store.path) as own:
            while not stop.wait(HEARTBEAT_S):
                own.beat(owner)

    thread = threading.Thread(target=beat, name="imputebench-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        store.release_all(owner)


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
    on_wait: Callable[[int], None] | None = None,
    on_elsewhere: Callable[[Trial, str], None] | None = None,
) -> SweepSummary:
    """Run every trial not yet stored with status ``ok``; each attempt is committed when it ends.

    ``datasets`` may hold datasets already loaded (by name); others are read from ``data_dir``.
    ``models_dir`` receives the weights of deep models trained on image datasets; with ``wandb``
    each deep trial logs its epochs to its W&B run while it trains. These five build the default executor, a
    :class:`~imputebench.runner.executors.LocalExecutor`; an ``executor`` given instead carries its own.
    ``on_trial_end(trial, row, retry)`` sees every attempt's row, with ``retry`` True when the trial will be tried
    again; ``on_epoch(job, epoch, max_epochs)`` hears of each epoch a running deep trial finishes.

    Several sweeps may share a store: each claims a trial before running it (the driver claims for Ray's
    workers), so no trial is computed twice; when only trials another sweep is running remain, this one waits
    for them (``on_wait(n)`` says how many), and takes over those whose claim goes stale (that sweep was killed).
    ``on_elsewhere(trial, status)`` hears of each trial another sweep stored meanwhile (it will not run here).
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
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    queue = ClaimingQueue((Job(t, first[t.key]) for t in pending), store, owner, first, on_elsewhere)
    with interruptible(), heartbeat(store, owner):
        while True:
            for job, row in executor.run(queue, on_trial_start or (lambda job: None), on_epoch):
                store.write(row, owner)
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
            if not queue.deferred:
                break
            if on_wait is not None:
                on_wait(len(queue.deferred))
            time.sleep(WAIT_POLL_S)
            queue.retry_deferred()
    summary.elsewhere = len(queue.elsewhere)
    return summary
