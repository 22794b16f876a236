"""MIWAE: missing-data importance-weighted autoencoder (Mattei & Frellsen, ICML 2019).

Specification: shared/docs/models.md (MIWAE); details the paper leaves open follow the
authors' public notebooks (github.com/pamattei/miwae), as noted where used.

A deep latent variable model p(z) = N(0, I), p(x | z) factorised over features
(Student's t per numeric feature by default, softmax per one-hot feature), fitted
on the observed entries by maximising the importance-weighted (MIWAE) bound

    L_K = E_{z_1..K ~ q(z | x_o)} [ log (1/K) sum_k p(x_o | z_k) p(z_k) / q(z_k | x_o) ],

where the encoder q(z | x_o) sees x with its missing entries set to 0 (the paper's
zero imputation iota). Single imputation by self-normalised importance sampling:
E[x_m | x_o] ~ sum_l w_l E[x_m | z_l], w_l proportional to
r_l = p(x_o | z_l) p(z_l) / q(z_l | x_o), z_l ~ q(z | x_o); the one-hot features take the
argmax of the weighted category probabilities. (The authors' notebooks weight a draw
x_m ~ p(x_m | z_l) instead of its mean: the same estimand, with more variance.) Multiple
imputation by sampling importance resampling: draw L particles z_l, resample z by the
weights w_l, then draw x_m ~ p(x_m | z) (a draw, not the mean: proper multiple imputation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from imputebench.data.table import Table
from imputebench.models.base import ImputerModule, TrainingConfig
from imputebench.models.config_types import Count
from imputebench.models.registry import register_model
from imputebench.nn.elbo import clamp_logvar, gaussian_log_prob, iwae_bound, masked_log_lik
from imputebench.nn.heads import StudentTLikelihood, TabularLikelihood
from imputebench.nn.mlp import mlp
from imputebench.schema import FeatureSchema

LIKELIHOODS = ("student_t", "gaussian")


@dataclass(frozen=True)
class MIWAEConfig(TrainingConfig):
    """The paper's UCI setup: Adam 1e-3 and batches of 64 come from :class:`TrainingConfig`."""

    hidden_width: Count = 128  # "3 hidden layers of 128 hidden units" (encoder and decoder)
    hidden_layers: Count = 3  # with tanh activations
    latent_dim: Count | None = None  # d; None gives the paper's d = p - 1 (p = number of features)
    # Observation model of the numeric features: Student's t (the paper's UCI choice;
    # scale softplus + 1e-3, degrees of freedom softplus + 3) or a Gaussian with learnt variance.
    real_likelihood: Literal["student_t", "gaussian"] = "student_t"
    n_importance_train: Count = 20  # K, importance samples of the training bound
    # L, importance samples per row for the SNIS single imputation and the particles of SIR
    # multiple imputation; the paper uses 10,000 (1,000 here: the estimate barely moves beyond).
    n_importance_impute: Count = 1000
    # Importance samples of the SNIS imputation scored on the validation split every epoch
    # (model selection; ours, cheaper than n_importance_impute).
    n_importance_validation: Count = 100


@register_model("miwae")
class MIWAE(ImputerModule):
    """Importance-weighted autoencoder on the observed entries; SNIS single and SIR multiple imputation."""

    Config = MIWAEConfig
    uses_family_presets = False  # the authors' own learning rate and epochs, not the VSAE paper's

    def build(self, schema: FeatureSchema) -> None:
        cfg = self.cfg
        if cfg.real_likelihood not in LIKELIHOODS:
            raise ValueError(f"real_likelihood must be one of {LIKELIHOODS}, got {cfg.real_likelihood!r}")
        if min(cfg.n_importance_train, cfg.n_importance_impute, cfg.n_importance_validation) < 1:
            raise ValueError("the numbers of importance samples must be at least 1")
        if cfg.real_likelihood == "student_t":
            self.likelihood = StudentTLikelihood(schema, pixel_likelihood=cfg.pixel_likelihood)
        else:
            self.likelihood = TabularLikelihood(schema, learn_scale=True, pixel_likelihood=cfg.pixel_likelihood)
        self.latent_dim = cfg.latent_dim if cfg.latent_dim is not None else max(1, len(schema) - 1)
        hidden = [cfg.hidden_width] * cfg.hidden_layers
        # The paper's MLPs: tanh, no batch normalisation (which would also couple the K samples).
        self.encoder = mlp(schema.encoded_dim, hidden, 2 * self.latent_dim, batch_norm=False, activation=nn.Tanh)
        self.decoder = mlp(self.latent_dim, hidden, self.likelihood.param_dim, batch_norm=False, activation=nn.Tanh)

    # --- the model -----------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x_o) from the zero-filled row: mean and clamped log-variance, ``(b, d_z)`` each."""
        mu, logvar = self.encoder(x).chunk(2, -1)
        return mu, clamp_logvar(logvar)

    def particles(
        self, x: torch.Tensor, observed: torch.Tensor, n: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` draws z_l ~ q(z | x_o) per row, decoded: decoder parameters ``(n, b, P)`` and
        log importance weights log p(x_o | z_l) + log p(z_l) - log q(z_l | x_o) ``(n, b)``."""
        x = x * observed
        mu, logvar = self.encode(x)  # (b, d_z)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(n, *mu.shape, device=mu.device, dtype=mu.dtype)  # (n, b, d_z)
        params = self.decoder(z)  # (n, b, P)
        log_px = masked_log_lik(  # (n, b)
            self.likelihood.log_prob(params, x.expand(n, -1, -1)), self.layout.feature_mask(observed)
        )
        log_pz = gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)  # (n, b)
        log_qz = gaussian_log_prob(z, mu, logvar).sum(-1)  # (n, b)
        return params, log_px + log_pz - log_qz

    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative MIWAE bound L_K per row, averaged over the batch."""
        _, log_w = self.particles(x * observed, observed, self.cfg.n_importance_train)  # (K, b)
        bound = iwae_bound(log_w)  # (b,)
        return {"loss": -bound.mean()}

    # --- imputation ----------------------------------------------------------------------------
    def snis(self, x: torch.Tensor, observed: torch.Tensor, n: int) -> torch.Tensor:
        """SNIS estimate of E[x | x_o] in the encoded space ``(b, D)``: sum_l w_l E[x | z_l],
        locations (means, as nu > 3) and category probabilities, one-hot of the weighted mode."""
        params, log_w = self.particles(x, observed, n)  # (L, b, P), (L, b)
        weights = log_w.softmax(0)  # (L, b), sums to 1 over L
        estimate = torch.einsum("lb,lbd->bd", weights, self.likelihood.mean(params))  # (b, D)
        return self.layout.argmax_one_hot(estimate)

    def sir(self, x: torch.Tensor, observed: torch.Tensor, k: int, n: int) -> torch.Tensor:
        """``k`` multiple imputations ``(k, b, D)`` by sampling importance resampling: ``n`` particles
        z_l per row, ``k`` of them drawn with replacement by w_l, then x ~ p(x | z) for each."""
        params, log_w = self.particles(x, observed, n)  # (L, b, P), (L, b)
        picks = torch.multinomial(log_w.softmax(0).T, k, replacement=True)  # (b, k) particle indices
        chosen = params.gather(0, picks.T.unsqueeze(-1).expand(-1, -1, params.shape[-1]))  # (k, b, P)
        return self.likelihood.sample(chosen)

    def _by_rows(self, fn, x: torch.Tensor, observed: torch.Tensor, n: int) -> torch.Tensor:
        """``fn`` over row chunks of at most ``eval_rows // n`` rows (``n`` samples per row)."""
        x = x * observed
        chunk = max(1, self.cfg.eval_rows // n)
        return torch.cat([fn(xs, os) for xs, os in zip(x.split(chunk), observed.split(chunk))], dim=-2)

    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """One multiple-imputation draw by SIR with ``n_importance_impute`` particles. ``(b, D)``."""
        n = self.cfg.n_importance_impute
        return self._by_rows(lambda xs, os: self.sir(xs, os, 1, n)[0], x, observed, n)

    def _draw(self, x: torch.Tensor, observed: torch.Tensor, k: int) -> torch.Tensor:
        """``k`` SIR draws per row sharing one set of particles per row (standard SIR). ``(k, n, D)``."""
        n = self.cfg.n_importance_impute
        return self._by_rows(lambda xs, os: self.sir(xs, os, k, n), x, observed, n)

    @torch.no_grad()
    def impute(self, table: Table) -> torch.Tensor:
        """The single imputation: the SNIS estimate with ``n_importance_impute`` samples per row."""
        n = self.cfg.n_importance_impute
        return self._over_chunks(table, n, lambda x, observed: torch.where(observed, x, self.snis(x * observed, observed, n)), 0)

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        """Model selection on the SNIS imputation with ``n_importance_validation`` samples."""
        x, observed, truth = batch
        n = self.cfg.n_importance_validation
        imputed = self._by_rows(lambda xs, os: self.snis(xs, os, n), x, observed, n)
        self.selection.update(torch.where(observed, x, imputed), truth, observed)

    @torch.no_grad()
    def generate(self, n: int) -> tuple[torch.Tensor, None]:
        """``n`` rows from the prior, z ~ N(0, I): encoded data ``(n, D)`` (decoder mode), no mask."""
        self.eval()
        device = next(self.parameters()).device
        return self.likelihood.mode(self.decoder(torch.randn(n, self.latent_dim, device=device))), None
