"""Shared fixtures: the read-only offline dataset mirror (see shared/datasets/MANIFEST.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

#: The mirror sits beside the repository: <root>/shared/datasets next to <root>/main.
MIRROR_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The dataset mirror (mirror layout ``<folder>/<filename>``); never write into it."""
    if not (MIRROR_DIR / "MANIFEST.md").is_file():
        pytest.skip(f"dataset mirror not found at {MIRROR_DIR} (expected shared/datasets beside the repository)")
    return MIRROR_DIR


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny networks: intra-op threads only add overhead, and stall badly on a busy 2-core runner."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
