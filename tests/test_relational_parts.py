"""mrVAE's building blocks against independent references: itertools, torch.argsort/topk, SciPy, brute force.

Modality subsets (nn/subsets.py) against ``itertools.combinations``; NeuralSort, relaxed top-k and the
Gumbel draws (nn/relaxed_sort.py) against exact sorting, ``torch.topk`` and the Plackett-Luce and
categorical distributions they sample; the multivariate hypergeometric log-pmfs (nn/hypergeometric.py)
against ``scipy.stats`` and against sums over the enumerated support. Every random draw comes from a
seeded ``torch.Generator``, so each statistical check is one fixed computation.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy.stats import hypergeom, multivariate_hypergeom

from imputebench.nn.hypergeometric import (
    fisher_log_normaliser,
    fisher_multivariate_hypergeometric_log_prob,
    hypergeometric_marginal_log_prob,
    multivariate_hypergeometric_log_prob,
)
from imputebench.nn.relaxed_sort import (
    first_rows_weight,
    gumbel_perturb,
    gumbel_softmax_count,
    neural_sort,
    relaxed_subset_sample,
    relaxed_top_k,
    top_k_rows,
)
from imputebench.nn.subsets import (
    available_subsets,
    containing_index,
    nonempty_subsets,
    subset_indices_containing,
    subspace_capacity,
)

# --- subsets ------------------------------------------------------------------------------------


def combinations_in_order(m: int) -> list[tuple[int, ...]]:
    return [c for r in range(1, m + 1) for c in itertools.combinations(range(m), r)]


@pytest.mark.parametrize("m", range(1, 7))
def test_nonempty_subsets_are_the_combinations_by_size_then_lexicographic(m):
    subsets = nonempty_subsets(m)
    assert subsets.dtype == torch.bool and subsets.shape == (2**m - 1, m)
    rows = [tuple(row.nonzero().squeeze(-1).tolist()) for row in subsets]
    assert rows == combinations_in_order(m)  # the documented order, hence distinct and nonempty
    assert len(set(rows)) == 2**m - 1 and all(rows)
    assert subsets.sum(0).tolist() == [2 ** (m - 1)] * m  # each modality in exactly 2^(M-1) subsets


@pytest.mark.parametrize("m", range(1, 6))
def test_subsets_containing_each_modality(m):
    subsets = nonempty_subsets(m)
    index = containing_index(subsets)
    assert index.shape == (m, 2 ** (m - 1))
    for j in range(m):
        expected = [i for i, combo in enumerate(combinations_in_order(m)) if j in combo]
        assert index[j].tolist() == expected
        assert subset_indices_containing(subsets, j).tolist() == expected
    if m > 1:
        with pytest.raises(ValueError, match="different numbers"):
            containing_index(subsets[1:])  # drops {0}: modality 0 now lies in fewer subsets
    with pytest.raises(ValueError, match="at least one"):
        nonempty_subsets(0)


def test_available_subsets_and_capacities_against_brute_force():
    gen = torch.Generator().manual_seed(0)
    m = 4
    subsets = nonempty_subsets(m)
    combos = combinations_in_order(m)
    available = torch.rand(2, 25, m, generator=gen) < 0.6  # (2, 25, M)
    got = available_subsets(available, subsets)
    assert got.shape == (2, 25, 2**m - 1)
    for a, row in zip(available.reshape(-1, m).tolist(), got.reshape(-1, 2**m - 1).tolist()):
        assert row == [all(a[j] for j in combo) for combo in combos]
    dims = torch.randint(1, 9, (3, m), generator=gen)  # (3, M) D_j per row
    capacity = subspace_capacity(dims, subsets)
    assert capacity.shape == (3, 2**m - 1)
    for d, row in zip(dims.tolist(), capacity.tolist()):
        assert row == [min(d[j] for j in combo) for combo in combos]


# --- NeuralSort ----------------------------------------------------------------------------------


def exact_permutation(scores: torch.Tensor) -> torch.Tensor:
    """Row i one-hot at the i-th largest score, ``(..., n, n)``, from ``torch.argsort``."""
    order = torch.argsort(scores, dim=-1, descending=True)
    return torch.nn.functional.one_hot(order, scores.shape[-1]).to(scores.dtype)


def separated_scores(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Distinct scores at least 0.2 apart in every row: a permutation of 0, 0.3, 0.6, ... plus noise below 0.1."""
    ranks = torch.rand(shape, generator=gen).argsort(-1).double()
    return 0.3 * ranks + 0.1 * torch.rand(shape, generator=gen, dtype=torch.float64)


def test_neural_sort_is_unimodal_row_stochastic_at_every_temperature():
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(3, 4, 7, generator=gen, dtype=torch.float64)
    for tau in (10.0, 1.0, 0.1):
        p = neural_sort(scores, tau)
        assert p.shape == (3, 4, 7, 7) and (p >= 0).all()
        torch.testing.assert_close(p.sum(-1), torch.ones(3, 4, 7, dtype=torch.float64), rtol=0, atol=1e-12)
        # Grover et al., Theorem 4: the argmax of row i is the i-th largest score, at any tau
        assert torch.equal(p.argmax(-1), torch.argsort(scores, -1, descending=True))
    # ...but not doubly stochastic: at tau = 1 its columns are clearly off 1
    assert (neural_sort(scores, 1.0).sum(-2) - 1).abs().max() > 1e-2


def test_neural_sort_tends_to_the_sorting_permutation_as_tau_vanishes():
    gen = torch.Generator().manual_seed(2)
    scores = separated_scores((5, 8), gen)
    exact = exact_permutation(scores)
    taus = (1.0, 0.1, 0.01, 0.001)
    errors = [(neural_sort(scores, tau) - exact).abs().amax().item() for tau in taus]
    column_errors = [(neural_sort(scores, tau).sum(-2) - 1).abs().amax().item() for tau in taus]
    for sequence in (errors, column_errors):  # non-increasing as tau falls (up to rounding), and then nil
        assert all(later <= earlier + 1e-15 for earlier, later in zip(sequence, sequence[1:])), sequence
        assert sequence[0] > 0.1 and sequence[-1] < 1e-12, sequence
    relaxed_sorted = (neural_sort(scores, 0.001) @ scores.unsqueeze(-1)).squeeze(-1)  # P̂ s
    torch.testing.assert_close(relaxed_sorted, scores.sort(-1, descending=True).values, rtol=0, atol=1e-10)


def test_hard_neural_sort_is_exact_forward_and_relaxed_backward():
    gen = torch.Generator().manual_seed(3)
    scores = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    weights = torch.randn(4, 6, 6, generator=gen, dtype=torch.float64)
    grads = []
    for hard in (True, False):
        s = scores.clone().requires_grad_()
        p = neural_sort(s, 0.5, hard=hard)
        if hard:
            assert torch.equal(p.detach(), exact_permutation(scores))
        (p * weights).sum().backward()
        grads.append(s.grad)
    torch.testing.assert_close(grads[0], grads[1])
    assert grads[0].abs().amax() > 1e-3


# --- relaxed top-k -------------------------------------------------------------------------------


def topk_indicator(scores: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Row-wise k-hot indicator of ``torch.topk``, one row at a time."""
    out = torch.zeros_like(scores)
    for row, (s, kk) in enumerate(zip(scores, k.tolist())):
        out[row, torch.topk(s, kk).indices] = 1.0
    return out


def test_relaxed_top_k_selects_the_topk_set_at_low_temperature_and_sums_to_k():
    gen = torch.Generator().manual_seed(4)
    n = 9
    scores = separated_scores((10, n), gen)
    k = torch.arange(10) % (n + 1)  # (10,) every count 0..9
    indicator = topk_indicator(scores, k)
    one_hot = torch.nn.functional.one_hot(k, n + 1).double()  # (10, n + 1) counts as one-hot vectors
    torch.testing.assert_close(relaxed_top_k(scores, k, 1e-3), indicator, rtol=0, atol=1e-10)
    torch.testing.assert_close(relaxed_top_k(scores, one_hot, 1e-3), indicator, rtol=0, atol=1e-10)
    assert torch.equal(relaxed_top_k(scores, k, 1.0, hard=True), indicator)  # straight-through: exact forward
    for tau in (1.0, 0.1):  # row-stochastic P̂: the selection sums to k at any temperature
        torch.testing.assert_close(relaxed_top_k(scores, k, tau).sum(-1), k.double(), rtol=0, atol=1e-12)
        torch.testing.assert_close(relaxed_top_k(scores, one_hot, tau), relaxed_top_k(scores, k, tau))
    torch.testing.assert_close(relaxed_top_k(scores, 3, 1e-3), topk_indicator(scores, torch.full((10,), 3)),
                               rtol=0, atol=1e-10)
    # relaxed count weights: the mixture of exact-count selections, summing to the expected count
    weights = torch.rand(10, 5, generator=gen, dtype=torch.float64).softmax(-1)  # counts 0..4
    mixture = sum(weights[:, [c]] * relaxed_top_k(scores, c, 0.3) for c in range(5))
    torch.testing.assert_close(relaxed_top_k(scores, weights, 0.3), mixture)
    torch.testing.assert_close(mixture.sum(-1), weights @ torch.arange(5.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="K <= n"):
        first_rows_weight(torch.ones(n + 2), n)


def test_top_k_rows_list_the_selected_factors_in_rank_order():
    gen = torch.Generator().manual_seed(5)
    scores = torch.randn(3, 6, generator=gen)
    z = torch.randn(3, 6, generator=gen)
    rows = top_k_rows(neural_sort(scores, 1.0, hard=True), 2)  # (3, 6, 6)
    picked = (rows @ z.unsqueeze(-1)).squeeze(-1)  # (3, 6)
    top = torch.topk(scores, 2).indices
    assert torch.equal(picked[:, :2], z.gather(1, top)) and torch.equal(picked[:, 2:], torch.zeros(3, 4))


def test_gradients_reach_the_scores_and_the_count():
    gen = torch.Generator().manual_seed(6)
    n = 5
    scores = torch.randn(4, n, generator=gen, dtype=torch.float64, requires_grad=True)
    count_logits = torch.randn(4, n + 1, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randn(4, n, generator=gen, dtype=torch.float64)
    for hard in (True, False):
        count = gumbel_softmax_count(count_logits, tau=1.0, hard=hard, generator=gen)  # (4, n + 1)
        selection = relaxed_top_k(gumbel_perturb(scores, gen), count, tau=1.0, hard=hard)  # (4, n)
        scores.grad = count_logits.grad = None
        (selection * target).sum().backward()
        for grad in (scores.grad, count_logits.grad):
            assert torch.isfinite(grad).all() and grad.abs().amax() > 1e-4


# --- Gumbel draws --------------------------------------------------------------------------------


def test_gumbel_perturbed_rankings_sample_plackett_luce():
    gen = torch.Generator().manual_seed(7)
    logits = torch.tensor([1.0, 0.0, -0.5, 2.0], dtype=torch.float64)
    draws = 40_000
    rankings = gumbel_perturb(logits.expand(draws, -1), gen).argsort(-1, descending=True)  # (draws, 4)
    codes = (rankings * torch.tensor([64, 16, 4, 1])).sum(-1)  # each ranking as a base-4 number
    frequency = torch.bincount(codes, minlength=256).double() / draws
    weights = logits.exp().tolist()
    # A frequency's standard error is at most sqrt(0.25 / 40000) = 0.0025; 0.01 is 4 of them, a margin
    # wide enough for the 24 rankings plus the 4 first places compared (and the seed is fixed).
    for perm in itertools.permutations(range(4)):
        remaining, probability = sum(weights), 1.0
        for item in perm:  # Plackett-Luce: pick each next item in proportion to its weight
            probability *= weights[item] / remaining
            remaining -= weights[item]
        assert abs(frequency[sum(i * b for i, b in zip(perm, (64, 16, 4, 1)))].item() - probability) < 0.01
    first = torch.bincount(rankings[:, 0], minlength=4).double() / draws
    torch.testing.assert_close(first, logits.softmax(-1), rtol=0, atol=0.01)


def test_gumbel_softmax_count_draws_one_hot_counts_from_the_categorical():
    gen = torch.Generator().manual_seed(8)
    logits = torch.tensor([[0.5, 1.0, -1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 3.0, 3.0]], dtype=torch.float64)
    max_count = torch.tensor([4, 2])  # the second subspace holds at most 2 factors
    draws = 40_000
    hard = gumbel_softmax_count(logits.expand(draws, -1, -1), 0.5, max_count=max_count, generator=gen)
    assert torch.equal(hard.sum(-1), torch.ones(draws, 2, dtype=torch.float64))
    assert set(hard.unique().tolist()) == {0.0, 1.0}  # exact one-hot forward
    frequency = hard.mean(0)  # (2, K)
    expected = logits.masked_fill(torch.arange(5) > max_count.unsqueeze(-1), float("-inf")).softmax(-1)
    # standard error at most sqrt(0.25 / 40000) = 0.0025; 0.015 is 6 of them (and the seed is fixed)
    torch.testing.assert_close(frequency, expected, rtol=0, atol=0.015)
    assert (frequency[1, 3:] == 0).all()  # counts above max_count are never drawn
    soft = gumbel_softmax_count(logits, 0.5, hard=False, generator=gen)
    torch.testing.assert_close(soft.sum(-1), torch.ones(2, dtype=torch.float64))
    same = [gumbel_softmax_count(logits, generator=torch.Generator().manual_seed(9)) for _ in range(2)]
    assert torch.equal(*same)


def test_relaxed_subset_sample_is_the_topk_of_the_perturbed_weights():
    log_weights = torch.randn(5, 7, generator=torch.Generator().manual_seed(10))
    sample = relaxed_subset_sample(log_weights, 3, 0.5, hard=True, generator=torch.Generator().manual_seed(11))
    perturbed = gumbel_perturb(log_weights, torch.Generator().manual_seed(11))
    assert torch.equal(sample, topk_indicator(perturbed, torch.full((5,), 3)))


# --- hypergeometric ------------------------------------------------------------------------------

CAPACITIES = [[3, 2, 4], [1, 1, 1, 1], [5], [0, 3, 2], [2, 6], [4, 4, 4, 4]]


def support(capacities: list[int], draws: int) -> list[tuple[int, ...]]:
    return [x for x in itertools.product(*(range(m + 1) for m in capacities)) if sum(x) == draws]


@pytest.mark.parametrize("capacities", CAPACITIES)
def test_central_log_prob_matches_scipy_on_the_whole_support(capacities):
    for draws in range(sum(capacities) + 1):
        points = support(capacities, draws)
        counts = torch.tensor(points, dtype=torch.float64)  # (P, K)
        got = multivariate_hypergeometric_log_prob(counts, capacities, draws)
        expected = torch.tensor(multivariate_hypergeom.logpmf(points, m=capacities, n=draws), dtype=torch.float64)
        torch.testing.assert_close(got, expected.reshape(got.shape))
        torch.testing.assert_close(got.exp().sum(), torch.tensor(1.0, dtype=torch.float64))


def test_central_log_prob_is_minus_inf_off_the_support_and_batches():
    capacities = torch.tensor([3, 2, 4])
    counts = torch.tensor([[[1, 2, 2], [-1, 3, 3], [0, 3, 2]], [[1.5, 1.5, 2.0], [1, 1, 1], [3, 2, 4]]],
                          dtype=torch.float64)  # (2, 3, K)
    draws = torch.tensor([[5, 5, 5], [5, 4, 10]])  # (2, 3): 10 > N = 9
    got = multivariate_hypergeometric_log_prob(counts, capacities, draws)
    assert got.shape == (2, 3)
    inf = float("-inf")
    # in support; negative; above capacity; not integer; wrong sum; more draws than elements
    assert got[0, 0] == pytest.approx(multivariate_hypergeom.logpmf([1, 2, 2], m=[3, 2, 4], n=5))
    assert got[0, 1:].tolist() == [inf, inf] and got[1].tolist() == [inf, inf, inf]
    integer = multivariate_hypergeometric_log_prob(torch.tensor([1, 2, 2]), capacities, 5)  # integer counts
    assert integer.dtype == torch.get_default_dtype() and integer.item() == pytest.approx(got[0, 0].item(), rel=1e-5)


def test_marginals_are_univariate_hypergeometric():
    capacities = [3, 2, 4, 0]
    for draws in (0, 4, 9):
        got = hypergeometric_marginal_log_prob(torch.tensor(capacities, dtype=torch.float64), draws)
        assert got.shape == (4, 5)
        c = torch.arange(5)
        for k, m_k in enumerate(capacities):
            expected = torch.tensor(hypergeom.logpmf(c, sum(capacities), m_k, draws), dtype=torch.float64)
            torch.testing.assert_close(got[k], expected)
    batched = hypergeometric_marginal_log_prob(torch.tensor([[3, 2], [1, 5]]), torch.tensor([2, 4]), max_count=6)
    assert batched.shape == (2, 2, 7)
    torch.testing.assert_close(batched.exp().sum(-1), torch.ones(2, 2))


def brute_force_fisher(point: tuple[int, ...], weights: list[float], capacities: list[int], draws: int) -> float:
    """log P(point) from Fisher's definition, summing over the enumerated support with math.comb."""
    def mass(x):
        return math.prod(math.comb(m, xi) * w**xi for m, xi, w in zip(capacities, x, weights))
    return math.log(mass(point) / sum(mass(y) for y in support(capacities, draws)))


@pytest.mark.parametrize("capacities", CAPACITIES)
def test_fisher_with_equal_weights_is_the_central_distribution(capacities):
    draws = sum(capacities) // 2
    counts = torch.tensor(support(capacities, draws), dtype=torch.float64)  # (P, K)
    log_weights = torch.tensor([-1.3, 0.0, 0.7], dtype=torch.float64).unsqueeze(-1).expand(3, len(capacities))
    got = fisher_multivariate_hypergeometric_log_prob(counts.unsqueeze(1), log_weights, capacities, draws)  # (P, 3)
    central = multivariate_hypergeometric_log_prob(counts, capacities, draws)  # (P,)
    torch.testing.assert_close(got, central.unsqueeze(-1).expand_as(got))


@pytest.mark.parametrize("capacities", CAPACITIES)
def test_fisher_matches_its_definition_by_brute_force(capacities):
    gen = torch.Generator().manual_seed(12)
    draws = (sum(capacities) + 1) // 2
    points = support(capacities, draws)
    log_weights = torch.randn(4, len(capacities), generator=gen, dtype=torch.float64, requires_grad=True)
    got = fisher_multivariate_hypergeometric_log_prob(torch.tensor(points).unsqueeze(1), log_weights, capacities, draws)
    expected = [[brute_force_fisher(x, w, capacities, draws) for w in log_weights.exp().tolist()] for x in points]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(got.exp().sum(0), torch.ones(4, dtype=torch.float64))
    # d log P_0 / d log w_k is the mean count E[x_k], here from the enumerated probabilities
    fisher_log_normaliser(log_weights, capacities, draws).sum().backward()
    mean_counts = torch.einsum("pb,pk->bk", got.detach().exp(), torch.tensor(points, dtype=torch.float64))
    torch.testing.assert_close(log_weights.grad, mean_counts)
    outside = torch.tensor([list(capacities[:-1]) + [capacities[-1] + 1]])  # above capacity
    assert fisher_multivariate_hypergeometric_log_prob(outside, log_weights.detach(), capacities, draws).isinf().all()


def test_fisher_normaliser_beyond_an_enumerable_support():
    capacities = [40] * 8  # 101 draws: a support of about 10^12 points
    log_weights = torch.full((2, 8), 0.4, dtype=torch.float64)
    central = math.lgamma(321) - math.lgamma(102) - math.lgamma(220) + 101 * 0.4  # log [C(N, n) w^n]
    torch.testing.assert_close(fisher_log_normaliser(log_weights, capacities, 101),
                               torch.full((2,), central, dtype=torch.float64))
    assert fisher_log_normaliser(log_weights, capacities, 321).isinf().all()  # more draws than elements
