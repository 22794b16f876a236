"""Multivariate hypergeometric log-pmfs, central and Fisher's noncentral: mrVAE's distributions over subspace sizes.

Sutter & Vogt, "Multimodal Relational VAE", Definition 1: for modality j the sizes n_j = {n_A | A ∋ j}
of its subspaces have a central multivariate hypergeometric prior q_φ(n_j) and a Fisher noncentral
one with weights ω_j = {ω_{j,A}} as posterior; n = D_j factors are drawn from N = Σ_{A ∋ j} |S_A|
"elements", |S_A| of them of colour A. With K colours of capacities m_k (here ``capacities``), counts
x_k and n = Σ_k x_k draws (``total_draws``):

* central:    P(x) = Π_k C(m_k, x_k) / C(N, n);
* noncentral: P(x) = Π_k C(m_k, x_k) ω_k^{x_k} / P_0,  P_0 = Σ_{y in support} Π_k C(m_k, y_k) ω_k^{y_k}
  (Fog 2008, "Sampling methods for Wallenius' and Fisher's noncentral hypergeometric distributions");

the support being the integer vectors with 0 <= x_k <= m_k and Σ_k x_k = n; outside it the log-pmf is
-inf. Binomials are in log-gamma form, log C(a, b) = lgamma(a + 1) - lgamma(b + 1) - lgamma(a - b + 1).
Counts may be integer or integer-valued floating tensors (a non-integer count is outside the support);
capacities are nonnegative integers (unchecked).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def log_binomial(n: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """log C(n, k) for 0 <= k <= n (broadcasting, floating), in log-gamma form; undefined outside that range."""
    return torch.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)


def _float_dtype(counts: torch.Tensor) -> torch.dtype:
    return counts.dtype if counts.is_floating_point() else torch.get_default_dtype()


def _support(counts: torch.Tensor, capacities: torch.Tensor, total_draws: torch.Tensor) -> torch.Tensor:
    """Whether each count vector ``(..., K)`` lies in the support: ``(...)`` bool."""
    per_colour = (counts >= 0) & (counts <= capacities) & (counts == counts.round())  # (..., K)
    return per_colour.all(-1) & (counts.sum(-1) == total_draws)  # (...)


def multivariate_hypergeometric_log_prob(
    counts: torch.Tensor, capacities: torch.Tensor | Sequence[int], total_draws: int | torch.Tensor
) -> torch.Tensor:
    """log P(counts) of the central multivariate hypergeometric (Definition 1's prior q_φ(n_j)): ``(...)``.

    ``counts`` ``(..., K)``; ``capacities`` ``(K,)`` or broadcasting to ``(..., K)``, m_k = |S_A|;
    ``total_draws`` an int or ``(...)``, n = D_j. log P = Σ_k log C(m_k, x_k) - log C(N, n) on the
    support, -inf elsewhere (including n > N).
    """
    dtype = _float_dtype(counts)
    x = counts.to(dtype)  # (..., K)
    m = torch.as_tensor(capacities, dtype=dtype, device=counts.device)  # (..., K)
    n = torch.as_tensor(total_draws, dtype=dtype, device=counts.device)  # (...)
    big_n = m.sum(-1)  # (...) N
    inside = _support(x, m, n)  # (...)
    safe_x = torch.where(inside.unsqueeze(-1), x, torch.zeros_like(x))  # (..., K) in [0, m] everywhere
    safe_n = torch.minimum(n.clamp_min(0), big_n)  # (...) in [0, N]
    log_p = log_binomial(m, safe_x).sum(-1) - log_binomial(big_n, safe_n)  # (...)
    return torch.where(inside, log_p, float("-inf"))  # (...)


def hypergeometric_marginal_log_prob(
    capacities: torch.Tensor | Sequence[int], total_draws: int | torch.Tensor, max_count: int | None = None
) -> torch.Tensor:
    """log P(x_k = c) under the central multivariate hypergeometric, every colour k and c = 0..C: ``(..., K, C + 1)``.

    Each coordinate of a multivariate hypergeometric is univariate hypergeometric:
    P(x_k = c) = C(m_k, c) C(N - m_k, n - c) / C(N, n), -inf where c > m_k or n - c is not in
    [0, N - m_k]. ``capacities`` ``(..., K)``, ``total_draws`` an int or ``(...)``; C = ``max_count``,
    by default the largest capacity. A per-subspace view of Definition 1's prior, e.g. to compare it
    with the independent categoricals r_ψ(n_A | z_A) of eq. (1).
    """
    m = torch.as_tensor(capacities)  # (..., K)
    m = m.to(m.dtype if m.is_floating_point() else torch.get_default_dtype())  # (..., K) floating
    n = torch.as_tensor(total_draws, dtype=m.dtype, device=m.device).unsqueeze(-1).unsqueeze(-1)  # (..., 1, 1)
    top = int(m.max()) if max_count is None else max_count
    c = torch.arange(top + 1, dtype=m.dtype, device=m.device)  # (C + 1,)
    big_n = m.sum(-1, keepdim=True).unsqueeze(-1)  # (..., 1, 1) N
    mk = m.unsqueeze(-1)  # (..., K, 1)
    rest = n - c  # (..., 1, C + 1) draws from the other colours
    inside = (c <= mk) & (rest >= 0) & (rest <= big_n - mk)  # (..., K, C + 1)
    safe_c = torch.where(inside, c, torch.zeros_like(c))  # (..., K, C + 1)
    safe_rest = torch.where(inside, rest, torch.zeros_like(rest))  # (..., K, C + 1)
    safe_n = torch.minimum(n.clamp_min(0), big_n)  # (..., 1, 1)
    log_p = log_binomial(mk, safe_c) + log_binomial(big_n - mk, safe_rest) - log_binomial(big_n, safe_n)  # (..., K, C + 1)
    return torch.where(inside, log_p, float("-inf"))  # (..., K, C + 1)


def fisher_log_normaliser(
    log_weights: torch.Tensor, capacities: torch.Tensor | Sequence[int], total_draws: int
) -> torch.Tensor:
    """log P_0 of Fisher's noncentral multivariate hypergeometric, exactly: ``(...)`` from ``log_weights`` ``(..., K)``.

    P_0 = Σ_{y in support} Π_k C(m_k, y_k) ω_k^{y_k} is the coefficient of t^n in the generating
    polynomial Π_k (1 + ω_k t)^{m_k}, expanded one colour at a time in log space (a log-sum-exp
    convolution), truncated at degree n: O(K · n · max_k m_k) work with a loop over the K colours
    only, however large the support (which grows like n^(K-1)), and differentiable in ``log_weights``.

    ``log_weights`` = log ω, finite; ``capacities`` ``(K,)`` shared by the batch; ``total_draws`` n an int.
    Returns -inf when n > N (empty support).
    """
    caps = [int(m) for m in (capacities.tolist() if torch.is_tensor(capacities) else capacities)]
    if len(caps) != log_weights.shape[-1]:
        raise ValueError(f"{len(caps)} capacities for {log_weights.shape[-1]} weights")
    if total_draws < 0 or total_draws > sum(caps):
        return torch.full(log_weights.shape[:-1], float("-inf"), dtype=log_weights.dtype, device=log_weights.device)
    device = log_weights.device
    poly = log_weights.new_zeros(*log_weights.shape[:-1], 1)  # (..., 1) log-coefficients of the empty product, 1
    for colour, m_k in enumerate(caps):
        y = torch.arange(m_k + 1, dtype=log_weights.dtype, device=device)  # (m_k + 1,)
        log_choose = log_binomial(torch.full_like(y, m_k), y)  # (m_k + 1,) log C(m_k, y)
        factor = log_choose + y * log_weights[..., colour : colour + 1]  # (..., m_k + 1) log-coefficients of (1 + ω_k t)^{m_k}
        length = min(poly.shape[-1] - 1 + m_k, total_draws) + 1  # degree kept, plus one
        source = torch.arange(length, device=device).unsqueeze(-1) - torch.arange(m_k + 1, device=device)  # (length, m_k + 1) s - y
        valid = (source >= 0) & (source < poly.shape[-1])  # (length, m_k + 1) every row has one valid term
        terms = poly[..., source.clamp(0, poly.shape[-1] - 1)] + factor.unsqueeze(-2)  # (..., length, m_k + 1)
        poly = terms.masked_fill(~valid, float("-inf")).logsumexp(-1)  # (..., length)
    return poly[..., total_draws]  # (...)


def fisher_multivariate_hypergeometric_log_prob(
    counts: torch.Tensor, log_weights: torch.Tensor, capacities: torch.Tensor | Sequence[int], total_draws: int
) -> torch.Tensor:
    """log P(counts) of Fisher's noncentral multivariate hypergeometric (Definition 1's posterior q_φ(n_j | z)): ``(...)``.

    log P = Σ_k [log C(m_k, x_k) + x_k log ω_k] - log P_0 on the support, -inf elsewhere; P_0 from
    :func:`fisher_log_normaliser` (exact). ``counts`` ``(..., K)``; ``log_weights`` log ω ``(..., K)``,
    finite, broadcasting against ``counts``; ``capacities`` ``(K,)``; ``total_draws`` n an int. Equal
    weights give the central distribution (:func:`multivariate_hypergeometric_log_prob`).
    """
    dtype = log_weights.dtype
    x = counts.to(dtype)  # (..., K)
    m = torch.as_tensor(capacities, dtype=dtype, device=counts.device)  # (K,)
    inside = _support(x, m, torch.tensor(float(total_draws), dtype=dtype, device=counts.device))  # (...)
    safe_x = torch.where(inside.unsqueeze(-1), x, torch.zeros_like(x))  # (..., K) in [0, m] everywhere
    unnormalised = (log_binomial(m, safe_x) + safe_x * log_weights).sum(-1)  # (...)
    log_p = unnormalised - fisher_log_normaliser(log_weights, capacities, total_draws)  # (...)
    return torch.where(inside, log_p, float("-inf"))  # (...)
