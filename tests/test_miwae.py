"""MIWAE (Mattei & Frellsen 2019) against independent references.

The Student's t head against ``torch.distributions``; the training bound against a
reference written with ``torch.distributions`` on the same draws (K = 1: the ELBO;
K > 1: log-mean-exp, never below the mean single-sample ELBO); the SNIS single
imputation (weights sum to 1, complete rows unchanged, Monte Carlo error vanishing
with many samples) and SIR multiple imputation. Registry-wide checks live in
``tests/test_contracts.py``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch
from torch.distributions import Categorical, Normal, StudentT

from helpers import correlated_dataset
from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.table import MaskedTable
from imputebench.models.miwae import MIWAE
from imputebench.nn.heads import StudentTLikelihood, TabularLikelihood
from imputebench.schema import Feature, FeatureSchema

#: numeric, 3-category, numeric, 2-category
SCHEMA = FeatureSchema((
    Feature("a"),
    Feature("k", "categorical", ("x", "y", "z")),
    Feature("b", "positive"),
    Feature("yes_no", "categorical", ("n", "y")),
))


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return prepare(correlated_dataset(200, 0), get_protocol("vsae"), "mcar", 0.5, 0)


@pytest.fixture(scope="module")
def fitted(data) -> MIWAE:
    model = MIWAE(seed=0, max_epochs=3, patience=5, batch_size=32, n_importance_impute=200)
    return model.fit(data.train, data.validation)


def built(schema: FeatureSchema, **config: object) -> MIWAE:
    """An untrained MIWAE with its networks, in eval mode."""
    model = MIWAE(seed=0, **config)
    model.build_networks(schema)
    return model.eval()


def random_batch(n: int, seed: int, schema: FeatureSchema = SCHEMA) -> tuple[torch.Tensor, torch.Tensor]:
    """Complete encoded rows ``(n, D)`` (normal numerics, random one-hot) and a feature-consistent mask."""
    gen = torch.Generator().manual_seed(seed)
    values = torch.randn(n, len(schema), generator=gen)
    for j, feature in enumerate(schema.features):
        if feature.width > 1:
            values[:, j] = torch.randint(feature.width, (n,), generator=gen).float()
    observed = schema.expand(torch.rand(n, len(schema), generator=gen) < 0.6)
    return schema.one_hot(values), observed


# --- the Student's t head ----------------------------------------------------------------------


def test_student_t_head_matches_torch_distributions():
    head = StudentTLikelihood(SCHEMA)
    gen = torch.Generator().manual_seed(0)
    params = 3.0 * torch.randn(5, 7, head.param_dim, generator=gen, dtype=torch.float64)  # (..., P)
    x, _ = random_batch(7, 1)
    x = x.double().expand(5, -1, -1)
    got = head.log_prob(params, x)  # (5, 7, d)
    assert got.shape == (5, 7, len(SCHEMA))
    loc, scale, df = head.student_params(params)
    assert (scale >= 1e-3).all() and (df >= 3.0).all()
    numeric = [j for j, f in enumerate(SCHEMA.features) if f.width == 1]
    cols = [SCHEMA.offsets[j] for j in numeric]
    torch.testing.assert_close(got[..., numeric], StudentT(df, loc, scale).log_prob(x[..., cols]))
    torch.testing.assert_close(
        torch.nn.functional.softplus(params[..., head.encoded_dim :][..., :2]) + 1e-3, scale
    )
    for j, (feature, sl) in enumerate(zip(SCHEMA.features, SCHEMA.slices)):
        if feature.width > 1:
            expected = Categorical(logits=params[..., sl]).log_prob(x[..., sl].argmax(-1))
            torch.testing.assert_close(got[..., j], expected)
    # the one-hot part and the point predictions are those of the Gaussian head
    gaussian = TabularLikelihood(SCHEMA)
    torch.testing.assert_close(head.mean(params), gaussian.mean(params[..., : head.encoded_dim]))
    torch.testing.assert_close(head.mode(params), gaussian.mode(params[..., : head.encoded_dim]))


def test_student_t_head_is_finite_for_extreme_parameters_and_samples_one_hot():
    head = StudentTLikelihood(SCHEMA)
    params = torch.tensor([-1e4, 1e4, 0.0]).repeat_interleave(head.param_dim // 3 + 1)[: head.param_dim]
    params = torch.stack([params, -params, torch.zeros_like(params)])  # (3, P)
    x, _ = random_batch(3, 2)
    assert torch.isfinite(head.log_prob(params, 50.0 * x)).all()
    draws = head.sample(params.expand(4, -1, -1))  # (4, 3, D)
    assert torch.isfinite(draws).all()
    for feature, sl in zip(SCHEMA.features, SCHEMA.slices):
        if feature.width > 1:
            assert (draws[..., sl].sum(-1) == 1).all()


# --- the training bound ----------------------------------------------------------------------


def reference_log_weights(model: MIWAE, x: torch.Tensor, observed: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """log p(x_o | z) + log p(z) - log q(z | x_o) with torch.distributions and a loop over
    features, for z = mu + sigma * eps, ``eps`` ``(K, b, d_z)``. ``(K, b)``."""
    x = x * observed
    mu, logvar = model.encoder(x).chunk(2, -1)
    std = torch.exp(0.5 * logvar.clamp(-12.0, 10.0))
    z = mu + std * eps  # (K, b, d_z)
    params = model.decoder(z)  # (K, b, P)
    head, schema = model.likelihood, model.schema
    loc, scale, df = head.student_params(params)
    log_px = torch.zeros(z.shape[:2])
    numeric = 0
    for j, (feature, sl) in enumerate(zip(schema.features, schema.slices)):
        if feature.width == 1:
            term = StudentT(df[..., numeric], loc[..., numeric], scale[..., numeric]).log_prob(x[:, sl.start])
            numeric += 1
        else:
            term = Categorical(logits=params[..., sl]).log_prob(x[:, sl].argmax(-1))
        log_px = log_px + term * observed[:, sl.start]
    log_pz = Normal(0.0, 1.0).log_prob(z).sum(-1)
    log_qz = Normal(mu, std).log_prob(z).sum(-1)
    return log_px + log_pz - log_qz


@pytest.mark.parametrize("k", [1, 5])
def test_training_bound_matches_a_reference_on_the_same_draws(k):
    """K = 1: the single-sample ELBO; K > 1: log (1/K) sum_k w_k on the same K draws (eq. 4)."""
    model = built(SCHEMA, n_importance_train=k)
    x, observed = random_batch(16, 3)
    torch.manual_seed(7)
    loss = model.loss(x, observed)["loss"]
    torch.manual_seed(7)
    eps = torch.randn(k, 16, model.latent_dim)
    log_w = reference_log_weights(model, x, observed, eps)  # (K, b)
    expected = -(torch.logsumexp(log_w, 0) - math.log(k)).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    # Jensen on fixed draws: the IWAE bound is never below the mean of the K single-sample ELBOs
    assert (torch.logsumexp(log_w, 0) - math.log(k) >= log_w.mean(0) - 1e-5).all()


def test_bound_with_more_samples_is_higher_on_average():
    x, observed = random_batch(32, 4)
    torch.manual_seed(0)
    one = built(SCHEMA, n_importance_train=1)
    many = built(SCHEMA, n_importance_train=20)  # same weights (same build seed)
    with torch.no_grad():
        elbo = torch.stack([-one.loss(x, observed)["loss"] for _ in range(50)]).mean()
        iwae = torch.stack([-many.loss(x, observed)["loss"] for _ in range(50)]).mean()
    assert iwae > elbo


def test_bound_ignores_hidden_entries_and_gives_them_no_gradient():
    model = built(SCHEMA)
    x, observed = random_batch(16, 5)
    noise = 1000.0 * torch.randn(x.shape)
    values = []
    for batch in (x, torch.where(observed, x, noise)):
        batch = batch.clone().requires_grad_()
        torch.manual_seed(0)
        loss = model.loss(batch, observed)["loss"]
        loss.backward()
        assert (batch.grad[~observed] == 0).all() and batch.grad[observed].abs().sum() > 0
        values.append(loss.detach())
    assert torch.equal(values[0], values[1])


def test_a_hidden_feature_drops_exactly_its_term_from_the_bound():
    """With an encoder blind to its input (same q, same z), hiding feature j changes the log
    weight by exactly log p(x_j | z); the full-row weight matches the reference."""
    model = built(SCHEMA, n_importance_train=1)
    with torch.no_grad():
        model.encoder[0].weight.zero_()
    x = torch.tensor([[0.5, 0.0, 1.0, 0.0, -1.0, 1.0, 0.0]])
    full = torch.ones_like(x, dtype=torch.bool)
    hidden = full.clone()
    hidden[:, 1:4] = False  # the 3-category feature
    torch.manual_seed(0)
    params, log_full = model.particles(x, full, 1)
    torch.manual_seed(0)
    _, log_hidden = model.particles(x, hidden, 1)
    term = model.likelihood.log_prob(params, x.expand(1, -1, -1))[..., 1]  # (1, 1)
    torch.testing.assert_close(log_full - log_hidden, term)
    torch.manual_seed(0)
    eps = torch.randn(1, 1, model.latent_dim)
    torch.testing.assert_close(log_full, reference_log_weights(model, x, full, eps))


def test_latent_dimension_and_likelihood_options():
    assert built(SCHEMA).latent_dim == len(SCHEMA) - 1  # the paper's d = p - 1
    assert built(SCHEMA, latent_dim=5).latent_dim == 5
    assert isinstance(built(SCHEMA).likelihood, StudentTLikelihood)
    gaussian = built(SCHEMA, real_likelihood="gaussian")
    assert type(gaussian.likelihood) is TabularLikelihood and gaussian.likelihood.learn_scale
    x, observed = random_batch(8, 6)
    assert torch.isfinite(gaussian.loss(x, observed)["loss"])
    with pytest.raises(ValueError, match="real_likelihood"):
        built(SCHEMA, real_likelihood="laplace")
    with pytest.raises(ValueError, match="no_such_field"):
        MIWAE(seed=0, no_such_field=1)


# --- imputation ------------------------------------------------------------------------------


def test_snis_weights_sum_to_one():
    """A decoder that ignores z: every particle predicts c, so sum_l w_l c = c iff sum_l w_l = 1,
    although the weights themselves differ (p(z) / q(z | x_o) varies with z)."""
    model = built(SCHEMA)
    last = model.decoder[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.linspace(-2.0, 2.0, last.bias.numel()))
    x, observed = random_batch(16, 7)
    torch.manual_seed(0)
    _, log_w = model.particles(x, observed, 50)
    assert log_w.std(0).min() > 0  # non-uniform weights
    estimate = model.snis(x, observed, 50)
    constant = model.layout.argmax_one_hot(model.likelihood.mean(last.bias.detach()).expand(16, -1))
    torch.testing.assert_close(estimate, constant)


def test_complete_rows_are_returned_unchanged(fitted, data):
    table = data.complete(data.splits.test)
    assert torch.equal(fitted.impute(table), table.x)


def test_snis_estimate_is_deterministic_under_a_seed_and_converges(fitted, data):
    model = copy.deepcopy(fitted)
    model.cfg = replace(fitted.cfg, n_importance_impute=10000)  # the paper's L
    table = MaskedTable(data.test.x[:4], data.test.observed[:4], data.test.schema)
    first = model.impute(table)
    assert torch.equal(model.impute(table), first)  # same seed, same estimate, bit for bit
    model.seed = 1  # other importance samples
    other = model.impute(table)
    assert not torch.equal(other, first)
    numeric = ~table.observed & torch.tensor([f.width == 1 for f in table.schema.features for _ in range(f.width)])
    torch.testing.assert_close(other[numeric], first[numeric], atol=0.02, rtol=0.0)  # Monte Carlo error ~ L^-1/2


def test_sir_draws_average_to_the_snis_estimate(fitted, data):
    table = MaskedTable(data.test.x[:4], data.test.observed[:4], data.test.schema)
    draws = fitted.impute_multiple(table, 3000)  # (k, n, D)
    assert draws.shape == (3000, 4, table.schema.encoded_dim)
    assert torch.equal(draws[:, table.observed], table.x[table.observed].expand(3000, -1))
    snis = fitted.impute(table)
    hidden_numeric = ~table.observed
    hidden_numeric[:, 3:] = False  # the real columns a, b, c
    assert hidden_numeric.any()
    # SIR's particles are the same L per row for all k draws, so the mean carries their error too
    torch.testing.assert_close(draws.mean(0)[hidden_numeric], snis[hidden_numeric], atol=0.15, rtol=0.0)


def test_training_stays_finite_and_beats_the_untrained_bound(data):
    model = MIWAE(seed=0, max_epochs=15, patience=100, batch_size=32, n_importance_impute=100)
    losses = []
    model.on_train_epoch_end = lambda: (losses.append(float(model._sums["loss"]) / model._counts["loss"]),
                                        MIWAE.on_train_epoch_end(model))
    model.fit(data.train, data.validation)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    _, _, df = model.likelihood.student_params(model.decoder(torch.randn(100, model.latent_dim)))
    assert (df >= 3.0).all()
