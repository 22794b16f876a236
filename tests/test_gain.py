"""GAIN (Yoon et al. 2018) and the VAEAC paper's variant (appendix A.4), against hand computations.

The hint's distribution as the discriminator receives it; the [0, 1] scaling fitted on
observed training entries only; the discriminator and generator losses on a hand-made
batch with networks of known outputs; eq. (12)'s mixed reconstruction loss; outputs in
[0, 1] and imputations back in the encoded space with one-hot categories; the update
schedule; the iteration budget in epochs; configuration errors; and GAIN beating mean
imputation on a correlated table. Registry-wide checks live in ``tests/test_contracts.py``.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import Constant, correlated_dataset
from torch import nn

from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.table import MaskedTable
from imputebench.evaluate import score
from imputebench.models.gain import GAIN, GAINVAEAC, discriminator_loss, generator_adversarial_loss, sample_hint
from imputebench.models.registry import get_model
from imputebench.nn.unit_range import MinMaxScaler
from imputebench.schema import Feature, FeatureSchema

#: numeric, 3-category, numeric, 2-category: encoded columns 0 | 1 2 3 | 4 | 5 6
SCHEMA = FeatureSchema((
    Feature("a"),
    Feature("k", "categorical", ("x", "y", "z")),
    Feature("b"),
    Feature("yes_no", "categorical", ("n", "y")),
))


def built(cls: type[GAIN] = GAIN, schema: FeatureSchema = SCHEMA, **config: object) -> GAIN:
    model = cls(seed=0, **config)
    return model.build_networks(schema).eval()


def random_batch(n: int, seed: int, schema: FeatureSchema = SCHEMA, p_observed: float = 0.6):
    """Complete encoded rows ``(n, D)`` (normal numerics, random one-hot) and a feature-consistent mask."""
    gen = torch.Generator().manual_seed(seed)
    values = torch.randn(n, len(schema), generator=gen)
    for j, feature in enumerate(schema.features):
        if feature.width > 1:
            values[:, j] = torch.randint(feature.width, (n,), generator=gen).float()
    observed = schema.expand(torch.rand(n, len(schema), generator=gen) < p_observed)
    return schema.one_hot(values), observed


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return prepare(correlated_dataset(1000, 0), get_protocol("vsae"), "mcar", 0.5, 0)


# --- the hint ---------------------------------------------------------------------------------


def test_hint_reveals_the_mask_at_the_hint_rate_and_is_one_half_elsewhere():
    torch.manual_seed(0)
    mask = (torch.rand(400, 50) < 0.3).float()
    for rate in (0.9, 0.01):
        hint = sample_hint(mask, rate)
        revealed = hint != 0.5
        assert torch.equal(hint[revealed], mask[revealed])  # where revealed, h = m
        assert abs(revealed.float().mean().item() - rate) < 0.01  # 20,000 draws: sd < 0.0022
        for value in (0.0, 1.0):  # independent of the mask
            assert abs(revealed[mask == value].float().mean().item() - rate) < 0.02


@pytest.mark.parametrize("cls, rate", [(GAIN, 0.9), (GAINVAEAC, 0.01)])
def test_discriminator_receives_the_hint_of_its_configuration(cls, rate):
    """The hint columns of D's input, per feature: m where revealed (a fraction ``rate``), 0.5 elsewhere."""
    model = built(cls)
    seen = []
    model.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    x, observed = random_batch(5000, 0)
    torch.manual_seed(1)
    model.loss(x, observed)
    hint = seen[0][:, -len(SCHEMA):]  # (b, d): D's input is [xhat, h]
    mask = model.layout.feature_mask(observed).float()
    revealed = hint != 0.5
    assert torch.equal(hint[revealed], mask[revealed])
    assert abs(revealed.float().mean().item() - rate) < 0.01


# --- [0, 1] scaling -------------------------------------------------------------------------------


def test_scaler_uses_observed_entries_only_and_inverts():
    values = torch.tensor([[1.0, 5.0, 0.0], [3.0, -1.0, 0.0], [2.0, 7.0, 0.0], [1e6, -1e6, 1e6]])
    observed = torch.tensor([[True, True, False], [True, True, False], [True, False, False], [False, False, False]])
    scaler = MinMaxScaler(3).fit(values, observed, torch.tensor([True, True, True]))
    # column 0: observed 1, 3, 2; column 1: observed 5, -1; column 2: nothing observed -> identity
    torch.testing.assert_close(scaler.low, torch.tensor([1.0, -1.0, 0.0]))
    torch.testing.assert_close(scaler.span, torch.tensor([2.0 + 1e-6, 6.0 + 1e-6, 1.0]))
    unit = scaler(values[:3])
    assert (unit[observed[:3]] >= 0).all() and (unit[observed[:3]] <= 1).all()
    torch.testing.assert_close(scaler.inverse(unit), values[:3])
    kept = MinMaxScaler(3).fit(values, observed, torch.tensor([False, True, False]))  # column 0 not scaled
    torch.testing.assert_close(kept.low, torch.tensor([0.0, -1.0, 0.0]))
    torch.testing.assert_close(kept.span[[0, 2]], torch.ones(2))


@pytest.mark.parametrize("cls", [GAIN, GAINVAEAC])
def test_model_scaling_comes_from_observed_training_entries_and_ignores_hidden_values(cls):
    x, observed = random_batch(300, 0)
    model = built(cls)
    model.fit_statistics(MaskedTable(x * observed, observed, SCHEMA))
    low, span = model.scaler.low.clone(), model.scaler.span.clone()
    extreme = torch.where(observed, x, torch.full_like(x, 1e6))  # every hidden entry huge
    model.fit_statistics(MaskedTable(extreme, observed, SCHEMA))
    assert torch.equal(model.scaler.low, low) and torch.equal(model.scaler.span, span)
    values, mask = model.represent(x * observed, observed)
    unit = model.scaler(values)[mask]
    assert unit.min() == 0 and 0.999 < unit.max() <= 1  # the observed range maps onto [0, 1]
    if cls is GAINVAEAC:  # one-hot columns stay as they are; numeric columns 0 and 4 are scaled
        assert torch.equal(model.scaler.low[[1, 2, 3, 5, 6]], torch.zeros(5))
        assert torch.equal(model.scaler.span[[1, 2, 3, 5, 6]], torch.ones(5))
    else:  # category codes are scaled like numbers (the authors' code): k has codes 0..2
        assert model.scaler.low[1] == 0 and model.scaler.span[1] == pytest.approx(2.0, abs=1e-5)


def test_imputations_are_mapped_back_to_the_encoded_space_with_one_hot_categories():
    gain, vaeac = built(GAIN), built(GAINVAEAC)
    gain.scaler.low.copy_(torch.tensor([10.0, 0.0, -1.0, 0.0]))
    gain.scaler.span.copy_(torch.tensor([2.0, 2.0, 4.0, 1.0]))
    unit = torch.tensor([[0.5, 0.1, 0.0, 0.4], [1.0, 0.8, 1.0, 0.6], [0.0, 0.45, 0.25, 1.0]])  # (b, d)
    # numeric: low + span * u; codes 0.2 -> 0, 1.6 -> 2 (nearest), 0.9 -> 1; 0.4 -> 0, 0.6 -> 1, 1 -> 1
    expected = torch.tensor([
        [11.0, 1, 0, 0, -1.0, 1, 0],
        [12.0, 0, 0, 1, 3.0, 0, 1],
        [10.0, 0, 1, 0, 0.0, 0, 1],
    ])
    torch.testing.assert_close(gain.to_encoded(unit), expected)
    vaeac.scaler.low.copy_(torch.tensor([10.0, 0, 0, 0, -1.0, 0, 0]))
    vaeac.scaler.span.copy_(torch.tensor([2.0, 1, 1, 1, 4.0, 1, 1]))
    probabilities = torch.tensor([[0.5, 0.2, 0.5, 0.3, 0.25, 0.9, 0.1]])
    torch.testing.assert_close(vaeac.to_encoded(probabilities), torch.tensor([[11.0, 0, 1, 0, 0.0, 1, 0]]))


# --- the networks and the losses ------------------------------------------------------------------


@pytest.mark.parametrize("cls", [GAIN, GAINVAEAC])
def test_generator_outputs_lie_in_the_unit_interval_and_blocks_are_distributions(cls):
    model = built(cls)
    with torch.no_grad():
        for layer in model.generator.modules():
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(50.0)  # saturate
        x, observed = random_batch(200, 3)
        _, _, xbar, _ = model.complete(100.0 * x, observed)
    assert (xbar >= 0).all() and (xbar <= 1).all()
    if cls is GAINVAEAC:
        for cols in (slice(1, 4), slice(5, 7)):
            torch.testing.assert_close(xbar[:, cols].sum(-1), torch.ones(200))


def test_discriminator_and_generator_losses_on_a_hand_made_batch():
    """G outputs 0.5 everywhere (logit 0), D outputs sigmoid(0.7) everywhere; scaling is the identity."""
    schema = FeatureSchema((Feature("a"), Feature("b"), Feature("c")))
    model = built(GAIN, schema, alpha=3.0)
    model.generator, model.discriminator = Constant(3, 0.0), Constant(3, 0.7)
    x = torch.tensor([[0.2, 0.9, 0.0], [0.0, 0.4, 1.0]])
    observed = torch.tensor([[True, True, False], [False, True, True]])
    parts = model.loss(x, observed)
    m = observed.float()
    d = torch.sigmoid(torch.tensor(0.7))
    expected_d = -(m * torch.log(d) + (1 - m) * torch.log(1 - d)).mean()
    expected_adversarial = -((1 - m) * torch.log(d)).mean()
    expected_reconstruction = ((0.2 - 0.5) ** 2 + (0.9 - 0.5) ** 2 + (0.4 - 0.5) ** 2 + (1.0 - 0.5) ** 2) / 4
    torch.testing.assert_close(parts["discriminator"], expected_d)
    torch.testing.assert_close(parts["adversarial"], expected_adversarial)
    torch.testing.assert_close(parts["reconstruction"], torch.tensor(expected_reconstruction))
    torch.testing.assert_close(parts["generator"], expected_adversarial + 3.0 * expected_reconstruction)
    torch.testing.assert_close(parts["loss"], parts["discriminator"] + parts["generator"])
    # the functions against torch's own binary cross-entropy on probabilities
    logits = torch.randn(5, 4)
    mask = (torch.rand(5, 4) < 0.5).float()
    expected = nn.functional.binary_cross_entropy(logits.sigmoid(), mask)
    torch.testing.assert_close(discriminator_loss(logits, mask), expected)
    torch.testing.assert_close(generator_adversarial_loss(logits, mask), -((1 - mask) * logits.sigmoid().log()).mean())


def test_vaeac_variant_mixed_reconstruction_loss_of_eq_12():
    """Uniform categories (logit 0) and 0.5 for numerics; scaling the identity. Row 0 observes
    a = 1 and k = x; row 1 observes b = 0 and yes_no = y; the rest is hidden."""
    model = built(GAINVAEAC)
    model.generator = Constant(SCHEMA.encoded_dim, 0.0)
    x = torch.tensor([[1.0, 1, 0, 0, 0.0, 0, 0], [0.0, 0, 0, 0, 0.0, 0, 1]])
    observed = SCHEMA.expand(torch.tensor([[True, True, False, False], [False, False, True, True]]))
    u, m, xbar, log_xbar = model.complete(x, observed)
    numeric_a, numeric_b = (1.0 - 0.5) ** 2, (0.0 - 0.5) ** 2
    k = 0.2 * -math.log(1 / 3) / 3 + 0.8 * ((1 - 1 / 3) ** 2 + 2 * (1 / 3) ** 2) / 3
    yes_no = 0.2 * -math.log(1 / 2) / 2 + 0.8 * (2 * (1 / 2) ** 2) / 2
    expected = (numeric_a + k + numeric_b + yes_no) / 4  # mean over the observed features
    torch.testing.assert_close(model.reconstruction(u, m, xbar, log_xbar), torch.tensor(expected))


# --- training ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [GAIN, GAINVAEAC])
def test_each_batch_takes_a_discriminator_step_then_a_generator_step(cls, data):
    model = cls(seed=0, max_epochs=1, batch_size=128, n_imputations=2)
    steps: list[tuple[str, ...]] = []
    original = model.step_players
    model.step_players = lambda parts, names: (steps.append(tuple(names)), original(parts, names))
    model.fit(data.train, data.validation)
    batches = math.ceil(data.train.n_rows / 128)
    assert steps == [("discriminator",), ("generator",)] * batches


def test_iterations_become_epochs_of_the_training_table(data):
    model = GAIN(seed=0, iterations=1000)
    assert model.epoch_budget(7) == (143, 143)  # ceil(1000 / 7), every epoch trained
    assert GAIN(seed=0, iterations=1000, max_epochs=5, patience=2).epoch_budget(7) == (5, 2)
    fitted = GAIN(seed=0, iterations=12, batch_size=128, n_imputations=2).fit(data.train, data.validation)
    assert fitted.training_summary()["epochs"] == math.ceil(12 / math.ceil(data.train.n_rows / 128))


@pytest.mark.parametrize("name", ["gain", "gain_vaeac"])
def test_beats_mean_imputation_on_a_correlated_table(name, data):
    model = get_model(name)(seed=0, iterations=1000, batch_size=32, n_imputations=2).fit(data.train, data.validation)
    mean = get_model("mean")(seed=0).fit(data.train, data.validation)
    got, base = score(data, model.impute(data.test)), score(data, mean.impute(data.test))
    assert got["nrmse"] < 0.95 * base["nrmse"], (got, base)


# --- configuration ----------------------------------------------------------------------------------


def test_defaults_are_the_authors_and_the_vaeac_papers():
    gain, vaeac = GAIN(seed=0).cfg, GAINVAEAC(seed=0).cfg
    assert (gain.hint_rate, gain.alpha, gain.categorical) == (0.9, 100.0, "codes")
    assert (gain.lr, gain.batch_size, gain.iterations, gain.noise_scale) == (1e-3, 128, 10_000, 0.01)
    assert (vaeac.hint_rate, vaeac.alpha, vaeac.categorical) == (0.01, 10.0, "one_hot")
    assert GAIN(seed=0, categorical="one_hot").cfg.categorical == "one_hot"  # the A.4 treatment as a field


@pytest.mark.parametrize("field, value, message", [
    ("categorical", "onehot", "categorical = .onehot.: Input should be .codes. or .one_hot."),
    ("hint_rate", 1.5, "hint_rate"),
    ("alpha", -1.0, "alpha"),
    ("noise_scale", -0.1, "noise_scale"),
    ("iterations", 0, "iterations"),
])
def test_bad_configuration_values_are_clear_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        GAIN(seed=0, **{field: value})
