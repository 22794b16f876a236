"""HI-VAE: likelihood heads against torch.distributions, the temperature schedule, the ELBO's
blindness to hidden entries (the registry contract tests cover the rest)."""

from __future__ import annotations


import lightning as L
import numpy as np
import pytest
import torch
from torch import distributions as D

from imputebench.data.datamodule import PreparedDataModule
from imputebench.data.dataset import Dataset
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.models.hivae import HIVAE
from imputebench.models.training import trainer_for
from imputebench.nn.hivae_likelihoods import (
    PROB_FLOOR,
    HeterogeneousLikelihood,
    lognormal_log_prob,
    ordinal_log_probs,
    poisson_log_prob,
)
from imputebench.nn.layout import SchemaLayout
from imputebench.schema import Feature, FeatureSchema

FAST = dict(max_epochs=2, batch_size=32, patience=5, n_imputations=2)


def mixed_dataset(n: int = 160, seed: int = 0) -> Dataset:
    """One feature of every kind, driven by a shared latent so that they correlate."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n)
    real = 2.0 * u + 0.3 * rng.normal(size=n)
    positive = np.exp(0.5 * u + 0.2 * rng.normal(size=n))
    count = rng.poisson(np.exp(1.0 + 0.5 * u))
    category = np.digitize(u, [-0.5, 0.5])
    ordinal = np.digitize(u + 0.3 * rng.normal(size=n), [-1.0, 0.0, 1.0])
    schema = FeatureSchema((
        Feature("r"), Feature("p", "positive"), Feature("c", "count"),
        Feature("k", "categorical", ("a", "b", "c")), Feature("o", "ordinal", ("1", "2", "3", "4")),
    ))
    return Dataset("mixed", np.column_stack([real, positive, count, category, ordinal]).astype(float), schema)


@pytest.fixture(scope="module")
def mixed():
    return prepare(mixed_dataset(), get_protocol("vsae"), "mcar", 0.4, 0)


def built(schema: FeatureSchema, affine=None, seed: int = 0) -> HIVAE:
    """A model with its networks built for ``schema``, with the statistics ``build_for`` would take (``affine``)."""
    model = HIVAE(seed=seed, **FAST)
    model.raw_affine = affine
    model.build_networks(schema)
    return model


# --- likelihoods against torch.distributions -------------------------------------------------------
def test_lognormal_and_poisson_match_torch():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(50, generator=gen) * 20
    mu, var = torch.randn(50, generator=gen), torch.rand(50, generator=gen) + 0.1
    expected = D.LogNormal(mu, var.sqrt()).log_prob(1.0 + x)  # log(1 + x) ~ N(mu, var), as the authors
    torch.testing.assert_close(lognormal_log_prob(x, mu, var), expected)
    counts, rate = torch.randint(0, 30, (50,), generator=gen).float(), torch.rand(50, generator=gen) * 10 + 0.01
    torch.testing.assert_close(poisson_log_prob(counts, rate), D.Poisson(rate).log_prob(counts))


def test_head_log_probs_match_torch(mixed):
    """Every kind's per-feature log-likelihood equals torch's distribution at the head's parameters."""
    affine = (torch.as_tensor(mixed.transform.mean).float(), torch.as_tensor(mixed.transform.std).float())
    schema = mixed.train.schema
    head = HeterogeneousLikelihood(schema, tuple(f.kind for f in schema.features), 5, 10, affine)
    x, observed = mixed.train.x[:40], mixed.train.observed[:40]
    x = x * observed
    mask = SchemaLayout(schema).feature_mask(observed)
    x_in, stats = head.normalise(x, mask)
    params = head.params(torch.randn(40, len(schema), 5), torch.softmax(torch.randn(40, 10), -1))
    log_p = head.log_prob(params, x, mask, stats)  # (b, d)
    raw = torch.as_tensor(mixed.transform.decode(x)).float()  # (b, d) feature space in original units
    mu, var = head._gaussian("real", params["real"], stats)
    torch.testing.assert_close(log_p[:, 0], D.Normal(mu[:, 0], var[:, 0].sqrt()).log_prob(x[:, 0]))
    mu, var = head._gaussian("positive", params["positive"], stats)
    m = mask[:, 1]
    expected = D.LogNormal(mu[:, 0], var[:, 0].sqrt()).log_prob(1.0 + raw[:, 1])
    torch.testing.assert_close(log_p[m, 1], expected[m], rtol=1e-4, atol=1e-4)
    rate = torch.nn.functional.softplus(params["count"][0][:, 0])
    m = mask[:, 2]
    torch.testing.assert_close(log_p[m, 2], D.Poisson(rate[m]).log_prob(raw[m, 2].round()), rtol=1e-4, atol=1e-4)
    logits = torch.cat([torch.zeros(40, 1), params["categorical"][0][:, 0]], -1)
    m = mask[:, 3]
    torch.testing.assert_close(log_p[m, 3], D.Categorical(logits=logits[m]).log_prob(raw[m, 3].long()))


def test_ordinal_probabilities_sum_to_one_with_ordered_thresholds():
    gen = torch.Generator().manual_seed(0)
    valid = torch.tensor([[True, True, True, True, True], [True, True, True, False, False]])  # K = 5 and K = 3
    threshold_params, h = torch.randn(7, 2, 4, generator=gen), 3 * torch.randn(7, 2, generator=gen)
    log_p = ordinal_log_probs(threshold_params, h, valid)  # (7, 2, 5)
    probs = log_p.exp() * valid
    torch.testing.assert_close(probs.sum(-1), torch.ones(7, 2), atol=5 * PROB_FLOOR, rtol=0)
    theta = torch.nn.functional.softplus(threshold_params).cumsum(-1)
    assert (theta.diff(dim=-1) > 0).all()
    cdf = torch.sigmoid(theta[:, 0] - h[:, :1])  # P(x <= k) of the K = 5 feature
    torch.testing.assert_close(probs[:, 0].cumsum(-1)[:, :4], cdf, atol=5 * PROB_FLOOR, rtol=0)
    assert (log_p[:, 1, 3:] == 0).all()  # padding


# --- the model -----------------------------------------------------------------------------------------
def test_temperature_schedule(monkeypatch):
    model = HIVAE(seed=0)
    temps = []
    for epoch in (0, 1, 50, 99, 100, 500):
        monkeypatch.setattr(HIVAE, "current_epoch", property(lambda self, e=epoch: e))
        temps.append(model.temperature())
    np.testing.assert_allclose(temps, [1.0, 0.99, 0.5, 0.01, 1e-3, 1e-3], atol=1e-12)
    monkeypatch.setattr(HIVAE, "current_epoch", property(lambda self: 3))
    assert HIVAE(seed=0, tau_start=2.0, tau_decay=0.5, tau_min=0.1).temperature() == pytest.approx(0.5)


def test_positive_and_count_fall_back_to_real_without_transform_statistics(mixed):
    schema = mixed.train.schema
    assert built(schema).likelihood.kinds == ("real", "categorical", "ordinal")
    affine = (torch.zeros(len(schema)), torch.ones(len(schema)))
    assert built(schema, affine).likelihood.kinds == ("real", "positive", "count", "categorical", "ordinal")


@pytest.mark.parametrize("raw", [False, True])
def test_elbo_ignores_hidden_entries(mixed, raw):
    """Scrambled hidden values change neither the loss nor the imputation, and get no gradient."""
    schema = mixed.train.schema
    affine = (torch.as_tensor(mixed.transform.mean).float(), torch.as_tensor(mixed.transform.std).float())
    model = built(schema, affine if raw else None)
    x, observed = mixed.train.x[:64], mixed.train.observed[:64]
    scrambled = torch.where(observed, x, 500.0 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1)))
    losses, imputations = [], []
    for batch in (x, scrambled):
        batch = batch.clone().requires_grad_()
        torch.manual_seed(0)
        loss = model.loss(batch, observed)["loss"]
        loss.backward()
        assert torch.isfinite(loss) and (batch.grad[~observed] == 0).all() and batch.grad[observed].abs().sum() > 0
        losses.append(loss.detach())
        imputations.append(model.impute_batch(batch.detach(), observed))
    assert torch.equal(losses[0], losses[1]) and torch.equal(imputations[0], imputations[1])


@pytest.mark.parametrize("how", ["runner", "user"])
def test_every_trainer_path_gives_the_raw_likelihoods(mixed, how):
    """The runner's trainer and a user's own ``L.Trainer`` build the model in ``setup()``, not
    through ``fit``: the training table's statistics must reach the likelihoods there too."""
    model = HIVAE(seed=0, **FAST)
    datamodule = PreparedDataModule(mixed)
    if how == "runner":
        trainer_for(model, datamodule).fit(model, datamodule)
    else:
        L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                  enable_checkpointing=False).fit(model, datamodule=datamodule)
    assert model.likelihood.kinds == ("real", "positive", "count", "categorical", "ordinal")
    assert torch.equal(model.raw_affine[0], mixed.train.feature_mean)


def test_fit_with_transform_statistics_uses_raw_likelihoods(mixed):
    model = HIVAE(seed=0, **FAST).fit(mixed.train, mixed.validation)  # encode() carries the statistics
    assert model.likelihood.kinds == ("real", "positive", "count", "categorical", "ordinal")
    out = model.impute(mixed.test)
    assert torch.isfinite(out).all() and torch.equal(out[mixed.test.observed], mixed.test.x[mixed.test.observed])
    raw = mixed.transform.decode(out)
    assert (raw[:, 1] >= 0).all() and (raw[:, 2] >= 0).all()  # positive and count imputations stay in range
    assert torch.equal(model.impute(mixed.test), out)  # deterministic: posterior modes
