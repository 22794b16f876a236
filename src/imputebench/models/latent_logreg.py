"""MVAE's unsupervised-then-linear baselines: an AE or VAE of the images, a logistic regression on its code.

MVAE (Wu & Goodman 2018), section 5.1: "(3) an autoencoder trained on the full set of images, followed by logistic
regression on a subset of paired examples; we do something similar for (4) VAEs ..., where the internal latent
state is used as input to the logistic regression"; appendix H: "The VAE used the same image encoder as the MVAE".
So, with MVAE's MNIST networks (appendix A: MLPs of 2 hidden layers of 512, 64 latent dimensions, Adam 1e-3,
minibatch 100):

* ``ae_logreg``: the project's AE over the inputs (images; a table's non-categorical features), never the labels;
* ``vae_logreg``: the project's VAE likewise, its code the posterior mean;
* for both, a logistic regression (one linear layer, cross-entropy) from the code to the labels, on the rows where
  the inputs and a label are observed (the paired examples).

Deviation: the paper fits the regression after the autoencoder; here it trains alongside it, on the *detached*
code, so it never shapes the autoencoder (which learns from every row's inputs, paired or not) and ends fitted to
the final code, without a second training stage. The selected epoch is the best on validation for both at once.
Hidden inputs are the autoencoder's reconstruction; hidden labels the regression's prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from imputebench.models.ae import AE, AEConfig
from imputebench.models.config_types import Count, PositiveFloat
from imputebench.models.label_targets import label_masks, why_no_labels
from imputebench.models.registry import register_model
from imputebench.models.vae import VAE
from imputebench.nn.elbo import masked_log_lik
from imputebench.schema import FeatureSchema


@dataclass(frozen=True)
class LatentLogRegConfig(AEConfig):
    """MVAE appendix A (MNIST): Adam 1e-3, minibatch 100, MLPs of 2 hidden layers of 512, 64 latent dimensions
    (32 a modality for an image and its label)."""

    lr: PositiveFloat = 1e-3
    batch_size: Count = 100
    hidden_width: Count = 512
    hidden_layers: Count = 2
    latent_per_feature: Count = 32


class LatentLogReg:
    """The regression on the code, mixed into an autoencoder whose ``code(x)`` gives ``(b, k)`` features."""

    @classmethod
    def refuses(cls, schema: FeatureSchema) -> str | None:
        return why_no_labels(schema)

    def build(self, schema: FeatureSchema) -> None:
        reason = self.refuses(schema)
        if reason is not None:
            raise ValueError(f"{self.name}: {reason}")
        super().build(schema)
        label_columns, label_feature = label_masks(schema)
        self.register_buffer("is_label_column", label_columns, persistent=False)  # (D,)
        self.register_buffer("is_label_feature", label_feature, persistent=False)  # (d,)
        self.regression = nn.Linear(self.latent_dim, self.likelihood.param_dim)  # only the label blocks are used

    def inputs_observed(self, observed: torch.Tensor) -> torch.Tensor:
        """``observed`` with every label hidden: what the autoencoder is shown and scored on. ``(b, D)``."""
        return observed & ~self.is_label_column

    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        shown = self.inputs_observed(observed)
        parts = super().loss(x, shown)  # the autoencoder on the inputs alone
        code = self.code(x * shown).detach()  # (b, k): the regression never trains the autoencoder
        log_p = self.likelihood.log_prob(self.regression(code), x)  # (b, d)
        paired = self.layout.feature_mask(observed)[:, ~self.is_label_feature].all(1, keepdim=True)  # (b, 1)
        labels_seen = self.layout.feature_mask(observed) & self.is_label_feature & paired  # (b, d)
        cross_entropy = -masked_log_lik(log_p, labels_seen).sum() / labels_seen.sum().clamp(min=1)
        return {**parts, "loss": parts["loss"] + cross_entropy, "regression": cross_entropy}

    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        shown = self.inputs_observed(observed)
        reconstructed = super().impute_batch(x, shown)  # (b, D)
        predicted = self.likelihood.mode(self.regression(self.code(x * shown)))  # (b, D) one-hot labels
        return torch.where(self.is_label_column, predicted, reconstructed)


@register_model("vae_logreg")
class VAELogReg(LatentLogReg, VAE):
    """A VAE of the images and a logistic regression from its posterior mean to the labels, on the paired rows (MVAE's VAE)."""

    Config = LatentLogRegConfig

    def code(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x, self.condition(x.new_ones(x.shape, dtype=torch.bool)))[0]  # (b, k) posterior mean


@register_model("ae_logreg")
class AELogReg(LatentLogReg, AE):
    """An autoencoder of the images and a logistic regression from its code to the labels, on the paired rows (MVAE's AE)."""

    Config = LatentLogRegConfig

    def build(self, schema: FeatureSchema) -> None:
        self.latent_dim = self.cfg.latent_per_feature * self.layout.n_modalities  # as AE.build sizes its code
        super().build(schema)

    def code(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (b, k)
