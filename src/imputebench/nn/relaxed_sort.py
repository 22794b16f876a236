"""Relaxed sorting, Gumbel perturbation and relaxed top-k selection: mrVAE's r_ψ(n_A | z_A) and r_ψ(y_{j,A} | n_A, z_A).

Sutter & Vogt, "Multimodal Relational VAE", eqs. (1)-(2) and appendix E: the number of factors n_A of
a subspace is a categorical over {0, ..., |S_A|} relaxed with a straight-through Gumbel-softmax
(E.1, eqs. 33-35; Jang et al. 2016, Maddison et al. 2016, Bengio et al. 2013), and the n_A factors of
modality j assigned to S_A are the top n_A of Gumbel-perturbed weights w_{j,A} (E.2, eqs. 36-38),
selected through the rows of a NeuralSort relaxed permutation matrix (Grover et al., ICLR 2019,
"Stochastic Optimization of Sorting Networks via Continuous Relaxations", eq. 5). Adding Gumbel(0, 1)
noise to log-weights and sorting samples a Plackett-Luce ranking, so the top k of the perturbed
weights is a subset sample without replacement (Xie & Ermon 2019; Kool et al. 2020).

A count ``k`` is given in one of two forms, everywhere in this module:

* a Python int, or an integer tensor ``(...)`` broadcasting against the batch (0 <= k <= n, unchecked);
* a floating tensor ``(..., K)``, K <= n + 1: weights over the counts 0, ..., K - 1, e.g. the
  (straight-through or relaxed) one-hot output of :func:`gumbel_softmax_count`.

Weights w over counts act linearly: the selection is the w-weighted mixture of the exact-count
selections, Σ_c w_c · (sum of the first c rows of P̂) = Σ_i P_w(count > i) · P̂[i, :], so the gradient
reaches the count's logits through w and the scores through P̂.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def neural_sort(scores: torch.Tensor, tau: float | torch.Tensor, hard: bool = False) -> torch.Tensor:
    """NeuralSort's relaxed permutation matrix P̂ sorting ``scores`` ``(..., n)`` in decreasing order: ``(..., n, n)``.

    Grover et al. 2019, eq. 5 / Theorem 4: P̂[i, :] = softmax(((n + 1 - 2i) s - A_s 1) / τ), i = 1..n,
    with A_s[j, k] = |s_j - s_k|. Row i is a distribution over the items, peaked at the i-th largest
    score, so P̂ s is a relaxed sorted vector. What holds exactly, for every τ > 0: P̂ is *unimodal
    row-stochastic* (entries > 0, every row sums to 1, and for distinct scores the argmax of row i is
    the i-th largest item). Its columns sum to 1 only in the limit τ -> 0+, where P̂ tends to the exact
    sorting permutation matrix; at finite τ it is not doubly stochastic.

    ``tau``: a positive temperature, a number or a tensor broadcasting to ``(..., n, n)``.
    ``hard``: straight-through (Bengio et al. 2013): the forward value is the exact permutation matrix
    (row i one-hot at the i-th largest score, ties broken by position), the gradient that of P̂.
    """
    n = scores.shape[-1]
    spread = (scores.unsqueeze(-1) - scores.unsqueeze(-2)).abs().sum(-1)  # (..., n) A_s 1, from (..., n, n)
    rank = torch.arange(1, n + 1, dtype=scores.dtype, device=scores.device)  # (n,) i = 1..n
    scaling = n + 1 - 2 * rank  # (n,) n + 1 - 2i
    logits = scaling.unsqueeze(-1) * scores.unsqueeze(-2) - spread.unsqueeze(-2)  # (..., n, n) row i, item j
    relaxed = (logits / tau).softmax(-1)  # (..., n, n)
    if not hard:
        return relaxed
    order = scores.argsort(dim=-1, descending=True, stable=True)  # (..., n) item of rank i
    exact = F.one_hot(order, n).to(relaxed.dtype)  # (..., n, n)
    return exact + (relaxed - relaxed.detach())  # (..., n, n) forward exact, backward relaxed


def gumbel_perturb(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``logits`` + independent Gumbel(0, 1) noise, same shape (Gumbel-max / Plackett-Luce sampling).

    The argmax of the result is a draw from softmax(logits); its decreasing order is a draw of a
    Plackett-Luce ranking with weights exp(logits) (appendix E.2: "The weights w_{j,A} are
    reparameterized using Gumbel-noise and then fed to the neuralsort building block"). The noise is
    -log(-log U), U ~ U[0, 1) from ``generator`` (on ``logits``' device), U floored at the smallest
    normal number so that the noise stays finite.
    """
    uniform = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)  # (...)
    tiny = torch.finfo(logits.dtype).tiny
    return logits - torch.log(-torch.log(uniform.clamp_min(tiny)))  # (...)


def gumbel_softmax_count(
    logits: torch.Tensor,
    tau: float | torch.Tensor = 1.0,
    hard: bool = True,
    max_count: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A relaxed one-hot draw of a count n_A ∈ {0, ..., K - 1} from the categorical ``logits`` ``(..., K)``: ``(..., K)``.

    Appendix E.1: "The values c_A can be used as the input for a Gumbel-Softmax model ... The output
    will be a one-hot vector denoting the number of elements n_A per subspace" (Jang et al. 2016,
    eq. 2; with ``hard`` the straight-through estimator of Bengio et al. 2013: forward the one-hot
    argmax, backward the Gumbel-softmax). The same as ``torch.nn.functional.gumbel_softmax``, which
    takes no generator, plus:

    ``max_count`` ``(...)`` integer, >= 0: counts above it get probability 0, so subspaces of different
    capacities |S_A| (r_ψ(n_A | z_A) over {0, ..., |S_A|}, eq. 1) share one padded ``(..., K)`` block.
    """
    if max_count is not None:
        counts = torch.arange(logits.shape[-1], device=logits.device)  # (K,)
        logits = logits.masked_fill(counts > max_count.unsqueeze(-1), float("-inf"))  # (..., K)
    soft = (gumbel_perturb(logits, generator) / tau).softmax(-1)  # (..., K)
    if not hard:
        return soft
    exact = F.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft.dtype)  # (..., K)
    return exact + (soft - soft.detach())  # (..., K) forward one-hot, backward relaxed


def first_rows_weight(k: int | torch.Tensor, n: int, dtype: torch.dtype | None = None,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """How much of each of the n rows of a permutation matrix the top-k keeps: P(count > i), i = 0..n-1, ``(..., n)``.

    For an integer count k: 1 for the first k rows, 0 after. For weights w ``(..., K)`` over the counts
    0, ..., K - 1 (K <= n + 1): Σ_{c > i} w_c, the tail sums of w, so Σ_i weight_i = Σ_c c · w_c.
    """
    if isinstance(k, int):
        return (torch.arange(n, device=device) < k).to(dtype or torch.get_default_dtype())  # (n,)
    rows = torch.arange(n, device=k.device)  # (n,)
    if not k.is_floating_point():
        return (rows < k.unsqueeze(-1)).to(dtype or torch.get_default_dtype())  # (..., n)
    if k.dim() == 0 or k.shape[-1] > n + 1:
        raise ValueError(f"count weights must be (..., K) over the counts 0..K-1 with K <= n + 1 = {n + 1}, "
                         f"got shape {tuple(k.shape)}")
    tail = k.flip(-1).cumsum(-1).flip(-1)  # (..., K) tail[c] = Σ_{c' >= c} w_c'
    return F.pad(tail[..., 1:], (0, n + 1 - k.shape[-1])).to(dtype or k.dtype)  # (..., n) tail[i + 1]


def top_k_rows(permutation: torch.Tensor, k: int | torch.Tensor) -> torch.Tensor:
    """The first k rows of a (relaxed) permutation matrix ``(..., n, n)``, the others zeroed: ``(..., n, n)``.

    Appendix E.2's y_{j,A}: "a matrix where the first n_A rows are one-hot vectors with element to be
    sampled being one". Row i times z_j is the factor of rank i, so ``top_k_rows(P) @ z`` lists the
    selected factors in rank order (zero-padded), aligned across the modalities of a subspace.
    """
    keep = first_rows_weight(k, permutation.shape[-1], permutation.dtype, permutation.device)  # (..., n)
    return permutation * keep.unsqueeze(-1)  # (..., n, n)


def relaxed_top_k(scores: torch.Tensor, k: int | torch.Tensor, tau: float | torch.Tensor,
                  hard: bool = False) -> torch.Tensor:
    """The relaxed k-hot indicator of the k largest ``scores`` ``(..., n)``: ``(..., n)``.

    The sum of the first k rows of NeuralSort's P̂ (:func:`neural_sort`; appendix E.2, "Using n_A it is
    possible to use the top-n_A elements in a fully-differentiable pipeline"): selection =
    Σ_i P(count > i) · P̂[i, :], which for count weights w is Σ_c w_c · (sum of the first c rows of P̂).
    Since P̂ is row-stochastic the selection sums to k (to Σ_c c · w_c for weights) at every τ; an entry
    may exceed 1 by as much as a column sum of P̂ does, and tends to the exact indicator (the set of
    ``torch.topk``) as τ -> 0. With ``hard`` and an integer or one-hot count the forward value is the
    exact k-hot indicator and gradients are those of the relaxation.
    """
    permutation = neural_sort(scores, tau, hard)  # (..., n, n)
    keep = first_rows_weight(k, scores.shape[-1], permutation.dtype, scores.device)  # (..., n)
    return (keep.unsqueeze(-2) @ permutation).squeeze(-2)  # (..., n) from (..., 1, n)


def relaxed_subset_sample(log_weights: torch.Tensor, k: int | torch.Tensor, tau: float | torch.Tensor,
                          hard: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """A relaxed k-hot sample of k of n items without replacement, weights exp(``log_weights``) ``(..., n)``: ``(..., n)``.

    Appendix E.2's pipeline: Gumbel-perturb w_{j,A} (:func:`gumbel_perturb`), then take the relaxed
    top k (:func:`relaxed_top_k`); at τ -> 0 the selected set is a Plackett-Luce top-k draw
    (Xie & Ermon 2019, section 3).
    """
    return relaxed_top_k(gumbel_perturb(log_weights, generator), k, tau, hard)  # (..., n)
