"""vsae_observed: VSAE whose encoders are shown fewer observed features in training (models/vsae_observed.py)."""

from __future__ import annotations

import torch
from helpers import smoke_data

from imputebench.models.vsae import VSAE
from imputebench.models.vsae_observed import VSAEObserved


def built(cls, **config):
    data = smoke_data(0)
    model = cls(seed=0, max_epochs=1, **config)
    model.build_networks(data.train.schema)
    return model, data


def test_it_hides_whole_observed_modalities_at_its_rate_and_nothing_else():
    model, data = built(VSAEObserved, observed_dropout=0.3)
    x, observed = data.train.rows(slice(None))  # (n, D) each
    torch.manual_seed(0)
    shown = model.shown_to_encoders(observed)  # (n, D)
    assert not (shown & ~observed).any()  # nothing unobserved is ever shown
    hidden = model.layout.modality_mask(observed) & ~model.layout.modality_mask(shown)  # (n, M)
    assert torch.equal(model.layout.expand_modalities(hidden), observed & ~shown)  # a modality is hidden whole
    rate = hidden.sum() / model.layout.modality_mask(observed).sum()
    assert abs(float(rate) - 0.3) < 0.03


def test_at_rate_zero_its_loss_is_vsaes():
    vsae, data = built(VSAE)
    ours, _ = built(VSAEObserved, observed_dropout=0.0)
    ours.load_state_dict(vsae.state_dict())
    x, observed = data.train.rows(slice(0, 64))
    losses = []
    for model in (vsae, ours):
        torch.manual_seed(1)
        losses.append(model.loss(x * observed, observed)["loss"])
    assert torch.allclose(losses[0], losses[1])


def test_the_hidden_features_are_scored_on_their_true_values():
    """With every observed feature hidden from the encoders, the reconstruction term still depends on x."""
    model, data = built(VSAEObserved, observed_dropout=1.0)
    x, observed = data.train.rows(slice(0, 64))
    model.eval()
    torch.manual_seed(2)
    base = model.loss(x * observed, observed)["rec_observed"]
    torch.manual_seed(2)
    shifted = model.loss((x + 1.0) * observed, observed)["rec_observed"]
    assert not torch.allclose(base, shifted)
