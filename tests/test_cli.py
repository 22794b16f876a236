"""The command line as a user types it: exit codes, messages, and stored results kept."""

import json
import re
import sqlite3
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imputebench import cli
from imputebench.cli import app
from imputebench.data.sources import get_spec, resolve_datasets
from imputebench.models.distributed import STRATEGIES
from imputebench.models.registry import get_model, is_classical, model_names
from imputebench.runner.executors import EXECUTORS
from imputebench.runner.store import ResultRow, ResultStore
from imputebench.runner.tracking import MODES
from imputebench.runner.trials import Trial

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
    assert board.exit_code == 0 and board.output.startswith("protocol,dataset,mechanism,ratio,model,label,metric")


def test_run_without_arguments_is_the_quickstart_demonstration_and_says_so(monkeypatch, store):
    monkeypatch.setattr(cli, "QUICKSTART_EPOCHS", 1)  # the real budget takes about a minute
    result = invoke("run", "--store", store)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(store) as db:
        trials = [(model, dataset, json.loads(config)) for model, dataset, config in
                  db.execute("SELECT model, dataset, config FROM trials")]
    models = {model for model, _, _ in trials}
    deep = {model for model in models if not is_classical(model)}
    assert "mean" in models and len(models - deep) >= 2 and "vaeac" in deep and len(deep) >= 2
    datasets = {dataset for _, dataset, _ in trials}
    assert datasets == set(resolve_datasets("quickstart")) and all(get_spec(name).files == () for name in datasets)
    assert len(trials) == len(models) * len(datasets)
    assert all(config["max_epochs"] == config["patience"] == 1 for model, _, config in trials if model in deep)
    assert "A quick demonstration: the deep models trained at most 1 epochs" in " ".join(result.output.split())
    chosen = invoke("run", "--models", "mean", "--datasets", "iris", "--store", store)
    assert chosen.exit_code == 0 and "demonstration" not in chosen.output


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


def test_missing_data_file_exits_2_naming_it_before_the_store_exists(tmp_path, store):
    result = invoke("run", "--models", "mean", "--datasets", "yeast", "--data-dir", str(tmp_path), "--store", store)
    assert result.exit_code == 2 and not Path(store).exists()
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


def test_malformed_data_file_exits_2_naming_file_and_line(tmp_path, mirror_dir, store):
    folder = tmp_path / "glass"
    folder.mkdir()
    lines = (mirror_dir / "glass" / "glass.data").read_text().splitlines()
    lines[16] = lines[16].replace(",", ",,", 1)  # line 17 gets an extra field
    (folder / "glass.data").write_text("\n".join(lines) + "\n")
    args = ("--models", "mean", "--store", store)
    assert invoke("run", "--datasets", "iris", *args).exit_code == 0
    result = invoke("run", "--datasets", "glass", "--data-dir", str(tmp_path), *args)
    assert result.exit_code == 2
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


#: Runs the CLI with argv[2:] in a fresh interpreter, then writes which heavy packages it loaded to argv[1].
PROBE = """
import json, sys
from imputebench import cli
from imputebench.cli import app
try:
    app(sys.argv[2:])
except SystemExit as exit:
    code = exit.code
heavy = [name for name in ("torch", "lightning", "ray") if name in sys.modules]
open(sys.argv[1], "w").write(json.dumps({"code": code, "heavy": heavy}))
"""


def loaded_by(tmp_path, *args: str) -> dict:
    """The exit code of ``imputebench ARGS`` run in a new interpreter, and the heavy packages it imported."""
    report = tmp_path / "probe.json"
    subprocess.run([sys.executable, "-c", PROBE, str(report), *args], check=True, capture_output=True, timeout=300)
    return json.loads(report.read_text())


@pytest.fixture
def filled_store(store) -> str:
    """A store holding one finished trial, written as ``imputebench run`` writes it."""
    with ResultStore(store) as results:
        results.write(ResultRow(Trial("mean", "iris", "mcar", 0.5, 0, "vsae"), "ok", None, metrics={"nrmse": 1.0}))
    return store


@pytest.mark.parametrize("args", [
    ("--help",), ("--version",), ("run", "--help"), ("models",), ("datasets", "--data-dir", "{mirror}"),
    ("leaderboard", "--store", "{store}"),
], ids=lambda args: " ".join(args).replace("{", "").replace("}", ""))
def test_light_commands_answer_without_torch_lightning_or_ray(tmp_path, mirror_dir, filled_store, args):
    args = [arg.format(mirror=mirror_dir, store=filled_store) for arg in args]
    assert loaded_by(tmp_path, *args) == {"code": 0, "heavy": []}


def test_the_probe_sees_a_command_that_loads_torch(tmp_path):
    # run loads its machinery before it checks names: an unknown model still brings torch in
    assert loaded_by(tmp_path, "run", "--models", "nope")["heavy"][:1] == ["torch"]


def test_version_is_the_installed_package_version():
    result = invoke("--version")
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert result.exit_code == 0 and result.output == f"imputebench {version('imputebench')}\n"
    assert version("imputebench") == project["version"]


def test_run_help_shows_extras_in_brackets_and_every_choice():
    text = " ".join(invoke("run", "--help").output.split())
    assert 'pip install "imputebench[ray]"' in text and 'pip install "imputebench[wandb]"' in text
    for option, choices in (("--executor", EXECUTORS), ("--strategy", STRATEGIES), ("--wandb-mode", MODES)):
        option_help = text.split(f" {option} <str> ", 1)[1].split(" --", 1)[0]  # its row, up to the next option
        assert set(choices) <= set(re.findall(r"\w+", option_help)), option_help


def test_models_lists_every_registered_model_with_its_training_data(monkeypatch):
    monkeypatch.setattr(cli.console, "width", 400)  # one line per model
    result = invoke("models")
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") == 5}
    assert result.exit_code == 0 and set(lines) == set(model_names())
    for name in model_names():
        expected = "complete data" if get_model(name).trained_on_complete_data else "observed entries"
        assert expected in lines[name] and get_model(name).paper in lines[name]
