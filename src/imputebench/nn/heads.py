"""Likelihood heads built from the feature schema.

A decoder emits a flat parameter vector ``(..., P)``; a head turns it into
per-feature log-likelihoods ``(..., d)`` and into point predictions in the
encoded space ``(..., D)``. Numeric kinds (real, positive, count) get a
Gaussian; one-hot kinds (categorical, ordinal) a softmax; masks and binary
pixels a Bernoulli (:func:`bernoulli_log_prob`). Later models with richer
likelihoods (HI-VAE, MIWAE) add heads here rather than branching in model code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from imputebench.nn.elbo import clamp_logvar, gaussian_log_prob
from imputebench.nn.layout import SchemaLayout
from imputebench.schema import FeatureSchema


def bernoulli_log_prob(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(target; sigmoid(logits)) elementwise, stable in the logits."""
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none")


class TabularLikelihood(nn.Module):
    """Gaussian per numeric feature, categorical (softmax) per one-hot feature.

    Parameters: the first ``D`` entries are the Gaussian means (numeric columns)
    and the logits (one-hot columns) in encoded-column order; with
    ``learn_scale`` one log-variance per numeric feature follows. Without it the
    variance is fixed (``variance``, on standardised data): 1 gives
    -(x - mu)^2 / 2 + const (VAEAC's sigma = 1), 1/2 gives -(x - mu)^2 + const,
    the negated squared-error reconstruction loss of the VSAE paper.
    """

    def __init__(self, schema: FeatureSchema, learn_scale: bool = False, variance: float = 1.0) -> None:
        super().__init__()
        if variance <= 0:
            raise ValueError(f"the Gaussian variance must be positive, got {variance}")
        self.layout = SchemaLayout(schema)
        self.learn_scale, self.fixed_logvar = learn_scale, math.log(variance)
        self.encoded_dim = schema.encoded_dim
        self.n_numeric = int(self.layout.numeric_cols.numel())

    @property
    def param_dim(self) -> int:
        return self.encoded_dim + (self.n_numeric if self.learn_scale else 0)

    def _numeric(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = params[..., self.layout.numeric_cols]  # (..., N)
        if self.learn_scale:
            logvar = clamp_logvar(params[..., self.encoded_dim :])
        else:
            logvar = torch.full_like(mu, self.fixed_logvar)
        return mu, logvar

    def _log_softmax_blocks(self, params: torch.Tensor) -> torch.Tensor:
        logits = self.layout.blocks(params[..., : self.encoded_dim], pad=float("-inf"))  # (..., C, K_max)
        return logits.log_softmax(-1).masked_fill(~self.layout.block_valid, 0.0)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-feature log-likelihood of encoded targets ``x`` ``(..., D)`` -> ``(..., d)``."""
        out = x.new_zeros(*x.shape[:-1], self.layout.n_features)
        if self.layout.has_numeric:
            mu, logvar = self._numeric(params)
            target = x[..., self.layout.numeric_cols]
            out = out.index_copy(-1, self.layout.numeric_features, gaussian_log_prob(target, mu, logvar))
        if self.layout.has_blocks:
            log_p = self._log_softmax_blocks(params)  # (..., C, K_max)
            target = self.layout.blocks(x)  # (..., C, K_max) one-hot, 0 on padding
            out = out.index_copy(-1, self.layout.block_features, (target * log_p).sum(-1))
        return out

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """Expected value in the encoded space: Gaussian means, category probabilities. ``(..., D)``."""
        out = params[..., : self.encoded_dim]
        if self.layout.has_blocks:
            out = self.layout.scatter_blocks(self._log_softmax_blocks(params).exp(), out)
        return out

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        """Most likely value: Gaussian means, one-hot of the most likely category. ``(..., D)``."""
        return self.layout.argmax_one_hot(params[..., : self.encoded_dim])

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        """One draw per row in the encoded space ``(..., D)`` (categories by the Gumbel-max trick)."""
        out = params[..., : self.encoded_dim]
        if self.layout.has_numeric:
            mu, logvar = self._numeric(params)
            draw = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            out = out.index_copy(-1, self.layout.numeric_cols, draw)
        if self.layout.has_blocks:
            log_p = self._log_softmax_blocks(params)  # (..., C, K_max)
            gumbel = -torch.log((-torch.log(torch.rand_like(log_p).clamp_min(1e-20))).clamp_min(1e-20))
            scores = (log_p + gumbel).masked_fill(~self.layout.block_valid, float("-inf"))
            out = self.layout.scatter_blocks(self.layout.one_hot_argmax(scores), out)
        return out
