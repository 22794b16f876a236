"""MoPoE-VAE: the mixture-of-products-of-experts VAE of the generalized multimodal ELBO.

Sutter, Daunhawer & Vogt, "Generalized Multimodal ELBO", ICLR 2021; the baseline of the mrVAE paper
(papers/003, Sutter & Vogt, Tables 1 and 2). For tables every feature is a modality, as for MVAE.

* Generative model: p(z) = N(0, I), p(X | z) = prod_j p(x_j | z).
* Inference: one expert q(z | x_j) per modality. Each non-empty subset X_A of the observed
  modalities has the subset posterior q~(z | X_A) = PoE({q(z | x_j)}_{j in A}), the normalised
  product of its experts (:func:`~imputebench.nn.elbo.product_of_experts` with no prior expert),
  and the joint posterior is their uniform mixture q(z | X) = 1 / |P(X)| sum_A q~(z | X_A).
* Objective, the generalized multimodal ELBO: E_{q(z | X)}[log p(X | z)] - KL(q(z | X) || p(z)),
  with the KL of the mixture replaced by its upper bound, the mixture's average KL
  1 / |P(X)| sum_A KL(q~(z | X_A) || p(z)) (convexity of the KL; the authors' implementation does the
  same). The reconstruction expectation draws one mixture component per row, uniformly, and
  reconstructs every observed modality from it: an unbiased estimate of the mixture's expectation.
* Missing data: P(X) ranges over the non-empty subsets of each row's *observed* modalities, and only
  observed modalities are reconstructed; a row with nothing observed contributes nothing.
* Imputation and conditional generation: z ~ q~(z | X_o), the subset posterior of the observed set,
  as the authors generate a missing modality from a given input set; then the decoder's mean / mode.

Choices of ours, stated:

* Subsets: with 2^M - 1 <= ``enumerate_up_to`` (PolyMNIST's 31) every subset is used, exactly; a
  table with more modalities (features) than that gets ``n_subsets`` subsets per row drawn
  uniformly from the non-empty subsets of its observed set, an unbiased estimate of both terms.
* No prior expert in a subset's product (the paper's definition of q~); the authors' code adds
  one behind a flag. A row with nothing observed has the prior as its posterior.
* ``beta`` weighs the KL term (1: the bound itself); the authors' PolyMNIST runs used beta = 2.5.
* Networks: an MLP encoder and an MLP decoder per modality, the ones mrVAE uses
  (:mod:`imputebench.models.modality_networks`; papers/003 appendix E.3: the same architectures,
  capacities and latent sizes for both); ``latent_dim`` is the size of z.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from imputebench.models.base import ImputerModule
from imputebench.models.config_types import Count, NonNegativeFloat
from imputebench.models.modality_networks import ModalityNetworksConfig, SelectsOnValidationLoss, modality_networks
from imputebench.models.registry import register_model
from imputebench.nn.elbo import clamp_logvar, gaussian_kl, product_of_experts, reparameterize
from imputebench.nn.relaxed_sort import gumbel_perturb
from imputebench.nn.subsets import available_subsets, nonempty_subsets
from imputebench.schema import FeatureSchema

#: the widest observed set whose subsets are drawn exactly by integer bits (float64 holds 2^52 exactly)
_EXACT_BITS = 52


@dataclass(frozen=True)
class MoPoEConfig(ModalityNetworksConfig):
    """The networks mrVAE shares (:mod:`imputebench.models.modality_networks`), and the objective's settings."""

    beta: NonNegativeFloat = 1.0  # weight of the (mixture) KL term
    enumerate_up_to: Count = 63  # every non-empty subset when 2^M - 1 is at most this
    n_subsets: Count = 16  # otherwise: subsets drawn per row and step


def uniform_nonempty_subsets(present: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` subsets per row ``(k, b, M)`` bool, each uniform over the non-empty subsets of the row's present
    modalities ``present`` ``(b, M)``; all False for a row with nothing present.

    A row with m present modalities draws an integer r uniform in {1, ..., 2^m - 1} and keeps its i-th present
    modality when bit i of r is set: exactly uniform, no rejection. Beyond 52 present modalities r would not
    be exact in float64; there each present modality is kept with probability 1/2 instead, which is uniform
    over all subsets and empty with probability below 2^-52.
    """
    m = present.sum(-1, keepdim=True)  # (b, 1)
    rank = (present.cumsum(-1) - 1).clamp_min(0)  # (b, M) index of each present modality among the present
    u = torch.rand(k, *m.shape, dtype=torch.float64, device=present.device)  # (k, b, 1)
    span = torch.exp2(m.clamp_max(_EXACT_BITS).to(torch.float64)) - 1  # (b, 1) 2^m - 1
    r = (u * span).floor().long() + 1  # (k, b, 1) uniform in 1 .. 2^m - 1
    bits = ((r >> rank) & 1).bool()  # (k, b, M)
    coins = torch.rand(k, *present.shape, device=present.device) < 0.5  # (k, b, M)
    return torch.where(m > _EXACT_BITS, coins, bits) & present


@register_model("mopoe")
class MoPoE(SelectsOnValidationLoss, ImputerModule):
    """Mixture of products of experts over the subsets of the observed modalities (generalized multimodal ELBO)."""

    Config = MoPoEConfig

    def build(self, schema: FeatureSchema) -> None:
        n_mod = self.layout.n_modalities
        self.likelihood, self.experts, self.decoders = modality_networks(self.layout, self.cfg)
        enumerated = 2**n_mod - 1 <= self.cfg.enumerate_up_to
        self.register_buffer("all_subsets", nonempty_subsets(n_mod) if enumerated else None, persistent=False)

    # --- inference ------------------------------------------------------------------------------
    def expert_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every modality's expert q(z | x_j) from the zero-filled ``x`` ``(b, D)``: mean, log-variance ``(b, M, k)``."""
        mu, logvar = self.experts(x).chunk(2, -1)
        return mu, clamp_logvar(logvar)

    @staticmethod
    def posterior(mu: torch.Tensor, logvar: torch.Tensor, subsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Subset posteriors q~(z | X_A) for experts ``(b, M, k)`` and subsets ``(..., b, M)``: ``(..., b, k)`` each.
        The product of the subset's experts alone; an empty subset's is the prior."""
        prior_power = (~subsets.any(-1)).to(mu.dtype)  # (..., b) 1 only where nothing is in the subset
        return product_of_experts(mu, logvar, subsets, prior_power)

    def objective_subsets(self, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixture's components for each row and their weights: subsets ``(S, b, M)`` and weights ``(S, b)``,
        uniform over the row's valid components (zero for a row with nothing observed)."""
        if self.all_subsets is not None:  # every non-empty subset A of the M modalities, valid where A ⊆ X_o
            subsets = self.all_subsets.unsqueeze(1).expand(-1, present.shape[0], -1)  # (S, b, M)
            valid = available_subsets(present, self.all_subsets).T  # (S, b)
        else:
            subsets = uniform_nonempty_subsets(present, self.cfg.n_subsets)  # (S, b, M)
            valid = subsets.any(-1)  # (S, b) empty only where nothing is observed
        weights = valid.to(self.dtype)  # (S, b)
        return subsets, weights / weights.sum(0).clamp_min(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters ``(b, P)`` for latents ``(b, k)``: every modality's decoder p(x_j | z) reads z."""
        return self.decoders(z.unsqueeze(1).expand(-1, self.layout.n_modalities, -1))

    # --- objective: the generalized multimodal ELBO ---------------------------------------------------
    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative ELBO per row, averaged over the batch: the reconstruction from one mixture component per row,
        and the mixture's average KL."""
        x = x * observed  # a hidden value never reaches a network
        present = self.layout.modality_mask(observed)  # (b, M)
        subsets, weights = self.objective_subsets(present)  # (S, b, M), (S, b)
        mu, logvar = self.posterior(*self.expert_params(x), subsets)  # (S, b, k)
        kl = (weights * gaussian_kl(mu, logvar).sum(-1)).sum(0)  # (b,) upper bound of KL(q(z | X) || p(z))
        component = gumbel_perturb(weights.log()).argmax(0)  # (b,) one component per row, by the Gumbel-max trick
        rows = torch.arange(x.shape[0], device=x.device)
        z = reparameterize(mu[component, rows], logvar[component, rows])  # (b, k)
        log_p = self.layout.per_modality_sum(self.likelihood.log_prob(self.decode(z), x))  # (b, M)
        rec = (log_p * present).sum(-1)  # (b,) every observed modality; 0 for a row with nothing observed
        elbo = rec - self.cfg.beta * kl
        return {"loss": -elbo.mean(), "rec": -rec.mean(), "kl": kl.mean()}

    # --- imputation and generation -----------------------------------------------------------------
    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """z ~ q~(z | X_o) (the prior where nothing is observed), decoder mean / mode. ``(b, D)``."""
        present = self.layout.modality_mask(observed)  # (b, M)
        mu, logvar = self.posterior(*self.expert_params(x * observed), present)  # (b, k)
        return self.likelihood.mode(self.decode(reparameterize(mu, logvar)))

    @torch.no_grad()
    def generate(self, n: int) -> tuple[torch.Tensor, None]:
        """``n`` rows from the prior, z ~ N(0, I) (the posterior of an empty row), decoder mode; no mask."""
        return self.impute_from_nothing(n), None
