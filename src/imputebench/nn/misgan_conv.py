"""MisGAN's convolutional networks for 28x28 images (Li, Jiang & Marlin, ICLR 2019), per image modality.

The layouts are the authors' MNIST networks (github.com/steveli/misgan, ``mnist_generator.py``
``ConvGenerator`` and ``mnist_critic.py`` ``ConvCritic``, DIM = 64):

* generator: Linear(latent, 4*4*256) -> ReLU -> ConvT(256, 128, 5) -> ReLU -> crop to 7x7 ->
  ConvT(128, 64, 5) -> ReLU -> ConvT(64, 1, 8, stride 2): 28x28 logits;
* critic: Conv(1, 64, 5, stride 2, pad 2) -> ReLU -> Conv(64, 128, ...) -> ReLU ->
  Conv(128, 256, ...) -> ReLU -> 4*4*256 features -> Linear(., 1).

A row of a multimodal set holds several modalities: each 28x28 image gets its own generator
and critic trunk, all from the same latent z; the row's other columns (a label's one-hot block)
get a fully connected part of the authors' generator widths (latent -> 256 -> 512 -> out) and, in
the critic, one hidden layer of 128 (ours). The critic's output layer reads every part's features.
"""

from __future__ import annotations

import torch
from torch import nn

from imputebench.nn.mlp import mlp
from imputebench.schema import FeatureSchema

DIM = 64  # the authors' DIM
MNIST_SHAPE = (28, 28)
FEATURES = 4 * 4 * 4 * DIM  # the critic trunk's output per image


def mnist_columns(schema: FeatureSchema) -> list[list[int]]:
    """Encoded columns of each 28x28 image modality, in schema order (empty when there is none)."""
    shapes = dict(schema.image_shapes)
    return [
        [schema.offsets[j] for j in members]
        for name, members in schema.modality_groups
        if shapes.get(name) == MNIST_SHAPE
    ]


class ImageGenerator(nn.Module):
    """The authors' MNIST ConvGenerator: ``(b, latent)`` -> ``(b, 784)`` logits."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.preprocess = nn.Sequential(nn.Linear(latent_dim, 4 * 4 * 4 * DIM), nn.ReLU())
        self.block1 = nn.Sequential(nn.ConvTranspose2d(4 * DIM, 2 * DIM, 5), nn.ReLU())
        self.block2 = nn.Sequential(nn.ConvTranspose2d(2 * DIM, DIM, 5), nn.ReLU())
        self.deconv_out = nn.ConvTranspose2d(DIM, 1, 8, stride=2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        net = self.preprocess(z).view(-1, 4 * DIM, 4, 4)  # (b, 256, 4, 4)
        net = self.block1(net)[:, :, :7, :7]  # (b, 128, 7, 7)
        return self.deconv_out(self.block2(net)).flatten(1)  # (b, 784)


def image_critic_trunk() -> nn.Sequential:
    """The authors' MNIST ConvCritic without its output layer: ``(b, 1, 28, 28)`` -> ``(b, 4096)``."""
    return nn.Sequential(
        nn.Conv2d(1, DIM, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv2d(DIM, 2 * DIM, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv2d(2 * DIM, 4 * DIM, 5, stride=2, padding=2), nn.ReLU(),
        nn.Flatten(),
    )


def _other_columns(schema: FeatureSchema, images: list[list[int]]) -> list[int]:
    taken = {c for columns in images for c in columns}
    return [c for c in range(schema.encoded_dim) if c not in taken]


class ConvRowGenerator(nn.Module):
    """G_x for rows with 28x28 images: ``(b, latent)`` -> ``(b, D)`` logits in encoded-column order."""

    def __init__(self, schema: FeatureSchema, images: list[list[int]], latent_dim: int) -> None:
        super().__init__()
        self.encoded_dim = schema.encoded_dim
        self.images = nn.ModuleList(ImageGenerator(latent_dim) for _ in images)
        for k, columns in enumerate(images):
            self.register_buffer(f"image_columns_{k}", torch.tensor(columns), persistent=False)
        others = _other_columns(schema, images)
        self.register_buffer("other_columns", torch.tensor(others, dtype=torch.long), persistent=False)
        self.others = mlp(latent_dim, (256, 512), len(others), batch_norm=False, activation=nn.ReLU) if others else None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = z.new_zeros(z.shape[0], self.encoded_dim)  # (b, D), every column written below
        for k, generator in enumerate(self.images):
            out = out.index_copy(1, getattr(self, f"image_columns_{k}"), generator(z))
        if self.others is not None:
            out = out.index_copy(1, self.other_columns, self.others(z))
        return out


class ConvRowCritic(nn.Module):
    """A WGAN critic for rows with 28x28 images: ``(b, D)`` -> ``(b, 1)``."""

    def __init__(self, schema: FeatureSchema, images: list[list[int]]) -> None:
        super().__init__()
        self.trunks = nn.ModuleList(image_critic_trunk() for _ in images)
        for k, columns in enumerate(images):
            self.register_buffer(f"image_columns_{k}", torch.tensor(columns), persistent=False)
        others = _other_columns(schema, images)
        self.register_buffer("other_columns", torch.tensor(others, dtype=torch.long), persistent=False)
        self.others = nn.Sequential(nn.Linear(len(others), 128), nn.ReLU()) if others else None
        self.output = nn.Linear(FEATURES * len(images) + (128 if others else 0), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [
            trunk(x.index_select(1, getattr(self, f"image_columns_{k}")).view(-1, 1, *MNIST_SHAPE))
            for k, trunk in enumerate(self.trunks)
        ]  # (b, 4096) each
        if self.others is not None:
            parts.append(self.others(x.index_select(1, self.other_columns)))
        return self.output(torch.cat(parts, 1))  # (b, 1)
