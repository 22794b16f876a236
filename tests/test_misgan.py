"""MisGAN (Li, Jiang & Marlin 2019) against hand computations.

The masking operator f_tau; the WGAN-GP gradient penalty and critic loss on critics of
known gradient; every player's loss on a hand-made batch with networks of known outputs
(including the signs of the alpha and beta terms); the update ratio of critics to
generators, counted across epochs; the mask generator's range; the imputer keeping
observed entries; the [0, 1] scaling; the players' Adam settings; configuration errors.
Registry-wide checks live in ``tests/test_contracts.py``; full training runs in
``benchmarks/quality.py`` (its ``gan-varies`` and beat-the-mean checks).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from helpers import Constant, correlated_dataset
from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.table import MaskedTable
from imputebench.models.misgan import CRITICS, GENERATORS, MisGAN, fusion_mask, mask_data
from imputebench.nn.adversarial import critic_loss, gradient_penalty
from imputebench.schema import Feature, FeatureSchema

#: numeric, 3-category, numeric: encoded columns 0 | 1 2 3 | 4
SCHEMA = FeatureSchema((Feature("a"), Feature("k", "categorical", ("x", "y", "z")), Feature("b")))


def linear(weights: list[float], bias: float) -> nn.Linear:
    """A linear critic D(v) = v @ w + c."""
    layer = nn.Linear(len(weights), 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weights]))
        layer.bias.fill_(bias)
    return layer


def built(schema: FeatureSchema = SCHEMA, **config: object) -> MisGAN:
    return MisGAN(seed=0, **config).build_networks(schema).eval()


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return prepare(correlated_dataset(200, 0), get_protocol("vsae"), "mcar", 0.5, 0)


# --- the masking operator and the mask generator's output ------------------------------------------


def test_masking_operator_keeps_observed_entries_and_fills_tau_elsewhere():
    x = torch.tensor([[0.2, 0.7, 0.9], [0.4, 0.1, 0.3]])
    m = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(mask_data(x, m, 0.0), torch.tensor([[0.2, 0.0, 0.9], [0.0, 0.0, 0.3]]))
    torch.testing.assert_close(mask_data(x, m, -1.0), torch.tensor([[0.2, -1.0, 0.9], [-1.0, -1.0, 0.3]]))
    soft = torch.tensor([[0.5, 0.25, 1.0]])  # generated masks are in [0, 1]: f_tau interpolates
    torch.testing.assert_close(mask_data(x[:1], soft, 0.0), torch.tensor([[0.1, 0.175, 0.9]]))


def test_mask_generator_outputs_lie_in_the_unit_interval_with_exact_zeros_and_ones():
    logits = torch.linspace(-20, 20, 401)
    out = fusion_mask(logits)
    assert (out >= 0).all() and (out <= 1).all()
    assert (out == 0).any() and (out == 1).any()
    assert (out.diff() >= 0).all()  # monotone
    assert fusion_mask(torch.zeros(1)).item() == pytest.approx(0.5)  # 1.2 * sigmoid(0) - 0.1
    model = built()
    with torch.no_grad():
        masks = model.generate_mask(500, torch.zeros(1))
    assert masks.shape == (500, len(SCHEMA)) and (masks >= 0).all() and (masks <= 1).all()


# --- WGAN-GP -----------------------------------------------------------------------------------------


def test_gradient_penalty_of_a_linear_critic_is_the_squared_distance_of_its_norm_from_one():
    critic = linear([3.0, 4.0], 0.5)  # grad = w everywhere: ||w|| = 5
    real, fake = torch.rand(16, 2), torch.rand(16, 2)
    torch.testing.assert_close(gradient_penalty(critic, real, fake), torch.tensor(16.0))
    loss, real_score, fake_score = critic_loss(critic, real, fake, 10.0)
    torch.testing.assert_close(real_score, real @ torch.tensor([3.0, 4.0]) + 0.5)
    torch.testing.assert_close(loss, fake_score.mean() - real_score.mean() + 160.0)
    with torch.no_grad():  # the penalty builds its own graph even where gradients are off
        torch.testing.assert_close(gradient_penalty(critic, real, fake), torch.tensor(16.0))


def test_gradient_penalty_is_taken_at_random_interpolates_and_trains_the_critic_only():
    """D(v) = ||v||^2 / 2 has gradient v, so the penalty is mean((||xi|| - 1)^2) at the interpolates."""
    critic = lambda v: 0.5 * v.pow(2).sum(-1)  # noqa: E731
    real = torch.randn(8, 3, requires_grad=True)
    fake = torch.randn(8, 3, requires_grad=True)
    torch.manual_seed(5)
    got = gradient_penalty(critic, real, fake)
    torch.manual_seed(5)
    eps = torch.rand(8, 1)
    between = eps * real.detach() + (1 - eps) * fake.detach()
    torch.testing.assert_close(got, (between.norm(dim=1) - 1).pow(2).mean())
    assert torch.autograd.grad(got, [real, fake], allow_unused=True) == (None, None)  # real, fake detached
    layer = linear([1.0, -2.0, 0.5], 0.0)
    assert torch.autograd.grad(gradient_penalty(layer, real, fake), layer.weight)[0].abs().sum() > 0


# --- the players' losses ---------------------------------------------------------------------------


def test_every_players_loss_on_a_hand_made_batch():
    """Generators and imputer output logit 0 (data 0.5, mask fusion(0) = 0.5); linear critics;
    identity scaling; two numeric features, so f_0(G_x, G_m) = 0.25 everywhere."""
    schema = FeatureSchema((Feature("a"), Feature("b")))
    alpha, beta, gp = 0.2, 0.1, 10.0
    model = built(schema, alpha=alpha, beta=beta, gp_weight=gp)
    model.data_generator, model.mask_generator, model.imputer = Constant(2, 0.0), Constant(2, 0.0), Constant(2, 0.0)
    wx, wm, wi = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.5]), torch.tensor([0.3, -0.7])
    model.data_critic, model.mask_critic = linear(wx.tolist(), 0.1), linear(wm.tolist(), -0.2)
    model.imputer_critic = linear(wi.tolist(), 0.4)
    x = torch.tensor([[0.2, 0.8], [0.6, 0.0]])
    observed = torch.tensor([[True, False], [True, True]])
    parts = model.loss(x, observed)

    m = observed.float()
    real = m * x  # f_0(x, m)
    fake = torch.full((2, 2), 0.25)  # f_0(0.5, 0.5)
    fake_x, fake_m = torch.full((2, 2), 0.5), torch.full((2, 2), 0.5)
    imputed = torch.tensor([[0.2, 0.5], [0.6, 0.0]])  # observed kept, 0.5 elsewhere
    penalty = lambda w: gp * (w.norm() - 1) ** 2  # noqa: E731
    d_x = lambda v: v @ wx + 0.1  # noqa: E731
    d_m = lambda v: v @ wm - 0.2  # noqa: E731
    d_i = lambda v: v @ wi + 0.4  # noqa: E731
    data_loss, mask_loss = -d_x(fake).mean(), -d_m(fake_m).mean()
    expected = {
        "data_critic": d_x(fake).mean() - d_x(real).mean() + penalty(wx),
        "mask_critic": d_m(fake_m).mean() - d_m(m).mean() + penalty(wm),
        "imputer_critic": d_i(imputed).mean() - d_i(fake_x).mean() + penalty(wi),
        "mask_generator": mask_loss + alpha * data_loss,
        "data_generator": data_loss + beta * d_i(fake_x).mean(),
        "imputer": -d_i(imputed).mean(),
    }
    for name, value in expected.items():
        torch.testing.assert_close(parts[name], value, msg=name)
    torch.testing.assert_close(parts["loss"], sum(expected.values()))


# --- training schedule -----------------------------------------------------------------------------


@pytest.mark.parametrize("n_critic", [1, 3])
def test_generators_step_once_every_n_critic_critic_steps_across_epochs(n_critic, data):
    model = MisGAN(seed=0, n_critic=n_critic, max_epochs=2, patience=5, batch_size=32, n_imputations=2)
    steps: list[tuple[str, ...]] = []
    original = model.step_players
    model.step_players = lambda parts, names: (steps.append(tuple(names)), original(parts, names))
    model.fit(data.train, data.validation)
    batches = 2 * math.ceil(data.train.n_rows / 32)  # 2 epochs of 4 batches: the counter runs on
    expected = []
    for batch in range(1, batches + 1):
        expected.append(CRITICS)
        if batch % n_critic == 0:
            expected.append(GENERATORS)
    assert steps == expected
    assert GENERATORS == ("mask_generator", "data_generator", "imputer")  # the authors' order


def test_players_take_the_authors_adam_settings():
    players = built().players()
    assert set(players) == set(CRITICS) | set(GENERATORS)
    for name, player in players.items():
        assert player.betas == (0.5, 0.9)
        assert player.lr == (2e-4 if name in ("imputer", "imputer_critic") else 1e-4)


# --- imputation and scaling -------------------------------------------------------------------------


def test_imputer_keeps_observed_entries_and_draws_blocks_on_the_simplex():
    model = built()
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(50, SCHEMA.encoded_dim, generator=gen)
    m = SCHEMA.expand(torch.rand(50, len(SCHEMA), generator=gen) < 0.5).float()
    with torch.no_grad():
        first, second = model.impute_unit(u, m), model.impute_unit(u, m)
    assert torch.equal(first[m == 1], u[m == 1])  # exactly
    hidden = m == 0
    assert (first[hidden] >= 0).all() and (first[hidden] <= 1).all()
    assert not torch.equal(first[hidden], second[hidden])  # the noise w makes draws differ
    rows = hidden[:, 1]
    torch.testing.assert_close(first[rows, 1:4].sum(-1), torch.ones(int(rows.sum())))


def test_scaling_covers_numeric_columns_from_observed_training_entries_only():
    gen = torch.Generator().manual_seed(0)
    x = SCHEMA.one_hot(torch.stack([torch.randn(100, generator=gen), torch.randint(3, (100,), generator=gen).float(),
                                    5 + torch.randn(100, generator=gen)], 1))
    observed = SCHEMA.expand(torch.rand(100, 3, generator=gen) < 0.6)
    model = built()
    model.fit_statistics(MaskedTable(x * observed, observed, SCHEMA))
    low, span = model.scaler.low.clone(), model.scaler.span.clone()
    model.fit_statistics(MaskedTable(torch.where(observed, x, torch.full_like(x, -1e6)), observed, SCHEMA))
    assert torch.equal(model.scaler.low, low) and torch.equal(model.scaler.span, span)
    for col in (0, 4):
        seen = x[observed[:, col], col]
        assert low[col] == seen.min() and span[col] == pytest.approx(float(seen.max() - seen.min()) + 1e-6)
    assert torch.equal(low[1:4], torch.zeros(3)) and torch.equal(span[1:4], torch.ones(3))


# --- configuration ----------------------------------------------------------------------------------


def test_defaults_are_the_authors_and_the_papers():
    cfg = MisGAN(seed=0).cfg
    assert (cfg.alpha, cfg.beta, cfg.tau, cfg.n_critic, cfg.gp_weight) == (0.2, 0.1, 0.0, 5, 10.0)
    assert (cfg.lr, cfg.imputer_lr, cfg.batch_size, cfg.latent_dim, cfg.max_epochs) == (1e-4, 2e-4, 64, 128, 1000)
    assert MisGAN(seed=0).epoch_budget(57) == (1000, 1000)  # every epoch trained, as the authors do
    assert MisGAN(seed=0, max_epochs=20, patience=5).epoch_budget(57) == (20, 5)


@pytest.mark.parametrize("field, value, message", [
    ("n_critic", 0, "n_critic"),
    ("latent_dim", 0, "latent_dim"),
    ("gp_weight", -1.0, "gp_weight"),
    ("alpha", -0.2, "alpha"),
    ("beta", -0.1, "beta"),
    ("imputer_lr", 0.0, "imputer_lr"),
    ("imputer_width", 0, "imputer_width"),
])
def test_bad_configuration_values_are_clear_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        MisGAN(seed=0, **{field: value})
