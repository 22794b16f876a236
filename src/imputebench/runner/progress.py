"""The sweep's progress display: done / running / failed / remaining, the running trials with their
epoch, and an ETA estimated from the trials themselves.

On a terminal a Rich progress bar counts the trials this command runs (the ones already stored are
reported beside it, not on the bar), with one line per running trial under it. When the output is a
file or a pipe there is no live display: one plain line per finished trial, and a status line
(counts, running trials, ETA) at most every :data:`STATUS_EVERY_S` seconds. A retried attempt goes
back to "remaining"; a trial counts as failed once its last attempt has failed.

The status line is driven by the sweep's own events (a trial starting or ending, a deep trial
finishing an epoch), not by a timer thread: a running deep trial reports every epoch, so lines keep
coming while it trains, and a thread would print from beside the driver for little more (only a
single epoch or a classical fit longer than the interval goes without one).

The ETA comes from :class:`EtaEstimator`, which knows nothing of Rich: Rich's own estimate divides
completed steps by a 30-second window and has nothing to say when each trial takes minutes.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from statistics import fmean

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from imputebench.runner.executors import Job
from imputebench.runner.store import ResultRow
from imputebench.runner.trials import Trial

Clock = Callable[[], float]
#: the longest a plain (not a terminal) output goes without a status line, while events arrive
STATUS_EVERY_S = 30.0
#: running trials listed under the bar; more are counted on one last line
SHOWN_RUNNING = 12
#: the model of a queued trial the estimator was not told about (it is estimated like any trial)
ANY_MODEL = ""


def describe(trial: Trial) -> str:
    return f"{trial.model} · {trial.dataset} · {trial.mechanism} {trial.ratio:g} · seed {trial.seed}"


def clock_time(seconds: float) -> str:
    """``seconds`` as ``h:mm:ss``, to the nearest second."""
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def eta_text(seconds: float | None) -> str:
    """``ETA h:mm:ss``, or ``ETA unknown`` when nothing allows an estimate yet."""
    return "ETA unknown" if seconds is None else f"ETA {clock_time(seconds)}"


@dataclass
class RunningTrial:
    """A trial that started and has not ended: its model, start time and last reported epoch."""

    model: str
    since: float
    epoch: int = 0
    max_epochs: int = 0

    @property
    def fraction(self) -> float | None:
        """The share of its epoch budget done; None before its first epoch (or for a classical model)."""
        if self.epoch <= 0 or self.max_epochs <= 0:
            return None
        return min(1.0, self.epoch / self.max_epochs)


class EtaEstimator:
    """How long the rest of a sweep will take, from the trials seen so far; ``clock`` gives the time.

    A trial's expected duration is, in this order of preference: the mean wall time of the finished
    (ok) trials of its model; the duration its model's running trials project from their epochs
    (elapsed / fraction of ``max_epochs`` done); the mean of all finished trials; the projection of
    all running ones. A classical baseline takes hundredths of a second and a deep model minutes, so
    the per-model means come first. A running trial's remaining time is ``elapsed x (1 - f) / f`` once
    it has reported a fraction ``f`` of its epochs, else its expected duration less its elapsed time.

    ``max_epochs`` is the fit's budget, an upper bound: early stopping may end a fit well before it,
    so projections from epochs overestimate until trials of the model have finished.

    The remaining work (queued trials' expected durations plus running trials' remaining times) is
    divided by the observed concurrency: the most trials seen running at once, but no more than are
    left. Nothing known (no trial finished and none has reported an epoch) gives None, not a guess.
    """

    def __init__(self, queued: Iterable[str], clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.queued: Counter[str] = Counter(queued)
        self.running: dict[Hashable, RunningTrial] = {}
        self.durations: dict[str, list[float]] = {}
        self.peak = 0

    def started(self, key: Hashable, model: str) -> None:
        """Attempt ``key`` of a ``model`` trial started now."""
        self.dropped(model)
        self.running[key] = RunningTrial(model, self.clock())
        self.peak = max(self.peak, len(self.running))

    def dropped(self, model: str) -> None:
        """A queued ``model`` trial will not run (another sweep on the store ran it)."""
        taken = model if self.queued[model] > 0 else ANY_MODEL
        self.queued[taken] = max(0, self.queued[taken] - 1)

    def epoch(self, key: Hashable, epoch: int, max_epochs: int) -> None:
        """Attempt ``key`` finished ``epoch`` of at most ``max_epochs``."""
        if key in self.running:
            self.running[key].epoch, self.running[key].max_epochs = epoch, max_epochs

    def ended(self, key: Hashable, ok: bool, retry: bool) -> float | None:
        """Attempt ``key`` ended now: its duration counts towards its model's mean if ``ok``; with
        ``retry`` its trial is queued again. Returns its duration (None for an unknown key)."""
        trial = self.running.pop(key, None)
        if trial is None:
            return None
        duration = self.clock() - trial.since
        if ok:
            self.durations.setdefault(trial.model, []).append(duration)
        if retry:
            self.queued[trial.model] += 1
        return duration

    def _finished_mean(self, model: str | None) -> float | None:
        times = self.durations.get(model, []) if model is not None else [t for ts in self.durations.values() for t in ts]
        return fmean(times) if times else None

    def _projected_mean(self, model: str | None, now: float) -> float | None:
        projections = [(now - r.since) / r.fraction for r in self.running.values()
                       if r.fraction is not None and model in (None, r.model)]
        return fmean(projections) if projections else None

    def expected(self, model: str) -> float | None:
        """The expected duration of one ``model`` trial; None if nothing is known."""
        now = self.clock()
        for estimate in (self._finished_mean(model), self._projected_mean(model, now),
                         self._finished_mean(None), self._projected_mean(None, now)):
            if estimate is not None:
                return estimate
        return None

    def _left(self, trial: RunningTrial, now: float) -> float | None:
        elapsed = now - trial.since
        if trial.fraction is not None:
            return elapsed * (1.0 - trial.fraction) / trial.fraction
        expected = self.expected(trial.model)
        return None if expected is None else max(0.0, expected - elapsed)

    def concurrency(self) -> int:
        """How many trials are expected to run at once from now on."""
        left = sum(self.queued.values()) + len(self.running)
        return max(1, min(self.peak, left))

    def remaining(self) -> float | None:
        """Seconds until the sweep ends; None if unknown."""
        now = self.clock()
        work = 0.0
        for trial in self.running.values():
            left = self._left(trial, now)
            if left is None:
                return None
            work += left
        for model, count in self.queued.items():
            if count:
                expected = self.expected(model)
                if expected is None:
                    return None
                work += count * expected
        return work / self.concurrency()


class _EtaColumn(ProgressColumn):
    """The estimator's ETA, re-estimated at every refresh."""

    def __init__(self, eta: Callable[[], float | None]) -> None:
        super().__init__()
        self._eta = eta

    def render(self, task: Task) -> Text:
        return Text(eta_text(self._eta()), style="progress.remaining")


class _BarAndTrials(Progress):
    """Rich's progress bar with the lines of ``trials()`` (the running trials) under it."""

    def __init__(self, *columns: str | ProgressColumn, trials: Callable[[], list[str]], **kwargs: object) -> None:
        self._trials = trials  # before Progress's own init, which renders once
        super().__init__(*columns, **kwargs)

    def get_renderables(self) -> Iterator[RenderableType]:
        yield from super().get_renderables()
        lines = self._trials()
        if lines:
            yield Text("\n".join(lines), no_wrap=True, overflow="ellipsis")


class SweepProgress:
    """Callbacks for :func:`imputebench.runner.execute.run_sweep` (``on_trial_start``, ``on_trial_end``,
    ``on_epoch``, ``on_elsewhere``) that drive the display; use as a context manager. A trial another sweep on
    the store ran meanwhile counts as ended here (the bar reaches its end) and is shown apart.

    ``pending``, the trials this command will run, lets the ETA tell models apart. ``verbose`` gives
    every finished attempt a line on a terminal too; failures always get one. ``clock`` is for tests.
    """

    COUNTS = "[green]{task.fields[done]} done[/] · {task.fields[running]} running · [red]{task.fields[failed]} failed[/] · {task.fields[remaining]} remaining"

    def __init__(self, console: Console, total: int, stored: int, verbose: bool = False,
                 pending: Iterable[Trial] | None = None, clock: Clock = time.monotonic) -> None:
        self.console, self.verbose, self.clock = console, verbose, clock
        self.live = console.is_terminal
        self.pending, self.stored = total - stored, stored
        self.running: dict[tuple[str, int], Job] = {}  # in the order they started
        self.ok = self.failed = self.elsewhere = 0
        models = [t.model for t in pending] if pending is not None else [ANY_MODEL] * self.pending
        self.eta = EtaEstimator(models, clock)
        self._lock = threading.Lock()  # the bar's refresh thread reads what the callbacks change
        self._started = self._last_status = clock()
        columns = (TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn(self.COUNTS),
                   TimeElapsedColumn(), _EtaColumn(self._remaining))
        self.progress = _BarAndTrials(*columns, trials=self._running_lines, console=console, transient=False,
                                      get_time=clock, refresh_per_second=4)
        self.task = self.progress.add_task("trials", total=self.pending, **self.counts())
        if stored or not self.live:
            self._print(self._opening(total))

    def _opening(self, total: int) -> str:
        if not self.stored:
            return f"{total} trials to run, none already stored"
        return f"{self.stored} of {total} trials already stored: skipped; {self.pending} to run"

    def counts(self) -> dict[str, int]:
        """Trials done (ok), running, failed (for good), stored by another sweep, and remaining (not started,
        retries included)."""
        return {"done": self.ok, "running": len(self.running), "failed": self.failed, "elsewhere": self.elsewhere,
                "remaining": self.pending - self._ended() - len(self.running)}

    def _ended(self) -> int:
        return self.ok + self.failed + self.elsewhere

    def __enter__(self) -> SweepProgress:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()

    def trial_started(self, job: Job) -> None:
        with self._lock:
            self.running[job.trial.key, job.attempt] = job
            self.eta.started((job.trial.key, job.attempt), job.trial.model)
        self._refresh()

    def epoch_ended(self, job: Job, epoch: int, max_epochs: int) -> None:
        """``on_epoch``: a running deep trial finished ``epoch`` of at most ``max_epochs``."""
        with self._lock:
            self.eta.epoch((job.trial.key, job.attempt), epoch, max_epochs)
        self._refresh()

    def trial_ended(self, trial: Trial, row: ResultRow, retry: bool) -> None:
        with self._lock:
            self.running.pop((trial.key, row.attempt), None)
            elapsed = self.eta.ended((trial.key, row.attempt), ok=row.status == "ok", retry=retry)
            if not retry:
                self.ok += row.status == "ok"
                self.failed += row.status != "ok"
        line = self._ended_line(trial, row, retry, elapsed)
        if line is not None:
            self._print(line if self.live else f"{escape(f'[{self._ended()}/{self.pending}]')} {line}")
        self._refresh()

    def trial_elsewhere(self, trial: Trial, status: str) -> None:
        """``on_elsewhere``: another sweep on the store stored ``trial`` (with ``status``); it will not run here."""
        with self._lock:
            self.elsewhere += 1
            self.eta.dropped(trial.model)
        if self.verbose or not self.live:
            line = f"stored by another sweep ({escape(status)}): {escape(describe(trial))}"
            self._print(line if self.live else f"{escape(f'[{self._ended()}/{self.pending}]')} {line}")
        self._refresh()

    def note(self, text: str) -> None:
        """One line of ``text`` (taken literally, not as markup): above the bar on a terminal."""
        self._print(text, markup=False)

    def _ended_line(self, trial: Trial, row: ResultRow, retry: bool, elapsed: float | None) -> str | None:
        """A failure's line, or an ok trial's when every trial gets one (verbose, or not a terminal)."""
        label = escape(describe(trial))
        if row.status != "ok":
            then = "retrying" if retry else "giving up"
            return f"[red]{row.status}[/] {label} (attempt {row.attempt}, {then}): {escape(str(row.reason))}"
        if self.live and not self.verbose:
            return None
        wall = row.wall_time_s if row.wall_time_s is not None else elapsed
        return f"[green]ok[/] {label} ({'?' if wall is None else f'{wall:.1f} s'}, attempt {row.attempt})"

    def _print(self, line: str, markup: bool = True) -> None:
        """One line: kept whole (never wrapped) when the output is not a terminal."""
        self.console.print(line, markup=markup, highlight=False, soft_wrap=not self.live)

    def _remaining(self) -> float | None:
        with self._lock:
            return self.eta.remaining()

    def _running_lines(self) -> list[str]:
        """One line per running trial, ``label — epoch e/max, h:mm:ss``, at most :data:`SHOWN_RUNNING`."""
        with self._lock:
            now = self.clock()
            lines = []
            for key, job in self.running.items():
                trial = self.eta.running.get(key)
                if trial is None:
                    continue
                epoch = f"epoch {trial.epoch}/{trial.max_epochs}, " if trial.epoch else ""
                lines.append(f"{describe(job.trial)} — {epoch}{clock_time(now - trial.since)}")
        if len(lines) > SHOWN_RUNNING:
            lines[SHOWN_RUNNING - 1:] = [f"… and {len(lines) - SHOWN_RUNNING + 1} more running"]
        return lines

    def _refresh(self) -> None:
        """The bar's counts on a terminal; elsewhere a status line if the last is old enough."""
        self.progress.update(self.task, completed=self._ended(), **self.counts())
        if not self.live and self.clock() - self._last_status >= STATUS_EVERY_S:
            self._last_status = self.clock()
            self._print(self.status_line(), markup=False)

    def status_line(self) -> str:
        """The time since the display began, counts, ETA and running trials, on one line (plain text)."""
        counts = self.counts()
        text = (f"status at {clock_time(self.clock() - self._started)}: {counts['done']} done · "
                f"{counts['running']} running · {counts['failed']} failed · "
                + (f"{counts['elsewhere']} by another sweep · " if counts["elsewhere"] else "")
                + f"{counts['remaining']} remaining · {eta_text(self._remaining())}")
        running = self._running_lines()
        return text + (f" · running: {'; '.join(running)}" if running else "")
