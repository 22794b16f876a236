"""Generation metrics for multimodal image models (mrVAE paper, papers/003, Tables 1 and 2).

The Fréchet distance against closed forms and scipy's matrix square root, its streaming metric
against the functional form (batches, DDP merges), torchmetrics' FID with a local network against
ours, and the digit classifier behind coherence and the feature space on a separable synthetic task.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from imputebench.models.digit_classifier import (
    DigitClassifier,
    coherence,
    fit_digit_classifier,
    images_from_pixel_rows,
)
from imputebench.nn.frechet import (
    FrechetDistance,
    feature_statistics,
    fid_with_local_network,
    frechet_distance,
)

F64 = torch.float64


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_covariance(d: int, rank: int, seed: int) -> torch.Tensor:
    factor = torch.randn(d, rank, generator=generator(seed), dtype=F64)  # (d, rank)
    return factor @ factor.T  # (d, d), rank ``rank``


# --- the distance between two Gaussians ------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diagonal_and_commuting_covariances_give_the_closed_form(seed):
    g = generator(seed)
    mu1, mu2 = torch.randn(6, generator=g, dtype=F64), torch.randn(6, generator=g, dtype=F64)
    a, b = 3 * torch.rand(6, generator=g, dtype=F64), 3 * torch.rand(6, generator=g, dtype=F64)
    a[0], b[:2] = 0.0, 0.0  # rank-deficient on both sides
    expected = float(((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
    assert float(frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b))) == pytest.approx(expected, rel=1e-6)
    rotation, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=F64))  # (6, 6) orthogonal: S1, S2 commute
    s1, s2 = rotation @ torch.diag(a) @ rotation.T, rotation @ torch.diag(b) @ rotation.T
    assert float(frechet_distance(mu1, s1, mu2, s2)) == pytest.approx(expected, rel=1e-6)


def test_one_dimension_and_scaled_low_rank_covariance():
    assert float(frechet_distance(torch.zeros(1), torch.tensor([[4.0]]), torch.tensor([3.0]), torch.tensor([[1.0]]))) == 10.0
    sigma = random_covariance(8, 3, seed=5)  # (8, 8) rank 3
    c = 2.25  # Tr((S · cS)^{1/2}) = sqrt(c) Tr(S), so d² = (1 - sqrt(c))² Tr(S)
    expected = (1 - c**0.5) ** 2 * float(sigma.trace())
    assert float(frechet_distance(torch.zeros(8), sigma, torch.zeros(8), c * sigma)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_full_rank_covariances_agree_with_scipy_sqrtm(seed):
    s1, s2 = random_covariance(7, 9, seed), random_covariance(7, 12, seed + 10)
    mu1, mu2 = torch.randn(7, generator=generator(seed), dtype=F64), torch.zeros(7, dtype=F64)
    root = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = float(((mu1 - mu2) ** 2).sum() + s1.trace() + s2.trace()) - 2 * float(np.trace(root))
    assert float(frechet_distance(mu1, s1, mu2, s2)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("rank1, rank2", [(10, 10), (3, 10), (2, 4), (0, 5)])
def test_symmetric_non_negative_finite_and_zero_on_itself(rank1, rank2):
    s1, s2 = random_covariance(10, rank1, seed=rank1), random_covariance(10, rank2, seed=20 + rank2)
    mu1, mu2 = torch.randn(10, generator=generator(1), dtype=F64), torch.randn(10, generator=generator(2), dtype=F64)
    forward, backward = frechet_distance(mu1, s1, mu2, s2), frechet_distance(mu2, s2, mu1, s1)
    assert torch.isfinite(forward) and float(forward) >= 0.0
    assert float(forward) == pytest.approx(float(backward), rel=1e-6)
    for mu, sigma in ((mu1, s1), (mu2, s2)):
        assert float(frechet_distance(mu, sigma, mu, sigma)) == pytest.approx(0.0, abs=1e-6 * float(sigma.trace() + 1))


def test_fewer_samples_than_features_give_a_finite_distance():
    real = torch.randn(5, 16, generator=generator(0))  # covariance of rank 4
    generated = torch.randn(6, 16, generator=generator(1)) + 1.0
    distance = frechet_distance(*feature_statistics(real), *feature_statistics(generated))
    assert torch.isfinite(distance) and float(distance) > 16.0  # the means alone are 16 apart (squared)


def test_bad_statistics_raise():
    eye = torch.eye(3)
    with pytest.raises(ValueError, match="positive semi-definite"):
        frechet_distance(torch.zeros(3), torch.diag(torch.tensor([1.0, -1.0, 1.0])), torch.zeros(3), eye)
    with pytest.raises(ValueError, match="different dimensions"):
        frechet_distance(torch.zeros(3), eye, torch.zeros(2), torch.eye(2))
    with pytest.raises(ValueError, match="finite"):
        frechet_distance(torch.tensor([0.0, float("nan"), 0.0]), eye, torch.zeros(3), eye)
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(torch.zeros(1, 3))


def test_feature_statistics_match_numpy():
    features = torch.randn(40, 5, generator=generator(3)) * 3 + 1000  # a large offset: two-pass is exact
    mu, sigma = feature_statistics(features)
    reference = features.double().numpy()
    np.testing.assert_allclose(mu.numpy(), reference.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(reference, rowvar=False), rtol=1e-9, atol=1e-9)


# --- the streaming metric --------------------------------------------------------------------
def feature_sets(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = generator(seed)
    real = torch.randn(37, 5, generator=g) * torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0]) + 100.0  # (37, 5)
    generated = torch.randn(23, 5, generator=g) @ torch.randn(5, 5, generator=g) + 99.0  # (23, 5)
    return real, generated


def one_shot(real: torch.Tensor, generated: torch.Tensor) -> float:
    return float(frechet_distance(*feature_statistics(real), *feature_statistics(generated)))


def test_metric_over_several_batches_equals_the_functional_form():
    real, generated = feature_sets()
    metric = FrechetDistance(nn.Identity(), num_features=5)
    metric.update(real[:10], real=True)
    metric.update(generated[:1], real=False)
    metric.update(real[10:11], real=True)
    metric.update(real[:0], real=True)  # an empty batch is harmless
    metric.update(generated[1:], real=False)
    metric.update(real[11:], real=True)
    assert float(metric.compute()) == pytest.approx(one_shot(real, generated), rel=1e-6)
    metric.reset()
    metric.update(real, real=True)
    with pytest.raises(ValueError, match="at least 2"):
        metric.compute()


def test_calling_the_metric_only_accumulates():
    real, generated = feature_sets(1)
    metric = FrechetDistance(nn.Identity(), num_features=5)
    assert metric(real, real=True) is None and metric(generated, real=False) is None
    assert float(metric.compute()) == pytest.approx(one_shot(real, generated), rel=1e-6)


def test_states_merge_as_in_ddp():
    """Two processes each see part of the data: merge_state, and a gather that stacks their rows."""
    real, generated = feature_sets(2)
    expected = one_shot(real, generated)

    def half(rows: slice, **kwargs: object) -> FrechetDistance:
        metric = FrechetDistance(nn.Identity(), num_features=5, **kwargs)
        metric.update(real[rows], real=True)
        metric.update(generated[rows], real=False)
        return metric

    second = half(slice(15, None))
    merged = half(slice(None, 15))
    merged.merge_state(second)
    assert float(merged.compute()) == pytest.approx(expected, rel=1e-6)

    def all_gather(state: torch.Tensor, group: object = None) -> list[torch.Tensor]:
        """What torch.distributed's all_gather gives on rank 0 of two: each rank's state."""
        gathered.append(state.shape)
        return [state, others[id(state)]]

    gathered: list[torch.Size] = []

    first = half(slice(None, 15), dist_sync_fn=all_gather, distributed_available_fn=lambda: True)
    others = {id(first.metric_state[name]): state for name, state in second.metric_state.items()}
    assert float(first.compute()) == pytest.approx(expected, rel=1e-6)  # the gather stacks rows (2, 1, ...)
    assert len(gathered) == 6  # count, mean and scatter of both sides went through the gather
    assert first.metric_state["real_mean"].shape == (1, 5)  # unsynced again after compute


def test_the_feature_network_is_a_frozen_copy():
    network = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.5))
    real, generated = feature_sets(3)
    with torch.no_grad():
        expected = one_shot(network.eval()(real), network(generated))
    metric = FrechetDistance(network, input_shape=(5,))  # the width, 3, from a probe
    network[0].weight.data.zero_()  # training the original further does not move the metric's features
    metric.train()  # as a parent LightningModule's train() would: dropout stays off
    metric.update(real, real=True)
    metric.update(generated, real=False)
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-6)
    assert not any(p.requires_grad for p in metric.parameters()) and network[0].weight.requires_grad
    with pytest.raises(ValueError, match="num_features"):
        FrechetDistance(nn.Identity())


# --- torchmetrics' FID with a local network --------------------------------------------------
def stand_in_network(seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 13 * 13, 6))


def image_sets() -> tuple[torch.Tensor, torch.Tensor]:
    g = generator(4)
    return torch.rand(64, 3, 28, 28, generator=g), 0.6 * torch.rand(48, 3, 28, 28, generator=g) + 0.2


def fill(metric, real: torch.Tensor, generated: torch.Tensor) -> float:
    for part in (slice(None, 30), slice(30, None)):
        metric.update(real[part], real=True)
        metric.update(generated[part], real=False)
    return float(metric.compute())


def test_torchmetrics_fid_with_a_local_network_equals_ours(tmp_path):
    real, generated = image_sets()
    ours = fill(FrechetDistance(stand_in_network(0), input_shape=(3, 28, 28)), real, generated)
    assert ours > 0.0
    assert fill(fid_with_local_network(stand_in_network(0), input_shape=(3, 28, 28)), real, generated) == pytest.approx(ours, rel=1e-4)
    weights, checkpoint = tmp_path / "features.pt", tmp_path / "classifier.ckpt"
    torch.save(stand_in_network(0).state_dict(), weights)
    torch.save({"state_dict": stand_in_network(0).state_dict(), "epoch": 3}, checkpoint)
    for path in (weights, str(checkpoint)):
        fid = fid_with_local_network(path, architecture=stand_in_network(1), num_features=6)
        assert fill(fid, real, generated) == pytest.approx(ours, rel=1e-4)
    with pytest.raises(ValueError, match="architecture"):
        fid_with_local_network(weights)


# --- the digit classifier and coherence -------------------------------------------------------
def bar_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A separable 10-class task on ``(n, 3, 28, 28)`` images in [0, 1]: class k lights the bar in
    cell k of a 2 x 5 grid (14 x 5 pixels), in a random colour, over uniform noise."""
    g = generator(seed)
    labels = torch.randperm(n, generator=g) % 10  # (n,)
    h, w = torch.arange(28)[:, None], torch.arange(28)[None, :]
    cells = torch.arange(10)[:, None, None]  # (10, 1, 1)
    bars = ((h // 14 == cells // 5) & (w // 5 == cells % 5)).float()  # (10, 28, 28)
    colour = 0.5 + 0.5 * torch.rand(n, 3, 1, 1, generator=g)  # (n, 3, 1, 1)
    noise = 0.4 * torch.rand(n, 3, 28, 28, generator=g)
    return (noise + colour * bars[labels][:, None]).clamp(0.0, 1.0), labels


def untrained() -> DigitClassifier:
    return DigitClassifier(channels=(8, 16), num_features=32, lr=3e-3, seed=0)


@pytest.fixture(scope="module")
def trained() -> DigitClassifier:
    images, labels = bar_images(400, seed=0)
    return fit_digit_classifier(untrained(), images, labels, max_epochs=3, batch_size=32, seed=0)


def test_the_classifier_learns_a_separable_task_and_coherence_follows_the_labels(trained):
    images, labels = bar_images(300, seed=1)  # held out
    assert coherence(untrained(), images, labels) <= 0.25  # chance is 0.1: the fit does the learning
    assert coherence(trained, images, labels) >= 0.95
    shuffled = labels[torch.randperm(300, generator=generator(2))]
    assert coherence(trained, images, shuffled) <= 0.25  # chance is 0.1
    assert torch.equal(trained.predict(images, batch_size=7), trained.predict(images))


def test_output_shapes_for_three_and_one_channels(trained):
    images, _ = bar_images(5, seed=3)
    assert trained.features(images).shape == (5, 32) and trained(images).shape == (5, 10)
    predicted = trained.predict(images)
    assert predicted.shape == (5,) and predicted.dtype == torch.long and bool(((predicted >= 0) & (predicted < 10)).all())
    grey = DigitClassifier(in_channels=1, channels=(4, 8), num_features=16)
    assert grey.features(images[:, :1]).shape == (5, 16) and grey.predict(images[:, :1]).shape == (5,)
    assert trained.feature_network.num_features == 32


def test_initial_weights_come_from_the_seed_and_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    first, second, other = DigitClassifier(seed=3), DigitClassifier(seed=3), DigitClassifier(seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first.head.weight, second.head.weight) and not torch.equal(first.head.weight, other.head.weight)


def test_the_classifier_features_rank_a_collapsed_generator_behind_real_images(trained):
    """The Fréchet distance in the classifier's feature space orders generators: fresh real images are
    closest to the real ones, images of five digits farther, of one digit only (mode collapse) farthest."""
    real, _ = bar_images(200, seed=4)
    fresh, _ = bar_images(200, seed=5)
    many, labels = bar_images(400, seed=6)
    half, collapsed = many[labels < 5], many[labels == 0]

    def distance(generated: torch.Tensor) -> float:
        metric = FrechetDistance(trained.feature_network)
        metric.update(real, real=True)
        metric.update(generated, real=False)
        return float(metric.compute())

    assert 0.0 < 3 * distance(fresh) < distance(half) < distance(collapsed)


def test_a_classifier_checkpoint_gives_the_fid_in_its_feature_space(trained, tmp_path):
    real, _ = bar_images(60, seed=8)
    generated, _ = bar_images(50, seed=9)
    generated = generated.roll(3, dims=3)  # bars off their cells
    ours = fill(FrechetDistance(trained), real, generated)  # a classifier stands for its features
    assert ours == pytest.approx(fill(FrechetDistance(trained.feature_network), real, generated), rel=1e-9)
    trained.trainer.save_checkpoint(tmp_path / "classifier.ckpt")  # what a Lightning fit leaves on disk
    architecture = DigitClassifier(channels=(8, 16), num_features=32, seed=1)
    fid = fid_with_local_network(tmp_path / "classifier.ckpt", architecture=architecture)
    assert fill(fid, real, generated) == pytest.approx(ours, rel=1e-4)


def test_pixel_rows_in_height_width_channel_order_become_images():
    rows = torch.zeros(2, 28 * 28 * 3, dtype=torch.uint8)  # the multimodal datasets' pixel features
    h, w, c = 5, 17, 2
    rows[1, (h * 28 + w) * 3 + c] = 255  # feature index of pixel (h, w), channel c
    images = images_from_pixel_rows(rows, (28, 28, 3))
    assert images.shape == (2, 3, 28, 28) and images.dtype == torch.get_default_dtype()
    assert float(images[1, c, h, w]) == 1.0 and float(images.sum()) == 1.0
    pictures = torch.randint(0, 256, (4, 3, 28, 28), generator=generator(7), dtype=torch.uint8)  # (N, C, H, W)
    flat = pictures.permute(0, 2, 3, 1).reshape(4, -1).numpy()  # (N, H * W * C), as a table stores them
    assert torch.allclose(images_from_pixel_rows(flat, (28, 28, 3)), pictures.float() / 255)
    grey = images_from_pixel_rows(np.full((3, 64), 20.0), (8, 8), intensity_max=16.0)  # 8x8 digits, clipped
    assert grey.shape == (3, 1, 8, 8) and float(grey.max()) == 1.0
    with pytest.raises(ValueError, match="must be"):
        images_from_pixel_rows(rows[:, :-1], (28, 28, 3))
