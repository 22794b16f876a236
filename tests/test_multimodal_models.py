"""Every model that runs on images does so on the offline image set (digits_pairs): shapes, observed
modalities untouched, imputations in the pixels' range, seeded, and hidden modalities never read."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.data.table import CompactTable
from imputebench.evaluate import score
from imputebench.models.base import ImputerModule
from imputebench.models.registry import get_model, model_names

RUN_ON_IMAGES = [name for name in model_names() if not get_model(name).not_on_images]
#: digits_pairs is two images without a label: the models that learn labels only refuse it (tests/test_supervised.py)
IMAGE_MODELS = [name for name in RUN_ON_IMAGES if get_model(name).refuses(load_dataset("digits_pairs").schema) is None]
DEEP = [name for name in IMAGE_MODELS if issubclass(get_model(name), ImputerModule)]


@pytest.fixture(scope="module")
def digits():
    return prepare(load_dataset("digits_pairs"), get_protocol("vsae"), "mcar", 0.5, seed=0)


def fitted(name: str, data, seed: int = 0):
    options = dict(max_epochs=2, n_imputations=2) if name in DEEP else {}
    if name == "miwae":
        options.update(n_importance_impute=5, n_importance_validation=5)
    model = get_model(name)(seed=seed, **options)
    train = data.train_complete if model.trained_on_complete_data else data.train
    return model.fit(train, data.validation)


def test_only_the_per_pixel_regressions_are_kept_off_images():
    assert sorted(set(model_names()) - set(RUN_ON_IMAGES)) == ["mice", "missforest"]
    assert sorted(set(RUN_ON_IMAGES) - set(IMAGE_MODELS)) == ["ae_logreg", "supervised_logreg", "supervised_nn", "vae_logreg"]


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_model_imputes_images_within_range_and_keeps_observed_modalities(name, digits):
    imputed = fitted(name, digits).impute(digits.test)
    x, observed = digits.test.rows(slice(None))
    assert imputed.shape == x.shape and torch.isfinite(imputed).all()
    assert torch.equal(imputed[observed], x[observed])
    hidden = imputed[~observed]
    assert hidden.min() >= -1e-6 and hidden.max() <= 1 + 1e-6, "pixel intensities lie in [0, 1]"
    assert 0.05 < float(hidden.mean()) < 0.95, "hidden pixels are imputed, not left at the zero fill"
    metrics = score(digits, imputed)
    assert set(metrics) >= {"mse_digit_a", "mse_digit_b", "mse"} and metrics["mse"] < 0.5


@pytest.mark.parametrize("name", DEEP)
def test_hidden_modalities_cannot_leak(name, digits):
    """Same seed, same observed modalities, different hidden images: the same imputations."""
    test = digits.test
    scrambled_codes = test.codes.clone()
    hidden_cols = ~test.observed
    scrambled_codes[hidden_cols] = torch.randint(0, 17, (int(hidden_cols.sum()),), dtype=torch.uint8)
    scrambled = CompactTable(scrambled_codes, test.modality_observed, test.column_modality, test.scale, test.schema,
                             test.feature_mean, test.feature_std)
    model = fitted(name, digits)
    assert torch.equal(model.impute(test), model.impute(scrambled))


@pytest.mark.parametrize("name", ["vsae", "mvae", "mopoe"])
def test_image_models_are_seeded(name, digits):
    first, second = fitted(name, digits, seed=3), fitted(name, digits, seed=3)
    assert torch.equal(first.impute(digits.test), second.impute(digits.test))


def test_rows_with_every_modality_hidden_are_imputed_like_the_others(digits):
    lost = ~digits.test.modality_observed.any(1)
    assert lost.any()
    imputed = fitted("vae", digits).impute(digits.test)[lost]
    assert torch.isfinite(imputed).all() and np.isfinite(score(digits, fitted("mean", digits).impute(digits.test))["mse"])


def test_misgan_takes_the_authors_conv_networks_for_28x28_images():
    from imputebench.data.multimodal import multimodal_dataset
    from imputebench.nn.misgan_conv import ConvRowCritic, ConvRowGenerator, ImageGenerator

    rng = np.random.default_rng(0)
    dataset = multimodal_dataset("tiny28", [("a", rng.integers(0, 256, (96, 784), dtype=np.uint8), (28, 28)),
                                            ("label", rng.integers(0, 3, 96), ("x", "y", "z"))])
    data = prepare(dataset, get_protocol("vsae"), "mcar", 0.5, seed=0)
    model = get_model("misgan")(seed=0, max_epochs=1, n_imputations=2).fit(data.train, data.validation)
    assert isinstance(model.data_generator, ConvRowGenerator) and isinstance(model.imputer_critic, ConvRowCritic)
    assert ImageGenerator(8)(torch.zeros(2, 8)).shape == (2, 784)
    imputed = model.impute(data.test)
    x, observed = data.test.rows(slice(None))
    assert torch.equal(imputed[observed], x[observed]) and 0 <= float(imputed.min()) and float(imputed.max()) <= 1
    fc = get_model("misgan")(seed=0, image_networks="fc").build_networks(dataset.schema)
    assert not isinstance(fc.data_generator, ConvRowGenerator)


@pytest.fixture(scope="module")
def image_and_label():
    """An image whose brightness gives its label (3 classes): mnist_label's shape of data, small."""
    from imputebench.data.multimodal import multimodal_dataset

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    pixels = np.clip(labels[:, None] * 100 + rng.integers(0, 50, (300, 16)), 0, 255).astype(np.uint8)
    dataset = multimodal_dataset("bright", [("img", pixels, (4, 4)), ("label", labels, ("dark", "mid", "light"))])
    return prepare(dataset, get_protocol("vsae"), "mcar", 0.5, seed=0)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_and_label_score_the_image_by_mse_and_the_label_by_pfc(name, image_and_label):
    imputed = fitted(name, image_and_label).impute(image_and_label.test)
    x, observed = image_and_label.test.rows(slice(None))
    assert torch.equal(imputed[observed], x[observed])
    labels = imputed[:, -3:]  # (n, 3) the label's one-hot block
    assert torch.allclose(labels.sum(1), torch.ones(len(labels)), atol=1e-4), "a label imputation is a distribution or a one-hot"
    metrics = score(image_and_label, imputed)
    assert set(metrics) >= {"pfc", "mse_img", "mse"} and metrics["mse"] == metrics["mse_img"]
    assert 0.0 <= metrics["pfc"] <= 1.0
