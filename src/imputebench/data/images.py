"""Readers of the image files behind the multimodal benchmarks.

* MNIST and Fashion-MNIST ship as gzip-compressed idx files (LeCun et al.'s format: the
  bytes ``00 00 08 k``, then ``k`` big-endian uint32 sizes, then the unsigned bytes).
* SVHN's cropped digits ship as MATLAB v5 files with ``X`` ``(32, 32, 3, n)`` uint8 and
  ``y`` ``(n, 1)`` in 1..10, where 10 is the digit 0.

Both readers return uint8 pixels, one flattened image per row (row-major; colour images in
height x width x channel order), and int64 labels. Nothing is converted to float, so the
70,000 MNIST images take 55 MB. A malformed or truncated file raises :class:`DatasetError`
naming the file.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from imputebench.data.dataset import DatasetError

_UNSIGNED_BYTE = 0x08


def _fail(path: Path, message: str) -> DatasetError:
    return DatasetError(f"{path}: {message}")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array of a gzip-compressed idx file with ``ndim`` dimensions, in its stored shape."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise _fail(path, f"not a readable gzip file ({error})") from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:3] != bytes((0, 0, _UNSIGNED_BYTE)) or raw[3] != ndim:
        raise _fail(path, f"not an unsigned-byte idx file of {ndim} dimensions (starts with {raw[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) != header + math.prod(shape):
        raise _fail(path, f"{len(raw) - header} data bytes for shape {shape}, expected {math.prod(shape)} (truncated?)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_pair(images: Path, labels: Path, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, h * w)`` uint8 and labels ``(n,)`` int64 from an idx image file and its label file."""
    pixels = read_idx(images, 3)  # (n, h, w)
    classes = read_idx(labels, 1).astype(np.int64)  # (n,)
    if len(pixels) != len(classes):
        raise _fail(labels, f"{len(classes)} labels for the {len(pixels)} images of {images.name}")
    if classes.size and classes.max() >= n_classes:
        raise _fail(labels, f"label {int(classes.max())} outside 0..{n_classes - 1}")
    return pixels.reshape(len(pixels), -1), classes


def read_svhn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SVHN cropped digits: images ``(n, 32 * 32 * 3)`` uint8 (HWC) and digits ``(n,)`` int64 in 0..9."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        content = loadmat(path, variable_names=("X", "y"))
    except (MatReadError, ValueError, OSError, EOFError, zlib.error) as error:
        raise _fail(path, f"not a readable MATLAB file ({error})") from None
    if "X" not in content or "y" not in content:
        raise _fail(path, "the SVHN variables X and y are missing")
    images, labels = content["X"], np.asarray(content["y"]).reshape(-1)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise _fail(path, f"X is {images.dtype} {images.shape}, expected uint8 (32, 32, 3, n)")
    if images.shape[3] != len(labels):
        raise _fail(path, f"{len(labels)} labels for {images.shape[3]} images")
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise _fail(path, f"labels outside 1..10 (found {int(labels.min())}..{int(labels.max())})")
    flat = np.ascontiguousarray(images.transpose(3, 0, 1, 2)).reshape(images.shape[3], -1)  # (n, 3072) HWC
    return flat, labels.astype(np.int64) % 10  # SVHN writes the digit 0 as 10
