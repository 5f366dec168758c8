"""Exact cosine top-K: ``score(q, i) = <q, x_i>`` on unit-norm codes, blocked over queries.

One matrix product per block of queries (BLAS) and one ``argpartition`` per row; the block is
sized so that a block of scores stays under ``max_scores`` floats (never a q x n matrix for a
large batch), so memory is bounded whatever the batch and archive sizes.
"""

from __future__ import annotations

import numpy as np

from graphret.errors import InputError

#: scores held at once by flat_search (floats): 32M = 128 MiB
MAX_SCORES = 1 << 25


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores`` the column indices of the k largest values, by decreasing score
    (ties by smaller index), and those scores."""
    n = scores.shape[1]
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), (scores.shape[0], n)).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    indices = np.take_along_axis(part, order, axis=1)
    return indices, np.take_along_axis(part_scores, order, axis=1)


def check_dimension(archive_dim: int, queries: np.ndarray) -> None:
    if queries.ndim != 2 or queries.shape[1] != archive_dim:
        raise InputError(
            f"query codes have dimension {queries.shape[-1]} but the archive's have {archive_dim}; "
            "encode queries with the store's encoder (and the same --space)"
        )


def check_k(k: int, available: int, *, what: str = "the archive") -> None:
    """K must lie in 1..available; one line naming the fix otherwise."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputError(f"K must be a whole number, got {k!r} (use e.g. --k 10)")
    if k < 1:
        raise InputError(f"K must be at least 1, got {k} (use e.g. --k 10)")
    if k > available:
        raise InputError(f"K = {k} is larger than {what} ({available} items available); use --k {max(available, 1)} or less")


def flat_search(
    archive: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    exclude: np.ndarray | None = None,
    block_size: int = 1024,
    max_scores: int = MAX_SCORES,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of each query over all archive rows.

    ``exclude[i]`` is an archive row that query i must not return (itself, when the query is a
    stored item) or -1.  Returns (indices int64 (q, k) into ``archive``, scores float32).
    Memory is bounded by ``min(block_size, max_scores / len(archive))`` x len(archive) scores.
    """
    archive = np.asarray(archive, dtype=np.float32)
    queries = np.asarray(queries, dtype=np.float32)
    if archive.ndim != 2:
        raise InputError("the archive codes must be a 2-D array (n, d)")
    check_dimension(archive.shape[1], queries)
    available = len(archive) - (1 if exclude is not None and np.any(np.asarray(exclude) >= 0) else 0)
    check_k(k, available)
    n = len(archive)
    block_size = max(1, min(block_size, max_scores // max(n, 1)))
    indices = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    for start in range(0, len(queries), block_size):
        stop = min(start + block_size, len(queries))
        block = queries[start:stop] @ archive.T
        if exclude is not None:
            rows = np.arange(stop - start)
            cols = np.asarray(exclude[start:stop])
            keep = cols >= 0
            block[rows[keep], cols[keep]] = -np.inf
        indices[start:stop], scores[start:stop] = topk_rows(block, k)
    return indices, scores
