"""`imputebench plot --wandb`: pictures logged to each trial's W&B run, offline, without leaking the API key."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from imputebench.cli import app
from imputebench.runner.store import ResultStore

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 characters, like a real key


def run_ids(wandb_dir) -> list[str]:
    """The run id of every offline run folder: from its ``run-<id>.wandb`` file, not the folder's name
    (two runs started in the same second get ``offline-run-<time>-<id>`` and ``offline-run-<time>-<id>-1``)."""
    return sorted(f.stem.removeprefix("run-") for f in (wandb_dir / "wandb").glob("offline-run-*/run-*.wandb"))


@pytest.fixture(scope="module")
def image_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("store")
    store = folder / "r.sqlite"
    result = CliRunner().invoke(app, ["run", "--models", "vae", "--datasets", "digits_pairs", "--max-epochs", "1", "--store", str(store)])
    assert result.exit_code == 0, result.output
    return store


@pytest.fixture
def wandb_home(tmp_path, monkeypatch):
    """Every W&B folder in a temporary one, a key in the environment, and no network needed."""
    for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path))
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    yield tmp_path
    import wandb

    wandb.teardown()  # W&B keeps its first settings (folders included) for the process: forget them


def test_offline_run_per_trial_holds_its_three_pictures_and_never_the_key(image_store, wandb_home, tmp_path):
    output = tmp_path / "pictures"
    result = CliRunner().invoke(app, ["plot", "--store", str(image_store), "--output", str(output), "--columns", "3",
                                      "--wandb", "--wandb-mode", "offline", "--wandb-project", "ib-test"])
    assert result.exit_code == 0, result.output
    with ResultStore(image_store) as results:
        key = results.frame()["config_hash"].item()
    runs = list((wandb_home / "wandb").glob("offline-run-*"))
    assert run_ids(wandb_home) == [key]  # the run id is the trial's store key
    images = sorted(p.name for p in (runs[0] / "files" / "media" / "images").rglob("*.png"))
    assert [name.split("_")[0] for name in images] == ["generation", "imputation", "multiple"]
    assert f"W&B run {key} (offline): 3 pictures" in result.output
    leaked = [p for p in wandb_home.rglob("*") if p.is_file() and FAKE_KEY.encode() in p.read_bytes()]
    assert leaked == [] and FAKE_KEY not in result.output


def test_logging_again_resumes_the_same_run(image_store, wandb_home, tmp_path):
    for _ in range(2):
        result = CliRunner().invoke(app, ["plot", "--store", str(image_store), "--output", str(tmp_path), "--columns", "2",
                                          "--wandb", "--wandb-mode", "offline"])
        assert result.exit_code == 0, result.output
    assert len(run_ids(wandb_home)) == 2 and len(set(run_ids(wandb_home))) == 1  # two sessions of one run


def test_unknown_wandb_mode_is_refused_before_drawing(image_store, tmp_path):
    result = CliRunner().invoke(app, ["plot", "--store", str(image_store), "--output", str(tmp_path / "p"), "--wandb", "--wandb-mode", "cloud"])
    assert result.exit_code == 2 and "choose one of online, offline" in result.output
    assert not (tmp_path / "p").exists()


def test_online_without_credentials_fails_clearly_and_keeps_the_pictures(image_store, wandb_home, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    result = CliRunner().invoke(app, ["plot", "--store", str(image_store), "--output", str(tmp_path / "p"), "--columns", "2", "--wandb"])
    assert result.exit_code == 1 and "W&B could not start a run (online)" in result.output
    assert len(list((tmp_path / "p").glob("*.png"))) == 3
