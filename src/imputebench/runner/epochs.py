"""Epoch reports of running trials, for the sweep's progress display.

A deep trial's ``Trainer`` carries an :class:`EpochReports` callback (added by
:func:`imputebench.runner.worker._fit`): at the end of each training epoch it reports
``(trial key, epoch finished, trainer.max_epochs)`` to the reporter of the process it trains in.
The executor that runs the attempt installs that reporter around it with :func:`reporting_to` and
adds the attempt number: in the driver (``--executor local``) the reporter calls the sweep's
``on_epoch`` directly; in a Ray worker it posts the report (at most two a second, and the last
epoch's) to the sweep's :class:`EpochMailbox` actor, which the driver drains while it waits for rows. ``max_epochs`` is the fit's budget: early
stopping may end the fit before it (and GAIN's budget is its authors' iterations in epochs).

A DDP fit trains in spawned rank processes, which have no reporter: :func:`epoch_reports` then
gives the callback one end of a pipe, rank 0 writes its reports into it, and a thread of the
trial's process relays them to the reporter while ``fit`` waits for the ranks.

Reporting never fails a trial: whatever the reporter raises is dropped, except the exception types
the worker names (the trial's ``--trial-timeout`` alarm, which may go off while a report is shown).
"""

from __future__ import annotations

import math
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection

import lightning as L
from lightning.pytorch.callbacks import Callback

#: ``reporter(trial key, epoch finished, max_epochs)``: this process's receiver of epoch reports
Reporter = Callable[[str, int, int], None]
#: what a Ray worker posts and the driver drains: (trial key, attempt, epoch finished, max_epochs)
EpochReport = tuple[str, int, int, int]
#: how often the relay thread of a DDP fit looks for the fit's end between reports
RELAY_POLL_S = 0.2
#: the least time between two reports a Ray worker posts (the driver looks about every second)
POST_EVERY_S = 0.5

_reporter: Reporter | None = None


@contextmanager
def reporting_to(reporter: Reporter | None) -> Iterator[None]:
    """Within the block, this process's epoch reports go to ``reporter`` (None: nowhere)."""
    global _reporter
    previous, _reporter = _reporter, reporter
    try:
        yield
    finally:
        _reporter = previous


def report_epoch(key: str, epoch: int, max_epochs: int, keep: tuple[type[Exception], ...] = ()) -> None:
    """Hand one report to this process's reporter, if there is one; an error in it is dropped unless
    it is one of the types in ``keep``."""
    reporter = _reporter
    if reporter is None:
        return
    try:
        reporter(key, epoch, max_epochs)
    except keep:
        raise
    except Exception:  # noqa: BLE001, S110 - a progress display must never fail a trial
        pass


class EpochReports(Callback):
    """Reports each training epoch that trial ``key`` finishes, from rank 0 only: to this process's
    reporter (errors of the types in ``keep`` pass, others are dropped), or into ``pipe`` (the
    writing end of :func:`epoch_reports`' pipe) in a DDP rank."""

    def __init__(self, key: str, pipe: Connection | None = None, keep: tuple[type[Exception], ...] = ()) -> None:
        super().__init__()
        self.key, self.pipe, self.keep = key, pipe, keep

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        report = (self.key, trainer.current_epoch + 1, int(trainer.max_epochs or 0))
        if self.pipe is None:
            report_epoch(*report, keep=self.keep)
            return
        with suppress(Exception):  # a closed pipe only loses the display's epochs
            self.pipe.send(report)


@contextmanager
def epoch_reports(key: str, distributed: bool = False, keep: tuple[type[Exception], ...] = ()) -> Iterator[EpochReports]:
    """The callback that reports the epochs of trial ``key``'s fit, letting errors of the types in
    ``keep`` pass (see :func:`report_epoch`); for a DDP fit (``distributed``) with a pipe from its
    ranks and a thread relaying what rank 0 writes, until the block ends."""
    if not distributed or _reporter is None:
        yield EpochReports(key, keep=keep)
        return
    receiving, sending = multiprocessing.get_context("spawn").Pipe(duplex=False)
    done = threading.Event()
    relay = threading.Thread(target=_relay, args=(receiving, done), name=f"epochs-{key}", daemon=True)
    relay.start()
    try:
        yield EpochReports(key, sending)
    finally:
        done.set()
        relay.join(timeout=5 * RELAY_POLL_S)
        sending.close()


def _relay(receiving: Connection, done: threading.Event) -> None:
    """Pass the reports arriving on ``receiving`` to this process's reporter until ``done`` is set."""
    with suppress(Exception):  # a rank that died mid-report: its remaining epochs go unreported
        while not done.is_set():
            if receiving.poll(RELAY_POLL_S):
                report_epoch(*receiving.recv())
        while receiving.poll(0):  # what rank 0 wrote just before the fit ended
            report_epoch(*receiving.recv())
    receiving.close()


class EpochMailbox:
    """A Ray actor (created by :class:`~imputebench.runner.executors.RayExecutor`, without a CPU of
    its own) where Ray workers post :data:`EpochReport` s and the driver takes them."""

    def __init__(self) -> None:
        self._reports: list[EpochReport] = []

    def post(self, report: EpochReport) -> None:
        self._reports.append(report)

    def take(self) -> list[EpochReport]:
        """The reports posted since the last call, oldest first."""
        reports, self._reports = self._reports, []
        return reports


def posting_to(mailbox: object, attempt: int, every_s: float = POST_EVERY_S) -> Reporter:
    """A Ray worker's reporter for ``attempt``: posts to the ``mailbox`` actor without waiting for it
    (``.remote``'s reference is dropped), at most one report every ``every_s`` seconds besides the
    last epoch's: a model with epochs of milliseconds (GAIN's) would otherwise flood the actor."""
    last = -math.inf

    def post(key: str, epoch: int, max_epochs: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < every_s and epoch < max_epochs:
            return
        last = now
        mailbox.post.remote((key, attempt, epoch, max_epochs))

    return post
