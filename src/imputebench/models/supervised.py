"""Supervised baselines of MVAE's weak-supervision experiment (Wu & Goodman 2018, section 5.1, appendix H).

Tables 8-9 compare the MVAE, trained on every example (paired or not), with classifiers trained on the paired
examples alone:

* ``supervised_nn``, the paper's NN: "supervised neural network using the same architectures (with the
  stochastic layer removed) as in the MVAE"; appendix H: "NN uses the image encoder and label/string decoder
  as in MVAE". MVAE's MNIST networks are "MLPs with 2 hidden layers of 512 nodes" and "64 latent dimensions"
  (appendix A), so: image -> 512 -> 512 -> 64 -> 512 -> 512 -> label logits, cross-entropy.
* ``supervised_logreg``, the paper's LOGREG: "logistic regression on raw pixels": one linear layer from the
  pixels to the label's logits, cross-entropy, no penalty, trained like the NN.

Generalised to any table, so that each is an imputer: every categorical feature (the label) is predicted from
the non-categorical ones (the pixels; numeric features of a table), trained on the training rows where all of
those and the categorical feature are observed (the paired examples). The models learn nothing about the
other features: a hidden pixel or number is imputed by the mean of its observed training entries.

Deviations: our MLP blocks (:func:`~imputebench.nn.mlp.mlp`: batch normalisation after the first layer, Leaky
ReLU) stand in for MVAE's Swish MLPs, as in the project's MVAE; LOGREG's optimiser is not stated, and Adam on
the cross-entropy (the schedule of every deep model here) replaces whatever solver the authors used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from imputebench.data.datamodule import IndexBatches
from imputebench.data.table import Table
from imputebench.models.base import ImputerModule, TrainingConfig
from imputebench.models.config_types import Count, PositiveFloat
from imputebench.models.label_targets import label_masks, why_no_labels
from imputebench.models.registry import register_model
from imputebench.nn.elbo import masked_log_lik
from imputebench.nn.heads import TabularLikelihood
from imputebench.nn.mlp import mlp
from imputebench.schema import FeatureSchema


@dataclass(frozen=True)
class SupervisedNNConfig(TrainingConfig):
    """MVAE appendix A (MNIST): Adam at 1e-3, minibatch 100; 2 hidden layers of 512; 64 latent dimensions."""

    lr: PositiveFloat = 1e-3
    batch_size: Count = 100
    hidden_width: Count = 512
    hidden_layers: Count = 2
    bottleneck: Count = 64  # the MVAE's latent, now deterministic: the encoder's mean feeds the decoder


@register_model("supervised_nn")
class SupervisedNN(ImputerModule):
    """Labels predicted from the other features by an MLP trained on the rows where both are observed (MVAE's NN)."""

    Config = SupervisedNNConfig
    stochastic = False

    @classmethod
    def refuses(cls, schema: FeatureSchema) -> str | None:
        return why_no_labels(schema)

    def build(self, schema: FeatureSchema) -> None:
        reason = self.refuses(schema)
        if reason is not None:
            raise ValueError(f"{self.name}: {reason}")
        label_columns, label_feature = label_masks(schema)
        self.likelihood = TabularLikelihood(schema, pixel_likelihood=self.cfg.pixel_likelihood)
        self.register_buffer("input_columns", torch.nonzero(~label_columns).flatten(), persistent=False)  # (D_in,)
        self.register_buffer("is_label_column", label_columns, persistent=False)  # (D,)
        self.register_buffer("is_label_feature", label_feature, persistent=False)  # (d,)
        # (D,) set by fit_statistics from the training table, like GAIN's scaling: not part of the weights
        self.register_buffer("column_mean", torch.zeros(schema.encoded_dim), persistent=False)
        self.network = self.classifier(len(self.input_columns), self.likelihood.param_dim)

    def classifier(self, in_dim: int, out_dim: int) -> nn.Module:
        """The image encoder (to the bottleneck) followed by the label decoder."""
        cfg = self.cfg
        hidden = [cfg.hidden_width] * cfg.hidden_layers
        return nn.Sequential(mlp(in_dim, hidden, cfg.bottleneck), mlp(cfg.bottleneck, hidden, out_dim))

    @torch.no_grad()
    def fit_statistics(self, train: Table) -> None:
        """The mean of each encoded column over its observed training entries: the fill of a hidden input."""
        total = torch.zeros(self.schema.encoded_dim, dtype=torch.float64, device=train.device)
        count = torch.zeros_like(total)
        for x, observed in train.chunks(self.cfg.eval_rows):
            total += (x * observed).sum(0, dtype=torch.float64)
            count += observed.sum(0)
        self.column_mean.copy_((total / count.clamp(min=1)).to(self.column_mean))

    def paired_rows(self, table: Table) -> torch.Tensor:
        """Rows whose inputs are all observed and whose labels are not all hidden: the paired examples."""
        rows = []
        for start, (_, observed) in zip(range(0, table.n_rows, self.cfg.eval_rows), table.chunks(self.cfg.eval_rows)):
            inputs_seen = observed[:, self.input_columns.to(observed.device)].all(1)  # (b,)
            label_seen = observed[:, self.is_label_column.to(observed.device)].any(1)  # (b,)
            rows.append(start + torch.nonzero(inputs_seen & label_seen).flatten())
        return torch.cat(rows)

    def train_batches(self, table: Table) -> IndexBatches:
        """Epochs over the paired training rows only, as the paper trains its NN "on a subset of paired examples"."""
        paired = self.paired_rows(table)
        if paired.numel() < 2:
            raise ValueError(f"{self.name}: {paired.numel()} training rows have both inputs and a label observed; "
                             "at least 2 are needed")
        return super().train_batches(table.subset(paired))

    def _params(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x[:, self.input_columns])  # (b, P)

    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        log_p = self.likelihood.log_prob(self._params(x * observed), x)  # (b, d)
        labels_seen = self.layout.feature_mask(observed) * self.is_label_feature  # (b, d) labels only
        nll = -masked_log_lik(log_p, labels_seen).sum() / labels_seen.sum().clamp(min=1)
        return {"loss": nll}

    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        filled = torch.where(observed, x, self.column_mean)  # (b, D) hidden inputs at their training mean
        predicted = self.likelihood.mode(self._params(filled))  # (b, D) one-hot labels
        return torch.where(self.is_label_column, predicted, self.column_mean)


@dataclass(frozen=True)
class SupervisedLogRegConfig(TrainingConfig):
    """Trained as the NN (MVAE appendix H: "All other hyperparameters were kept constant between models")."""

    lr: PositiveFloat = 1e-3
    batch_size: Count = 100


@register_model("supervised_logreg")
class SupervisedLogReg(SupervisedNN):
    """Labels predicted from the other features by a logistic regression trained on the rows where both are observed (MVAE's LOGREG)."""

    Config = SupervisedLogRegConfig

    def classifier(self, in_dim: int, out_dim: int) -> nn.Module:
        return nn.Linear(in_dim, out_dim)
