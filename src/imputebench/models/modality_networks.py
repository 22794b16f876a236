"""The per-modality encoders and decoders that MoPoE-VAE and mrVAE share, so that they compare like for like.

The mrVAE paper (papers/003, appendix E.3): "We use the same architectures and capacities for encoder and
decoder in all experiments, as well as the latent space dimensionalities." Both models build their networks
here from the same fields of :class:`ModalityNetworksConfig`:

* with ``image_networks="conv"`` (28x28 image modalities only, as PolyMNIST), convolutional encoders and
  decoders instead of the MLPs below (:mod:`imputebench.nn.conv_modalities`);
* an encoder per modality, q(z | x_j) (MoPoE's unimodal expert, mrVAE's q(z_j | x_j)): an MLP from the
  modality's own columns to the mean and log-variance of ``latent_dim`` Gaussian factors
  (:class:`~imputebench.nn.mlp.PerModalityMLP`; an image's network is ``image_width`` wide);
* a decoder per modality, p(x_j | .), from ``latent_dim`` inputs (MoPoE: the shared z; mrVAE: z_j with its
  shared factors replaced by their subspaces' aggregates) to the likelihood's parameters
  (:class:`~imputebench.nn.mlp.PerModalityDecoder`);
* the likelihood: Gaussian for numeric features (variance ``gaussian_variance`` on standardised data),
  softmax for categorical ones, Bernoulli or Gaussian pixels (:class:`~imputebench.nn.heads.TabularLikelihood`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from imputebench.models.base import TrainingConfig
from imputebench.models.config_types import Count, PositiveFloat
from imputebench.nn.conv_modalities import ConvModalityDecoders, ConvModalityEncoders
from imputebench.nn.heads import TabularLikelihood
from imputebench.nn.layout import SchemaLayout
from imputebench.nn.mlp import PerModalityDecoder, PerModalityMLP


@dataclass(frozen=True)
class ModalityNetworksConfig(TrainingConfig):
    """Sizes of the shared networks. MLP widths as this project's MVAE (VSAE's UCI networks, papers/000 B.2)."""

    batch_size: Count = 100
    latent_dim: Count = 32  # MoPoE: dim z; mrVAE: dim z_j of every modality (D_j)
    expert_width: Count = 64
    expert_layers: Count = 3
    image_width: Count = 128  # an image's encoder and decoder layers (VSAE long C.1: 128-dim MLPs)
    decoder_width: Count = 128
    decoder_layers: Count = 3
    gaussian_variance: PositiveFloat = 0.5  # numeric features: the negated squared error of the VSAE baselines
    # image modalities' networks: "mlp" (every schema) or "conv" (every modality a 28x28 image of one shape, as
    # PolyMNIST: nn/conv_modalities.py)
    image_networks: Literal["mlp", "conv"] = "mlp"
    # which epoch is kept: "imputation" (the validation imputation error, as every model here) or "loss" (the
    # validation negative ELBO on observed entries: papers/003 E.3, "the lowest test loss", unsupervised)
    select_on: Literal["imputation", "loss"] = "imputation"


def modality_networks(
    layout: SchemaLayout, cfg: ModalityNetworksConfig
) -> tuple[TabularLikelihood, nn.Module, nn.Module]:
    """The likelihood, the per-modality encoders ``(b, D) -> (b, M, 2 latent_dim)`` and the per-modality decoders
    ``(b, M, latent_dim) -> (b, P)`` of ``layout``'s schema."""
    likelihood = TabularLikelihood(layout.schema, variance=cfg.gaussian_variance, pixel_likelihood=cfg.pixel_likelihood)
    if cfg.image_networks == "conv":
        return likelihood, ConvModalityEncoders(layout, 2 * cfg.latent_dim), ConvModalityDecoders(layout, cfg.latent_dim)
    hidden = [cfg.expert_width] * cfg.expert_layers
    encoders = PerModalityMLP(layout, hidden, hidden, 2 * cfg.latent_dim, [cfg.image_width] * cfg.expert_layers)
    width = cfg.image_width if layout.has_pixels else cfg.decoder_width
    decoders = PerModalityDecoder(layout, cfg.latent_dim, [width] * cfg.decoder_layers, batch_norm=not layout.has_pixels)
    return likelihood, encoders, decoders


class SelectsOnValidationLoss:
    """Mixin for an :class:`~imputebench.models.base.ImputerModule` whose config has ``select_on``: with ``"loss"``
    the kept epoch is the one with the lowest mean validation loss (``val_loss``, the model's own ``loss`` on the
    validation rows' observed entries; the truth of hidden entries is not used), as papers/003 E.3 selects
    "based on unsupervised metrics only". Each validation chunk draws its noise from a generator seeded by the
    chunk's index, so every epoch is scored on the same draws and a DDP rank scores a chunk as one process does."""

    @property
    def monitor(self) -> str:
        return "val_loss" if self.cfg.select_on == "loss" else "val_error"

    def on_validation_epoch_start(self) -> None:
        self._val_sum, self._val_rows = 0.0, 0
        super().on_validation_epoch_start()

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        if self.cfg.select_on != "loss":
            return super().validation_step(batch, batch_idx)
        x, observed, _ = batch
        if not len(x):  # a DDP rank's padding chunk
            return None
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed + 2 + self.validation_chunk(batch_idx))
            self._val_sum = self._val_sum + self.loss(x, observed)["loss"].detach() * x.shape[0]
        self._val_rows += x.shape[0]
        return None

    def on_validation_epoch_end(self) -> None:
        if self.cfg.select_on != "loss":
            return super().on_validation_epoch_end()
        total, rows = self.sum_over_ranks(self._val_sum, self._val_rows)
        self.log(self.monitor, total / max(rows, 1))
        return None
