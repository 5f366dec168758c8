"""The store's prepared tables (:mod:`graphret.store.prepared`): made from what an
:class:`~graphret.query.archive.ArchiveIndex` of the default archive computes, and read back
into the same arrays, checked so that the kernels never index outside them.

What a writer (build, add, compact) passes the store to write them with a version is
:func:`graphret.query.archive.prepared_tables`; :func:`read_prepared` is what an index over the
default archive reads instead of building (None: the version has none, or they were made from
another version).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphret.errors import StoreError
from graphret.graph.walk import remember_checked
from graphret.store import verified
from graphret.store.read import Snapshot

__all__ = ["Prepared", "PreparedRegion", "read_prepared"]


@dataclass(frozen=True)
class PreparedRegion:
    """One community method's region arrays over the archive's positions."""

    labels: np.ndarray  # int32 (n,) dense community, -1 none
    community: np.ndarray  # int32 (C,) stored id of each dense community
    same: np.ndarray  # bool (nnz,) the edge stays inside its row's community
    totals: tuple[np.ndarray, np.ndarray, np.ndarray, float]  # e, a, n (C,) and W


@dataclass(frozen=True)
class Prepared:
    """The default archive's graph (CSR), degrees, walk lists (None: not stored) and regions."""

    graph: tuple[np.ndarray, np.ndarray, np.ndarray]
    degree: np.ndarray | None
    walk: tuple[np.ndarray, np.ndarray] | None
    regions: dict[str, PreparedRegion]


_ADJACENCY_TYPES = {"indptr": np.int64, "indices": np.int32, "weights": np.float32, "degree": np.float64,
                    "walk_indptr": np.int64, "walk_indices": np.int32}
_REGION_TYPES = {"labels": np.int32, "community": np.int32, "same": np.uint8, "e": np.float64, "a": np.float64, "n": np.float64}


def _csr(indptr: np.ndarray, indices: np.ndarray, n: int, what: str) -> None:
    """Value checks of CSR arrays whose lengths fit: row pointers that never decrease, every
    index in 0..n-1."""
    if len(indptr) > 1 and bool(np.any(indptr[1:] < indptr[:-1])):
        raise StoreError(f"the prepared {what}' row pointers decrease; the store is damaged: rebuild it")
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= n):
        raise StoreError(f"the prepared {what} name rows outside the archive; the store is damaged: rebuild it")


def _fits(indptr: np.ndarray, indices: np.ndarray, n: int, what: str) -> None:
    if len(indptr) != n + 1 or indptr[0] != 0 or indptr[-1] != len(indices):
        raise StoreError(f"the prepared {what} do not fit the archive's {n} items; the store is damaged: rebuild it")


def _check_values(prepared: Prepared, n: int) -> None:
    """The checks that read every value (O(edges)): indices and labels in range, flags 0/1."""
    _csr(*prepared.graph[:2], n, "graph rows")
    if prepared.walk is not None:
        _csr(*prepared.walk, n, "walk lists")
    for method, region in prepared.regions.items():
        C = len(region.totals[0])
        if (n and (int(region.labels.min()) < -1 or int(region.labels.max()) >= C)) \
                or (len(region.same) and int(region.same.view(np.uint8).max()) > 1):
            raise StoreError(f"the prepared {method} regions hold labels or flags out of range; the store is damaged: rebuild it")


def read_prepared(store: Snapshot, n: int) -> Prepared | None:
    """The prepared arrays of ``store``'s default archive (``n`` positions), memory-mapped and
    checked, or None when the version has none made from it.  The checks that read every
    value run once per content: their outcome is remembered under the files' digests
    (:func:`graphret.store.verified.learn`), so a later process touches only the pages its
    query reads."""
    adjacency = store.prepared_rows("adjacency")
    if adjacency is None:
        return None
    try:
        (arrays,) = adjacency
        regions = {row["method"]: row for row in store.prepared_rows("regions") or []}
        for row, types in [(arrays, _ADJACENCY_TYPES)] + [(row, _REGION_TYPES) for row in regions.values()]:
            wrong = [name for name, dtype in types.items() if row[name].dtype != dtype]
            if wrong:
                raise ValueError(f"{wrong[0]} holds {row[wrong[0]].dtype}")
        indptr, indices, weights = arrays["indptr"], arrays["indices"], arrays["weights"]
        walk_indptr, walk_indices, degree = arrays["walk_indptr"], arrays["walk_indices"], arrays["degree"]
        out: dict[str, PreparedRegion] = {}
        for method, row in regions.items():
            labels, community, same = row["labels"], row["community"], row["same"]
            e, a, count, W = row["e"], row["a"], row["n"], float(row["W"])
            C = len(e)
            if len(labels) != n or len(same) != len(indices) or len(a) != C or len(count) != C or len(community) != C \
                    or len(degree) != n:
                raise StoreError(f"the prepared {method} regions do not fit the archive; the store is damaged: rebuild it")
            out[method] = PreparedRegion(labels, community, same.view(np.bool_), (e, a, count, W))
    except (KeyError, ValueError, TypeError) as error:
        raise StoreError(f"the prepared tables of {store.path} are malformed ({error}); the store is damaged: rebuild it") from None
    _fits(indptr, indices, n, "graph rows")
    if len(weights) != len(indices) or len(degree) not in (0, n):
        raise StoreError("the prepared graph's weights or degrees do not fit its rows; the store is damaged: rebuild it")
    walk = None
    if len(walk_indptr):
        _fits(walk_indptr, walk_indices, n, "walk lists")
        walk = (walk_indptr, walk_indices)
    prepared = Prepared((indptr, indices, weights), degree if len(degree) else None, walk, out)
    digests = [entries[0].get("sha256") for entries in (store.tables.get("adjacency"), store.tables.get("regions")) if entries]
    fact = f"graphret prepared arrays fit {n} positions: " + " ".join(map(str, digests))
    if not verified.known(fact):
        _check_values(prepared, n)
        verified.learn(fact)
    if walk is not None:  # (the walk's own check of these lists is done)
        remember_checked(n, *walk)
    return prepared
