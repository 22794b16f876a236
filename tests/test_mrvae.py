"""mrVAE (papers/003): the assignment of factors to subspaces, the priors, the aggregation of shared factors,
gradients to every network and missing modalities, on small multimodal data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import hypergeom

from imputebench.data.multimodal import multimodal_dataset
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.models.mopoe import MoPoE
from imputebench.models.mrvae import MrVAE, plackett_luce_log_ratio
from imputebench.models.registry import get_model
from imputebench.schema import Feature, FeatureSchema


@pytest.fixture(scope="module")
def three_images():
    """Three 4x4 'images' of one shared class per row (brightness), as PolyMNIST in miniature."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 240)
    parts = [(f"m{j}", np.clip(labels[:, None] * 90 + rng.integers(0, 60, (240, 16)), 0, 255).astype(np.uint8), (4, 4))
             for j in range(3)]
    return prepare(multimodal_dataset("three", parts), get_protocol("vsae"), "mcar", 0.4, seed=0)


def built(schema: FeatureSchema, **config: object) -> MrVAE:
    model = MrVAE(seed=0, **{"latent_dim": 6, "batch_size": 32, "max_epochs": 2, **config})
    model.build_networks(schema)
    return model


def test_registered_and_refuses_too_few_or_too_many_modalities():
    assert get_model("mrvae") is MrVAE
    with pytest.raises(ValueError, match=r"2 <= M <= max_modalities = 6, got M = 7"):
        built(FeatureSchema(tuple(Feature(f"f{j}") for j in range(7))))
    with pytest.raises(ValueError, match="got M = 1"):
        built(FeatureSchema((Feature("only"),)))


def test_shared_subsets_are_ordered_largest_first_with_their_members(three_images):
    model = built(three_images.train.schema)
    assert model.sizes == [3, 2, 2, 2]  # {0,1,2}, then the three pairs
    members = [model.members[s, :size].tolist() for s, size in enumerate(model.sizes)]
    assert members[0] == [0, 1, 2] and sorted(members[1:]) == [[0, 1], [0, 2], [1, 2]]
    pairs, triples = model.relations.pairs, model.relations.triples
    assert pairs.shape == (3 + 2 * 3, 2) and triples.shape == (9 + 4 * 3, 3)  # sum |A| and sum |A|^2


def test_every_factor_is_taken_by_exactly_one_subspace_or_left_private(three_images):
    """Definition 2: y_j assigns each factor of z_j to one subspace; the counts agree across a subspace's members
    (eq. 1), so for every modality the shared counts of its subspaces plus its private factors make D."""
    model = built(three_images.train.schema, latent_dim=5).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        parts = model.relate(three_images.train.x[:40] * three_images.train.observed[:40], three_images.train.observed[:40])
    shared, private = parts["shared"], parts["private"]  # (b, S), (b, M, D)
    assert set(private.unique().tolist()) <= {0.0, 1.0} and (shared >= 0).all()
    members = torch.zeros(len(model.sizes), 3)
    for s, size in enumerate(model.sizes):
        members[s, model.members[s, :size]] = 1
    taken = shared.float() @ members  # (b, M) factors of each modality given to shared subspaces
    torch.testing.assert_close(taken + private.sum(-1), torch.full_like(taken, 5.0))


def test_the_count_prior_is_the_hypergeometric_marginal_of_one_subspace(three_images):
    model = built(three_images.train.schema, latent_dim=6)
    # 2^(M-1) = 4 subspaces of capacity 6 per modality, 6 factors drawn: one subspace's count ~ Hypergeom(24, 6, 6)
    expected = hypergeom(24, 6, 6).logpmf(np.arange(7))
    np.testing.assert_allclose(model.count_prior.numpy(), expected, rtol=1e-5)


def test_the_selection_kl_estimate_is_zero_for_uniform_weights_and_positive_for_peaked_ones():
    order = torch.eye(4)[[2, 0, 3, 1]].unsqueeze(0)  # (1, 4, 4): ranks 0..3 take factors 2, 0, 3, 1
    free, keep = torch.ones(1, 4), torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert plackett_luce_log_ratio(torch.zeros(1, 4), order, free, keep).item() == pytest.approx(0.0, abs=1e-6)
    peaked = torch.tensor([[0.0, 3.0, 5.0, 0.0]])  # factor 2 first, then 0: less likely than uniform at step 2
    expected = (5.0 - np.log(np.exp([0, 3, 5, 0]).sum())) + np.log(4) + (0.0 - np.log(np.exp([0, 3, 0]).sum())) + np.log(3)
    assert plackett_luce_log_ratio(peaked, order, free, keep).item() == pytest.approx(expected, rel=1e-5)


def test_gradients_reach_every_network_and_no_hidden_value_is_read(three_images):
    model = built(three_images.train.schema).train()
    x, observed = three_images.train.x[:32], three_images.train.observed[:32]
    torch.manual_seed(0)
    parts = model.loss(x, observed)
    parts["loss"].backward()
    assert all(torch.isfinite(v) for v in parts.values())
    silent = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent, silent
    scrambled = torch.where(observed, x, torch.full_like(x, 7.0))
    torch.manual_seed(0)
    again = model.loss(scrambled, observed)
    assert again["loss"].item() == pytest.approx(parts["loss"].item(), rel=1e-6)


def test_a_missing_modalitys_shared_factors_come_from_the_observed_members(three_images):
    """Only modality 0 observed: the decoders' inputs of modalities 1 and 2 change with x_0 (their shared factors
    aggregate x_0's), while with nothing observed every input is drawn from the prior."""
    model = built(three_images.train.schema).eval()
    observed = torch.zeros_like(three_images.test.observed[:8])
    observed[:, :16] = True  # m0's pixels
    x = three_images.test.x[:8]
    with torch.no_grad():
        torch.manual_seed(3)
        base = model.relate(x * observed, observed)["inputs"]
        torch.manual_seed(3)
        other = model.relate(torch.roll(x, 1, 0) * observed, observed)["inputs"]
    shared = (1 - model.relate(x * observed, observed)["private"][:, 1:]).sum().item()
    assert shared > 0 and not torch.allclose(base[:, 1:], other[:, 1:])


def test_mrvae_and_mopoe_share_their_encoders_and_decoders(three_images):
    schema, config = three_images.train.schema, {"latent_dim": 6}
    mr, mo = built(schema, **config), MoPoE(seed=0, **config).build_networks(schema)
    shapes = lambda net: [tuple(p.shape) for p in net.parameters()]  # noqa: E731
    assert shapes(mr.experts) == shapes(mo.experts) and shapes(mr.decoders) == shapes(mo.decoders)


def test_fits_imputes_and_generates_on_images(three_images):
    model = MrVAE(seed=0, latent_dim=6, max_epochs=2, batch_size=32, n_imputations=2, select_on="loss")
    model.fit(three_images.train, three_images.validation)
    assert model.training_summary()["epochs"] == 2 and "val_loss" in model.epoch_history()[0]
    imputed = model.impute(three_images.test)
    assert torch.isfinite(imputed).all() and torch.equal(imputed[three_images.test.observed],
                                                         three_images.test.x[three_images.test.observed])
    rows, _ = model.generate(5)
    assert rows.shape == (5, three_images.test.x.shape[1]) and torch.isfinite(rows).all()
