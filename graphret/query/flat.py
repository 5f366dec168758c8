"""Exact cosine top-K: ``score(q, i) = <q, x_i>`` on unit-norm codes, blocked over queries.

One matrix product per block of queries (BLAS) and one ``argpartition`` per row; the block is
sized so that a block of scores stays under ``max_scores`` floats (never a q x n matrix for a
large batch), so memory is bounded whatever the batch and archive sizes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from graphret.errors import InputError

#: scores held at once by flat_search (floats): 32M = 128 MiB
MAX_SCORES = 1 << 25


@njit(cache=True, inline="always")
def _worse(s1, t1, s2, t2):
    """Is (score s1, tie key t1) ranked after (s2, t2)?  Higher score first, then smaller key."""
    return s1 < s2 or (s1 == s2 and t1 > t2)


@njit(cache=True)
def _swap(hs, ht, hi, a, b):
    """Exchange heap entries a and b of the three parallel arrays."""
    hs[a], hs[b] = hs[b], hs[a]
    ht[a], ht[b] = ht[b], ht[a]
    hi[a], hi[b] = hi[b], hi[a]


@njit(cache=True)
def _sift_down(hs, ht, hi, size, pos):
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        worst = left
        right = left + 1
        if right < size and _worse(hs[right], ht[right], hs[left], ht[left]):
            worst = right
        if _worse(hs[worst], ht[worst], hs[pos], ht[pos]):
            _swap(hs, ht, hi, pos, worst)
            pos = worst
        else:
            return


@njit(cache=True)
def heap_push(hs, ht, hi, size, k, s, t, idx):
    """Offer (score s, tie key t, payload idx) to the size-k heap (hs, ht, hi) holding
    ``size`` entries, whose root is the worst kept; returns the new size."""
    if size < k:
        pos = size
        hs[pos] = s
        ht[pos] = t
        hi[pos] = idx
        size += 1
        while pos > 0:
            parent = (pos - 1) // 2
            if _worse(hs[pos], ht[pos], hs[parent], ht[parent]):
                _swap(hs, ht, hi, pos, parent)
                pos = parent
            else:
                break
    elif _worse(hs[0], ht[0], s, t):
        hs[0] = s
        ht[0] = t
        hi[0] = idx
        _sift_down(hs, ht, hi, size, 0)
    return size


@njit(cache=True)
def heap_drain(hs, ht, hi, size, out_i, out_s):
    """Empty the heap into out_i / out_s, best first (destroys the heap)."""
    for end in range(size - 1, -1, -1):
        out_i[end] = hi[0]
        out_s[end] = hs[0]
        hs[0] = hs[end]
        ht[0] = ht[end]
        hi[0] = hi[end]
        _sift_down(hs, ht, hi, end, 0)


@njit(cache=True)
def _topk_segment(scores, ties, lo, hi, k, out_i, out_s, row):
    """Top-k of scores[lo:hi] (ties by smaller ``ties``) into out_i[row], out_s[row] (indices
    are offsets from lo), by decreasing score."""
    hs = np.empty(k, np.float32)
    ht = np.empty(k, np.int64)
    hix = np.empty(k, np.int64)
    size = 0
    for j in range(lo, hi):
        s = scores[j]
        if size == k and not (s > hs[0] or (s == hs[0] and ties[j] < ht[0])):
            continue  # the common case, decided without a call
        size = heap_push(hs, ht, hix, size, k, s, ties[j], j - lo)
    heap_drain(hs, ht, hix, size, out_i[row], out_s[row])


@njit(cache=True)
def _topk_rows_kernel(scores, k, out_i, out_s):
    n = scores.shape[1]
    ties = np.arange(n)
    for r in range(scores.shape[0]):
        _topk_segment(scores[r], ties, 0, n, k, out_i, out_s, r)


@njit(cache=True, fastmath=True)
def _flat_small_kernel(X, Q, k, exclude, out_i, out_s):
    """Exact top-k for a few queries in one pass over the archive: each dot product is
    computed (SIMD) and offered straight to the query's heap, never stored."""
    n, d = X.shape
    hs = np.empty(k, np.float32)
    ht = np.empty(k, np.int64)
    hix = np.empty(k, np.int64)
    for r in range(Q.shape[0]):
        q = Q[r]
        ex = exclude[r]
        size = 0
        for j in range(n):
            if j == ex:
                continue
            s = np.float32(0.0)
            for t in range(d):
                s += X[j, t] * q[t]
            if size == k and not (s > hs[0]):
                continue  # j grows, so an equal score ranks after the kept one
            size = heap_push(hs, ht, hix, size, k, s, j, j)
        heap_drain(hs, ht, hix, size, out_i[r], out_s[r])


@njit(cache=True, fastmath=True)
def row_dots(X, lo, hi, q, out):
    """out[j - lo] = <X[j], q> for rows lo..hi-1 (one query: faster than BLAS gemv at small d)."""
    d = X.shape[1]
    for j in range(lo, hi):
        s = np.float32(0.0)
        for t in range(d):
            s += X[j, t] * q[t]
        out[j - lo] = s


#: batches smaller than this use the fused one-pass kernel instead of BLAS + heap
SMALL_BATCH = 4


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores`` the column indices of the k largest values, by decreasing score
    (ties by smaller index), and those scores.  One pass per row with a size-k heap (numba)."""
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    k = min(int(k), scores.shape[1])
    out_i = np.empty((scores.shape[0], k), np.int64)
    out_s = np.empty((scores.shape[0], k), np.float32)
    if k > 0:
        _topk_rows_kernel(scores, k, out_i, out_s)
    return out_i, out_s


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
    if len(queries) < SMALL_BATCH and archive.flags.c_contiguous:
        ex = np.full(len(queries), -1, np.int64) if exclude is None else np.asarray(exclude, np.int64)
        _flat_small_kernel(archive, np.ascontiguousarray(queries), k, ex, indices, scores)
        return indices, scores
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
