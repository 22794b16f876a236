"""The nn building blocks against independent references (torch.distributions, nn.Linear, NumPy).

The schema used throughout mixes numeric features with one-hot features of
different sizes (2, 5 and 3 categories), so the padded ``(C, K_max)`` block
layout, its ``-inf`` padding and the interleaving of numeric and one-hot columns
are all exercised.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Normal, kl_divergence

from imputebench.nn.elbo import (
    LOGVAR_RANGE,
    clamp_logvar,
    gaussian_kl,
    gaussian_kl_between,
    gaussian_log_prob,
    iwae_bound,
    masked_log_lik,
    reparameterize,
)
from imputebench.nn.heads import TabularLikelihood, bernoulli_log_prob
from imputebench.nn.layout import SchemaLayout, masked_log_softmax, take_columns
from imputebench.nn.mlp import GroupedBatchNorm, GroupedLinear, PerModalityDecoder, PerModalityMLP, grouped_mlp, mlp
from imputebench.schema import Feature, FeatureSchema
from imputebench.selection import SelectionError

#: numeric, 2-category, numeric, 5-category, 3-category ordinal, numeric
SCHEMA = FeatureSchema((
    Feature("a"),
    Feature("yes_no", "categorical", ("n", "y")),
    Feature("b", "positive"),
    Feature("colour", "categorical", ("r", "g", "b", "c", "m")),
    Feature("size", "ordinal", ("s", "m", "l")),
    Feature("c", "count"),
))
NUMERIC = [0, 2, 5]  # feature indices
BLOCKS = [1, 3, 4]


def random_values(n: int, gen: torch.Generator, schema: FeatureSchema = SCHEMA) -> torch.Tensor:
    """``(n, d)`` feature space: normal numerics, uniform category codes."""
    values = torch.randn(n, len(schema), generator=gen, dtype=torch.float64)
    for j, feature in enumerate(schema.features):
        if feature.width > 1:
            values[:, j] = torch.randint(feature.width, (n,), generator=gen).double()
    return values


def random_observed(n: int, gen: torch.Generator, p: float = 0.6, schema: FeatureSchema = SCHEMA) -> torch.Tensor:
    """Encoded-column mask ``(n, D)`` consistent within one-hot blocks."""
    return schema.expand(torch.rand(n, len(schema), generator=gen) < p)


# --- TabularLikelihood ------------------------------------------------------------------------


def reference_log_prob(params: torch.Tensor, x: torch.Tensor, learn_scale: bool, variance: float = 1.0) -> torch.Tensor:
    """Per-feature log-likelihood with torch.distributions, one feature at a time. ``(b, d)``."""
    out = torch.zeros(x.shape[0], len(SCHEMA), dtype=x.dtype)
    n_numeric = 0
    for j, (feature, cols) in enumerate(zip(SCHEMA.features, SCHEMA.slices)):
        if feature.width == 1:
            mu = params[:, cols.start]
            if learn_scale:
                logvar = clamp_logvar(params[:, SCHEMA.encoded_dim + n_numeric])
            else:
                logvar = torch.full_like(mu, math.log(variance))
            out[:, j] = Normal(mu, torch.exp(0.5 * logvar)).log_prob(x[:, cols.start])
            n_numeric += 1
        else:
            block = x[:, cols]
            log_p = Categorical(logits=params[:, cols]).log_prob(block.argmax(1))
            out[:, j] = log_p * block.sum(1)  # an all-zero (hidden) block scores 0
    return out


@pytest.mark.parametrize("learn_scale, variance", [(False, 1.0), (False, 0.5), (True, 1.0)])
def test_log_prob_matches_torch_distributions(learn_scale, variance):
    gen = torch.Generator().manual_seed(0)
    head = TabularLikelihood(SCHEMA, learn_scale=learn_scale, variance=variance)
    assert head.param_dim == SCHEMA.encoded_dim + (len(NUMERIC) if learn_scale else 0)
    b = 64
    params = 2.0 * torch.randn(b, head.param_dim, generator=gen, dtype=torch.float64)
    if learn_scale:  # log-variances inside and outside the clamp range
        params[:4, SCHEMA.encoded_dim :] = torch.tensor([LOGVAR_RANGE[0] - 5.0, LOGVAR_RANGE[1] + 5.0, 0.0])
    values = random_values(b, gen)
    x = SCHEMA.one_hot(values)
    got = head.log_prob(params, x)
    assert got.shape == (b, len(SCHEMA))
    torch.testing.assert_close(got, reference_log_prob(params, x, learn_scale, variance))
    # fixed variance v: the squared-error loss -(x - mu)^2 / (2 v) - log(2 pi v) / 2
    if not learn_scale:
        cols = [SCHEMA.offsets[j] for j in NUMERIC]
        expected = -((x[:, cols] - params[:, cols]) ** 2) / (2 * variance) - 0.5 * math.log(2 * math.pi * variance)
        torch.testing.assert_close(got[:, NUMERIC], expected)


def test_a_non_positive_variance_is_refused():
    for variance in (0.0, -1.0):
        with pytest.raises(ValueError, match="variance"):
            TabularLikelihood(SCHEMA, variance=variance)


def test_log_prob_of_hidden_zero_blocks_is_zero_and_batch_dims_broadcast():
    gen = torch.Generator().manual_seed(1)
    head = TabularLikelihood(SCHEMA)
    params = torch.randn(3, 5, head.param_dim, generator=gen)  # (S, b, P)
    x = SCHEMA.one_hot(random_values(5, gen)).float()
    x[:, SCHEMA.slices[3]] = 0.0  # a hidden block is all zeros
    got = head.log_prob(params, x.expand(3, -1, -1))
    assert got.shape == (3, 5, len(SCHEMA))
    assert torch.equal(got[..., 3], torch.zeros(3, 5))
    for s in range(3):
        torch.testing.assert_close(got[s], head.log_prob(params[s], x))


def test_mean_mode_and_sample_shapes_and_values():
    gen = torch.Generator().manual_seed(2)
    head = TabularLikelihood(SCHEMA, learn_scale=True)
    params = torch.randn(7, head.param_dim, generator=gen)
    mean, mode, sample = head.mean(params), head.mode(params), head.sample(params)
    for out in (mean, mode, sample):
        assert out.shape == (7, SCHEMA.encoded_dim) and torch.isfinite(out).all()
    numeric_cols = [SCHEMA.offsets[j] for j in NUMERIC]
    assert torch.equal(mean[:, numeric_cols], params[:, numeric_cols])
    assert torch.equal(mode[:, numeric_cols], params[:, numeric_cols])
    for j in BLOCKS:
        cols = SCHEMA.slices[j]
        torch.testing.assert_close(mean[:, cols], params[:, cols].softmax(-1))
        assert torch.equal(mode[:, cols], nn.functional.one_hot(params[:, cols].argmax(-1), SCHEMA.widths[j]).float())
        assert torch.equal(sample[:, cols].sum(-1), torch.ones(7))  # one-hot draws
        assert set(sample[:, cols].unique().tolist()) <= {0.0, 1.0}


def test_categorical_sample_frequencies_follow_the_softmax():
    torch.manual_seed(0)
    head = TabularLikelihood(SCHEMA)
    logits = [torch.tensor(v) for v in ([0.0, 1.0], [2.0, 0.0, -1.0, 1.0, -3.0], [0.5, 0.5, -0.5])]
    params = torch.zeros(20000, head.param_dim)
    for j, row in zip(BLOCKS, logits):
        params[:, SCHEMA.slices[j]] = row
    draws = head.sample(params)
    for j, row in zip(BLOCKS, logits):
        freq = draws[:, SCHEMA.slices[j]].mean(0)
        assert torch.allclose(freq, row.softmax(-1), atol=0.015), (j, freq, row.softmax(-1))


@pytest.mark.parametrize("learn_scale, variance", [(False, 1.0), (False, 0.5), (True, 1.0)])
def test_numeric_samples_have_the_head_mean_and_variance(learn_scale, variance):
    torch.manual_seed(0)
    head = TabularLikelihood(SCHEMA, learn_scale=learn_scale, variance=variance)
    params = torch.zeros(20000, head.param_dim)
    means, logvars = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([0.0, math.log(4.0), -2.0])
    params[:, [SCHEMA.offsets[j] for j in NUMERIC]] = means
    if learn_scale:
        params[:, SCHEMA.encoded_dim :] = logvars
    std = torch.exp(0.5 * logvars) if learn_scale else torch.full((3,), math.sqrt(variance))
    numeric = head.sample(params)[:, [SCHEMA.offsets[j] for j in NUMERIC]]
    assert torch.allclose(numeric.mean(0), means, atol=0.05)
    assert torch.allclose(numeric.std(0), std, rtol=0.03)


def test_log_prob_gradients_are_finite_with_extreme_logits_and_padding():
    gen = torch.Generator().manual_seed(3)
    head = TabularLikelihood(SCHEMA, learn_scale=True)
    params = (50.0 * torch.randn(32, head.param_dim, generator=gen)).requires_grad_()
    x = SCHEMA.one_hot(random_values(32, gen)).float()
    observed = random_observed(32, gen)
    ll = masked_log_lik(head.log_prob(params, x * observed), SchemaLayout(SCHEMA).feature_mask(observed))
    ll.sum().backward()
    assert torch.isfinite(ll).all() and torch.isfinite(params.grad).all()
    assert params.grad.abs().sum() > 0


def test_bernoulli_log_prob_matches_torch_distributions():
    gen = torch.Generator().manual_seed(4)
    logits = 10.0 * torch.randn(50, 6, generator=gen)
    target = (torch.rand(50, 6, generator=gen) < 0.5).float()
    torch.testing.assert_close(bernoulli_log_prob(logits, target), Bernoulli(logits=logits).log_prob(target))


# --- SchemaLayout ------------------------------------------------------------------------------


def test_argmax_one_hot_agrees_with_schema_collapse():
    gen = torch.Generator().manual_seed(5)
    layout = SchemaLayout(SCHEMA)
    scores = torch.randn(40, SCHEMA.encoded_dim, generator=gen)
    snapped = layout.argmax_one_hot(scores)
    assert torch.equal(SCHEMA.collapse(snapped), SCHEMA.collapse(scores))
    assert torch.equal(snapped, SCHEMA.one_hot(SCHEMA.collapse(scores)))  # numerics copied, blocks one-hot
    batched = layout.argmax_one_hot(scores.view(4, 10, -1))  # leading batch dimensions
    assert torch.equal(batched.view(40, -1), snapped)


def test_per_feature_sum_matches_a_loop_over_slices():
    gen = torch.Generator().manual_seed(6)
    layout = SchemaLayout(SCHEMA)
    columns = torch.randn(9, SCHEMA.encoded_dim, generator=gen)
    expected = torch.stack([columns[:, cols].sum(-1) for cols in SCHEMA.slices], -1)
    torch.testing.assert_close(layout.per_feature_sum(columns), expected)


def test_feature_mask_and_expand_round_trip():
    gen = torch.Generator().manual_seed(7)
    layout = SchemaLayout(SCHEMA)
    feature_mask = torch.rand(30, len(SCHEMA), generator=gen) < 0.5
    encoded = layout.expand(feature_mask)
    assert encoded.shape == (30, SCHEMA.encoded_dim)
    assert torch.equal(encoded, SCHEMA.expand(feature_mask))
    assert torch.equal(layout.feature_mask(encoded), feature_mask)
    assert torch.equal(layout.expand(layout.feature_mask(encoded)), encoded)


def test_blocks_and_scatter_blocks_round_trip():
    gen = torch.Generator().manual_seed(8)
    layout = SchemaLayout(SCHEMA)
    x = torch.randn(5, SCHEMA.encoded_dim, generator=gen)
    blocks = layout.blocks(x, pad=-7.0)
    assert blocks.shape == (5, len(BLOCKS), 5)
    for c, j in enumerate(BLOCKS):
        w = SCHEMA.widths[j]
        assert torch.equal(blocks[:, c, :w], x[:, SCHEMA.slices[j]])
        assert (blocks[:, c, w:] == -7.0).all()
    assert torch.equal(layout.scatter_blocks(blocks, torch.zeros_like(x)) + x * ~layout.expand(
        torch.tensor([f.width > 1 for f in SCHEMA.features]).expand(5, -1)), x)


# --- ELBO pieces ---------------------------------------------------------------------------------


def test_take_columns_equals_advanced_indexing_with_its_gradient():
    encoded = torch.randn(3, 4, 7, requires_grad=True)
    index = torch.tensor([[0, 6, 6], [2, 1, 0]])
    torch.testing.assert_close(take_columns(encoded, index), encoded[..., index])
    torch.testing.assert_close(take_columns(encoded.expand(2, -1, -1, -1), index[0]), encoded.expand(2, -1, -1, -1)[..., index[0]])
    (grad,) = torch.autograd.grad(take_columns(encoded, index).sum(), encoded)
    assert torch.equal(grad[0, 0], torch.tensor([2.0, 1, 1, 0, 0, 0, 2]))
    assert take_columns(encoded, torch.zeros(0, 3, dtype=torch.long)).shape == (3, 4, 0, 3)


def test_masked_log_softmax_is_the_softmax_over_valid_entries_with_zero_padding_and_gradients():
    valid = torch.tensor([[True, True, False], [True, True, True]])  # (G=2, K=3)
    logits = torch.randn(4, 5, 2, 3, requires_grad=True)
    out = masked_log_softmax(logits, valid)  # (4, 5, 2, 3)
    torch.testing.assert_close(out[..., 0, :2], logits[..., 0, :2].log_softmax(-1))
    torch.testing.assert_close(out[..., 1, :], logits[..., 1, :].log_softmax(-1))
    assert (out[..., 0, 2] == 0).all()
    out.exp().mul(valid).sum().backward()  # padding gets no gradient, nothing is NaN
    assert torch.isfinite(logits.grad).all() and (logits.grad[..., 0, 2] == 0).all()


def test_gaussian_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(9)
    mu, logvar = torch.randn(20, 8, generator=gen), 3.0 * torch.randn(20, 8, generator=gen)
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)
    assert torch.equal(gaussian_kl(torch.zeros(3), torch.zeros(3)), torch.zeros(3))


def test_gaussian_kl_between_matches_torch_distributions():
    gen = torch.Generator().manual_seed(10)
    mu_q, lv_q, mu_p, lv_p = (torch.randn(20, 8, generator=gen) * s for s in (1.0, 2.0, 1.0, 2.0))
    expected = kl_divergence(Normal(mu_q, torch.exp(0.5 * lv_q)), Normal(mu_p, torch.exp(0.5 * lv_p)))
    torch.testing.assert_close(gaussian_kl_between(mu_q, lv_q, mu_p, lv_p), expected)
    zeros = torch.zeros(20, 8)  # against the standard normal it is gaussian_kl
    torch.testing.assert_close(gaussian_kl_between(mu_q, lv_q, zeros, zeros), gaussian_kl(mu_q, lv_q))


def test_gaussian_log_prob_matches_torch_distributions():
    gen = torch.Generator().manual_seed(11)
    x, mu, logvar = (torch.randn(10, 4, generator=gen) for _ in range(3))
    torch.testing.assert_close(gaussian_log_prob(x, mu, logvar), Normal(mu, torch.exp(0.5 * logvar)).log_prob(x))


def test_masked_log_lik_ignores_hidden_entries_and_their_gradients():
    gen = torch.Generator().manual_seed(12)
    log_prob = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    observed = torch.rand(6, 5, generator=gen) < 0.5
    observed[0] = False  # a row with nothing observed scores 0
    scrambled = torch.where(observed, log_prob, 1e6 * torch.randn(6, 5, generator=gen, dtype=torch.float64))
    expected = torch.tensor([log_prob[i][observed[i]].sum().item() for i in range(6)], dtype=torch.float64)
    for lp in (log_prob, scrambled):
        lp = lp.clone().requires_grad_()
        out = masked_log_lik(lp, observed)
        assert out.shape == (6,)
        torch.testing.assert_close(out, expected)
        out.sum().backward()
        assert torch.equal(lp.grad, observed.double())  # hidden entries: exactly zero gradient
    # (S, b, d) with a float mask, as VSAE's unobserved term uses it
    three_d = masked_log_lik(log_prob.expand(3, -1, -1), (~observed).float())
    torch.testing.assert_close(three_d, (log_prob * ~observed).sum(-1).expand(3, -1))


def test_iwae_bound_is_log_mean_exp_and_the_mean_for_one_sample():
    gen = torch.Generator().manual_seed(13)
    log_w = 20.0 * torch.randn(7, 4, 3, generator=gen, dtype=torch.float64)
    expected = torch.log(torch.exp(log_w - log_w.max(0).values).mean(0)) + log_w.max(0).values
    bound = iwae_bound(log_w)
    assert bound.shape == (4, 3)
    torch.testing.assert_close(bound, expected)
    assert (bound >= log_w.mean(0) - 1e-12).all()  # Jensen: never below the ELBO of the same draws
    assert (bound <= log_w.max(0).values).all()
    torch.testing.assert_close(iwae_bound(log_w[:1]), log_w[0])  # K = 1: the ordinary ELBO
    torch.testing.assert_close(iwae_bound(log_w[:1]), log_w[:1].mean(0))
    assert torch.isfinite(iwae_bound(torch.full((5, 2), -1e4))).all()  # stable far below exp's range


def test_reparameterize_moments_and_clamp():
    torch.manual_seed(0)
    mu, logvar = torch.tensor([1.0, -2.0]), torch.tensor([0.0, math.log(4.0)])
    z = reparameterize(mu.expand(50000, -1), logvar.expand(50000, -1))
    assert torch.allclose(z.mean(0), mu, atol=0.03) and torch.allclose(z.std(0), torch.tensor([1.0, 2.0]), atol=0.03)
    mu = mu.clone().requires_grad_()
    reparameterize(mu, logvar).sum().backward()
    assert torch.equal(mu.grad, torch.ones(2))  # dz/dmu = 1
    clamped = clamp_logvar(torch.tensor([-1e9, 0.0, 1e9]))
    assert torch.equal(clamped, torch.tensor([LOGVAR_RANGE[0], 0.0, LOGVAR_RANGE[1]]))


# --- MLPs ----------------------------------------------------------------------------------------


def linear_of_group(layer: GroupedLinear, g: int) -> nn.Linear:
    """Group ``g`` of a GroupedLinear as an ordinary nn.Linear."""
    groups, in_dim, out_dim = layer.weight.shape
    linear = nn.Linear(in_dim, out_dim)
    with torch.no_grad():
        linear.weight.copy_(layer.weight[g].T)
        linear.bias.copy_(layer.bias[g])
    return linear


def test_grouped_linear_equals_one_linear_per_group():
    torch.manual_seed(0)
    layer = GroupedLinear(4, 3, 5)
    x = torch.randn(8, 4, 3)
    out = layer(x)
    assert out.shape == (8, 4, 5)
    for g in range(4):
        torch.testing.assert_close(out[:, g], linear_of_group(layer, g)(x[:, g]))
    # independent initialisation per group, nn.Linear's bound 1/sqrt(fan_in)
    assert not torch.equal(layer.weight[0], layer.weight[1])
    assert layer.weight.abs().max() <= 1 / math.sqrt(3) and layer.bias.abs().max() <= 1 / math.sqrt(3)


def test_grouped_batch_norm_normalises_each_group_and_channel():
    torch.manual_seed(0)
    norm = GroupedBatchNorm(3, 4)
    x = 5.0 + 3.0 * torch.randn(64, 3, 4)
    out = norm(x)
    torch.testing.assert_close(out.mean(0), torch.zeros(3, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(0, unbiased=False), torch.ones(3, 4), atol=1e-3, rtol=0)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_grouped_mlp_equals_one_mlp_per_group(batch_norm):
    torch.manual_seed(0)
    groups, in_dim, hidden, out_dim = 3, 2, [6, 5], 4
    grouped = grouped_mlp(groups, in_dim, hidden, out_dim, batch_norm=batch_norm)
    singles = []
    for g in range(groups):
        single = mlp(in_dim, hidden, out_dim, batch_norm=batch_norm)
        linears = [m for m in grouped if isinstance(m, GroupedLinear)]
        targets = [m for m in single if isinstance(m, nn.Linear)]
        assert len(linears) == len(targets) == len(hidden) + 1
        for src, dst in zip(linears, targets):
            dst.load_state_dict(linear_of_group(src, g).state_dict())
        singles.append(single)
    x = torch.randn(16, groups, in_dim)
    for mode in ("train", "train", "eval"):  # running statistics must evolve alike
        grouped.train(mode == "train")
        out = grouped(x)
        assert out.shape == (16, groups, out_dim)
        for g, single in enumerate(singles):
            single.train(mode == "train")
            torch.testing.assert_close(out[:, g], single(x[:, g]))
    grouped.train()
    grouped(x).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in grouped.parameters())


def test_per_feature_mlp_runs_each_features_network_on_its_own_columns():
    torch.manual_seed(0)
    layout = SchemaLayout(SCHEMA)
    net = PerModalityMLP(layout, [6, 6], [5], 3).eval()
    x = SCHEMA.one_hot(random_values(7, torch.Generator().manual_seed(0))).float().requires_grad_()
    out = net(x)
    assert out.shape == (7, len(SCHEMA), 3)
    for j, cols in enumerate(SCHEMA.slices):
        (grad,) = torch.autograd.grad(out[:, j].sum(), x, retain_graph=True)
        others = torch.ones(SCHEMA.encoded_dim, dtype=torch.bool)
        others[cols] = False
        assert (grad[:, others] == 0).all() and (grad[:, cols] != 0).any(), SCHEMA.features[j].name
    # the numeric features' networks are one grouped MLP on their single column
    numeric = net.numeric(x[:, layout.numeric_cols].unsqueeze(-1))
    torch.testing.assert_close(out[:, NUMERIC], numeric)
    widths = [m.weight.shape[1] for m in net.categorical if isinstance(m, GroupedLinear)]
    assert widths == [max(SCHEMA.widths), 5]  # one-hot blocks padded to the widest


def test_per_modality_decoder_writes_each_modalitys_columns_from_its_own_input_only():
    torch.manual_seed(0)
    layout = SchemaLayout(SCHEMA)
    net = PerModalityDecoder(layout, 4, [6]).eval()
    inputs = torch.randn(5, len(SCHEMA), 4, requires_grad=True)  # (b, M, in)
    out = net(inputs)
    assert out.shape == (5, SCHEMA.encoded_dim)
    for j, cols in enumerate(SCHEMA.slices):
        (grad,) = torch.autograd.grad(out[:, cols].sum(), inputs, retain_graph=True)
        assert (grad[:, j] != 0).any() and (torch.cat([grad[:, :j], grad[:, j + 1:]], 1) == 0).all(), SCHEMA.features[j].name
    assert net.width == max(SCHEMA.widths)  # outputs padded to the widest modality


def test_mlp_layout():
    net = mlp(3, [8, 8], 2)
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.LeakyReLU, nn.Linear, nn.LeakyReLU, nn.Linear]
    assert [type(m) for m in mlp(3, [], 2)] == [nn.Linear]


# --- SelectionError ------------------------------------------------------------------------------


def reference_selection_error(preds: np.ndarray, truth: np.ndarray, observed: np.ndarray) -> float:
    """Mean over features with a hidden entry: RMSE (numeric) or error rate (one-hot)."""
    errors = []
    for feature, cols in zip(SCHEMA.features, SCHEMA.slices):
        hidden = ~observed[:, cols.start]
        if not hidden.any():
            continue
        if feature.width == 1:
            errors.append(np.sqrt(np.mean((preds[hidden, cols.start] - truth[hidden, cols.start]) ** 2)))
        else:
            errors.append(np.mean(preds[hidden, cols].argmax(1) != truth[hidden, cols].argmax(1)))
    return float(np.mean(errors))


def test_selection_error_matches_numpy_over_two_batches():
    gen = torch.Generator().manual_seed(14)
    n = 50
    truth = SCHEMA.one_hot(random_values(n, gen)).float()
    preds = SCHEMA.one_hot(random_values(n, gen)).float()
    preds[:25] = torch.where(torch.rand(25, 1, generator=gen) < 0.5, truth[:25], preds[:25])  # some right
    observed = random_observed(n, gen, p=0.5)
    observed[:, SCHEMA.slices[4]] = True  # a feature with no hidden entry is left out of the mean
    metric = SelectionError(SCHEMA)
    metric.update(preds[:20], truth[:20], observed[:20])
    metric.update(preds[20:], truth[20:], observed[20:])
    expected = reference_selection_error(preds.numpy(), truth.numpy(), observed.numpy())
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-5)
    whole = SelectionError(SCHEMA)
    whole.update(preds, truth, observed)
    assert float(whole.compute()) == pytest.approx(expected, rel=1e-5)
    metric.reset()
    metric.update(preds, truth, torch.ones_like(observed))
    assert math.isnan(float(metric.compute()))  # nothing hidden: no score
    metric.update(truth, truth, observed)
    assert float(metric.compute()) == 0.0
