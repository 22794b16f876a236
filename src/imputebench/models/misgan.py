"""MisGAN: learning from incomplete data with GANs (Li, Jiang & Marlin, ICLR 2019), with its imputer.

Specification: shared/docs/models.md (MisGAN); what it leaves open follows the authors'
public code (github.com/steveli/misgan: ``misgan_impute.py``, ``utils.py``, the fully
connected networks of ``mnist_generator.py``, ``mnist_critic.py``, ``mnist_imputer.py``),
as noted where used. Tables get the authors' fully connected networks; 28x28 images (the
MNIST sets) get their convolutional MNIST networks (:mod:`imputebench.nn.misgan_conv`) for
the data generator and the data and imputer critics, beside fully connected parts for a
row's other columns (a label). Other image sizes (SVHN's 32x32x3, the 8x8 digits) keep the
fully connected networks: the authors publish none for them. The mask generator and critic
stay fully connected (masks are per modality), and so does the imputer, as the authors'
MNIST imputer is (784-784).

Data are min-max scaled to [0, 1] on the observed training entries (as GAIN's, the shared
:class:`~imputebench.nn.unit_range.MinMaxScaler`), so the masking operator
f_tau(x, m) = m * x + tau * (1 - m) takes the paper's tau = 0. Masks are per modality: per
feature for a table (its features are its modalities), per image or label for the multimodal
sets, whose missingness is per modality (a per-pixel mask generator would have to learn that).

* Mask generator G_m(eps) -> m in [0, 1]^M against critic D_m (real masks vs G_m's):
  loss L_m. Data generator G_x(z) -> complete rows against critic D_x, which compares
  f_tau(x, m) of real rows with f_tau(G_x(z), G_m(eps)): loss L_x.
* Imputer G_i(x, m, w) = m * x + (1 - m) * Ĝ_i(m * x + (1 - m) * w), w ~ U(0, 1), against
  critic D_i, which compares complete rows G_x(z) with imputed real rows: loss L_i.
* Objectives (the paper's imputation objectives, with WGAN-GP critics):
  min_{G_x} max_{D_x} L_x + beta * L_i;  min_{G_m} max_{D_m} L_m + alpha * L_x;
  min_{G_i} max_{D_i} L_i;  alpha = 0.2, beta = 0.1. (models.md words the beta term as the
  imputer's "plus beta = 0.1 times the data loss"; we read it as this coupling of L_i and L_x.)
* Schedule (the authors' ``misgan_impute.py``): every batch one step of each critic; every
  ``n_critic``-th batch (5), counted across epochs, a fresh forward pass with new noise and
  one step of G_m, then G_x, then G_i, against the updated critics. Adam with betas
  (0.5, 0.9): lr 1e-4 for G_x, G_m, D_x, D_m; 2e-4 for G_i and D_i.

Categorical features are one-hot; G_x and Ĝ_i end in a softmax per block and a sigmoid
per numeric column (ours: the authors model pixels, all sigmoid), so generated rows are
distributions over each feature's categories. Imputation: a draw of G_i mapped back to the
encoded space (most probable category per block); the base pools ``n_imputations`` draws.

Choices of ours, stated:

* The beta term. L_i, the difference of D_i's mean scores of generated rows G_x(z) and of
  imputed rows, depends on G_x through the first, and G_x minimises L_x + beta * L_i: with
  the authors' critic convention (D_i minimises mean D_i(imputed) - mean D_i(G_x(z)), so
  it scores generated rows high) G_x's term is beta * mean D_i(G_x(z)), which pulls the
  generated rows towards the imputed ones. The authors' code adds beta times the imputer's
  loss -mean D_i(imputed) instead, which does not depend on G_x: there beta has no effect.
  We follow the paper's objective.
* Mask generator: the authors' default "fusion" output, hardtanh(1.2 * sigmoid(h / 0.66) - 0.1,
  0, 1) (``add_mask_transformer``), giving exact 0s and 1s.
* Network widths are the authors' fully connected MNIST ones: generators
  latent 128 -> 256 -> 512 -> out; critics in -> 512 -> 256 -> 128 -> 1; the imputer
  three hidden layers as wide as the data (their "784-784" on 784 pixels); ReLU throughout.
* The authors' loader drops a short last batch; we top it up (``fill_last_batch``), so every
  critic step sees a full batch and every row is used each epoch. Their 1000 epochs are
  all trained by default and the best validation epoch is kept (the base's selection).
  Early stopping (``patience``) is off by default: MisGAN's validation error plateaus and
  then falls again (Mushroom, MCAR 0.5, seed 0: 0.33 PFC from epoch ~100 to ~400, 0.296
  at epoch 932); a patience of 100 stopped it at epoch 206, with cap-shape imputed as one
  constant category.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from imputebench.data.table import Table
from imputebench.models.base import ImputerModule, Player, TrainingConfig
from imputebench.models.config_types import Count, NonNegativeFloat, PositiveFloat
from imputebench.models.registry import register_model
from imputebench.nn.adversarial import critic_loss
from imputebench.nn.misgan_conv import ConvRowCritic, ConvRowGenerator, mnist_columns
from imputebench.nn.mlp import mlp
from imputebench.nn.unit_range import MinMaxScaler, unit_outputs
from imputebench.schema import FeatureSchema

ADAM_BETAS = (0.5, 0.9)  # misgan_impute.py: optim.Adam(..., betas=(.5, .9)) for every network
GENERATOR_HIDDEN = (256, 512)  # mnist_generator.py FCGenerator
CRITIC_HIDDEN = (512, 256, 128)  # mnist_critic.py FCCritic
MASK_TEMPERATURE, MASK_RANGE = 0.66, (-0.1, 1.1)  # add_mask_transformer defaults ("fusion")
CRITICS = ("data_critic", "mask_critic", "imputer_critic")
#: the order of the authors' generator updates
GENERATORS = ("mask_generator", "data_generator", "imputer")


@dataclass(frozen=True)
class MisGANConfig(TrainingConfig):
    """The authors' ``mnist_misgan_impute.py`` defaults; alpha from the paper."""

    lr: PositiveFloat = 1e-4  # lrate: data and mask generators and critics
    imputer_lr: PositiveFloat = 2e-4  # imputer_lrate: the imputer and its critic
    batch_size: Count = 64  # --batch-size
    max_epochs: Count = 1000  # --epoch
    patience: Count | None = None  # None: every epoch trained, as the authors do (the best validation one kept)
    latent_dim: Count = 128  # --n-latent: size of z and eps
    n_critic: Count = 5  # --n-critic: critic updates per generator update
    gp_weight: NonNegativeFloat = 10.0  # --gp-lambda: lambda of the gradient penalty
    alpha: NonNegativeFloat = 0.2  # alpha, weight of L_x in G_m's objective (paper; the script's default is 0.1)
    beta: NonNegativeFloat = 0.1  # --beta: weight of L_i in G_x's objective
    tau: float = 0.0  # --tau: fill value of f_tau (0 for data in [0, 1])
    imputer_width: Count | None = None  # hidden width of the imputer; None: the encoded width D
    image_networks: Literal["conv", "fc"] = "conv"  # 28x28 images: "conv" (the authors' MNIST nets) or "fc"
    fill_last_batch: bool = True  # full critic batches (the authors drop the short last one)


def mask_data(x: torch.Tensor, mask: torch.Tensor, tau: float) -> torch.Tensor:
    """The masking operator f_tau(x, m) = m * x + tau * (1 - m) (the authors' ``mask_data``); ``(b, D)`` each."""
    return mask * x + tau * (1.0 - mask)


def fusion_mask(logits: torch.Tensor) -> torch.Tensor:
    """G_m's output layer: hardtanh((b - a) * sigmoid(h / T) + a, 0, 1), (a, b) = (-0.1, 1.1), T = 0.66."""
    low, high = MASK_RANGE
    return F.hardtanh(torch.sigmoid(logits / MASK_TEMPERATURE) * (high - low) + low, 0.0, 1.0)


def network(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """The authors' fully connected nets: Linear layers with ReLU between them, no normalisation."""
    return mlp(in_dim, hidden, out_dim, batch_norm=False, activation=nn.ReLU)


@register_model("misgan")
class MisGAN(ImputerModule):
    """Mask and data generators, an imputer, and a WGAN-GP critic for each; data in [0, 1]."""

    Config = MisGANConfig
    uses_family_presets = False  # the authors' own learning rates, Adam betas and epochs
    generates_masks = True

    def build(self, schema: FeatureSchema) -> None:
        cfg = self.cfg
        width, d = schema.encoded_dim, self.layout.n_modalities  # d: the mask's length
        numeric = torch.zeros(width, dtype=torch.bool)
        numeric[self.layout.numeric_cols] = True
        self.register_buffer("numeric_columns", numeric, persistent=False)
        self.scaler = MinMaxScaler(width)
        images = mnist_columns(schema) if cfg.image_networks == "conv" else []
        if images:
            self.data_generator = ConvRowGenerator(schema, images, cfg.latent_dim)
        else:
            self.data_generator = network(cfg.latent_dim, GENERATOR_HIDDEN, width)
        self.mask_generator = network(cfg.latent_dim, GENERATOR_HIDDEN, d)
        imputer_width = cfg.imputer_width or width
        self.imputer = network(width, (imputer_width,) * 3, width)
        self.data_critic = ConvRowCritic(schema, images) if images else network(width, CRITIC_HIDDEN, 1)
        self.mask_critic = network(d, CRITIC_HIDDEN, 1)
        self.imputer_critic = ConvRowCritic(schema, images) if images else network(width, CRITIC_HIDDEN, 1)
        self.critic_steps = 0  # critic updates since the last generator update (the authors' counter)

    def fit_statistics(self, train: Table) -> None:
        """The [0, 1] scaling of numeric columns from the observed training entries."""
        chunks = ((x * observed, observed) for x, observed in train.chunks(self.cfg.eval_rows))
        self.scaler.fit_chunks(chunks, self.numeric_columns)

    def players(self) -> dict[str, Player]:
        cfg = self.cfg
        rates = {"imputer": cfg.imputer_lr, "imputer_critic": cfg.imputer_lr}
        return {
            name: Player(list(getattr(self, name).parameters()), rates.get(name, cfg.lr), ADAM_BETAS)
            for name in (*CRITICS, *GENERATORS)
        }

    # --- the players' forward passes ---------------------------------------------------------------
    def generate_data(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """G_x(z), z ~ N(0, I): ``n`` complete rows in [0, 1] ``(n, D)``, blocks on the simplex."""
        z = torch.randn(n, self.cfg.latent_dim, device=like.device, dtype=like.dtype)
        return unit_outputs(self.data_generator(z), self.layout)[0]

    def generate_mask(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """G_m(eps), eps ~ N(0, I): ``n`` modality masks in [0, 1] ``(n, M)``."""
        eps = torch.randn(n, self.cfg.latent_dim, device=like.device, dtype=like.dtype)
        return fusion_mask(self.mask_generator(eps))

    def impute_unit(self, u: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """G_i(x, m, w) = m * x + (1 - m) * Ĝ_i(m * x + (1 - m) * w), w ~ U(0, 1), on scaled rows
        ``u`` with column mask ``m`` ``(b, D)`` -> ``(b, D)``."""
        noise = torch.rand_like(u)
        out = unit_outputs(self.imputer(m * u + (1.0 - m) * noise), self.layout)[0]
        return m * u + (1.0 - m) * out

    def scaled(self, x: torch.Tensor, observed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scaled rows ``u`` ``(b, D)`` (hidden entries 0), the modality mask ``(b, M)`` and the
        column mask ``(b, D)``."""
        m = self.layout.modality_mask(observed).to(x.dtype)  # (b, M)
        columns = self.layout.expand_modalities(m)  # (b, D)
        return self.scaler(x * observed) * columns, m, columns

    # --- the objective -----------------------------------------------------------------------------
    def critic_losses(self, u: torch.Tensor, m: torch.Tensor, columns: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three WGAN-GP critics' losses on a :meth:`scaled` batch, on samples of the current
        generators and imputer drawn without gradients: a critic step updates only the critics (the
        authors compute these samples with gradients and then zero the generators' ones; the critics'
        steps are the same)."""
        cfg = self.cfg
        b = u.shape[0]
        with torch.no_grad():
            fake_x, fake_m = self.generate_data(b, u), self.generate_mask(b, u)  # (b, D), (b, M)
            imputed = self.impute_unit(u, columns)  # (b, D)
        real = mask_data(u, columns, cfg.tau)
        fake = mask_data(fake_x, self.layout.expand_modalities(fake_m), cfg.tau)
        # D_i: generated complete rows are its "real" side, imputed real rows its "fake" side (authors)
        return {
            "data_critic": critic_loss(self.data_critic, real, fake, cfg.gp_weight)[0],
            "mask_critic": critic_loss(self.mask_critic, m, fake_m, cfg.gp_weight)[0],
            "imputer_critic": critic_loss(self.imputer_critic, fake_x, imputed, cfg.gp_weight)[0],
        }

    def generator_losses(self, u: torch.Tensor, columns: torch.Tensor) -> dict[str, torch.Tensor]:
        """The generators' and imputer's objectives on a :meth:`scaled` batch, from one forward pass with
        fresh noise: only the critics' scores of generated samples, no gradient penalty (it is the
        critics' term)."""
        cfg = self.cfg
        b = u.shape[0]
        fake_x, fake_m = self.generate_data(b, u), self.generate_mask(b, u)  # (b, D), (b, M)
        fake = mask_data(fake_x, self.layout.expand_modalities(fake_m), cfg.tau)
        data_loss = -self.data_critic(fake).mean()  # L_x, G_x's term
        mask_loss = -self.mask_critic(fake_m).mean()  # L_m, G_m's term
        generated_score = self.imputer_critic(fake_x).mean()  # G_x's part of L_i
        imputed_score = self.imputer_critic(self.impute_unit(u, columns)).mean()
        return {
            "mask_generator": mask_loss + cfg.alpha * data_loss,
            "data_generator": data_loss + cfg.beta * generated_score,  # L_x + beta * L_i (G_x's term)
            "imputer": -imputed_score,
        }

    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every player's loss (a critic pass and a generator pass); ``loss`` is their sum, for the
        logs only. Training steps the players on the two passes separately (:meth:`training_step`)."""
        u, m, columns = self.scaled(x, observed)
        parts = {**self.critic_losses(u, m, columns), **self.generator_losses(u, columns)}
        return {"loss": sum(parts.values()), **parts}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """A step of each critic; after every ``n_critic`` of them, a step of each generator on a
        fresh forward pass (new noise, updated critics), in the authors' order."""
        x, observed = batch
        u, m, columns = self.scaled(x, observed)  # hidden entries zeroed; shared by both passes
        parts = self.critic_losses(u, m, columns)
        self.record({"loss": sum(parts.values()), **parts})
        self.step_players(parts, CRITICS)
        self.critic_steps += 1
        if self.critic_steps == self.cfg.n_critic:
            self.critic_steps = 0
            parts = self.generator_losses(u, columns)
            self.record(parts)
            self.step_players(parts, GENERATORS)

    # --- imputation and generation -------------------------------------------------------------------
    def to_encoded(self, unit: torch.Tensor) -> torch.Tensor:
        """Scaled rows ``(b, D)`` -> encoded rows, each block's most probable category one-hot."""
        return self.layout.argmax_one_hot(self.scaler.inverse(unit))

    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """One draw of the imputer G_i, mapped back to the encoded space. ``(b, D)``."""
        u, _, columns = self.scaled(x, observed)
        return self.to_encoded(self.impute_unit(u, columns))

    @torch.no_grad()
    def generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` rows of G_x ``(n, D)`` and masks of G_m ``(n, M)`` (observed where G_m's output
        exceeds 1/2; the fusion output is almost always exactly 0 or 1)."""
        self.eval()
        like = self.scaler.low
        return self.to_encoded(self.generate_data(n, like)), self.generate_mask(n, like) > 0.5
