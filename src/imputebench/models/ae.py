"""AE: the deterministic autoencoder baseline of the VSAE paper (papers/000 Table 1; papers/001 appendix D).

"In the setting of AE/VAE, the input is the whole data without the mask": the
encoder sees the table with hidden entries filled with 0 (the mean of a
standardised feature; an all-zero one-hot block) and no mask; the loss is the
reconstruction negative log-likelihood of the observed entries only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from imputebench.models.base import ImputerModule, TrainingConfig
from imputebench.models.config_types import Count, PositiveFloat
from imputebench.models.registry import register_model
from imputebench.nn.elbo import masked_log_lik
from imputebench.nn.heads import TabularLikelihood
from imputebench.nn.mlp import mlp
from imputebench.schema import FeatureSchema


@dataclass(frozen=True)
class AEConfig(TrainingConfig):
    # "All the re-implemented baselines use the same backbone architecture and the total
    # number of parameters same as (or more than) our method" (papers/001 D): 3 hidden
    # layers like VSAE's networks, 256 wide so that the count is at least VSAE's.
    hidden_width: Count = 256
    hidden_layers: Count = 3
    # "The conditional log-likelihood term is computed by negating reconstruction loss function"
    # (papers/001 B.1): log p(x_i | z) = -(x_i - mu_i)^2 + const, a Gaussian of variance 1/2 on
    # standardised data. (Variance 1, the data's own, makes encoding worthless: the VAEs collapse
    # to mean imputation, measured on yeast.)
    gaussian_variance: PositiveFloat = 0.5
    latent_per_feature: Count = 20  # "same size of latent variables" as VSAE (20 per modality, papers/000 B.2)


@register_model("ae")
class AE(ImputerModule):
    """Autoencoder on zero-filled data without the mask; loss on observed entries."""

    Config = AEConfig
    stochastic = False

    def build(self, schema: FeatureSchema) -> None:
        cfg = self.cfg
        self.likelihood = TabularLikelihood(schema, variance=cfg.gaussian_variance, pixel_likelihood=cfg.pixel_likelihood)
        hidden = [cfg.hidden_width] * cfg.hidden_layers
        latent = cfg.latent_per_feature * self.layout.n_modalities
        self.encoder = mlp(schema.encoded_dim, hidden, latent)
        self.decoder = mlp(latent, hidden, self.likelihood.param_dim)

    def _params(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))  # (b, P)

    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x * observed  # the filled input: a hidden value never reaches a network
        log_p = self.likelihood.log_prob(self._params(x), x)  # (b, d)
        nll = -masked_log_lik(log_p, self.layout.feature_mask(observed)).mean()
        return {"loss": nll}

    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        return self.likelihood.mode(self._params(x * observed))
