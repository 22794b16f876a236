"""MVAE (Wu & Goodman 2018): its product of experts, against closed forms.

The product of Gaussian experts against its closed form (appendix B) and the quotient of
MVAE-Q (eq. 3, appendix C).
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal

from imputebench.nn.elbo import product_of_experts


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
