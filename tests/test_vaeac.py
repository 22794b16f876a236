"""VAEAC-specific behaviour (papers/002 sections 4.2-4.3.3, appendix A.1/A.2).

The b-mask sampling of A.2, the reconstruction term of eq. (9), the Normal-Gamma
regulariser of eq. (8), the prior-to-generator skip connections of A.1, and model
selection by a validation IWAE. The registry-wide contract tests
(tests/test_contracts.py) cover the rest.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import correlated_dataset
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.models.vaeac import VAEAC, normal_gamma_log_prior, sample_unobserved, split_linear

#: small networks keep every test here well under a second or two
SMALL = dict(width=32, depth=2, latent_dim=8, max_epochs=2, patience=5, batch_size=32, n_imputations=2)


@pytest.fixture(scope="module")
def data():
    return prepare(correlated_dataset(200, 0), get_protocol("vaeac"), "mcar", 0.5, 0)


def built(schema, **overrides) -> VAEAC:
    model = VAEAC(seed=0, **{**SMALL, **overrides})
    model.build_networks(schema)
    return model.eval()


# --- b ~ p(b | x) of appendix A.2 ------------------------------------------------------------------


def test_missing_features_are_always_unobserved_and_the_rest_at_rate_0_2():
    torch.manual_seed(0)
    present = torch.rand(20000, 6) < 0.5
    b = sample_unobserved(present, 0.2)
    assert b.dtype == torch.bool and b.shape == present.shape
    assert b[~present].all()
    per_feature = b.float().sum(0) / present.float().sum(0) - (~present).float().sum(0) / present.float().sum(0)
    assert torch.allclose(per_feature, torch.full((6,), 0.2), atol=0.015)  # every feature, not just on average
    assert abs(b[present].float().mean().item() - 0.2) < 0.01
    assert not torch.equal(b, sample_unobserved(present, 0.2))  # redrawn on every call (every step)


def test_rate_zero_and_one_are_the_extremes():
    present = torch.tensor([[True, False, True]])
    assert torch.equal(sample_unobserved(present, 0.0), ~present)
    assert sample_unobserved(present, 1.0).all()


# --- reconstruction term, eq. (9) ---------------------------------------------------------------


def _fixed_mask(data, model):
    x, observed = data.train.x[:64], data.train.observed[:64]
    present = model.layout.feature_mask(observed)
    torch.manual_seed(1)
    unobserved = sample_unobserved(present, 0.5)
    assert (unobserved & present).any() and (~unobserved).any() and (~present).any()
    return x, observed, present, unobserved


def test_reconstruction_gradient_reaches_only_unobserved_non_missing_features(data):
    model = built(data.train.schema)
    x, observed, present, unobserved = _fixed_mask(data, model)
    captured = []
    hook = model.generative_net.register_forward_hook(lambda m, i, out: captured.append(out) or out.retain_grad())
    model.terms(x, observed, unobserved)["rec"].sum().backward()
    hook.remove()
    grad = captured[0].grad  # (B, P) d rec / d generator output
    scored = model.layout.expand(unobserved & present)  # (B, D)
    assert (grad[~scored] == 0).all()  # conditioned-on (b = 0) and missing features: no reconstruction
    assert (grad[scored] != 0).float().mean() > 0.5


def test_reconstruction_value_depends_only_on_scored_targets(data):
    """With the generator's output pinned, scrambling b = 0 or missing entries leaves rec unchanged."""
    model = built(data.train.schema)
    x, observed, present, unobserved = _fixed_mask(data, model)
    pinned = torch.randn(x.shape[0], model.likelihood.param_dim)
    model.generative_net.register_forward_hook(lambda m, i, out: pinned)
    scored = model.layout.expand(unobserved & present)
    noise = 50.0 * torch.randn_like(x)

    def rec(values):
        torch.manual_seed(0)
        return model.terms(values, observed, unobserved)["rec"]

    reference = rec(x)
    assert torch.equal(rec(torch.where(scored, x, noise)), reference)
    assert not torch.allclose(rec(torch.where(scored, noise, x)), reference)


# --- Normal-Gamma prior on the prior network's parameters, eq. (8) ----------------------------------


def test_normal_gamma_regulariser_matches_a_hand_computation():
    mu = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    sigma = torch.tensor([[0.5, 2.0], [1.0, 0.1]])
    got = normal_gamma_log_prior(mu, 2 * sigma.log(), sigma_mu=2.0, sigma_sigma=0.5)
    row0 = -(1 + 4) / (2 * 4) + 0.5 * (math.log(0.5) - 0.5 + math.log(2.0) - 2.0)
    row1 = -(0 + 9) / (2 * 4) + 0.5 * (math.log(1.0) - 1.0 + math.log(0.1) - 0.1)
    assert torch.allclose(got, torch.tensor([row0, row1]), atol=1e-6)
    # the paper's values (sigma_mu = 1e4, sigma_sigma = 1e-4) are the defaults, and nearly flat near zero
    cfg = VAEAC(seed=0).cfg
    assert (cfg.sigma_mu, cfg.sigma_sigma) == (1e4, 1e-4)
    assert abs(normal_gamma_log_prior(mu, 2 * sigma.log(), cfg.sigma_mu, cfg.sigma_sigma)).max() < 1e-3


def test_the_loss_is_the_negative_bound_with_the_regulariser(data):
    model = built(data.train.schema, sigma_mu=1.0, sigma_sigma=0.1)  # a regulariser large enough to see
    x, observed = data.train.x[:64], data.train.observed[:64]
    torch.manual_seed(3)
    parts = model.loss(x, observed)
    assert parts["reg"].abs() > 1e-3
    assert torch.allclose(parts["loss"], parts["rec"] + parts["kl"] + parts["reg"], atol=1e-5)


# --- skip connections, appendix A.1 ----------------------------------------------------------------


def test_generative_network_takes_the_prior_networks_states_by_concatenation(data):
    schema = data.train.schema
    model = built(schema, width=16, depth=3)
    gen = model.generative_net
    assert len(gen.blocks) == 3 + 1
    assert all(block.in_features == skip.in_features == 16 for block, skip in zip(gen.blocks, gen.skip_blocks))
    assert gen.cond_head.in_features == schema.encoded_dim + len(schema)  # [x_{1-b}, b] beside g
    assert model.proposal_net.stem.in_features == schema.encoded_dim + 2 * len(schema)  # [x, missing, b]
    x, observed = data.test.x[:8], data.test.observed[:8]
    unobserved = ~model.layout.feature_mask(observed)
    _, _, skips, u = model.prior(x * observed, unobserved)
    assert len(skips) == 3 + 1
    z = torch.randn(8, 8)
    out = gen(z, skips, u)
    for i in range(len(skips)):  # every prior state reaches the output
        changed = [s + 1.0 if j == i else s for j, s in enumerate(skips)]
        assert not torch.allclose(gen(z, changed, u), out)



def test_split_skip_blocks_equal_one_linear_layer_on_the_concatenation_for_every_latent_sample(data):
    schema = data.train.schema
    gen = built(schema, width=16, depth=2).generative_net
    skips = [torch.randn(5, 16) for _ in range(3)]
    cond = torch.randn(5, gen.cond_head.in_features)
    z = torch.randn(4, 5, gen.stem.in_features)  # (K, B, k): four latent samples per row

    def joint(first: torch.nn.Linear, second: torch.nn.Linear, a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        weight = torch.cat([first.weight, second.weight], 1)  # one Linear on [a, c], as written in A.1
        return F.linear(torch.cat([a, c], -1), weight, first.bias)

    def concatenated(z1: torch.Tensor) -> torch.Tensor:
        g = F.leaky_relu(gen.stem(z1))
        for block, skip_block, skip in zip(gen.blocks, gen.skip_blocks, reversed(skips)):
            g = g + F.leaky_relu(joint(block, skip_block, g, skip))
        return joint(gen.head, gen.cond_head, g, cond)

    expected = torch.stack([concatenated(zk) for zk in z])
    torch.testing.assert_close(gen(z, skips, cond), expected, rtol=1e-5, atol=1e-5)


def test_split_linear_is_initialised_like_the_single_layer():
    torch.manual_seed(0)
    first, second = split_linear(300, 200, 64)
    bound = 1 / math.sqrt(500)  # nn.Linear's default init on 500 inputs
    for weight in (first.weight, second.weight, first.bias):
        assert weight.abs().max() <= bound and weight.abs().max() > 0.9 * bound
    assert second.bias is None


# --- model selection by validation IWAE -------------------------------------------------------------


def test_validation_score_is_a_finite_improving_iwae_that_ignores_the_truth(data):
    model = VAEAC(seed=0, **{**SMALL, "max_epochs": 6, "lr": 3e-3})
    model.fit(data.train, data.validation)
    scores = [epoch["val_iwae"] for epoch in model.epoch_history()]
    assert len(scores) == 6 and all(math.isfinite(s) for s in scores)
    assert scores[-1] < scores[0]
    assert model.last_fit.best_score == min(scores)
    assert "val_error" not in model.epoch_history()[0]  # selected on its IWAE only

    x, observed, truth = data.validation.table.x, data.validation.table.observed, data.validation.truth
    values = []
    for t in (truth, torch.randn_like(truth) * 100):
        model.on_validation_epoch_start()
        with torch.no_grad():
            model.validation_step((x, observed, t), 0)
        values.append(model._val_sum / model._val_rows)
    assert torch.equal(values[0], values[1])


def test_iwae_with_one_sample_is_the_bound_without_regulariser(data):
    """K = 1: log p(x_b|z) + log p(z) - log q(z) with z ~ q, whose mean is rec - KL of the training bound."""
    model = built(data.train.schema)
    x, observed, present, unobserved = _fixed_mask(data, model)
    with torch.no_grad():
        torch.manual_seed(0)
        single = torch.stack([model.iwae(x, observed, unobserved, 1) for _ in range(400)]).mean(0)
        terms = torch.stack([(lambda t: t["rec"] - t["kl"])(model.terms(x, observed, unobserved)) for _ in range(400)])
    assert torch.isfinite(single).all()
    assert torch.allclose(single, terms.mean(0), rtol=0.05, atol=0.5)
    with torch.no_grad():
        big = torch.stack([model.iwae(x, observed, unobserved, 50) for _ in range(20)]).mean(0)
    assert big.mean() > single.mean()  # the IWAE bound tightens with K (Burda et al. 2016, theorem 1)


# --- imputation ---------------------------------------------------------------------------------------


def test_imputation_uses_the_prior_network_given_the_missing_features(data):
    model = built(data.train.schema)
    x, observed = data.test.x[:16], data.test.observed[:16]
    seen = []
    hook = model.proposal_net.register_forward_hook(lambda m, i, out: seen.append(1))
    prior_inputs = []
    model.prior_net.register_forward_hook(lambda m, i, out: prior_inputs.append(i[0]))
    model.impute_batch(x, observed)
    hook.remove()
    assert not seen  # no proposal at test time
    b = prior_inputs[0][:, data.train.schema.encoded_dim :]
    assert torch.equal(b.bool(), ~model.layout.feature_mask(observed))
