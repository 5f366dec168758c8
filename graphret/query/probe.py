"""Probe search (the IVF-style bridge to FAISS): exact top-K inside the P communities whose
centroids are nearest to the query.

With P = every community this is flat search.  When the P communities hold fewer than K
candidates (after filters and the query itself), further communities are probed in centroid
order until K exist, so a probe never returns fewer than K results when the archive has K.

Batches are grouped by community: every probed community is scored once for all the queries
that probe it (one matrix product per community), then each query merges its P partial top-K
lists.
"""

from __future__ import annotations

import numpy as np

from graphret.errors import InputError
from graphret.query.flat import check_k, topk_rows
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
        raise InputError(f"--probe must be a whole number >= 1, got {n_probe!r}")
    q = len(queries)
    C = index.n_communities
    off, rank = index.off, index.rank
    allowed_s = index.positions_in_sorted(allowed)
    sizes = np.diff(off)
    if allowed_s is not None:
        counts = np.add.reduceat(allowed_s.astype(np.int64), off[:-1]) if index.n else np.zeros(C, np.int64)
        counts[sizes == 0] = 0
    else:
        counts = sizes.copy()
    total = int(counts.sum())
    excl_s = np.full(q, -1, np.int64)
    if exclude is not None:
        exclude = np.asarray(exclude, np.int64)
        ok = exclude >= 0
        excl_s[ok] = rank[exclude[ok]]
        if allowed_s is not None:
            excl_s[ok & ~allowed_s[np.maximum(excl_s, 0)]] = -1
    check_k(k, total - (1 if np.any(excl_s >= 0) else 0), what="the archive after filters")

    cscores = queries @ index.centroids.T  # (q, C)
    P = min(int(n_probe), C)
    probed: list[np.ndarray] = []
    for i in range(q):
        need = k + (1 if excl_s[i] >= 0 else 0)
        top = np.argpartition(-cscores[i], P - 1)[:P] if P < C else np.arange(C)
        top = top[np.argsort(-cscores[i, top], kind="stable")]
        if counts[top].sum() < need:
            full = np.argsort(-cscores[i], kind="stable")
            cum = np.cumsum(counts[full])
            top = full[: int(np.searchsorted(cum, need)) + 1]
        probed.append(top)

    # group (query, community) pairs by community
    pair_q = np.concatenate([np.full(len(t), i, np.int64) for i, t in enumerate(probed)])
    pair_c = np.concatenate(probed)
    by_c = np.argsort(pair_c, kind="stable")
    pair_q, pair_c = pair_q[by_c], pair_c[by_c]
    starts = np.flatnonzero(np.r_[True, pair_c[1:] != pair_c[:-1]])
    ends = np.r_[starts[1:], len(pair_c)]
    cand_idx: list[list[np.ndarray]] = [[] for _ in range(q)]
    cand_sc: list[list[np.ndarray]] = [[] for _ in range(q)]
    scanned = np.zeros(q, np.float64)
    codes = index.sorted_codes
    for s, e in zip(starts, ends):
        c = int(pair_c[s])
        lo, hi = int(off[c]), int(off[c + 1])
        qs = pair_q[s:e]
        members = np.arange(lo, hi)
        if allowed_s is not None:
            members = members[allowed_s[lo:hi]]
            if len(members) == 0:
                continue
            block = queries[qs] @ codes[members].T
        else:
            block = queries[qs] @ codes[lo:hi].T
        scanned[qs] += len(members)
        ex = excl_s[qs]
        hit = (ex >= lo) & (ex < hi)
        if hit.any():
            for r in np.flatnonzero(hit):
                where = np.searchsorted(members, ex[r])
                if where < len(members) and members[where] == ex[r]:
                    block[r, where] = -np.inf
        kk = min(k, block.shape[1])
        idx, sc = topk_rows(block, kk)
        for r, qi in enumerate(qs):
            cand_idx[qi].append(members[idx[r]])
            cand_sc[qi].append(sc[r])

    out_pos = np.empty((q, k), np.int64)
    out_sc = np.empty((q, k), np.float32)
    for i in range(q):
        ci = np.concatenate(cand_idx[i])
        cs = np.concatenate(cand_sc[i])
        # ties by smaller archive position, as flat search breaks them
        positions = index.order[ci]
        o = np.lexsort((positions, -cs))[:k]
        out_pos[i], out_sc[i] = positions[o], cs[o]
    return out_pos, out_sc, scanned / max(index.n, 1)
