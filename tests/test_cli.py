"""The command line as a user types it: exit codes, messages, and stored results kept."""

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from imputebench.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def store(tmp_path):
    return str(tmp_path / "results.sqlite")


def stored_rows(path: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]


def test_run_prints_a_leaderboard_and_resumes(store):
    args = ("run", "--models", "mean", "--datasets", "iris,wine", "--seeds", "2", "--store", store)
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "iris (NRMSE)" in first.output and "wine (NRMSE)" in first.output
    assert "4 ran ok" in first.output
    second = invoke(*args)
    assert second.exit_code == 0 and "4 already stored, 0 ran ok" in second.output
    board = invoke("leaderboard", "--store", store, "--format", "csv")
    assert board.exit_code == 0 and board.output.startswith("protocol,dataset,mechanism,ratio,model,metric")


@pytest.mark.parametrize(
    "args, message",
    [
        (("--models", "mean,vaec"), "unknown model 'vaec'; known:"),
        (("--datasets", "irs"), "unknown dataset 'irs'"),
        (("--mechanisms", "mcarr"), "unknown mechanism 'mcarr'"),
        (("--protocol", "paper"), "unknown protocol 'paper'"),
        (("--ratios", "1.5"), "open interval (0, 1), got 1.5"),
        (("--ratios", "0"), "open interval (0, 1), got 0.0"),
        (("--seeds", "0"), "count >= 1"),
        (("--accelerator", "tpu9"), "accelerator 'tpu9' is not usable"),
    ],
)
def test_bad_input_exits_2_with_the_valid_names_and_keeps_results(store, args, message):
    assert invoke("run", "--models", "mean", "--datasets", "iris", "--store", store).exit_code == 0
    result = invoke("run", "--datasets", "iris", "--store", store, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert stored_rows(store) == 1


def test_unknown_model_message_lists_every_model(store):
    result = invoke("run", "--models", "nope", "--store", store)
    assert result.exit_code == 2
    for name in ("mean", "mice", "missforest"):
        assert name in result.output


def test_missing_data_file_exits_1_naming_it(tmp_path, store):
    result = invoke("run", "--models", "mean", "--datasets", "yeast", "--data-dir", str(tmp_path), "--store", store)
    assert result.exit_code == 1
    assert "yeast.data" in "".join(result.output.split()) and "imputebench data fetch" in result.output  # path folded


def test_models_and_datasets_listings(mirror_dir):
    models = invoke("models")
    assert models.exit_code == 0 and "missforest" in models.output
    datasets = invoke("datasets", "--data-dir", str(mirror_dir))
    assert datasets.exit_code == 0
    for name in ("yeast", "mushroom", "iris", "website_phishing"):
        assert name in datasets.output


def test_leaderboard_without_store_fails_clearly(tmp_path):
    result = invoke("leaderboard", "--store", str(tmp_path / "none.sqlite"))
    assert result.exit_code == 1 and "no results store" in result.output


def test_malformed_data_file_exits_1_naming_file_and_line(tmp_path, mirror_dir, store):
    folder = tmp_path / "glass"
    folder.mkdir()
    lines = (mirror_dir / "glass" / "glass.data").read_text().splitlines()
    lines[16] = lines[16].replace(",", ",,", 1)  # line 17 gets an extra field
    (folder / "glass.data").write_text("\n".join(lines) + "\n")
    args = ("--models", "mean", "--store", store)
    assert invoke("run", "--datasets", "iris", *args).exit_code == 0
    result = invoke("run", "--datasets", "glass", "--data-dir", str(tmp_path), *args)
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "glass.data" in message.replace(" ", "") and "line 17" in message  # Rich folds a path past 80 columns
    assert stored_rows(store) == 1
    listing = invoke("datasets", "--data-dir", str(tmp_path))
    assert "unreadable" in listing.output


def test_data_fetch_verifies_and_rejects_a_corrupt_mirror(tmp_path, mirror_dir):
    good = invoke("data", "fetch", "zoo", "--mirror", str(mirror_dir), "--data-dir", str(tmp_path / "cache"))
    assert good.exit_code == 0 and (tmp_path / "cache" / "zoo" / "zoo.data").exists()
    corrupt = tmp_path / "mirror" / "zoo"
    corrupt.mkdir(parents=True)
    data = bytearray((mirror_dir / "zoo" / "zoo.data").read_bytes())
    data[100] ^= 1
    (corrupt / "zoo.data").write_bytes(bytes(data))
    (corrupt / "zoo.names").write_bytes((mirror_dir / "zoo" / "zoo.names").read_bytes())
    bad = invoke("data", "fetch", "zoo", "--mirror", str(tmp_path / "mirror"), "--data-dir", str(tmp_path / "fresh"))
    message = " ".join(bad.output.split())
    assert bad.exit_code == 1 and "sha256 mismatch" in message
    assert "cddc71c26ab9bc82795b8f4ff114cade41885d92720c6af29ffb69bcf73f0315" in message.replace(" ", "")
    assert not (tmp_path / "fresh" / "zoo" / "zoo.data").exists()
    unknown = invoke("data", "fetch", "zo")
    assert unknown.exit_code == 2 and "unknown dataset 'zo'" in unknown.output


def test_deep_models_run_with_epoch_overrides_and_vsae_records_generated_masks(store):
    result = invoke("run", "--models", "vsae,cvae_data", "--datasets", "iris", "--max-epochs", "2", "--patience", "1",
                    "--store", store)
    assert result.exit_code == 0, result.output
    assert "cvae_data †" in result.output and "trained on complete data" in result.output
    with sqlite3.connect(store) as db:
        rows = dict(db.execute("SELECT model, metrics FROM trials").fetchall())
        configs = [c for (c,) in db.execute("SELECT config FROM trials")]
    vsae = json.loads(rows["vsae"])
    assert 0.0 <= vsae["generated_missing_ratio"] <= 1.0 and vsae["train_missing_ratio"] == pytest.approx(0.5, abs=0.1)
    assert vsae["epochs"] <= 2 and "generated_missing_ratio" not in json.loads(rows["cvae_data"])
    assert all(json.loads(c)["max_epochs"] == 2 for c in configs)


def test_bad_model_config_file_exits_2_and_keeps_results(store, tmp_path):
    assert invoke("run", "--models", "mean", "--datasets", "iris", "--store", store).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("vsae:\n  no_such_field: 1\n")
    result = invoke("run", "--models", "vsae", "--datasets", "iris", "--model-config", str(bad), "--store", store)
    assert result.exit_code == 2 and "no_such_field" in result.output
    assert stored_rows(store) == 1


@pytest.mark.parametrize("options, message", [
    (["--executor", "spark"], "unknown executor 'spark'"),
    (["--gpus-per-trial", "0.25"], "apply to --executor ray"),
    (["--ray-address", "auto"], "apply to --executor ray"),
    (["--executor", "ray", "--accelerator", "gpu"], "ask with --gpus-per-trial"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial must be > 0"),
    (["--max-retries", "-1"], "Invalid value for '--max-retries'"),
    (["--trial-timeout", "0"], "--trial-timeout must be > 0"),
])
def test_executor_options_that_cannot_apply_are_refused_before_anything_runs(tmp_path, options, message):
    store = tmp_path / "r.sqlite"
    result = CliRunner().invoke(app, ["run", "--models", "mean", "--datasets", "iris", "--store", str(store), *options])
    unwrapped = "".join(ch for ch in result.output if not ch.isspace() and ch not in "│╭╮╰╯─")  # Rich wraps and boxes
    assert result.exit_code == 2 and "".join(message.split()) in unwrapped
    assert not store.exists()
