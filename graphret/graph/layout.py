"""The walk's memory layout: the archive renumbered so that the rows a walk visits together lie
together in memory.

A walk's cost at a million codes is memory, not arithmetic: each node it scores is a random
row of the codes (512 bytes at d = 128), its 'seen' stamp, and for each node it expands, a
random row pointer and list.  Archive rows come in whatever order the images were added, so
over 512 MB of codes every step misses the caches and the TLB.  The walk stays inside the
query's community most of the way (its neighbours are there), so renumbering the archive by
community -- every community's rows contiguous, in row order inside it -- turns those
scattered loads into nearby ones (HNSW and DiskANN implementations reorder for the same
reason: graph reordering, Coleman et al. 2022).  Measured on 1M generated codes (d = 128, one
thread): the same walk over the same lists answers 1.15-1.7x faster batched in community order
(benchmarks/results/graph_search/walk_vs_faiss_1m.md) and 1.35x one query per call
(benchmarks/results/query_cost/query_cost.md); on MedNIST's 41k codes, which fit the caches, no
faster.

A :class:`WalkLayout` holds the codes, the walk lists and the entry points renumbered, and the
two maps: ``order[p]`` (layout position p holds archive row ``order[p]``) and ``rank``, its
inverse.  The walk runs over the layout and its rows are mapped back, so answers are the
same rows with the same cosines; what a layout costs is one copy of the codes and lists.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from graphret.errors import InputError
from graphret.graph.compact import CompactCodes, compact_codes

__all__ = ["WalkLayout", "walk_layout", "group_order", "renumber_rows", "pays", "compact_pays", "LAYOUT_ABOVE",
           "COMPACT_ABOVE"]

#: archives of at most this many items keep their own order: their codes fit the caches, and one
#: query per call walked a 10,000-item layout 54 -> 62 us (benchmarks/results/query_cost), 41k
#: MedNIST codes batched at 0.98-1.02x; 100k and 1M items walked it 1.2-1.4x faster
LAYOUT_ABOVE = 50_000


#: archives of more than this many items are walked over a one-byte scoring copy of the codes as well
#: (:mod:`graphret.graph.compact`): 1M generated codes walked 1.3x faster at the same recall
#: (benchmarks/results/graph_search/walk_vs_faiss_1m_compact.md), while MedNIST's 41k codes, which fit the caches,
#: walked at half the speed, recall@50 0.01-0.015 lower at equal ef (walk_vs_faiss_compact.md: their crowded cosines
#: send many nodes to the exact rescoring)
COMPACT_ABOVE = 200_000


def compact_pays(n: int) -> bool:
    """Whether the walks over an archive of n items score a one-byte copy of its codes (above
    :data:`COMPACT_ABOVE` items)."""
    return n > COMPACT_ABOVE


def pays(n: int) -> bool:
    """Whether an archive of n items is walked, grown and has its walk lists built in community
    order (above :data:`LAYOUT_ABOVE` items)."""
    return n > LAYOUT_ABOVE


class WalkLayout(NamedTuple):
    """The archive renumbered for the walk: position p holds archive row ``order[p]``."""

    order: np.ndarray  # int64 (n,): layout position -> archive row
    rank: np.ndarray  # int64 (n,): archive row -> layout position
    codes: np.ndarray  # float32 (n, d): codes[order], contiguous
    indptr: np.ndarray  # int64 (n + 1,)
    indices: np.ndarray  # int32 (nnz,): layout positions
    entries: np.ndarray  # int64 (e,): layout positions of the entry rows
    starts: np.ndarray  # int64 (g + 1,): the first position of each group, then n
    compact: CompactCodes | None = None  # ``codes`` at one byte a dimension, which the graph walks score

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Layout positions of archive ``rows`` (-1 stays -1: none)."""
        return np.where(rows >= 0, self.rank[np.maximum(rows, 0)], -1)


def walk_layout(codes: np.ndarray, indptr: np.ndarray, indices: np.ndarray, entries: np.ndarray,
                groups: np.ndarray, *, compact: bool = False) -> WalkLayout:
    """The walk's inputs (unit ``codes`` (n, d), walk lists ``(indptr, indices)``, entry rows)
    renumbered so that each group of ``groups`` (one integer label per row: the community
    membership, -1 for none) is contiguous, rows in their order inside it.  ``compact``: with
    the renumbered codes' one-byte copy too (:mod:`graphret.graph.compact`), which the walks
    over this layout then score, rescoring their best nodes exactly."""
    n = codes.shape[0]
    groups = np.asarray(groups)
    if groups.shape != (n,) or not np.issubdtype(groups.dtype, np.integer):
        raise InputError(f"{{groups}} must hold one integer label per code ({n}), got shape {groups.shape}; "
                         "pass the community membership", param="groups")
    if len(indptr) != n + 1:
        raise InputError(f"the walk lists have {len(indptr) - 1} rows but there are {n} codes; rebuild them for these codes")
    order, rank = group_order(groups)
    new_ptr, new_indices, _ = renumber_rows(indptr, indices, order, rank)
    laid, laid_entries = np.ascontiguousarray(codes[order], dtype=np.float32), rank[np.asarray(entries, dtype=np.int64)]
    ordered = groups[order]
    starts = np.concatenate([np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]), [n]]).astype(np.int64)
    return WalkLayout(order, rank, laid, new_ptr, new_indices, laid_entries, starts,
                      compact_codes(laid, laid_entries) if compact else None)


def group_order(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, rank) that make each group of ``groups`` contiguous, rows in their order inside
    it: position p holds row ``order[p]``, row j sits at ``rank[j]``."""
    order = np.argsort(np.asarray(groups), kind="stable").astype(np.int64)
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return order, rank


def renumber_rows(indptr: np.ndarray, indices: np.ndarray, order: np.ndarray, rank: np.ndarray,
                  values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A CSR graph (``indptr``, ``indices``, optional per-entry ``values``) renumbered: new row
    p is old row ``order[p]``, old node j is new node ``rank[j]``; each row keeps its entries'
    order.  Returns (indptr int64, indices int32, values or None)."""
    degree = np.diff(indptr)[order]
    new_ptr = np.zeros(len(order) + 1, np.int64)
    np.cumsum(degree, out=new_ptr[1:])
    # the entry of new row p, slot t, is old entry indptr[order[p]] + t
    take = np.repeat(np.asarray(indptr[:-1])[order] - new_ptr[:-1], degree) + np.arange(new_ptr[-1])
    new_indices = rank[np.asarray(indices)[take]].astype(np.int32)
    return new_ptr, new_indices, None if values is None else np.asarray(values)[take]
