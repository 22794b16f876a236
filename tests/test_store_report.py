"""`imputebench store show`'s counts: one line per configuration (setting), labelled by what differs."""

from __future__ import annotations

from imputebench.runner.store import ResultRow, ResultStore
from imputebench.runner.store_report import SETTING_DIGITS, configurations, status_counts
from imputebench.runner.trials import Trial

VERIFIED = {"sha256": "cd" * 32, "status": "verified"}


def trial(seed: int, model: str = "vae", ratio: float = 0.5, **config: object) -> Trial:
    return Trial(model, "toy", "mcar", ratio, seed, "vsae", dict(config), VERIFIED)


def stored(tmp_path, rows: list[ResultRow]) -> ResultStore:
    store = ResultStore(tmp_path / "s.sqlite")
    for row in rows:
        store.write(row)
    return store


def test_each_setting_is_one_line_labelled_by_the_fields_in_which_it_differs(tmp_path):
    rows = [ResultRow(trial(seed, max_epochs=5), "ok", None, metrics={"nrmse": 0.5}, finished_at="2026-12-01T10:00:00+00:00")
            for seed in (0, 1)]
    rows += [ResultRow(trial(0, max_epochs=6), "failed", "RuntimeError: boom", finished_at="2026-12-02T10:00:00+00:00"),
             ResultRow(trial(0, "mean"), "ok", None, metrics={"nrmse": 0.9}, finished_at="2026-12-01T09:00:00+00:00"),
             ResultRow(trial(0, ratio=0.2, max_epochs=5), "ok", None, metrics={"nrmse": 0.4},
                       finished_at="2026-12-01T08:00:00+00:00")]
    with stored(tmp_path, rows) as store:
        lines = configurations(store.frame(), store.attempts())
    assert lines["label"].tolist() == ["vae (max_epochs=6)", "vae (max_epochs=5)", "mean", "vae"]  # latest first
    assert lines[["ok", "not ok"]].values.tolist() == [[0, 1], [2, 0], [1, 0], [1, 0]]
    assert lines["setting"].tolist()[1] == trial(7, max_epochs=5).setting[:SETTING_DIGITS]
    assert lines["ratio"].tolist() == [0.5, 0.5, 0.5, 0.2] and set(lines["data"]) == {"verified"}
    assert lines["last run"].tolist()[0] == "2026-12-02 10:00"


def test_status_counts_count_ok_and_not_ok_per_value(tmp_path):
    rows = [ResultRow(trial(0), "ok", None, metrics={"nrmse": 0.5}), ResultRow(trial(1), "timeout", "slow"),
            ResultRow(trial(0, "mean"), "ok", None, metrics={"nrmse": 0.9})]
    with stored(tmp_path, rows) as store:
        counts = status_counts(store.frame(), ["model"])
    assert counts.to_dict("index") == {"mean": {"ok": 1, "not ok": 0}, "vae": {"ok": 1, "not ok": 1}}
