"""Downloads into the cache: loopback HTTP mirrors, file mirrors, checksums, atomicity, errors. No real internet."""

from __future__ import annotations

import functools
import hashlib
import shutil
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from imputebench.data.download import (
    ChecksumError,
    DownloadError,
    FetchEvent,
    RemoteFile,
    fetch,
    fetch_files,
    source_url,
    verify,
)
from imputebench.data.sources import get_spec, load_dataset

SMALL = ["zoo", "glass", "website_phishing"]


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail any connection attempt to a host other than 127.0.0.1."""
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        if address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to reach {address}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


class Server:
    """A loopback HTTP server over one directory that records the paths requested."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.requests: list[str] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                server.requests.append(self.path)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def serve(directory: Path) -> Iterator[Server]:
    server = Server(directory)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def http_mirror(mirror_dir) -> Iterator[Server]:
    yield from serve(mirror_dir)


@pytest.fixture
def corrupt_mirror(mirror_dir, tmp_path) -> Iterator[Server]:
    """A mirror whose zoo.data has one byte changed."""
    root = tmp_path / "bad_mirror"
    shutil.copytree(mirror_dir / "zoo", root / "zoo")
    data = bytearray((root / "zoo" / "zoo.data").read_bytes())
    data[100] ^= 0x01
    (root / "zoo" / "zoo.data").write_bytes(bytes(data))
    yield from serve(root)


def files_of(names: list[str]) -> list[RemoteFile]:
    return [f for name in names for f in get_spec(name).files]


def test_fetch_from_http_mirror_then_nothing_to_do(http_mirror, mirror_dir, tmp_path):
    http_mirror.requests.clear()
    paths = fetch(SMALL + ["phishing"], tmp_path, mirror=http_mirror.url)  # phishing: a space in the file name
    files = files_of(SMALL + ["phishing"])
    assert paths == [f.local_path(tmp_path) for f in files]
    assert all(verify(p, f.sha256) for p, f in zip(paths, files))
    assert "/phishing/Training%20Dataset.arff" in http_mirror.requests and len(http_mirror.requests) == 4

    http_mirror.requests.clear()
    events: list[FetchEvent] = []
    assert fetch(",".join(SMALL + ["phishing"]), tmp_path, mirror=http_mirror.url, progress=events.append) == paths
    assert http_mirror.requests == [] and [e.status for e in events] == ["cached"] * 4
    assert sorted(p.name for p in (tmp_path / "zoo").iterdir()) == ["zoo.data"]  # no temp files left
    np.testing.assert_array_equal(load_dataset("zoo", tmp_path).values, load_dataset("zoo", mirror_dir).values)


def test_progress_reports_bytes_then_verified(http_mirror, tmp_path):
    events: list[FetchEvent] = []
    fetch("glass", tmp_path, mirror=http_mirror.url, progress=events.append)
    assert events[-1].status == "verified" and events[-2].done == events[-2].total == 11903
    assert {e.status for e in events[:-1]} == {"downloading"}


def test_checksum_mismatch_leaves_nothing_behind(corrupt_mirror, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError) as info:
        fetch("zoo", cache, mirror=corrupt_mirror.url)
    expected = get_spec("zoo").files[0].sha256
    actual = hashlib.sha256((corrupt_mirror.directory / "zoo" / "zoo.data").read_bytes()).hexdigest()
    message = str(info.value)
    assert "zoo.data" in message and f"expected {expected}" in message and f"got {actual}" in message
    assert list((cache / "zoo").iterdir()) == []


def test_corrupt_cached_file_is_replaced(http_mirror, tmp_path):
    file = get_spec("zoo").files[0]
    dest = file.local_path(tmp_path)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"garbage")
    http_mirror.requests.clear()
    assert fetch("zoo", tmp_path, mirror=http_mirror.url) == [dest]
    assert verify(dest, file.sha256) and http_mirror.requests == ["/zoo/zoo.data"]


def test_corrupt_cached_file_is_removed_when_the_download_fails(corrupt_mirror, tmp_path):
    dest = get_spec("zoo").files[0].local_path(tmp_path)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"garbage")
    with pytest.raises(ChecksumError):
        fetch("zoo", tmp_path, mirror=corrupt_mirror.url)
    assert list(dest.parent.iterdir()) == []


@pytest.mark.parametrize("form", ["uri", "path"])
def test_file_and_directory_mirrors(mirror_dir, tmp_path, form):
    mirror = mirror_dir.as_uri() if form == "uri" else str(mirror_dir)
    paths = fetch(["zoo", "phishing"], tmp_path, mirror=mirror)
    assert all(verify(p, f.sha256) for p, f in zip(paths, files_of(["zoo", "phishing"])))
    assert load_dataset("zoo", tmp_path).n_rows == 101


def test_source_urls():
    phishing = get_spec("phishing").files[0]
    assert source_url(phishing, "http://host/m/") == "http://host/m/phishing/Training%20Dataset.arff"
    assert source_url(phishing, None) == phishing.url and phishing.member == "Training Dataset.arff"
    assert source_url(phishing, "/srv/mirror").startswith("file:///srv/mirror/phishing/")


def test_embedded_datasets_have_nothing_to_fetch(tmp_path):
    assert fetch("embedded", tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_mirror_only_file_needs_a_mirror(tmp_path):
    with pytest.raises(DownloadError, match="UCI_Credit_Card.csv.*mirror"):
        fetch("default_credit", tmp_path)
    assert not (tmp_path / "default_credit" / "UCI_Credit_Card.csv").exists()


def test_unreachable_host_names_the_url(tmp_path):
    with socket.socket() as probe:  # bound, never listening: the port refuses connections, and stays ours
        probe.bind(("127.0.0.1", 0))  # while the fetch runs (a closed port could be taken by another test)
        mirror = f"http://127.0.0.1:{probe.getsockname()[1]}"
        with pytest.raises(DownloadError, match=f"{mirror}/zoo/zoo.data"):
            fetch("zoo", tmp_path, mirror=mirror)
    assert list((tmp_path / "zoo").iterdir()) == []


def test_http_404_names_the_url(tmp_path):
    (tmp_path / "empty").mkdir()
    for server in serve(tmp_path / "empty"):
        with pytest.raises(DownloadError, match=r"/glass/glass.data: HTTP 404"):
            fetch("glass", tmp_path / "cache", mirror=server.url)


def test_zip_member_is_extracted_and_verified(mirror_dir, tmp_path):
    """The canonical phishing source is a zip; exercised here with a loopback 'canonical' URL."""
    member_bytes = (mirror_dir / "website_phishing" / "PhishingData.arff").read_bytes()
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "archive.zip", "w") as zf:
        zf.writestr("README.txt", "other member")
        zf.writestr("Training Dataset.arff", member_bytes)
    for server in serve(served):
        file = RemoteFile("phishing", "Training Dataset.arff", f"{server.url}/archive.zip",
                          hashlib.sha256(member_bytes).hexdigest(), len(member_bytes), member="Training Dataset.arff")
        cache = tmp_path / "cache"
        (path,) = fetch_files([file], cache)
        assert path.read_bytes() == member_bytes
        assert sorted(p.name for p in path.parent.iterdir()) == ["Training Dataset.arff"]
        with pytest.raises(ChecksumError):
            fetch_files([replace(file, filename="other.arff", sha256="0" * 64)], cache)
        with pytest.raises(DownloadError, match="absent.arff"):
            fetch_files([replace(file, filename="absent.arff", member="absent.arff")], cache)
        assert sorted(p.name for p in path.parent.iterdir()) == ["Training Dataset.arff"]


def test_verify(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    assert verify(path, digest) and verify(path, digest.upper())
    assert not verify(path, "0" * 64) and not verify(tmp_path / "missing", digest)
