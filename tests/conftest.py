"""Shared fixtures: the read-only offline dataset mirror (see shared/datasets/MANIFEST.md)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

REPOSITORY = Path(__file__).resolve().parents[1]


def mirror_candidates() -> list[Path]:
    """Where the mirror may be: beside this repository (<root>/shared/datasets next to <root>/main), or
    beside the local repository this one was cloned from (a clean clone in a temporary folder, as CI makes)."""
    candidates = [REPOSITORY.parent / "shared" / "datasets"]
    origin = subprocess.run(["git", "config", "--get", "remote.origin.url"], cwd=REPOSITORY,
                            capture_output=True, text=True, check=False).stdout.strip()
    if origin and Path(origin).is_dir():
        candidates.append(Path(origin).resolve().parent / "shared" / "datasets")
    return candidates


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The dataset mirror (mirror layout ``<folder>/<filename>``); never write into it."""
    candidates = mirror_candidates()
    found = next((c for c in candidates if (c / "MANIFEST.md").is_file()), None)
    if found is None:
        pytest.skip(f"dataset mirror not found at {' or '.join(map(str, candidates))} (expected shared/datasets "
                    "beside the repository or beside the one it was cloned from)")
    return found


@pytest.fixture(scope="session")
def papers_dir(mirror_dir: Path) -> Path:
    """The papers the project implements (shared/papers beside the dataset mirror); read only."""
    found = mirror_dir.parent / "papers"
    if not (found / "README.md").is_file():
        pytest.skip(f"papers not found at {found}")
    return found


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny networks: intra-op threads only add overhead, and stall badly on a busy 2-core runner."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
