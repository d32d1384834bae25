"""Shared fixtures: the real public files in ../shared/data (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FLR_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real public CT and segmentation files, see its SOURCES.md)."""
    if not (SHARED_DATA / "SOURCES.md").is_file():
        pytest.skip(f"real public test data not found at {SHARED_DATA} (set FLR_SHARED_DATA)")
    return SHARED_DATA
