"""Top-k selection: the one K check every search uses, and the top-k of each row of a score
matrix with the bounded heap of :mod:`graphret.kernels.heap` (higher scores first, ties by the
smaller column).
"""

from __future__ import annotations

import numpy as np
from graphret.kernels.jit import njit, prange

from graphret.errors import InputError, KTooLarge
from graphret.kernels.heap import heap_drain, heap_push

__all__ = ["check_k", "topk_rows"]


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
