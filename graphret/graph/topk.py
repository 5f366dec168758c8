"""Top-k selection: the one size-k heap and the one K check every search uses.

A kept entry is ``(score, tie key, payload)``; higher scores rank first and, among equal
scores, the smaller tie key (the item's position, so results never depend on the order items
were scanned in).  The heap's root is the worst entry kept, so a candidate is decided with one
comparison in the common case.  The kNN graph, flat, probe and graph-walk searches all keep
their results in this heap.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from graphret.errors import InputError, KTooLarge

__all__ = ["check_k", "heap_push", "heap_drain", "topk_rows"]


def check_k(k, available: int | None = None, *, what: str = "the archive", param: str = "k") -> int:
    """K as an int, when it is a whole number in ``1..available`` (any positive K when
    ``available`` is None); otherwise one line that names the fix
    (:class:`~graphret.errors.KTooLarge` when K exceeds ``available``)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputError(f"K must be a whole number (an integer), got {k!r}; use e.g. {{{param}=10}}", param=param)
    if k < 1:
        raise InputError(f"K must be at least 1, got {k}; use e.g. {{{param}=10}}", param=param)
    if available is not None and k > available:
        if available <= 0:
            raise KTooLarge(f"there is nothing to return: {what} is empty", available=0, param=param)
        raise KTooLarge(
            f"K = {k} is larger than {what} ({available} items available); use {{{param}={available}}} or less",
            available=available,
            param=param,
        )
    return int(k)


@njit(cache=True, inline="always")
def _worse(s1, t1, s2, t2):
    """Is (score s1, tie key t1) ranked after (s2, t2)?  Higher score first, then smaller key."""
    return s1 < s2 or (s1 == s2 and t1 > t2)


@njit(cache=True)
def _swap(hs, ht, hi, a, b):
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


@njit(cache=True, parallel=True)
def _topk_rows_kernel(scores, skip, k, out_i, out_s):
    n = scores.shape[1]
    for r in prange(scores.shape[0]):
        hs = np.empty(k, np.float32)
        ht = np.empty(k, np.int64)
        hix = np.empty(k, np.int64)
        size = 0
        row = scores[r]
        ex = skip[r]
        for j in range(n):
            if j == ex:
                continue
            s = row[j]
            if size == k and not (s > hs[0]):
                continue  # j grows, so an equal score ranks after the kept one
            size = heap_push(hs, ht, hix, size, k, s, j, j)
        heap_drain(hs, ht, hix, size, out_i[r], out_s[r])


def topk_rows(scores: np.ndarray, k: int, *, skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores``: the column indices of the k largest values, by decreasing score
    (ties by smaller index), and those scores.  ``skip[r]`` is a column row r must not return
    (-1 for none).  One pass per row with a size-k heap, rows in parallel."""
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    k = min(int(k), scores.shape[1] - (0 if skip is None else int(np.any(np.asarray(skip) >= 0))))
    skip = np.full(scores.shape[0], -1, np.int64) if skip is None else np.ascontiguousarray(skip, np.int64)
    out_i = np.empty((scores.shape[0], max(k, 0)), np.int64)
    out_s = np.empty((scores.shape[0], max(k, 0)), np.float32)
    if k > 0:
        _topk_rows_kernel(scores, skip, k, out_i, out_s)
    return out_i, out_s
