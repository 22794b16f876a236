"""A sweep killed half-way (``kill -9``) or stopped with Ctrl-C, then rerun: every trial stored exactly once.

These run ``imputebench run`` as a real child process on the mirror's embedded datasets, and kill
it while it writes: the store must hold no duplicated and no lost rows after the same command runs again.
The tests wait on what the child has stored, never on a clock: the limits below only end a child that hangs.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

ENTRY = "from imputebench.cli import main; main()"
#: seconds a child may take to store the rows waited for, to stop after Ctrl-C, or to run a sweep again:
#: each takes well under a minute even on a loaded 2-core machine, so only a hung child reaches it
LIMIT_S = 600


def sweep(store, mirror_dir, models: str, seeds: int, *extra: str) -> list[str]:
    return [sys.executable, "-c", ENTRY, "run", "--models", models, "--datasets", "iris,wine", "--ratios", "0.3,0.5",
            "--seeds", str(seeds), "--store", str(store), "--data-dir", str(mirror_dir), *extra]


@pytest.fixture
def start():
    """``start(command, **popen_arguments)``: a child process, killed when the test ends if it still runs
    (a failed test must not leave a sweep training on the machine)."""
    children: list[subprocess.Popen] = []

    def popen(command: list[str], **kwargs) -> subprocess.Popen:
        children.append(subprocess.Popen(command, **kwargs))
        return children[-1]

    yield popen
    for child in children:
        if child.poll() is None:
            child.kill()
            child.communicate()


def stored(store) -> tuple[int, int]:
    """(trial rows, distinct trial keys) in the store; (0, 0) before it exists."""
    if not store.exists():
        return 0, 0
    with sqlite3.connect(store, timeout=60) as db:
        try:
            return db.execute("SELECT COUNT(*), COUNT(DISTINCT config_hash) FROM trials").fetchone()
        except sqlite3.OperationalError:  # the child has not created the table yet
            return 0, 0


def wait_for_rows(store, process: subprocess.Popen, at_least: int) -> int:
    deadline = time.monotonic() + LIMIT_S
    while time.monotonic() < deadline and process.poll() is None:
        rows, _ = stored(store)
        if rows >= at_least:
            return rows
        time.sleep(0.02)
    pytest.fail(f"the sweep stored fewer than {at_least} rows before it {'ended' if process.poll() is not None else 'timed out'}")


def test_kill_9_half_way_then_the_same_command_finishes_exactly_the_missing_trials(tmp_path, mirror_dir, start):
    store = tmp_path / "r.sqlite"
    command = sweep(store, mirror_dir, "mean", 30)  # 2 datasets x 2 ratios x 30 seeds = 120 trials
    total = 120
    with open(tmp_path / "stderr.txt", "w") as stderr:  # a file: a pipe nobody reads could fill and stall the child
        child = start(command, stdout=subprocess.DEVNULL, stderr=stderr)
        wait_for_rows(store, child, at_least=10)
        child.send_signal(signal.SIGKILL)
        child.wait()
    rows_at_kill, keys_at_kill = stored(store)
    assert child.returncode == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()
    assert 10 <= rows_at_kill < total, "the kill must land half-way"
    assert rows_at_kill == keys_at_kill

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=LIMIT_S)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{total} trials: {rows_at_kill} already stored, {total - rows_at_kill} ran ok, 0 failed" in rerun.stderr
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT config_hash) FROM trials").fetchone() == (total, total)
        # every attempt is the first: nothing ran twice
        assert db.execute("SELECT COUNT(*), MAX(attempt) FROM attempts").fetchone() == (total, 1)


def test_ctrl_c_during_a_deep_fit_stops_cleanly_and_a_rerun_resumes(tmp_path, mirror_dir, start):
    store = tmp_path / "r.sqlite"
    command = sweep(store, mirror_dir, "mean,vae", 2, "--max-epochs", "200", "--patience", "200")
    child = start(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(store, child, at_least=1)  # mean's row is in; vae (200 epochs) is training now
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=LIMIT_S)
    assert child.returncode == 130, err
    assert "interrupted; every finished trial is stored" in err and "Traceback" not in err
    rows, keys = stored(store)
    assert 1 <= rows == keys < 16
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM trials WHERE status != 'ok'").fetchone() == (0,)  # nothing half-written

    fast = sweep(store, mirror_dir, "mean", 2)  # the mean trials again: all stored, none rerun
    rerun = subprocess.run(fast, capture_output=True, text=True, timeout=LIMIT_S)
    assert rerun.returncode == 0, rerun.stderr
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT config_hash) FROM trials WHERE model = 'mean'").fetchone() == (8, 8)
        assert db.execute("SELECT MAX(attempt) FROM attempts WHERE model = 'mean'").fetchone() == (1,)
