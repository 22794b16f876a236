"""Whether the dataset files on disk are the ones the manifest records: sha256 digests, checked on every load.

:func:`imputebench.data.download.fetch` checks a file's sha256 when it downloads it;
:func:`imputebench.data.sources.load_dataset` checks it again each time it reads the file, through
:func:`file_digests`, so a file edited after its download is noticed. A file that differs from the
manifest's (``RemoteFile.sha256``) is refused with :class:`ModifiedDataError` unless the caller
allows modified data; the digests travel with the dataset (``Dataset.files``) as its provenance.

Hashing is paid once per file per process: digests are cached in memory, keyed by the file's
*stamp* ``(resolved path, size, st_mtime_ns, st_ino)``, so a sweep that loads a dataset many times
hashes it once, and any change of size, modification time or inode (an edit, a rewrite, a
replacement by ``os.replace``) makes the next load hash it again. The cache lives in this process
only (nothing is written to disk), so processes verifying the same files at once cannot disturb
each other. Accepted trade-off: an edit that keeps the size and the modification time to the
nanosecond (and the inode) is not detected within one process that has already hashed the file;
a new process always hashes it afresh.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from imputebench.data.dataset import DatasetError, FileDigest
from imputebench.data.spec import RemoteFile

_CHUNK = 1 << 16

#: ``(resolved path, size in bytes, st_mtime_ns, st_ino)``: what the digest cache is keyed by.
FileStamp = tuple[str, int, int, int]

#: resolved path -> (stamp the digest was computed under, hex sha256); one entry per file.
_DIGESTS: dict[str, tuple[FileStamp, str]] = {}
_LOCK = threading.Lock()


class ModifiedDataError(DatasetError):
    """A dataset file whose sha256 differs from the manifest's; the message names the file, both
    hashes and how to restore the genuine file or run on the modified one anyway."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, sha256: str) -> bool:
    """True when ``path`` is a file whose sha256 equals ``sha256`` (always hashed, never cached)."""
    path = Path(path)
    return path.is_file() and sha256_of(path) == sha256.lower()


def file_stamp(path: Path) -> FileStamp:
    """The cache key of a file: its resolved path, size, modification time (ns) and inode."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return str(resolved), stat.st_size, stat.st_mtime_ns, stat.st_ino


def cached_sha256(path: Path) -> str:
    """The sha256 of ``path``, hashed only when its stamp differs from the one last hashed in this process.

    A digest is cached only when the file's stamp is the same before and after hashing, so a
    file written while it was being hashed is never cached under a stamp its bytes do not match.
    """
    stamp = file_stamp(path)
    with _LOCK:
        cached = _DIGESTS.get(stamp[0])
    if cached is not None and cached[0] == stamp:
        return cached[1]
    digest = sha256_of(Path(stamp[0]))
    if file_stamp(path) == stamp:
        with _LOCK:
            _DIGESTS[stamp[0]] = (stamp, digest)
    return digest


def clear_cache() -> None:
    """Forget every cached digest (the next load of each file hashes it again)."""
    with _LOCK:
        _DIGESTS.clear()


def file_digests(files: Iterable[RemoteFile], data_dir: Path) -> tuple[FileDigest, ...]:
    """Expected and actual sha256 of each of ``files`` under ``data_dir`` (cached, see :func:`cached_sha256`)."""
    return tuple(FileDigest(f.relpath, f.sha256.lower(), cached_sha256(f.local_path(data_dir))) for f in files)


def refuse_modified(name: str, files: Sequence[RemoteFile], digests: Sequence[FileDigest], data_dir: Path,
                    data_dir_given: bool = True, cause: DatasetError | None = None) -> None:
    """Raise :class:`ModifiedDataError` when any of ``digests`` differs from the manifest; else return.

    ``cause``: the error reading the files raised, if any; its message is appended, so a file that
    is both modified and unreadable says both what is wrong in it and how to restore it.
    """
    modified = [(f, d) for f, d in zip(files, digests) if d.modified]
    if not modified:
        return
    problems = "; ".join(
        f"{f.local_path(data_dir)}: sha256 {d.actual} differs from the manifest's {d.expected}" for f, d in modified
    )
    message = f"dataset {name!r} was modified: {problems}. {_remedy(name, files, data_dir, data_dir_given)}"
    if cause is not None:
        message += f" Reading it also failed: {cause}"
    raise ModifiedDataError(message) from cause


def _remedy(name: str, files: Sequence[RemoteFile], data_dir: Path, data_dir_given: bool) -> str:
    """What to do about a modified file: fetch the genuine one (which deletes the modified copy) or allow it."""
    command = f"imputebench data fetch {name}"
    if data_dir_given:
        command += f" --data-dir {data_dir}"
    if any(f.mirror_only for f in files):
        command += " --mirror URL"  # the canonical URL does not serve these bytes (see download.py)
    return (
        f"Run `{command}` to restore the genuine file: fetch deletes a file whose sha256 is wrong and downloads it "
        "again, so move the modified file elsewhere first to keep it. Or pass --allow-modified-data to run on it "
        "anyway (its results are then marked modified)."
    )


def file_stamps(paths: Iterable[Path]) -> tuple[FileStamp, ...]:
    """The stamps of several files, to tell whether any of them changed between two moments."""
    return tuple(file_stamp(p) for p in paths)

