"""The compressed sparse rows (CSR) of an undirected weighted edge list, in numpy: what scipy's
``csr_matrix((w, (rows, cols)))`` of both directions gives, sorted within each row, without
importing scipy (a query from a fresh process does not pay scipy's import).

A store keeps each edge once, as ``src < dst`` in ``(src, dst)`` order; then row i is its
edges from smaller rows (``dst == i``, by ``src``) followed by its edges to larger rows
(``src == i``, in order), so one sort of the edges by ``dst`` lays out the whole matrix.  Other
edge lists (both directions, repeats, any order) are sorted whole; repeated pairs are summed,
as scipy sums them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["symmetric_csr"]


def _ptr(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _stable_order(keys: np.ndarray, n: int) -> np.ndarray:
    """The stable ascending order of integer ``keys`` in ``0..n-1``: numpy sorts 16-bit keys
    stably by radix, in linear time, so one pass per 16 bits (least significant first) beats
    a comparison sort of the whole keys several times over."""
    if n > 2**32:
        return np.argsort(keys, kind="stable")
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    if n > 2**16:
        order = order[np.argsort((keys[order] >> 16).astype(np.uint16), kind="stable")]
    return order


def symmetric_csr(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr int64 (n + 1,), indices int32, data float32) of the n x n symmetric matrix with
    ``weight[e]`` at ``(src[e], dst[e])`` and ``(dst[e], src[e])``, each row by increasing
    column."""
    src = np.asarray(src, np.int64)
    dst = np.asarray(dst, np.int64)
    weight = np.asarray(weight, np.float32)
    m = len(src)
    if m and bool(np.all(src < dst)) and bool(np.all((src[1:] > src[:-1]) | ((src[1:] == src[:-1]) & (dst[1:] > dst[:-1])))):
        out_count, in_count = np.bincount(src, minlength=n), np.bincount(dst, minlength=n)
        indptr = _ptr(out_count + in_count)
        indices = np.empty(2 * m, np.int32)
        data = np.empty(2 * m, np.float32)
        incoming = _stable_order(dst, n)
        rows = dst[incoming]
        at = indptr[rows] + np.arange(m) - _ptr(in_count)[rows]
        indices[at], data[at] = src[incoming], weight[incoming]
        at = indptr[src] + in_count[src] + np.arange(m) - _ptr(out_count)[src]
        indices[at], data[at] = dst, weight
        return indptr, indices, data
    rows, cols = np.concatenate([src, dst]), np.concatenate([dst, src])
    key = rows * max(n, 1) + cols
    order = np.argsort(key, kind="stable")
    key, data = key[order], np.concatenate([weight, weight])[order]
    if len(key) > 1 and bool(np.any(key[1:] == key[:-1])):  # repeated pairs: summed
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        key, data = key[first], np.add.reduceat(data, first)
    rows, cols = np.divmod(key, max(n, 1))
    return _ptr(np.bincount(rows, minlength=n)), cols.astype(np.int32), data.astype(np.float32)
