"""benchmarks/polymnist.py (papers/003 Tables 1 and 2) end to end on a few hundred PolyMNIST rows generated in
memory from the mirror's MNIST test split: both models for one epoch on one version, the tables' shapes, metrics
in range, the three output files; the data directory checks; the findings' rules on the paper's own numbers."""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import sys
from pathlib import Path

import pytest

from imputebench.data.dataset import DatasetError
from imputebench.data.images import read_idx_pair
from imputebench.data.multimodal import MNIST_FILES
from imputebench.data.polymnist import generate, polymnist_dataset, read_backgrounds

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    """The benchmark script, imported as a module."""
    spec = importlib.util.spec_from_file_location("polymnist_benchmark", REPOSITORY / "benchmarks" / "polymnist.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module's annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def extended(mirror_dir):
    """400 extended PolyMNIST rows from MNIST's test images, the last 100 marked as the test rows."""
    files = (MNIST_FILES["t10k-images-idx3-ubyte.gz"], MNIST_FILES["t10k-labels-idx1-ubyte.gz"])
    rows = generate(*read_idx_pair(*(file.local_path(mirror_dir) for file in files)), read_backgrounds(), "test",
                    n_rows=400, extended=True)
    return polymnist_dataset("polymnist_extended", rows.values, rows.digits, n_test=100)


@pytest.fixture(scope="module")
def results(bench, extended):
    budget = bench.Budget(train_rows=300, test_rows=100, epochs=1, latent_dim=8, classifier_rows=300,
                          classifier_epochs=1)
    return bench.run(["extended"], ["mrvae", "mopoe"], budget, Path("unused"), threads=1, log=lambda _: None,
                     datasets={"extended": extended}, matmul_seconds=0.05)


def test_every_metric_of_every_input_set_for_both_models(bench, results):
    for model in ("mrvae", "mopoe"):
        for inputs in bench.INPUT_SETS:
            assert 0.0 <= results.value("extended", model, "coherence", inputs) <= 1.0
            distance = results.value("extended", model, "frechet", inputs)
            assert math.isfinite(distance) and distance >= 0.0
            assert 0.0 <= results.value("extended", model, "mse", inputs) <= 1.0
        fit = results.fits[("extended", model)]
        assert fit.epochs == 1 and fit.best_epoch == 0 and math.isfinite(fit.best_val_loss)
        assert fit.steps == 3 and fit.step_s > 0 and fit.step_flops > 0  # 240 training rows, batches of 100
        shown = results.samples[("extended", model)]
        assert set(shown) == set(bench.INPUT_SETS) and all(s.shape == (3, 5 * 2352) for s in shown.values())
    assert [results.accuracies[("extended", m)] for m in range(5)] == pytest.approx(
        [r["value"] for r in results.rows if r["metric"] == "accuracy"])
    paper = {(r["model"], r["input_set"], r["metric"]): r["paper_value"] for r in results.rows}
    assert paper[("mopoe", "X_{0,1}", "coherence")] == 0.32 and paper[("mrvae", "X_{1,2}", "frechet")] == 189.0


def test_the_three_files_hold_both_tables_in_the_papers_layout(bench, results, tmp_path):
    out = tmp_path / "report" / "polymnist"
    bench.write_outputs(results, ["extended"], ["mrvae", "mopoe"], out, "python benchmarks/polymnist.py", 12.0)
    report = out.with_suffix(".md").read_text()
    for title in ("## Table 1", "## Table 2", "## Budget and cost", "## What this shows", "(b) PolyMNIST extended"):
        assert title in report
    table_rows = [line for line in report.splitlines() if line.startswith("| x_") or line.startswith("| X_")]
    assert len(table_rows) == 2 * len(bench.INPUT_SETS)  # Table 1b and Table 2b, one row per input set
    assert all(len(line.strip("|").split("|")) == 6 for line in table_rows)  # input, output, 2 paper, 2 ours
    assert "| x_0 | x_0 | 0.40 | 0.31 |" in report and "| X_{1,2} | x_0 | 189.0 | 311.6 |" in report
    with out.with_suffix(".csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["version", "model", "table", "input_set", "output", "metric", "value", "paper_value"]
    assert len(rows) == len(results.rows) and all(math.isfinite(float(r["value"])) for r in rows)
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_findings_hold_on_the_papers_own_numbers_and_fail_when_reversed(bench):
    results = bench.Results(bench.Budget(), threads=1)
    for metric, values in bench.PAPER.items():
        for (version, model, inputs), value in values.items():
            bench.add_row(results, version, model, metric, bench.set_label(inputs), value)
    for version in bench.VERSIONS:
        for model in bench.MODELS:
            for inputs in bench.INPUT_SETS:
                if results.value(version, model, "coherence", inputs) is None:
                    bench.add_row(results, version, model, "coherence", bench.set_label(inputs), 0.3)
    text = " ".join(bench.findings(results, ["vanilla", "extended"], ["mrvae", "mopoe"]))
    assert "Table 1): the finding holds" in text and "Table 2): the finding holds" in text
    for row in results.rows:  # swap the models
        row["model"] = {"mrvae": "mopoe", "mopoe": "mrvae"}[row["model"]]
    text = " ".join(bench.findings(results, ["vanilla", "extended"], ["mrvae", "mopoe"]))
    assert "Table 1): the finding does not hold" in text and "Table 2): the finding does not hold" in text


def test_the_data_directory_must_be_writable_and_hold_mnist(bench, mirror_dir, tmp_path):
    with pytest.raises(DatasetError, match="mirror"):
        bench.check_data_dir(mirror_dir)
    with pytest.raises(DatasetError, match="lacks MNIST"):
        bench.check_data_dir(tmp_path)
    os.symlink(mirror_dir / "mnist", tmp_path / "mnist")
    assert bench.check_data_dir(tmp_path) == tmp_path
    assert not (tmp_path / "polymnist").exists()  # checking generates nothing


def test_first_rows_and_arguments(bench, extended):
    small = bench.first_rows(extended, 20, 5)
    assert (small.values[:20] == extended.values[:20]).all() and (small.values[20:] == extended.values[300:305]).all()
    assert small.source_test.tolist() == list(range(20, 25)) and small.target.tolist() == extended.target[[*range(20), *range(300, 305)]].tolist()
    with pytest.raises(ValueError, match="asked for 301 training"):
        bench.first_rows(extended, 301, 5)
    args = bench.parse_args(["--versions", "extended", "--models", "mopoe", "--epochs", "2"])
    assert args.versions == ["extended"] and args.models == ["mopoe"] and args.epochs == 2
    for bad in (["--versions", "hyper"], ["--models", "nope"], ["--epochs", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
