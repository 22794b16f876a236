"""Conditional VAEs, the two CVAE baselines of the VSAE paper (papers/000 Table 1; papers/001 appendix D).

* ``cvae_mask``: "In CVAE w/ mask, the encoder and decoder are both conditioned
  on the mask vector" -- the VAE of :mod:`imputebench.models.vae` with the
  feature-level mask m concatenated to both inputs; trained on partially
  observed data, loss on observed entries.
* ``cvae_data``: encoder q(z | x, m), prior network p(z | x_o, m), decoder
  p(x | z, x_o, m) (Sohn et al. 2015), "trained with fully-observed data". The
  conditioning mask of each training row is drawn at random (Bernoulli per
  feature, ``train_missing_rate``), x_o is x with the unmasked features zeroed,
  and the reconstruction covers every observed feature of the training row (all
  of them on complete data). Imputation samples z from the prior network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from imputebench.models.ae import AEConfig
from imputebench.models.base import ImputerModule
from imputebench.models.config_types import Probability
from imputebench.models.registry import register_model
from imputebench.models.vae import VAE
from imputebench.nn.elbo import clamp_logvar, gaussian_kl_between, masked_log_lik, reparameterize
from imputebench.nn.heads import TabularLikelihood
from imputebench.nn.mlp import mlp
from imputebench.schema import FeatureSchema


@register_model("cvae_mask")
class CVAEMask(VAE):
    """VAE whose encoder and decoder are both conditioned on the missingness mask."""


    def condition_dim(self, schema: FeatureSchema) -> int:
        return self.layout.n_modalities

    def condition(self, observed: torch.Tensor) -> torch.Tensor:
        return self.layout.modality_mask(observed).float()  # (b, M) m, per modality (a table's features)


@dataclass(frozen=True)
class CVAEDataConfig(AEConfig):
    # Probability that a modality (a table's feature) of a complete training row is hidden from the prior
    # network and the decoder. Not stated in the VSAE paper; 0.5 is the missing ratio
    # of every table it reports.
    train_missing_rate: Probability = 0.5


@register_model("cvae_data")
class CVAEData(ImputerModule):
    """CVAE with a prior network on the observed part; trained on complete data."""

    Config = CVAEDataConfig

    def build(self, schema: FeatureSchema) -> None:
        cfg = self.cfg
        if not 0.0 < cfg.train_missing_rate < 1.0:
            raise ValueError(f"train_missing_rate must be in (0, 1), got {cfg.train_missing_rate}")
        self.likelihood = TabularLikelihood(schema, variance=cfg.gaussian_variance, pixel_likelihood=cfg.pixel_likelihood)
        hidden = [cfg.hidden_width] * cfg.hidden_layers
        self.latent_dim = cfg.latent_per_feature * self.layout.n_modalities
        inputs = schema.encoded_dim + self.layout.n_modalities  # [x or x_o, m]
        self.encoder = mlp(inputs, hidden, 2 * self.latent_dim)  # q(z | x, m)
        self.prior = mlp(inputs, hidden, 2 * self.latent_dim)  # p(z | x_o, m)
        self.decoder = mlp(self.latent_dim + inputs, hidden, self.likelihood.param_dim)  # p(x | z, x_o, m)

    @staticmethod
    def _gaussian(net: torch.nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = net(inputs).chunk(2, -1)  # (b, k) each
        return mu, clamp_logvar(logvar)

    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x * observed  # the filled input: a hidden value never reaches a network
        present = self.layout.modality_mask(observed)  # (b, M) modalities with a known value
        keep = torch.rand(present.shape, device=x.device) >= self.cfg.train_missing_rate
        m = (present & keep).float()  # (b, M) the conditioning mask
        cond = torch.cat([x * self.layout.expand_modalities(m), m], -1)  # [x_o, m]
        mu_q, lv_q = self._gaussian(self.encoder, torch.cat([x, present.float()], -1))
        mu_p, lv_p = self._gaussian(self.prior, cond)
        params = self.decoder(torch.cat([reparameterize(mu_q, lv_q), cond], -1))
        rec = masked_log_lik(self.layout.per_modality_sum(self.likelihood.log_prob(params, x)), present)  # (b,)
        kl = gaussian_kl_between(mu_q, lv_q, mu_p, lv_p).sum(-1)  # (b,)
        return {"loss": (kl - rec).mean(), "rec": -rec.mean(), "kl": kl.mean()}

    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        m = self.layout.modality_mask(observed).float()  # (b, M)
        cond = torch.cat([x * observed, m], -1)
        mu_p, lv_p = self._gaussian(self.prior, cond)
        return self.likelihood.mode(self.decoder(torch.cat([reparameterize(mu_p, lv_p), cond], -1)))

    @torch.no_grad()
    def generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` rows from the prior network given nothing observed (x_o empty, m = 0)."""
        return self.impute_from_nothing(n), None
