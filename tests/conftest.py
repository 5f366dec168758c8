"""Shared pytest fixtures for graphret's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets: ``<repo root>/../shared/data`` or $GRAPHRET_SHARED_DATA.

    Skips the test, with the reason, when the folder is not there."""
    env = os.environ.get("GRAPHRET_SHARED_DATA")
    path = Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real data folder not found at {path} (set GRAPHRET_SHARED_DATA to it)")
    return path
