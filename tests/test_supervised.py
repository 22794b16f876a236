"""MVAE's supervised baselines (NN, LOGREG): labels learnt from the paired rows only, from the images alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from imputebench.cli import app
from imputebench.data.multimodal import multimodal_dataset
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.label_accuracy import label_accuracy
from imputebench.models.registry import get_model

runner = CliRunner()
MODELS = ["supervised_nn", "supervised_logreg"]


@pytest.fixture(scope="module")
def data():
    """4-pixel images whose first pixel says the label (0, 100 or 200); 60% of the rows unpaired."""
    rng = np.random.default_rng(0)
    labels = rng.integers(3, size=400)
    images = rng.integers(0, 50, size=(400, 4)).astype(np.uint8)
    images[:, 0] = 100 * labels
    dataset = multimodal_dataset("labelled", [("image", images, (2, 2)), ("label", labels, ("a", "b", "c"))])
    return prepare(dataset, get_protocol("vsae"), "unpaired", 0.6, seed=0)


def fitted(name: str, data):
    lr = 0.1 if name == "supervised_logreg" else 3e-2  # a linear layer on [0, 1] pixels learns slowly at 3e-2
    return get_model(name)(seed=0, max_epochs=100, patience=100, lr=lr).fit(data.train, data.validation)


@pytest.mark.parametrize("name", MODELS)
def test_it_learns_the_label_from_the_image(name, data):
    majority = np.bincount(data.dataset.values[data.splits.test, -1].astype(int)).max() / len(data.splits.test)
    assert majority <= 0.4 and label_accuracy(data, fitted(name, data).impute)["label_accuracy"] > 0.85


def test_it_trains_on_the_paired_rows_only_and_fills_images_with_the_training_mean(data):
    model = fitted("supervised_nn", data)
    observed = data.observed[data.splits.train]  # (n, d): image columns then the label
    paired = np.flatnonzero(observed.all(1))
    assert torch.equal(model.paired_rows(data.train).cpu(), torch.from_numpy(paired))
    assert 0 < len(paired) < len(observed)
    test_x, test_observed = data.test.rows(torch.arange(data.test.n_rows))
    imputed = model.impute(data.test)
    hidden_image = ~test_observed[:, 0]  # rows whose image the mask hid
    pixels = data.train.x[:, :4] * data.train.observed[:, :4]
    mean_image = pixels.sum(0) / data.train.observed[:, :4].sum(0)
    assert hidden_image.any()
    torch.testing.assert_close(imputed[hidden_image, :4], mean_image.expand(int(hidden_image.sum()), -1))
    assert torch.equal(imputed[test_observed], test_x[test_observed])  # observed entries untouched


def test_a_table_without_labels_is_refused_before_any_trial(tmp_path):
    store = tmp_path / "s.sqlite"
    result = runner.invoke(app, ["run", "--models", "mean,supervised_nn", "--datasets", "wine", "--store", str(store)])
    assert result.exit_code == 2 and "supervised_nn cannot run on wine" in result.output
    assert not store.exists()
