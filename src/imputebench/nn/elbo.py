"""ELBO building blocks as small pure functions, shared by import.

Conventions: ``mu``/``logvar`` are ``(..., k)`` diagonal-Gaussian parameters;
log-likelihoods are per feature ``(..., d)``; a returned bound is per row.
"""

from __future__ import annotations

import math

import torch

#: log-variances are clamped to this range before exponentiation; beyond it a
#: diagonal Gaussian is numerically a point or a flat line and training diverges.
LOGVAR_RANGE = (-12.0, 10.0)
_LOG_2PI = math.log(2.0 * math.pi)


def clamp_logvar(logvar: torch.Tensor) -> torch.Tensor:
    return logvar.clamp(*LOGVAR_RANGE)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2014, eq. 10). Same shape as ``mu``."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per dimension, analytic (VAE appendix B). ``(..., k)``."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_kl_between(
    mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
) -> torch.Tensor:
    """KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p))) per dimension. ``(..., k)``."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0)


def gaussian_log_prob(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mu, diag exp(logvar)) per dimension. ``(..., k)``."""
    return -0.5 * (_LOG_2PI + logvar + (x - mu).pow(2) / logvar.exp())


def masked_log_lik(log_prob: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Sum of per-feature log-likelihoods over the entries where ``observed`` is True.

    ``log_prob`` and ``observed`` are ``(..., d)``; returns ``(...)``. Implemented
    as a product, not ``torch.where``, so a non-finite term of a hidden entry
    cannot reach the gradient through the unselected branch (pytorch #68425)
    as long as the term itself is finite; heads never evaluate hidden targets
    other than the zero fill.
    """
    return (log_prob * observed.to(log_prob.dtype)).sum(-1)


def iwae_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k w_k from ``(K, ...)`` log-weights (Burda et al. 2016, eq. 8). Returns ``(...)``."""
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])
