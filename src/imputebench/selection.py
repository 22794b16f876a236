"""Validation imputation error: the score the deep models select their best epoch by.

The VSAE paper (appendix B.3 / long version D) and VAEAC pick "the best model on
the validation set"; with NRMSE and PFC as the reported metrics the natural
selection score is the same imputation error on the validation split's own
hidden entries. For a mixed table the two are put on one scale by averaging
per-feature errors: RMSE in standardised units for numeric features (the
encoded space, so NRMSE up to the normaliser) and the error rate for one-hot
features. An image counts once, with its per-pixel squared error on the [0, 1]
scale (the test metric ``mse_<modality>``). Features with no hidden validation
entry are left out.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from imputebench.nn.layout import SchemaLayout
from imputebench.schema import FeatureSchema


class SelectionError(Metric):
    """Mean per-feature imputation error over hidden entries, streamed over batches (DDP-safe).

    >>> from imputebench.schema import Feature, FeatureSchema
    >>> schema = FeatureSchema((Feature("a"), Feature("k", "categorical", ("x", "y"))))
    >>> metric = SelectionError(schema)
    >>> truth = torch.tensor([[1.0, 1, 0], [3.0, 0, 1]])
    >>> preds = torch.tensor([[0.0, 1, 0], [3.0, 1, 0]])
    >>> observed = torch.tensor([[False, False, False], [False, False, False]])
    >>> metric.update(preds, truth, observed)
    >>> metric.compute()  # (RMSE sqrt(1/2) + error rate 1/2) / 2
    tensor(0.6036)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, schema: FeatureSchema, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.layout = SchemaLayout(schema)
        numeric = torch.zeros(len(schema), dtype=torch.bool)
        numeric[self.layout.numeric_features] = True
        pixel = torch.zeros(len(schema), dtype=torch.bool)
        pixel[self.layout.pixel_features] = True
        self.register_buffer("numeric", numeric, persistent=False)
        self.register_buffer("pixel", pixel, persistent=False)
        self.add_state("error", torch.zeros(len(schema)), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(len(schema)), dist_reduce_fx="sum")

    def update(self, preds: Tensor, truth: Tensor, observed: Tensor) -> None:
        """``preds`` (imputations, one-hot blocks), ``truth``, ``observed``: ``(b, D)`` encoded."""
        hidden = ~self.layout.feature_mask(observed)  # (b, d)
        squared = self.layout.per_feature_sum((preds - truth).pow(2))  # (b, d); one-hot blocks: 0 or 2
        hits = self.layout.per_feature_sum(preds * truth)  # (b, d); one-hot blocks: 1 if right
        per_entry = torch.where(self.numeric | self.pixel, squared, 1.0 - hits)  # (b, d)
        self.error += (per_entry * hidden).sum(0)
        self.count += hidden.sum(0)

    def compute(self) -> Tensor:
        used = self.count > 0
        mean = self.error / self.count.clamp_min(1)  # (d,)
        per_feature = torch.where(self.numeric, mean.sqrt(), mean)[used & ~self.pixel]  # RMSE / error rate
        pixels = (used & self.pixel).to(mean.dtype)  # (d,)
        image_sums, image_pixels = self.layout.per_modality_sum(mean * pixels), self.layout.per_modality_sum(pixels)
        per_image = image_sums[image_pixels > 0] / image_pixels[image_pixels > 0]  # per-pixel MSE per image
        scores = torch.cat([per_feature, per_image])
        return scores.mean() if scores.numel() else torch.tensor(float("nan"))
