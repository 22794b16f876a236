"""A small convolutional digit classifier: the judge of generated images, not an imputation model.

Sutter, Daunhawer & Vogt 2021 ("Generalized Multimodal ELBO", ICLR; the MoPoE-VAE) measure the
*coherence* of conditionally generated PolyMNIST images with a digit classifier trained per modality
on real images: a generated image of modality x_0, given an input set of other modalities, is
coherent if the classifier's digit is the true digit of the input tuple; coherence is the accuracy
over the test set (the mrVAE paper, Sutter & Vogt, papers/003, Table 1). The classifier's
penultimate layer is also the feature space in which :mod:`imputebench.nn.frechet` measures sample
quality (Table 2): a stand-in for the Inception network of the FID (Heusel et al. 2017), whose
weights are not available offline, so the distances rank models but are not published FIDs.

Images are float tensors ``(N, C, H, W)`` with values in ``[0, 1]`` (C = 3 for PolyMNIST, 1 for
MNIST); :func:`images_from_pixel_rows` makes them from the project's flat pixel rows, which store
each image in row-major (height, width, channel) order as 0..``intensity_max`` values
(:mod:`imputebench.data.multimodal`). The classifier is deliberately not in the model registry
(:mod:`imputebench.models.registry`): it imputes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from imputebench.models.training import quiet_lightning


def images_from_pixel_rows(rows: Tensor | np.ndarray, shape: Sequence[int], intensity_max: float = 255.0) -> Tensor:
    """Flat pixel rows ``(N, H * W * C)`` in (height, width, channel) order -> images ``(N, C, H, W)`` in ``[0, 1]``.

    ``shape`` is the picture shape as the datasets give it: ``(H, W)`` for one channel (MNIST) or
    ``(H, W, C)`` (SVHN, PolyMNIST); values are divided by ``intensity_max`` (255 for uint8 pixels,
    16 for scikit-learn's 8x8 digits) and clipped to ``[0, 1]`` (imputed pixels may overshoot).
    The result has ``torch.get_default_dtype()``.

    >>> rows = torch.tensor([[0, 255, 51, 102]], dtype=torch.uint8)  # one 1x2 picture, 2 channels
    >>> images_from_pixel_rows(rows, (1, 2, 2))
    tensor([[[[0.0000, 0.2000]],
    <BLANKLINE>
             [[1.0000, 0.4000]]]])
    """
    height, width, channels = (*shape, 1) if len(shape) == 2 else tuple(shape)
    rows = torch.as_tensor(rows)
    if rows.ndim != 2 or rows.shape[1] != height * width * channels:
        raise ValueError(f"rows {tuple(rows.shape)} must be (N, {height * width * channels}) for pictures of shape {tuple(shape)}")
    pictures = rows.reshape(-1, height, width, channels).permute(0, 3, 1, 2)  # (N, C, H, W)
    return (pictures.to(torch.get_default_dtype()) / intensity_max).clamp(0.0, 1.0)


class DigitFeatures(nn.Module):
    """The classifier's body: images ``(N, C, H, W)`` -> features ``(N, num_features)`` (ReLU).

    Two stride-2 convolutions (``channels`` maps, 4x4 kernels, each halving H and W) and a fully
    connected layer; no batch norm or dropout, so train and eval mode compute the same features.
    ``image_size`` (H = W) must be a multiple of 4.
    """

    def __init__(self, in_channels: int = 3, image_size: int = 28, channels: Sequence[int] = (32, 64), num_features: int = 128) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {image_size}")
        first, second = channels
        self.num_features = num_features
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, first, kernel_size=4, stride=2, padding=1),  # (N, first, H/2, W/2)
            nn.ReLU(),
            nn.Conv2d(first, second, kernel_size=4, stride=2, padding=1),  # (N, second, H/4, W/4)
            nn.ReLU(),
            nn.Flatten(),  # (N, second * H/4 * W/4)
            nn.Linear(second * (image_size // 4) ** 2, num_features),
            nn.ReLU(),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)  # (N, C, H, W) -> (N, num_features)


class DigitClassifier(L.LightningModule):
    """Digit classifier for images ``(N, C, H, W)`` in ``[0, 1]``, trained with cross-entropy and Adam.

    ``features(x)`` ``(N, num_features)`` is the penultimate layer (the Fréchet distance's feature
    space; :attr:`feature_network` is the module computing it, for
    :class:`~imputebench.nn.frechet.FrechetDistance`), ``forward(x)`` the logits ``(N, num_classes)``
    and ``predict(x)`` the labels ``(N,)``. The weights are drawn from ``seed`` without touching the
    global random state. Train with :func:`fit_digit_classifier` or any ``Trainer``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 28,
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64),
        num_features: int = 128,
        lr: float = 1e-3,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.lr = lr
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.body = DigitFeatures(in_channels, image_size, tuple(channels), num_features)
            self.head = nn.Linear(num_features, num_classes)

    @property
    def feature_network(self) -> DigitFeatures:
        """The module ``images -> features`` (with its ``num_features``), to hand to a Fréchet metric."""
        return self.body

    def features(self, images: Tensor) -> Tensor:
        """Penultimate-layer features ``(N, num_features)`` of images ``(N, C, H, W)`` in ``[0, 1]``."""
        return self.body(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.body(images))  # (N, C, H, W) -> (N, num_classes) logits

    @torch.no_grad()
    def predict(self, images: Tensor, batch_size: int = 4096) -> Tensor:
        """Most likely class ``(N,)`` (int64) of images ``(N, C, H, W)`` in ``[0, 1]``, ``batch_size`` at a time."""
        _check_images(images)
        chunks = [self(chunk).argmax(dim=1) for chunk in images.split(batch_size)]  # each (b,)
        return torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.long, device=images.device)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch  # (b, C, H, W), (b,)
        loss = nn.functional.cross_entropy(self(images), labels)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=labels.shape[0])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def _check_images(images: Tensor) -> None:
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor (N, C, H, W) in [0, 1], got {images.dtype} {tuple(images.shape)}")


def fit_digit_classifier(
    classifier: DigitClassifier, images: Tensor, labels: Tensor, max_epochs: int = 5, batch_size: int = 64, seed: int = 0
) -> DigitClassifier:
    """Train ``classifier`` on images ``(N, C, H, W)`` in ``[0, 1]`` and labels ``(N,)`` with a quiet CPU
    ``lightning.Trainer`` (no progress bar, logger or checkpoints); batches are shuffled from ``seed``.
    Returns the classifier, in eval mode."""
    _check_images(images)
    if labels.shape != images.shape[:1]:
        raise ValueError(f"labels {tuple(labels.shape)} must be ({images.shape[0]},)")
    dataset = TensorDataset(images, labels.long())
    order = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    # whole batches drawn by index at once (TensorDataset takes an index list), not row by row
    loader = DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None)
    with quiet_lightning():  # also around the Trainer's construction, which announces the devices
        trainer = L.Trainer(
            accelerator="cpu", devices=1, max_epochs=max_epochs, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False,
        )
        trainer.fit(classifier, loader)
    return classifier.eval()


def coherence(classifier: DigitClassifier, generated_images: Tensor, labels: Tensor) -> float:
    """Coherence of generated images (Sutter et al. 2021): the fraction whose predicted digit is the
    true label of the input tuple they were generated from.

    ``generated_images`` ``(N, C, H, W)`` in ``[0, 1]``, ``labels`` ``(N,)`` class codes; the
    classifier is the one trained on real images of the generated modality.
    """
    if labels.shape != generated_images.shape[:1] or labels.numel() == 0:
        raise ValueError(f"labels {tuple(labels.shape)} must be ({generated_images.shape[0]},), N >= 1")
    predicted = classifier.predict(generated_images)  # (N,)
    return float((predicted == labels.to(predicted.device)).double().mean())
