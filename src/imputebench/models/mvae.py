"""MVAE: the multimodal variational autoencoder (Wu & Goodman, NeurIPS 2018; papers/004).

For tables every feature is a modality; a categorical feature's one-hot block is one. An image
is one modality of many pixels, a label another (the multimodal benchmarks).

* Generative model (section 2): p(z) = N(0, I) and p(x_1, ..., x_N | z) = prod_i p(x_i | z),
  Gaussian for numeric features, softmax for one-hot ones.
* Inference (section 2.1): one expert q~(z | x_i) per modality, combined with the prior expert
  into q(z | X) ∝ p(z) prod_{i in X} q~(z | x_i) (eq. 4, "MVAE"), or with ``quotient`` into
  prod_{i in X} q(z | x_i) / p(z)^(|X| - 1) (eq. 3, "MVAE-Q"), both by
  :func:`~imputebench.nn.elbo.product_of_experts`. A missing modality drops its expert; a row
  with nothing observed has the prior as its posterior.
* Objective: eq. (5) over each row's observed set X (section 2.2: with missing data "we can
  still sample partial data from X, ignoring modalities that are missing"):
  ELBO(X) + sum_{i in X} ELBO({x_i}) + sum_{j=1..k} ELBO(X_j), X_j random subsets of X, each
  ELBO the one of eq. (2), E_q(z|S)[sum_{i in S} lambda_i log p(x_i | z)] - beta KL(q(z | S) || p(z)).
* beta rises linearly from 0 to 1 over the first ``annealing_epochs`` epochs (section 2, appendix A).
* Imputation: z ~ q(z | x_o), then the decoder's mean (numeric) / mode (categorical); the
  base pools ``n_imputations`` draws.

The objective only sees experts ``(b, M, 2k)`` and per-modality log-likelihoods ``(..., M)``
(per-feature ones summed within each modality), so an image modality needs its own expert
network and likelihood head, nothing else.

Where the MVAE paper is silent about tables, the VSAE paper's re-implementation of MVAE as
a baseline (papers/000 Table 1, papers/001 D: "the same backbone architecture ... same size
of latent variables") decides, as noted per field of :class:`MVAEConfig`. Choices of ours,
stated:

* One decoder trunk with a head per feature, as VSAE implements "all the decoders of the data
  modalities as one single decoder" (papers/000 B.2); the paper draws one decoder per
  modality (Fig. 1b). The likelihood still factorises over modalities given z.
* The k random subsets are drawn per row (each observed modality kept with probability 1/2:
  uniform over the subsets of X) and per step; the paper samples them per mini-batch. A term
  whose subset is empty is exactly 0 (the prior posterior, nothing reconstructed).
* All 1 + d + k terms pass through the decoder as one stacked batch, so its batch
  normalisation sees the latents of every term together; evaluating them one by one, as
  the authors' scripts do, would be a Python loop over features.
* beta is annealed per training step, not per epoch (the authors' public training scripts,
  github.com/mhw32/multimodal-vae-public, as we know them, raise their annealing factor every
  mini-batch), and only inside :meth:`fit`; :meth:`loss` called on its own uses beta = 1,
  the bound itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from imputebench.models.base import ImputerModule, TrainingConfig
from imputebench.models.config_types import Count, NonNegativeFloat, NonNegativeInt, PositiveFloat
from imputebench.models.registry import register_model
from imputebench.nn.elbo import clamp_logvar, gaussian_kl, masked_log_lik, product_of_experts, reparameterize
from imputebench.nn.heads import TabularLikelihood
from imputebench.nn.mlp import PerModalityMLP, mlp
from imputebench.schema import FeatureSchema


@dataclass(frozen=True)
class MVAEConfig(TrainingConfig):
    """Learning rate and epochs come from the family presets (VSAE B.3 / long D: "Adam for all models")."""

    batch_size: Count = 100  # appendix A: "a minibatch size of 100" (MNIST, CelebA); VSAE gives none
    # z has latent_per_feature * M dimensions (M modalities; a table's features): VSAE's latent size,
    # 20 per modality (papers/000 B.2), which its baselines share ("same size of latent variables",
    # papers/001 D; long version: 2 for tables, 256 for images).
    latent_per_feature: Count = 20
    # Each expert q~(z | x_i) is VSAE's UCI unimodal encoder: "3-layer 64-dim MLPs ... followed by
    # Batch Normalization and Leaky ReLU" (papers/000 B.2), its output widened to 2 * dim z.
    expert_width: Count = 64
    expert_layers: Count = 3
    image_width: Count = 128  # an image's expert: VSAE long C.1, MNIST+MNIST "3-layer 128-dim MLPs" (no batch norm)
    decoder_width: Count = 128  # p(x | z): VSAE's UCI data decoder, Linear(dim z, 128) ... (papers/000 B.2)
    decoder_layers: Count = 3
    # log p(x_i | z) of a numeric feature is the negated squared error (VSAE's baselines, papers/001
    # B.1): a Gaussian of variance 1/2 on standardised data, as for AE / VAE / CVAE here.
    gaussian_variance: PositiveFloat = 0.5
    n_subsets: NonNegativeInt = 1  # k of eq. (5); "we set k = 1" with many modalities (section 4, MVAE19)
    # lambda_i of eq. (2) by modality name (a table's feature names); others get 1 ("In practice, lambda = 1",
    # section 2, and lambda_i = 1 for every modality in section 6).
    reconstruction_weights: Mapping[str, NonNegativeFloat] | None = None
    annealing_epochs: NonNegativeInt = 200  # appendix A: "We anneal beta from 0 to 1 linearly for the first 200 epochs"
    quotient: bool = False  # MVAE-Q: product and quotient of experts, no prior expert (eq. 3, appendix C)


def modality_weights(schema: FeatureSchema, weights: Mapping[str, float] | None) -> torch.Tensor:
    """lambda_i of eq. (2) per modality ``(M,)``: the named weights, 1 elsewhere; unknown names fail."""
    names = [name for name, _ in schema.modality_groups]
    unknown = sorted(set(weights or {}) - set(names))
    if unknown:
        raise ValueError(f"reconstruction_weights names unknown modalities {unknown}; known: {', '.join(names)}")
    return torch.tensor([float((weights or {}).get(name, 1.0)) for name in names])


def elbo_subsets(present: torch.Tensor, k: int) -> torch.Tensor:
    """The modality subsets of eq. (5) for each row, ``(1 + M + k, b, M)`` bool from ``present`` ``(b, M)``.

    Term 0 is the observed set X; terms 1..M the single modalities {x_i} (empty where x_i is
    missing); the last k are random subsets of X, every observed modality kept with
    probability 1/2, drawn per row.
    """
    b, m = present.shape
    singles = torch.eye(m, dtype=torch.bool, device=present.device).unsqueeze(1) & present  # (M, b, M)
    random = (torch.rand(k, b, m, device=present.device) < 0.5) & present  # (k, b, M)
    return torch.cat([present.unsqueeze(0), singles, random])


def kl_annealing(epoch: int, batch_idx: int, n_batches: int, annealing_epochs: int) -> float:
    """beta at a training step: linear from 1 / (A n) at the first step to 1 at the last step of
    epoch A - 1 (epochs counted from 0), then 1; A = ``annealing_epochs``, n = ``n_batches``.

    Appendix A: "We anneal beta from 0 to 1 linearly for the first 200 epochs", per step. A = 0: beta = 1.
    """
    if annealing_epochs == 0:
        return 1.0
    return min(1.0, (epoch * n_batches + batch_idx + 1) / (annealing_epochs * n_batches))


@register_model("mvae")
class MVAE(ImputerModule):
    """Product-of-experts VAE trained on the sub-sampled ELBO of eq. (5); MVAE-Q behind ``quotient``."""

    Config = MVAEConfig

    def build(self, schema: FeatureSchema) -> None:
        cfg, n_mod = self.cfg, self.layout.n_modalities
        if cfg.quotient and n_mod < 2:
            raise ValueError("MVAE-Q bounds expert variances by N / (N - 1) (appendix C): it needs >= 2 modalities")
        self.likelihood = TabularLikelihood(schema, variance=cfg.gaussian_variance, pixel_likelihood=cfg.pixel_likelihood)
        self.latent_dim = cfg.latent_per_feature * n_mod
        hidden = [cfg.expert_width] * cfg.expert_layers
        self.experts = PerModalityMLP(self.layout, hidden, hidden, 2 * self.latent_dim, [cfg.image_width] * cfg.expert_layers)
        self.decoder = mlp(self.latent_dim, [cfg.decoder_width] * cfg.decoder_layers, self.likelihood.param_dim)
        self.register_buffer("lambdas", modality_weights(schema, cfg.reconstruction_weights), persistent=False)
        self.kl_weight = 1.0  # beta; annealed during fit

    # --- inference: experts and their product --------------------------------------------------
    def expert_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every modality's expert from the zero-filled ``x`` ``(b, D)``: mean, log-variance ``(b, M, k)``.

        MVAE-Q (appendix C): V_i = N / (N - 1) * sigmoid(.), so that sum_{i in X} 1 / V_i > |X| - 1
        and the quotient by p(z)^(|X| - 1) is a proper Gaussian for every subset X.
        """
        mu, raw = self.experts(x).chunk(2, -1)
        if self.cfg.quotient:
            n = self.layout.n_modalities
            return mu, math.log(n / (n - 1)) + F.logsigmoid(raw)
        return mu, clamp_logvar(raw)

    def posterior(
        self, mu: torch.Tensor, logvar: torch.Tensor, subsets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | S) for experts ``(b, M, k)`` and subsets ``(..., b, M)``: mean, log-variance ``(..., b, k)``."""
        prior_power = 1.0 - subsets.sum(-1).to(mu.dtype) if self.cfg.quotient else 1.0  # eq. 3 / eq. 4
        return product_of_experts(mu, logvar, subsets, prior_power)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder parameters ``(..., P)`` for latents ``(..., k)`` (leading axes form one batch)."""
        return self.decoder(z.reshape(-1, z.shape[-1])).view(*z.shape[:-1], -1)

    # --- objective (eq. 2 and eq. 5) -------------------------------------------------------------
    def elbo_terms(
        self, x: torch.Tensor, observed: torch.Tensor, subsets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two parts of eq. (2) for each subset S ``(T, b, M)`` of the observed modalities, ``(T, b)`` each:
        sum_{i in S} lambda_i log p(x_i | z) with one z ~ q(z | S), and KL(q(z | S) || p(z))."""
        x = x * observed  # a hidden value never reaches a network
        mu, logvar = self.posterior(*self.expert_params(x), subsets)  # (T, b, k)
        params = self.decode(reparameterize(mu, logvar))  # (T, b, P)
        log_p = self.layout.per_modality_sum(self.likelihood.log_prob(params, x.expand(subsets.shape[0], -1, -1)))
        log_p = log_p * self.lambdas  # (T, b, M)
        return masked_log_lik(log_p, subsets), gaussian_kl(mu, logvar).sum(-1)

    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative eq. (5) per row, averaged over the batch; ``rec`` and ``kl`` summed over its terms."""
        subsets = elbo_subsets(self.layout.modality_mask(observed), self.cfg.n_subsets)  # (1 + M + k, b, M)
        rec, kl = self.elbo_terms(x, observed, subsets)  # (T, b)
        elbo = (rec - self.kl_weight * kl).sum(0)  # (b,)
        return {"loss": -elbo.mean(), "rec": -rec.sum(0).mean(), "kl": kl.sum(0).mean()}

    def on_train_batch_start(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        n = self.trainer.num_training_batches
        self.kl_weight = kl_annealing(self.current_epoch, batch_idx, n, self.cfg.annealing_epochs)

    def on_train_end(self) -> None:
        self.kl_weight = 1.0

    # --- imputation and generation -----------------------------------------------------------------
    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """z ~ q(z | x_o) (the prior where nothing is observed), decoder mean / mode. ``(b, D)``."""
        present = self.layout.modality_mask(observed)  # (b, M)
        mu, logvar = self.posterior(*self.expert_params(x * observed), present)  # (b, k)
        return self.likelihood.mode(self.decode(reparameterize(mu, logvar)))

    def _draw(self, x: torch.Tensor, observed: torch.Tensor, k: int) -> torch.Tensor:
        """``k`` draws per row from one posterior per row. ``(k, n, D)``.

        The same draws as the base's, which repeats every row ``k`` times before the experts:
        q(z | x_o) does not depend on the draw, so the experts see each row once (``(b, d, 2k)``
        per row is 144 KB on phishing; repeated, one validation pass held 2.4 GB of them).
        """
        x = x * observed
        chunk = max(1, self.cfg.eval_rows // k)
        parts = []
        for xs, os in zip(x.split(chunk), observed.split(chunk)):
            mu, logvar = self.posterior(*self.expert_params(xs), self.layout.modality_mask(os))  # (b, k_z)
            z = reparameterize(mu.expand(k, -1, -1), logvar.expand(k, -1, -1))  # (k, b, k_z)
            parts.append(self.likelihood.mode(self.decode(z).flatten(0, 1)).view(k, xs.shape[0], -1))  # (k, b, D)
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def generate(self, n: int) -> tuple[torch.Tensor, None]:
        """``n`` rows from the prior, z ~ N(0, I) (the posterior of an empty row), decoder mode; no mask."""
        return self.impute_from_nothing(n), None
