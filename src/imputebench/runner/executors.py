"""Where the trials of a sweep run: in this process, one after another, or as Ray tasks.

Both executors take attempts from the driver's queue (which the driver may extend with retries
while the sweep runs) and yield each attempt's row as it ends; neither touches the store. A trial
runs through :func:`imputebench.runner.worker.execute` in both, so a seed gives the same row.

Ray (``pip install 'imputebench[ray]'``) schedules trials by their declared resources: a deep model
asks for ``gpus_per_trial`` GPUs (fractions pack several trials onto one GPU) and ``cpus_per_trial``
CPUs; a classical baseline asks for CPUs only. Ray sets each task's ``CUDA_VISIBLE_DEVICES``, so a
trial's ``cuda`` device is the GPU it was given. At most as many tasks are in flight as the
cluster has CPUs for, so a task's submission time is about its start time, and the driver can
kill a task that overstays its ``--trial-timeout`` even inside native code.

Both pass the epochs a running deep trial finishes to ``on_epoch`` (see
:mod:`imputebench.runner.epochs`): the local executor as the trial reports them, the Ray executor
from a mailbox actor its workers post to, which the driver empties about every second while it
waits for rows (never waiting for the actor itself).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, replace

from imputebench.data.dataset import Dataset
from imputebench.models.registry import is_classical
from imputebench.runner.epochs import EpochMailbox, Reporter, posting_to, reporting_to
from imputebench.runner.store import ResultRow
from imputebench.runner.trials import Trial
from imputebench.runner.worker import TrialOptions, execute, failed_row

EXECUTORS = ("local", "ray")
#: how long past its timeout a Ray task may run (its own alarm should have ended it) before the driver kills it
KILL_GRACE_S = 10.0
#: how often the Ray driver wakes while trials run, to kill overdue ones and relay epoch reports
POLL_S = 1.0

Work = Callable[[Trial, int, "Dataset | None", TrialOptions], ResultRow]
#: ``on_epoch(job, epoch, max_epochs)``: a running deep trial finished an epoch (for the progress display)
EpochCallback = Callable[["Job", int, int], None]


@dataclass(frozen=True)
class Job:
    """One attempt of a trial (attempts are numbered from 1 over the store's whole history)."""

    trial: Trial
    attempt: int


class LocalExecutor:
    """Trials in this process, in order: no start-up cost, the default."""

    def __init__(self, options: TrialOptions, datasets: Mapping[str, Dataset] | None = None, work: Work = execute) -> None:
        self.options, self.datasets, self.work = options, dict(datasets or {}), work

    def run(self, queue: deque[Job], on_start: Callable[[Job], None],
            on_epoch: EpochCallback | None = None) -> Iterator[tuple[Job, ResultRow]]:
        while queue:
            job = queue.popleft()
            on_start(job)
            with reporting_to(_reporter_for(job, on_epoch)):
                row = self.work(job.trial, job.attempt, self.datasets.get(job.trial.dataset), self.options)
            yield job, row

    def close(self) -> None:
        """Nothing to release."""


def _reporter_for(job: Job, on_epoch: EpochCallback | None) -> Reporter | None:
    """The driver's epoch reporter while ``job`` runs in it: the trial's epochs go to ``on_epoch``."""
    if on_epoch is None:
        return None

    def report(key: str, epoch: int, max_epochs: int) -> None:
        if key == job.trial.key:
            on_epoch(job, epoch, max_epochs)

    return report


class RayNotInstalled(RuntimeError):
    """``--executor ray`` without Ray."""


def _ray():
    try:
        import ray
    except ImportError as err:
        raise RayNotInstalled("--executor ray needs Ray: pip install 'imputebench[ray]'") from err
    return ray


def _in_ray_worker(work: Work, trial: Trial, attempt: int, dataset: Dataset | None, options: TrialOptions,
                   mailbox: object | None = None) -> ResultRow:
    """A Ray task: the trial on the GPU Ray gave it (``CUDA_VISIBLE_DEVICES``), or on CPU if none,
    posting its epochs to the ``mailbox`` actor (if given)."""
    import ray

    device = "cuda" if ray.get_gpu_ids() else "cpu"
    with reporting_to(posting_to(mailbox, attempt) if mailbox is not None else None):
        return work(trial, attempt, dataset, replace(options, device=device))


class _EpochRelay:
    """The driver's end of a sweep's :class:`~imputebench.runner.epochs.EpochMailbox` actor: at most
    every ``POLL_S`` it collects the reports the last request took from the actor, if they have
    arrived, and asks for the next ones, so the driver never waits for the actor."""

    def __init__(self, ray: object) -> None:
        self._ray = ray
        self.mailbox = ray.remote(num_cpus=0)(EpochMailbox).remote()  # no CPU: it must not hold up a trial
        self._taking: object | None = None
        self._last = -POLL_S

    def relay(self, running: Mapping[tuple[str, int], Job], on_epoch: EpochCallback) -> None:
        """Pass the reports received of the ``running`` jobs (by trial key and attempt) to ``on_epoch``;
        reports of attempts that have ended are dropped, and so is any error."""
        if time.monotonic() - self._last < POLL_S:
            return
        self._last = time.monotonic()
        try:
            if self._taking is not None:
                ready, _ = self._ray.wait([self._taking], timeout=0)
                if not ready:
                    return
                reports = self._ray.get(self._taking)
                self._taking = None
                for key, attempt, epoch, max_epochs in reports:
                    if (key, attempt) in running:
                        on_epoch(running[key, attempt], epoch, max_epochs)
            self._taking = self.mailbox.take.remote()
        except Exception:  # noqa: BLE001 - the progress display must never end a sweep
            self._taking = None

    def close(self) -> None:
        """End the actor."""
        with suppress(Exception):  # the cluster may already be gone
            self._ray.kill(self.mailbox)


class RayExecutor:
    """Trials as Ray tasks on a local cluster (started here, stopped after the sweep) or on the
    cluster at ``address`` (``"auto"``, ``"host:port"`` or ``"ray://host:10001"``)."""

    def __init__(
        self,
        options: TrialOptions,
        datasets: Mapping[str, Dataset] | None = None,
        address: str | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        work: Work = execute,
        verbose: bool = False,
    ) -> None:
        if cpus_per_trial <= 0 or gpus_per_trial < 0:
            raise ValueError(f"--cpus-per-trial must be > 0 and --gpus-per-trial >= 0, got {cpus_per_trial} and {gpus_per_trial}")
        if gpus_per_trial > 1 and gpus_per_trial != int(gpus_per_trial):
            raise ValueError(f"--gpus-per-trial {gpus_per_trial:g}: above 1 it must be a whole number (Ray's rule)")
        ray = self._ray = _ray()
        self._owns_cluster = not ray.is_initialized()
        if self._owns_cluster:
            ray.init(address=address, include_dashboard=False, log_to_driver=verbose, configure_logging=verbose)
        self.options, self.work = options, work
        self.cpus, self.gpus = cpus_per_trial, gpus_per_trial
        self._datasets = dict(datasets or {})
        self._refs: dict[str, object] = {}
        self._epochs: _EpochRelay | None = None  # started by the first run that listens for epochs
        # reuse workers for GPU tasks too (Ray starts a fresh process per GPU task by default: seconds each)
        self._task = ray.remote(max_retries=0, max_calls=0)(_in_ray_worker)
        self.capacity = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_trial))

    def _dataset_ref(self, name: str) -> object | None:
        """The driver's copy of a dataset, put once into Ray's object store (None: workers read ``data_dir``)."""
        if name not in self._datasets:
            return None
        if name not in self._refs:
            self._refs[name] = self._ray.put(self._datasets[name])
        return self._refs[name]

    def _submit(self, job: Job, mailbox: object | None) -> object:
        gpus = 0.0 if is_classical(job.trial.model) else self.gpus
        task = self._task.options(num_cpus=self.cpus, num_gpus=gpus, name=f"{job.trial.model}-{job.trial.key}-a{job.attempt}")
        return task.remote(self.work, job.trial, job.attempt, self._dataset_ref(job.trial.dataset), self.options, mailbox)

    def run(self, queue: deque[Job], on_start: Callable[[Job], None],
            on_epoch: EpochCallback | None = None) -> Iterator[tuple[Job, ResultRow]]:
        ray = self._ray
        in_flight: dict[object, tuple[Job, float]] = {}  # ref -> (job, submitted at)
        killed: set[object] = set()
        if on_epoch is not None and self._epochs is None:
            self._epochs = _EpochRelay(ray)
        epochs = self._epochs if on_epoch is not None else None
        mailbox = epochs.mailbox if epochs is not None else None
        poll = None if self.options.timeout_s is None and epochs is None else POLL_S
        try:
            while queue or in_flight:
                while queue and len(in_flight) < self.capacity:
                    job = queue.popleft()
                    in_flight[self._submit(job, mailbox)] = (job, time.monotonic())
                    on_start(job)
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=poll)
                for ref in ready:
                    job, started = in_flight.pop(ref)
                    yield job, self._collect(ref, job, ref in killed, time.monotonic() - started)
                killed |= self._kill_overdue(in_flight)
                if epochs is not None:
                    epochs.relay({(job.trial.key, job.attempt): job for job, _ in in_flight.values()}, on_epoch)
        finally:
            for ref in in_flight:  # Ctrl-C or an error in the driver: stop what still runs
                ray.cancel(ref, force=True)

    def _kill_overdue(self, in_flight: dict[object, tuple[Job, float]]) -> set[object]:
        if self.options.timeout_s is None:
            return set()
        limit = self.options.timeout_s + KILL_GRACE_S
        overdue = {ref for ref, (_, started) in in_flight.items() if time.monotonic() - started > limit}
        for ref in overdue:
            self._ray.cancel(ref, force=True)
        return overdue

    def _collect(self, ref: object, job: Job, killed: bool, elapsed: float) -> ResultRow:
        """The task's row; a task that raised outside the trial, lost its worker or was killed gets one here."""
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayError as err:
            if killed:
                reason = f"exceeded --trial-timeout {self.options.timeout_s:g} s; killed by the driver after {elapsed:.0f} s"
                return failed_row(job.trial, job.attempt, "timeout", reason)
            return failed_row(job.trial, job.attempt, "failed", f"{type(err).__name__}: {str(err).strip().splitlines()[0]}")

    def close(self) -> None:
        if self._epochs is not None:
            self._epochs.close()
        if self._owns_cluster:
            self._ray.shutdown()
