"""A sweep logged to W&B, offline: one run per trial (config, the epoch history its trial logs while it
trains through Lightning's ``WandbLogger``, the outcome and pictures of image trials that
:class:`SweepTracker` adds when the trial is stored), the leaderboard as a Table, and never the API key.

What W&B wrote is read back from each offline run's ``run-<id>.wandb`` file (W&B's record log:
LevelDB's log format of ``Record`` protobufs), not from W&B's own code, so the checks fail when a
value was not logged."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lightning.pytorch.callbacks import Callback

from helpers import correlated_dataset
from imputebench import leaderboard as lb
from imputebench.data.datamodule import PreparedDataModule
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.models.registry import get_model
from imputebench.models.training import trainer_for
from imputebench.runner.execute import run_sweep
from imputebench.runner.worker import models_dir_for
from imputebench.runner.presets import config_resolver
from imputebench.runner.store import ResultStore, row_config
from imputebench.runner.tracking import (
    SweepTracker, TrackingError, WandbOptions, sweep_id, trial_config, trial_group, trial_key, trial_name,
)
from imputebench.runner.trials import Trial
from imputebench.runner.wandb_runs import trial_logger

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 characters, like a real key
WANDB_FOLDERS = ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR")
HEADER, BLOCK = 7, 32768  # the .wandb file's header (":W&B", version) and LevelDB log block sizes
FULL, LAST = 1, 4  # LevelDB chunk types that end a record


def records(path: Path):
    """Every ``Record`` of a ``.wandb`` file: LevelDB log chunks (crc, length, type, data), a record split
    over chunks where it crosses a 32 KiB block, a block's tail under 7 bytes left as padding."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, pending = path.read_bytes(), HEADER, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


def _items(items) -> dict:
    return {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in items}


@dataclass
class LoggedRun:
    """What one offline run holds: its start record, history rows, final summary and exit code."""

    folder: Path
    run: object = None
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    exit_code: int | None = None

    @classmethod
    def read(cls, wandb_files: list[Path]) -> LoggedRun:
        """One run from its offline files, oldest first: each process that resumed it wrote its own."""
        logged = cls(wandb_files[-1].parent)
        for record in (r for wandb_file in wandb_files for r in records(wandb_file)):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                logged.run = logged.run or record.run
                logged.configs.append(_items(record.run.config.update))
            elif kind == "history":
                logged.history.append(_items(record.history.item))
            elif kind == "summary":
                logged.summary.update(_items(record.summary.update))
            elif kind == "exit":
                logged.exit_code = record.exit.exit_code
        return logged

    folders: list[Path] = field(default_factory=list)
    configs: list[dict] = field(default_factory=list)

    @property
    def config(self) -> dict:
        """The configuration as the last process that resumed the run left it."""
        return {k: v for config in self.configs for k, v in config.items()}


def logged_runs(wandb_dir: Path) -> dict[str, LoggedRun]:
    """Run id -> what it logged, for every offline run under ``wandb_dir`` (a run resumed by another
    process, as the driver resumes a trial's run, is read from all its files)."""
    files: dict[str, list[Path]] = {}
    for f in sorted((wandb_dir / "wandb").glob("offline-run-*/run-*.wandb"), key=lambda f: f.stat().st_mtime_ns):
        files.setdefault(f.stem.removeprefix("run-"), []).append(f)
    runs = {}
    for key, paths in files.items():
        runs[key] = LoggedRun.read(paths)
        runs[key].folders = [p.parent for p in paths]
    return runs


@dataclass
class Sweep:
    wandb_dir: Path
    store: Path
    rows: dict  # trial key -> ResultRow
    keys: list[str]
    board: object
    run_ids: list[str]
    board_id: str
    output: str

    def row(self, model: str, dataset: str, status: str = "ok"):
        return next(r for r in self.rows.values() if (r.trial.model, r.trial.dataset, r.status) == (model, dataset, status))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Sweep:
    """A tiny sweep logged as the CLI logs it: each trial's run once its row is stored, then the leaderboard.
    A VAE for 2 epochs and mean imputation on a synthetic table, a VAE for 1 epoch on the embedded
    image pairs, and a VAE whose configuration is refused (a failed trial)."""
    wandb_dir, folder = tmp_path_factory.mktemp("wandb"), tmp_path_factory.mktemp("store")
    store = folder / "r.sqlite"
    datasets = {"toy": correlated_dataset(200), "digits_pairs": load_dataset("digits_pairs")}
    schemas = {name: data.schema for name, data in datasets.items()}
    toy = config_resolver(schemas, max_epochs=2)
    trials = [
        Trial("vae", "toy", "mcar", 0.5, 0, "vsae", toy("vae", "toy")),
        Trial("mean", "toy", "mcar", 0.5, 0, "vsae", toy("mean", "toy")),
        Trial("vae", "toy", "mcar", 0.5, 0, "vsae", {"not_an_option": 1}),
        Trial("vae", "digits_pairs", "mcar", 0.5, 0, "vsae", config_resolver(schemas, max_epochs=1)("vae", "digits_pairs")),
    ]
    rows, run_ids, output = {}, [], io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        for name in WANDB_FOLDERS:
            env.setenv(name, str(wandb_dir))
        env.setenv("WANDB_API_KEY", FAKE_KEY)
        for name in ("WANDB_MODE", "WANDB_SILENT"):
            env.delenv(name, raising=False)
        tracker = SweepTracker(WandbOptions("ib-test", mode="offline"), store)

        def logged(trial, row, retry) -> None:
            rows[trial.key] = row
            run_ids.append(tracker.trial_finished(row))

        with ResultStore(store) as results:
            run_sweep(trials, results, datasets=datasets, models_dir=models_dir_for(store), on_trial_end=logged,
                      wandb=tracker.options)
            board = lb.summarise(results.frame({t.key for t in trials}))
        board_id = tracker.sweep_finished(board, [t.key for t in trials])
        import wandb

        wandb.teardown()  # W&B keeps its first settings (folders included) for the process: forget them
    return Sweep(wandb_dir, store, rows, [t.key for t in trials], board, run_ids, board_id, output.getvalue())


def test_one_run_per_trial_named_by_its_key_and_grouped_by_cell(sweep):
    runs = logged_runs(sweep.wandb_dir)
    assert sorted(sweep.run_ids) == sorted(sweep.keys)
    assert sorted(runs) == sorted([*sweep.keys, sweep.board_id])
    for key in sweep.keys:
        trial = sweep.rows[key].trial
        run = runs[key].run
        assert (run.job_type, run.project) == ("trial", "ib-test")
        assert run.run_group == f"{trial.dataset}/mcar/0.5"
        assert run.display_name == f"{trial.model} {trial.dataset} mcar 0.5 seed 0"


def test_a_trial_and_its_stored_row_name_the_same_run(sweep):
    """`imputebench plot --wandb` logs from store rows, a sweep from trials: both must reach one run."""
    with ResultStore(sweep.store) as results:
        frame = results.frame()
    for _, stored in frame.iterrows():
        row = sweep.rows[stored["config_hash"]]
        for describe in (trial_key, trial_group, trial_name):
            assert describe(stored) == describe(row.trial)
        assert trial_config(stored, row_config(stored)) == trial_config(row.trial, row.config)


def test_config_holds_the_trial_fields_the_full_model_config_and_the_attempt(sweep):
    row = sweep.row("vae", "toy")
    config = logged_runs(sweep.wandb_dir)[row.trial.key].config
    assert {k: config[k] for k in ("model", "dataset", "mechanism", "ratio", "seed", "protocol")} == {
        "model": "vae", "dataset": "toy", "mechanism": "mcar", "ratio": 0.5, "seed": 0, "protocol": "vsae"}
    assert config["model_config"] == row.config and config["model_config"]["max_epochs"] == 2
    assert set(config["model_config"]) == get_model("vae").config_fields()  # the full configuration, not only the overrides
    assert config["attempt"] == 1


def test_each_epoch_of_the_history_is_logged_against_its_epoch(sweep):
    """The stored history and the run's come from the same Lightning logging calls: each epoch's
    training parts and validation score, with the epoch."""
    row = sweep.row("vae", "toy")
    assert [entry["epoch"] for entry in row.history] == [0, 1]
    history = logged_runs(sweep.wandb_dir)[row.trial.key].history
    for entry in row.history:
        logged = {k: v for h in history if h.get("epoch") == entry["epoch"] for k, v in h.items()}
        assert set(entry) <= set(logged)
        for name, value in entry.items():
            assert logged[name] == pytest.approx(value)


def test_final_metrics_and_outcome_in_the_summary(sweep):
    runs = logged_runs(sweep.wandb_dir)
    for model in ("vae", "mean"):
        row = sweep.row(model, "toy")
        summary = runs[row.trial.key].summary
        assert summary["metrics/nrmse"] == pytest.approx(row.metrics["nrmse"])
        assert summary["metrics/pfc"] == pytest.approx(row.metrics["pfc"])
        assert (summary["status"], summary["reason"], summary["n_params"]) == ("ok", None, row.n_params)
        assert summary["wall_time_s"] == pytest.approx(row.wall_time_s) and summary["hardware"] == row.hardware
        assert runs[row.trial.key].exit_code == 0
    assert not any("epoch" in h for h in runs[sweep.row("mean", "toy").trial.key].history)  # fitted in one go


def test_a_failed_trial_has_a_run_with_its_status_and_reason(sweep):
    row = sweep.row("vae", "toy", "failed")
    run = logged_runs(sweep.wandb_dir)[row.trial.key]
    assert run.summary["status"] == "failed" and "not_an_option" in run.summary["reason"]
    assert run.summary["reason"] == row.reason and run.exit_code == 1
    assert not any(k.startswith("metrics/") for k in run.summary)


def test_an_image_trial_logs_its_pictures(sweep):
    row = sweep.row("vae", "digits_pairs")
    run = logged_runs(sweep.wandb_dir)[row.trial.key]
    logged = {k.split(".")[0] for h in run.history for k, v in h.items() if k.endswith("._type") and v == "image-file"}
    assert logged == {"pictures/imputation", "pictures/multiple", "pictures/generation"}
    assert sum(len(list((folder / "files" / "media" / "images").rglob("*.png"))) for folder in run.folders) == 3
    assert len(list(sweep.store.with_suffix(".plots").glob("*.png"))) == 3  # drawn as `imputebench plot` draws them
    table_trial = logged_runs(sweep.wandb_dir)[sweep.row("vae", "toy").trial.key]
    assert not any((folder / "files" / "media" / "images").exists() for folder in table_trial.folders)  # none


def test_the_leaderboard_is_a_table_of_its_own_run(sweep):
    run = logged_runs(sweep.wandb_dir)[sweep.board_id]
    assert sweep.board_id == sweep_id(reversed(sweep.keys)) and run.run.job_type == "leaderboard"
    (table_file,) = (run.folder / "files" / "media" / "table").glob("leaderboard_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == list(sweep.board.columns)
    assert len(table["data"]) == len(sweep.board) > 0
    models = {line[table["columns"].index("model")] for line in table["data"]}
    assert models == {"vae", "mean"}  # only ok trials rank


def test_the_api_key_is_written_nowhere(sweep):
    assert "wandb" in sweep.output  # W&B's messages were captured, and hold no key
    folders = (sweep.wandb_dir, sweep.store.parent)
    leaked = [p for folder in folders for p in folder.rglob("*") if p.is_file() and FAKE_KEY.encode() in p.read_bytes()]
    assert leaked == [] and FAKE_KEY not in sweep.output


def test_online_without_credentials_fails_clearly_and_keeps_the_store(sweep, tmp_path, monkeypatch):
    for name in WANDB_FOLDERS:
        monkeypatch.setenv(name, str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    row = sweep.row("mean", "toy")
    try:
        with pytest.raises(TrackingError, match=r"W&B could not start a run \(online\)"):
            SweepTracker(WandbOptions("ib-test"), sweep.store).trial_finished(row)
    finally:
        import wandb

        wandb.teardown()
    with ResultStore(sweep.store) as results:
        assert len(results.frame()) == len(sweep.keys)


def test_missing_wandb_package_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    with pytest.raises(TrackingError, match=r"pip install 'imputebench\[wandb\]'"):
        SweepTracker(WandbOptions(mode="offline"), tmp_path / "r.sqlite")


def _trial_keys(store: Path, model: str) -> list[str]:
    with ResultStore(store) as results:
        frame = results.frame()
    return list(frame.loc[frame["model"] == model, "config_hash"])


def test_run_wandb_offline_logs_each_trial_and_the_leaderboard_without_the_key(tmp_path, monkeypatch, mirror_dir):
    from typer.testing import CliRunner

    from imputebench.cli import app

    for name in WANDB_FOLDERS:
        monkeypatch.setenv(name, str(tmp_path))
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    store = tmp_path / "store" / "r.sqlite"
    command = ["run", "--models", "mean,vae", "--datasets", "iris", "--max-epochs", "2", "--data-dir", str(mirror_dir),
               "--store", str(store), "--wandb", "--wandb-mode", "offline", "--wandb-project", "ib-test"]
    try:
        result = CliRunner().invoke(app, command)
    finally:
        import wandb

        wandb.teardown()
    assert result.exit_code == 0, result.output
    with ResultStore(store) as results:
        keys = sorted(results.frame()["config_hash"])
    runs = {path.parent.name: path.stem.removeprefix("run-") for path in (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")}
    assert sorted(set(runs.values())) == sorted([*keys, sweep_id(keys)])  # one run per trial, and the leaderboard's
    vae = next(key for key in keys if key in (_trial_keys(store, "vae")))
    assert list(runs.values()).count(vae) == 2  # the trial's own logger while it trained, then the sweep's outcome
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and FAKE_KEY.encode() in p.read_bytes()]
    assert leaked == [] and FAKE_KEY not in result.output


def test_a_trial_logs_each_epoch_to_wandb_while_it_trains(tmp_path, monkeypatch):
    """``--wandb`` dashboards are live: by the start of epoch e, the trial's W&B run has been given
    epochs 0 .. e-1 (Lightning's WandbLogger, called by the trainer at each epoch's end), and the
    offline run holds one history row per epoch once the fit has ended."""
    for name in WANDB_FOLDERS:
        monkeypatch.setenv(name, str(tmp_path))
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    data = prepare(correlated_dataset(200), get_protocol("vsae"), "mcar", 0.5, 0)
    trial = Trial("vae", "toy", "mcar", 0.5, 0, "vsae", {"max_epochs": 3})
    model = get_model("vae")(seed=0, max_epochs=3)
    sent: list[dict] = []

    class WandbSpy(Callback):
        """Records, at each epoch's start, the epochs whose losses W&B's run has been given."""

        def __init__(self) -> None:
            self.seen: list[list[int]] = []

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            trained, validated = ({int(d["epoch"]) for d in sent if name in d} for name in ("train_loss", "val_error"))
            self.seen.append(sorted(trained & validated))

    try:
        logger = trial_logger(trial, WandbOptions("ib-test", mode="offline"), trial_config(trial, model.config()))
        run = logger.experiment
        log = run.log
        monkeypatch.setattr(run, "log", lambda data, *args, **kwargs: (sent.append(dict(data)), log(data, *args, **kwargs))[1])
        spy, datamodule = WandbSpy(), PreparedDataModule(data)
        record = trainer_for(model, datamodule, loggers=[logger], callbacks=[spy]).fit(model, datamodule)
        run.finish()
    finally:
        import wandb

        wandb.teardown()
    assert spy.seen == [[], [0], [0, 1]]
    history = logged_runs(tmp_path)[trial.key].history
    trained, validated = ({h["epoch"] for h in history if name in h} for name in ("train_loss", "val_error"))
    assert sorted(trained) == sorted(validated) == [0, 1, 2] == [entry["epoch"] for entry in record.epochs]
