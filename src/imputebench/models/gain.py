"""GAIN: generative adversarial imputation nets (Yoon, Jordon & van der Schaar, ICML 2018),
and the variant of the VAEAC paper's appendix A.4 (Ivanov et al., ICLR 2019; papers/002).

Specification: shared/docs/models.md (GAIN); what it leaves open follows the authors'
public code (github.com/jsyoon0823/GAIN, ``gain.py`` and ``utils.py``), as noted where used.

Data are min-max scaled to [0, 1] with statistics of the observed training entries
(:class:`~imputebench.nn.unit_range.MinMaxScaler`, fitted in :meth:`GAIN.fit_statistics`).
With m the mask (1 = observed), the generator G sees x~ = m * x + (1 - m) * z,
z ~ U(0, 0.01), and the mask, and outputs xbar in [0, 1]; xhat = m * x + (1 - m) * xbar.
The discriminator D(xhat, h) gives the probability that each feature was observed,
helped by the hint h = b * m + 0.5 * (1 - b), b ~ Bernoulli(hint_rate) (paper section 4,
the authors' ``binary_sampler``). Losses (the authors' ``D_loss_temp``, ``G_loss``):

    L_D = -mean(m log D + (1 - m) log(1 - D)),
    L_G = -mean((1 - m) log D) + alpha * L_M,   L_M = sum(m (x - xbar)^2) / sum(m).

Each batch takes one D step, then one G step against the updated D (the authors'
``D_solver`` then ``G_solver``). Imputation: x~ with fresh noise through G, mapped back
to the encoded space; the base pools ``n_imputations`` draws.

Categorical features, two treatments (``categorical``):

* ``"codes"`` (``gain``): as the authors' code, each categorical feature is one column
  holding its category code, scaled and imputed like a number and rounded to the
  nearest category (their ``rounding``, for columns of fewer than 20 values).
* ``"one_hot"`` (``gain_vaeac``, appendix A.4): the one-hot columns, a softmax per block
  in G, and the reconstruction loss of eq. (12): per observed feature, (x - xbar)^2 for a
  numeric one; for a categorical one with K categories 0.2 * CE / K + 0.8 * (squared
  error summed over the block) / K, CE = -sum_k x_k log xbar_k; averaged over the observed
  features. The paper's eq. (12) has a case "if x_i is binary"; our binary features are
  two-category one-hot blocks, so they take the categorical case. With alpha = 10 and the
  hint rate p = 0.01 (A.4: "b ... sampled from Bernoulli distribution with p = 0.01").

Choices of ours, stated:

* D judges features, not encoded columns: its output and the hint are per feature (the
  mask of a one-hot block is one value); with ``"codes"`` these are the same thing.
* D's losses take its logits (``binary_cross_entropy_with_logits``, softplus): the same
  values as the authors' ``log(D + 1e-8)`` without the clipping at 1e-8.
* The D step and the G step of a batch draw their own noise z and hint b; the authors'
  feed the same draws to both. Either is an unbiased estimate of each player's loss.
* The authors train 10,000 iterations of batches of 128 rows sampled afresh each time and
  keep the last one. Here an epoch is one pass over the training rows in batches of 128
  (the last one topped up, ``fill_last_batch``), the iterations become
  ``ceil(iterations / batches per epoch)`` epochs (:meth:`GAIN.epochs_for`), and the
  epoch with the best validation error is kept (the selection of the VAEAC paper, A.4:
  "hyper-parameter is the number of iterations"), without early stopping unless
  ``patience`` is set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from imputebench.data.table import Table
from imputebench.models.base import ImputerModule, Player, TrainingConfig
from imputebench.models.config_types import Count, NonNegativeFloat, PositiveFloat, Probability
from imputebench.models.registry import register_model
from imputebench.nn.mlp import mlp
from imputebench.nn.unit_range import MinMaxScaler, unit_outputs
from imputebench.schema import FeatureSchema

#: eq. (12) of the VAEAC paper's A.4: weights of the cross-entropy and squared-error parts
#: of a categorical feature's reconstruction loss
CROSS_ENTROPY_WEIGHT, SQUARED_ERROR_WEIGHT = 0.2, 0.8


@dataclass(frozen=True)
class GAINConfig(TrainingConfig):
    """The authors' defaults (``main_letter_spam.py``; Adam at TensorFlow's default rate)."""

    lr: PositiveFloat = 1e-3  # tf.train.AdamOptimizer() default, for both players
    batch_size: Count = 128  # --batch_size
    hint_rate: Probability = 0.9  # --hint_rate: P(b = 1) in the hint h = b * m + 0.5 * (1 - b)
    alpha: NonNegativeFloat = 100.0  # --alpha: weight of the reconstruction loss L_M in L_G
    iterations: Count = 10_000  # --iterations: one D and one G update each
    noise_scale: NonNegativeFloat = 0.01  # z ~ U(0, noise_scale) at missing entries (uniform_sampler(0, 0.01))
    categorical: Literal["codes", "one_hot"] = "codes"  # "codes" (authors' code) or "one_hot" (VAEAC A.4, eq. 12)
    max_epochs: Count | None = None  # None: `iterations` expressed in epochs of the training table
    patience: Count | None = None  # None: max_epochs (every epoch trained, the best validation one kept)
    fill_last_batch: bool = True  # every step a full batch, as the authors' sampled batches


def sample_hint(mask: torch.Tensor, hint_rate: float) -> torch.Tensor:
    """The hint h = b * m + 0.5 * (1 - b), b ~ Bernoulli(hint_rate) per entry: the mask where
    b = 1, 0.5 elsewhere. ``mask`` ``(b, d)`` float -> ``(b, d)``."""
    reveal = (torch.rand_like(mask) < hint_rate).to(mask.dtype)
    return reveal * mask + 0.5 * (1.0 - reveal)


def discriminator_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_D = -mean(m log D + (1 - m) log(1 - D)), D = sigmoid(logits); ``(b, d)`` each -> scalar."""
    return F.binary_cross_entropy_with_logits(logits, mask)


def generator_adversarial_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """-mean((1 - m) log D) over every entry (the authors' ``G_loss_temp``); ``(b, d)`` -> scalar."""
    return ((1.0 - mask) * F.softplus(-logits)).mean()


def squared_error_loss(x: torch.Tensor, xbar: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_M = sum(m (x - xbar)^2) / sum(m) over observed entries (the authors' ``MSE_loss``)."""
    return (mask * (x - xbar).pow(2)).sum() / mask.sum().clamp_min(1.0)


def category_codes(schema: FeatureSchema) -> torch.Tensor:
    """``(D, d)``: encoded row @ matrix = feature row, a numeric value or a category's code k."""
    matrix = torch.zeros(schema.encoded_dim, len(schema))
    for j, (feature, cols) in enumerate(zip(schema.features, schema.slices)):
        matrix[cols, j] = 1.0 if feature.width == 1 else torch.arange(feature.width, dtype=matrix.dtype)
    return matrix


def authors_init(network: nn.Module) -> nn.Module:
    """The authors' ``xavier_init``: weights N(0, 2 / fan_in), biases 0."""
    for layer in network.modules():
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=math.sqrt(2.0 / layer.in_features))
            nn.init.zeros_(layer.bias)
    return network


@register_model("gain")
class GAIN(ImputerModule):
    """Generator and discriminator with the hint mechanism; data in [0, 1]."""

    Config = GAINConfig
    uses_family_presets = False  # the authors' own learning rate, batch and iterations

    def build(self, schema: FeatureSchema) -> None:
        one_hot = self.cfg.categorical == "one_hot"
        width = schema.encoded_dim if one_hot else len(schema)  # the networks' view of a row
        self.register_buffer("codes", category_codes(schema), persistent=False)
        # One-hot columns are already in [0, 1]; category codes are scaled like numbers (authors).
        scaled = torch.ones(width, dtype=torch.bool)
        if one_hot:
            scaled = torch.zeros(width, dtype=torch.bool).index_fill(0, self.layout.scalar_cols, True)
        self.register_buffer("scaled_columns", scaled, persistent=False)
        # eq. (12): 1 / K on the columns of a K-category block
        widths = torch.tensor(schema.widths, dtype=torch.float32)[self.layout.column_feature]  # (D,)
        self.register_buffer("block_columns", widths > 1, persistent=False)
        self.register_buffer("column_weight", 1.0 / widths, persistent=False)
        self.scaler = MinMaxScaler(width)
        # The authors' networks: two hidden layers of the data's width, ReLU; G on [x~, m],
        # D on [xhat, h], one output per feature.
        hidden = [width, width]
        self.generator = authors_init(mlp(2 * width, hidden, width, batch_norm=False, activation=nn.ReLU))
        self.discriminator = authors_init(
            mlp(width + len(schema), hidden, len(schema), batch_norm=False, activation=nn.ReLU)
        )

    def fit_statistics(self, train: Table) -> None:
        """The [0, 1] scaling from the observed entries of the training table."""
        chunks = (self.represent(x * observed, observed) for x, observed in train.chunks(self.cfg.eval_rows))
        self.scaler.fit_chunks(chunks, self.scaled_columns)

    def players(self) -> dict[str, Player]:
        return {
            "discriminator": Player(list(self.discriminator.parameters()), self.cfg.lr),
            "generator": Player(list(self.generator.parameters()), self.cfg.lr),
        }

    def epochs_for(self, batches_per_epoch: int) -> int:
        """The authors' ``iterations`` as whole epochs of ``batches_per_epoch`` steps, unless set."""
        cfg = self.cfg
        return cfg.max_epochs if cfg.max_epochs is not None else math.ceil(cfg.iterations / batches_per_epoch)

    # --- the row as the networks see it --------------------------------------------------------
    @property
    def one_hot(self) -> bool:
        return self.cfg.categorical == "one_hot"

    def represent(self, x: torch.Tensor, observed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoded ``(b, D)`` -> the networks' columns ``(b, R)`` (unscaled) and their mask ``(b, R)``:
        the one-hot columns themselves, or one column per feature holding category codes."""
        if self.one_hot:
            return x, observed
        return x @ self.codes, self.layout.feature_mask(observed)

    def to_encoded(self, unit: torch.Tensor) -> torch.Tensor:
        """The networks' scaled columns ``(b, R)`` -> encoded rows ``(b, D)`` with one-hot categories:
        each block's most probable category, or the nearest category code (authors' rounding)."""
        values = self.scaler.inverse(unit)
        if self.one_hot:
            return self.layout.argmax_one_hot(values)
        layout = self.layout
        out = values.new_zeros(values.shape[0], layout.encoded_dim)  # (b, D)
        out = out.index_copy(1, layout.scalar_cols, values.index_select(1, layout.scalar_features))
        if not layout.has_blocks:
            return out
        top = (layout.block_valid.sum(-1) - 1).to(values.dtype)  # (C,) largest code per block
        code = torch.minimum(values.index_select(1, layout.block_features).round().clamp_min(0.0), top)  # (b, C)
        slots = torch.arange(layout.block_index.shape[1], device=values.device, dtype=values.dtype)  # (K_max,)
        return layout.scatter_blocks((code.unsqueeze(-1) == slots).to(values.dtype), out)

    def complete(self, x: torch.Tensor, observed: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Scaled data u, mask m, generator output xbar and its block log-probabilities, ``(b, R)`` each.
        G sees x~ = m * u + (1 - m) * z, z ~ U(0, noise_scale)."""
        values, mask = self.represent(x * observed, observed)
        m = mask.to(x.dtype)
        u = self.scaler(values) * m  # hidden entries 0 (and never read)
        x_tilde = m * u + (1.0 - m) * self.cfg.noise_scale * torch.rand_like(u)
        logits = self.generator(torch.cat([x_tilde, m], -1))  # (b, R)
        xbar, log_xbar = unit_outputs(logits, self.layout) if self.one_hot else (torch.sigmoid(logits), None)
        return u, m, xbar, log_xbar

    # --- the objective ---------------------------------------------------------------------------
    def reconstruction(
        self, u: torch.Tensor, m: torch.Tensor, xbar: torch.Tensor, log_xbar: torch.Tensor | None
    ) -> torch.Tensor:
        """L_M on the observed entries: the authors' squared error, or eq. (12) of VAEAC A.4 averaged
        over the observed features (one-hot representation)."""
        if not self.one_hot:
            return squared_error_loss(u, xbar, m)
        squared = (u - xbar).pow(2)  # (b, D)
        mixed = (CROSS_ENTROPY_WEIGHT * -(u * log_xbar) + SQUARED_ERROR_WEIGHT * squared) * self.column_weight
        per_feature = self.layout.per_feature_sum(torch.where(self.block_columns, mixed, squared))  # (b, d)
        m_features = self.layout.feature_mask(m)  # (b, d)
        return (m_features * per_feature).sum() / m_features.sum().clamp_min(1.0)

    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both players' losses on one draw of noise and hint: ``discriminator`` L_D and ``generator``
        L_G = adversarial + alpha * reconstruction; ``loss`` is their sum (for logs and divergence)."""
        u, m, xbar, log_xbar = self.complete(x, observed)
        x_hat = m * u + (1.0 - m) * xbar  # (b, R)
        features = self.layout.feature_mask(observed).to(x.dtype)  # (b, d)
        logits = self.discriminator(torch.cat([x_hat, sample_hint(features, self.cfg.hint_rate)], -1))  # (b, d)
        d_loss = discriminator_loss(logits, features)
        adversarial = generator_adversarial_loss(logits, features)
        reconstruction = self.reconstruction(u, m, xbar, log_xbar)
        g_loss = adversarial + self.cfg.alpha * reconstruction
        return {
            "loss": d_loss + g_loss,
            "discriminator": d_loss,
            "generator": g_loss,
            "adversarial": adversarial,
            "reconstruction": reconstruction,
        }

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """One D update, then one G update against the updated D (the authors' order)."""
        x, observed = batch
        for player in ("discriminator", "generator"):
            parts = self.loss(x * observed, observed)
            self.record(parts)
            self.step_players(parts, (player,))

    # --- imputation ----------------------------------------------------------------------------
    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """One draw: G on x~ with fresh noise, mapped back to the encoded space. ``(b, D)``."""
        _, _, xbar, _ = self.complete(x, observed)
        return self.to_encoded(xbar)


@dataclass(frozen=True)
class GAINVAEACConfig(GAINConfig):
    """VAEAC paper, appendix A.4: "alpha = 10 and a hint ... b ... Bernoulli ... with p = 0.01",
    one-hot categorical features with the mixed loss of eq. (12). The rest is the authors' GAIN."""

    hint_rate: Probability = 0.01
    alpha: NonNegativeFloat = 10.0
    categorical: Literal["codes", "one_hot"] = "one_hot"


@register_model("gain_vaeac")
class GAINVAEAC(GAIN):
    """GAIN as the VAEAC paper's tables report it (appendix A.4)."""

    Config = GAINVAEACConfig
