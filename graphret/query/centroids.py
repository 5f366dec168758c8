"""Community centroids: the normalised mean code of each community's members.

Computed once per (store, community method, code space) and cached twice: in memory on the
opened store, and on disk as ``centroids-<method>-<space>.arrow`` inside the store folder
(written atomically at first use, or at build time with :func:`write_centroids`).  The cache
file records the SHA-256 of ``items.arrow`` and ``communities.arrow`` it was computed from and
is ignored (and rewritten) when either changed, e.g. after ``graphret add``.  The file is not
part of the manifest: deleting it is always safe.  A read-only store just skips the write.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from graphret.store.schema import COMMUNITIES_FILE, ITEMS_FILE

__all__ = ["community_centroids", "centroid_cache_path", "load_centroids", "write_centroids"]


def community_centroids(codes: np.ndarray, membership: np.ndarray, n_communities: int | None = None) -> np.ndarray:
    """float32 (C, d) unit-norm mean code of each community ``0..C-1``; members with label -1
    are ignored; an empty community gets a zero row."""
    codes = np.asarray(codes, dtype=np.float32)
    membership = np.asarray(membership)
    C = int(membership.max()) + 1 if n_communities is None else int(n_communities)
    inside = membership >= 0
    labels = membership[inside]
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    sums = np.zeros((C, codes.shape[1]), np.float64)
    if len(order):
        rows = np.flatnonzero(inside)[order]
        block = 1 << 18  # bounded memory for a large archive
        # reduceat over the sorted members, in chunks of rows to bound memory
        for lo in range(0, len(rows), block):
            hi = min(lo + block, len(rows))
            chunk_labels = sorted_labels[lo:hi]
            heads = np.flatnonzero(np.r_[True, chunk_labels[1:] != chunk_labels[:-1]])
            partial = np.add.reduceat(codes[rows[lo:hi]].astype(np.float64), heads, axis=0)
            np.add.at(sums, chunk_labels[heads], partial)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


def centroid_cache_path(folder: str | Path, method: str, space: str) -> Path:
    return Path(folder) / f"centroids-{method}-{space}.arrow"


def _fingerprint(store) -> dict[bytes, bytes]:
    files = store.manifest.get("files", {})
    return {
        b"items_sha256": str(files.get(ITEMS_FILE, {}).get("sha256", "")).encode(),
        b"communities_sha256": str(files.get(COMMUNITIES_FILE, {}).get("sha256", "")).encode(),
    }


def load_centroids(store, method: str, space: str) -> np.ndarray | None:
    """The cached centroids of the store, or None when absent or stale."""
    path = centroid_cache_path(store.path, method, space)
    if not path.is_file():
        return None
    try:
        table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
        meta = table.schema.metadata or {}
        expected = _fingerprint(store)
        if any(meta.get(key) != value for key, value in expected.items()) or not expected[b"items_sha256"]:
            return None
        column = table.column("centroid").combine_chunks()
        return np.asarray(column.values.to_numpy(zero_copy_only=False), np.float32).reshape(len(column), column.type.list_size)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError, KeyError):
        return None


def write_centroids(store, method: str | None = None, space: str = "default") -> np.ndarray:
    """Compute the centroids of ``method`` (default: every stored method) in ``space`` and
    write the cache file(s) atomically; returns the centroids of the last method.  Call it at
    build time with ``write_centroids(open_store(path))`` to save the first query the work."""
    from graphret.store.atomic import atomic_path
    from graphret.store.write import fixed_size_list, write_arrow

    methods = [method] if method else list(store.community_methods)
    result = np.zeros((0, 0), np.float32)
    for name in methods:
        membership = store.membership(name)
        result = community_centroids(store.codes(space), membership)
        table = pa.table({"centroid": fixed_size_list(result, pa.float32())}).replace_schema_metadata(_fingerprint(store))
        with contextlib.suppress(OSError):
            with atomic_path(centroid_cache_path(store.path, name, space)) as tmp:
                write_arrow(tmp, table)
    return result


def store_centroids(store, method: str, space: str) -> np.ndarray:
    """The centroids of ``method`` in ``space``: from the cache file when fresh, else computed
    and cached."""
    cached = load_centroids(store, method, space)
    if cached is not None and len(cached) == int(store.membership(method).max()) + 1:
        return cached
    return write_centroids(store, method, space)
