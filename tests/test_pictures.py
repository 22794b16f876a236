"""`imputebench plot`: pictures of image trials from their kept weights."""

from __future__ import annotations

import json

import numpy as np
import torch
from typer.testing import CliRunner

from imputebench.cli import app
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.models.registry import get_model
from imputebench.plots import imputation_grid, modality_views, one_hidden_rows
from imputebench.runner.store import ResultStore

PNG = b"\x89PNG\r\n\x1a\n"


def test_run_keeps_image_weights_and_plot_draws_three_pictures_per_model(tmp_path):
    store = tmp_path / "r.sqlite"
    result = CliRunner().invoke(app, ["run", "--models", "mean,vsae,vae", "--datasets", "digits_pairs,iris",
                                      "--max-epochs", "2", "--store", str(store)])
    assert result.exit_code == 0, result.output
    weights = sorted(p.name for p in (tmp_path / "r.models").iterdir())
    assert len(weights) == 2  # vsae and vae on digits_pairs: not the mean, not iris
    result = CliRunner().invoke(app, ["plot", "--store", str(store), "--columns", "4"])
    assert result.exit_code == 0, result.output
    pictures = sorted(tmp_path.joinpath("r.plots").iterdir())
    assert [p.name for p in pictures] == sorted(
        f"digits_pairs_{m}_mcar0.5_seed0_{kind}.png" for m in ("vae", "vsae") for kind in ("generation", "imputation", "multiple")
    )
    assert all(p.read_bytes().startswith(PNG) for p in pictures)


def test_rebuilt_model_imputes_as_the_trained_one(tmp_path):
    from imputebench.runner.pictures import rebuild

    store = tmp_path / "r.sqlite"
    CliRunner().invoke(app, ["run", "--models", "mvae", "--datasets", "digits_pairs", "--max-epochs", "2", "--store", str(store)])
    with ResultStore(store) as results:
        row = results.frame().iloc[0]
    data = prepare(load_dataset("digits_pairs"), get_protocol("vsae"), "mcar", 0.5, 0)
    model = rebuild(row, tmp_path / "r.models" / f"{row['config_hash']}.pt", data)
    trained = get_model("mvae")(seed=0, **json.loads(row["config"])).fit(data.train, data.validation)  # the same fit again
    assert torch.allclose(model.impute(data.test), trained.impute(data.test))


def test_plot_without_image_trials_explains_itself(tmp_path):
    store = tmp_path / "r.sqlite"
    CliRunner().invoke(app, ["run", "--models", "mean", "--datasets", "iris", "--store", str(store)])
    result = CliRunner().invoke(app, ["plot", "--store", str(store)])
    assert result.exit_code == 1 and "no trained image model" in result.output


def test_grid_rows_have_one_modality_seen_and_one_hidden():
    data = prepare(load_dataset("digits_pairs"), get_protocol("vsae"), "mcar", 0.5, 0)
    picks = one_hidden_rows(data.test, 5)
    seen = data.test.modality_observed.numpy()
    assert len(picks) == 5 and all(seen[r, s] and not seen[r, h] for r, s, h in picks)
    views = modality_views(data.dataset.schema)
    assert [v.shape for v in views] == [(8, 8), (8, 8)] and len(views[1].columns) == 64
    model = get_model("mean")(seed=0).fit(data.train)
    figure = imputation_grid(model, data.test, data.complete(data.splits.test), data.dataset.schema, 5)
    assert np.asarray(figure.axes).size == 15


def test_ratio_curve_draws_one_line_per_model_with_error_bars(tmp_path):
    from imputebench import leaderboard as lb
    from imputebench.ratio_curves import ratio_curves

    store = tmp_path / "r.sqlite"
    result = CliRunner().invoke(app, ["run", "--models", "mean,mice", "--datasets", "iris", "--ratios", "0.3,0.5",
                                      "--seeds", "2", "--store", str(store)])
    assert result.exit_code == 0, result.output
    with ResultStore(store) as results:
        figures = ratio_curves(lb.summarise(results.frame()))
    assert list(figures) == ["ratio_iris_nrmse_vsae_mcar"]
    axis = figures["ratio_iris_nrmse_vsae_mcar"].axes[0]
    assert sorted(axis.get_legend_handles_labels()[1]) == ["mean", "mice"]
    assert [list(line.get_xdata()) for line in axis.lines if line.get_marker() == "o"] == [[0.3, 0.5], [0.3, 0.5]]
    result = CliRunner().invoke(app, ["plot", "ratio-curve", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.plots" / "ratio_iris_nrmse_vsae_mcar.png").read_bytes().startswith(PNG)


def test_ratio_curve_needs_two_ratios_and_plot_kinds_are_checked(tmp_path):
    store = tmp_path / "r.sqlite"
    CliRunner().invoke(app, ["run", "--models", "mean", "--datasets", "iris", "--store", str(store)])
    result = CliRunner().invoke(app, ["plot", "ratio-curve", "--store", str(store)])
    assert result.exit_code == 1 and "two or more missing ratios" in result.output
    result = CliRunner().invoke(app, ["plot", "histogram", "--store", str(store)])
    assert result.exit_code == 2 and "choose one of images, ratio-curve" in result.output
