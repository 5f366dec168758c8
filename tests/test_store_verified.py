"""Remembered checksums (graphret.store.verified): a fragment checked once is not hashed again
while it is provably the same file; any change to it is still caught."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

import graphret
from graphret.errors import StoreError
from graphret.store import fragments, verified
from graphret.store.maintain import verify
from graphret.store.read import open_store


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    codes = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    codes /= np.linalg.norm(codes, axis=1, keepdims=True)
    return graphret.build_from_codes(codes, tmp_path_factory.mktemp("verified") / "s", k=4).path


@pytest.fixture
def hashed(monkeypatch, tmp_path):
    """The files each read hashes (a list, appended to), with remembering on in a fresh folder
    and no racy window (the test's files are seconds old)."""
    monkeypatch.setenv(verified.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(verified, "RACY_NS", 0)
    seen: list[str] = []
    real = fragments.sha256_file

    def counting(path, *args):
        seen.append(path.name)
        return real(path, *args)

    monkeypatch.setattr(fragments, "sha256_file", counting)
    return seen


def items_file(store):
    return next((store / "data").glob("items-*.arrow"))


def read_everything(store):
    snapshot = open_store(store)
    snapshot.graph_arrays(), snapshot.membership(), snapshot.walk_lists
    return snapshot


def test_a_checked_fragment_is_not_hashed_again_until_it_changes(built, hashed, tmp_path):
    store = tmp_path / "s"
    shutil.copytree(built, store)
    read_everything(store)
    first = sorted(hashed)
    assert len(first) >= 4 and any(name.startswith("items-") for name in first)
    hashed.clear()
    read_everything(store)
    assert hashed == []  # a second process (here: snapshot) trusts the remembered checks
    assert verify(store) == [] and set(first) < set(hashed)  # verify hashes every file regardless (the dendrogram too)


def test_a_file_modified_in_place_with_its_size_and_mtime_kept_is_caught(built, hashed, tmp_path):
    store = tmp_path / "s"
    shutil.copytree(built, store)
    read_everything(store)
    path = items_file(store)
    before = os.stat(path)
    time.sleep(0.05)  # past the file system's time granularity: the write gets a new ctime
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with open(path, "r+b") as f:  # same inode, same size
        f.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns and os.stat(path).st_size == before.st_size
    with pytest.raises(StoreError, match="does not match its checksum"):
        open_store(store)


def test_a_truncated_or_swapped_file_is_caught(built, hashed, tmp_path):
    store = tmp_path / "s"
    shutil.copytree(built, store)
    read_everything(store)
    path = items_file(store)
    original = path.read_bytes()
    with open(path, "r+b") as f:
        f.truncate(len(original) - 8)
    with pytest.raises(StoreError, match="truncated"):
        open_store(store)
    other = tmp_path / "other.arrow"  # same size, other bytes, renamed over it with the old times
    other.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    os.utime(other, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns))
    os.replace(other, path)
    with pytest.raises(StoreError, match="does not match its checksum"):
        open_store(store)


def test_a_fresh_file_is_not_remembered_until_it_settles(built, hashed, monkeypatch, tmp_path):
    monkeypatch.setattr(verified, "RACY_NS", 3_000_000_000)
    store = tmp_path / "s"
    shutil.copytree(built, store)  # new files: changed less than RACY_NS ago
    read_everything(store)
    count = len(hashed)
    read_everything(store)
    assert len(hashed) == 2 * count  # hashed again: a change within the same tick could not be seen


def test_an_unwritable_or_damaged_cache_only_means_hashing(built, hashed, monkeypatch, tmp_path):
    store = tmp_path / "s"
    shutil.copytree(built, store)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(verified.CACHE_ENV, str(blocker))
    read_everything(store)
    count = len(hashed)
    assert len(read_everything(store)) == 60 and len(hashed) == 2 * count  # no error, every read hashes
    monkeypatch.setenv(verified.CACHE_ENV, str(tmp_path / "cache2"))
    read_everything(store)
    records = list((tmp_path / "cache2" / "verified").iterdir())
    assert len(records) == count
    for record in records:
        record.write_text("garbage")
    read_everything(store)
    assert len(hashed) == 4 * count  # a damaged record is a miss (and is written again)
    monkeypatch.setenv(verified.CACHE_ENV, "")
    assert verified.cache_folder() is None
