"""MVAE's AE and VAE baselines: an autoencoder of the images, a logistic regression on its code (paired rows)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imputebench.data.multimodal import multimodal_dataset
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.label_accuracy import label_accuracy
from imputebench.models.registry import get_model

MODELS = ["ae_logreg", "vae_logreg"]


@pytest.fixture(scope="module")
def data():
    """16-pixel images of three classes, each class a different lit quarter; 60% of the rows unpaired."""
    rng = np.random.default_rng(0)
    labels = rng.integers(3, size=600)
    images = rng.integers(0, 40, size=(600, 16)).astype(np.uint8)
    for k in range(3):
        images[labels == k, 4 * k:4 * k + 4] = 220
    dataset = multimodal_dataset("quarters", [("image", images, (4, 4)), ("label", labels, ("a", "b", "c"))])
    return prepare(dataset, get_protocol("vsae"), "unpaired", 0.6, seed=0)


def fitted(name: str, data):
    return get_model(name)(seed=0, max_epochs=60, patience=60, hidden_width=64, latent_per_feature=4,
                           n_imputations=2).fit(data.train, data.validation)


@pytest.mark.parametrize("name", MODELS)
def test_the_labels_are_learnt_from_the_code_of_the_image(name, data):
    majority = np.bincount(data.dataset.values[data.splits.test, -1].astype(int)).max() / len(data.splits.test)
    assert majority < 0.4 and label_accuracy(data, fitted(name, data).impute)["label_accuracy"] > 0.9


@pytest.mark.parametrize("name", MODELS)
def test_the_label_never_reaches_the_autoencoder_nor_does_the_regression_train_it(name, data):
    model = fitted(name, data)
    x, observed = data.train.rows(torch.arange(32))
    flipped = x.clone()
    flipped[:, -3:] = flipped[:, -3:].flip(-1)  # other labels, same images
    torch.testing.assert_close(model.code(x * model.inputs_observed(observed)),
                               model.code(flipped * model.inputs_observed(observed)))
    model.train()
    model.zero_grad()
    parts = model.loss(x, observed)
    parts["regression"].backward()
    encoder = model.encoder.parameters()
    assert all(p.grad is None or not p.grad.any() for p in encoder)  # the regression's loss stops at the code
    assert model.regression.weight.grad.abs().sum() > 0
