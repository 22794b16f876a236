"""The store's claims, forget and audit, and a row's identity: what concurrent sweeps and `imputebench store` rely on."""

from __future__ import annotations

import json
import threading

import pytest
from helpers import correlated_dataset

from imputebench.runner import execute
from imputebench.runner import store as store_module
from imputebench.runner.execute import ClaimingQueue, run_sweep
from imputebench.runner.executors import Job
from imputebench.runner.store import ResultRow, ResultStore, Selection, StoreError, check_store
from imputebench.runner.trials import Trial, expand

DATA = {"toy": correlated_dataset(200)}
VERIFIED = {"sha256": "cd" * 32, "status": "verified"}


def trial(seed: int = 0, model: str = "mean", **config: object) -> Trial:
    return Trial(model, "toy", "mcar", 0.5, seed, "vsae", dict(config), VERIFIED)


def test_a_row_shows_its_whole_identity_as_readable_json(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as store:
        store.write(ResultRow(trial(3, "vae", max_epochs=5), "ok", None, metrics={"nrmse": 0.5}))
        row = store.row(trial(3, "vae", max_epochs=5).key[:8])
    identity = row["identity"]
    assert identity["config"] == {"max_epochs": 5} and identity["data"] == VERIFIED and identity["seed"] == 3
    assert identity["mechanism"] == {"name": "mcar"} and identity["protocol"]["test_fraction"] == 0.2
    assert identity["numerics"] >= 1 and row["setting"] == trial(9, "vae", max_epochs=5).setting
    assert (row["data_sha256"], row["data_status"]) == (VERIFIED["sha256"], "verified")


def test_everything_in_the_identity_changes_the_key_and_only_the_seed_keeps_the_setting():
    base = trial(0, "vae", max_epochs=5)
    others = [trial(0, "vae", max_epochs=6), Trial("vae", "toy", "mcar", 0.5, 0, "vsae", {"max_epochs": 5}, {"sha256": "ef" * 32, "status": "verified"}),
              Trial("vae", "toy", "mcar", 0.5, 0, "vsae", {"max_epochs": 5}, {**VERIFIED, "status": "modified"}),
              Trial("vae", "toy", "mcar", 0.5, 0, "vaeac", {"max_epochs": 5}, VERIFIED),
              Trial("vae", "toy", "mcar", 0.5, 0, "vsae", {"max_epochs": 5}, VERIFIED, numerics=base.numerics + 1)]
    assert len({t.key for t in [base, *others]}) == 6 and base.setting not in {t.setting for t in others}
    assert trial(1, "vae", max_epochs=5).setting == base.setting != trial(1, "vae", max_epochs=5).key


def test_a_claim_is_exclusive_while_its_heartbeat_lives_and_taken_over_once_stale(tmp_path, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(store_module.time, "time", lambda: now[0])
    with ResultStore(tmp_path / "s.sqlite") as store:
        key = trial().key
        assert store.claim(key, "a") == "claimed" and store.claim(key, "a") == "claimed"
        assert store.claim(key, "b") == "busy" and store.live_claims({key}, "b") == {key}
        now[0] += store_module.STALE_AFTER_S - 1
        store.beat("a")  # a heartbeat keeps it
        now[0] += store_module.STALE_AFTER_S - 1
        assert store.claim(key, "b") == "busy"
        now[0] += 2  # a's heartbeat stopped (kill -9): stale
        assert store.live_claims({key}, "b") == set() and store.claim(key, "b") == "claimed"
        assert store.claim(key, "a") == "busy"
        store.write(ResultRow(trial(), "ok", None, metrics={"nrmse": 1.0}), owner="b")  # ends b's claim
        assert store.claim(key, "c") == "done"


def test_an_attempt_computed_twice_is_counted_twice_and_never_overwritten(tmp_path):
    """Two sweeps that computed attempt 1 of one trial (a stale claim taken over from a sweep that was only slow)
    leave two attempts: the attempts table counts every computation; the trial keeps one row, its latest ok."""
    with ResultStore(tmp_path / "s.sqlite") as store:
        store.write(ResultRow(trial(), "ok", None, metrics={"nrmse": 0.5}, attempt=1))
        store.write(ResultRow(trial(), "ok", None, metrics={"nrmse": 0.7}, attempt=1))
        attempts = store.attempts()
        frame = store.frame()
    assert attempts["attempt"].tolist() == [1, 2]
    assert len(frame) == 1 and frame["metric.nrmse"].item() == 0.7 and frame["attempt"].item() == 2


def test_the_queue_skips_live_claims_and_trials_another_sweep_stored(tmp_path):
    trials = [trial(seed) for seed in range(3)]
    with ResultStore(tmp_path / "s.sqlite") as store:
        store.claim(trials[0].key, "other")
        store.write(ResultRow(trials[1], "ok", None, metrics={"nrmse": 1.0}))
        queue = ClaimingQueue([Job(t, 1) for t in trials], store, "me", {t.key: 1 for t in trials})
        assert queue and queue.popleft().trial == trials[2] and not queue
        assert [job.trial for job in queue.deferred] == [trials[0]] and queue.elsewhere == {trials[1].key: "ok"}


def test_a_sweep_waits_for_the_trials_another_sweep_runs_then_counts_them_as_stored_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setattr(execute, "WAIT_POLL_S", 0.05)
    trials = expand(["mean"], ["toy"], ["mcar"], [0.5], [0, 1], "vsae")
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as other:
        other.claim(trials[0].key, "other")
    waits = []

    def other_sweep_finishes(count: int) -> None:
        waits.append(count)
        with ResultStore(path) as other:
            other.write(ResultRow(trials[0], "ok", None, metrics={"nrmse": 1.0}), owner="other")

    elsewhere = []
    with ResultStore(path) as store:
        summary = run_sweep(trials, store, datasets=DATA, on_wait=other_sweep_finishes,
                            on_elsewhere=lambda t, status: elsewhere.append((t, status)))
        assert (summary.ok, summary.elsewhere) == (1, 1) and waits == [1] and elsewhere == [(trials[0], "ok")]
        assert len(store.attempts()) == 2 and store.live_claims({t.key for t in trials}, "anyone") == set()


def test_the_heartbeat_thread_refreshes_claims_and_releases_them_at_the_end(tmp_path, monkeypatch):
    monkeypatch.setattr(execute, "HEARTBEAT_S", 0.05)
    with ResultStore(tmp_path / "s.sqlite") as store:
        store.claim(trial().key, "me")
        before = store._db.execute("SELECT heartbeat FROM claims").fetchone()[0]
        beaten = threading.Event()
        with execute.heartbeat(store, "me"):
            for _ in range(200):
                if store._db.execute("SELECT heartbeat FROM claims").fetchone()[0] > before:
                    beaten.set()
                    break
                threading.Event().wait(0.05)
        assert beaten.is_set()
        assert store._db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


def test_forget_removes_what_it_selects_with_its_attempts_and_records_it(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as store:
        for seed in range(3):
            store.write(ResultRow(trial(seed, "vae", max_epochs=5), "ok", None, metrics={"nrmse": 1.0}))
            store.write(ResultRow(trial(seed, "vae", max_epochs=6), "failed" if seed else "ok", "boom"))
        six = trial(0, "vae", max_epochs=6).setting
        assert store.count(Selection(failed=True)) == 2
        assert store.forget(Selection(failed=True), "imputebench store forget --failed") == (2, 2)
        assert store.forget(Selection(setting=six[:8]), "imputebench store forget --config x") == (1, 1)
        assert set(store.frame()["setting"]) == {trial(0, "vae", max_epochs=5).setting}
        audit = store.audit()
    assert audit[["trials", "attempts"]].values.tolist() == [[2, 2], [1, 1]]
    assert [json.loads(s) for s in audit["selection"]] == [{"failed": True}, {"setting": six[:8]}]


@pytest.mark.parametrize("selection, message", [(Selection(), "say which rows"), (Selection(setting="abc"), "at least 6")])
def test_forget_needs_a_real_selection(selection, message):
    with pytest.raises(ValueError, match=message):
        selection.where()


def test_check_store_refuses_a_folder_path_and_leaves_nothing_behind(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="is a file, not a folder"):
        check_store(tmp_path / "file" / "s.sqlite")
    with pytest.raises(StoreError, match="not an imputebench results store"):
        check_store(tmp_path)
    check_store(tmp_path / "new" / "s.sqlite")
    assert not (tmp_path / "new").exists()
