"""The Fréchet distance between feature distributions of real and generated images (sample quality).

Heusel et al. 2017 ("GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS) score generated images by fitting a Gaussian to the features of real and of
generated images and taking the Fréchet (2-Wasserstein) distance between the two Gaussians,

    d² = ||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^{1/2}),

in the feature space of an Inception-v3 network: the FID. The mrVAE paper (Sutter & Vogt,
papers/003, Table 2) reports it on PolyMNIST. Inception weights cannot be downloaded here, so
:class:`FrechetDistance` takes any feature network, e.g. the penultimate layer of the digit
classifier of :mod:`imputebench.models.digit_classifier`. **Its values are not comparable with
published FIDs**: only the order of models (or input sets) scored with the same network is.

Pieces, one job each:

* :func:`frechet_distance`: the distance between two Gaussians given by their statistics.
* :func:`feature_statistics`: mean and (unbiased, ``n - 1``) covariance of ``(n, d)`` features.
* :class:`FrechetDistance`: a :class:`torchmetrics.Metric` accumulating both feature sets across
  batches and processes (DDP).
* :func:`fid_with_local_network`: torchmetrics' own ``FrechetInceptionDistance`` around a feature
  network given as a module or as a local weights file (no ``torch-fidelity`` needed).

Both metrics wrap their network in :class:`FrozenFeatures`: a copy, always in eval mode, without
gradients, so that the feature space is fixed when the metric is built (training the original
network further does not move it) and a Lightning ``model.train()`` does not switch it to training.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from os import PathLike

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance

_F64 = torch.float64
#: a covariance eigenvalue below ``-PSD_TOLERANCE * (largest |eigenvalue|)`` is not rounding: the matrix is rejected
PSD_TOLERANCE = 1e-6


# --- the distance between two Gaussians ------------------------------------------------------
def _symmetric(matrix: Tensor) -> Tensor:
    return (matrix + matrix.T) / 2  # (d, d)


def _psd_eigenvalues(matrix: Tensor, what: str) -> tuple[Tensor, Tensor]:
    """Eigenvalues ``(d,)``, clipped at 0, and eigenvectors ``(d, d)`` of a symmetric PSD matrix.

    Negative eigenvalues of a covariance are rounding noise (a rank-deficient one has exact
    zeros); clipping them makes every square root real. A clearly negative one raises."""
    values, vectors = torch.linalg.eigh(matrix)  # (d,), (d, d), ascending
    if bool(values[0] < -PSD_TOLERANCE * values.abs().max()):
        raise ValueError(f"{what} is not positive semi-definite (eigenvalue {float(values[0]):.3g})")
    return values.clamp_min(0.0), vectors


def _as_statistics(mu: Tensor, sigma: Tensor, which: int) -> tuple[Tensor, Tensor]:
    mu, sigma = torch.as_tensor(mu, dtype=_F64), torch.as_tensor(sigma, dtype=_F64)
    if mu.ndim != 1 or mu.shape[0] == 0 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"mu{which} {tuple(mu.shape)} and sigma{which} {tuple(sigma.shape)} must be (d,) and (d, d)")
    if not (torch.isfinite(mu).all() and torch.isfinite(sigma).all()):
        raise ValueError(f"mu{which} and sigma{which} must be finite")
    return mu, _symmetric(sigma)


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> Tensor:
    """Squared Fréchet (2-Wasserstein) distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^{1/2})`` (Heusel et al. 2017, the FID formula), with
    ``mu`` ``(d,)`` and ``sigma`` ``(d, d)``; computed in float64, returned in
    ``torch.get_default_dtype()``.

    The trace of the matrix square root is taken as ``Tr((R S2 R)^{1/2})`` with ``R = S1^{1/2}``:
    ``S1 S2 = R (R S2)`` and ``(R S2) R`` share their eigenvalues, so both traces are the sum of the
    square roots of the same eigenvalues, and ``R S2 R`` is symmetric positive semi-definite. Both
    steps are symmetric eigendecompositions (``torch.linalg.eigh``): backward-stable, with real
    eigenvalues, whose rounding noise below 0 is clipped. This needs no regularisation, unlike
    ``scipy.linalg.sqrtm`` of the non-symmetric product ``S1 S2``, which returns complex parts and
    is inaccurate when the product is singular (pytorch-fid then adds ``eps * I`` to both
    covariances, which biases the value): rank-deficient covariances (fewer samples than features,
    dead ReLU units) give a finite, unbiased distance. Inputs are symmetrised; a covariance with
    a clearly negative eigenvalue raises ``ValueError``; the result is clipped at 0.

    >>> frechet_distance(torch.zeros(2), torch.diag(torch.tensor([1., 4.])), torch.ones(2), torch.diag(torch.tensor([9., 4.])))
    tensor(6.)
    """
    mu1, sigma1 = _as_statistics(mu1, sigma1, 1)
    mu2, sigma2 = _as_statistics(mu2, sigma2, 2)
    if mu1.shape != mu2.shape:
        raise ValueError(f"the two Gaussians live in different dimensions: {mu1.shape[0]} and {mu2.shape[0]}")
    values, vectors = _psd_eigenvalues(sigma1, "sigma1")  # (d,), (d, d)
    _psd_eigenvalues(sigma2, "sigma2")
    root1 = (vectors * values.sqrt()) @ vectors.T  # (d, d) S1^{1/2}
    inner = _symmetric(root1 @ sigma2 @ root1)  # (d, d) S1^{1/2} S2 S1^{1/2}
    trace_root = torch.linalg.eigvalsh(inner).clamp_min(0.0).sqrt().sum()  # Tr((S1 S2)^{1/2})
    diff = mu1 - mu2  # (d,)
    distance = diff @ diff + sigma1.trace() + sigma2.trace() - 2 * trace_root
    return distance.clamp_min(0.0).to(torch.get_default_dtype())


# --- statistics of features ------------------------------------------------------------------
def _check_features(features: Tensor, num_features: int | None = None) -> Tensor:
    if features.ndim != 2 or (num_features is not None and features.shape[1] != num_features):
        width = "d" if num_features is None else num_features
        raise ValueError(f"features must be (n, {width}), got {tuple(features.shape)}")
    features = features.detach().to(_F64)
    if not torch.isfinite(features).all():
        raise ValueError("features must be finite")
    return features


def _moments(features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Count ``(1,)``, mean ``(1, d)`` and scatter about the mean ``(1, d, d)`` of ``(n, d)`` float64 features."""
    count = torch.full((1,), float(features.shape[0]), dtype=_F64, device=features.device)  # (1,)
    mean = features.sum(0) / count.clamp_min(1.0)  # (d,)
    centred = features - mean  # (n, d)
    return count, mean[None], (centred.T @ centred)[None]


def _merge_moments(count: Tensor, mean: Tensor, m2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Merge part moments ``(B,)``, ``(B, d)``, ``(B, d, d)`` into one part (Chan, Golub & LeVeque 1979).

    Exact, and free of the cancellation of the one-pass ``sum(x xᵀ) - n mean meanᵀ``; parts with
    count 0 (an empty batch, the initial state) add nothing."""
    total = count.sum()  # ()
    grand = (count[:, None] * mean).sum(0) / total.clamp_min(1.0)  # (d,)
    offset = mean - grand  # (B, d)
    m2_all = m2.sum(0) + torch.einsum("b,bi,bj->ij", count, offset, offset)  # (d, d)
    return total[None], grand[None], m2_all[None]


def feature_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(d,)`` and unbiased covariance ``(d, d)`` (divided by ``n - 1``, as ``numpy.cov``,
    pytorch-fid and torchmetrics do) of features ``(n, d)``, n >= 2, in float64 (two-pass).

    >>> mu, sigma = feature_statistics(torch.tensor([[0., 1.], [2., 1.], [4., 4.]]))
    >>> mu
    tensor([2., 2.], dtype=torch.float64)
    >>> sigma
    tensor([[4., 3.],
            [3., 3.]], dtype=torch.float64)
    """
    features = _check_features(features)
    if features.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {features.shape[0]}")
    _, mean, m2 = _moments(features)
    return mean[0], m2[0] / (features.shape[0] - 1)


# --- the feature network ---------------------------------------------------------------------
def _feature_count(network: nn.Module, num_features: int | None, input_shape: Sequence[int] | None) -> int:
    """``num_features`` if given, else the network's ``num_features`` attribute, else the width of
    its output for zero images of ``input_shape`` ``(C, H, W)``."""
    if num_features is not None:
        return int(num_features)
    declared = getattr(network, "num_features", None)
    if isinstance(declared, int):
        return declared
    if input_shape is None:
        raise ValueError("the network has no int num_features attribute: pass num_features or input_shape")
    device = next((p.device for p in network.parameters()), None)
    with torch.no_grad():
        return int(network(torch.zeros(2, *input_shape, device=device)).flatten(1).shape[1])  # (2, d)


class FrozenFeatures(nn.Module):
    """A fixed copy of a feature network: always in eval mode, no gradients, its width known.

    A module with a ``feature_network`` attribute (a classifier, as
    :class:`~imputebench.models.digit_classifier.DigitClassifier`) stands for that module: its
    penultimate features, not its logits. ``forward(images)`` is the network's output flattened
    to ``(N, num_features)``.
    """

    def __init__(self, network: nn.Module, num_features: int | None = None, input_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        network = getattr(network, "feature_network", network)
        self.network = copy.deepcopy(network).eval().requires_grad_(False)
        self.num_features = _feature_count(self.network, num_features, input_shape)

    def train(self, mode: bool = True) -> FrozenFeatures:
        """Stay in eval mode whatever a parent module asks (dropout or batch norm would change the features)."""
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        return self.network(images).flatten(1)  # (N, ...) -> (N, num_features)


# --- the metric ------------------------------------------------------------------------------
class FrechetDistance(Metric):
    """Fréchet distance between the features of real and of generated images (Heusel et al. 2017).

    ``update(images, real)`` passes a batch through ``feature_extractor`` (frozen: see
    :class:`FrozenFeatures`) and accumulates its count, mean and scatter matrix into the real or the
    generated side; ``compute()`` merges them exactly (:func:`_merge_moments`), takes the unbiased
    covariances and returns :func:`frechet_distance`. Images are whatever the network takes (for
    :class:`~imputebench.models.digit_classifier.DigitClassifier`'s features: float ``(N, C, H, W)``
    in ``[0, 1]``). ``num_features`` defaults to the network's ``num_features`` attribute, else to the
    width of its output for zero images of ``input_shape``.

    States are per-process moments of fixed size (``(1,)``, ``(1, d)``, ``(1, d, d)`` per side) with
    ``"cat"`` reduction: a DDP gather (or ``merge_state``) stacks the processes' rows and ``compute``
    merges them. A batch is all real or all generated, so it has no distance of its own: calling the
    metric (``forward``) only accumulates and returns None.

    >>> metric = FrechetDistance(nn.Identity(), num_features=1)
    >>> metric.update(torch.tensor([[0.], [2.]]), real=True)
    >>> metric.update(torch.tensor([[3.], [5.]]), real=False)
    >>> metric.compute()
    tensor(9.)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        feature_extractor: nn.Module,
        num_features: int | None = None,
        input_shape: Sequence[int] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.feature_extractor = FrozenFeatures(feature_extractor, num_features, input_shape)
        d = self.feature_extractor.num_features
        for side in ("real", "generated"):
            self.add_state(f"{side}_count", torch.zeros(1, dtype=_F64), dist_reduce_fx="cat")
            self.add_state(f"{side}_mean", torch.zeros(1, d, dtype=_F64), dist_reduce_fx="cat")
            self.add_state(f"{side}_m2", torch.zeros(1, d, d, dtype=_F64), dist_reduce_fx="cat")

    def _side(self, side: str) -> tuple[Tensor, Tensor, Tensor]:
        """This side's part moments, whatever rows a gather stacked: ``(B,)``, ``(B, d)``, ``(B, d, d)``."""
        d = self.feature_extractor.num_features
        return (getattr(self, f"{side}_count").reshape(-1), getattr(self, f"{side}_mean").reshape(-1, d),
                getattr(self, f"{side}_m2").reshape(-1, d, d))

    def update(self, images: Tensor, real: bool) -> None:
        features = _check_features(self.feature_extractor(images), self.feature_extractor.num_features)  # (n, d)
        side = "real" if real else "generated"
        parts = zip(self._side(side), _moments(features))
        merged = _merge_moments(*(torch.cat(pair) for pair in parts))  # (1,), (1, d), (1, d, d)
        for name, value in zip(("count", "mean", "m2"), merged):
            setattr(self, f"{side}_{name}", value)

    def forward(self, images: Tensor, real: bool) -> None:
        """Accumulate like :meth:`update` (one batch has no distance of its own)."""
        self.update(images, real)

    def compute(self) -> Tensor:
        statistics = []
        for side in ("real", "generated"):
            count, mean, m2 = _merge_moments(*self._side(side))
            if float(count[0]) < 2:
                raise ValueError(f"{side} images: a covariance needs at least 2, got {int(count[0])}")
            statistics += [mean[0], m2[0] / (count[0] - 1)]
        return frechet_distance(*statistics)


# --- torchmetrics' own FID with a local network ----------------------------------------------
def _load_network(network: nn.Module | str | PathLike, architecture: nn.Module | None) -> nn.Module:
    """The module itself, or ``architecture`` with the weights of the file ``network``."""
    if isinstance(network, nn.Module):
        return network
    if architecture is None:
        raise ValueError("a weights file holds tensors, not code: pass architecture=<the module they fit>")
    state = torch.load(network, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # a Lightning checkpoint
        state = state["state_dict"]
    architecture.load_state_dict(state)
    return architecture


def fid_with_local_network(
    network: nn.Module | str | PathLike,
    architecture: nn.Module | None = None,
    num_features: int | None = None,
    input_shape: Sequence[int] | None = None,
    **kwargs: object,
) -> FrechetInceptionDistance:
    """torchmetrics' ``FrechetInceptionDistance`` in the feature space of a local network.

    ``network`` is a module mapping images to ``(N, d)`` features, or the path of a weights file
    (``torch.save(module.state_dict(), path)``, or a Lightning checkpoint, whose ``state_dict`` is
    taken) loaded with ``weights_only=True`` (no pickled code runs) into ``architecture``, a module of
    the same shape. The network is frozen (:class:`FrozenFeatures`: a classifier with a
    ``feature_network``, e.g. ``architecture=DigitClassifier(...)`` for a checkpoint of one, gives its
    penultimate features); ``num_features``/``input_shape`` as for :class:`FrechetDistance`;
    ``kwargs`` go to the metric (``reset_real_features``, ...).

    Needs no ``torch-fidelity``: torchmetrics imports it only for its built-in Inception
    (``feature`` an int). Conventions with a custom network, which differ from the built-in one's:
    ``update(imgs, real)`` passes ``imgs`` to the network unchanged (with the built-in Inception,
    ``normalize=True`` turns ``[0, 1]`` floats into 0..255 bytes; with a module it only sets the dtype
    of the dummy image torchmetrics would probe the width with, float32 here, which the
    ``num_features`` attribute set by :class:`FrozenFeatures` makes unnecessary). Covariances are
    unbiased (``n - 1``) as ours, but accumulated one-pass (``sum(x xᵀ) - n mean meanᵀ``, float64) and
    the trace root taken from the eigenvalues of the non-symmetric ``S1 S2``; the value is returned
    in the features' dtype (float32 for a float32 network). It agrees with :class:`FrechetDistance`
    on the same network and images to float32 precision (tests/test_generation_metrics.py).
    """
    frozen = FrozenFeatures(_load_network(network, architecture), num_features, input_shape)
    return FrechetInceptionDistance(feature=frozen, normalize=True, **kwargs)
