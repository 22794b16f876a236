import json
import sqlite3

import pytest
import torch
from helpers import correlated_dataset

from imputebench.models import registry
from imputebench.models.imputer import Imputer, merge_observed
from imputebench.runner.execute import run_sweep
from imputebench.runner.store import APPLICATION_ID, SCHEMA_VERSION, ResultStore, StoreError
from imputebench.runner.trials import Trial, expand

DATA = {"toy": correlated_dataset(300)}


class _Broken(Imputer):
    """Always raises: stands for a model that crashes."""

    def fit(self, train, val=None):
        raise RuntimeError("boom")

    def impute(self, table):  # pragma: no cover - never reached
        return table.x


class _NaN(Imputer):
    """Returns NaN at every hidden entry: stands for a diverged model."""

    def fit(self, train, val=None):
        return self

    def impute(self, table):
        return merge_observed(table, torch.full_like(table.x, float("nan")))


@pytest.fixture
def extra_models(monkeypatch):
    monkeypatch.setitem(registry._MODELS, "broken", _Broken)
    monkeypatch.setitem(registry._MODELS, "nan", _NaN)


def test_expand_orders_models_within_a_cell_and_keys_are_stable():
    trials = expand(["mean", "mice"], ["a", "b"], ["mcar"], [0.3, 0.5], [0, 1], "vsae")
    assert len(trials) == 2 * 2 * 2 * 2
    assert [t.model for t in trials[:2]] == ["mean", "mice"] and trials[0].cell == trials[1].cell
    assert len({t.key for t in trials}) == len(trials)
    assert Trial("mean", "a", "mcar", 0.3, 0, "vsae").key == trials[0].key


@pytest.mark.parametrize("ratio", [0, 1, -0.2, 1.5, float("nan"), True])
def test_sweeps_with_ratios_outside_the_open_unit_interval_fail(ratio):
    with pytest.raises(ValueError, match="missing ratio must"):
        expand(["mean"], ["toy"], ["mcar"], [0.5, ratio], [0], "vsae")


def test_rows_record_metrics_and_provenance(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = run_sweep(expand(["mean"], ["toy"], ["mcar"], [0.5], [0, 1], "vsae"), store, datasets=DATA)
        frame = store.frame()
    assert (summary.ok, summary.failed, summary.skipped) == (2, 0, 0)
    row = frame.iloc[0]
    assert row["status"] == "ok" and row["metric.nrmse"] > 0 and 0 < row["metric.pfc"] < 1
    assert row["wall_time_s"] > 0 and row["peak_rss_mb"] > 0
    assert len(row["mask_hash"]) == 64 and row["git_commit"]
    assert json.loads(row["versions"])["torch"].startswith("2.13")
    assert frame["mask_hash"].nunique() == 2  # one mask per seed


def test_failures_are_isolated_and_recorded(tmp_path, extra_models):
    trials = expand(["broken", "nan", "mean"], ["toy"], ["mcar"], [0.5], [0], "vsae")
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = run_sweep(trials, store, datasets=DATA)
        frame = store.frame().set_index("model")
    assert (summary.ok, summary.failed) == (1, 2)
    assert frame.loc["broken", "status"] == "failed" and "RuntimeError: boom" in frame.loc["broken", "reason"]
    assert frame.loc["nan", "status"] == "diverged"
    assert frame.loc["mean", "status"] == "ok"


def test_interrupted_sweep_keeps_finished_rows_and_resumes(tmp_path):
    trials = expand(["mean"], ["toy"], ["mcar"], [0.3, 0.5], [0, 1], "vsae")
    path = tmp_path / "r.sqlite"
    seen = []

    def interrupt_after_two(trial, row, retry):
        seen.append(trial)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with ResultStore(path) as store, pytest.raises(KeyboardInterrupt):
        run_sweep(trials, store, datasets=DATA, on_trial_end=interrupt_after_two)
    with ResultStore(path) as store:
        assert store.finished_keys() == {t.key for t in trials[:2]}
        summary = run_sweep(trials, store, datasets=DATA)
        assert (summary.skipped, summary.ok) == (2, 2)
        assert store.finished_keys() == {t.key for t in trials}


def test_failed_trials_are_retried_on_rerun(tmp_path, extra_models, monkeypatch):
    trials = expand(["broken"], ["toy"], ["mcar"], [0.5], [0], "vsae")
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_sweep(trials, store, datasets=DATA)
        monkeypatch.setitem(registry._MODELS, "broken", registry.get_model("mean"))
        summary = run_sweep(trials, store, datasets=DATA)
        assert summary.ok == 1 and store.frame()["status"].tolist() == ["ok"]


def test_a_file_that_is_not_a_store_fails_clearly(tmp_path):
    bogus = tmp_path / "r.sqlite"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not an imputebench results store .not an SQLite database"):
        ResultStore(bogus)
    assert bogus.read_bytes().startswith(b"this is not sqlite")


def test_a_cell_that_cannot_be_prepared_fails_every_model_with_its_reason(tmp_path):
    toy = DATA["toy"]
    values = toy.values.copy()
    values[:, 1] = 7.0  # a constant feature
    data = {"const": type(toy)("const", values, toy.schema)}
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = run_sweep(expand(["mean", "mice"], ["const"], ["mcar"], [0.5], [0], "vsae"), store, datasets=data)
        frame = store.frame()
    assert summary.failed == 2
    assert frame["reason"].str.contains("feature 'b' is constant").all()


def test_a_store_of_another_layout_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE trials (key TEXT PRIMARY KEY, model TEXT)")
        db.execute("INSERT INTO trials VALUES ('abc', 'mean')")
    with pytest.raises(StoreError, match="not an imputebench results store .its trials table has columns key, model"):
        ResultStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT * FROM trials").fetchall() == [("abc", "mean")]


class _Slow(Imputer):
    """Sleeps in Python far past any timeout the tests set: stands for a trial that hangs."""

    def fit(self, train, val=None):
        import time

        time.sleep(60)
        return self

    def impute(self, table):  # pragma: no cover - never reached
        return table.x


def test_failures_are_retried_under_new_attempt_numbers_and_every_attempt_is_kept(tmp_path, extra_models):
    trials = expand(["broken", "mean"], ["toy"], ["mcar"], [0.5], [0], "vsae")
    ended = []
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = run_sweep(trials, store, datasets=DATA, max_retries=2,
                            on_trial_end=lambda trial, row, retry: ended.append((trial.model, row.attempt, retry)))
        assert (summary.ok, summary.failed, summary.retried) == (1, 1, 2)
        assert ended == [("broken", 1, True), ("mean", 1, False), ("broken", 2, True), ("broken", 3, False)]
        attempts = store.attempts()
        assert attempts.groupby("model")["attempt"].apply(list).to_dict() == {"broken": [1, 2, 3], "mean": [1]}
        assert (attempts.loc[attempts["model"] == "broken", "status"] == "failed").all()
        row = store.frame().set_index("model").loc["broken"]
        assert row["status"] == "failed" and row["attempt"] == 3
        # a later sweep goes on numbering: the next attempt is the fourth
        run_sweep(trials, store, datasets=DATA)
        assert store.attempts_made()[trials[0].key] == 4 and store.attempts_made()[trials[1].key] == 1


def test_an_ok_row_is_never_replaced_by_a_later_failure(tmp_path, extra_models):
    from imputebench.runner.store import ResultRow

    trial = expand(["mean"], ["toy"], ["mcar"], [0.5], [0], "vsae")[0]
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_sweep([trial], store, datasets=DATA)
        store.write(ResultRow(trial, "failed", "a second process failed it", attempt=2))
        assert store.frame()["status"].tolist() == ["ok"]
        assert store.attempts()["status"].tolist() == ["ok", "failed"]


def test_a_trial_past_its_timeout_is_stored_as_timeout_and_the_sweep_goes_on(tmp_path, extra_models, monkeypatch):
    from imputebench.runner.executors import LocalExecutor
    from imputebench.runner.worker import TrialOptions

    monkeypatch.setitem(registry._MODELS, "slow", _Slow)
    trials = expand(["slow", "mean"], ["toy"], ["mcar"], [0.5], [0], "vsae")
    # the limit holds for mean's trial too: 2 s leaves it a wide margin on a loaded machine (it takes ~0.05 s)
    executor = LocalExecutor(TrialOptions(timeout_s=2.0), DATA)
    with ResultStore(tmp_path / "r.sqlite") as store:
        summary = run_sweep(trials, store, executor=executor, max_retries=1)
        frame = store.frame().set_index("model")
        attempts = store.attempts()
    assert (summary.ok, summary.failed, summary.retried) == (1, 1, 1)
    # the status proves the alarm stopped it (it would sleep a minute, then be ok); the alarm cannot fire
    # before the limit, and how long after it the trial ended is the machine's load, so no upper bound
    assert frame.loc["slow", "status"] == "timeout" and "--trial-timeout 2 s" in frame.loc["slow", "reason"]
    assert frame.loc["slow", "wall_time_s"] >= 2.0
    assert attempts.loc[attempts["model"] == "slow", "status"].tolist() == ["timeout", "timeout"]
    assert frame.loc["mean", "status"] == "ok"


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_a_timeout_that_is_not_positive_is_refused(bad):
    from imputebench.runner.worker import TrialOptions

    with pytest.raises(ValueError, match="--trial-timeout must be > 0"):
        TrialOptions(timeout_s=bad)


def legacy_store(path, version: int = 1, attempts: bool = False) -> None:
    """A store as imputebench wrote it before stores were marked (schema 1: no attempt column; 2: attempts)."""
    from imputebench.runner.store import LEGACY_ATTEMPT_COLUMNS, LEGACY_COLUMNS

    columns = LEGACY_COLUMNS[version]
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE trials ({', '.join(columns)}, PRIMARY KEY (config_hash))")
        values = {c: None for c in columns} | dict(
            config_hash="k1", model="mean", dataset="toy", mechanism="mcar", ratio=0.5, seed=0, protocol="vsae",
            status="ok", metrics='{"nrmse": 0.9}', config="{}") | ({"attempt": 2} if version == 2 else {})
        db.execute(f"INSERT INTO trials VALUES ({', '.join('?' * len(columns))})", list(values.values()))
        if attempts:
            db.execute(f"CREATE TABLE attempts ({', '.join(LEGACY_ATTEMPT_COLUMNS)}, PRIMARY KEY (config_hash, attempt))")
            for attempt, status in ((1, "failed"), (2, "ok")):
                row = {c: values.get(c) for c in LEGACY_ATTEMPT_COLUMNS} | {"attempt": attempt, "status": status}
                db.execute(f"INSERT INTO attempts VALUES ({', '.join('?' * len(row))})", list(row.values()))
    db.close()


def test_a_store_from_before_attempts_is_upgraded_in_place_keeping_every_row(tmp_path):
    path = tmp_path / "old.sqlite"
    legacy_store(path, version=1)
    with ResultStore(path) as store:
        frame = store.frame()
        assert frame[["config_hash", "status", "attempt"]].values.tolist() == [["k1", "ok", 1]]
        assert frame["metric.nrmse"].item() == 0.9
        assert store.attempts()[["config_hash", "attempt", "status"]].values.tolist() == [["k1", 1, "ok"]]
        assert store.finished_keys() == {"k1"}
        # its data hash cannot be known: marked so, and its setting is never a verified row's
        assert frame["data_status"].item() == "unknown" and frame["data_sha256"].isna().all()
        assert json.loads(frame["identity"].item())["data"] == {"sha256": None, "status": "unknown"}
        verified = Trial("mean", "toy", "mcar", 0.5, 0, "vsae", {}, {"sha256": "ab" * 32, "status": "verified"})
        assert frame["setting"].item() != verified.setting


def test_a_schema_2_store_is_migrated_with_its_attempt_history(tmp_path):
    path = tmp_path / "old.sqlite"
    legacy_store(path, version=2, attempts=True)
    with ResultStore(path) as store:
        attempts = store.attempts()
        setting = store.frame()["setting"].item()
    assert attempts[["attempt", "status"]].values.tolist() == [[1, "failed"], [2, "ok"]]
    assert (attempts["setting"] == setting).all()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_a_migration_that_fails_half_way_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    from imputebench.runner import store as store_module

    path = tmp_path / "old.sqlite"
    legacy_store(path, version=2, attempts=True)

    def broken(identity):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(store_module, "setting_of", broken)
    with pytest.raises(RuntimeError, match="disk gone"):
        ResultStore(path)
    with sqlite3.connect(path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"trials", "attempts"}
        assert db.execute("SELECT config_hash, status FROM trials").fetchall() == [("k1", "ok")]
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    db.close()
