"""MLP builders, including a grouped MLP that runs one small network per modality in one matmul."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn

from imputebench.nn.layout import SchemaLayout, take_columns


def _stack(
    linear: Callable[[int, int], nn.Module],
    norm: Callable[[int], nn.Module],
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    batch_norm: bool,
    activation: type[nn.Module],
) -> nn.Sequential:
    """``linear -> [norm] -> act -> (linear -> act)* -> linear``."""
    layers: list[nn.Module] = []
    width = in_dim
    for i, size in enumerate(hidden):
        layers.append(linear(width, size))
        if batch_norm and i == 0:
            layers.append(norm(size))
        layers.append(activation())
        width = size
    layers.append(linear(width, out_dim))
    return nn.Sequential(*layers)


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    batch_norm: bool = True,
    activation: type[nn.Module] = nn.LeakyReLU,
) -> nn.Sequential:
    """``Linear -> [BatchNorm1d] -> act -> (Linear -> act)* -> Linear``.

    The layout of every MLP in the VSAE paper's appendix B.2 (short version) /
    C (long version): batch normalisation after the first layer only, Leaky ReLU
    activations, a linear output. ``hidden=()`` gives a single linear layer.
    """
    return _stack(nn.Linear, nn.BatchNorm1d, in_dim, hidden, out_dim, batch_norm, activation)


class GroupedLinear(nn.Module):
    """``G`` independent linear maps applied at once: ``(b, G, in) -> (b, G, out)``.

    Initialised like ``nn.Linear`` (Kaiming-uniform, fan-in ``in``), independently per group.
    """

    def __init__(self, groups: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / in_dim**0.5
        self.weight = nn.Parameter(torch.empty(groups, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(groups, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (G, b, in) @ (G, in, out) -> (G, b, out)
        return torch.baddbmm(self.bias.unsqueeze(1), x.transpose(0, 1), self.weight).transpose(0, 1)


class GroupedBatchNorm(nn.Module):
    """``BatchNorm1d`` over every (group, channel) pair of a ``(b, G, H)`` tensor."""

    def __init__(self, groups: int, width: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(groups * width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, g, h = x.shape
        return self.norm(x.reshape(b, g * h)).reshape(b, g, h)


def grouped_mlp(
    groups: int,
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    batch_norm: bool = True,
    activation: type[nn.Module] = nn.LeakyReLU,
) -> nn.Sequential:
    """``G`` MLPs of the :func:`mlp` layout evaluated together: ``(b, G, in) -> (b, G, out)``.

    VSAE's per-feature (unimodal) encoders q_phi(z_i | x_i): one network per
    feature, all of them one batched matmul per layer instead of a loop over features.
    """
    return _stack(
        partial(GroupedLinear, groups), partial(GroupedBatchNorm, groups), in_dim, hidden, out_dim, batch_norm, activation
    )


class PerModalityMLP(nn.Module):
    """One MLP of the :func:`mlp` layout per modality of a schema: ``(b, D) -> (b, M, out)``.

    A table's modalities are its features. A numeric feature's network sees its one column, a
    one-hot feature's its block padded with zeros to the widest block (:meth:`SchemaLayout.blocks`);
    an image's network sees its pixels, and images with the same number of pixels share one
    :func:`grouped_mlp` (``image_hidden``; VSAE long version C.1: "3-layer 128-dim MLPs followed by
    Leaky ReLU", so no batch normalisation by default). Each kind is one grouped MLP, so the ``M``
    networks cost one batched matmul per layer and kind. VSAE's unimodal encoders q_phi(z_i | x_i)
    (papers/000 appendix B.2) and MVAE's experts q~(z | x_i) (Wu & Goodman 2018, Fig. 1b).
    """

    def __init__(
        self,
        layout: SchemaLayout,
        numeric_hidden: Sequence[int],
        categorical_hidden: Sequence[int],
        out_dim: int,
        image_hidden: Sequence[int] = (128, 128, 128),
        image_batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.layout, self.out_dim = layout, out_dim
        n_numeric, (n_blocks, k_max) = layout.numeric_cols.numel(), layout.block_index.shape
        self.numeric = grouped_mlp(n_numeric, 1, numeric_hidden, out_dim) if n_numeric else None
        self.categorical = grouped_mlp(n_blocks, k_max, categorical_hidden, out_dim) if n_blocks else None
        self.register_buffer("numeric_modalities", layout.feature_modality[layout.numeric_features], persistent=False)
        self.register_buffer("block_modalities", layout.feature_modality[layout.block_features], persistent=False)
        schema = layout.schema
        images: dict[int, list[int]] = {}
        for m, (_, members) in enumerate(schema.modality_groups):
            if schema.features[members[0]].is_pixel:
                images.setdefault(len(members), []).append(m)
        self.images = nn.ModuleList()
        for k, (width, modalities) in enumerate(sorted(images.items())):
            columns = [[schema.offsets[j] for j in schema.modality_groups[m][1]] for m in modalities]
            self.register_buffer(f"image_columns_{k}", torch.tensor(columns, dtype=torch.long), persistent=False)
            self.register_buffer(f"image_modalities_{k}", torch.tensor(modalities, dtype=torch.long), persistent=False)
            self.images.append(grouped_mlp(len(modalities), width, image_hidden, out_dim, batch_norm=image_batch_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.new_empty(x.shape[0], self.layout.n_modalities, self.out_dim)  # (b, M, out), every modality written
        if self.numeric is not None:
            numeric = x[:, self.layout.numeric_cols].unsqueeze(-1)  # (b, N, 1)
            out.index_copy_(1, self.numeric_modalities, self.numeric(numeric))
        if self.categorical is not None:
            blocks = self.layout.blocks(x)  # (b, C, K_max) one-hot, zero-padded
            out.index_copy_(1, self.block_modalities, self.categorical(blocks))
        for k, network in enumerate(self.images):
            pixels = take_columns(x, getattr(self, f"image_columns_{k}"))  # (b, G, width)
            out.index_copy_(1, getattr(self, f"image_modalities_{k}"), network(pixels))
        return out


class PerModalityDecoder(nn.Module):
    """One MLP of the :func:`mlp` layout per modality, each from its own input: ``(b, M, in) -> (b, D)``.

    The per-modality likelihoods p(x_j | .) of the multimodal VAEs that decode each modality on its own
    (MoPoE-VAE, Sutter et al. 2021; mrVAE, papers/003 eq. 26, where x_j sees only the subspaces it shares).
    The output is the parameters of :class:`~imputebench.nn.heads.TabularLikelihood` (without a learnt scale)
    in encoded-column order: modality j's network writes its own encoded columns (a numeric feature's mean, a
    categorical's logits, an image's pixels). The ``M`` networks are one :func:`grouped_mlp` whose outputs are
    padded to the widest modality, so they cost one batched matmul per layer.
    """

    def __init__(self, layout: SchemaLayout, in_dim: int, hidden: Sequence[int], batch_norm: bool = True) -> None:
        super().__init__()
        widths = torch.bincount(layout.column_modality, minlength=layout.n_modalities)  # (M,) encoded columns each
        self.width = int(widths.max())
        self.network = grouped_mlp(layout.n_modalities, in_dim, hidden, self.width, batch_norm)
        slot = torch.arange(layout.encoded_dim) - layout.modality_first_col[layout.column_modality]  # (D,)
        self.register_buffer("source", layout.column_modality * self.width + slot, persistent=False)  # (D,)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.network(inputs)  # (b, M, W_max) every modality's padded parameters
        return take_columns(out.flatten(1), self.source)  # (b, D)
