"""Download dataset files into the local cache and verify them by sha256.

The cache layout equals the layout of the offline mirror (see
``shared/datasets/MANIFEST.md``): ``data_dir/<folder>/<filename>``. A file is
fetched from ``<mirror>/<folder>/<filename>`` when a mirror is given (an
``http://``, ``https://`` or ``file://`` URL, or a plain local directory),
otherwise from its canonical upstream URL. Bytes are streamed into a temporary
file next to the destination, checked against the recorded sha256 and only then
renamed into place (``os.replace`` is atomic on one file system), so the cache
never holds a partial or corrupt file under a dataset's name. A cached file whose
sha256 is wrong (corrupted, or edited after its download) is deleted and downloaded
again. Loading checks the sha256 again (:mod:`.integrity`), so an edit made after
the download is noticed too.

Two files cannot be fetched byte for byte from their canonical source:

* ``phishing/Training Dataset.arff`` is served upstream only inside
  ``phishing+websites.zip``; the member is extracted and its own sha256 checked
  (the zip's hash is not recorded).
* ``default_credit/UCI_Credit_Card.csv`` is the Kaggle CSV conversion of UCI's
  ``default of credit card clients.xls``; the canonical URL serves the xls, a
  different file, so this file is ``mirror_only``: fetching it needs a mirror
  (``imputebench data fetch default_credit --mirror URL``).

Only the standard library (:mod:`urllib`) is used for network access, always with a timeout.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from imputebench.data.integrity import sha256_of, verify
from imputebench.data.sources import get_spec, resolve_datasets
from imputebench.data.spec import RemoteFile

#: Seconds to wait for a connection or for the next block of data.
TIMEOUT_S = 30.0
_CHUNK = 1 << 16


class DownloadError(OSError):
    """A file could not be retrieved (unreachable host, HTTP error, no source); the message names the URL."""


class ChecksumError(DownloadError):
    """Retrieved bytes whose sha256 differs from the recorded one; the message names both hashes."""


@dataclass(frozen=True)
class FetchEvent:
    """Progress report: ``cached`` (already valid), ``downloading`` (``done`` of ``total`` bytes) or ``verified``."""

    file: RemoteFile
    status: Literal["cached", "downloading", "verified"]
    done: int
    total: int


Progress = Callable[[FetchEvent], None]


def source_url(file: RemoteFile, mirror: str | None) -> str:
    """Where ``file`` is fetched from: ``<mirror>/<folder>/<quoted filename>`` or its canonical URL."""
    if mirror is None:
        if file.mirror_only:
            raise DownloadError(
                f"{file.relpath}: the canonical source {file.url} does not serve this exact file; "
                "fetch it from a mirror (--mirror URL or directory)"
            )
        return file.url
    base = mirror if "://" in mirror else Path(mirror).expanduser().resolve().as_uri()
    return f"{base.rstrip('/')}/{urllib.parse.quote(file.folder)}/{urllib.parse.quote(file.filename)}"


def fetch(names: str | list[str], data_dir: Path, mirror: str | None = None, progress: Progress | None = None) -> list[Path]:
    """Fetch every file of the named datasets (names and aliases, see :func:`resolve_datasets`).

    Returns the local paths of all their files, in order; embedded datasets have none.
    """
    files = [f for name in resolve_datasets(names) for f in get_spec(name).files]
    return fetch_files(files, data_dir, mirror, progress)


def fetch_files(files: Iterable[RemoteFile], data_dir: Path, mirror: str | None = None, progress: Progress | None = None) -> list[Path]:
    """Make each file present and valid under ``data_dir``; files already valid are not downloaded."""
    return [fetch_file(f, Path(data_dir), mirror, progress) for f in dict.fromkeys(files)]


def fetch_file(file: RemoteFile, data_dir: Path, mirror: str | None = None, progress: Progress | None = None) -> Path:
    """Download ``file`` unless a valid copy is cached; a corrupt or modified copy is deleted first, then
    downloaded again (always hashed here: the per-process digest cache of :mod:`.integrity` is not used)."""
    dest = file.local_path(data_dir)
    if verify(dest, file.sha256):
        _report(progress, FetchEvent(file, "cached", file.size, file.size))
        return dest
    try:
        dest.unlink(missing_ok=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot write to the cache {dest.parent}: {err}") from None
    url = source_url(file, mirror)
    member = file.member if mirror is None else None
    tmp = _download(url, dest, file, member, progress)
    os.replace(tmp, dest)
    _report(progress, FetchEvent(file, "verified", file.size, file.size))
    return dest


def _report(progress: Progress | None, event: FetchEvent) -> None:
    if progress is not None:
        progress(event)


def _temp_path(dest: Path, suffix: str) -> Path:
    try:
        handle, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix, dir=dest.parent)
    except OSError as err:
        raise DownloadError(f"cannot write to the cache {dest.parent}: {err}") from None
    os.close(handle)
    return Path(name)


def _download(url: str, dest: Path, file: RemoteFile, member: str | None, progress: Progress | None) -> Path:
    """Stream ``url`` to a temporary file beside ``dest`` (extracting ``member`` from a zip); verify; return it."""
    tmp = _temp_path(dest, ".part")
    try:
        with _open_url(url) as response, open(tmp, "wb") as out:
            total = file.size if member is None else int(response.headers.get("Content-Length") or 0)
            _copy(response, out, url, lambda done: _report(progress, FetchEvent(file, "downloading", done, total)))
        if member is not None:
            tmp = _extract_member(tmp, member, dest, url)
        actual = sha256_of(tmp)
        if actual != file.sha256.lower():
            raise ChecksumError(
                f"{file.relpath} from {url}: sha256 mismatch: expected {file.sha256}, got {actual} "
                f"({tmp.stat().st_size} bytes, expected {file.size}); the download was discarded"
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _open_url(url: str) -> BinaryIO:
    request = urllib.request.Request(url, headers={"User-Agent": "imputebench"})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        raise DownloadError(f"cannot download {url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"cannot download {url}: {reason}") from None


def _copy(response: BinaryIO, out: BinaryIO, url: str, report: Callable[[int], None]) -> None:
    done = 0
    try:
        for block in iter(lambda: response.read(_CHUNK), b""):
            out.write(block)
            done += len(block)
            report(done)
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError(f"download of {url} interrupted after {done} bytes: {err}") from None


def _extract_member(archive: Path, member: str, dest: Path, url: str) -> Path:
    """Copy ``member`` out of the zip ``archive`` into a new temporary file; the archive is removed."""
    out_path = _temp_path(dest, ".member")
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(out_path, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
    except (zipfile.BadZipFile, KeyError) as err:
        out_path.unlink(missing_ok=True)
        raise DownloadError(f"{url}: cannot extract {member!r}: {err}") from None
    finally:
        with suppress(FileNotFoundError):
            archive.unlink()
    return out_path
