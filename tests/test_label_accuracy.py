"""Label accuracy (MVAE Tables 8-9): every test label imputed from its image alone, never from itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import correlated_dataset
from imputebench.data.multimodal import multimodal_dataset
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.label_accuracy import label_accuracy, label_feature
from imputebench.models.registry import get_model

CLASSES = ("zero", "one", "two")


def labelled_images(n: int = 300, seed: int = 0):
    """4-pixel images whose first pixel is 100 x the label; the others noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(3, size=n)  # (n,) codes, class 0 the rarest by chance or not
    images = rng.integers(0, 50, size=(n, 4)).astype(np.uint8)
    images[:, 0] = 100 * labels
    return multimodal_dataset("labelled", [("image", images, (2, 2)), ("label", labels, CLASSES)])


@pytest.fixture(scope="module")
def data():
    return prepare(labelled_images(), get_protocol("vsae"), "unpaired", 0.5, seed=0)


def reader(data, seen: list):
    """An imputer that reads each label off its image's first pixel, keeping what it was shown."""
    label = label_feature(data.dataset.schema, "labelled")
    offset = data.dataset.schema.offsets[label]

    def impute(table):
        x, observed = table.rows(torch.arange(table.n_rows))  # (n, D) each
        seen.append((x.clone(), observed.clone()))
        codes = torch.round(x[:, 0] * 255.0 / 100.0).long()  # (n,) from the first pixel
        out = x.clone()
        out[:, offset:offset + len(CLASSES)] = torch.nn.functional.one_hot(codes, len(CLASSES)).to(out.dtype)
        return out

    return impute, offset


def test_a_model_that_reads_the_image_scores_one_and_never_sees_a_test_label(data):
    seen: list = []
    impute, offset = reader(data, seen)
    assert label_accuracy(data, impute) == {"label_accuracy": 1.0}
    x, observed = seen[0]
    assert x.shape[0] == len(data.splits.test)  # each test row once, whatever the mask hid there
    assert not observed[:, offset:].any() and (x[:, offset:] == 0).all()  # every label hidden, as zeros
    assert observed[:, :offset].all()  # every image shown


def test_mean_imputation_scores_the_share_of_the_training_mode(data):
    model = get_model("mean")().fit(data.train)
    truth = data.dataset.values[data.splits.test, -1]
    observed_train = data.dataset.values[data.splits.train, -1][data.observed[data.splits.train, -1]]
    mode = np.bincount(observed_train.astype(int), minlength=3).argmax()
    assert label_accuracy(data, model.impute)["label_accuracy"] == pytest.approx(np.mean(truth == mode))


def test_a_table_without_images_and_a_label_is_refused_by_name():
    with pytest.raises(ValueError, match="'toy': label accuracy needs images and exactly one label feature"):
        label_feature(correlated_dataset().schema, "toy")
