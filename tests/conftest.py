"""Shared fixtures: seeded phantoms built once per session, and the real public files in ../shared/data
(skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import phantom as cached_phantom

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FLR_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real public CT and segmentation files, see its SOURCES.md)."""
    if not (SHARED_DATA / "SOURCES.md").is_file():
        pytest.skip(f"real public test data not found at {SHARED_DATA} (set FLR_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def phantom_1():
    """The sample case's phantom (seed 1: tumour 1 in V/VIII, tumour 2 in III/IV), built once."""
    return cached_phantom(1)


@pytest.fixture(scope="session")
def phantom_0():
    """Phantom seed 0 on the default straight grid, built once."""
    return cached_phantom(0)


@pytest.fixture(scope="session")
def phantom_0_oblique():
    """Phantom seed 0 on a rotated grid (15 degrees about z, 7.5 about x), anisotropic 1.5 x 1.5 x 2.5 mm."""
    return cached_phantom(0, oblique_deg=15.0)
