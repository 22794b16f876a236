"""``vsae_zero_fill``: the faithful VSAE with exactly two of appendix B.2's choices changed (our deviation)."""

from __future__ import annotations

import dataclasses

import torch

from helpers import smoke_data, smoke_model
from imputebench.models.vsae import VSAEConfig, VSAEZeroFillConfig


def test_the_deviation_changes_exactly_the_fill_and_the_latent_size():
    faithful, deviated = dataclasses.asdict(VSAEConfig()), dataclasses.asdict(VSAEZeroFillConfig())
    changed = {key for key in faithful if faithful[key] != deviated[key]}
    assert changed == {"missing_fill", "latent_per_feature"}
    assert (deviated["missing_fill"], deviated["latent_per_feature"]) == ("zeros", 1)
    assert (faithful["missing_fill"], faithful["latent_per_feature"]) == ("noise", 20)


def _multimodal_twice(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    data = smoke_data(0)
    model = smoke_model(name, data)
    model.build_networks(data.dataset.schema)
    x = torch.randn(8, data.dataset.schema.encoded_dim)  # (b, D)
    observed = torch.rand(8, data.dataset.schema.encoded_dim) < 0.5  # (b, D)
    m = model.layout.modality_mask(observed).float()  # (b, M)
    torch.manual_seed(0)
    first = model.multimodal(x, observed, m)  # (b, M, 2L)
    second = model.multimodal(x, observed, m)
    hidden_changed = model.multimodal(torch.where(observed, x, x + 5.0), observed, m)
    return first, second, hidden_changed


def test_unobserved_entries_reach_the_multimodal_encoder_as_zeros_not_noise():
    first, second, hidden_changed = _multimodal_twice("vsae_zero_fill")
    assert first.shape[-1] == 2  # one latent dimension: mean and log-variance
    torch.testing.assert_close(first, second)  # no noise drawn in its place
    torch.testing.assert_close(first, hidden_changed)  # and the hidden values never reach it
    noisy, noisy_again, _ = _multimodal_twice("vsae")
    assert noisy.shape[-1] == 40 and not torch.allclose(noisy, noisy_again)  # the faithful model draws noise
