"""Approximate cosine kNN with pynndescent, and its recall against exact kNN on a sample.

pynndescent compiles its kernels with numba on first use (about a minute, cached afterwards).
"""

from __future__ import annotations

import numpy as np

from graphret.errors import InputError
from graphret.graph.knn import exact_knn_rows, validate_codes
from graphret.graph.topk import check_k, topk_rows

__all__ = ["approx_knn", "knn_recall"]

#: scores held at once while measuring recall (16 MiB: the sample is small, the archive may be 1M+)
RECALL_SCORES = 1 << 22


def approx_knn(codes: np.ndarray, k: int, *, seed: int = 0, metric: str = "dot",
               **options) -> tuple[np.ndarray, np.ndarray]:
    """Approximate cosine kNN of L2-normalised ``codes`` with ``pynndescent.NNDescent``.

    Returns ``(indices int64 (n,k), similarities float32 (n,k))`` like
    :func:`graphret.graph.knn.exact_knn`: self excluded, rows sorted by decreasing similarity.
    The similarities are recomputed exactly from the codes for the pairs found (pynndescent's
    ``dot`` distance clips negative products).  ``metric`` is ``"dot"`` (default, same as cosine
    on normalised codes) or ``"cosine"``; other keyword options go to ``NNDescent``
    (e.g. ``n_trees``, ``n_iters``, ``low_memory``).  Seeded: ``random_state=seed``.
    """
    codes = validate_codes(codes)
    n = codes.shape[0]
    k = check_k(k, n - 1, what="the other codes")
    if metric not in ("dot", "cosine"):
        raise InputError(f"metric must be 'dot' or 'cosine' for cosine kNN, got {metric!r}")
    from pynndescent import NNDescent

    nnd = NNDescent(codes, n_neighbors=min(n, k + 1), metric=metric, random_state=int(seed),
                    **options)
    idx, _ = nnd.neighbor_graph
    idx = np.asarray(idx, dtype=np.int64)
    m = idx.shape[1]
    rows = np.arange(n)[:, None]
    # drop the row itself and unfilled slots (-1); keep at most k of the rest
    bad = (idx == rows) | (idx < 0)
    # duplicates of the same neighbour in one list (should not happen) are dropped too
    srt = np.sort(np.where(bad, -1, idx), axis=1)
    dup_sorted = np.zeros_like(srt, dtype=bool)
    dup_sorted[:, 1:] = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
    if dup_sorted.any():  # pragma: no cover - defensive
        for i in np.nonzero(dup_sorted.any(axis=1))[0]:
            _, first = np.unique(idx[i], return_index=True)
            keep = np.zeros(m, bool)
            keep[first] = True
            bad[i] |= ~keep
    sims = np.einsum("ij,ikj->ik", codes, codes[np.where(bad, 0, idx)], dtype=np.float32)
    sims = np.where(bad, -np.inf, sims).astype(np.float32)
    out_i, out_s = topk_rows(sims, k)
    out_i = np.take_along_axis(idx, out_i, axis=1)
    missing = ~np.isfinite(out_s)
    if missing.any():
        # a list came back short: fill it exactly for those rows (rare, tiny graphs)
        rows_short = np.nonzero(missing.any(axis=1))[0]
        ei, es = exact_knn_rows(codes, rows_short, k)
        out_i[rows_short] = ei
        out_s[rows_short] = es
    return out_i, out_s


def knn_recall(approx_indices: np.ndarray, codes: np.ndarray, *, sample: int = 1000,
               seed: int = 0) -> float:
    """Recall of approximate kNN lists against exact kNN on a seeded sample of rows.

    For each sampled row ``i`` the exact k-th largest similarity ``s_k(i)`` is computed over all
    codes; recall is the fraction of the approximate neighbours ``j`` with
    ``s(i, j) >= s_k(i)`` (tie-aware: exact duplicates or equal similarities are not counted as
    misses), averaged over the sample.  ``sample >= n`` uses every row.
    """
    codes = validate_codes(codes)
    approx_indices = np.asarray(approx_indices)
    n = codes.shape[0]
    if approx_indices.ndim != 2 or approx_indices.shape[0] != n:
        raise InputError(
            f"approx_indices must have shape (n, k) with n = {n}, got {approx_indices.shape}"
        )
    k = check_k(approx_indices.shape[1], n - 1, what="the other codes")
    if int(sample) < 1:
        raise InputError(f"sample must be at least 1, got {sample}")
    rng = np.random.default_rng(seed)
    rows = np.arange(n) if sample >= n else np.sort(rng.choice(n, size=int(sample), replace=False))
    _, exact_s = exact_knn_rows(codes, rows, k, max_scores=RECALL_SCORES)
    kth = exact_s[:, -1].astype(np.float64)
    ai = approx_indices[rows].astype(np.int64)
    valid = (ai >= 0) & (ai < n) & (ai != rows[:, None])
    s = np.einsum("ij,ikj->ik", codes[rows].astype(np.float64),
                  codes[np.where(valid, ai, 0)].astype(np.float64))
    hit = valid & (s >= kth[:, None] - 1e-6)
    return float(hit.sum() / (rows.size * k))
