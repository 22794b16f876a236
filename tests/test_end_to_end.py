"""Slow: the CLI on real UCI files from the mirror, classical baselines against the mean."""

import sqlite3

import pytest
from typer.testing import CliRunner

from imputebench.cli import app
from imputebench.leaderboard import summarise
from imputebench.runner.store import ResultStore

pytestmark = pytest.mark.slow


def test_classical_baselines_beat_the_mean_on_real_tables(tmp_path, mirror_dir):
    store = tmp_path / "r.sqlite"
    result = CliRunner().invoke(app, [
        "run", "--models", "mean,mice,missforest", "--datasets", "breast_cancer_wisconsin,zoo,heart", "--protocol", "vaeac",
        "--mechanisms", "mcar,mar", "--ratios", "0.3", "--seeds", "1", "--data-dir", str(mirror_dir), "--store", str(store),
    ])
    assert result.exit_code == 0, result.output
    with ResultStore(store) as results:
        frame = results.frame()
        board = summarise(frame).set_index(["dataset", "mechanism", "model", "metric"])["mean"]
    assert (frame["status"] == "ok").all() and len(frame) == 3 * 3 * 2
    for mechanism in ("mcar", "mar"):
        # Heart's five numeric features are nearly independent: no model should be expected
        # to beat the mean there, so only its categorical half is checked.
        for dataset, metric in (("breast_cancer_wisconsin", "nrmse"), ("zoo", "pfc"), ("heart", "pfc")):
            mean = board[(dataset, mechanism, "mean", metric)]
            for model in ("mice", "missforest"):
                assert board[(dataset, mechanism, model, metric)] < mean, (dataset, mechanism, model, metric)
    with sqlite3.connect(store) as db:
        (hashes,) = db.execute("SELECT COUNT(DISTINCT mask_hash) FROM trials").fetchone()
    assert hashes == 3 * 2  # one mask per (dataset, mechanism), shared by the three models
