"""MoPoE-VAE (Sutter et al. 2021): its subsets, subset posteriors, objective and imputation, each checked
against an independent computation (a loop over itertools' subsets, the closed-form product of Gaussians)."""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import correlated_dataset

from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.evaluate import score
from imputebench.models.mopoe import MoPoE, uniform_nonempty_subsets
from imputebench.models.registry import get_model
from imputebench.nn.elbo import gaussian_kl
from imputebench.schema import Feature, FeatureSchema


@pytest.fixture(scope="module")
def data():
    return prepare(correlated_dataset(300, 0), get_protocol("vsae"), "mcar", 0.3, 0)


def built(schema: FeatureSchema, **config: object) -> MoPoE:
    model = MoPoE(seed=0, **{"batch_size": 32, "max_epochs": 2, **config})
    model.build_networks(schema)
    return model.eval()


# --- subsets -----------------------------------------------------------------------------------------


def test_drawn_subsets_are_uniform_over_the_nonempty_subsets_of_the_present_modalities():
    torch.manual_seed(0)
    present = torch.tensor([[True, False, True, True, False], [False, False, False, False, False],
                            [False, True, False, False, False]])
    draws = uniform_nonempty_subsets(present, 14_000)  # (k, 3, 5)
    assert not (draws & ~present).any() and not draws[:, 1].any() and draws[:, 2, 1].all()
    first = draws[:, 0][:, [0, 2, 3]]  # the 7 non-empty subsets of three present modalities
    codes = (first.long() * torch.tensor([1, 2, 4])).sum(-1)
    counts = torch.bincount(codes, minlength=8)
    assert counts[0] == 0  # never empty
    # 2,000 expected per subset; its binomial sd is ~41, so 250 is about 6 sd: a wrong distribution
    # (e.g. independent coins: 1,750 each, with 1,750 empty) fails, a right one passes every time.
    assert (counts[1:] - 2000).abs().max() < 250, counts


def test_rows_with_many_present_modalities_draw_each_with_probability_one_half():
    torch.manual_seed(1)
    present = torch.ones(2, 60, dtype=torch.bool)
    draws = uniform_nonempty_subsets(present, 500).float()  # (500, 2, 60)
    assert draws.any(-1).all() and abs(draws.mean().item() - 0.5) < 0.02  # 60,000 coins: sd 0.002


def test_enumerated_components_are_the_subsets_of_the_observed_set_with_equal_weights():
    schema = FeatureSchema(tuple(Feature(f"f{j}") for j in range(3)))
    model = built(schema)
    present = torch.tensor([[True, True, True], [True, False, True], [False, False, False]])
    subsets, weights = model.objective_subsets(present)  # (7, 3, 3), (7, 3)
    for row, n_valid in enumerate((7, 3, 0)):
        valid = [tuple(s.tolist()) for s, w in zip(subsets[:, row], weights[:, row]) if w > 0]
        expected = [tuple(c) for c in itertools.product([False, True], repeat=3)
                    if any(c) and all(p or not c_j for c_j, p in zip(c, present[row].tolist()))]
        assert sorted(valid) == sorted(expected) and len(valid) == n_valid
        if n_valid:
            torch.testing.assert_close(weights[:, row].sum(), torch.tensor(1.0))


def test_tables_with_many_features_draw_their_subsets_instead():
    schema = FeatureSchema(tuple(Feature(f"f{j}") for j in range(8)))  # 255 subsets > 63
    model = built(schema, n_subsets=5)
    assert model.all_subsets is None
    subsets, weights = model.objective_subsets(torch.ones(4, 8, dtype=torch.bool))
    assert subsets.shape == (5, 4, 8) and torch.allclose(weights, torch.full((5, 4), 0.2))


# --- subset posteriors and the objective ----------------------------------------------------------------


def test_a_subset_posterior_is_the_normalised_product_of_its_experts_without_the_prior():
    mu = torch.tensor([[[1.0, -2.0], [3.0, 0.0], [5.0, 5.0]]])  # (b=1, M=3, k=2)
    var = torch.tensor([[[1.0, 4.0], [0.5, 2.0], [9.0, 9.0]]])
    subsets = torch.tensor([[[True, True, False]], [[False, False, True]], [[False, False, False]]])  # (3, 1, 3)
    m, logvar = MoPoE.posterior(mu, var.log(), subsets)  # (3, 1, 2)
    precision = 1 / var[0, 0] + 1 / var[0, 1]  # two experts: precisions add, means weighted by precision
    torch.testing.assert_close(m[0, 0], (mu[0, 0] / var[0, 0] + mu[0, 1] / var[0, 1]) / precision)
    torch.testing.assert_close(logvar[0, 0].exp(), 1 / precision)
    torch.testing.assert_close((m[1, 0], logvar[1, 0].exp()), (mu[0, 2], var[0, 2]))  # one expert: itself
    torch.testing.assert_close((m[2, 0], logvar[2, 0]), (torch.zeros(2), torch.zeros(2)))  # none: the prior


def test_the_kl_term_is_the_average_kl_of_the_subset_posteriors_of_the_observed_set(data):
    model = built(data.train.schema)
    x, observed = data.train.x[:6], data.train.observed[:6]
    torch.manual_seed(3)
    with torch.no_grad():
        parts = model.loss(x, observed)
    mu_e, logvar_e = model.expert_params(x * observed)  # (b, M, k)
    present = model.layout.modality_mask(observed)  # (b, M)
    expected = []
    for row in range(x.shape[0]):
        members = present[row].nonzero().flatten().tolist()
        kls = []
        for size in range(1, len(members) + 1):
            for subset in itertools.combinations(members, size):
                precision = (1 / logvar_e[row, list(subset)].exp()).sum(0)  # (k,)
                mean = (mu_e[row, list(subset)] / logvar_e[row, list(subset)].exp()).sum(0) / precision
                kls.append(gaussian_kl(mean, -precision.log()).sum())
        expected.append(torch.stack(kls).mean() if kls else torch.tensor(0.0))
    torch.testing.assert_close(parts["kl"], torch.stack(expected).mean(), rtol=1e-4, atol=1e-4)
    assert torch.isfinite(parts["loss"]) and parts["loss"] == pytest.approx((parts["rec"] + parts["kl"]).item(), rel=1e-5)


def test_a_row_with_nothing_observed_adds_nothing_to_the_loss(data):
    model = built(data.train.schema)
    x, observed = data.train.x[:4], data.train.observed[:4].clone()
    observed[0] = False
    torch.manual_seed(0)
    with_empty = model.loss(x, observed)
    assert torch.isfinite(with_empty["loss"])
    torch.manual_seed(0)
    alone = model.loss(x[:1], observed[:1])
    assert alone["loss"].item() == 0.0 and alone["kl"].item() == 0.0


def test_imputation_uses_the_observed_sets_product_and_the_prior_for_an_empty_row(data):
    model = built(data.train.schema)
    x, observed = data.test.x[:5], data.test.observed[:5].clone()
    observed[0] = False
    torch.manual_seed(0)
    out = model.impute_batch(x, observed)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_registered_and_beats_mean_imputation_on_a_correlated_table():
    """60 epochs: one mixture component per row and step gives MoPoE less signal per step than MVAE's 1 + M + k
    ELBO terms (15 epochs left it at 0.94 of the mean's NRMSE, 60 at 0.76)."""
    assert get_model("mopoe") is MoPoE
    data = prepare(correlated_dataset(300, 0), get_protocol("vsae"), "mcar", 0.5, 0)
    model = MoPoE(seed=0, max_epochs=60, patience=60, batch_size=32, n_imputations=5).fit(data.train, data.validation)
    got = score(data, model.impute(data.test))
    mean = score(data, get_model("mean")(seed=0).fit(data.train).impute(data.test))
    assert got["nrmse"] < 0.9 * mean["nrmse"] and got["pfc"] < 0.9 * mean["pfc"], (got, mean)
