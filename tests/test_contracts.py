"""The imputer contract, checked for every registered model (like scikit-learn's ``parametrize_with_checks``).

Every test is parametrised over :func:`imputebench.models.registry.model_names`,
so a newly registered model is checked without touching this file. Deep-model
checks (``loss``, gradients, optimiser steps, multiple imputation, generation)
apply to every :class:`~imputebench.models.base.ImputerModule`. Where a model has
several players (GAIN, MisGAN: each network minimises its own part of ``loss``
with its own Adam), the checks of gradients and optimiser steps hold per player;
a likelihood model is the case of one player, ``loss``, owning every parameter.

The tests use a 200-row synthetic table (128 training rows) and two epochs.
Whether each model beats mean imputation is checked by ``tests/test_quality_smoke.py``
(every deep model, a short schedule) and ``benchmarks/quality.py`` (every model, full
schedules, synthetic data and Yeast). torch runs on one thread here: these networks are
too small to gain from more, and results are then reproducible bit for bit on one machine.
"""

from __future__ import annotations

import dataclasses
import copy
import inspect
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from helpers import ADVERSARIAL, correlated_dataset, training_table
from imputebench.data.dataset import Dataset
from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.table import MaskedTable, ValidationSplit
from imputebench.models.base import DivergedError, ImputerModule
from imputebench.models.imputer import Imputer
from imputebench.models.registry import get_model, model_names
from imputebench.runner.worker import DataCache, run_trial
from imputebench.runner.trials import Trial
from imputebench.schema import Feature, FeatureSchema

MODELS = model_names()
DEEP = [name for name in MODELS if issubclass(get_model(name), ImputerModule)]
GENERATORS = [name for name in DEEP if hasattr(get_model(name), "generate")]

#: classical baselines with a small budget (their constructors take these keywords)
CLASSICAL_FAST = {"mice": dict(max_iter=2, n_imputations=2), "missforest": dict(max_iter=2, n_estimators=10, n_jobs=1)}

def fast_config(name: str, **overrides: object) -> dict:
    """A configuration that trains in well under a second on the 200-row table."""
    cls = get_model(name)
    if not issubclass(cls, ImputerModule):
        return {**CLASSICAL_FAST.get(name, {}), **overrides}
    config = dict(max_epochs=2, patience=5, batch_size=32, n_imputations=2)
    if "warmup_epochs" in cls.config_fields():  # reach VSAE's second stage (generated x_u) in epoch 2
        config["warmup_epochs"] = 1
    return {**config, **overrides}


def fit(name: str, data: PreparedData, seed: int = 0, **overrides: object) -> Imputer:
    """A fresh model fitted as the runner fits it, with the fast configuration."""
    model = get_model(name)(seed=seed, **fast_config(name, **overrides))
    return model.fit(training_table(model, data), data.validation)


def scramble(table: MaskedTable, seed: int) -> MaskedTable:
    """``table`` with every hidden entry of ``x`` replaced by a large random value; observed ones kept."""
    gen = torch.Generator().manual_seed(seed)
    noise = 1000.0 * (torch.rand(table.x.shape, generator=gen, dtype=table.x.dtype) - 0.5)
    noise = torch.where(noise.abs() < 10, noise + 100.0, noise)  # never near the 0 fill
    return dataclasses.replace(table, x=torch.where(table.observed, table.x, noise))


def build(name: str, schema, seed: int = 0) -> ImputerModule:
    """A deep model with its networks created exactly as ``fit`` creates them, untrained."""
    model = get_model(name)(seed=seed, **fast_config(name))
    model.build_networks(schema)
    return model


@contextmanager
def scratch(model: ImputerModule):
    """Use a fitted model for forward/backward passes, then restore it: a training-mode pass
    updates batch-norm running statistics, and later tests reuse the cached model."""
    state, training = copy.deepcopy(model.state_dict()), model.training
    try:
        yield model
    finally:
        model.load_state_dict(state)
        model.zero_grad(set_to_none=True)
        model.train(training)


def assert_one_hot_blocks(values: torch.Tensor, schema) -> None:
    for feature, cols in zip(schema.features, schema.slices):
        if feature.width > 1:
            block = values[..., cols]
            assert ((block == 0) | (block == 1)).all() and (block.sum(-1) == 1).all(), feature.name


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return prepare(correlated_dataset(200, 0), get_protocol("vsae"), "mcar", 0.5, 0)


@pytest.fixture(scope="module")
def fitted(data):
    """``fitted(name)``: the model fitted once with seed 0 and the fast configuration (cached)."""
    cache: dict[str, Imputer] = {}

    def get(name: str) -> Imputer:
        if name not in cache:
            cache[name] = fit(name, data)
        return cache[name]

    return get


def test_the_registry_holds_the_expected_models():
    deep = {"ae", "vae", "cvae_mask", "cvae_data", "vsae", "vaeac", "hivae", "miwae", "mvae", "mopoe", "mrvae"}
    deep |= set(ADVERSARIAL)
    assert {"mean", "mice", "missforest"} | deep <= set(MODELS)
    assert set(DEEP) >= deep
    for name in MODELS:
        cls = get_model(name)
        assert issubclass(cls, Imputer) and cls.name == name and cls.paper


# --- 1, 2: shape, finiteness, observed entries ------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_imputations_are_finite_one_hot_and_keep_observed_entries(name, fitted, data):
    model = fitted(name)
    for split, table in (("train", data.train), ("val", data.val), ("test", data.test)):
        out = model.impute(table)
        assert out.shape == (table.n_rows, table.schema.encoded_dim), split
        assert out.dtype == table.x.dtype, split
        assert torch.isfinite(out).all(), split
        assert torch.equal(out[table.observed], table.x[table.observed]), split  # exactly, not approximately
        assert_one_hot_blocks(out, table.schema)


@pytest.mark.parametrize("name", MODELS)
def test_complete_rows_come_back_unchanged(name, fitted, data):
    table = data.complete(data.splits.test)
    assert torch.equal(fitted(name).impute(table), table.x)


@pytest.mark.parametrize("name", MODELS)
def test_imputation_is_repeatable_and_leaves_the_global_rng_alone(name, fitted, data):
    model = fitted(name)
    state = torch.random.get_rng_state()
    first = model.impute(data.test)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(model.impute(data.test), first)


# --- 3: no leakage of hidden values -------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_hidden_values_cannot_leak_into_training_or_imputation(name, fitted, data):
    """Scrambling every hidden entry of train, validation and test changes nothing.

    For a model trained on complete data (cvae_data) the training table has no hidden
    entry; the check then covers the validation and test tables.
    """
    clean = fitted(name)
    model = get_model(name)(seed=0, **fast_config(name))
    train = training_table(model, data)
    val = ValidationSplit(scramble(data.validation.table, 2), data.validation.truth)
    model.fit(scramble(train, 1), val)
    test = scramble(data.test, 3)
    assert torch.equal(model.impute(test), clean.impute(data.test))
    assert torch.equal(clean.impute(test), clean.impute(data.test))


@pytest.mark.parametrize("name", DEEP)
def test_training_step_ignores_hidden_values_and_gives_them_no_gradient(name, fitted, data):
    """What ``fit`` feeds the loss (via ``training_loss``) on a partially observed batch, in training mode."""
    x, observed = data.train.x[:64], data.train.observed[:64]
    assert (~observed).any()
    losses = []
    for batch in (x, scramble(data.train, 1).x[:64]):
        with scratch(fitted(name)) as model:
            model.train()
            model.on_train_epoch_start()
            batch = batch.clone().requires_grad_()
            torch.manual_seed(0)
            loss = model.training_loss((batch, observed))
            loss.backward()
        assert torch.isfinite(loss)
        assert (batch.grad[~observed] == 0).all()
        assert batch.grad[observed].abs().sum() > 0
        losses.append(loss.detach())
    assert torch.equal(losses[0], losses[1])


@pytest.mark.parametrize("name", DEEP)
def test_loss_itself_ignores_hidden_values(name, fitted, data):
    """``loss(x, observed)`` on a partially observed batch, in eval mode (fixed batch-norm
    statistics) and under the same torch seed: the values at hidden entries do not matter."""
    x, observed = data.train.x[:64], data.train.observed[:64]
    values = []
    for batch in (x, scramble(data.train, 1).x[:64]):
        with scratch(fitted(name)) as model, torch.no_grad():
            model.eval()
            torch.manual_seed(0)
            values.append(model.loss(batch, observed)["loss"])
    assert torch.isfinite(values[0])
    assert torch.equal(values[0], values[1])


@pytest.mark.parametrize("name", DEEP)
def test_loss_gradient_is_zero_at_hidden_inputs(name, fitted, data):
    """Every player's part of the loss has zero gradient at hidden inputs (a part may not depend on
    the data at all: a mask critic's); the whole loss has a gradient at observed ones."""
    observed = data.train.observed[:64]
    with scratch(fitted(name)) as model:
        model.eval()
        for part in dict.fromkeys(("loss", *model.players())):  # a likelihood model: "loss" once
            x = data.train.x[:64].clone().requires_grad_()
            torch.manual_seed(0)
            (grad,) = torch.autograd.grad(model.loss(x, observed)[part], x, allow_unused=True)
            grad = torch.zeros_like(x) if grad is None else grad
            assert torch.isfinite(grad).all(), part
            assert (grad[~observed] == 0).all(), (part, float(grad[~observed].abs().max()))
            if part == "loss":
                assert grad[observed].abs().sum() > 0


# --- 5: training moves the weights ----------------------------------------------------------------


@pytest.mark.parametrize("name", DEEP)
def test_players_partition_the_parameters_one_optimiser_each(name, data):
    model = build(name, data.train.schema)
    players = model.players()
    owned = [id(p) for player in players.values() for p in player.parameters]
    assert owned, "no parameters"
    assert len(owned) == len(set(owned)), "a parameter belongs to two players"
    assert set(owned) == {id(p) for p in model.parameters()}, "a parameter belongs to no player"
    optimisers = model.configure_optimizers()
    optimisers = optimisers if isinstance(optimisers, list) else [optimisers]
    assert [[id(p) for group in o.param_groups for p in group["params"]] for o in optimisers] == [
        [id(p) for p in player.parameters] for player in players.values()
    ]


@pytest.mark.parametrize("name", DEEP)
def test_one_optimiser_step_of_each_player_changes_exactly_its_parameters(name, data):
    """Each player's loss part (a likelihood model: ``loss``, what ``training_loss`` returns) reaches
    every parameter of that player, and one step of its optimiser moves exactly those of them with a
    gradient: none of another player's, even where the part has gradients for them (GAIN's generator
    loss passes through the discriminator)."""
    model = build(name, data.train.schema)
    model.train()
    optimisers = model.configure_optimizers()
    optimisers = optimisers if isinstance(optimisers, list) else [optimisers]
    names = {id(p): k for k, p in model.named_parameters()}
    batch = training_table(model, data)
    x, observed = batch.x[:64], batch.observed[:64]
    for (part, player), optimiser in zip(model.players().items(), optimisers):
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        model.on_train_epoch_start()
        torch.manual_seed(0)
        loss = model.loss(x * observed, observed)[part]
        model.zero_grad(set_to_none=True)
        loss.backward()
        untrained = [names[id(p)] for p in player.parameters if p.grad is None]
        assert not untrained, f"parameters {part} does not reach: {untrained}"
        assert all(torch.isfinite(p.grad).all() for p in player.parameters)
        optimiser.step()
        moved = {k for k, p in model.named_parameters() if not torch.equal(p.detach(), before[k])}
        with_gradient = {names[id(p)] for p in player.parameters if p.grad.abs().sum() > 0}
        assert moved and moved == with_gradient, part


@pytest.mark.parametrize("name", DEEP)
def test_fit_trains_the_networks_it_builds(name, data):
    """``fit`` starts from the weights ``build`` gives under the seed and ends elsewhere."""
    model = get_model(name)(seed=0, **fast_config(name, max_epochs=1))
    initial: dict[str, torch.Tensor] = {}
    model.on_train_start = lambda: initial.update({k: v.detach().clone() for k, v in model.state_dict().items()})
    model.fit(training_table(model, data), data.validation)
    reference = build(name, data.train.schema).state_dict()
    assert initial.keys() == reference.keys()
    assert all(torch.equal(initial[k], reference[k]) for k in reference)  # build path == fit's build
    final = model.state_dict()
    assert any(not torch.equal(final[k], initial[k]) for k in initial)
    summary = model.training_summary()
    assert summary["epochs"] == 1 and summary["best_epoch"] == 0


# --- 6: determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_imputations_different_seed_differs(name, fitted, data):
    first = fitted(name).impute(data.test)
    again = fit(name, data, seed=0)
    assert torch.equal(again.impute(data.test), first)
    if name in DEEP:  # different initial weights, batches and noise
        other = fit(name, data, seed=1)
        assert not torch.equal(other.impute(data.test), first)


# --- 7: multiple imputation and generation ----------------------------------------------------------


@pytest.mark.parametrize("name", DEEP)
def test_impute_multiple_shape_observed_entries_and_spread(name, fitted, data):
    model, table, k = fitted(name), data.test, 3
    draws = model.impute_multiple(table, k)
    assert draws.shape == (k, table.n_rows, table.schema.encoded_dim)
    assert torch.isfinite(draws).all()
    for draw in draws:
        assert torch.equal(draw[table.observed], table.x[table.observed])
        assert_one_hot_blocks(draw, table.schema)
    assert torch.equal(model.impute_multiple(table, k), draws)  # reproducible per seed
    hidden = ~table.observed
    spread = (draws[1:] != draws[:1])[:, hidden].any()
    assert bool(spread) == model.stochastic  # stochastic models draw different values; AE repeats itself


@pytest.mark.parametrize("name", GENERATORS)
def test_generate_returns_finite_rows_and_masks_where_modelled(name, fitted, data):
    model, n = fitted(name), 50
    schema = data.train.schema
    x, mask = model.generate(n)
    assert x.shape == (n, schema.encoded_dim) and torch.isfinite(x).all()
    assert_one_hot_blocks(x, schema)
    if getattr(model, "generates_masks", False):
        assert mask.dtype == torch.bool and mask.shape == (n, len(schema))
    else:
        assert mask is None


@pytest.mark.parametrize("name", DEEP)
def test_training_summary_counts_epochs(name, fitted):
    summary = fitted(name).training_summary()
    assert summary["epochs"] == fast_config(name)["max_epochs"]  # patience 5 cannot stop 2 epochs
    assert 0 <= summary["best_epoch"] < summary["epochs"]


@pytest.mark.parametrize("name", DEEP)
def test_epoch_history_has_one_finite_entry_per_epoch_with_its_validation_score(name, fitted):
    model = fitted(name)
    history = model.epoch_history()
    assert [entry["epoch"] for entry in history] == list(range(model.training_summary()["epochs"]))
    for entry in history:
        assert "train_loss" in entry or any(k.startswith("train_") for k in entry)
        scores = [k for k in entry if k.startswith("val_")]
        assert len(scores) == 1, entry  # the fit had a validation split: each epoch was scored once
        assert all(np.isfinite(v) for v in entry.values())
    best = min(range(len(history)), key=lambda e: history[e][scores[0]])
    assert best == model.training_summary()["best_epoch"]


# --- 8: bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_unknown_configuration_fields_are_rejected_by_name(name):
    cls = get_model(name)
    # Deep models validate their Config (ValueError listing the known fields); the classical
    # baselines' constructors take explicit keywords, so Python raises TypeError naming the field.
    expected = ValueError if issubclass(cls, ImputerModule) else (TypeError, ValueError)
    with pytest.raises(expected, match="no_such_field"):
        cls(seed=0, no_such_field=1)


@pytest.mark.parametrize("name", DEEP)
def test_declared_config_fields_round_trip(name):
    cls = get_model(name)
    model = cls(seed=0, **fast_config(name))
    assert set(model.config()) == set(cls.config_fields())
    assert cls(seed=0, **model.config()).config() == model.config()


@pytest.mark.parametrize("name", MODELS)
def test_constructor_options_are_declared_config_fields(name):
    """What ``--model-config`` may set (``config_fields``) covers every constructor option."""
    cls = get_model(name)
    options = {
        p.name for p in inspect.signature(cls.__init__).parameters.values()
        if p.name not in ("self", "seed") and p.kind is not inspect.Parameter.VAR_KEYWORD
    }
    assert options <= cls.config_fields()


def test_validation_split_with_mismatched_truth_fails(data):
    table = data.validation.table
    with pytest.raises(ValueError, match="truth"):
        ValidationSplit(table, data.validation.truth[:-1])
    with pytest.raises(ValueError, match="truth"):
        ValidationSplit(table, data.validation.truth[:, :-1])


def test_masked_tables_of_the_wrong_shape_or_dtype_fail(data):
    table = data.test
    with pytest.raises(ValueError):
        MaskedTable(table.x[:, :-1], table.observed[:, :-1], table.schema)
    with pytest.raises(ValueError):
        MaskedTable(table.x, table.observed[:-1], table.schema)
    with pytest.raises(TypeError):
        MaskedTable(table.x, table.observed.float(), table.schema)


@pytest.mark.parametrize("name", MODELS)
def test_a_table_of_another_width_is_refused(name, fitted):
    rng = np.random.default_rng(0)
    wide = Dataset("wide", rng.normal(size=(60, 7)), FeatureSchema(tuple(Feature(f"r{j}") for j in range(7))))
    other = prepare(wide, get_protocol("vsae"), "mcar", 0.5, 0)
    with pytest.raises((ValueError, RuntimeError)):
        fitted(name).impute(other.test)


# --- 9: divergence ----------------------------------------------------------------------------------


def _nan_loss(original):
    def loss(self, x, observed):
        parts = original(self, x, observed)
        return {**parts, "loss": parts["loss"] * float("nan")}

    return loss


@pytest.mark.parametrize("name", DEEP)
def test_a_huge_learning_rate_is_a_diverged_trial(name):
    """An absurd learning rate overflows the loss (1e20: tanh networks such as MIWAE saturate, finite, at 1e10)."""
    cache = DataCache(None, "cpu", {"toy": correlated_dataset(200, 0)})
    # A logistic regression's loss grows only linearly in its weights: 1e20 leaves it finite, 1e38 overflows it.
    lr = 1e38 if name == "supervised_logreg" else 1e20
    row = run_trial(Trial(name, "toy", "mcar", 0.5, 0, "vsae", fast_config(name, max_epochs=2, lr=lr)), cache)
    assert row.status == "diverged", row.reason
    assert "non-finite" in row.reason and not row.metrics


@pytest.mark.parametrize("name", DEEP)
def test_a_nan_loss_raises_diverged_error_from_fit(name, data, monkeypatch):
    """Every training evaluation's losses turn NaN on their way to the epoch's log: fit must raise.
    (Patched at ``record``, which every model's training step reports its losses to, whatever
    passes its players' losses come from.)"""
    cls = get_model(name)
    original = cls.record

    def nan_record(self, parts):
        original(self, {part: value * float("nan") for part, value in parts.items()})

    monkeypatch.setattr(cls, "record", nan_record)
    model = cls(seed=0, **fast_config(name, max_epochs=3))
    with pytest.raises(DivergedError, match="non-finite"):
        model.fit(training_table(model, data), data.validation)
