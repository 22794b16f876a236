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


def product_of_experts(
    mu: torch.Tensor, logvar: torch.Tensor, present: torch.Tensor, prior_power: float | torch.Tensor = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gaussian q(z) ∝ N(z; 0, I)^a prod_{e present} N(z; mu_e, diag exp(logvar_e)), in precision form.

    Wu & Goodman 2018 (MVAE), section 2.1 and appendix B: a product of Gaussian experts is
    Gaussian with precision T = sum_e T_e and mean (sum_e T_e mu_e) / T, T_e = 1 / V_e. The
    prior expert N(0, I) adds ``a`` = ``prior_power`` to T and nothing to the numerator:
    a = 1 is the MVAE's p(z) prod_i q~(z | x_i) (eq. 4); a = 1 - n for n present experts is
    MVAE-Q's product and quotient prod_i q(z | x_i) / p(z)^(n - 1) (eq. 3, appendix C), which
    is a proper Gaussian only where T > 0. With no expert present and a = 1 the result is the
    prior N(0, I).

    ``mu``, ``logvar``: ``(..., E, k)`` experts; ``present``: ``(..., E)`` bool, False drops an
    expert (weight 0, so its parameters must be finite); ``prior_power``: a number or a tensor
    broadcasting to ``(...)``. Leading dimensions broadcast (e.g. experts ``(b, E, k)`` against
    ``(T, b, E)`` subsets). Returns ``mu``, ``logvar`` ``(..., k)``.

    Expert log-variances are clamped (:func:`clamp_logvar`) so every precision is finite, and
    the total precision is floored at exp(-10), the clamp's widest variance, so the result
    stays finite for vanishing variances and for a quotient whose precision is not positive;
    the returned log-variance is clamped like every other.
    """
    precision = torch.exp(-clamp_logvar(logvar))  # (..., E, k) T_e, at most e^12
    weights = present.to(precision.dtype)  # (..., E): a dropped expert has weight 0
    # einsum, not (weights (..., 1, E) @ precision): matmul broadcasts by materialising experts
    # (b, E, k) once per subset, (T, b, E, k); einsum folds the subsets into the rows of one
    # (b, T, E) @ (b, E, k) product, 44x faster on MVAE's phishing step. Forward sums matched bit for bit
    # there; gradients differ in float order, so training trajectories are not bit-identical.
    total = torch.einsum("...e,...ek->...k", weights, precision)  # (..., k) sum_e T_e
    weighted_mean = torch.einsum("...e,...ek->...k", weights, precision * mu)  # (..., k) sum_e T_e mu_e; prior mean 0
    if isinstance(prior_power, torch.Tensor):
        prior_power = prior_power.unsqueeze(-1)  # (..., 1)
    total = (total + prior_power).clamp_min(math.exp(-LOGVAR_RANGE[1]))  # (..., k) a proper precision
    return weighted_mean / total, clamp_logvar(-torch.log(total))
