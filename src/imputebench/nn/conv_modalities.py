"""Convolutional encoders and decoders for M image modalities of one 28x28 shape, one network per modality.

The multimodal VAEs on PolyMNIST (MoPoE-VAE, Sutter et al. 2021; mrVAE, papers/003 E.3, which keeps "the
same architectures and capacities for encoder and decoder" for both models) encode and decode each image
with its own convolutional network. The layout here is ours, in the spirit of theirs (three stride-2
convolutions and their transposes):

* encoder: Conv(C, 32, 4, s2, p1) 28 -> 14, ReLU, Conv(32, 64, 4, s2, p1) 14 -> 7, ReLU, Conv(64, 128, 3, s2,
  p1) 7 -> 4, ReLU, then a linear map of the 128 x 4 x 4 features to ``out_dim``;
* decoder: a linear map to 128 x 4 x 4, ReLU, ConvT(128, 64, 3, s2, p1) 4 -> 7, ReLU, ConvT(64, 32, 4, s2, p1)
  7 -> 14, ReLU, ConvT(32, C, 4, s2, p1) 14 -> 28: one parameter per pixel (a logit or a mean).

The M networks run as one: grouped convolutions (``groups=M``, modality m's channels in block m) and grouped
linear maps, so there is no Python loop over modalities. Pixels are encoded columns in row-major
(height, width, channel) order, as the image datasets store them (:mod:`imputebench.data.multimodal`).
"""

from __future__ import annotations

import torch
from torch import nn

from imputebench.nn.layout import SchemaLayout, take_columns
from imputebench.nn.mlp import GroupedLinear

SIDE = 28
WIDTHS = (32, 64, 128)
FEATURE_SIDE = 4  # 28 -> 14 -> 7 -> 4


def image_modality_shape(layout: SchemaLayout) -> tuple[int, int, int]:
    """``(H, W, C)`` shared by every modality of ``layout``'s schema, which must all be 28x28 images."""
    schema = layout.schema
    shapes = dict(schema.image_shapes)
    names = [name for name, _ in schema.modality_groups]
    found = {(*shapes[n], 1)[:3] if n in shapes else None for n in names}  # (H, W, C); one channel if unstated
    if len(found) != 1 or None in found or next(iter(found))[:2] != (SIDE, SIDE):
        raise ValueError(f"convolutional modality networks need every modality to be a {SIDE}x{SIDE} image of one "
                         f"shape; this schema's modalities are {names} with image shapes {shapes}")
    return next(iter(found))


def _columns(layout: SchemaLayout, width: int) -> torch.Tensor:
    """``(M, H * W * C)`` the encoded columns of each image modality, in pixel order."""
    return layout.modality_first_col.unsqueeze(-1) + torch.arange(width)


class ConvModalityEncoders(nn.Module):
    """One convolutional encoder per image modality: ``(b, D) -> (b, M, out_dim)``."""

    def __init__(self, layout: SchemaLayout, out_dim: int) -> None:
        super().__init__()
        self.shape = image_modality_shape(layout)
        h, w, c = self.shape
        m = self.n_modalities = layout.n_modalities
        self.register_buffer("columns", _columns(layout, h * w * c), persistent=False)  # (M, HWC)
        self.trunk = nn.Sequential(
            nn.Conv2d(c * m, WIDTHS[0] * m, 4, 2, 1, groups=m), nn.ReLU(),
            nn.Conv2d(WIDTHS[0] * m, WIDTHS[1] * m, 4, 2, 1, groups=m), nn.ReLU(),
            nn.Conv2d(WIDTHS[1] * m, WIDTHS[2] * m, 3, 2, 1, groups=m), nn.ReLU(),
        )
        self.head = GroupedLinear(m, WIDTHS[2] * FEATURE_SIDE**2, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w, c = self.shape
        b, m = x.shape[0], self.n_modalities
        pixels = take_columns(x, self.columns).view(b, m, h, w, c)  # (b, M, H, W, C)
        images = pixels.permute(0, 1, 4, 2, 3).reshape(b, m * c, h, w)  # (b, M * C, H, W) modality m in block m
        features = self.trunk(images).reshape(b, m, -1)  # (b, M, 128 * 4 * 4)
        return self.head(features)  # (b, M, out_dim)


class ConvModalityDecoders(nn.Module):
    """One convolutional decoder per image modality, each from its own input: ``(b, M, in_dim) -> (b, D)``, one
    parameter per pixel column (the likelihood's logits or means, in encoded-column order)."""

    def __init__(self, layout: SchemaLayout, in_dim: int) -> None:
        super().__init__()
        self.shape = image_modality_shape(layout)
        h, w, c = self.shape
        m = self.n_modalities = layout.n_modalities
        self.head = GroupedLinear(m, in_dim, WIDTHS[2] * FEATURE_SIDE**2)
        self.trunk = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(WIDTHS[2] * m, WIDTHS[1] * m, 3, 2, 1, groups=m), nn.ReLU(),
            nn.ConvTranspose2d(WIDTHS[1] * m, WIDTHS[0] * m, 4, 2, 1, groups=m), nn.ReLU(),
            nn.ConvTranspose2d(WIDTHS[0] * m, c * m, 4, 2, 1, groups=m),
        )
        position = torch.empty(layout.encoded_dim, dtype=torch.long)  # (D,) encoded column -> its output slot
        position[_columns(layout, h * w * c).flatten()] = torch.arange(m * h * w * c)
        self.register_buffer("source", position, persistent=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        h, w, c = self.shape
        b, m = inputs.shape[0], self.n_modalities
        features = self.head(inputs).reshape(b, m * WIDTHS[2], FEATURE_SIDE, FEATURE_SIDE)  # (b, M * 128, 4, 4)
        images = self.trunk(features).view(b, m, c, h, w)  # (b, M, C, H, W)
        pixels = images.permute(0, 1, 3, 4, 2).reshape(b, m * h * w * c)  # (b, M * HWC) in pixel order
        return take_columns(pixels, self.source)  # (b, D)
