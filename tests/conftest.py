"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Copies of the public datasets (MovieLens, Jester, msweb, Open Bandit) kept beside the repo.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests that need it are skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA
