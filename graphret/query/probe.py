"""Probe search (the IVF-style bridge to FAISS): exact top-K inside the P communities whose
centroids are nearest to the query.

With P = every community this is flat search.  When the P communities hold fewer than K
candidates (after filters and the query itself), further communities are probed in centroid
order until K exist, so a probe never returns fewer than K results when the archive has K.

Batches are grouped by community: every probed community is scored once for all the queries
that probe it (one matrix product per community), and each query keeps a size-K heap (numba)
that every block of scores is offered to, so no candidate list is ever materialised.
"""

from __future__ import annotations

import numpy as np
from graphret.kernels.jit import njit

from graphret.errors import InputError
from graphret.graph.knn import SMALL_BATCH
from graphret.graph.segments import row_sums
from graphret.graph.topk import check_k
from graphret.kernels.heap import heap_drain, heap_push
from graphret.query.index import RetrievalIndex


def probe_search(
    index: RetrievalIndex,
    queries: np.ndarray,
    k: int,
    *,
    n_probe: int = 4,
    exclude: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k of each query inside its ``n_probe`` nearest communities.

    ``exclude[i]``: archive position query i must not return, or -1; ``allowed``: bool mask
    over archive positions (filters), None for all.  Returns (positions int64 (q, k),
    scores float32 (q, k), scanned fraction float64 (q,))."""
    queries = index.check_queries(queries)
    if isinstance(n_probe, bool) or not isinstance(n_probe, (int, np.integer)) or n_probe < 1:
        raise InputError(f"{{n_probe}} must be a whole number >= 1, got {n_probe!r}", param="n_probe")
    q = len(queries)
    C = index.n_communities
    off = index.off
    allowed_s = index.positions_in_sorted(allowed)
    sizes = np.diff(off)
    if allowed_s is not None:
        counts = row_sums(allowed_s.astype(np.int64), off)
    else:
        counts = sizes.copy()
    total = int(counts.sum())
    excl_s = index.excluded_in_sorted(exclude, q, allowed_s)
    check_k(k, total - (1 if np.any(excl_s >= 0) else 0), what="the archive after filters")

    cscores = queries @ index.centroids.T  # (q, C)
    P = min(int(n_probe), C)
    if P < C:
        top = np.argpartition(-cscores, P - 1, axis=1)[:, :P]
    else:
        top = np.broadcast_to(np.arange(C), (q, C))
    probed: list[np.ndarray] = list(top)
    short = np.flatnonzero(counts[top].sum(axis=1) < k + (excl_s >= 0))
    for i in short:  # rare: the P communities hold fewer than K candidates
        need = k + (1 if excl_s[i] >= 0 else 0)
        full = np.argsort(-cscores[i], kind="stable")
        cum = np.cumsum(counts[full])
        probed[i] = full[: int(np.searchsorted(cum, need)) + 1]

    use_allowed = allowed_s is not None
    allowed_arr = allowed_s if use_allowed else np.zeros(1, np.bool_)
    order = index.order
    scanned = np.array([counts[t].sum() for t in probed], np.float64)
    if q < SMALL_BATCH:  # one pass per query: dot products straight into the heap
        out_i = np.empty((q, k), np.int64)
        out_sc = np.empty((q, k), np.float32)
        for i in range(q):
            comms = np.ascontiguousarray(probed[i], np.int64)
            _probe_one(index.sorted_codes, queries[i], comms, off, k, int(excl_s[i]), use_allowed, allowed_arr, order, out_i[i], out_sc[i])
        return order[out_i], out_sc, scanned / max(index.n, 1)

    # every probed community scored once for all the queries probing it; each query keeps a
    # size-k heap across its communities (numba)
    pair_q = np.concatenate([np.full(len(t), i, np.int64) for i, t in enumerate(probed)])
    pair_c = np.concatenate(probed).astype(np.int64)
    by_c = np.argsort(pair_c, kind="stable")
    pair_q, pair_c = pair_q[by_c], pair_c[by_c]
    starts = np.flatnonzero(np.r_[True, pair_c[1:] != pair_c[:-1]])
    ends = np.r_[starts[1:], len(pair_c)]
    heap_s = np.empty((q, k), np.float32)
    heap_t = np.empty((q, k), np.int64)
    heap_i = np.empty((q, k), np.int64)
    heap_n = np.zeros(q, np.int64)
    codes = index.sorted_codes
    for s, e in zip(starts, ends):
        c = int(pair_c[s])
        lo, hi = int(off[c]), int(off[c + 1])
        qs = pair_q[s:e]
        block = queries[qs] @ codes[lo:hi].T
        _push_block(block, qs, lo, excl_s, use_allowed, allowed_arr, order, heap_s, heap_t, heap_i, heap_n, k)
    out_i = np.empty((q, k), np.int64)
    out_sc = np.empty((q, k), np.float32)
    _drain_all(heap_s, heap_t, heap_i, heap_n, out_i, out_sc)
    return order[out_i], out_sc, scanned / max(index.n, 1)


@njit(cache=True, fastmath=True)
def _probe_one(codes, x, comms, off, k, ex, use_allowed, allowed_s, order, out_i, out_s):
    """One query: scan its probed communities, each dot product offered straight to a size-k
    heap (ties by smaller archive position)."""
    d = codes.shape[1]
    hs = np.empty(k, np.float32)
    ht = np.empty(k, np.int64)
    hi = np.empty(k, np.int64)
    size = 0
    for c in comms:
        for j in range(off[c], off[c + 1]):
            if j == ex or (use_allowed and not allowed_s[j]):
                continue
            s = np.float32(0.0)
            for t in range(d):
                s += codes[j, t] * x[t]
            if size == k and s < hs[0]:
                continue
            size = heap_push(hs, ht, hi, size, k, s, order[j], j)
    heap_drain(hs, ht, hi, size, out_i, out_s)


@njit(cache=True)
def _push_block(block, qs, lo, excl_s, use_allowed, allowed_s, order, heap_s, heap_t, heap_i, heap_n, k):
    """Offer block[r, t] (query qs[r], sorted item lo + t) to that query's heap."""
    for r in range(block.shape[0]):
        qi = qs[r]
        size = heap_n[qi]
        hs, ht, hi = heap_s[qi], heap_t[qi], heap_i[qi]
        ex = excl_s[qi]
        for t in range(block.shape[1]):
            j = lo + t
            v = block[r, t]
            if size == k and v < hs[0]:
                continue  # the common case, decided without a call
            if j == ex or (use_allowed and not allowed_s[j]):
                continue
            size = heap_push(hs, ht, hi, size, k, v, order[j], j)
        heap_n[qi] = size


@njit(cache=True)
def _drain_all(heap_s, heap_t, heap_i, heap_n, out_i, out_s):
    for qi in range(heap_s.shape[0]):
        heap_drain(heap_s[qi], heap_t[qi], heap_i[qi], heap_n[qi], out_i[qi], out_s[qi])
