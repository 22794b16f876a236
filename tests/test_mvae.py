"""MVAE (Wu & Goodman 2018) and its product of experts, against closed forms and the paper's equations.

The product of Gaussian experts against its closed form (appendix B) and the quotient of
MVAE-Q (eq. 3, appendix C); the sub-sampled objective of eq. (5) term by term (the joint
ELBO, one per observed modality, k random subsets, lambda_i weights); the prior as the
posterior of an empty row; beta annealing; bad configurations. Registry-wide checks
(shapes, leakage, determinism, divergence) live in ``tests/test_contracts.py``.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from helpers import correlated_dataset
from torch.distributions import Normal

from imputebench.data.prepare import PreparedData, prepare
from imputebench.data.protocols import get_protocol
from imputebench.evaluate import score
from imputebench.models.base import ImputerModule
from imputebench.models.mvae import MVAE, elbo_subsets, kl_annealing
from imputebench.models.registry import get_model
from imputebench.nn.elbo import product_of_experts
from imputebench.nn.mlp import GroupedLinear
from imputebench.runner.presets import config_resolver
from imputebench.schema import Feature, FeatureSchema

FAST = dict(max_epochs=2, patience=5, batch_size=32, n_imputations=2)


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return prepare(correlated_dataset(200, 0), get_protocol("vsae"), "mcar", 0.5, 0)


def built(schema: FeatureSchema, **config: object) -> MVAE:
    """An untrained MVAE with its networks, in eval mode (batch norm on running statistics)."""
    model = MVAE(seed=0, **{**FAST, **config})
    model.build_networks(schema)
    return model.eval()


def random_experts(*shape: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    mu = torch.randn(*shape, generator=gen, dtype=torch.float64)
    logvar = torch.randn(*shape, generator=gen, dtype=torch.float64)
    return mu, logvar


# --- product (and quotient) of experts --------------------------------------------------------


def test_product_of_experts_is_the_precision_weighted_closed_form_and_a_density_product():
    mu_e, logvar_e = random_experts(5, 3, 4)  # (b, E, k)
    present = torch.tensor([[True, True, True], [True, False, True], [False, False, True],
                            [True, True, False], [False, True, False]])
    mu, logvar = product_of_experts(mu_e, logvar_e, present)
    w = present.double().unsqueeze(-1)  # (b, E, 1)
    precision = 1.0 + (w / logvar_e.exp()).sum(1)  # the prior expert N(0, I) has precision 1
    torch.testing.assert_close(logvar, -precision.log())
    torch.testing.assert_close(mu, (w * mu_e / logvar_e.exp()).sum(1) / precision)
    # log q(z) - log p(z) - sum_e log q_e(z) does not depend on z: q is the normalised product
    z = torch.randn(7, 5, 4, dtype=torch.float64)
    gap = (Normal(mu, (0.5 * logvar).exp()).log_prob(z) - Normal(0.0, 1.0).log_prob(z)
           - (w.squeeze(-1).unsqueeze(-1) * Normal(mu_e, (0.5 * logvar_e).exp()).log_prob(z.unsqueeze(2))).sum(2))
    torch.testing.assert_close(gap - gap[:1], torch.zeros_like(gap))


def test_a_dropped_expert_has_no_effect_and_no_expert_gives_the_prior():
    mu_e, logvar_e = random_experts(4, 3, 2)
    present = torch.tensor([[True, False, True]]).expand(4, -1)
    mu, logvar = product_of_experts(mu_e, logvar_e, present)
    other_mu, other_logvar = mu_e.clone(), logvar_e.clone()
    other_mu[:, 1], other_logvar[:, 1] = 1e3, -1e3  # whatever the dropped expert says
    torch.testing.assert_close(product_of_experts(other_mu, other_logvar, present), (mu, logvar))
    kept = [0, 2]
    torch.testing.assert_close(product_of_experts(mu_e[:, kept], logvar_e[:, kept], present[:, kept]), (mu, logvar))
    prior_mu, prior_logvar = product_of_experts(mu_e, logvar_e, torch.zeros(4, 3, dtype=torch.bool))
    assert torch.equal(prior_mu, torch.zeros(4, 2, dtype=torch.float64))
    assert torch.equal(prior_logvar, torch.zeros(4, 2, dtype=torch.float64))


def test_product_of_experts_stays_finite_with_vanishing_and_huge_variances():
    mu_e = torch.tensor([[[3.0], [-2.0], [1e4]]], requires_grad=True)  # (1, 3, 1)
    logvar_e = torch.tensor([[[-200.0], [-200.0], [200.0]]], requires_grad=True)
    mu, logvar = product_of_experts(mu_e, logvar_e, torch.ones(1, 3, dtype=torch.bool))
    assert torch.isfinite(mu).all() and torch.isfinite(logvar).all()
    torch.testing.assert_close(mu, torch.tensor([[0.5]]), atol=1e-3, rtol=0)  # two equal sharp experts: their midpoint
    (mu.sum() + logvar.sum()).backward()
    assert torch.isfinite(mu_e.grad).all() and torch.isfinite(logvar_e.grad).all()


def test_quotient_of_experts_divides_by_the_prior_and_stays_finite_when_improper():
    mu_e, logvar_e = random_experts(3, 3, 2)
    logvar_e = logvar_e.clamp(max=0.0)  # precisions >= 1: every quotient below is proper
    present = torch.tensor([[True, True, True], [True, False, False], [False, False, False]])
    n = present.sum(-1).double()
    mu, logvar = product_of_experts(mu_e, logvar_e, present, prior_power=1.0 - n)
    w = present.double().unsqueeze(-1)
    precision = (w / logvar_e.exp()).sum(1) - (n - 1.0).unsqueeze(-1)  # prod_i q_i / p^(n - 1)
    torch.testing.assert_close(logvar, -precision.log())
    torch.testing.assert_close(mu, (w * mu_e / logvar_e.exp()).sum(1) / precision)
    torch.testing.assert_close((mu[1], logvar[1]), (mu_e[1, 0], logvar_e[1, 0]))  # one expert: itself
    assert torch.equal(mu[2], torch.zeros(2, dtype=torch.float64)) and torch.equal(logvar[2], mu[2])  # none: the prior
    # three experts of variance 2 against p^2: precision 1.5 - 2 < 0 is floored, finite
    improper = product_of_experts(mu_e[:1], torch.full_like(logvar_e[:1], math.log(2.0)), present[:1], -2.0)
    assert all(torch.isfinite(t).all() for t in improper)


def test_product_of_experts_broadcasts_experts_against_many_subsets():
    mu_e, logvar_e = random_experts(4, 3, 2)  # (b, E, k)
    subsets = torch.rand(5, 4, 3, generator=torch.Generator().manual_seed(1)) < 0.5  # (T, b, E)
    mu, logvar = product_of_experts(mu_e, logvar_e, subsets)
    assert mu.shape == logvar.shape == (5, 4, 2)
    for t in range(5):
        torch.testing.assert_close((mu[t], logvar[t]), product_of_experts(mu_e, logvar_e, subsets[t]))


# --- the sub-sampled objective of eq. (5) -------------------------------------------------------


def test_elbo_subsets_are_the_observed_set_each_observed_modality_and_k_random_subsets():
    torch.manual_seed(0)
    present = torch.rand(2000, 4) < 0.6
    subsets = elbo_subsets(present, 3)
    assert subsets.shape == (1 + 4 + 3, 2000, 4)
    assert torch.equal(subsets[0], present)
    for i in range(4):
        single = torch.zeros_like(present)
        single[:, i] = present[:, i]
        assert torch.equal(subsets[1 + i], single)
    random = subsets[5:]
    assert not (random & ~present).any()  # subsets of the observed set only
    kept = random.sum() / present.sum().mul(3)
    assert abs(float(kept) - 0.5) < 0.02  # each observed modality kept with probability 1/2
    assert not torch.equal(random[0], random[1])  # drawn afresh per term and row
    assert elbo_subsets(present, 0).shape == (5, 2000, 4)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_the_loss_is_minus_the_sum_of_1_plus_d_plus_k_elbo_terms(data, k):
    model = built(data.train.schema, n_subsets=k)
    x, observed = data.train.x[:16], data.train.observed[:16]
    shapes = []
    terms = model.elbo_terms
    model.elbo_terms = lambda *args: shapes.append(args[2].shape) or terms(*args)
    torch.manual_seed(3)
    parts = model.loss(x, observed)
    assert shapes == [(1 + 4 + k, 16, 4)]
    torch.manual_seed(3)
    rec, kl = terms(x, observed, elbo_subsets(model.layout.feature_mask(observed), k))
    torch.testing.assert_close(parts["loss"], -(rec - kl).sum(0).mean())  # unit weights, beta = 1 outside fit
    torch.testing.assert_close(parts["rec"], -rec.sum(0).mean())
    torch.testing.assert_close(parts["kl"], kl.sum(0).mean())


def test_a_single_modality_term_sees_and_scores_only_its_modality(data):
    model = built(data.train.schema)
    schema = data.train.schema
    x = data.train_complete.x[:8].clone().requires_grad_()
    observed = data.train_complete.observed[:8]
    subsets = elbo_subsets(model.layout.feature_mask(observed), 0)
    rec, kl = model.elbo_terms(x, observed, subsets)
    for i, cols in enumerate(schema.slices):
        (grad,) = torch.autograd.grad((rec[1 + i] - kl[1 + i]).sum(), x, retain_graph=True)
        others = torch.ones(schema.encoded_dim, dtype=torch.bool)
        others[cols] = False
        assert (grad[:, others] == 0).all() and (grad[:, cols] != 0).any(), schema.features[i].name


def test_reconstruction_weights_scale_their_modalitys_log_likelihood(data):
    schema = data.train.schema
    x, observed = data.train.x[:16], data.train.observed[:16]
    plain, weighted = built(schema), built(schema, reconstruction_weights={"b": 3.0, "k": 0.0})
    assert torch.equal(weighted.lambdas, torch.tensor([1.0, 3.0, 1.0, 0.0]))
    subsets = elbo_subsets(plain.layout.feature_mask(observed), 0)
    results = []
    for model in (plain, weighted):
        torch.manual_seed(4)
        results.append(model.elbo_terms(x, observed, subsets))
    (rec, kl), (rec_w, kl_w) = results
    torch.testing.assert_close(kl_w, kl)  # lambda weighs reconstructions only
    torch.testing.assert_close(rec_w[[1, 3]], rec[[1, 3]])  # singles of a and c
    torch.testing.assert_close(rec_w[2], 3.0 * rec[2])
    assert torch.equal(rec_w[4], torch.zeros(16))
    assert (rec[4] != 0).any()


def test_a_row_with_nothing_observed_has_the_prior_as_posterior_and_zero_elbo(data):
    for quotient in (False, True):
        model = built(data.train.schema, quotient=quotient)
        x = torch.randn(6, data.train.schema.encoded_dim)
        nothing = torch.zeros_like(x, dtype=torch.bool)
        present = model.layout.feature_mask(nothing)
        mu, logvar = model.posterior(*model.expert_params(x), present)
        assert torch.equal(mu, torch.zeros_like(mu)) and torch.equal(logvar, torch.zeros_like(logvar))
        rec, kl = model.elbo_terms(x, nothing, elbo_subsets(present, 2))
        assert torch.equal(rec, torch.zeros_like(rec)) and torch.equal(kl, torch.zeros_like(kl))
        torch.manual_seed(5)
        imputed = model.impute_batch(x, nothing)
        torch.manual_seed(5)
        prior_draw = model.likelihood.mode(model.decode(torch.randn(6, model.latent_dim)))
        torch.testing.assert_close(imputed, prior_draw)


# --- beta annealing -----------------------------------------------------------------------------


def test_kl_annealing_rises_linearly_per_step_to_one():
    steps = [kl_annealing(e, i, 4, 2) for e in range(3) for i in range(4)]
    assert steps == [1 / 8, 2 / 8, 3 / 8, 4 / 8, 5 / 8, 6 / 8, 7 / 8, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert kl_annealing(0, 0, 4, 0) == 1.0


def test_fit_anneals_beta_and_the_loss_uses_it(data):
    model = MVAE(seed=0, **{**FAST, "max_epochs": 3, "annealing_epochs": 2})
    seen = []
    loss = model.loss

    def recording(x, observed):
        seen.append(model.kl_weight)
        return loss(x, observed)

    model.loss = recording
    model.fit(data.train, data.validation)
    n = len(seen) // 3
    assert seen == [min(1.0, (s + 1) / (2 * n)) for s in range(3 * n)]
    assert model.kl_weight == 1.0  # beta = 1 again after fit


# --- MVAE-Q -----------------------------------------------------------------------------------------


def test_mvae_q_drops_the_prior_expert_and_bounds_expert_variances(data):
    schema = data.train.schema
    x = data.train_complete.x[:8]
    plain, quotient = built(schema), built(schema, quotient=True)
    mu_e, logvar_e = quotient.expert_params(x)
    assert (logvar_e < math.log(4 / 3)).all()  # V_i < N / (N - 1) with N = 4 features
    only_a = torch.zeros(8, 4, dtype=torch.bool)
    only_a[:, 0] = True
    mu, logvar = quotient.posterior(mu_e, logvar_e, only_a)
    torch.testing.assert_close((mu, logvar), (mu_e[:, 0], logvar_e[:, 0]))  # q(z | x_a) itself
    mu_a, logvar_a = plain.expert_params(x)  # MVAE, same weights: the expert times the prior expert
    _, logvar_p = plain.posterior(mu_a, logvar_a, only_a)
    torch.testing.assert_close(logvar_p, -torch.log1p(torch.exp(-logvar_a[:, 0])))
    present = torch.ones(8, 4, dtype=torch.bool)
    mu, logvar = quotient.posterior(mu_e, logvar_e, present)
    precision = (1.0 / logvar_e.exp()).sum(1) - 3.0  # prod of four experts / p(z)^3
    torch.testing.assert_close(logvar, -precision.log())
    torch.testing.assert_close(mu, (mu_e / logvar_e.exp()).sum(1) / precision)


def test_mvae_q_stays_finite_with_saturated_experts(data):
    model = built(data.train.schema, quotient=True)
    with torch.no_grad():
        for net in (model.experts.numeric, model.experts.categorical):
            last = [m for m in net if isinstance(m, GroupedLinear)][-1]
            last.bias.mul_(1e4)  # sigmoids saturate at 0 and 1
    model.train()
    parts = model.loss(data.train.x[:32], data.train.observed[:32])
    parts["loss"].backward()
    assert all(torch.isfinite(v) for v in parts.values())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert torch.isfinite(model.eval().impute_batch(data.test.x, data.test.observed)).all()


# --- training -----------------------------------------------------------------------------------------


def test_mvae_beats_mean_imputation_on_a_correlated_table():
    """15 epochs under the default schedule (beta <= 0.08 by then, as in the paper's first epochs)."""
    data = prepare(correlated_dataset(300, 0), get_protocol("vsae"), "mcar", 0.5, 0)
    model = MVAE(seed=0, max_epochs=15, patience=15, batch_size=32, n_imputations=5).fit(data.train, data.validation)
    got = score(data, model.impute(data.test))
    mean = score(data, get_model("mean")(seed=0).fit(data.train).impute(data.test))
    assert got["nrmse"] < 0.9 * mean["nrmse"] and got["pfc"] < 0.9 * mean["pfc"], (got, mean)


def test_same_seed_same_imputations_different_seed_differs(data):
    first, again, other = (MVAE(seed=s, **{**FAST, "max_epochs": 1}).fit(data.train, data.validation) for s in (0, 0, 1))
    assert torch.equal(again.impute(data.test), first.impute(data.test))
    assert not torch.equal(other.impute(data.test), first.impute(data.test))


def test_draws_from_one_posterior_per_row_equal_the_bases_draws_from_repeated_rows(data):
    """MVAE computes q(z | x_o) once per row for its k draws; the base repeats each row k times
    before the experts. Same seed and row chunks, same random stream: the same draws."""
    model = built(data.train.schema, n_imputations=3)
    x, observed = data.test.x, data.test.observed
    for eval_rows in (10**6, 3 * 7):  # one chunk; chunks of 7 rows
        model.cfg = dataclasses.replace(model.cfg, eval_rows=eval_rows)
        draws = []
        for draw in (ImputerModule._draw, MVAE._draw):
            torch.manual_seed(5)
            with torch.no_grad():
                draws.append(draw(model, x, observed, 3))  # (k, n, D)
        assert draws[0].shape == (3, *x.shape)
        torch.testing.assert_close(draws[1], draws[0])


# --- configuration ----------------------------------------------------------------------------------


def test_unknown_configuration_fields_are_rejected_by_name():
    with pytest.raises(ValueError, match="no_such_field"):
        MVAE(seed=0, no_such_field=1)


@pytest.mark.parametrize("config, message", [
    (dict(n_subsets=-1), "n_subsets"),
    (dict(annealing_epochs=-1), "annealing_epochs"),
    (dict(reconstruction_weights={"a": -1.0}), r"reconstruction_weights = \{'a': -1.0\}: .*greater than or equal to 0"),
    (dict(reconstruction_weights={"a": float("nan")}), r"reconstruction_weights = \{'a': nan\}: .*finite number"),
    (dict(reconstruction_weights=[1.0, 2.0]), r"reconstruction_weights = \[1.0, 2.0\]: .*valid dictionary"),
    (dict(latent_per_feature=0), "latent_per_feature"),
])
def test_bad_values_fail_at_construction_with_a_clear_message(config, message):
    with pytest.raises(ValueError, match=message):
        MVAE(seed=0, **config)


def test_schema_dependent_values_fail_when_the_networks_are_built(data):
    with pytest.raises(ValueError, match=r"unknown modalities \['nope'\]; known: a, b, c, k"):
        built(data.train.schema, reconstruction_weights={"nope": 2.0})
    with pytest.raises(ValueError, match="MVAE-Q"):
        built(FeatureSchema((Feature("only"),)), quotient=True)


def test_registered_with_the_vsae_papers_training_presets(data):
    assert get_model("mvae") is MVAE and MVAE.uses_family_presets
    numeric = FeatureSchema((Feature("a"), Feature("b")))
    categorical = FeatureSchema((Feature("k", "categorical", ("x", "y")), Feature("j", "categorical", ("x", "y"))))
    resolve = config_resolver({"num": numeric, "cat": categorical})
    resolved = resolve("mvae", "num")  # the full configuration: every field, the family presets applied
    assert set(resolved) == MVAE.config_fields()
    assert {k: resolved[k] for k in ("lr", "max_epochs", "patience")} == {"lr": 1e-3, "max_epochs": 1000, "patience": 100}
    assert resolve("mvae", "cat")["lr"] == 1e-2
    assert MVAE(seed=0, **resolve("mvae", "num")).cfg.batch_size == 100  # the MVAE paper's own
