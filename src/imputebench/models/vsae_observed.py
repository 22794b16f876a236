"""VSAE with observed features hidden from its encoders during training: our deviation from the paper, stated.

VSAE (papers/000, eq. 3-4; :mod:`imputebench.models.vsae`) encodes an observed feature x_i with its own unimodal
encoder and an unobserved one with the multimodal encoder q_psi(z_i | x_o, m), and scores the decoder on the
observed features and, after the warm-up, on its own generated x~_u. No term of eq. (4) ever asks the decoder to
reproduce a *real* value from a latent that q_psi inferred: an observed feature's reconstruction reads its own
z_i (an identity path), and the unobserved term's targets are the model's own imputations. So q_psi learns
nothing about how the missing features depend on the observed ones, and the imputation stays at the decoder's
average output: mean imputation (benchmarks/results/vsae_ablation.md measures this part by part).

The change: in each training step, every observed feature of a row is also hidden from the encoders with
probability ``observed_dropout`` (drawn per row and modality), so its latent comes from q_psi given the rest,
while the reconstruction term still scores it against its true value. This is how VAEAC obtains supervision for
its conditional proposal (papers/002 section 4.3.3: unobserved features chosen by a mask distribution p(b | x)
among the observed ones). Everything else is VSAE's: the networks, the mask decoder (which still models the
data's own missingness m), the two-stage schedule and the unobserved term on the truly missing entries;
imputation sees every observed entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from imputebench.models.config_types import Probability
from imputebench.models.registry import register_model
from imputebench.models.vsae import VSAE, VSAEConfig


@dataclass(frozen=True)
class VSAEObservedConfig(VSAEConfig):
    """VSAE's configuration, and the probability of hiding an observed modality from the encoders in training."""

    observed_dropout: Probability = 0.2  # the rate of VAEAC's training masks, p(b_i | x) = 0.2 (papers/002 A.2); not tuned


@register_model("vsae_observed")
class VSAEObserved(VSAE):
    """VSAE whose multimodal encoder also learns from observed features hidden from it in training (our deviation from the paper; see its module)."""

    Config = VSAEObservedConfig

    def shown_to_encoders(self, observed: torch.Tensor) -> torch.Tensor:
        """``observed`` ``(b, D)`` less, per row, each observed modality hidden with probability ``observed_dropout``."""
        if self.cfg.observed_dropout == 0:  # VSAE itself, random stream included
            return observed
        present = self.layout.modality_mask(observed)  # (b, M)
        hidden = present & (torch.rand(present.shape, device=observed.device) < self.cfg.observed_dropout)  # (b, M)
        return observed & ~self.layout.expand_modalities(hidden)  # (b, D)
