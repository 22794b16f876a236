"""mrVAE: the multimodal relational VAE, which learns which latent factors each subset of modalities shares.

Sutter & Vogt, "Multimodal Relational VAE" (papers/003). Each modality x_j has its own latent z_j of
D = ``latent_dim`` factors (section 2). Every subset A of the modalities with |A| >= 2 has a latent
subspace S_A of the factors its modalities share; of its |S_A| = min_{j in A} D_j = D possible factors it
takes n_A (section 3.1), and each modality j in A contributes the n_A factors y_{j,A} of z_j it selects
(section 3.2). The factors of z_j that no shared subspace takes are private to x_j (its subspace S_{j}).

One training step, for a batch with modality-level missingness (a modality is observed or not):

1. Encoders q(z_j | x_j) = N(mu_j, diag sigma_j^2) for every modality; z_j drawn by reparameterisation.
2. Counts (eq. 1; appendix E.1, eqs. 33-35): for every shared subset A, categorical weights
   c_A = ReLU(FC(1/|A| sum_{j in A} ReLU(FC(z_j)))) over {0, ..., D}, the mean taken over the *observed*
   modalities of A ("to handle missing modalities"); n_A drawn by a straight-through Gumbel-softmax.
3. Selection (eq. 2; E.2, eqs. 36-38): weights w_{j,A} = ReLU(FC(1/|A| sum_{i in A} ReLU(FC(z_i)))) over
   z_j's D factors, the mean again over the observed members of A; Gumbel-perturbed, sorted by NeuralSort
   (straight-through), and the first n_A rows of the permutation select y_{j,A}, ranked.
4. Aggregation: the rank-i selected factor of every observed member of A encodes the same thing, so
   S_A's i-th factor is their product of experts (no prior expert; the prior where no member is observed),
   drawn once. Modality j's decoder reads z_j with each shared factor replaced by its subspace's aggregate
   (eq. 26: x_j depends only on the subspaces A that contain j, and on its private factors); a missing
   modality's private factors come from the prior N(0, I).
5. Objective (Definition 3, eq. 4): sum_{j observed} log p(x_j | .) - KL(q(z | n, y) || p(z))
   - KL(r(n, y | z) || q(n, y)), the first KL over the factors actually used (each shared subspace's
   aggregates and each observed modality's private factors) against N(0, I), analytically.

Where the paper is silent or inconsistent, our choices, and why:

* **Disjoint selections.** Definition 2 assigns each factor of z_j to exactly one subspace, while eq. (2)
  selects the top n_A factors independently per subspace, which may pick a factor twice. We process the
  shared subspaces in a fixed order and each
  selects among the factors not yet taken (the largest subsets first; within a size, the reverse of
  :func:`~imputebench.nn.subsets.nonempty_subsets`' lexicographic order); the factors left are private. So that every member of A can
  give n_A factors, n_A is truncated to the fewest free factors among A's members (the truncation is part
  of the forward pass only). Definition 1's prior makes sum_{A ∋ j} n_A = D_j; here it holds by construction,
  with the private count the remainder.
* **The sign of the last term of eq. (4).** The paper writes E_q[... - log q(n, y) / r(n, y | z)], with
  q(n, y) the prior of Definitions 1-2 and r the posterior approximation whose networks appendix E
  describes and samples from. Sampling (n, y) from r, as E.1-E.2 do, the valid bound has
  -KL(r(n, y | z) || q(n, y)) (a VAE with discrete latents); we use that. (Appendix C's derivation,
  eqs. 15-22, has duplicated and garbled lines and does not settle it.)
* **The count prior.** Definition 1's central multivariate hypergeometric over {n_A}_{A ∋ j} has its mass
  on sum_A n_A = D_j, where the independent categoricals of eq. (1) have none; we compare each r(n_A | z_A)
  with the prior's marginal for one subspace, Hypergeometric(N = 2^(M-1) D, K = D, n = D), exactly
  (:func:`~imputebench.nn.hypergeometric.hypergeometric_marginal_log_prob`).
* **The selection prior.** Definition 2's uniform assignment; the KL of the Plackett-Luce selection
  against it is estimated at the drawn selection, as log PL_w(y) - log PL_uniform(y), with the ranking
  held fixed (its gradient reaches the weights w, not through the sample).
* The relation networks are ``relation_width`` wide; the temperature of the Gumbel-softmax and NeuralSort
  is ``temperature`` (the paper gives neither). The ReLU on c_A and w (eqs. 35, 38) is kept.
* 2^M - 1 subsets: a table's features are its modalities, so mrVAE refuses more than ``max_modalities``.
* Imputation: the same pass on the observed modalities, then the decoder's mean / mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from imputebench.models.base import ImputerModule
from imputebench.models.config_types import Count, NonNegativeFloat, PositiveFloat
from imputebench.models.modality_networks import ModalityNetworksConfig, SelectsOnValidationLoss, modality_networks
from imputebench.models.registry import register_model
from imputebench.nn.elbo import clamp_logvar, gaussian_kl, product_of_experts, reparameterize
from imputebench.nn.hypergeometric import hypergeometric_marginal_log_prob
from imputebench.nn.mlp import GroupedLinear
from imputebench.nn.relaxed_sort import first_rows_weight, gumbel_perturb, gumbel_softmax_count, neural_sort
from imputebench.nn.subsets import nonempty_subsets
from imputebench.schema import FeatureSchema

#: how far below a row's lowest score a factor already taken is put, so that it sorts after every free one
_TAKEN_MARGIN = 10.0


@dataclass(frozen=True)
class MrVAEConfig(ModalityNetworksConfig):
    """The networks MoPoE-VAE shares (:mod:`imputebench.models.modality_networks`), and the relation networks."""

    relation_width: Count = 64  # hidden width of the count and selection networks (E.1-E.2 give none)
    temperature: PositiveFloat = 1.0  # of the Gumbel-softmax counts and the NeuralSort selections
    beta: NonNegativeFloat = 1.0  # weight of KL(q(z | n, y) || p(z))
    max_modalities: Count = 6  # 2^M - 1 subsets; more is refused


class RelationNetworks(nn.Module):
    """r_psi's networks for the shared subsets (E.1-E.2): the count weights c_A ``(b, S, D + 1)`` and the
    selection weights w_{j,A} ``(b, P, D)`` of every (subset, member) pair, each a mean over observed modalities.

    ``pairs``: ``(P, 2)`` (subset index, modality) of every member of every shared subset;
    ``triples``: ``(T, 3)`` (pair index, input modality, subset index) for eq. 37's inner sum.
    """

    def __init__(self, pairs: torch.Tensor, triples: torch.Tensor, n_subsets: int, latent: int, width: int) -> None:
        super().__init__()
        self.n_subsets, self.n_pairs = n_subsets, pairs.shape[0]
        self.register_buffer("pairs", pairs, persistent=False)
        self.register_buffer("triples", triples, persistent=False)
        self.count_inner = GroupedLinear(pairs.shape[0], latent, width)  # FC_{A,j} of eq. 35
        self.count_outer = GroupedLinear(n_subsets, width, latent + 1)  # FC_A of eq. 35
        self.select_inner = GroupedLinear(triples.shape[0], latent, width)  # FC_{A,j,i} of eq. 38
        self.select_outer = GroupedLinear(pairs.shape[0], width, latent)  # FC_{A,j} of eq. 38

    @staticmethod
    def _mean(values: torch.Tensor, weight: torch.Tensor, group: torch.Tensor, n_groups: int) -> torch.Tensor:
        """Per group, the mean of ``values`` ``(b, E, H)`` over its observed entries (``weight`` ``(b, E)``): ``(b, G, H)``."""
        total = values.new_zeros(values.shape[0], n_groups, values.shape[-1]).index_add(1, group, values * weight.unsqueeze(-1))
        count = weight.new_zeros(weight.shape[0], n_groups).index_add(1, group, weight)  # (b, G)
        return total / count.clamp_min(1).unsqueeze(-1)  # (b, G, H); zero where nothing is observed

    def forward(self, z: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        observed = present.to(z.dtype)  # (b, M)
        subset, member = self.pairs.unbind(-1)  # (P,), (P,)
        inner = torch.relu(self.count_inner(z.index_select(1, member)))  # (b, P, H)
        counts = torch.relu(self.count_outer(self._mean(inner, observed.index_select(1, member), subset, self.n_subsets)))  # (b, S, D + 1)
        pair, source, _ = self.triples.unbind(-1)  # (T,) each
        inner = torch.relu(self.select_inner(z.index_select(1, source)))  # (b, T, H)
        weights = torch.relu(self.select_outer(self._mean(inner, observed.index_select(1, source), pair, self.n_pairs)))  # (b, P, D)
        return counts, weights


def taken_last(scores: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
    """``scores`` ``(..., D)`` with the factors not ``free`` (taken by an earlier subspace) moved below every other,
    by a margin: far enough that they rank last, near enough that float32 keeps the free scores' differences."""
    floor = scores.detach().amin(-1, keepdim=True) - _TAKEN_MARGIN  # (..., 1)
    return torch.where(free.detach() > 0.5, scores, floor)


def plackett_luce_log_ratio(scores: torch.Tensor, permutation: torch.Tensor, free: torch.Tensor,
                            keep: torch.Tensor) -> torch.Tensor:
    """log PL_w(y) - log PL_uniform(y) of the selection's kept rows: ``(...)``.

    ``scores`` ``(..., D)`` log-weights; ``permutation`` ``(..., D, D)`` the drawn ranking (row i one-hot at the
    rank-i factor, held fixed); ``free`` ``(..., D)`` the factors that could be chosen; ``keep`` ``(..., D)``
    how much of each row counts. At step i the candidates are the free factors not chosen at steps < i:
    log PL_w = sum_i [w_{sigma_i} - logsumexp_{candidates_i} w], log PL_uniform = -sum_i log |candidates_i|.
    """
    chosen = permutation.detach()  # (..., D, D)
    before = chosen.cumsum(-2) - chosen  # (..., D, D) row i: the factors chosen at steps < i
    candidates = (free.detach().unsqueeze(-2) - before).clamp(0, 1)  # (..., D, D)
    floor = scores.detach().amin(-1, keepdim=True).unsqueeze(-1) - 1e3  # (..., 1, 1) far below every candidate
    log_norm = torch.logsumexp(torch.where(candidates > 0.5, scores.unsqueeze(-2), floor), -1)  # (..., D)
    log_pl = (chosen * scores.unsqueeze(-2)).sum(-1) - log_norm  # (..., D)
    log_uniform = -torch.log(candidates.sum(-1).clamp_min(1))  # (..., D)
    return (keep * (log_pl - log_uniform)).sum(-1)


@register_model("mrvae")
class MrVAE(SelectsOnValidationLoss, ImputerModule):
    """Per-modality latents whose shared factors are selected per subset of modalities and aggregated (relational ELBO)."""

    Config = MrVAEConfig

    def build(self, schema: FeatureSchema) -> None:
        cfg, n_mod, latent = self.cfg, self.layout.n_modalities, self.cfg.latent_dim
        if n_mod > cfg.max_modalities or n_mod < 2:
            raise ValueError(f"mrVAE models the 2^M - 1 subsets of M modalities (a table's features): needs "
                             f"2 <= M <= max_modalities = {cfg.max_modalities}, got M = {n_mod}")
        self.likelihood, self.experts, self.decoders = modality_networks(self.layout, cfg)
        subsets = nonempty_subsets(n_mod)  # (2^M - 1, M) by size, then lexicographically
        shared = subsets[subsets.sum(-1) >= 2].flip(0)  # (S, M) the largest first: the order of selection
        self.sizes = shared.sum(-1).tolist()  # python ints: the loop over subsets never reads the device
        members = [row.nonzero().flatten() for row in shared]
        self.register_buffer("members", torch.stack([nn.functional.pad(m, (0, n_mod - len(m))) for m in members]),
                             persistent=False)  # (S, M) padded
        self.offsets = [0, *torch.tensor(self.sizes).cumsum(0).tolist()]  # pairs of subset s: offsets[s]:offsets[s + 1]
        pairs = [(s, j) for s, m in enumerate(members) for j in m.tolist()]  # every (subset, member)
        # eq. 37's inner sum: the selection weights of member a of subset s read every modality i of s
        triples = [(self.offsets[s] + a, i, s) for s, m in enumerate(members) for a in range(len(m)) for i in m.tolist()]
        pairs, triples = torch.tensor(pairs), torch.tensor(triples)  # (P, 2), (T, 3)
        self.relations = RelationNetworks(pairs, triples, len(members), latent, cfg.relation_width)
        # Definition 1's prior, one subspace's marginal: 2^(M-1) subspaces of capacity D per modality, D drawn.
        marginal = hypergeometric_marginal_log_prob([latent] * 2 ** (n_mod - 1), latent)[0]  # (D + 1,)
        self.register_buffer("count_prior", marginal.to(torch.get_default_dtype()), persistent=False)

    # --- one pass: encoders, relations, subspaces ------------------------------------------------------
    def relate(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Steps 1-4 of the module docstring for zero-filled ``x`` ``(b, D_x)``. Returns the decoders' ``inputs``
        ``(b, M, D)``; per row the KL of the factors used, of the counts and of the selections (``kl_factors``,
        ``kl_counts``, ``kl_select``, ``(b,)`` each); and the assignment: ``shared`` ``(b, S)`` the factors each
        shared subspace took (n_A after truncation) and ``private`` ``(b, M, D)`` the factors left to each modality."""
        tau, latent = self.cfg.temperature, self.cfg.latent_dim
        present = self.layout.modality_mask(observed)  # (b, M)
        mu, raw = self.experts(x).chunk(2, -1)  # (b, M, D) each
        logvar = clamp_logvar(raw)
        z = reparameterize(mu, logvar)  # (b, M, D)
        count_logits, select_scores = self.relations(z, present)  # (b, S, D + 1), (b, P, D)
        counts = gumbel_softmax_count(count_logits, tau)  # (b, S, D + 1) straight-through one-hot n_A
        log_r = torch.log_softmax(count_logits, -1)  # (b, S, D + 1)
        kl_counts = (log_r.exp() * (log_r - self.count_prior)).sum((-1, -2))  # (b,)
        free = torch.ones_like(mu)  # (b, M, D) factors not yet taken (straight-through 0 / 1)
        inputs = torch.zeros_like(mu)  # (b, M, D) what each modality's decoder reads
        kl_factors, kl_select, shared = mu.new_zeros(x.shape[0]), mu.new_zeros(x.shape[0]), []
        ranks = torch.arange(latent, device=x.device)  # (D,)
        for s, size in enumerate(self.sizes):  # the shared subsets, largest first
            member = self.members[s, :size]  # (|A|,)
            room = (free.index_select(1, member).detach() > 0.5).sum(-1).amin(-1)  # (b,) free factors every member still has
            keep = first_rows_weight(counts[:, s], latent) * (ranks < room.unsqueeze(-1))  # (b, D) P(n_A > i), truncated
            order, kl = self.select(select_scores[:, self.offsets[s]:self.offsets[s + 1]], free.index_select(1, member), keep)
            chosen = order * keep[:, None, :, None]  # (b, |A|, D, D) y_{j,A}: the kept rows
            z_s, kl_s = self.aggregate(order, mu.index_select(1, member), logvar.index_select(1, member),
                                        present.index_select(1, member), keep)  # (b, D), (b,)
            placed = (chosen.transpose(-1, -2) @ z_s[:, None, :, None]).squeeze(-1)  # (b, |A|, D) factor k <- its rank's
            inputs = inputs.index_add(1, member, placed)
            free = free.index_add(1, member, -chosen.sum(-2))  # (b, M, D)
            kl_factors, kl_select = kl_factors + kl_s, kl_select + kl
            shared.append((keep.detach() > 0.5).sum(-1))  # (b,)
        private = torch.where(present.unsqueeze(-1), z, torch.randn_like(z))  # (b, M, D) a missing x_j's: the prior
        inputs = inputs + free * private
        kl_factors = kl_factors + (free * gaussian_kl(mu, logvar) * present.unsqueeze(-1)).sum((-1, -2))
        return {"inputs": inputs, "kl_factors": kl_factors, "kl_counts": kl_counts, "kl_select": kl_select,
                "shared": torch.stack(shared, -1), "private": free.detach()}

    def select(self, weights: torch.Tensor, free: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y_{j,A} for every member of one subset (E.2): the straight-through NeuralSort ranking ``(b, |A|, D, D)`` of
        its Gumbel-perturbed weights ``(b, |A|, D)`` among the ``free`` factors ``(b, |A|, D)``, and the estimated KL
        of its kept rows (``keep`` ``(b, D)``) against the uniform selection, summed over members ``(b,)``."""
        scores = taken_last(gumbel_perturb(weights), free)  # (b, |A|, D)
        order = neural_sort(scores, self.cfg.temperature, hard=True)  # (b, |A|, D, D) row i: the rank-i factor
        return order, plackett_luce_log_ratio(weights, order, free, keep.unsqueeze(1)).sum(-1)

    @staticmethod
    def aggregate(order: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, seen: torch.Tensor,
                  keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A subspace's factors (step 4): the rank-i factor of each observed member ``(b, |A|, D)`` is one expert;
        their product (the prior where no member is observed) is drawn once. Returns the factors by rank ``(b, D)``
        and the KL of the kept ones against N(0, 1) ``(b,)``."""
        mu_ranked = (order @ mu.unsqueeze(-1)).squeeze(-1)  # (b, |A|, D) each member's rank-i factor
        logvar_ranked = (order @ logvar.unsqueeze(-1)).squeeze(-1)  # (b, |A|, D)
        nobody = (~seen.any(-1)).to(mu.dtype)  # (b,)
        mu_s, logvar_s = product_of_experts(mu_ranked, logvar_ranked, seen, nobody)  # (b, D) per rank, over members
        return reparameterize(mu_s, logvar_s), (keep * gaussian_kl(mu_s, logvar_s)).sum(-1)

    # --- objective (Definition 3, eq. 4) ------------------------------------------------------------
    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative eq. (4) per row, averaged over the batch, with its parts."""
        x = x * observed  # a hidden value never reaches a network
        present = self.layout.modality_mask(observed)  # (b, M)
        parts = self.relate(x, observed)
        log_p = self.layout.per_modality_sum(self.likelihood.log_prob(self.decoders(parts["inputs"]), x))  # (b, M)
        rec = (log_p * present).sum(-1)  # (b,)
        elbo = rec - self.cfg.beta * parts["kl_factors"] - parts["kl_counts"] - parts["kl_select"]
        return {"loss": -elbo.mean(), "rec": -rec.mean(), "kl": parts["kl_factors"].mean(),
                "kl_counts": parts["kl_counts"].mean(), "kl_select": parts["kl_select"].mean()}

    # --- imputation and generation -----------------------------------------------------------------
    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """One pass on the observed modalities, then every decoder's mean / mode. ``(b, D_x)``."""
        return self.likelihood.mode(self.decoders(self.relate(x * observed, observed)["inputs"]))

    @torch.no_grad()
    def generate(self, n: int) -> tuple[torch.Tensor, None]:
        """``n`` rows with nothing observed: every factor from the prior, decoder mode; no mask."""
        return self.impute_from_nothing(n), None
