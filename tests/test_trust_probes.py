"""Issue 20's probes, each as a new user met it on c9f3b3b: every test here failed there.

1. two budgets of one sweep were pooled into one mean; 2. an edited data file was accepted and its row
reused for the genuine file; 3. bad seeds and config values started the sweep and left failed rows no
command could remove; 4. a foreign SQLite file was modified, and a store on a read-only path could not be
read; 5. two identical sweeps computed trials twice; 6. ``--format htm`` was refused only after the sweep,
``--output missing/dir/x.md`` ended in a traceback, an all-missing column was called "has no rows";
7. (progress) nothing was printed per trial when the output is not a terminal.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from imputebench.cli import app

runner = CliRunner()
GLASS_SHA256 = "dd67373f4baf2807345df02cbfef2093d342e61ad0d82a4fb79af43ef8ce449d"


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def rows(store: Path, sql: str = "SELECT * FROM trials") -> pd.DataFrame:
    with sqlite3.connect(store) as db:
        return pd.read_sql_query(sql, db)


@pytest.fixture
def glass_dir(tmp_path, mirror_dir) -> Path:
    """A private copy of glass's folder (the mirror is never written)."""
    data = tmp_path / "data"
    shutil.copytree(mirror_dir / "glass", data / "glass")
    return data


def edit_one_value(path: Path) -> None:
    """Change one measurement of the first row (1.52101 -> 1.52102): same rows, same columns, other bytes."""
    text = path.read_text()
    assert "1.52101" in text
    path.write_text(text.replace("1.52101", "1.52102", 1))


# --- 1. never pooled ------------------------------------------------------------------------------------
def test_probe1_two_budgets_in_one_store_are_shown_apart_with_their_own_counts(tmp_path, mirror_dir):
    store = tmp_path / "budgets.sqlite"
    for epochs in (1, 2):
        result = invoke("run", "--models", "mean,vae", "--datasets", "glass", "--max-epochs", epochs, "--seeds", 2,
                        "--store", store, "--data-dir", mirror_dir)
        assert result.exit_code == 0, result.output
    stored = rows(store)
    vae = stored[stored["model"] == "vae"]
    budgets = vae["config"].map(lambda c: json.loads(c)["max_epochs"])
    assert len(vae) == 4 and sorted(budgets) == [1, 1, 2, 2] and vae["setting"].nunique() == 2

    def nrmse(frame: pd.DataFrame) -> float:
        return frame["metrics"].map(lambda m: json.loads(m)["nrmse"]).mean()

    everything = invoke("leaderboard", "--store", store, "--format", "csv", "--config", "all")
    assert everything.exit_code == 0, everything.output
    board = pd.read_csv(io.StringIO(everything.output))
    lines = board[(board["model"] == "vae") & (board["metric"] == "nrmse")].set_index("label")
    assert sorted(lines.index) == ["vae (max_epochs=1)", "vae (max_epochs=2)"]
    assert lines["n_seeds"].tolist() == [2, 2]
    for epochs in (1, 2):
        assert lines.loc[f"vae (max_epochs={epochs})", "mean"] == pytest.approx(nrmse(vae[budgets == epochs]), rel=1e-5)
    markdown = invoke("leaderboard", "--store", store, "--config", "all")
    assert "vae (max_epochs=1)" in markdown.output and "vae (max_epochs=2)" in markdown.output

    latest = pd.read_csv(io.StringIO(invoke("leaderboard", "--store", store, "--format", "csv").output))
    line = latest[(latest["model"] == "vae") & (latest["metric"] == "nrmse")]
    assert len(line) == 1 and line["n_seeds"].item() == 2
    assert line["mean"].item() == pytest.approx(nrmse(vae[budgets == 2]), rel=1e-5)
    assert "--config all" in invoke("leaderboard", "--store", store).output  # says older trials are hidden


# --- 2. data verified on every load ------------------------------------------------------------------
def test_probe2_an_edited_data_file_is_refused_and_its_row_never_stands_for_the_genuine_file(tmp_path, glass_dir):
    store = tmp_path / "data.sqlite"
    data_file = glass_dir / "glass" / "glass.data"
    genuine = data_file.read_bytes()
    edit_one_value(data_file)
    edited_sha = hashlib.sha256(data_file.read_bytes()).hexdigest()
    args = ("run", "--models", "mean", "--datasets", "glass", "--store", store, "--data-dir", glass_dir)

    refused = invoke(*args)
    assert refused.exit_code == 2, refused.output
    message = " ".join(refused.output.split())
    assert str(data_file) in refused.output.replace("\n", "") or "glass.data" in message
    assert GLASS_SHA256 in message and edited_sha in message and "--allow-modified-data" in message
    assert not store.exists()

    allowed = invoke(*args, "--allow-modified-data")
    assert allowed.exit_code == 0, allowed.output
    first = rows(store)
    assert first[["data_status", "data_sha256"]].values.tolist() == [["modified", edited_sha]]
    assert json.loads(first["identity"].item())["data"] == {"sha256": edited_sha, "status": "modified"}

    data_file.write_bytes(genuine)
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert "0 already stored, 1 ran ok" in again.output  # the modified row is not reused
    both = rows(store).set_index("data_status")["data_sha256"]
    assert both.to_dict() == {"modified": edited_sha, "verified": GLASS_SHA256}


# --- 3. validated before the first trial, and failed rows can be forgotten ---------------------------------
@pytest.mark.parametrize("option, named", [
    (["--seeds=-1,0"], "--seeds"),
    (["--seeds", "0,x"], "--seeds"),
    (["--ratios", "0.5,1.5"], "--ratios"),
    (["--format", "htm"], "--format"),
])
def test_probe3_bad_values_exit_2_before_the_store_exists(tmp_path, option, named):
    store = tmp_path / "never.sqlite"
    result = invoke("run", "--models", "mean", "--datasets", "iris", "--store", store, *option)
    assert result.exit_code == 2, result.output
    assert named in result.output and not store.exists()


@pytest.mark.parametrize("config, named", [
    ("vae:\n  max_epochs: two\n", "vae.max_epochs = 'two'"),
    ("vae:\n  lr: -1\n", "vae.lr = -1"),
    ("mice:\n  max_iter: 0\n", "mice.max_iter = 0"),
])
def test_probe3_bad_model_config_values_name_the_file_and_key_and_touch_no_store(tmp_path, config, named):
    path = tmp_path / "bad.yaml"
    path.write_text(config)
    store = tmp_path / "never.sqlite"
    result = invoke("run", "--models", "mean,vae", "--datasets", "iris", "--store", store, "--model-config", path)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert str(path) in result.output.replace("\n", "") and named in message
    assert not store.exists()


def test_probe3_failed_rows_can_be_forgotten_and_every_forget_is_audited(tmp_path, monkeypatch):
    store = tmp_path / "failed.sqlite"
    result = invoke("run", "--models", "mean,vae", "--datasets", "iris", "--seeds", 2, "--trial-timeout", 0.001,
                    "--store", store)
    assert result.exit_code == 1  # the vae trials time out
    before = rows(store)
    failed = before[before["status"] != "ok"]
    assert len(failed) >= 2
    shown = invoke("store", "show", "--store", store)
    assert shown.exit_code == 0 and "timeout" in shown.output
    declined = runner.invoke(app, ["store", "forget", "--failed", "--store", str(store)], input="n\n")
    assert declined.exit_code == 1 and len(rows(store)) == len(before)
    command = ["store", "forget", "--failed", "--store", str(store), "--yes"]
    monkeypatch.setattr(sys, "argv", ["/venv/bin/imputebench", *command])  # what the entry point is given
    forgot = invoke(*command)
    assert forgot.exit_code == 0, forgot.output
    after = rows(store)
    assert (after["status"] == "ok").all() and len(after) == len(before) - len(failed)
    assert rows(store, "SELECT COUNT(*) AS n FROM attempts WHERE status != 'ok'")["n"].item() == 0
    audit = rows(store, "SELECT * FROM audit")
    assert audit[["action", "trials"]].values.tolist() == [["forget", len(failed)]]
    assert json.loads(audit["selection"].item()) == {"failed": True} and "--failed" in audit["command"].item()


# --- 4. stores that are not ours, and read-only stores ---------------------------------------------------
def test_probe4_a_foreign_sqlite_file_is_refused_and_left_byte_identical(tmp_path):
    store = tmp_path / "shop.sqlite"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO customers (name) VALUES ('Ada')")
    db.close()
    before = store.read_bytes()
    for args in (("run", "--models", "mean", "--datasets", "iris"), ("leaderboard",), ("store", "show")):
        result = invoke(*args, "--store", store)
        assert result.exit_code == 2, result.output
        message = " ".join(result.output.split())
        assert "not an imputebench results store" in message and "not changed" in message
    assert store.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.sqlite"]


def test_probe4_a_store_on_a_read_only_path_is_read_without_a_write(tmp_path, monkeypatch):
    store = tmp_path / "ro" / "results.sqlite"
    assert invoke("run", "--models", "mean", "--datasets", "iris", "--store", store).exit_code == 0
    before = store.read_bytes()
    real_access = os.access

    def read_only_folder(path, mode, *args, **kwargs):  # as on a read-only medium (tests run as root: chmod is no test)
        if mode & os.W_OK and Path(path).resolve().is_relative_to(store.parent.resolve()):
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", read_only_folder)
    board = invoke("leaderboard", "--store", store)
    assert board.exit_code == 0, board.output
    assert "iris (NRMSE)" in board.output
    assert invoke("store", "show", "--store", store).exit_code == 0
    assert store.read_bytes() == before and sorted(p.name for p in store.parent.iterdir()) == ["results.sqlite"]
    refused = invoke("run", "--models", "mean", "--datasets", "wine", "--store", store)
    assert refused.exit_code == 2 and "read-only" in refused.output


def test_probe4_a_store_of_a_newer_schema_is_refused_untouched(tmp_path):
    store = tmp_path / "future.sqlite"
    assert invoke("run", "--models", "mean", "--datasets", "iris", "--store", store).exit_code == 0
    with sqlite3.connect(store) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    before = store.read_bytes()
    result = invoke("leaderboard", "--store", store)
    assert result.exit_code == 2 and "newer imputebench" in " ".join(result.output.split())
    assert store.read_bytes() == before


# --- 5. no work done twice -------------------------------------------------------------------------------
def test_probe5_two_identical_sweeps_started_together_compute_each_trial_once(tmp_path):
    store = tmp_path / "shared.sqlite"
    command = [sys.executable, "-c", "from imputebench.cli import main; main()", "run", "--models", "mean,vae",
               "--datasets", "iris", "--seeds", "3", "--max-epochs", "3", "--store", str(store)]
    sweeps = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [sweep.communicate(timeout=600)[0] for sweep in sweeps]
    assert [sweep.returncode for sweep in sweeps] == [0, 0], outputs
    ran = [int(text.split(" ran ok")[0].rsplit(" ", 1)[-1]) for text in outputs]
    assert sum(ran) == 6, outputs  # 6 trials, each computed by one sweep
    attempts = rows(store, "SELECT config_hash, attempt FROM attempts")
    assert len(attempts) == 6 and attempts["config_hash"].is_unique


# --- 6. the small ones ---------------------------------------------------------------------------------
def test_probe6_leaderboard_output_creates_missing_folders_or_says_why_not(tmp_path):
    store = tmp_path / "s.sqlite"
    assert invoke("run", "--models", "mean", "--datasets", "iris", "--store", store).exit_code == 0
    target = tmp_path / "missing" / "dir" / "x.md"
    assert invoke("leaderboard", "--store", store, "--output", target).exit_code == 0
    assert "iris (NRMSE)" in target.read_text()
    (tmp_path / "afile").write_text("")
    blocked = invoke("leaderboard", "--store", store, "--output", tmp_path / "afile" / "x.md")
    assert blocked.exit_code == 2 and "is a file" in blocked.output and "Traceback" not in blocked.output


def test_probe6_an_all_missing_column_is_named_as_such(tmp_path, glass_dir):
    data_file = glass_dir / "glass" / "glass.data"
    lines = [line.split(",") for line in data_file.read_text().splitlines()]
    data_file.write_text("\n".join(",".join(f[:2] + ["?"] + f[3:]) for f in lines) + "\n")  # Na missing everywhere
    result = invoke("run", "--models", "mean", "--datasets", "glass", "--data-dir", glass_dir, "--allow-modified-data",
                    "--store", tmp_path / "s.sqlite")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "'Na' is entirely missing" in message
    assert "has no rows" not in message and not (tmp_path / "s.sqlite").exists()


# --- 7. progress a person can read -------------------------------------------------------------------------
def test_probe7_output_to_a_pipe_gets_a_plain_line_per_finished_trial(tmp_path):
    result = invoke("run", "--models", "mean,vae", "--datasets", "iris", "--seeds", 2, "--max-epochs", 2,
                    "--store", tmp_path / "s.sqlite")  # CliRunner's output is not a terminal
    assert result.exit_code == 0, result.output
    assert "4 trials to run, none already stored" in result.output
    finished = [line for line in result.output.splitlines() if line.startswith("[")]
    assert [line.split(" ")[0] for line in finished] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert sum("ok vae · iris · mcar 0.5 · seed" in line and "attempt 1)" in line for line in finished) == 2
