"""`imputebench store export` / `store import`: a store's rows as text, merged into another store without
altering a stored finished row, and a sweep resuming from the merge."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from imputebench.cli import app
from imputebench.runner.store import ResultRow, ResultStore
from imputebench.runner.trials import Trial

runner = CliRunner()
VERIFIED = {"sha256": "cd" * 32, "status": "verified"}


def trial(seed: int) -> Trial:
    return Trial("mean", "toy", "mcar", 0.5, seed, "vsae", {}, VERIFIED)


def said(result) -> str:
    return " ".join(result.output.split())


def export(store, out):
    result = runner.invoke(app, ["store", "export", str(out), "--store", str(store)])
    assert result.exit_code == 0, result.output
    return out.read_text()


def test_a_sweep_exported_and_imported_elsewhere_resumes_with_nothing_to_run(tmp_path):
    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    sweep = ["run", "--models", "mean,mice", "--datasets", "iris", "--seeds", "2", "--max-epochs", "1"]
    assert runner.invoke(app, [*sweep, "--store", str(first)]).exit_code == 0
    text = export(first, tmp_path / "a.jsonl")
    imported = runner.invoke(app, ["store", "import", str(tmp_path / "a.jsonl"), "--store", str(second)])
    assert imported.exit_code == 0 and "4 trials added" in said(imported)
    assert export(second, tmp_path / "b.jsonl") == text  # every value as it was stored
    resumed = runner.invoke(app, [*sweep, "--store", str(second)])
    assert resumed.exit_code == 0 and "4 of 4 trials already stored" in said(resumed)
    again = runner.invoke(app, ["store", "import", str(tmp_path / "a.jsonl"), "--store", str(second)])
    assert "0 trials added" in said(again) and "4 kept as stored, 0 attempts added" in said(again)  # idempotent


def test_an_import_never_alters_a_finished_row_and_finishes_an_unfinished_one(tmp_path):
    source, target = tmp_path / "source.sqlite", tmp_path / "target.sqlite"
    with ResultStore(source) as store:
        for seed in range(3):
            store.write(ResultRow(trial(seed), "ok", None, metrics={"nrmse": 0.1 * (seed + 1)}, finished_at=f"s{seed}"))
    with ResultStore(target) as store:
        store.write(ResultRow(trial(0), "ok", None, metrics={"nrmse": 9.0}, finished_at="t0"))  # computed here too
        store.write(ResultRow(trial(1), "failed", "boom", finished_at="t1"))
    export(source, tmp_path / "source.jsonl")
    result = runner.invoke(app, ["store", "import", str(tmp_path / "source.jsonl"), "--store", str(target)])
    assert "1 trials added, 1 unfinished trials finished by an imported ok row, 1 kept as stored, 3 attempts added" in said(result)
    with ResultStore(target, readonly=True) as store:
        rows = store.frame().set_index("seed")
        attempts = store.attempts()
    assert rows.loc[0, "metric.nrmse"] == 9.0  # the target's own finished row stays
    assert rows.loc[1, "status"] == "ok" and rows.loc[1, "metric.nrmse"] == pytest.approx(0.2)
    assert rows.loc[2, "metric.nrmse"] == pytest.approx(0.3)
    numbered = attempts.set_index(["seed", "finished_at"])["attempt"].to_dict()
    assert numbered == {(0, "t0"): 1, (0, "s0"): 2, (1, "t1"): 1, (1, "s1"): 2, (2, "s2"): 1}  # every computation kept


@pytest.mark.parametrize(("edit", "message"), [
    (lambda lines: ["not json", *lines[1:]], "line 1 is not JSON"),
    (lambda lines: ['{"format": "other"}', *lines[1:]], "line 1 is not the header of an imputebench store export"),
    (lambda lines: lines[:-1], "the header announces 2 trials and 2 attempts but the file holds"),
    (lambda lines: [lines[0], lines[1].replace('"status": "ok"', '"status": "great"'), *lines[2:]], "line 2: a trial needs a key and a status"),
    (lambda lines: [lines[0], lines[1].replace('"seed"', '"seeds"'), *lines[2:]], "line 2: a trial needs exactly the store's columns"),
])
def test_a_bad_export_exits_2_and_leaves_the_store_as_it_was(tmp_path, edit, message):
    source, target = tmp_path / "source.sqlite", tmp_path / "target.sqlite"
    with ResultStore(source) as store:
        for seed in range(2):
            store.write(ResultRow(trial(seed), "ok", None, metrics={"nrmse": 0.5}))
    with ResultStore(target) as store:
        store.write(ResultRow(trial(5), "ok", None, metrics={"nrmse": 0.7}))
    lines = export(source, tmp_path / "good.jsonl").splitlines()
    (tmp_path / "bad.jsonl").write_text("\n".join(edit(lines)) + "\n")
    before = export(target, tmp_path / "before.jsonl")
    result = runner.invoke(app, ["store", "import", str(tmp_path / "bad.jsonl"), "--store", str(target)])
    assert result.exit_code == 2 and message in said(result) and "bad.jsonl" in said(result)
    assert export(target, tmp_path / "after.jsonl") == before
