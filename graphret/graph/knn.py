"""Exact cosine top-k: ``score(q, i) = <q, x_i>`` on unit-norm codes.

One routine serves both the kNN graph (every code against every code, itself excluded) and
flat search (queries against an archive): :func:`exact_search`.  Queries are taken in blocks,
one matrix product per block (BLAS) and one pass per row with the size-k heap of
:mod:`graphret.graph.topk`; a block of scores stays under ``max_scores`` floats, so memory is
bounded whatever the batch and archive sizes (never an ``n x n`` matrix).  A handful of
queries instead take a fused one-pass kernel that offers each dot product straight to the
heap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from graphret.kernels.jit import njit

from graphret.errors import InputError
from graphret.graph.topk import check_k, topk_rows
from graphret.kernels.heap import heap_drain, heap_push

__all__ = [
    "exact_knn",
    "exact_knn_rows",
    "exact_search",
    "check_dimension",
    "row_dots",
    "validate_codes",
    "real_array",
    "NORM_TOLERANCE",
    "MAX_SCORES",
]

NORM_TOLERANCE = 1e-3
#: scores held at once by exact_search (floats): 64M = 256 MiB
MAX_SCORES = 1 << 26
#: batches smaller than this use the fused one-pass kernel instead of BLAS + heap
SMALL_BATCH = 4


def real_array(values: Any, *, name: str = "codes", param: str | None = None) -> np.ndarray:
    """``values`` as float32, when they are real numbers of one shape (never text, objects,
    booleans or complex numbers, which numpy would cast or refuse with a bare ValueError)."""
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):
        raise InputError(f"{name} must be numbers in rows of one length; give a float array (n, d)", param=param) from None
    if array.dtype.kind not in "fiu":
        raise InputError(f"{name} must be real numbers, got {array.dtype} values; give a float array (n, d)", param=param)
    with np.errstate(over="ignore"):  # beyond float32: inf, which the finiteness checks name
        return array.astype(np.float32, copy=False)


def validate_codes(codes, *, name: str = "codes") -> np.ndarray:
    """Return ``codes`` as a C-contiguous float32 ``(n, d)`` array, or raise :class:`InputError`
    when they are not 2-D, not floating point, not finite, or not L2-normalised."""
    if not isinstance(codes, np.ndarray):
        try:
            codes = np.asarray(codes)
        except Exception:  # pragma: no cover - exotic inputs
            raise InputError(f"{name} must be a 2-D float array (n, d)") from None
    if codes.ndim != 2:
        raise InputError(f"{name} must be a 2-D float array (n, d), got shape {codes.shape}")
    if codes.shape[0] == 0 or codes.shape[1] == 0:
        raise InputError(f"{name} are empty (shape {codes.shape}); encode at least two images")
    if not np.issubdtype(codes.dtype, np.floating):
        raise InputError(f"{name} must be floating point, got {codes.dtype}; convert with codes.astype('float32')")
    if not np.all(np.isfinite(codes)):
        bad = int((~np.isfinite(codes)).any(axis=1).sum())
        raise InputError(f"{name} have {bad} rows with NaN or infinite values; fix or drop those images")
    codes = np.ascontiguousarray(codes, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", codes, codes, dtype=np.float64))
    off = np.abs(norms - 1.0) > NORM_TOLERANCE
    if off.any():
        i = int(np.argmax(off))
        raise InputError(
            f"{name} are not L2-normalised ({int(off.sum())} rows, e.g. row {i} has norm "
            f"{norms[i]:.4g}); divide each row by its norm first"
        )
    return codes


def check_dimension(archive_dim: int, queries: np.ndarray) -> None:
    """Queries must be (q, d) with the archive's d."""
    if queries.ndim != 2 or queries.shape[1] != archive_dim:
        raise InputError(
            f"query codes have dimension {queries.shape[-1]} but the archive's have {archive_dim}; "
            "encode queries with the store's encoder (and the same {space})"
        )


@njit(cache=True, fastmath=True)
def row_dots(X, lo, hi, q, out):
    """out[j - lo] = <X[j], q> for rows lo..hi-1 (one query: faster than BLAS gemv at small d)."""
    d = X.shape[1]
    for j in range(lo, hi):
        s = np.float32(0.0)
        for t in range(d):
            s += X[j, t] * q[t]
        out[j - lo] = s


@njit(cache=True, fastmath=True)
def _fused_kernel(X, Q, k, exclude, out_i, out_s):
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


def exact_search(
    archive: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    exclude: np.ndarray | None = None,
    block_size: int = 2048,
    max_scores: int = MAX_SCORES,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of each query over all archive rows, by decreasing cosine (ties by smaller
    row).

    ``exclude[i]`` is an archive row that query i must not return (itself, when the query is
    an archive item) or -1.  Returns (indices int64 (q, k) into ``archive``, scores float32).
    Memory: ``min(block_size, max_scores / len(archive))`` x len(archive) scores at a time."""
    archive = np.asarray(archive, dtype=np.float32)
    queries = np.asarray(queries, dtype=np.float32)
    if archive.ndim != 2:
        raise InputError("the archive codes must be a 2-D array (n, d)")
    check_dimension(archive.shape[1], queries)
    any_excluded = exclude is not None and bool(np.any(np.asarray(exclude) >= 0))
    k = check_k(k, len(archive) - int(any_excluded))
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise InputError(f"block_size must be a positive integer, got {block_size!r}", param="block_size")
    n = len(archive)
    ex = np.full(len(queries), -1, np.int64) if exclude is None else np.asarray(exclude, np.int64)
    indices = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    if len(queries) < SMALL_BATCH and archive.flags.c_contiguous:
        _fused_kernel(archive, np.ascontiguousarray(queries), k, ex, indices, scores)
        return indices, scores
    height = max(1, min(int(block_size), max_scores // max(n, 1)))
    wide = min(int(block_size), len(queries))
    width = max(k, max_scores // wide)
    if height < wide and k * -(-n // width) <= width:
        # a large archive: blocks of archive columns, read once per block of queries (the blocks' top k
        # held at once are no more than one block of scores)
        height = wide
        for start in range(0, len(queries), height):
            stop = min(start + height, len(queries))
            indices[start:stop], scores[start:stop] = _top_by_columns(archive, queries[start:stop], k, ex[start:stop], width)
        return indices, scores
    for start in range(0, len(queries), height):
        stop = min(start + height, len(queries))
        block = queries[start:stop] @ archive.T
        indices[start:stop], scores[start:stop] = topk_rows(block, k, skip=ex[start:stop])
    return indices, scores


def _top_by_columns(archive: np.ndarray, queries: np.ndarray, k: int, exclude: np.ndarray,
                    width: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of a few queries over a large archive, ``width`` archive rows at a time: each
    block's top k (:func:`topk_rows`), then the top k of those (ties by smaller row: the blocks'
    candidates are laid out in row order).  Memory: ``len(queries) * width`` scores; the archive
    is read once, where blocks of queries against the whole archive would read it once per block."""
    n = len(archive)
    q = len(queries)
    starts = range(0, n, width)
    cand_i = np.full((q, k * len(starts)), np.iinfo(np.int64).max, np.int64)
    cand_s = np.full((q, k * len(starts)), -np.inf, np.float32)
    for b, lo in enumerate(starts):
        hi = min(lo + width, n)
        skip = np.where((exclude >= lo) & (exclude < hi), exclude - lo, -1)
        idx, sc = topk_rows(queries @ archive[lo:hi].T, k, skip=skip)
        cand_i[:, b * k:b * k + idx.shape[1]] = idx + lo
        cand_s[:, b * k:b * k + idx.shape[1]] = sc
    best, top = topk_rows(cand_s, k)
    return np.take_along_axis(cand_i, best, axis=1), top


def exact_knn_rows(codes: np.ndarray, rows: np.ndarray, k: int, *, block_size: int = 2048,
                   max_scores: int = MAX_SCORES, validated: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN (the row itself excluded, not its duplicates) of the given ``rows`` of
    ``codes`` against all codes."""
    if not validated:
        codes = validate_codes(codes)
    rows = np.asarray(rows, dtype=np.int64)
    check_k(k, codes.shape[0] - 1, what="the other codes")
    return exact_search(codes, codes[rows], k, exclude=rows, block_size=block_size, max_scores=max_scores)


def exact_knn(codes: np.ndarray, k: int, *, block_size: int = 2048,
              max_scores: int = MAX_SCORES) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN of L2-normalised ``codes``: ``(indices int64 (n,k), similarities float32
    (n,k))``, each row sorted by decreasing similarity (ties by smaller index).

    A row never lists itself; exact duplicates of it are listed like any other neighbour
    (similarity 1)."""
    codes = validate_codes(codes)
    return exact_knn_rows(codes, np.arange(codes.shape[0]), k, block_size=block_size,
                          max_scores=max_scores, validated=True)
