"""One Rich progress display for a whole sweep: done / running / failed / remaining, and an ETA.

The bar counts the trials this command runs (the ones already stored are reported beside it, not
on the bar, so they do not inflate the speed the ETA is estimated from). A retried attempt goes
back to "remaining"; a trial counts as failed once its last attempt has failed.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from imputebench.runner.executors import Job
from imputebench.runner.store import ResultRow
from imputebench.runner.trials import Trial


def describe(trial: Trial) -> str:
    return f"{trial.model} · {trial.dataset} · {trial.mechanism} {trial.ratio:g} · seed {trial.seed}"


class SweepProgress:
    """Callbacks for :func:`imputebench.runner.execute.run_sweep` that drive a Rich progress bar;
    use as a context manager. With ``verbose`` every attempt also gets a line when it ends."""

    COUNTS = "[green]{task.fields[done]} done[/] · {task.fields[running]} running · [red]{task.fields[failed]} failed[/] · {task.fields[remaining]} remaining"

    def __init__(self, console: Console, total: int, stored: int, verbose: bool = False) -> None:
        self.verbose = verbose
        self.pending, self.stored = total - stored, stored
        self.running: set[tuple[str, int]] = set()
        self.ok = self.failed = 0
        columns = (TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn(self.COUNTS),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        self.progress = Progress(*columns, console=console, transient=False)
        self.task = self.progress.add_task("trials", total=self.pending, **self._fields())
        if stored:
            console.print(f"{stored} of {total} trials already stored: skipped", highlight=False)

    def _fields(self) -> dict[str, int]:
        ended = self.ok + self.failed
        return {"done": self.ok, "running": len(self.running), "failed": self.failed,
                "remaining": self.pending - ended - len(self.running)}

    def __enter__(self) -> SweepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def trial_started(self, job: Job) -> None:
        self.running.add((job.trial.key, job.attempt))
        self.progress.update(self.task, **self._fields())

    def trial_ended(self, trial: Trial, row: ResultRow, retry: bool) -> None:
        self.running.discard((trial.key, row.attempt))
        label = describe(trial)
        if row.status != "ok":
            then = "retrying" if retry else "giving up"
            self.progress.console.print(
                f"[red]{row.status}[/] {label} (attempt {row.attempt}, {then}): {escape(str(row.reason))}", highlight=False
            )
        elif self.verbose:
            wall = f"{row.wall_time_s:.1f} s" if row.wall_time_s is not None else "?"
            self.progress.console.print(f"[green]ok[/] {label} (attempt {row.attempt}, {wall})", highlight=False)
        if not retry:
            self.ok += row.status == "ok"
            self.failed += row.status != "ok"
        self.progress.update(self.task, completed=self.ok + self.failed, **self._fields())
