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
import pyarrow as pa

from graphret.errors import InputError, StoreError
from graphret.graph.walk import check_walk_graph
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


def _csr(indptr: np.ndarray, indices: np.ndarray, n: int, what: str) -> None:
    if len(indptr) != n + 1 or indptr[0] != 0 or indptr[-1] != len(indices) or bool(np.any(indptr[1:] < indptr[:-1])):
        raise StoreError(f"the prepared {what} do not fit the archive's {n} items; the store is damaged: rebuild it")
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= n):
        raise StoreError(f"the prepared {what} name rows outside the archive; the store is damaged: rebuild it")


def read_prepared(store: Snapshot, n: int) -> Prepared | None:
    """The prepared arrays of ``store``'s default archive (``n`` positions), memory-mapped and
    checked (O(edges) comparisons, no copies), or None when the version has none made from it."""
    adjacency = store.prepared_rows("adjacency")
    if adjacency is None:
        return None
    try:
        (arrays,) = adjacency
        regions = {row["method"]: row for row in store.prepared_rows("regions") or []}
        indptr, indices, weights = arrays["indptr"], arrays["indices"], arrays["weights"]
        walk_indptr, walk_indices, degree = arrays["walk_indptr"], arrays["walk_indices"], arrays["degree"]
    except (KeyError, ValueError, TypeError) as error:
        raise StoreError(f"the prepared tables of {store.path} are malformed ({error}); the store is damaged: rebuild it") from None
    _csr(indptr, indices, n, "graph rows")
    if len(weights) != len(indices) or len(degree) not in (0, n):
        raise StoreError("the prepared graph's weights or degrees do not fit its rows; the store is damaged: rebuild it")
    walk = None
    if len(walk_indptr):
        try:  # (the walk's own check, which each walk over these arrays then finds done)
            if len(walk_indptr) > 1 and bool(np.any(walk_indptr[1:] < walk_indptr[:-1])):
                raise InputError("the walk lists' row pointers decrease")
            walk = check_walk_graph(n, walk_indptr, walk_indices)
        except InputError:
            raise StoreError("the prepared walk lists do not fit the archive; the store is damaged: rebuild it") from None
    out: dict[str, PreparedRegion] = {}
    for method, row in regions.items():
        try:
            labels, community, same = row["labels"], row["community"], row["same"]
            e, a, count, W = row["e"], row["a"], row["n"], float(row["W"])
        except (KeyError, TypeError, ValueError) as error:
            raise StoreError(f"the prepared regions of {store.path} are malformed ({error}); the store is damaged: rebuild it") from None
        C = len(e)
        if len(labels) != n or len(same) != len(indices) or len(a) != C or len(count) != C or len(community) != C \
                or (n and (int(labels.min()) < -1 or int(labels.max()) >= C)) or (len(same) and int(same.max()) > 1) \
                or len(degree) != n:
            raise StoreError(f"the prepared {method} regions do not fit the archive; the store is damaged: rebuild it")
        out[method] = PreparedRegion(labels, community, same.view(np.bool_), (e, a, count, W))
    return Prepared((indptr, indices, weights), degree if len(degree) else None, walk, out)
