"""The sweep's progress display counts done / running / failed / remaining as attempts start and end."""

from __future__ import annotations

import io

from rich.console import Console

from imputebench.runner.executors import Job
from imputebench.runner.progress import SweepProgress
from imputebench.runner.store import ResultRow
from imputebench.runner.trials import Trial


def counts(progress: SweepProgress) -> dict:
    task = progress.progress.tasks[0]
    return {k: task.fields[k] for k in ("done", "running", "failed", "remaining")} | {"bar": (task.completed, task.total)}


def test_counts_follow_starts_ends_and_retries():
    console = Console(file=io.StringIO(), width=200)
    a, b, c = (Trial("mean", "toy", "mcar", 0.5, seed, "vsae") for seed in range(3))
    progress = SweepProgress(console, total=4, stored=1, verbose=True)  # one trial of four already stored
    assert counts(progress) == {"done": 0, "running": 0, "failed": 0, "remaining": 3, "bar": (0, 3)}
    progress.trial_started(Job(a, 1))
    progress.trial_started(Job(b, 1))
    assert counts(progress) | {"bar": None} == {"done": 0, "running": 2, "failed": 0, "remaining": 1, "bar": None}
    progress.trial_ended(a, ResultRow(a, "ok", None, attempt=1, wall_time_s=1.0), retry=False)
    progress.trial_ended(b, ResultRow(b, "timeout", "exceeded --trial-timeout 5 s", attempt=1), retry=True)
    assert counts(progress) == {"done": 1, "running": 0, "failed": 0, "remaining": 2, "bar": (1, 3)}  # b is queued again
    progress.trial_started(Job(b, 2))
    progress.trial_ended(b, ResultRow(b, "failed", "RuntimeError: [boom]", attempt=2), retry=False)
    progress.trial_started(Job(c, 1))
    assert counts(progress) == {"done": 1, "running": 1, "failed": 1, "remaining": 0, "bar": (2, 3)}
    text = console.file.getvalue()
    assert "1 of 4 trials already stored" in text
    assert "timeout mean · toy · mcar 0.5 · seed 1 (attempt 1, retrying): exceeded --trial-timeout 5 s" in text
    assert "(attempt 2, giving up): RuntimeError: [boom]" in text  # a reason is shown as written, not as markup
    assert "ok mean · toy · mcar 0.5 · seed 0 (attempt 1, 1.0 s)" in text  # verbose: a line per finished trial


def test_without_verbose_only_failures_get_a_line():
    console = Console(file=io.StringIO(), width=200)
    trial = Trial("mean", "toy", "mcar", 0.5, 0, "vsae")
    progress = SweepProgress(console, total=1, stored=0)
    progress.trial_started(Job(trial, 1))
    progress.trial_ended(trial, ResultRow(trial, "ok", None, attempt=1, wall_time_s=1.0), retry=False)
    assert "ok mean" not in console.file.getvalue()
