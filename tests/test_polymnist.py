"""PolyMNIST, vanilla and extended (mrVAE section 5): a few hundred rows generated from the mirror's MNIST
test split, checked against a plain per-row reference; the generated file's and the backgrounds' sha256."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from imputebench.cli import app
from imputebench.data import generated, polymnist
from imputebench.data.dataset import DatasetError
from imputebench.data.generated import GeneratedFile
from imputebench.data.images import read_idx_pair
from imputebench.data.integrity import ModifiedDataError
from imputebench.data.multimodal import MNIST_FILES
from imputebench.data.polymnist import (
    BACKGROUNDS,
    FILES,
    LEFT_BOX,
    RIGHT_BOX,
    draw_tuples,
    generate,
    polymnist_dataset,
    read_backgrounds,
    small_digit,
)
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import get_spec, load_dataset, resolve_datasets
from imputebench.models.registry import get_model

N = 300


@pytest.fixture(scope="module")
def mnist(mirror_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's test split: images (10000, 784) uint8 and labels (10000,)."""
    files = (MNIST_FILES["t10k-images-idx3-ubyte.gz"], MNIST_FILES["t10k-labels-idx1-ubyte.gz"])
    return read_idx_pair(*(file.local_path(mirror_dir) for file in files))


@pytest.fixture(scope="module")
def backgrounds() -> list[np.ndarray]:
    return read_backgrounds()


@pytest.fixture(scope="module")
def vanilla(mnist, backgrounds) -> polymnist.Generated:
    return generate(*mnist, backgrounds, "test", n_rows=N)


@pytest.fixture(scope="module")
def extended(mnist, backgrounds) -> polymnist.Generated:
    return generate(*mnist, backgrounds, "test", n_rows=N, extended=True)


def tiles(rows: polymnist.Generated) -> np.ndarray:
    return rows.values.reshape(len(rows.values), 5, 28, 28, 3)  # (n, 5, 28, 28, 3)


def data_with_mnist(mirror_dir: Path, root: Path) -> Path:
    """A data directory holding links to the mirror's MNIST files (never the mirror itself)."""
    (root / "mnist").mkdir(parents=True)
    for file in MNIST_FILES.values():
        os.symlink(file.local_path(mirror_dir), file.local_path(root))
    return root


# --- vanilla ------------------------------------------------------------------------------------------------
def test_every_modality_shows_the_rows_digit_as_a_different_mnist_image(mnist, vanilla):
    _, labels = mnist
    assert vanilla.values.shape == (N, 5 * 28 * 28 * 3) and vanilla.values.dtype == np.uint8
    assert (labels[vanilla.sources] == vanilla.digits[:, None]).all()
    assert all(len(set(row)) == 5 for row in vanilla.sources.tolist())
    assert len(set(vanilla.digits.tolist())) == 10


def test_each_image_is_a_crop_of_its_modalitys_background_inverted_on_the_digit(mnist, backgrounds, vanilla):
    """A plain per-row reference: crop by slicing, invert (255 - v) where the MNIST pixel exceeds 128."""
    images, _ = mnist
    for r in range(0, N, 7):
        for m in range(5):
            top, left = vanilla.origins[r, m]
            crop = backgrounds[m][top:top + 28, left:left + 28].astype(int)
            ink = images[vanilla.sources[r, m]].reshape(28, 28)[..., None] > 128
            assert np.array_equal(tiles(vanilla)[r, m], np.where(ink, 255 - crop, crop))


def test_backgrounds_differ_between_modalities(backgrounds, vanilla):
    for a in range(5):
        for b in range(a + 1, 5):
            assert backgrounds[a].shape != backgrounds[b].shape or not np.array_equal(backgrounds[a], backgrounds[b])
    colours = tiles(vanilla).mean(axis=(0, 2, 3))  # (5, 3) mean colour of each modality
    assert min(np.abs(colours[a] - colours[b]).max() for a in range(5) for b in range(a + 1, 5)) > 5
    assert len({tuple(o) for o in vanilla.origins[:, 0].tolist()}) > N // 2  # crops move from row to row


def test_every_image_appears_once_per_modality_in_a_split(mnist):
    _, labels = mnist
    tuples = draw_tuples(labels, np.random.default_rng(0))  # (10000, 5)
    assert all(np.array_equal(np.sort(tuples[:, m]), np.arange(len(labels))) for m in range(5))
    ordered = np.sort(tuples, axis=1)
    assert (labels[tuples] == labels[tuples[:, :1]]).all() and (ordered[:, 1:] != ordered[:, :-1]).all()


def test_same_seed_same_bytes_and_fewer_rows_are_a_prefix(mnist, backgrounds, vanilla):
    again = generate(*mnist, backgrounds, "test", n_rows=N)
    assert hashlib.sha256(again.values).digest() == hashlib.sha256(vanilla.values).digest()
    fewer = generate(*mnist, backgrounds, "test", n_rows=40)
    assert np.array_equal(fewer.values, vanilla.values[:40]) and np.array_equal(fewer.digits, vanilla.digits[:40])
    other_split = generate(*mnist, backgrounds, "train", n_rows=40)
    assert not np.array_equal(other_split.sources, vanilla.sources[:40])


# --- extended -------------------------------------------------------------------------------------------------
def test_extended_keeps_the_vanilla_tuples_and_changes_only_corner_ink(mnist, vanilla, extended):
    images, _ = mnist
    assert np.array_equal(extended.sources, vanilla.sources) and np.array_equal(extended.digits, vanilla.digits)
    old, new = tiles(vanilla), tiles(extended)
    changed = (old != new).any(-1)  # (n, 5, 28, 28)
    boxes = np.zeros((28, 28), bool)
    boxes[LEFT_BOX] = boxes[RIGHT_BOX] = True
    assert not changed[..., ~boxes].any() and changed.any()
    assert np.array_equal(new[changed], 255 - old[changed])  # corner ink inverts the crop, like the main digit
    main_ink = images[extended.sources].reshape(N, 5, 28, 28) > 128
    left, right = (slice(None), *LEFT_BOX), (slice(None), *RIGHT_BOX)
    for m in range(5):
        pair_before = small_digit(images[extended.corner_sources[:, (m - 1) % 5, 1]])  # pair (m - 1, m): top-left
        pair_after = small_digit(images[extended.corner_sources[:, m, 0]])  # pair (m, m + 1): top-right
        assert np.array_equal(changed[:, m][left], pair_before & ~main_ink[:, m][left])
        assert np.array_equal(changed[:, m][right], pair_after & ~main_ink[:, m][right])


def test_each_corner_digit_is_shared_by_exactly_its_pair(mnist, extended):
    _, labels = mnist
    first, second = extended.corner_sources[..., 0], extended.corner_sources[..., 1]  # (n, 5): in m_j, in m_j+1
    assert (labels[first] == extended.corners).all() and (labels[second] == extended.corners).all()
    assert (first != second).all()  # the two modalities draw different images of the class
    right_of = labels[first]  # (n, 5) class in m's top-right box
    left_of = np.roll(labels[second], 1, axis=1)  # (n, 5) class in m's top-left box
    for m in range(5):
        assert (right_of[:, m] == left_of[:, (m + 1) % 5]).all()  # m's right corner is m + 1's left corner
        for other in ((m + 2) % 5, (m + 3) % 5, (m + 4) % 5):
            assert (right_of[:, m] == left_of[:, other]).mean() < 0.25  # elsewhere only by chance (1 in 10)
    assert (extended.corners == extended.digits[:, None]).mean() < 0.25  # independent of the main digit
    assert small_digit(mnist[0]).any(axis=(1, 2)).all()  # no corner digit vanishes at 10x10


# --- files -----------------------------------------------------------------------------------------------------
def records_sha256(arrays: list[np.ndarray]) -> str:
    buffer = io.BytesIO()
    for array in arrays:
        np.save(buffer, array, allow_pickle=False)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def test_a_changed_generated_file_is_refused_and_a_missing_one_rebuilt(tmp_path):
    arrays = [np.arange(7, dtype=np.uint8), np.ones((3, 4), np.uint8)]
    file = GeneratedFile("toy", "toy.npy", records_sha256(arrays))
    path = generated.ensure(file, tmp_path, lambda: arrays, "toy")
    assert [a.tolist() for a in generated.read_verified(file, tmp_path)] == [a.tolist() for a in arrays]
    assert generated.read_verified(file, tmp_path, records=1)[0].tolist() == list(range(7))
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ModifiedDataError) as refused:
        generated.read_verified(file, tmp_path)
    assert str(path) in str(refused.value) and file.sha256 in str(refused.value)
    assert hashlib.sha256(data).hexdigest() in str(refused.value)
    path.unlink()
    generated.ensure(file, tmp_path, lambda: arrays, "toy")
    assert generated.read_verified(file, tmp_path)[1].tolist() == arrays[1].tolist()
    wrong = GeneratedFile("toy", "wrong.npy", "0" * 64)
    with pytest.raises(DatasetError, match="nothing was written"):
        generated.ensure(wrong, tmp_path, lambda: arrays, "toy")
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["toy.npy"]  # no partial file left


def test_the_loader_generates_once_then_reads_the_verified_file(tmp_path, monkeypatch, extended):
    """The registered loader on a 300-row stand-in for the 70,000-row file: built on the first load only."""
    records = [extended.digits, extended.corners.astype(np.uint8), extended.values]
    monkeypatch.setitem(FILES, "polymnist_extended", GeneratedFile("polymnist", "small.npy", records_sha256(records)))
    monkeypatch.setattr(polymnist, "N_TEST", 100)
    built = []
    monkeypatch.setattr(polymnist, "build", lambda root, with_corners: built.append(with_corners) or records)
    load = get_spec("polymnist_extended").loader
    first, second = load(tmp_path), load(tmp_path)
    assert built == [True] and (tmp_path / "polymnist" / "small.npy").is_file()
    assert np.array_equal(first.values, extended.values) and np.array_equal(second.values, extended.values)
    assert np.array_equal(second.source_test, np.arange(200, 300)) and second.target[0] == str(extended.digits[0])
    assert np.array_equal(polymnist.corner_labels(tmp_path), extended.corners)


def test_registered_loader_refuses_a_changed_file_without_rebuilding_it(tmp_path, mirror_dir):
    root = data_with_mnist(mirror_dir, tmp_path)
    path = FILES["polymnist"].local_path(root)
    path.parent.mkdir()
    path.write_bytes(b"not the generated PolyMNIST")
    with pytest.raises(ModifiedDataError) as refused:
        load_dataset("polymnist", root)
    message = str(refused.value)
    assert str(path) in message and FILES["polymnist"].sha256 in message
    assert hashlib.sha256(b"not the generated PolyMNIST").hexdigest() in message
    assert path.read_bytes() == b"not the generated PolyMNIST"


def test_nothing_is_generated_into_a_mirror(tmp_path, mirror_dir):
    root = data_with_mnist(mirror_dir, tmp_path)
    (root / "MANIFEST.md").write_text("a mirror\n")
    with pytest.raises(DatasetError, match="mirror"):
        load_dataset("polymnist_extended", root)
    assert not (root / "polymnist").exists()


def test_a_background_with_another_sha256_is_refused(tmp_path, backgrounds):
    for name in BACKGROUNDS:
        shutil.copyfile(polymnist.background_folder() / name, tmp_path / name)
    assert all(np.array_equal(a, b) for a, b in zip(read_backgrounds(tmp_path), backgrounds))
    shutil.copyfile(tmp_path / "chelsea.png", tmp_path / "ihc.png")
    with pytest.raises(ModifiedDataError) as refused:
        read_backgrounds(tmp_path)
    assert str(tmp_path / "ihc.png") in str(refused.value) and BACKGROUNDS["ihc.png"] in str(refused.value)
    assert BACKGROUNDS["chelsea.png"] in str(refused.value)  # the actual hash: chelsea's bytes


# --- the registered datasets and the models -----------------------------------------------------------------------
def test_registered_listed_and_documented(tmp_path):
    assert resolve_datasets("pentamodal") == ["polymnist", "polymnist_extended"]
    for name in ("polymnist", "polymnist_extended"):
        spec = get_spec(name)
        assert spec.rows == 70000 and "not comparable" in spec.description and "CC0" in spec.licence
        assert {f.relpath for f in spec.files} == {f.relpath for f in MNIST_FILES.values()}
    listing = CliRunner().invoke(app, ["datasets", "--data-dir", str(tmp_path)])
    assert listing.exit_code == 0 and "polymnist_extended" in listing.output and "polymnist " in listing.output


def test_dataset_schema_target_and_test_rows(vanilla):
    data = polymnist_dataset("polymnist", vanilla.values, vanilla.digits, n_test=100).validate()
    assert [m for m, _ in data.schema.modalities] == ["m0", "m1", "m2", "m3", "m4"]
    assert data.schema.image_shapes == tuple((f"m{m}", (28, 28, 3)) for m in range(5))
    assert data.schema.names[2352] == "m1_0000" and data.schema.features[0].intensity_max == 255
    assert data.target.tolist() == [str(d) for d in vanilla.digits] and data.target_name == "digit"
    assert np.array_equal(data.source_test, np.arange(200, 300))


@pytest.mark.parametrize("name", ["mvae", "vsae"])
def test_a_multimodal_model_trains_and_imputes_whole_hidden_modalities(name, extended):
    data = polymnist_dataset("polymnist_extended", extended.values[:200], extended.digits[:200])
    prepared = prepare(data, get_protocol("vsae"), "mcar", 0.5, seed=0)
    per_modality = prepared.observed.reshape(200, 5, -1)  # (n, 5, 2352): a modality is hidden whole
    assert (per_modality.all(-1) | ~per_modality.any(-1)).all() and not per_modality.all()
    model = get_model(name)(seed=0, max_epochs=1, n_imputations=1).fit(prepared.train, prepared.validation)
    imputed = model.impute(prepared.test)
    x, observed = prepared.test.rows(slice(None))
    assert imputed.shape == x.shape and torch.equal(imputed[observed], x[observed])
    hidden = imputed[~observed]
    assert hidden.numel() and torch.isfinite(hidden).all() and 0 <= float(hidden.min()) <= float(hidden.max()) <= 1
