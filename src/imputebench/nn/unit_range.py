"""Tables in [0, 1], as the GAN imputers see them (GAIN, MisGAN).

GAIN's generator ends in a sigmoid and MisGAN's masking operator f_tau(x, m) =
m * x + tau * (1 - m) takes tau = 0 for data in [0, 1], so both models min-max scale
their inputs (GAIN: "data min-max scaled to [0, 1]", the authors' ``normalization``;
MisGAN: data in [0, 1]) and map their outputs back. :class:`MinMaxScaler` fits that
scaling on the OBSERVED entries of the training table only; :func:`unit_outputs`
turns network logits into values in [0, 1] that respect the one-hot blocks.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from imputebench.nn.layout import SchemaLayout, masked_log_softmax

#: added to every scaled column's range, as the authors' GAIN ``normalization`` does
#: (``x / (max + 1e-6)`` after subtracting the min): no division by zero on a constant column
RANGE_EPS = 1e-6


class MinMaxScaler(nn.Module):
    """Per-column ``u = (x - low) / span`` with ``low`` the minimum and ``span`` the range (+ 1e-6)
    of a column's observed training entries; identity on the columns not scaled.

    The statistics are non-persistent buffers: they follow the module across devices but are
    no part of the weights (``state_dict``), which they do not belong to: they come from the
    data, are set once per fit (:meth:`fit`) and never trained.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer("low", torch.zeros(width), persistent=False)
        self.register_buffer("span", torch.ones(width), persistent=False)

    @torch.no_grad()
    def fit(self, values: torch.Tensor, observed: torch.Tensor, scaled: torch.Tensor) -> MinMaxScaler:
        """Statistics of ``values`` ``(n, R)`` over its ``observed`` ``(n, R)`` entries, for the columns
        where ``scaled`` ``(R,)`` is True; a hidden value never moves them. A scaled column without any
        observed entry keeps the identity."""
        return self.fit_chunks([(values, observed)], scaled)

    @torch.no_grad()
    def fit_chunks(self, chunks: Iterable[tuple[torch.Tensor, torch.Tensor]], scaled: torch.Tensor) -> MinMaxScaler:
        """:meth:`fit` over row chunks ``(values, observed)`` of one table (an image split is never
        held in float whole)."""
        low = high = present = None
        for values, observed in chunks:
            chunk_low = values.masked_fill(~observed, float("inf")).amin(0)  # (R,)
            chunk_high = values.masked_fill(~observed, float("-inf")).amax(0)  # (R,)
            low = chunk_low if low is None else torch.minimum(low, chunk_low)
            high = chunk_high if high is None else torch.maximum(high, chunk_high)
            present = observed.any(0) if present is None else present | observed.any(0)
        present = present & scaled  # (R,)
        self.low.copy_(torch.where(present, low, torch.zeros_like(low)))
        self.span.copy_(torch.where(present, high - low + RANGE_EPS, torch.ones_like(low)))
        return self

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """``(..., R)`` -> ``(..., R)`` scaled (observed training entries of scaled columns in [0, 1])."""
        return (values - self.low) / self.span

    def inverse(self, unit: torch.Tensor) -> torch.Tensor:
        """``(..., R)`` scaled -> the original units (the authors' ``renormalization``)."""
        return unit * self.span + self.low


def unit_outputs(logits: torch.Tensor, layout: SchemaLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """Network logits ``(b, D)`` in the encoded layout -> ``(values, log_probs)``, both ``(b, D)``.

    ``values``: the sigmoid of numeric columns, the softmax within each one-hot block (a point
    of the simplex, so a generated row is a distribution over each feature's categories).
    ``log_probs``: the block log-softmax in one-hot columns (for cross-entropies), 0 elsewhere.
    """
    values = torch.sigmoid(logits)  # (b, D)
    if not layout.has_blocks:
        return values, torch.zeros_like(logits)
    log_probs = masked_log_softmax(layout.blocks(logits), layout.block_valid)  # (b, C, K_max)
    values = layout.scatter_blocks(log_probs.exp(), values)
    return values, layout.scatter_blocks(log_probs, torch.zeros_like(logits))
