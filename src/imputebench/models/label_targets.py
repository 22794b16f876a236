"""The labels MVAE's weak-supervision baselines learn (``supervised_*``, ``*_logreg``): a table's categorical
features outside its images, predicted from the other features (MVAE, Wu & Goodman 2018, section 5.1)."""

from __future__ import annotations

import torch

from imputebench.schema import FeatureSchema


def label_features(schema: FeatureSchema) -> list[int]:
    """The categorical features outside images."""
    return [j for j in schema.categorical_indices if not schema.features[j].is_pixel]


def why_no_labels(schema: FeatureSchema) -> str | None:
    """Why a label-learning model cannot take ``schema`` (it needs labels and other features), else None."""
    labels = label_features(schema)
    if not labels or len(labels) == len(schema):
        return "it learns labels (categorical features) from the other features: the table needs both"
    return None


def label_masks(schema: FeatureSchema) -> tuple[torch.Tensor, torch.Tensor]:
    """Bool masks of the labels' encoded columns ``(D,)`` and of the label features ``(d,)``."""
    labels = label_features(schema)
    columns = torch.zeros(schema.encoded_dim, dtype=torch.bool)
    for j in labels:
        columns[schema.offsets[j]:schema.offsets[j] + schema.widths[j]] = True
    return columns, torch.isin(torch.arange(len(schema)), torch.tensor(labels))
