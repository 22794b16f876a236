"""One trial, wherever it runs: fit, impute and score, turning every failure into a stored status.

The same function runs a trial in the driver (``--executor local``) and in a Ray worker
(``--executor ray``), so a seed gives the same row whichever executor ran it. It touches no
store: the driver writes rows, numbers attempts and decides on retries.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from imputebench.data.datamodule import PreparedDataModule
from imputebench.data.dataset import Dataset
from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.data.table import CompactTable
from imputebench.downstream import downstream_score
from imputebench.errors import DivergedError
from imputebench.evaluate import score
from imputebench.label_accuracy import label_accuracy
from imputebench.metric_directions import DOWNSTREAM, LABEL
from imputebench.models.base import ImputerModule
from imputebench.models.distributed import Distribution
from imputebench.models.registry import get_model, is_classical
from imputebench.models.training import lightning_output, trainer_for
from imputebench.runner.epochs import epoch_reports
from imputebench.runner.provenance import PeakMemory, git_commit, hardware, package_versions
from imputebench.runner.store import ResultRow
from imputebench.runner.trials import Trial
from imputebench.runner.wandb_runs import TrackingError, WandbOptions, trial_config, trial_logger

#: masks generated from the prior per trial (VSAE section 3.2: "over 100 samples")
GENERATED_MASKS = 100


@dataclass(frozen=True)
class TrialOptions:
    """How every trial of a sweep runs (sent to each worker with its trial).

    ``models_dir`` receives the weights of deep models trained on image datasets; with Ray on
    several machines it must be a folder every node can write to. ``timeout_s`` bounds each attempt.
    ``sweep`` names the sweep, so a process never reuses data cached for another sweep's datasets.
    """

    data_dir: Path | None = None
    device: str = "cpu"
    models_dir: Path | None = None
    timeout_s: float | None = None
    sweep: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: keep Lightning's own messages (``--verbose``)
    verbose: bool = False
    #: torch's intra-op threads per trial (``--cpus-per-trial``), the same under every executor: sums
    #: split over another number of threads round differently, and rows must not depend on the executor
    threads: int = 1
    #: devices and strategy each deep model trains with (``--devices``, ``--strategy``)
    distribution: Distribution = Distribution()
    #: log each deep trial's epochs to its W&B run while it trains (``--wandb``); None: no W&B
    wandb: WandbOptions | None = None
    #: load dataset files whose sha256 differs from the recorded one (``--allow-modified-data``)
    allow_modified_data: bool = False

    def __post_init__(self) -> None:
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"--trial-timeout must be > 0 seconds, got {self.timeout_s}")
        if self.threads < 1:
            raise ValueError(f"--cpus-per-trial must give at least one thread, got {self.threads}")


class TrialTimeout(Exception):
    """The attempt ran longer than ``--trial-timeout``."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TrialTimeout` in this (main) thread after ``seconds`` of wall time.

    A POSIX interval timer interrupts the trial between two Python bytecodes, so a single long
    native call (one big matrix product) finishes first; Ray's driver backs this up by killing a
    worker that overstays (:mod:`imputebench.runner.executors`).
    """
    if seconds is None:
        yield
        return
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        raise RuntimeError("--trial-timeout needs trials in a main thread on a POSIX system")

    def expire(signum: int, frame: object) -> None:
        raise TrialTimeout(f"exceeded --trial-timeout {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class DataCache:
    """Loads each dataset once and keeps the prepared data of the current cell."""

    def __init__(self, data_dir: Path | None, device: str, datasets: Mapping[str, Dataset] | None = None,
                 allow_modified: bool = False) -> None:
        self.data_dir, self.device, self.allow_modified = data_dir, device, allow_modified
        self._datasets: dict[str, Dataset] = dict(datasets or {})
        self._cell: tuple | None = None
        self._prepared: PreparedData | None = None

    def add(self, name: str, dataset: Dataset) -> None:
        """Use ``dataset`` (loaded by the driver) for trials of dataset ``name``."""
        self._datasets.setdefault(name, dataset)

    def dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            self._datasets[name] = load_dataset(name, self.data_dir, allow_modified=self.allow_modified)
        return self._datasets[name]

    def prepared(self, trial: Trial) -> PreparedData:
        if trial.cell != self._cell:
            self._prepared, self._cell = None, None  # a failed preparation fails every trial of its cell
            self._prepared = prepare(
                self.dataset(trial.dataset), get_protocol(trial.protocol), trial.mechanism, trial.ratio, trial.seed, self.device
            )
            self._cell = trial.cell
        return self._prepared


_caches: dict[tuple, DataCache] = {}


def cache_for(options: TrialOptions) -> DataCache:
    """This process's data cache for ``options``' sweep (a Ray worker keeps it across the trials it runs)."""
    key = (options.sweep, options.data_dir, options.device)
    if key not in _caches:
        _caches.clear()  # one sweep per process at a time: drop the previous one's tensors
        _caches[key] = DataCache(options.data_dir, options.device, allow_modified=options.allow_modified_data)
    return _caches[key]


def execute(trial: Trial, attempt: int, dataset: Dataset | None, options: TrialOptions) -> ResultRow:
    """Run one attempt of ``trial`` in this process (``dataset`` as loaded by the driver, or None to
    read it from ``options.data_dir``): what both executors call."""
    cache = cache_for(options)
    if dataset is not None:
        cache.add(trial.dataset, dataset)
    with lightning_output(options.verbose), torch_threads(options.threads):
        row = run_trial(trial, cache, options.models_dir, options.timeout_s, options.distribution, options.wandb)
    row.attempt = attempt
    return row


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` within the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _row(trial: Trial, status: str, reason: str | None, **fields: object) -> ResultRow:
    return ResultRow(
        trial=trial, status=status, reason=reason, versions=package_versions(), git_commit=git_commit(),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), **fields,
    )


def failed_row(trial: Trial, attempt: int, status: str, reason: str, device: str = "cpu") -> ResultRow:
    """The row of an attempt that ended outside :func:`run_trial` (its worker died or was killed)."""
    row = _row(trial, status, reason, config=trial.model_config, hardware=hardware(device))
    row.attempt = attempt
    return row


def _reason(err: BaseException) -> str:
    frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(err).__name__}: {err}{where}"


def _generation(model: object, data: PreparedData) -> dict[str, float]:
    """For models of the mask (VSAE section 3.2): the proportion of zeros in 100 generated
    masks, beside the missing ratio of the training split it learnt from."""
    if not getattr(model, "generates_masks", False):
        return {}
    _, observed = model.generate(GENERATED_MASKS)  # (100, M) per modality (a table's features)
    train = data.train.modality_observed if isinstance(data.train, CompactTable) else data.train.observed_features
    return {
        "generated_missing_ratio": float(1.0 - observed.float().mean()),
        "train_missing_ratio": float(1.0 - train.float().mean()),
    }


def _evaluations(trial: Trial, model: object, data: PreparedData, imputed_test: torch.Tensor) -> dict[str, float]:
    """The metrics of the evaluations ``trial`` asks for beyond imputation: post-imputation prediction
    (:mod:`imputebench.downstream`) imputes the training and validation rows too and fits on them; label
    accuracy (:mod:`imputebench.label_accuracy`) imputes every test label from its image."""
    metrics: dict[str, float] = {}
    if DOWNSTREAM in trial.evaluation:
        parts = [data.train] if data.val is None else [data.train, data.val]
        imputed_fit = torch.cat([model.impute(part) for part in parts])  # (n_train + n_val, D)
        fit_rows = np.concatenate([data.splits.train, data.splits.val])
        metrics.update(downstream_score(data.dataset, fit_rows, imputed_fit, data.splits.test, imputed_test))
    if LABEL in trial.evaluation:
        metrics.update(label_accuracy(data, model.impute))
    return metrics


def models_dir_for(store: Path) -> Path:
    """Where a store keeps the trained weights of its image trials: ``results/x.sqlite`` -> ``results/x.models``."""
    return Path(store).with_suffix(".models")


def save_weights(model: torch.nn.Module, trial: Trial, models_dir: Path) -> Path:
    """The model's (best epoch's) weights as ``<models_dir>/<trial key>.pt``, written atomically."""
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / f"{trial.key}.pt"
    partial = path.with_suffix(".pt.partial")
    torch.save(model.state_dict(), partial)
    partial.replace(path)
    return path


def run_trial(trial: Trial, cache: DataCache, models_dir: Path | None = None, timeout_s: float | None = None,
              distribution: Distribution = Distribution(), wandb: WandbOptions | None = None) -> ResultRow:
    """Fit, impute and score one trial; an exception becomes a ``failed`` row, a non-finite loss or
    imputation a ``diverged`` one, and running past ``timeout_s`` (preparation included) a ``timeout``
    one. A deep model trains with ``distribution`` (classical baselines on one CPU process), logging
    its epochs to W&B with ``wandb``. The weights of a deep model trained on an image dataset are
    kept in ``models_dir`` for ``imputebench plot``."""
    threads = torch.get_num_threads()
    hw = f"{hardware(cache.device)}, {threads} torch thread{'s' * (threads != 1)}"
    if distribution.distributed and not is_classical(trial.model):
        hw += f", DDP on {distribution.devices} devices"  # a larger effective batch: the row says so
    start = time.perf_counter()
    try:
        with time_limit(timeout_s):
            return _fit_and_score(trial, cache, models_dir, hw, distribution, wandb)
    except TrialTimeout as err:
        return _row(trial, "timeout", str(err), config=trial.model_config, hardware=hw,
                    wall_time_s=time.perf_counter() - start)
    except Exception as err:  # noqa: BLE001 - one trial's failure must not end the sweep
        return _row(trial, "failed", _reason(err), config=trial.model_config, hardware=hw)


def _fit_and_score(trial: Trial, cache: DataCache, models_dir: Path | None, hw: str, distribution: Distribution,
                   wandb: WandbOptions | None) -> ResultRow:
    data = cache.prepared(trial)
    model = get_model(trial.model)(seed=trial.seed, **trial.model_config)
    torch.manual_seed(trial.seed)
    start = time.perf_counter()
    with PeakMemory() as memory:
        try:
            summary, history = _fit(model, data, distribution, trial, wandb)
        except DivergedError as err:
            return _row(trial, "diverged", str(err), config=model.config(), mask_hash=data.mask_hash, hardware=hw)
        imputed = model.impute(data.test)  # (n_test, D)
    wall = time.perf_counter() - start
    n_params = sum(p.numel() for p in model.parameters()) if isinstance(model, torch.nn.Module) else None
    common = dict(wall_time_s=wall, peak_rss_mb=memory.peak_mb, n_params=n_params, config=model.config(),
                  mask_hash=data.mask_hash, hardware=hw)
    if not torch.isfinite(imputed).all():
        return _row(trial, "diverged", "imputations contain NaN or inf", **common)
    # a mask that hides no test entry (unpaired at ratio 0: every row paired) leaves the evaluations to score
    imputation = score(data, imputed) if data.test_held_out.any() or not trial.evaluation else {"test_missing_ratio": 0.0}
    metrics = {**imputation, **summary, **_generation(model, data), **_evaluations(trial, model, data, imputed)}
    if models_dir is not None and data.dataset.schema.modalities and isinstance(model, torch.nn.Module):
        save_weights(model, trial, models_dir)
    return _row(trial, "ok", None, metrics=metrics, history=history, **common)


def _fit(model: object, data: PreparedData, distribution: Distribution, trial: Trial,
         wandb: WandbOptions | None) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Train ``model`` on ``data``; its training summary and per-epoch history.

    A deep model trains the way a Lightning user trains it: the runner's ``Trainer``
    (:func:`~imputebench.models.training.trainer_for`: the selection callbacks, early stopping,
    the divergence check, the epoch history as a logger, and W&B's logger when asked) fitted on
    the trial's DataModule, with :class:`~imputebench.runner.epochs.EpochReports` telling the
    sweep's progress display of each epoch it finishes. A classical baseline fits in one go.
    """
    if not isinstance(model, ImputerModule):
        model.fit(data.train_complete if model.trained_on_complete_data else data.train, data.validation)
        return model.training_summary(), model.epoch_history()
    model.distribute(distribution)
    datamodule = PreparedDataModule(data)
    logger = _wandb_logger(trial, model, wandb)
    try:
        with epoch_reports(trial.key, distribution.distributed, keep=(TrialTimeout,)) as reports:
            training = trainer_for(model, datamodule, loggers=[logger] if logger is not None else [], callbacks=[reports])
            record = training.fit(model, datamodule)
    finally:
        if logger is not None:
            logger.experiment.finish()  # the driver adds the outcome to the run when the trial is stored
    return record.summary(), record.epochs


def _wandb_logger(trial: Trial, model: ImputerModule, wandb: WandbOptions | None):
    """The trial's W&B logger, or None without ``--wandb``; also None if W&B cannot start a run: the
    trial then trains unlogged, and the driver reports the W&B error when it logs the outcome."""
    if wandb is None:
        return None
    try:
        return trial_logger(trial, wandb, trial_config(trial, model.config()))
    except TrackingError:
        return None
