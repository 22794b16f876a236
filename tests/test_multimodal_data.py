"""The image datasets: file readers, pairing by class, the registry entries and their splits."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from imputebench.data.dataset import Dataset, DatasetError
from imputebench.data.images import read_idx_pair, read_svhn
from imputebench.data.multimodal import MNIST_FILES, SVHN_FILES, load_mnist_svhn, multimodal_dataset
from imputebench.data.pairing import pair_by_class, pair_within
from imputebench.data.protocols import get_protocol, split_rows
from imputebench.data.sources import get_spec, load_dataset, resolve_datasets
from imputebench.schema import Feature, FeatureSchema

MIRROR_PAIR_SIZES = {"mnist_mnist": (23257, 5814, 4832), "mnist_label": (48000, 12000, 10000)}


def write_idx(path: Path, array: np.ndarray, magic: bytes | None = None) -> Path:
    header = magic or bytes((0, 0, 8, array.ndim))
    with gzip.open(path, "wb") as handle:
        handle.write(header + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes())
    return path


def write_svhn(path: Path, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A tiny SVHN-format file (X (32, 32, 3, n) uint8, y (n, 1) in 1..10); returns X."""
    images = np.random.default_rng(seed).integers(0, 256, (32, 32, 3, len(labels)), dtype=np.uint8)
    savemat(path, {"X": images, "y": np.where(labels == 0, 10, labels).reshape(-1, 1).astype(np.uint8)})
    return images


# --- readers ----------------------------------------------------------------------------------------------
def test_idx_round_trip_and_pair(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    read_images, read_labels = read_idx_pair(write_idx(tmp_path / "i.gz", images), write_idx(tmp_path / "l.gz", labels))
    assert read_images.dtype == np.uint8 and np.array_equal(read_images, images.reshape(5, 12))
    assert read_labels.dtype == np.int64 and read_labels.tolist() == [3, 1, 4, 1, 5]


@pytest.mark.parametrize("damage", ["magic", "truncated", "not gzip", "count", "label"])
def test_idx_damage_names_the_file(tmp_path, damage):
    images, labels = np.zeros((3, 2, 2), np.uint8), np.array([1, 2, 3], np.uint8)
    image_path, label_path = tmp_path / "images.gz", tmp_path / "labels.gz"
    write_idx(image_path, images, magic=bytes((0, 0, 9, 3)) if damage == "magic" else None)
    write_idx(label_path, np.array([1, 2], np.uint8) if damage == "count" else np.array([1, 2, 12], np.uint8) if damage == "label" else labels)
    if damage == "truncated":
        with gzip.open(image_path, "rb") as handle:
            raw = handle.read()
        with gzip.open(image_path, "wb") as handle:
            handle.write(raw[:-1])
    if damage == "not gzip":
        image_path.write_bytes(b"plain bytes")
    with pytest.raises(DatasetError, match="images.gz|labels.gz"):
        read_idx_pair(image_path, label_path)


def test_svhn_reader_keeps_hwc_pixels_and_maps_ten_to_zero(tmp_path):
    labels = np.array([0, 1, 9, 0])
    images = write_svhn(tmp_path / "s.mat", labels)
    flat, digits = read_svhn(tmp_path / "s.mat")
    assert flat.shape == (4, 3072) and flat.dtype == np.uint8 and digits.tolist() == [0, 1, 9, 0]
    assert np.array_equal(flat[2].reshape(32, 32, 3), images[..., 2])


def test_svhn_reader_rejects_other_files(tmp_path):
    savemat(tmp_path / "bad.mat", {"X": np.zeros((28, 28, 3), np.uint8), "y": np.ones((1, 1))})
    with pytest.raises(DatasetError, match="bad.mat"):
        read_svhn(tmp_path / "bad.mat")
    (tmp_path / "junk.mat").write_bytes(b"not matlab")
    with pytest.raises(DatasetError, match="junk.mat"):
        read_svhn(tmp_path / "junk.mat")


# --- pairing -------------------------------------------------------------------------------------------------
def test_pair_within_uses_each_image_once_with_its_partner_class():
    labels = np.random.default_rng(1).integers(0, 10, 2000)
    partner = 9 - np.arange(10)
    a, b = pair_within(labels, partner, np.random.default_rng(0))
    counts = np.bincount(labels, minlength=10)
    assert len(a) == sum(min(counts[c], counts[9 - c]) for c in range(5))
    assert (labels[a] + labels[b] == 9).all()
    assert len(np.unique(np.concatenate([a, b]))) == 2 * len(a)  # no image twice
    assert set(labels[a]) == set(range(10)) == set(labels[b])  # random orientation: every digit on both sides
    again = pair_within(labels, partner, np.random.default_rng(0))
    assert np.array_equal(again[0], a) and np.array_equal(again[1], b)


def test_pair_by_class_matches_classes_across_sets():
    rng = np.random.default_rng(2)
    labels_a, labels_b = rng.integers(0, 10, 300), rng.integers(0, 10, 200)
    a, b = pair_by_class(labels_a, labels_b, np.arange(10), np.random.default_rng(0))
    ca, cb = np.bincount(labels_a, minlength=10), np.bincount(labels_b, minlength=10)
    assert len(a) == np.minimum(ca, cb).sum() and (labels_a[a] == labels_b[b]).all()
    assert len(np.unique(a)) == len(a) and len(np.unique(b)) == len(b)


def test_pairing_rejects_partners_that_would_reuse_images():
    with pytest.raises(ValueError, match="one-to-one"):
        pair_by_class(np.arange(3), np.arange(3), np.array([0, 0, 1]), np.random.default_rng(0))
    with pytest.raises(ValueError, match="in twos"):
        pair_within(np.arange(3), np.array([1, 2, 0]), np.random.default_rng(0))


# --- schema and dataset rules for images -------------------------------------------------------------------------
def test_pixel_features_declare_their_range_and_image_shapes_fit():
    with pytest.raises(ValueError, match="intensity_max"):
        Feature("p", "pixel")
    with pytest.raises(ValueError, match="intensity_max"):
        Feature("r", "real", intensity_max=1.0)
    pixels = tuple(Feature(f"p{i}", "pixel", intensity_max=255.0) for i in range(4))
    schema = FeatureSchema(pixels, (("img", (0, 1, 2, 3)),), (("img", (2, 2)),))
    assert schema.pixel_indices == (0, 1, 2, 3) and schema.numeric_indices == () == schema.categorical_indices
    with pytest.raises(ValueError, match="needs 6 pixel"):
        FeatureSchema(pixels, (("img", (0, 1, 2, 3)),), (("img", (2, 3)),))
    with pytest.raises(ValueError, match="not a modality"):
        FeatureSchema(pixels, (("img", (0, 1, 2, 3)),), (("other", (2, 2)),))


def test_image_dataset_checks_dtype_range_and_test_rows():
    images = np.array([[0, 16], [3, 4]], np.uint8)
    data = multimodal_dataset("tiny", [("d", images, (1, 2))], intensity_max=16.0, source_test=np.array([1]))
    assert data.validate().complete_cases() is data  # uint8: nothing missing; constant pixels are allowed
    with pytest.raises(DatasetError, match="exceeds its intensity_max"):
        multimodal_dataset("tiny", [("d", images + 1, (1, 2))], intensity_max=16.0).validate()
    with pytest.raises(DatasetError, match="float64 .* or uint8"):
        Dataset("x", images.astype(np.int32), data.schema)
    with pytest.raises(DatasetError, match="distinct row indices"):
        Dataset("x", images, data.schema, source_test=np.array([1, 1]))


def test_source_test_rows_are_the_test_split_under_every_seed():
    test = np.arange(80, 100)
    splits = [split_rows(100, get_protocol("vsae"), seed, test) for seed in (0, 1)]
    for s in splits:
        assert np.array_equal(s.test, test) and (len(s.train), len(s.val)) == (64, 16)
        assert len(np.unique(np.concatenate([s.train, s.val, s.test]))) == 100
    assert not np.array_equal(splits[0].val, splits[1].val)
    transductive = split_rows(100, get_protocol("transductive"), 0, test)
    assert len(transductive.train) == 100


# --- the registered datasets ------------------------------------------------------------------------------------
def test_bimodal_alias_and_descriptions():
    assert resolve_datasets("bimodal") == ["mnist_mnist", "mnist_svhn", "mnist_label", "fashion_label"]
    assert "non-commercial" in get_spec("mnist_svhn").licence


@pytest.mark.parametrize("name", sorted(MIRROR_PAIR_SIZES))
def test_mirror_image_sets_have_the_papers_split_sizes(name, mirror_dir):
    data = load_dataset(name, mirror_dir)
    assert data.values.dtype == np.uint8 and [m for m, _ in data.schema.modalities][0] in ("mnist_a", "image")
    s = split_rows(data.n_rows, get_protocol("vsae"), 0, data.source_test)
    assert (len(s.train), len(s.val), len(s.test)) == MIRROR_PAIR_SIZES[name]
    assert np.array_equal(s.test, np.arange(data.n_rows - len(s.test), data.n_rows))


def test_mnist_label_rows_are_mnist_in_order(mirror_dir):
    data = load_dataset("mnist_label", mirror_dir)
    images, labels = read_idx_pair(*(MNIST_FILES[f].local_path(mirror_dir) for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")))
    assert np.array_equal(data.values[data.source_test, :784], images)
    assert np.array_equal(data.values[data.source_test, 784], labels)
    assert data.schema.features[784].categories == tuple("0123456789")


def test_digits_pairs_is_offline_and_deterministic():
    first, second = load_dataset("digits_pairs"), load_dataset("digits_pairs")
    assert first.n_rows == 891 and first.source_test is None and get_spec("digits_pairs").files == ()
    assert np.array_equal(first.values, second.values) and first.values.max() <= 16


def test_mnist_svhn_on_a_tiny_synthetic_svhn(tmp_path, mirror_dir):
    """SVHN is not in the mirror: the loader runs on real MNIST beside SVHN-format files of 3 and 2
    images per digit, and the row-count check of load_dataset flags the difference."""
    (tmp_path / "mnist").mkdir()
    for file in MNIST_FILES.values():
        os.symlink(file.local_path(mirror_dir), tmp_path / file.relpath)
    (tmp_path / "svhn").mkdir()
    train_x = write_svhn(SVHN_FILES["train_32x32.mat"].local_path(tmp_path), np.repeat(np.arange(10), 3), seed=1)
    write_svhn(SVHN_FILES["test_32x32.mat"].local_path(tmp_path), np.repeat(np.arange(10), 2), seed=2)
    data = load_mnist_svhn(tmp_path)
    assert data.n_rows == 50 and np.array_equal(data.source_test, np.arange(30, 50))
    assert data.schema.image_shapes == (("mnist", (28, 28)), ("svhn", (32, 32, 3)))
    svhn = data.values[:30, 784:].reshape(30, 32, 32, 3)
    matches = [[np.array_equal(row, train_x[..., k]) for k in range(30)].index(True) for row in svhn]
    assert sorted(matches) == list(range(30))  # every synthetic training image used exactly once
    with pytest.raises(DatasetError, match="expected 66068 rows, found 50"):
        load_dataset("mnist_svhn", tmp_path)
