"""Exact cosine k-nearest neighbours by blocked matrix products.

Codes are float32 and L2-normalised, so cosine similarity is a dot product.  Rows are processed
in blocks: one block of similarities ``(rows x n)`` at a time, a partial sort
(``argpartition``) per block, never an ``n x n`` matrix.  The block height is capped so that a
block of similarities stays under ``max_block_bytes``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from graphret.errors import InputError

__all__ = ["exact_knn", "exact_knn_rows", "validate_codes", "check_k", "NORM_TOLERANCE"]

NORM_TOLERANCE = 1e-3


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


def check_k(k, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputError(f"k must be an integer, got {k!r}")
    k = int(k)
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    if k >= n:
        raise InputError(f"k = {k} must be smaller than the number of codes ({n}); use k <= {n - 1}")
    return k


@njit(cache=True, parallel=True)
def _topk_block(sims, qrows, k):
    """Per row of ``sims``: the k largest entries, skipping column ``qrows[r]`` (the row
    itself), sorted by decreasing value, ties by smaller column.  One pass with a running
    threshold (about one comparison per entry), instead of an O(n) argpartition per row."""
    h, n = sims.shape
    out_i = np.empty((h, k), np.int64)
    out_s = np.empty((h, k), np.float32)
    for r in prange(h):
        vi = np.empty(k, np.int64)
        vs = np.empty(k, np.float32)
        cnt = 0
        skip = qrows[r]
        row = sims[r]
        for j in range(n):
            if j == skip:
                continue
            v = row[j]
            if cnt == k:
                if v <= vs[k - 1]:  # ties keep the smaller (earlier) index
                    continue
                pos = k - 1
            else:
                pos = cnt
                cnt += 1
            # insert v at its place, shifting smaller ones right
            while pos > 0 and vs[pos - 1] < v:
                vs[pos] = vs[pos - 1]
                vi[pos] = vi[pos - 1]
                pos -= 1
            vs[pos] = v
            vi[pos] = j
        out_i[r] = vi
        out_s[r] = vs
    return out_i, out_s


def _topk_rows(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns of each row of ``sims``, sorted by decreasing similarity, ties by index."""
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(sims, part, axis=1)
    # sort each row by (-value, index) with two stable sorts (index first, then value)
    o1 = np.argsort(part, axis=1, kind="stable")
    part = np.take_along_axis(part, o1, axis=1)
    vals = np.take_along_axis(vals, o1, axis=1)
    o2 = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, o2, axis=1), np.take_along_axis(vals, o2, axis=1)


def exact_knn(codes: np.ndarray, k: int, *, block_size: int = 2048,
              max_block_bytes: int = 256 * 2**20) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN of L2-normalised ``codes``: ``(indices int64 (n,k), similarities float32
    (n,k))``, each row sorted by decreasing similarity (ties by smaller index among the k kept).

    A row never lists itself; exact duplicates of it are listed like any other neighbour
    (similarity 1).  Memory: one ``(rows, n)`` float32 block at a time, ``rows =
    min(block_size, max_block_bytes / (4 n))``; never an ``n x n`` matrix.
    """
    codes = validate_codes(codes)
    n = codes.shape[0]
    k = check_k(k, n)
    return exact_knn_rows(codes, np.arange(n), k, block_size=block_size,
                          max_block_bytes=max_block_bytes, validated=True)


def exact_knn_rows(codes: np.ndarray, rows: np.ndarray, k: int, *, block_size: int = 2048,
                   max_block_bytes: int = 256 * 2**20, validated: bool = False):
    """Exact kNN (self excluded) of the given ``rows`` of ``codes`` against all codes."""
    if not validated:
        codes = validate_codes(codes)
    n = codes.shape[0]
    k = check_k(k, n)
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise InputError(f"block_size must be a positive integer, got {block_size!r}")
    rows = np.asarray(rows, dtype=np.int64)
    height = int(max(1, min(int(block_size), max_block_bytes // (4 * n))))
    out_i = np.empty((rows.size, k), dtype=np.int64)
    out_s = np.empty((rows.size, k), dtype=np.float32)
    for start in range(0, rows.size, height):
        stop = min(rows.size, start + height)
        q = rows[start:stop]
        sims = codes[q] @ codes.T  # (height, n) float32
        # top k per row, excluding the row itself (not its duplicates)
        idx, val = _topk_block(sims, q, k)
        out_i[start:stop] = idx
        out_s[start:stop] = val
    return out_i, out_s
