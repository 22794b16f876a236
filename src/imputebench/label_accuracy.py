"""Label accuracy under weak supervision: each test row's label imputed from its image alone.

MVAE (Wu & Goodman, NeurIPS 2018), section 5.1 and appendix G, Tables 8-9: with a fraction of the training
examples paired (the :func:`~imputebench.masks.unpaired` mechanism), "we compute the accuracy (out of 1) of
predicting the correct digit in each image", i.e. p(x_2 | x_1) for an image x_1 and its label x_2.

Whatever the mechanism hid in the test rows, this evaluation shows the imputer every test image and hides
every test label, so each row is scored once and every model answers the same question. The label is the
dataset's one categorical feature outside its images (``mnist_label``, ``fashion_label``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from imputebench.data.prepare import PreparedData
from imputebench.data.table import Table
from imputebench.metric_directions import LABEL_ACCURACY
from imputebench.schema import FeatureSchema


def label_feature(schema: FeatureSchema, dataset: str) -> int:
    """The index of the one categorical feature beside images; ValueError naming ``dataset`` otherwise."""
    labels = [j for j in schema.categorical_indices if not schema.features[j].is_pixel]
    if not schema.pixel_indices or len(labels) != 1:
        raise ValueError(f"dataset {dataset!r}: label accuracy needs images and exactly one label feature "
                         f"(an image + label dataset such as mnist_label), found {len(labels)} label features "
                         f"and {len(schema.pixel_indices)} pixels")
    return labels[0]


def label_accuracy(data: PreparedData, impute: Callable[[Table], torch.Tensor]) -> dict[str, float]:
    """``{"label_accuracy": a}``: the share of test rows whose label ``impute`` recovers from the image alone."""
    schema = data.dataset.schema
    label = label_feature(schema, data.dataset.name)
    values = data.dataset.values[data.splits.test]  # (n_test, d)
    observed = np.ones(values.shape, dtype=bool)
    observed[:, label] = False  # every image shown, every label hidden
    imputed = impute(data.transform.encode(values, observed, data.device))  # (n_test, D)
    predicted = data.transform.decode(imputed)[:, label]  # (n_test,) category codes
    return {LABEL_ACCURACY: float(np.mean(np.rint(predicted) == values[:, label]))}
