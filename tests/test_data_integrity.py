"""Dataset files are verified by sha256 on every load: modified copies are refused (or loaded and marked when
allowed), digests are cached per process file version, and each dataset carries its provenance.

Every test works on copies of the offline mirror in ``tmp_path``, or only reads the mirror; none writes into it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from helpers import correlated_dataset
from imputebench.data import integrity
from imputebench.data.dataset import Dataset, DatasetError, FileDigest
from imputebench.data.download import fetch
from imputebench.data.integrity import ModifiedDataError
from imputebench.data.sources import get_spec, load_dataset

GLASS = "glass/glass.data"
GLASS_SHA256 = get_spec("glass").files[0].sha256


def copy_files(mirror_dir: Path, root: Path, name: str) -> list[Path]:
    """Copy the mirror's files of dataset ``name`` into the data directory ``root``; their new paths."""
    paths = []
    for file in get_spec(name).files:
        dest = file.local_path(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file.local_path(mirror_dir), dest)
        paths.append(dest)
    return paths


def edit_one_value(path: Path) -> None:
    """Change one digit of line 2 of glass.data (refractive index 1.51761 -> 1.51762): same size, same rows."""
    data = path.read_bytes()
    assert data.count(b"\n2,1.51761,") == 1
    path.write_bytes(data.replace(b"\n2,1.51761,", b"\n2,1.51762,"))


@pytest.fixture
def glass(mirror_dir: Path, tmp_path: Path) -> Path:
    """A data directory holding a genuine copy of glass."""
    copy_files(mirror_dir, tmp_path, "glass")
    return tmp_path


@pytest.fixture
def hash_calls(monkeypatch) -> list[Path]:
    """Every file the digest cache actually hashes, in order."""
    calls: list[Path] = []
    real = integrity.sha256_of

    def counting(path: Path) -> str:
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(integrity, "sha256_of", counting)
    return calls


# --- verified, refused, allowed ----------------------------------------------------------------------------------
def test_genuine_copy_loads_verified_with_the_manifest_sha256(glass):
    data = load_dataset("glass", glass)
    assert data.files == (FileDigest(GLASS, GLASS_SHA256, GLASS_SHA256),)
    assert data.provenance() == {"sha256": GLASS_SHA256, "status": "verified", "files": {GLASS: GLASS_SHA256}}


def test_copy_edited_by_one_value_is_refused_with_both_hashes_and_what_to_do(glass):
    path = glass / GLASS
    edit_one_value(path)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ModifiedDataError) as info:
        load_dataset("glass", glass)
    message = str(info.value)
    assert str(path) in message and GLASS_SHA256 in message and actual in message
    assert f"imputebench data fetch glass --data-dir {glass}" in message and "--allow-modified-data" in message
    assert "move the modified file elsewhere first" in message and "Reading it also failed" not in message


def test_allowed_modified_copy_loads_marked_modified_with_its_actual_hash(glass, mirror_dir):
    path = glass / GLASS
    edit_one_value(path)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    data = load_dataset("glass", glass, allow_modified=True)
    assert actual != GLASS_SHA256 and data.files[0].modified
    assert data.provenance() == {"sha256": actual, "status": "modified", "files": {GLASS: actual}}
    genuine = load_dataset("glass", mirror_dir).values
    assert np.count_nonzero(data.values != genuine) == 1  # exactly the edited value differs


def test_fetch_restores_the_genuine_file_over_a_modified_one(glass, mirror_dir):
    """What the refusal promises: `data fetch` deletes the modified copy and downloads the genuine one."""
    edit_one_value(glass / GLASS)
    fetch("glass", glass, mirror=str(mirror_dir))
    assert load_dataset("glass", glass).provenance()["status"] == "verified"


def test_a_modified_and_malformed_file_says_both(glass):
    path = glass / GLASS
    lines = path.read_text().splitlines()
    lines[16] = lines[16].replace(",", ",,", 1)  # line 17 gets an extra field
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ModifiedDataError) as info:
        load_dataset("glass", glass)
    assert GLASS_SHA256 in str(info.value) and "line 17" in str(info.value)
    with pytest.raises(DatasetError) as allowed:  # allowed: the reading error alone, as before this check existed
        load_dataset("glass", glass, allow_modified=True)
    assert "line 17" in str(allowed.value) and not isinstance(allowed.value, ModifiedDataError)


def test_several_files_give_the_hash_of_their_sorted_digests(mirror_dir, tmp_path):
    copy_files(mirror_dir, tmp_path, "adult")
    data = load_dataset("adult", tmp_path)
    expected = {f.relpath: f.sha256 for f in get_spec("adult").files}
    lines = "".join(f"{relpath} {sha}\n" for relpath, sha in sorted(expected.items()))
    assert data.provenance() == {"sha256": hashlib.sha256(lines.encode()).hexdigest(), "status": "verified",
                                 "files": expected}


# --- the digest cache --------------------------------------------------------------------------------------------
def test_repeated_loads_hash_once(glass, hash_calls):
    for _ in range(3):
        assert load_dataset("glass", glass).provenance()["status"] == "verified"
    assert hash_calls == [(glass / GLASS).resolve()]


def test_an_edit_after_a_load_is_not_hidden_by_the_cache(glass, hash_calls):
    load_dataset("glass", glass)
    path = glass / GLASS
    edited = path.read_bytes().replace(b"\n2,1.51761,", b"\n2,1.5176,")  # in place, one byte shorter: size and mtime change
    path.write_bytes(edited)
    with pytest.raises(ModifiedDataError):
        load_dataset("glass", glass)
    assert load_dataset("glass", glass, allow_modified=True).provenance()["sha256"] == hashlib.sha256(edited).hexdigest()
    assert len(hash_calls) == 2  # the genuine file once, the edited one once (then cached)


def test_a_new_modification_time_or_inode_hashes_again(glass, hash_calls):
    path = glass / GLASS
    load_dataset("glass", glass)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # same bytes, same size, mtime 1 ns later
    load_dataset("glass", glass)
    assert len(hash_calls) == 2
    replacement = path.with_name("glass.new")
    shutil.copyfile(path, replacement)
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    os.replace(replacement, path)  # same bytes, size and mtime: only the inode differs
    assert integrity.file_stamp(path)[1:3] == (stat.st_size, stat.st_mtime_ns + 1)
    assert load_dataset("glass", glass).provenance()["status"] == "verified"
    assert len(hash_calls) == 3


# --- datasets without files -----------------------------------------------------------------------------------
def test_embedded_dataset_is_unverified_with_a_stable_content_hash():
    first, second = load_dataset("iris"), load_dataset("iris")
    assert first.files == () and first is not second
    assert first.provenance() == second.provenance() == {"sha256": first.content_sha256, "status": "unverified",
                                                         "files": {}}
    assert len(first.content_sha256) == 64 and load_dataset("wine").content_sha256 != first.content_sha256


def test_content_hash_depends_on_the_content_not_the_name():
    toy = correlated_dataset(50, seed=0, name="a")
    assert correlated_dataset(50, seed=0, name="b").provenance() == toy.provenance()
    assert correlated_dataset(50, seed=1, name="a").content_sha256 != toy.content_sha256
    values = toy.values.copy()
    values[3, 1] += 1e-9  # one value, barely
    assert Dataset("a", values, toy.schema).content_sha256 != toy.content_sha256
    labelled = Dataset("a", toy.values, toy.schema, target=np.arange(50.0))
    assert labelled.content_sha256 != toy.content_sha256
    split = Dataset("a", toy.values, toy.schema, source_test=np.arange(40, 50))
    assert split.content_sha256 not in (toy.content_sha256, labelled.content_sha256)


def test_image_set_read_from_files_is_verified_and_one_from_scikit_learn_is_not(mirror_dir):
    pairs = load_dataset("digits_pairs")
    assert pairs.provenance()["status"] == "unverified" and pairs.files == ()
    images = load_dataset("mnist_label", mirror_dir)
    assert images.provenance()["status"] == "verified"
    assert images.provenance()["files"] == {f.relpath: f.sha256 for f in get_spec("mnist_label").files}


# --- derived datasets ---------------------------------------------------------------------------------------------
def test_complete_cases_keeps_files_and_provenance(mirror_dir, tmp_path):
    copy_files(mirror_dir, tmp_path, "heart")
    data = load_dataset("heart", tmp_path)
    complete = data.complete_cases()
    assert complete.n_rows < data.n_rows  # rows were dropped: the content differs, the files read do not
    assert complete.files == data.files and complete.provenance() == data.provenance()
    assert complete.provenance()["status"] == "verified"
    assert complete.content_sha256 != data.content_sha256


# --- what a loader reads is what is verified -----------------------------------------------------------------------
#: while a test records: the one list the files it opens are appended to; empty otherwise
_RECORDING: list[list[str]] = []
_HOOK: dict[str, bool] = {"installed": False}


def _record_opens(event: str, args: tuple) -> None:
    if event == "open" and _RECORDING and isinstance(args[0], (str, bytes, os.PathLike)):
        _RECORDING[-1].append(os.fsdecode(args[0]))


@pytest.fixture
def opened_files() -> Iterator[list[str]]:
    """Every file opened while the test runs (an audit hook cannot be removed: it records only meanwhile)."""
    if not _HOOK["installed"]:
        sys.addaudithook(_record_opens)
        _HOOK["installed"] = True
    _RECORDING.append([])
    try:
        yield _RECORDING[-1]
    finally:
        _RECORDING.clear()


@pytest.mark.parametrize("name", ["glass", "website_phishing", "concrete", "energy", "adult", "mnist_label"])
def test_loaders_read_only_the_files_they_verify(name, mirror_dir, opened_files):
    """Text, ARFF, xls, xlsx, two-file and idx loaders: every file opened under the data directory is a spec file."""
    integrity.clear_cache()  # so that verification opens each file too
    load_dataset(name, mirror_dir)
    root = str(mirror_dir.resolve())
    read = {str(Path(p).resolve()) for p in opened_files if str(Path(p).resolve()).startswith(root)}
    assert read == {str(f.local_path(mirror_dir).resolve()) for f in get_spec(name).files}
