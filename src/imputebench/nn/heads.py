"""Likelihood heads built from the feature schema.

A decoder emits a flat parameter vector ``(..., P)``; a head turns it into
per-feature log-likelihoods ``(..., d)`` and into point predictions in the
encoded space ``(..., D)``. Numeric kinds (real, positive, count) get a
Gaussian; one-hot kinds (categorical, ordinal) a softmax; masks a Bernoulli
(:func:`bernoulli_log_prob`); pixels (intensities in [0, 1]) a Bernoulli likelihood
of their intensity, the usual cross-entropy of image VAEs (MVAE's MNIST), or a
Gaussian of fixed variance (the squared error of the VSAE paper's baselines). Later models with richer
likelihoods (HI-VAE, MIWAE) add heads here rather than branching in model code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from imputebench.nn.elbo import clamp_logvar, gaussian_log_prob
from imputebench.nn.layout import SchemaLayout, masked_log_softmax, take_columns
from imputebench.schema import FeatureSchema


def bernoulli_log_prob(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(target; sigmoid(logits)) elementwise, stable in the logits."""
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none")


PIXEL_LIKELIHOODS = ("bernoulli", "gaussian")


class TabularLikelihood(nn.Module):
    """Gaussian per numeric feature, categorical (softmax) per one-hot feature, and per pixel
    a Bernoulli (``pixel_likelihood="bernoulli"``) or fixed-variance Gaussian likelihood.

    Parameters: the first ``D`` entries are the Gaussian means (numeric columns),
    the logits (one-hot columns) and the pixels' logits (Bernoulli) or means (Gaussian)
    in encoded-column order; with ``learn_scale`` one log-variance per numeric feature
    follows. Without it the variance is fixed (``variance``, on standardised data): 1 gives
    -(x - mu)^2 / 2 + const (VAEAC's sigma = 1), 1/2 gives -(x - mu)^2 + const,
    the negated squared-error reconstruction loss of the VSAE paper. Gaussian pixels take
    the same fixed variance. A pixel's point prediction and its draw are both its expected
    intensity: the Bernoulli scores intensities in [0, 1], it does not binarise images.
    """

    def __init__(
        self, schema: FeatureSchema, learn_scale: bool = False, variance: float = 1.0, pixel_likelihood: str = "bernoulli"
    ) -> None:
        super().__init__()
        if variance <= 0:
            raise ValueError(f"the Gaussian variance must be positive, got {variance}")
        if pixel_likelihood not in PIXEL_LIKELIHOODS:
            raise ValueError(f"pixel_likelihood must be one of {PIXEL_LIKELIHOODS}, got {pixel_likelihood!r}")
        self.layout = SchemaLayout(schema)
        self.bernoulli_pixels = pixel_likelihood == "bernoulli"
        self.learn_scale, self.fixed_logvar = learn_scale, math.log(variance)
        self.encoded_dim = schema.encoded_dim
        self.n_numeric = int(self.layout.numeric_cols.numel())

    @property
    def param_dim(self) -> int:
        return self.encoded_dim + (self.n_numeric if self.learn_scale else 0)

    def _numeric(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = take_columns(params, self.layout.numeric_cols)  # (..., N)
        if self.learn_scale:
            logvar = clamp_logvar(params[..., self.encoded_dim :])
        else:
            logvar = torch.full_like(mu, self.fixed_logvar)
        return mu, logvar

    def _log_softmax_blocks(self, params: torch.Tensor) -> torch.Tensor:
        logits = take_columns(params[..., : self.encoded_dim], self.layout.block_index)  # (..., C, K_max)
        return masked_log_softmax(logits, self.layout.block_valid)  # masks the padding itself

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-feature log-likelihood of encoded targets ``x`` ``(..., D)`` -> ``(..., d)``."""
        out = x.new_zeros(*x.shape[:-1], self.layout.n_features)
        if self.layout.has_numeric:
            mu, logvar = self._numeric(params)
            target = take_columns(x, self.layout.numeric_cols)
            out = out.index_copy(-1, self.layout.numeric_features, gaussian_log_prob(target, mu, logvar))
        if self.layout.has_blocks:
            log_p = self._log_softmax_blocks(params)  # (..., C, K_max)
            target = self.layout.blocks(x)  # (..., C, K_max) one-hot, 0 on padding
            out = out.index_copy(-1, self.layout.block_features, (target * log_p).sum(-1))
        return self._pixel_log_prob(params, x, out)

    def _pixel_log_prob(self, params: torch.Tensor, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out`` ``(..., d)`` with the pixels' log-likelihoods written in."""
        if not self.layout.has_pixels:
            return out
        raw = take_columns(params, self.layout.pixel_cols)  # (..., P) logits or means
        target = take_columns(x, self.layout.pixel_cols)  # (..., P) intensities in [0, 1]
        if self.bernoulli_pixels:
            log_p = bernoulli_log_prob(raw, target)
        else:
            log_p = gaussian_log_prob(target, raw, torch.full_like(raw, self.fixed_logvar))
        return out.index_copy(-1, self.layout.pixel_features, log_p)

    def _pixel_intensities(self, params: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out`` ``(..., D)`` with each pixel's expected intensity (sigmoid of a Bernoulli logit)."""
        if not (self.layout.has_pixels and self.bernoulli_pixels):
            return out
        logits = take_columns(params, self.layout.pixel_cols)  # (..., P)
        return out.index_copy(-1, self.layout.pixel_cols, torch.sigmoid(logits))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """Expected value in the encoded space: Gaussian means, category probabilities, pixel
        intensities. ``(..., D)``."""
        out = params[..., : self.encoded_dim]
        if self.layout.has_blocks:
            out = self.layout.scatter_blocks(self._log_softmax_blocks(params).exp(), out)
        return self._pixel_intensities(params, out)

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        """Most likely value: Gaussian means, one-hot of the most likely category, pixel
        intensities. ``(..., D)``."""
        return self._pixel_intensities(params, self.layout.argmax_one_hot(params[..., : self.encoded_dim]))

    def _sample_blocks(self, params: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out`` with each one-hot block replaced by a category drawn by the Gumbel-max trick."""
        if not self.layout.has_blocks:
            return out
        log_p = self._log_softmax_blocks(params)  # (..., C, K_max)
        gumbel = -torch.log((-torch.log(torch.rand_like(log_p).clamp_min(1e-20))).clamp_min(1e-20))
        scores = (log_p + gumbel).masked_fill(~self.layout.block_valid, float("-inf"))
        return self.layout.scatter_blocks(self.layout.one_hot_argmax(scores), out)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        """One draw per row in the encoded space ``(..., D)`` (categories by the Gumbel-max trick)."""
        out = params[..., : self.encoded_dim]
        if self.layout.has_numeric:
            mu, logvar = self._numeric(params)
            draw = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            out = out.index_copy(-1, self.layout.numeric_cols, draw)
        return self._pixel_intensities(params, self._sample_blocks(params, out))


class StudentTLikelihood(TabularLikelihood):
    """Student's t per numeric feature, categorical (softmax) per one-hot feature.

    MIWAE's observation model (Mattei & Frellsen 2019; parametrisation of the
    authors' notebooks): location mu, scale sigma = softplus(.) + ``min_scale`` and degrees of
    freedom nu = softplus(.) + ``min_df``. The floor on sigma prevents the likelihood
    singularities of Mattei & Frellsen (NeurIPS 2018); nu > 3 keeps the first three
    moments finite, so the location is also the mean. Parameters: the first ``D``
    entries as in :class:`TabularLikelihood` (locations and logits), then one raw
    scale and one raw degrees-of-freedom per numeric feature.
    """

    def __init__(
        self, schema: FeatureSchema, min_scale: float = 1e-3, min_df: float = 3.0, pixel_likelihood: str = "bernoulli"
    ) -> None:
        super().__init__(schema, pixel_likelihood=pixel_likelihood)
        if min_scale <= 0 or min_df <= 0:
            raise ValueError(f"min_scale and min_df must be positive, got {min_scale}, {min_df}")
        self.min_scale, self.min_df = min_scale, min_df

    @property
    def param_dim(self) -> int:
        return self.encoded_dim + 2 * self.n_numeric

    def student_params(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Location, scale and degrees of freedom of the numeric features, ``(..., N)`` each."""
        loc = take_columns(params, self.layout.numeric_cols)
        raw_scale, raw_df = params[..., self.encoded_dim :].chunk(2, -1)
        return loc, F.softplus(raw_scale) + self.min_scale, F.softplus(raw_df) + self.min_df

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-feature log-likelihood of encoded targets ``x`` ``(..., D)`` -> ``(..., d)``."""
        out = x.new_zeros(*x.shape[:-1], self.layout.n_features)
        if self.layout.has_numeric:
            loc, scale, df = self.student_params(params)
            t = (take_columns(x, self.layout.numeric_cols) - loc) / scale
            log_p = (
                torch.lgamma(0.5 * (df + 1.0)) - torch.lgamma(0.5 * df)
                - 0.5 * torch.log(math.pi * df) - torch.log(scale)
                - 0.5 * (df + 1.0) * torch.log1p(t.pow(2) / df)
            )  # (..., N)
            out = out.index_copy(-1, self.layout.numeric_features, log_p)
        if self.layout.has_blocks:
            log_p = self._log_softmax_blocks(params)  # (..., C, K_max)
            out = out.index_copy(-1, self.layout.block_features, (self.layout.blocks(x) * log_p).sum(-1))
        return self._pixel_log_prob(params, x, out)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        """One draw per row in the encoded space ``(..., D)`` (categories by the Gumbel-max trick)."""
        out = params[..., : self.encoded_dim]
        if self.layout.has_numeric:
            loc, scale, df = self.student_params(params)
            draw = torch.distributions.StudentT(df, loc, scale).sample()  # (..., N)
            out = out.index_copy(-1, self.layout.numeric_cols, draw)
        return self._pixel_intensities(params, self._sample_blocks(params, out))
