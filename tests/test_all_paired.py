"""MVAE's "100%" column (Tables 8-9): ``unpaired`` at ratio 0 pairs every row, hides nothing, and is scored
by label accuracy alone; every other mechanism still refuses ratio 0 before any trial."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from imputebench.cli import app
from imputebench.data.multimodal import multimodal_dataset
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.masks import make_mask
from imputebench.runner.trials import Trial, expand
from imputebench.runner.worker import DataCache, run_trial

runner = CliRunner()


def labelled_images(n: int = 400):
    """4-pixel images whose first pixel says the label (0, 100 or 200)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(3, size=n)  # (n,)
    images = rng.integers(0, 50, size=(n, 4)).astype(np.uint8)  # (n, 4)
    images[:, 0] = 100 * labels
    return multimodal_dataset("labelled", [("image", images, (2, 2)), ("label", labels, ("a", "b", "c"))])


def test_unpaired_at_zero_observes_everything_and_other_mechanisms_refuse_zero():
    dataset = labelled_images()
    x = dataset.values.astype(float)
    assert make_mask(x, "unpaired", 0.0, seed=1, schema=dataset.schema, per_modality=True).all()
    for mechanism in ("mcar", "mar", "mnar"):
        with pytest.raises(ValueError, match=r"open interval \(0, 1\), got 0.0 \(0, which hides nothing, is only for unpaired\)"):
            make_mask(x, mechanism, 0.0, seed=1)
    with pytest.raises(ValueError, match=r"half-open interval \[0, 1\)"):
        make_mask(x, "unpaired", -0.1, seed=1, schema=dataset.schema, per_modality=True)


def test_with_nothing_hidden_there_is_no_validation_to_select_on():
    data = prepare(labelled_images(), get_protocol("vsae"), "unpaired", 0.0, seed=0)
    assert data.observed.all() and data.val is not None and data.validation is None
    assert prepare(labelled_images(), get_protocol("vsae"), "unpaired", 0.5, seed=0).validation is not None


def test_a_sweep_at_zero_needs_an_evaluation_to_score_it():
    with pytest.raises(ValueError, match="hides nothing.*--evaluate label"):
        expand(["mean"], ["labelled"], ["unpaired"], [0.0], [0], "vsae")
    trials = expand(["mean"], ["labelled"], ["unpaired"], [0.0], [0], "vsae", evaluation=("label",))
    assert [(t.mechanism, t.ratio, t.evaluation) for t in trials] == [("unpaired", 0.0, ("label",))]


def test_a_trial_with_every_row_paired_is_scored_by_label_accuracy_alone():
    cache = DataCache(None, "cpu", {"labelled": labelled_images()})
    config = {"max_epochs": 100, "patience": 100, "lr": 0.1}  # 1.0 on each of seeds 0-4
    row = run_trial(Trial("supervised_logreg", "labelled", "unpaired", 0.0, 0, "vsae", config, evaluation=("label",)), cache)
    assert row.status == "ok", row.reason
    assert row.metrics["label_accuracy"] > 0.95 and row.metrics["test_missing_ratio"] == 0.0
    assert not {"pfc", "mse", "nrmse"} & set(row.metrics)  # nothing hidden: no imputation metric
    train_losses = [epoch["train_loss"] for epoch in row.history]
    assert row.metrics["best_epoch"] == int(np.argmin(train_losses))  # kept on the training loss


def test_the_command_line_refuses_zero_before_any_trial(tmp_path):
    store = tmp_path / "s.sqlite"
    base = ["run", "--models", "mean", "--datasets", "wine", "--store", str(store)]
    mcar = runner.invoke(app, [*base, "--mechanisms", "mcar", "--ratios", "0.5,0"])
    said = " ".join(mcar.output.split())
    assert mcar.exit_code == 2 and "--ratios 0.5,0: '0'" in said and "is only for unpaired" in said
    unscored = runner.invoke(app, [*base, "--mechanisms", "unpaired", "--ratios", "0"])
    assert unscored.exit_code == 2 and "hides nothing" in " ".join(unscored.output.split())
    assert not store.exists()
