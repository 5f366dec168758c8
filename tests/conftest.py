"""Shared pytest fixtures for graphret's tests."""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session")
def blob_stores(tmp_path_factory):
    """Read-only blob stores built once per test session, by recipe
    (:func:`tests.stores.build_blob_store`'s keywords): ``blob_stores(n_per_class=40, seed=1,
    communities=("leiden",))`` is the path of that store.  Tests that write copy one first
    (``blob_store_copy``)."""
    from tests.stores import build_blob_store

    built: dict = {}

    def get(**recipe) -> Path:
        key = tuple(sorted((name, tuple(v) if isinstance(v, list) else v) for name, v in recipe.items()))
        if key not in built:
            built[key] = build_blob_store(tmp_path_factory.mktemp("blobs") / "store", **recipe)
        return built[key]

    return get


@pytest.fixture
def blob_store_copy(blob_stores, tmp_path):
    """A writable copy, in this test's folder, of a session blob store (same recipe keywords)."""
    def copy(**recipe) -> Path:
        target = tmp_path / "store"
        shutil.copytree(blob_stores(**recipe), target)
        return target

    return copy


@pytest.fixture(scope="session", autouse=True)
def verification_cache(tmp_path_factory) -> Path:
    """Checks remembered by the store's reads (:mod:`graphret.store.verified`) go to a folder of
    this test session (commands the tests start inherit it), never the user's cache."""
    folder = tmp_path_factory.mktemp("graphret-cache")
    os.environ["GRAPHRET_CACHE_DIR"] = str(folder)
    return folder
