"""The sweep's progress display: counts as attempts start and end, an ETA estimated from finished
trials and running trials' epochs, the running trials under the bar, plain lines when the output is
not a terminal, and the epochs that reach ``on_epoch`` from a real fit.

Times come from an injected clock (:class:`FakeClock`), never from sleeping."""

from __future__ import annotations

import io
import os
from collections import deque

import pytest
from helpers import correlated_dataset
from rich.console import Console

from imputebench.models.distributed import Distribution
from imputebench.runner.epochs import posting_to, report_epoch, reporting_to
from imputebench.runner.executors import Job, LocalExecutor
from imputebench.runner.progress import (
    STATUS_EVERY_S,
    EtaEstimator,
    SweepProgress,
    eta_text,
)
from imputebench.runner.store import ResultRow
from imputebench.runner.trials import Trial
from imputebench.runner.worker import TrialOptions, TrialTimeout

DATA = {"toy": correlated_dataset(200)}


class FakeClock:
    """A clock that moves only when told: ``clock.at += seconds``."""

    def __init__(self, at: float = 1000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def trial(model: str = "mean", seed: int = 0, dataset: str = "toy") -> Trial:
    return Trial(model, dataset, "mcar", 0.5, seed, "vsae")


def ok(t: Trial, attempt: int = 1, wall: float | None = 1.0) -> ResultRow:
    return ResultRow(t, "ok", None, attempt=attempt, wall_time_s=wall)


def counts(progress: SweepProgress) -> dict:
    task = progress.progress.tasks[0]
    return progress.counts() | {"bar": (task.completed, task.total)}


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, color_system=None, width=200)  # no colour codes to match around


def plain() -> Console:
    return Console(file=io.StringIO(), force_terminal=False, width=80)


# --- the counts ------------------------------------------------------------------------------------


def test_counts_follow_starts_ends_and_retries():
    console = terminal()
    a, b, c = (trial(seed=seed) for seed in range(3))
    progress = SweepProgress(console, total=4, stored=1, verbose=True)  # one trial of four already stored
    assert counts(progress) == {"done": 0, "running": 0, "failed": 0, "elsewhere": 0, "remaining": 3, "bar": (0, 3)}
    progress.trial_started(Job(a, 1))
    progress.trial_started(Job(b, 1))
    assert counts(progress) | {"bar": None} == {"done": 0, "running": 2, "failed": 0, "elsewhere": 0, "remaining": 1, "bar": None}
    progress.trial_ended(a, ok(a), retry=False)
    progress.trial_ended(b, ResultRow(b, "timeout", "exceeded --trial-timeout 5 s", attempt=1), retry=True)
    assert counts(progress) == {"done": 1, "running": 0, "failed": 0, "elsewhere": 0, "remaining": 2, "bar": (1, 3)}  # b is queued again
    progress.trial_started(Job(b, 2))
    progress.trial_ended(b, ResultRow(b, "failed", "RuntimeError: [boom]", attempt=2), retry=False)
    progress.trial_started(Job(c, 1))
    assert counts(progress) == {"done": 1, "running": 1, "failed": 1, "elsewhere": 0, "remaining": 0, "bar": (2, 3)}
    text = console.file.getvalue()
    assert "1 of 4 trials already stored: skipped; 3 to run" in text
    assert "timeout mean · toy · mcar 0.5 · seed 1 (attempt 1, retrying): exceeded --trial-timeout 5 s" in text
    assert "(attempt 2, giving up): RuntimeError: [boom]" in text  # a reason is shown as written, not as markup
    assert "ok mean · toy · mcar 0.5 · seed 0 (1.0 s, attempt 1)" in text  # verbose: a line per finished trial


def test_on_a_terminal_without_verbose_only_failures_get_a_line():
    console = terminal()
    t = trial()
    progress = SweepProgress(console, total=1, stored=0)
    progress.trial_started(Job(t, 1))
    progress.trial_ended(t, ok(t), retry=False)
    assert "ok mean" not in console.file.getvalue()


# --- the ETA ---------------------------------------------------------------------------------------


def test_nothing_known_gives_no_eta():
    clock = FakeClock()
    eta = EtaEstimator(["vae", "vae"], clock)
    assert eta.remaining() is None
    eta.started("a", "vae")
    clock.at += 60
    assert eta.remaining() is None  # running a minute, but no epoch reported and nothing finished
    assert eta_text(eta.remaining()) == "ETA unknown"


def test_queued_trials_take_their_models_mean_of_finished_trials():
    clock = FakeClock()
    eta = EtaEstimator(["mean", "vae"] * 3, clock)
    for key, model, seconds in [("m0", "mean", 0.01), ("v0", "vae", 100.0), ("v1", "vae", 200.0)]:
        eta.started(key, model)
        clock.at += seconds
        assert eta.ended(key, ok=True, retry=False) == pytest.approx(seconds)
    # left: 2 mean at 0.01 s, 1 vae at 150 s (not the 66.7 s mean of all three finished trials)
    assert eta.remaining() == pytest.approx(2 * 0.01 + 150.0)
    assert eta.expected("misgan") == pytest.approx((0.01 + 100 + 200) / 3)  # no misgan finished: all trials' mean


def test_failed_attempts_do_not_count_towards_the_mean_and_retries_are_queued_again():
    clock = FakeClock()
    eta = EtaEstimator(["vae", "vae"], clock)
    eta.started("a", "vae")
    clock.at += 1
    eta.ended("a", ok=False, retry=True)  # crashed at once: says nothing of how long a vae trains
    assert eta.queued["vae"] == 2 and eta.remaining() is None
    eta.started("a2", "vae")
    clock.at += 50
    eta.ended("a2", ok=True, retry=False)
    assert eta.remaining() == pytest.approx(50.0)


def test_running_trials_are_estimated_from_their_epochs():
    clock = FakeClock()
    eta = EtaEstimator(["vae", "vae", "mean"], clock)
    eta.started("a", "vae")
    clock.at += 30
    eta.epoch("a", 10, 100)  # 10 % in 30 s: 270 s to go at most (early stopping may end it sooner)
    # the queued vae is projected from the running one (300 s); the mean trial, with nothing finished
    # of its model, from the same projection of all running trials
    assert eta.remaining() == pytest.approx(270 + 300 + 300)
    eta.epoch("a", 100, 100)
    assert eta.remaining() == pytest.approx(0 + 30 + 30)  # a is at its last epoch; the queued trials take what it took


def test_a_running_trial_without_epochs_takes_its_models_mean_less_its_elapsed_time():
    clock = FakeClock()
    eta = EtaEstimator(["vae", "vae"], clock)
    eta.started("a", "vae")
    clock.at += 100
    eta.ended("a", ok=True, retry=False)
    eta.started("b", "vae")
    clock.at += 40
    assert eta.remaining() == pytest.approx(60.0)
    clock.at += 100
    assert eta.remaining() == pytest.approx(0.0)  # overdue: expected to end any moment, never negative


def test_remaining_work_is_shared_by_the_trials_seen_running_at_once():
    clock = FakeClock()
    eta = EtaEstimator(["vae"] * 5, clock)
    for key in "abcd":
        eta.started(key, "vae")
    clock.at += 10
    for key in "abcd":
        eta.epoch(key, 1, 10)  # each: 90 s to go
    # 4 running (4 x 90 s) and one queued (100 s, projected from their epochs) on 4 at once
    assert eta.concurrency() == 4 and eta.remaining() == pytest.approx((4 * 90 + 100) / 4)
    for key in "abc":
        eta.ended(key, ok=True, retry=False)  # after 10 s each: the vae mean
    eta.started("e", "vae")
    assert eta.concurrency() == 2 and eta.queued["vae"] == 0  # two trials left: no more than two at once
    assert eta.remaining() == pytest.approx((90 + 10) / 2)  # d from its epochs, e from the mean


def test_progress_shows_its_estimators_eta():
    clock = FakeClock()
    vae, mean = trial("vae"), trial("mean")
    progress = SweepProgress(plain(), total=2, stored=0, pending=[vae, mean], clock=clock)
    progress.trial_started(Job(vae, 1))
    assert "ETA unknown" in progress.status_line()
    clock.at += 41
    progress.epoch_ended(Job(vae, 1), 41, 100)
    assert "ETA 0:02:39" in progress.status_line()  # 59 s for vae, then mean at vae's 100 s (nothing else known)


# --- terminal and plain output ---------------------------------------------------------------------


def test_the_terminal_lists_running_trials_with_their_epoch_under_the_bar():
    console, clock = terminal(), FakeClock()
    vae, mean = trial("vae", dataset="glass"), trial("mean", seed=1)
    with SweepProgress(console, total=3, stored=0, pending=[vae, mean, mean], clock=clock) as progress:
        progress.trial_started(Job(vae, 1))
        progress.trial_started(Job(mean, 1))
        clock.at += 41
        progress.epoch_ended(Job(vae, 1), 12, 1000)
        progress.note("waiting for 3 trials [another sweep] is running")
        progress.progress.refresh()
    text = console.file.getvalue()
    assert "vae · glass · mcar 0.5 · seed 0 — epoch 12/1000, 0:00:41" in text
    assert "mean · toy · mcar 0.5 · seed 1 — 0:00:41" in text  # no epoch: a classical model
    assert "waiting for 3 trials [another sweep] is running" in text  # a note, taken literally
    assert "ETA " in text


def test_plain_output_has_a_line_per_finished_trial_and_no_bar():
    console, clock = plain(), FakeClock()
    a, b = trial("vae"), trial("mean", seed=1)
    with SweepProgress(console, total=3, stored=1, pending=[a, b], clock=clock) as progress:
        progress.trial_started(Job(a, 1))
        clock.at += 20  # less than the status interval: no status line here
        progress.trial_ended(a, ok(a, wall=41.3), retry=False)
        progress.trial_started(Job(b, 2))
        progress.trial_ended(b, ResultRow(b, "failed", "RuntimeError: boom", attempt=2), retry=False)
        progress.note("waiting for 3 trials another sweep is running")
    lines = console.file.getvalue().splitlines()
    assert lines == [
        "1 of 3 trials already stored: skipped; 2 to run",
        "[1/2] ok vae · toy · mcar 0.5 · seed 0 (41.3 s, attempt 1)",
        "[2/2] failed mean · toy · mcar 0.5 · seed 1 (attempt 2, giving up): RuntimeError: boom",
        "waiting for 3 trials another sweep is running",
    ]  # long lines stay whole: no wrapping at the console's 80 columns, no bar, no escape codes


def test_trials_another_sweep_stored_end_here_apart_and_leave_the_eta():
    console, clock = plain(), FakeClock()
    a, b, c = trial("vae"), trial("vae", seed=1), trial("mean", seed=2)
    with SweepProgress(console, total=3, stored=0, pending=[a, b, c], clock=clock) as progress:
        progress.trial_started(Job(a, 1))
        clock.at += 10
        progress.trial_ended(a, ok(a, wall=10.0), retry=False)
        progress.trial_elsewhere(b, "ok")  # its 10 s are no longer ahead
        assert counts(progress) == {"done": 1, "running": 0, "failed": 0, "elsewhere": 1, "remaining": 1, "bar": (2, 3)}
        assert progress.eta.queued == {"vae": 0, "mean": 1} and progress.eta.remaining() == 10.0  # mean: all finished
        clock.at += STATUS_EVERY_S
        progress.trial_elsewhere(c, "failed")
    lines = console.file.getvalue().splitlines()
    assert lines[2:4] == ["[2/3] stored by another sweep (ok): vae · toy · mcar 0.5 · seed 1",
                          "[3/3] stored by another sweep (failed): mean · toy · mcar 0.5 · seed 2"]
    assert "0 failed · 2 by another sweep · 0 remaining" in lines[4]


def test_plain_output_opens_with_the_count_even_when_nothing_is_stored():
    console = plain()
    SweepProgress(console, total=2, stored=0)
    assert console.file.getvalue() == "2 trials to run, none already stored\n"


def test_plain_status_lines_come_at_most_every_30_seconds_of_the_clock():
    console, clock = plain(), FakeClock()
    vae = trial("vae")
    progress = SweepProgress(console, total=1, stored=0, pending=[vae], clock=clock)
    progress.trial_started(Job(vae, 1))
    statuses = []
    for epoch in range(1, 11):  # an epoch every 10 s
        clock.at += 10
        progress.epoch_ended(Job(vae, 1), epoch, 100)
        statuses.append(sum("status at" in line for line in console.file.getvalue().splitlines()))
    assert statuses == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]  # at 30, 60 and 90 s
    last = console.file.getvalue().splitlines()[-1]
    assert last == ("status at 0:01:30: 0 done · 1 running · 0 failed · 0 remaining · ETA 0:15:10 · "
                    "running: vae · toy · mcar 0.5 · seed 0 — epoch 9/100, 0:01:30")
    assert STATUS_EVERY_S == 30


# --- epochs from real fits -------------------------------------------------------------------------


def run_local(trials: list[Trial], on_epoch, options: TrialOptions | None = None) -> list[ResultRow]:
    executor = LocalExecutor(options or TrialOptions(), DATA)
    return [row for _, row in executor.run(deque(Job(t, 1) for t in trials), lambda job: None, on_epoch)]


def vae_trial(epochs: int = 3) -> Trial:
    return Trial("vae", "toy", "mcar", 0.5, 0, "vsae", {"max_epochs": epochs, "patience": epochs})


def test_a_local_deep_trial_reports_each_epoch_to_on_epoch():
    heard = []
    vae = vae_trial()
    (row,) = run_local([vae], lambda job, epoch, max_epochs: heard.append((job, epoch, max_epochs)))
    assert row.status == "ok"
    assert heard == [(Job(vae, 1), 1, 3), (Job(vae, 1), 2, 3), (Job(vae, 1), 3, 3)]


def test_a_failing_progress_display_does_not_fail_the_trial():
    calls = []

    def broken(job, epoch, max_epochs):
        calls.append(epoch)
        raise RuntimeError("the display broke")

    (row,) = run_local([vae_trial()], broken)
    assert row.status == "ok" and calls == [1, 2, 3]


def test_the_trial_timeout_alarm_still_passes_through_a_report():
    def alarm(key, epoch, max_epochs):
        raise TrialTimeout("exceeded --trial-timeout 1 s")  # the alarm went off while the display drew

    with reporting_to(alarm):
        report_epoch("k", 1, 3)  # dropped: not a type to keep
        with pytest.raises(TrialTimeout):
            report_epoch("k", 1, 3, keep=(TrialTimeout,))


def test_a_ray_worker_posts_the_first_report_and_the_last_epochs_without_flooding_the_mailbox():
    posted = []

    class Mailbox:  # stands for the actor handle: ``mailbox.post.remote(report)``
        class post:
            remote = staticmethod(posted.append)

    post = posting_to(Mailbox, attempt=2, every_s=3600)
    for epoch in range(1, 11):
        post("k", epoch, 10)
    assert posted == [("k", 2, 1, 10), ("k", 2, 10, 10)]


def test_a_ddp_trial_reports_rank_zeros_epochs():
    os.environ.pop("MASTER_PORT", None)  # a port left by an earlier DDP fit of this process may be taken
    heard = []
    options = TrialOptions(distribution=Distribution(2, "ddp"))
    (row,) = run_local([vae_trial()], lambda job, epoch, max_epochs: heard.append((epoch, max_epochs)), options)
    os.environ.pop("MASTER_PORT", None)
    assert row.status == "ok", row.reason
    assert heard == [(1, 3), (2, 3), (3, 3)]  # once each: from rank 0 only
