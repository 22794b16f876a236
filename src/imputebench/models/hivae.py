"""HI-VAE: the heterogeneous-incomplete VAE (Nazabal, Olmos, Ghahramani, Valera; Pattern Recognition 2020).

Generative model (paper eq. 6-8): s ~ Cat(uniform), z | s ~ N(mu_p(s), I) with mu_p
linear in the one-hot s, a shared y = g(z) cut into a slice y_d per feature, and
x_d | y_d, s from a per-type likelihood (:mod:`imputebench.nn.hivae_likelihoods`).
Inference (eq. 9-10): q(s | x~) categorical, relaxed by Gumbel-softmax with an
annealed temperature, and q(z | x~, s) Gaussian, where x~ is the zero-filled input
after per-feature batch normalisation on observed entries. ELBO (eq. 13): observed
log-likelihoods - KL(q(s) || p(s)) - KL(q(z | x~, s) || p(z | s)), the last at the
sampled s as in the authors' code (a one-sample estimate of E_q(s)[KL]).
Imputation: mean/mode of p(x_d | y_d, s) at the posterior modes of s and z, so the
model is deterministic given the input (``stochastic = False``).

From the authors' code (github.com/probabilistic-learning/HI-VAE, the
``model_HIVAE_inputDropout`` variant, where the paper is open): every network is a
single linear layer (q(s|x), q(z|x,s), mu_p(s), g(z)) with N(0, 0.05^2) weights;
the Gumbel temperature tau = max(1 - 0.01 * epoch, 1e-3) (``main_scripts.py``);
batch 100 and 200 epochs (``script_HIVAE.sh``); at test time s = argmax q(s|x), z = E[z].
Not reproduced: the input dropout of that variant (its rate tau2 is unused in the
released likelihoods).

Positive and count features: the data arrive standardised (``x = (raw - m) / sd``) and
the model cannot recover the raw values the log-normal and Poisson likelihoods need
unless it knows ``(m, sd)``. :meth:`HIVAE.read_table_transform` takes them from the training table's
``feature_mean`` / ``feature_std`` ``(d,)``, which ``TableTransform.encode`` fills. A table without
them (built by hand) makes positive and count features fall back to HI-VAE's real
(Gaussian) likelihood on the standardised values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from imputebench.data.table import Table
from imputebench.models.base import ImputerModule, TrainingConfig
from imputebench.models.config_types import Count, NonNegativeFloat, PositiveFloat
from imputebench.models.registry import register_model
from imputebench.nn.elbo import clamp_logvar, gaussian_kl_between, masked_log_lik, reparameterize
from imputebench.nn.hivae_likelihoods import HeterogeneousLikelihood
from imputebench.schema import FeatureSchema

_INIT_STD = 0.05  # authors' kernel_initializer


@dataclass(frozen=True)
class HIVAEConfig(TrainingConfig):
    batch_size: Count = 100  # authors' script_HIVAE.sh
    max_epochs: Count = 200  # authors' script_HIVAE.sh
    s_dim: Count = 10  # dimension of the mixture component s (paper section 5)
    z_dim: Count = 10  # dimension of z (paper section 5)
    y_dim: Count = 5  # dimension of each y_d (paper section 5)
    tau_start: PositiveFloat = 1.0  # Gumbel-softmax temperature at epoch 0 (authors' main_scripts.py)
    tau_decay: NonNegativeFloat = 0.01  # temperature decrease per epoch (authors)
    tau_min: PositiveFloat = 1e-3  # final temperature (authors)


def _linear(in_dim: int, out_dim: int) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    nn.init.normal_(layer.weight, std=_INIT_STD)
    nn.init.zeros_(layer.bias)
    return layer


@register_model("hivae")
class HIVAE(ImputerModule):
    """Heterogeneous-incomplete VAE: Gaussian-mixture prior, per-type likelihoods, ELBO on observed entries."""

    Config = HIVAEConfig
    uses_family_presets = False  # the authors' own learning rate and epochs, not the VSAE paper's
    stochastic = False

    def __init__(self, seed: int = 0, **config: object) -> None:
        super().__init__(seed, **config)
        #: the transform's per-feature (mean, std) ``(d,)``; None: positive/count use the real likelihood
        self.raw_affine: tuple[torch.Tensor, torch.Tensor] | None = None

    def read_table_transform(self, train: Table) -> None:
        """The training table's ``(m, sd)``, before the likelihoods are built: every path to a fit (the
        runner's Trainer, ``fit``, a user's own ``trainer.fit``) builds the networks in ``setup()``."""
        mean, std = train.feature_mean, train.feature_std
        self.raw_affine = None if mean is None or std is None else (mean, std)

    def likelihood_kinds(self, schema: FeatureSchema) -> tuple[str, ...]:
        """Each feature's HI-VAE likelihood: its declared kind, or real for positive/count without raw values
        (and for pixels under ``pixel_likelihood="gaussian"``)."""
        raw = self.raw_affine is not None
        as_real = {"pixel"} if self.cfg.pixel_likelihood == "gaussian" else set()
        if not raw:
            as_real |= {"positive", "count"}
        return tuple("real" if f.kind in as_real else f.kind for f in schema.features)

    def build(self, schema: FeatureSchema) -> None:
        cfg = self.cfg
        self.likelihood = HeterogeneousLikelihood(
            schema, self.likelihood_kinds(schema), cfg.y_dim, cfg.s_dim, self.raw_affine
        )
        width = schema.encoded_dim
        self.encoder_s = _linear(width, cfg.s_dim)  # logits of q(s | x~)
        self.encoder_z = _linear(width + cfg.s_dim, 2 * cfg.z_dim)  # mean and log-variance of q(z | x~, s)
        self.prior_z = _linear(cfg.s_dim, cfg.z_dim)  # mu_p(s)
        self.decoder_y = _linear(cfg.z_dim, cfg.y_dim * len(schema))  # y = g(z)

    def temperature(self) -> float:
        """Gumbel-softmax temperature of the current epoch: linear decay to ``tau_min`` (authors)."""
        cfg = self.cfg
        return max(cfg.tau_start - cfg.tau_decay * self.current_epoch, cfg.tau_min)

    def _posterior_z(self, x_in: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder_z(torch.cat([x_in, s], -1)).chunk(2, -1)  # (b, z_dim) each
        return mu, clamp_logvar(logvar)

    def _decode(self, z: torch.Tensor, s: torch.Tensor) -> dict:
        y = self.decoder_y(z).view(z.shape[0], -1, self.cfg.y_dim)  # (b, d, y_dim)
        return self.likelihood.params(y, s)

    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x * observed  # the filled input: a hidden value never reaches a network
        mask = self.layout.feature_mask(observed)  # (b, d)
        x_in, stats = self.likelihood.normalise(x, mask)  # (b, D)
        log_q_s = self.encoder_s(x_in).log_softmax(-1)  # (b, S)
        # Gumbel-softmax sample of s; log q clipped at log 1e-6 as the authors' s_proposal_multinomial
        gumbel = -torch.log(-torch.log(torch.rand_like(log_q_s).clamp(1e-20, 1.0)))
        s = ((log_q_s.clamp_min(math.log(1e-6)) + gumbel) / self.temperature()).softmax(-1)  # (b, S)
        mu_q, logvar_q = self._posterior_z(x_in, s)
        z = reparameterize(mu_q, logvar_q)
        params = self._decode(z, s)
        rec = masked_log_lik(self.likelihood.log_prob(params, x, mask, stats), mask)  # (b,)
        kl_s = (log_q_s.exp() * log_q_s).sum(-1) + math.log(self.cfg.s_dim)  # KL(q(s|x) || uniform)
        mu_p = self.prior_z(s)
        kl_z = gaussian_kl_between(mu_q, logvar_q, mu_p, torch.zeros_like(mu_p)).sum(-1)  # (b,)
        loss = (kl_s + kl_z - rec).mean()
        return {"loss": loss, "rec": -rec.mean(), "kl_s": kl_s.mean(), "kl_z": kl_z.mean()}

    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        x = x * observed
        x_in, stats = self.likelihood.normalise(x, self.layout.feature_mask(observed))
        s = F.one_hot(self.encoder_s(x_in).argmax(-1), self.cfg.s_dim).to(x.dtype)  # mode of q(s | x~)
        mu_q, _ = self._posterior_z(x_in, s)  # mode of q(z | x~, s)
        return self.likelihood.impute(self._decode(mu_q, s), stats)
