"""The pictures of a store's image trials: each trained model rebuilt from its stored weights and
configuration, its data cell prepared again (same split and masks, by seed), and the three figures
of :mod:`imputebench.plots` written beside the results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import torch

from imputebench import plots
from imputebench.data.dataset import Dataset, DatasetError
from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.models.registry import get_model
from imputebench.runner.store import row_config
from imputebench.runner.worker import models_dir_for

KINDS = ("imputation", "multiple", "generation")


def plot_dir_for(store: Path) -> Path:
    """Default folder of a store's pictures: ``results/x.sqlite`` -> ``results/x.plots``."""
    return Path(store).with_suffix(".plots")


def trained_rows(frame: pd.DataFrame, store: Path, models: list[str] | None, datasets: list[str] | None) -> Iterator[tuple[pd.Series, Path]]:
    """``ok`` rows whose weights were kept (deep models on image datasets), filtered by name."""
    weights_dir = models_dir_for(store)
    for _, row in frame[frame["status"] == "ok"].iterrows():
        if (models and row["model"] not in models) or (datasets and row["dataset"] not in datasets):
            continue
        weights = weights_dir / f"{row['config_hash']}.pt"
        if weights.is_file():
            yield row, weights


def rebuild(row: pd.Series, weights: Path, data: PreparedData):
    """The trained model of a stored trial, in eval mode on the data's device."""
    model = get_model(row["model"])(seed=int(row["seed"]), **row_config(row))
    model.read_table_transform(data.train)  # as a fit builds it: what the networks and their fills
    model.build_networks(data.train.schema)  # are made of besides the weights (GAIN's scaling, a
    model.fit_statistics(data.train)  # supervised baseline's column means) comes from the training table
    model.load_state_dict(torch.load(weights, map_location=data.train.device, weights_only=True))
    return model.to(data.train.device).eval()


def picture_paths(row: pd.Series, output: Path) -> dict[str, Path]:
    stem = f"{row['dataset']}_{row['model']}_{row['mechanism']}{row['ratio']:g}_seed{int(row['seed'])}"
    return {kind: output / f"{stem}_{kind}.png" for kind in KINDS}


def draw_trial(model, data: PreparedData, paths: dict[str, Path], columns: int = 8) -> dict[str, Path]:
    """The three figures of one trained model (kind -> file written); generation is left out for
    models that cannot generate."""
    schema = data.dataset.schema
    truth = data.complete(data.splits.test)
    figures = {
        "imputation": plots.imputation_grid(model, data.test, truth, schema, columns),
        "multiple": plots.multiple_imputations(model, data.test, truth, schema, columns),
    }
    if hasattr(model, "generate"):
        figures["generation"] = plots.generation(model, schema, columns)
    return {kind: plots.save(figure, paths[kind]) for kind, figure in figures.items()}


def _check_same_data(row: pd.Series, dataset: Dataset) -> None:
    """Refuse to draw a trial's pictures from other data than it was trained on (its row's data sha256)."""
    trained_on, now = row.get("data_sha256"), dataset.provenance()["sha256"]
    if isinstance(trained_on, str) and trained_on != now:
        raise DatasetError(f"trial {row['config_hash']} was trained on {row['dataset']} with sha256 {trained_on}, "
                           f"but the file read now has sha256 {now}: restore that file to draw its pictures")


def plot_store(
    frame: pd.DataFrame,
    store: Path,
    output: Path,
    data_dir: Path | None = None,
    models: list[str] | None = None,
    datasets: list[str] | None = None,
    columns: int = 8,
) -> list[tuple[pd.Series, dict[str, Path]]]:
    """Every picture of every kept image trial of ``frame`` (a store's rows): each trial's row with
    the files written for it (kind -> path)."""
    written: list[tuple[pd.Series, dict[str, Path]]] = []
    loaded, prepared = {}, {}
    for row, weights in trained_rows(frame, store, models, datasets):
        cell = (row["dataset"], row["protocol"], row["mechanism"], float(row["ratio"]), int(row["seed"]))
        if cell not in prepared:
            if row["dataset"] not in loaded:
                loaded[row["dataset"]] = load_dataset(row["dataset"], data_dir, allow_modified=row.get("data_status") == "modified")
            _check_same_data(row, loaded[row["dataset"]])
            prepared = {cell: prepare(loaded[row["dataset"]], get_protocol(cell[1]), *cell[2:])}  # one cell at a time
        model = rebuild(row, weights, prepared[cell])
        with torch.no_grad():
            written.append((row, draw_trial(model, prepared[cell], picture_paths(row, output), columns)))
    return written
