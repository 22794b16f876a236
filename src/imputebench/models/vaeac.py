"""VAEAC: Variational Autoencoder with Arbitrary Conditioning (Ivanov, Figurnov & Vetrov, ICLR 2019; papers/002).

The paper writes ``b`` for the mask of UNOBSERVED features (b_i = 1: x_i is to be
generated, b_i = 0: x_i is conditioned on); the project's ``observed`` is True for
observed entries. The conversion happens in :meth:`VAEAC.loss`, :meth:`VAEAC.iwae`
and :meth:`VAEAC.impute_batch`; every tensor named ``unobserved`` below is the
paper's ``b`` per modality ``(B, M)``: per feature for a table, whose features are its
modalities; per image or label for the multimodal sets, whose missingness is per modality,
so the training masks b hide whole modalities as the test masks do.

* Prior network p_psi(z | x_{1-b}, b), proposal network q_phi(z | x, b) and
  generative network p_theta(x_b | z, x_{1-b}, b) (section 4.2), all diagonal
  Gaussians in z; the generative network emits Gaussian means (sigma fixed to 1,
  A.2) for real features and softmax logits for categorical ones.
* Objective: the lower bound of eq. (6), E_q log p(x_b | z, x_{1-b}, b) - KL(q || p_psi),
  plus the Normal-Gamma regulariser of eq. (8) on the prior's parameters (4.3.2).
* Missing training values (4.3.3, A.2): missing features are always unobserved,
  every other feature is unobserved with probability ``unobserved_rate`` (0.2), drawn
  per feature, per row and per step; the reconstruction covers the unobserved
  features that are not missing (eq. 9); the missing-feature mask is an extra input
  of the proposal network.
* Imputation: z ~ p_psi(z | x_o, b = missing), then the generative network's mean
  (real) / most probable category; the base pools ``n_imputations`` draws (5.1).
* Model selection: the epoch with the best validation IWAE estimate of
  log p(x_b | x_{1-b}, b) (the authors' ``impute.py``, 25 samples).

Network layout, from the authors' public code (github.com/tigvarts/vaeac,
``imputation_networks.py``, ``nn_utils.MemoryLayer``), since the paper only says
"fully connected ResNet blocks" with "skip-connections between prior network and
generative network ... implemented using concatenation" (A.1):

* prior: ``u = [x_{1-b}, b]`` -> Linear(width) -> LeakyReLU -> ``depth`` residual
  blocks ``h + LeakyReLU(Linear(h))`` -> Linear(2 * latent). The input of every
  block and the trunk's output are kept: ``depth + 1`` skip tensors ``s_0 .. s_depth``.
* proposal: the same trunk on ``[x, missing, b]``, without skips.
* generative: z -> Linear(width) -> LeakyReLU -> ``depth + 1`` residual blocks
  ``g + LeakyReLU(Linear([g, s_{depth - i}]))`` (U-Net order: the prior's last
  state meets the generator's first block) -> Linear on ``[g, u]`` -> parameters.

Latent Gaussians follow the authors' ``normal_parse_params``: sigma = softplus(.)
clipped below at ``min_sigma`` (1e-3); the log-variance is then clamped by
:func:`clamp_logvar` as everywhere in this package.

Training batches follow the authors' ``impute.py``: a short last batch is topped up to
``batch_size`` (their ``extend_batch``), here with the rows at the start of the epoch's order
where they take the first batch of a fresh shuffle (``fill_last_batch``).

Two choices of ours, stated: the authors multiply the negative bound by the number of
features (``vlb_scale_factor``); Adam is invariant to a constant loss scale, so we do
not. Validation draws its masks b and its latent samples from a generator re-seeded
every epoch (common random numbers), so epochs are compared on the same masks; the
authors draw fresh masks at each validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from imputebench.models.base import ImputerModule, TrainingConfig
from imputebench.models.config_types import Count, PositiveFloat, Probability
from imputebench.models.registry import register_model
from imputebench.nn.elbo import (
    clamp_logvar,
    gaussian_kl_between,
    gaussian_log_prob,
    iwae_bound,
    masked_log_lik,
    reparameterize,
)
from imputebench.nn.heads import TabularLikelihood
from imputebench.schema import FeatureSchema


@dataclass(frozen=True)
class VAEACConfig(TrainingConfig):
    """Defaults of the authors' tabular networks (``imputation_networks.py``) and the paper (4.3, A.2)."""

    lr: PositiveFloat = 3e-4  # imputation_networks.py: Adam(parameters, lr=3e-4)
    batch_size: Count = 64  # imputation_networks.py: 'batch_size': 64
    width: Count = 256  # imputation_networks.py: width = 256
    depth: Count = 10  # imputation_networks.py: depth = 10 residual blocks per network (11 in the generator)
    latent_dim: Count = 64  # imputation_networks.py: latent_dim = 64 (z in R^d, section 4.2)
    unobserved_rate: Probability = 0.2  # A.2: p(b_i | x) = 0.2 for non-missing x_i (MCARGenerator(0.2))
    gaussian_variance: PositiveFloat = 1.0  # A.2: "fix sigma_theta = 1" (SetGaussianSigmasToOne)
    sigma_mu: PositiveFloat = 1e4  # 4.3.2, eq. (8): N(mu_psi | 0, sigma_mu)
    sigma_sigma: PositiveFloat = 1e-4  # 4.3.2, eq. (8): Gamma(sigma_psi | 2, sigma_sigma)
    min_sigma: PositiveFloat = 1e-3  # VAEAC.py: normal_parse_params(params, 1e-3) for prior and proposal
    validation_iwae_samples: Count = 25  # impute.py: --validation_iwae_num_samples, default 25
    fill_last_batch: bool = True  # impute.py: extend_batch tops the last batch up to batch_size


def sample_unobserved(present: torch.Tensor, rate: float) -> torch.Tensor:
    """The paper's b ~ p(b | x) of A.2: ``(B, d)`` bool, True = unobserved.

    Missing features (``present`` False) are always unobserved (4.3.3: x_i = omega => b_i = 1);
    every present feature independently with probability ``rate``.
    """
    return ~present | (torch.rand(present.shape, device=present.device) < rate)


def normal_gamma_log_prior(
    mu: torch.Tensor, logvar: torch.Tensor, sigma_mu: float, sigma_sigma: float
) -> torch.Tensor:
    """The regulariser of eq. (8), per row: sum_k -mu_k^2 / (2 sigma_mu^2) + sigma_sigma (log sigma_k - sigma_k).

    ``mu``/``logvar``: the prior network's ``(..., k)``; returns ``(...)``.
    """
    sigma = torch.exp(0.5 * logvar)
    return (-mu.pow(2) / (2.0 * sigma_mu**2) + sigma_sigma * (0.5 * logvar - sigma)).sum(-1)


class ResidualTrunk(nn.Module):
    """Linear -> LeakyReLU -> ``depth`` blocks ``h + LeakyReLU(Linear(h))`` -> Linear (authors' FC ResNet)."""

    def __init__(self, in_dim: int, width: int, depth: int, out_dim: int) -> None:
        super().__init__()
        self.stem = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.head = nn.Linear(width, out_dim)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output ``(B, out)`` and the ``depth + 1`` states ``(B, width)``: each block's input, then the last."""
        h = F.leaky_relu(self.stem(inputs))
        states = [h]
        for block in self.blocks:
            h = h + F.leaky_relu(block(h))
            states.append(h)
        return self.head(h), states


def split_linear(first_dim: int, second_dim: int, out_dim: int) -> tuple[nn.Linear, nn.Linear]:
    """``nn.Linear(first_dim + second_dim, out_dim)`` on a concatenation ``[a, c]``, as two layers
    ``W_a a + b`` and ``W_c c`` (bias once) initialised exactly as the single layer would be."""
    joint = nn.Linear(first_dim + second_dim, out_dim)
    first, second = nn.Linear(first_dim, out_dim), nn.Linear(second_dim, out_dim, bias=False)
    with torch.no_grad():
        first.weight.copy_(joint.weight[:, :first_dim])
        first.bias.copy_(joint.bias)
        second.weight.copy_(joint.weight[:, first_dim:])
    return first, second


class SkipGenerator(nn.Module):
    """p_theta(x_b | z, x_{1-b}, b): residual blocks fed the prior network's states by concatenation (A.1).

    Each block is the authors' ``Linear(2 * width, width)`` on ``[g, s]``, held as the two halves
    ``W_g g + c`` (``blocks``) and ``W_s s`` (``skip_blocks``) of :func:`split_linear`; the output
    layer on ``[g, u]`` likewise (``head``, ``cond_head``). The skip and conditioning halves depend
    on the row only, so they are computed once per row and broadcast over the latent samples,
    which halves the blocks' arithmetic when scoring K samples of z (the validation IWAE).
    """

    def __init__(self, latent_dim: int, width: int, depth: int, cond_dim: int, out_dim: int) -> None:
        super().__init__()
        self.stem = nn.Linear(latent_dim, width)
        pairs = [split_linear(width, width, width) for _ in range(depth + 1)]
        self.blocks = nn.ModuleList(block for block, _ in pairs)
        self.skip_blocks = nn.ModuleList(skip for _, skip in pairs)
        self.head, self.cond_head = split_linear(width, cond_dim, out_dim)

    def forward(self, z: torch.Tensor, skips: list[torch.Tensor], cond: torch.Tensor) -> torch.Tensor:
        """``z`` ``(..., B, k)``; ``skips`` ``depth + 1`` x ``(B, width)`` and ``cond`` ``(B, c)`` broadcast
        over the leading sample axes. Returns ``(..., B, P)``."""
        g = F.leaky_relu(self.stem(z))  # (..., B, width)
        for block, skip_block, skip in zip(self.blocks, self.skip_blocks, reversed(skips)):
            g = g + F.leaky_relu(block(g) + skip_block(skip))  # (..., B, width) + (B, width)
        return self.head(g) + self.cond_head(cond)  # (..., B, P)


@register_model("vaeac")
class VAEAC(ImputerModule):
    """Variational autoencoder with arbitrary conditioning: prior, proposal and skip-connected generative networks."""

    Config = VAEACConfig
    uses_family_presets = False  # the authors' own learning rate and epochs, not the VSAE paper's
    monitor = "val_iwae"  # the epoch with the best validation IWAE is kept (the authors' impute.py)

    def build(self, schema: FeatureSchema) -> None:
        cfg = self.cfg
        if not 0.0 <= cfg.unobserved_rate <= 1.0:
            raise ValueError(f"unobserved_rate must be in [0, 1], got {cfg.unobserved_rate}")
        if cfg.depth < 0 or cfg.validation_iwae_samples < 1 or cfg.min_sigma <= 0:
            raise ValueError("depth must be >= 0, validation_iwae_samples >= 1 and min_sigma > 0")
        D, d = schema.encoded_dim, self.layout.n_modalities  # b is per modality (a table's features)
        self.likelihood = TabularLikelihood(schema, variance=cfg.gaussian_variance, pixel_likelihood=cfg.pixel_likelihood)
        self.prior_net = ResidualTrunk(D + d, cfg.width, cfg.depth, 2 * cfg.latent_dim)  # [x_{1-b}, b]
        self.proposal_net = ResidualTrunk(D + 2 * d, cfg.width, cfg.depth, 2 * cfg.latent_dim)  # [x, missing, b]
        self.generative_net = SkipGenerator(cfg.latent_dim, cfg.width, cfg.depth, D + d, self.likelihood.param_dim)

    # --- networks -------------------------------------------------------------------------------
    def _gaussian(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Authors' ``normal_parse_params``: mean, sigma = softplus clipped at ``min_sigma``. ``(B, k)`` each."""
        mu, raw = params.chunk(2, -1)
        sigma = F.softplus(raw).clamp_min(self.cfg.min_sigma)
        return mu, clamp_logvar(2.0 * sigma.log())

    def prior(
        self, x: torch.Tensor, unobserved: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """p_psi(z | x_{1-b}, b) on zero-filled ``x`` ``(B, D)``: ``(mu, logvar, skips, u)``."""
        b = unobserved.float()  # (B, M)
        u = torch.cat([x * self.layout.expand_modalities(1.0 - b), b], -1)  # (B, D + M): x_{1-b} = x o (1 - b), 4.2
        params, skips = self.prior_net(u)
        return (*self._gaussian(params), skips, u)

    def proposal(
        self, x: torch.Tensor, present: torch.Tensor, unobserved: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q_phi(z | x, b) with the missing-feature mask as an extra input (4.3.3): ``(mu, logvar)``."""
        params, _ = self.proposal_net(torch.cat([x, (~present).float(), unobserved.float()], -1))
        return self._gaussian(params)

    # --- objective ------------------------------------------------------------------------------
    def terms(self, x: torch.Tensor, observed: torch.Tensor, unobserved: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-row parts of the bound for a given b ``(B, M)``: ``rec`` (eq. 9), ``kl`` (eq. 6), ``reg`` (eq. 8)."""
        x = x * observed  # hidden values never reach a network
        present = self.layout.modality_mask(observed)  # (B, M)
        mu_q, lv_q = self.proposal(x, present, unobserved)
        mu_p, lv_p, skips, u = self.prior(x, unobserved)
        params = self.generative_net(reparameterize(mu_q, lv_q), skips, u)  # (B, P)
        scored = unobserved & present  # eq. (9): i with b_i = 1 and x_i != omega
        return {
            "rec": masked_log_lik(self.layout.per_modality_sum(self.likelihood.log_prob(params, x)), scored),  # (B,)
            "kl": gaussian_kl_between(mu_q, lv_q, mu_p, lv_p).sum(-1),  # (B,)
            "reg": normal_gamma_log_prior(mu_p, lv_p, self.cfg.sigma_mu, self.cfg.sigma_sigma),  # (B,)
        }

    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        # Boundary: the project's observed (True = observed) -> the paper's b (True = unobserved).
        unobserved = sample_unobserved(self.layout.modality_mask(observed), self.cfg.unobserved_rate)
        t = self.terms(x, observed, unobserved)
        bound = t["rec"] - t["kl"] + t["reg"]  # (B,) eq. (6) + eq. (8)
        return {"loss": -bound.mean(), "rec": -t["rec"].mean(), "kl": t["kl"].mean(), "reg": -t["reg"].mean()}

    def iwae(self, x: torch.Tensor, observed: torch.Tensor, unobserved: torch.Tensor, k: int) -> torch.Tensor:
        """IWAE estimate of log p(x_b | x_{1-b}, b) with ``k`` samples from q (authors' ``batch_iwae``). ``(B,)``.

        Weights p_theta(x_b | z, x_{1-b}, b) p_psi(z | x_{1-b}, b) / q_phi(z | x, b), scored on
        the unobserved features that are not missing, as in training.
        """
        x = x * observed
        present = self.layout.modality_mask(observed)
        mu_q, lv_q = self.proposal(x, present, unobserved)  # (B, k_z)
        mu_p, lv_p, skips, u = self.prior(x, unobserved)
        z = mu_q + torch.exp(0.5 * lv_q) * torch.randn(k, *mu_q.shape, device=x.device)  # (K, B, k_z)
        params = self.generative_net(z, skips, u)  # (K, B, P)
        log_lik = self.layout.per_modality_sum(self.likelihood.log_prob(params, x.expand(k, -1, -1)))  # (K, B, M)
        rec = masked_log_lik(log_lik, unobserved & present)  # (K, B)
        log_p = gaussian_log_prob(z, mu_p, lv_p).sum(-1)  # (K, B)
        log_q = gaussian_log_prob(z, mu_q, lv_q).sum(-1)  # (K, B)
        return iwae_bound(rec + log_p - log_q)

    # --- model selection by validation IWAE ------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_sum, self._val_rows = 0.0, 0

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        """Negative IWAE on the validation rows' observed entries; the truth of hidden entries is not used.

        b as in training (missing features b = 1 and unscored, the rest b = 1 with rate 0.2), drawn
        with a generator re-seeded per batch so every epoch sees the same masks and noise; seeded by
        the batch's single-process index, so a DDP rank scores its chunks exactly as one process does.
        """
        x, observed, _ = batch
        k = self.cfg.validation_iwae_samples
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed + 2 + self.validation_chunk(batch_idx))
            unobserved = sample_unobserved(self.layout.modality_mask(observed), self.cfg.unobserved_rate)
            rows = max(1, self.cfg.eval_rows // k)  # rows x samples per forward pass
            for xs, os, bs in zip(x.split(rows), observed.split(rows), unobserved.split(rows)):
                self._val_sum = self._val_sum - self.iwae(xs, os, bs, k).sum()
        self._val_rows += x.shape[0]

    def on_validation_epoch_end(self) -> None:
        total, rows = self.sum_over_ranks(self._val_sum, self._val_rows)  # every rank's rows, under DDP
        score = total / max(rows, 1)  # mean negative IWAE, lower is better
        self.log(self.monitor, score)

    # --- imputation -------------------------------------------------------------------------------
    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        # Boundary: every missing feature is unobserved (b = 1), every observed one conditioned on (b = 0).
        unobserved = ~self.layout.modality_mask(observed)
        mu_p, lv_p, skips, u = self.prior(x * observed, unobserved)
        return self.likelihood.mode(self.generative_net(reparameterize(mu_p, lv_p), skips, u))

    @torch.no_grad()
    def generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` rows given nothing observed (b = 1 everywhere): z ~ p_psi(z | b = 1), generator mode; no mask."""
        return self.impute_from_nothing(n), None
