"""Run trials in this process, one after another, storing each row as it finishes."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from imputebench.data.dataset import Dataset
from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.data.table import CompactTable
from imputebench.evaluate import score
from imputebench.models.base import DivergedError
from imputebench.models.registry import get_model
from imputebench.runner.provenance import PeakMemory, git_commit, hardware, package_versions
from imputebench.runner.store import ResultRow, ResultStore
from imputebench.runner.trials import Trial


#: masks generated from the prior per trial (VSAE section 3.2: "over 100 samples")
GENERATED_MASKS = 100


class DataCache:
    """Loads each dataset once and keeps the prepared data of the current cell."""

    def __init__(self, data_dir: Path | None, device: str, datasets: Mapping[str, Dataset] | None = None) -> None:
        self.data_dir, self.device = data_dir, device
        self._datasets: dict[str, Dataset] = dict(datasets or {})
        self._cell: tuple | None = None
        self._prepared: PreparedData | None = None

    def dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            self._datasets[name] = load_dataset(name, self.data_dir)
        return self._datasets[name]

    def prepared(self, trial: Trial) -> PreparedData:
        if trial.cell != self._cell:
            self._prepared, self._cell = None, None  # a failed preparation fails every trial of its cell
            self._prepared = prepare(
                self.dataset(trial.dataset), get_protocol(trial.protocol), trial.mechanism, trial.ratio, trial.seed, self.device
            )
            self._cell = trial.cell
        return self._prepared


def _row(trial: Trial, status: str, reason: str | None, **fields: object) -> ResultRow:
    return ResultRow(
        trial=trial, status=status, reason=reason, versions=package_versions(), git_commit=git_commit(),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), **fields,
    )


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


def run_trial(trial: Trial, cache: DataCache, models_dir: Path | None = None) -> ResultRow:
    """Fit, impute and score one trial; any exception becomes a ``failed`` row. The weights of a deep
    model trained on an image dataset are kept in ``models_dir`` for ``imputebench plot``."""
    hw = hardware(cache.device)
    try:
        data = cache.prepared(trial)
        model = get_model(trial.model)(seed=trial.seed, **trial.model_config)
        torch.manual_seed(trial.seed)
        start = time.perf_counter()
        train = data.train_complete if model.trained_on_complete_data else data.train
        with PeakMemory() as memory:
            try:
                model.fit(train, data.validation)
            except DivergedError as err:
                return _row(trial, "diverged", str(err), config=model.config(), mask_hash=data.mask_hash, hardware=hw)
            imputed = model.impute(data.test)  # (n_test, D)
        wall = time.perf_counter() - start
        n_params = sum(p.numel() for p in model.parameters()) if isinstance(model, torch.nn.Module) else None
        common = dict(wall_time_s=wall, peak_rss_mb=memory.peak_mb, n_params=n_params, config=model.config(),
                      mask_hash=data.mask_hash, hardware=hw)
        if not torch.isfinite(imputed).all():
            return _row(trial, "diverged", "imputations contain NaN or inf", **common)
        metrics = {**score(data, imputed), **model.training_summary(), **_generation(model, data)}
        if models_dir is not None and data.dataset.schema.modalities and isinstance(model, torch.nn.Module):
            save_weights(model, trial, models_dir)
        return _row(trial, "ok", None, metrics=metrics, history=model.epoch_history(), **common)
    except Exception as err:  # noqa: BLE001 - one trial's failure must not end the sweep
        return _row(trial, "failed", _reason(err), config=trial.model_config, hardware=hw)


@dataclass
class SweepSummary:
    total: int
    skipped: int
    ok: int = 0
    failed: int = 0


def run_sweep(
    trials: Iterable[Trial],
    store: ResultStore,
    data_dir: Path | None = None,
    device: str = "cpu",
    on_trial_end: Callable[[Trial, ResultRow], None] | None = None,
    datasets: Mapping[str, Dataset] | None = None,
    models_dir: Path | None = None,
) -> SweepSummary:
    """Run every trial not yet stored with status ``ok``; each row is committed when it ends.

    ``datasets`` may hold datasets already loaded (by name); others are read from ``data_dir``.
    ``models_dir`` receives the weights of deep models trained on image datasets.
    """
    trials = list(trials)
    done = store.finished_keys()
    pending = [t for t in trials if t.key not in done]
    summary = SweepSummary(total=len(trials), skipped=len(trials) - len(pending))
    cache = DataCache(data_dir, device, datasets)
    for trial in pending:
        row = run_trial(trial, cache, models_dir)
        store.write(row)
        if row.status == "ok":
            summary.ok += 1
        else:
            summary.failed += 1
        if on_trial_end is not None:
            on_trial_end(trial, row)
    return summary
