"""Region growing on the graph: Haq, Moradi & Wang's Algorithm 1 over the stored weighted kNN
graph, touching only what the walk and the growth reach.

For each query q:

1. **Edges.**  A graph walk (:func:`graphret.graph.walk.graph_walk`, result heap ``ef``) scores
   the nodes it touches; q's edges are its ``knn_k`` most similar returnable ones with cosine
   > 0 (weight = cosine, as in the stored graph), ``k_q`` their sum.
2. **Choose** the community c with the largest gain of attaching q -- CNM's merge gain of {q}
   and c, ``term(c + q) - term(c) - term({q})`` with the store's quality term
   (:mod:`graphret.communities.quality`) in the graph with q's edges added (``W' = W + k_q``);
   Newman: ``w(q,c)/W' - g k_q a_c / (2W'^2)``.  Ties: more weight towards c, then smaller c.
3. **Grow** R = {q} inside c along stored edges: add the member j connected to R with the
   largest gain ``term(R + j) - term({j})`` (Newman: ``w(j,R)/W' - g k_j a_R / (2W'^2)`` up to a
   constant; ties: smaller row), then add j's edges inside c to its neighbours' ``w(., R)``.
   When no member connects to R, the most similar member that the walk touched joins R and
   growing goes on from it.  Stop at K.
4. **Next community**: when c is exhausted, the other communities of q's edges by decreasing
   attach gain, then the community of the most similar touched item not taken yet, and so on.
   Past every touched item, the K are completed by an exact scan (rare: K beyond what the walk
   touched).

Only the quality terms decide the order (Haq's pure gain order); a similarity is computed only
for a node the walk touches or an item taken.  Results are ranked in the order they joined,
with their exact cosines; *compared* counts the distinct archive codes scored.  Filters:
``allowed`` rows and the query's own row (``exclude``) are never taken (q's edges go to allowed
rows only); the graph is still traversed through them by the walk, not by the growth.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from graphret.communities.kernels import QUALITY_CODES, join_gain
from graphret.communities.quality import check_resolution
from graphret.errors import InputError
from graphret.graph.knn import exact_search
from graphret.graph.segments import row_sums
from graphret.graph.walk import (
    WalkInputs,
    WalkScratch,
    best_seen,
    next_stamp,
    qdot,
    score_entries,
    threads_for,
    walk_inputs,
    walk_one,
)

__all__ = ["graph_region_search", "region_checked", "RegionGraph", "DEFAULT_REGION_EF"]

#: result-heap size of the walk that finds q's edges (it needs knn_k of them, not K)
DEFAULT_REGION_EF = 16

@njit(cache=True)
def attach_gain(qcode, e_c, a_c, n_c, w_qc, k_q, W2, g, w_max):
    """Gain of joining {q} (degree k_q, w_qc of it towards c) to community c in the graph with
    q's edges added (``a_c' = a_c + w_qc``): the one join gain of
    :mod:`graphret.communities.kernels`."""
    return join_gain(qcode, e_c, a_c + w_qc, n_c, w_qc, k_q, W2, g, w_max)


# Per-node state of the query being answered, one uint64 per node: the query's stamp in the
# high 32 bits, and in the low bits TAKEN, or frontier position + FRONT (a node's frontier only
# matters while its own community grows, and each community grows once per query).
TAKEN = np.uint64(1)
FRONT = np.uint64(2)
LOW = np.uint64(0xFFFFFFFF)


@njit(cache=True, inline="always")
def _state(mark, j, stamp):
    """0: untouched by this query; 1: taken; >= 2: frontier position + 2."""
    v = mark[j]
    if (v >> np.uint64(32)) != stamp:
        return np.uint64(0)
    return v & LOW


@njit(cache=True, inline="always")
def _returnable(j, ex, use_allowed, allowed):
    return j != ex and (not use_allowed or allowed[j])


@njit(cache=True)
def best_touched(seen, seen_s, n_seen, labels, c, ex, use_allowed, allowed, mark, stamp):
    """The most similar touched item still available, in community c (any community when c
    is -2), ties by smaller row; -1 if none."""
    best = -1
    bs = np.float32(0.0)
    for p in range(n_seen):
        j = seen[p]
        if c != -2 and labels[j] != c:
            continue
        if not _returnable(j, ex, use_allowed, allowed) or _state(mark, j, stamp) == TAKEN:
            continue
        s = seen_s[p]
        if best < 0 or s > bs or (s == bs and j < best):
            best = j
            bs = s
    return best


@njit(cache=True, error_model="numpy")
def grow_region(qcode, c, need, g_ptr, g_idx, g_w, g_same, degree, labels, wq_nodes, wq_w, n_wq, k_q, W2, g, w_max,
                seen, seen_s, n_seen, ex, use_allowed, allowed, mark, stamp, f_id, f_w, f_k, gains, out, n_out):
    """Grow R = {q} inside community c (step 3 of the module docstring) until ``need`` more
    items are taken, appending them to ``out`` from ``n_out``; returns the new count.

    ``g_*``: the weighted graph (CSR) and ``g_same[p]``: edge p stays inside its row's
    community; ``wq_nodes / wq_w``: q's edges; ``seen / seen_s``: the items the walk touched
    and their cosines (a restart takes the most similar); ``mark / stamp``: the per-node state
    (see :func:`_state`); ``f_*``: the frontier (members connected to R: row, ``w(j, R)``,
    ``k_j``)."""
    nf = 0
    for a in range(n_wq):  # q's edges inside c start the frontier
        j = wq_nodes[a]
        if labels[j] != c or not _returnable(j, ex, use_allowed, allowed):
            continue
        st = _state(mark, j, stamp)
        if st == TAKEN:
            continue
        if st >= FRONT:
            pos = np.int64(st - FRONT)
            f_w[pos] += wq_w[a]
            f_k[pos] += wq_w[a]
        else:
            mark[j] = (stamp << np.uint64(32)) | (np.uint64(nf) + FRONT)
            f_id[nf] = j
            f_w[nf] = wq_w[a]
            f_k[nf] = degree[j] + wq_w[a]
            nf += 1
    eR = 0.0
    aR = k_q
    nR = 1.0
    got = 0
    while got < need:
        best = -1
        wj = 0.0
        kj = 0.0
        if nf == 0:
            # no member connects to R: the most similar touched member of c joins R
            best = best_touched(seen, seen_s, n_seen, labels, c, ex, use_allowed, allowed, mark, stamp)
            if best < 0:
                break
            kj = degree[best]
        else:
            # the gain of each frontier member joining R (communities.kernels.join_gain)
            for p in range(nf):
                gains[p] = join_gain(qcode, eR, aR, nR, f_w[p], f_k[p], W2, g, w_max)
            bg = gains[0]
            for p in range(1, nf):
                bg = max(bg, gains[p])
            bp = -1
            for p in range(nf):  # the best gain; ties: smaller row
                if gains[p] == bg and (bp < 0 or f_id[p] < f_id[bp]):
                    bp = p
            best = f_id[bp]
            wj = f_w[bp]
            kj = f_k[bp]
            last = nf - 1  # remove bp from the frontier (the last member takes its place)
            if bp != last:
                moved = f_id[last]
                f_id[bp] = moved
                f_w[bp] = f_w[last]
                f_k[bp] = f_k[last]
                mark[moved] = (stamp << np.uint64(32)) | (np.uint64(bp) + FRONT)
            nf -= 1
        mark[best] = (stamp << np.uint64(32)) | TAKEN
        out[n_out + got] = best
        got += 1
        eR += wj
        aR += kj
        nR += 1.0
        for p in range(g_ptr[best], g_ptr[best + 1]):
            if not g_same[p]:
                continue
            nb = g_idx[p]
            st = _state(mark, nb, stamp)
            if st == TAKEN:
                continue
            if st >= FRONT:
                f_w[np.int64(st - FRONT)] += g_w[p]
            elif _returnable(nb, ex, use_allowed, allowed):
                # (q's edges were all in the first frontier, so nb has none)
                mark[nb] = (stamp << np.uint64(32)) | (np.uint64(nf) + FRONT)
                f_id[nf] = nb
                f_w[nf] = g_w[p]
                f_k[nf] = degree[nb]
                nf += 1
    return n_out + got


@njit(cache=True, error_model="numpy")
def _region_range(X, Q, lo, hi, w_ptr, w_idx, entries, EC, n_entry, ef, g_ptr, g_idx, g_w, g_same, degree, labels,
                  e_tot, a_tot, n_tot, W, g, w_max, qcode, knn_k, k, exclude, use_allowed, allowed,
                  stamps, counters, t, work_s, work_i, marks, counters2, rwork_i, rwork_f,
                  out_i, out_s, out_n, out_found, out_chosen):
    stamp = stamps[t]
    mark = marks[t]
    cand_s = work_s[t, 0]
    seen_s = work_s[t, 1]
    cand_i = work_i[t, 0]
    seen = work_i[t, 1]
    expanded = work_i[t, 2]
    where = rwork_i[t, 0]
    f_id = rwork_i[t, 1]
    f_w = rwork_f[t, 0]
    f_k = rwork_f[t, 1]
    gains = rwork_f[t, 2]
    res_s = np.empty(ef, np.float32)
    res_t = np.empty(ef, np.int64)
    res_i = np.empty(ef, np.int64)
    seed_s = np.empty(max(n_entry, 1), np.float32)
    seed_j = np.empty(max(n_entry, 1), np.int64)
    kk = max(knn_k, 1)
    top_s = np.empty(kk, np.float32)
    top_t = np.empty(kk, np.int64)
    top_i = np.empty(kk, np.int64)
    wq_nodes = np.empty(kk, np.int64)
    wq_w = np.empty(kk, np.float64)
    wq_s = np.empty(kk, np.float32)
    cl = np.empty(kk, np.int64)
    cw = np.empty(kk, np.float64)
    cg = np.empty(kk, np.float64)
    taken = np.empty(k, np.int64)
    C = e_tot.shape[0]
    cslot = np.zeros(C, np.int64)
    cstamp = np.zeros(C, np.int64)
    for r in range(lo, hi):
        cur = next_stamp(stamp, counters, t)
        if counters2[t] >= np.uint64(4294967294):
            mark[:] = 0
            counters2[t] = 0
        counters2[t] += np.uint64(1)
        qstamp = counters2[t]
        q = Q[r]
        ex = exclude[r]
        m = score_entries(EC, entries, q, n_entry, seed_s, seed_j)
        _, n_seen, _ = walk_one(X, w_ptr, w_idx, q, seed_s, seed_j, m, ef, ex, use_allowed, allowed,
                                stamp, cur, cand_s, cand_i, res_s, res_t, res_i, seen, seen_s, expanded)
        compared = entries.shape[0] + n_seen - m
        for p in range(n_seen):
            where[seen[p]] = p
        # 1. q's edges: its knn_k most similar returnable touched items with cosine > 0
        n_e = best_seen(seen, seen_s, n_seen, knn_k, ex, use_allowed, allowed, top_s, top_t, top_i, wq_nodes, wq_s)
        n_wq = 0
        k_q = 0.0
        for a in range(n_e):
            if wq_s[a] > 0:
                wq_nodes[n_wq] = wq_nodes[a]
                wq_w[n_wq] = min(float(wq_s[a]), 1.0)
                k_q += wq_w[n_wq]
                n_wq += 1
        W2 = W + k_q if W + k_q > 0 else 1.0
        # 2. the communities of q's edges, by decreasing attach gain
        n_c = 0
        for a in range(n_wq):
            c = labels[wq_nodes[a]]
            if c < 0:
                continue
            if cstamp[c] != r + 1:
                cstamp[c] = r + 1
                cslot[c] = n_c
                cl[n_c] = c
                cw[n_c] = 0.0
                n_c += 1
            cw[cslot[c]] += wq_w[a]
        for a in range(n_c):
            c = cl[a]
            cg[a] = attach_gain(qcode, e_tot[c], a_tot[c], n_tot[c], cw[a], k_q, W2, g, w_max)
        for a in range(n_c):  # gain desc, then weight desc, then label asc (n_c <= knn_k)
            best = a
            for b in range(a + 1, n_c):
                if cg[b] > cg[best] or (cg[b] == cg[best] and (cw[b] > cw[best] or (cw[b] == cw[best] and cl[b] < cl[best]))):
                    best = b
            cg[a], cg[best] = cg[best], cg[a]
            cw[a], cw[best] = cw[best], cw[a]
            cl[a], cl[best] = cl[best], cl[a]
        if n_c > 0:
            out_chosen[r] = cl[0]
        else:
            j = best_touched(seen, seen_s, n_seen, labels, -2, ex, use_allowed, allowed, mark, qstamp)
            out_chosen[r] = labels[j] if j >= 0 else -1
        # 3./4. grow community by community
        got = 0
        visited = -(r + 1)  # cstamp value of a visited community
        nxt = 0
        while got < k:
            c = -1
            while nxt < n_c and c < 0:
                if cstamp[cl[nxt]] != visited:
                    c = cl[nxt]
                nxt += 1
            while c < 0 and got < k:
                # the most similar available touched item not in a visited community
                best = -1
                bs = np.float32(0.0)
                for p in range(n_seen):
                    j = seen[p]
                    if labels[j] >= 0 and cstamp[labels[j]] == visited:
                        continue
                    if not _returnable(j, ex, use_allowed, allowed) or _state(mark, j, qstamp) == TAKEN:
                        continue
                    if best < 0 or seen_s[p] > bs or (seen_s[p] == bs and j < best):
                        best = j
                        bs = seen_s[p]
                if best < 0:
                    break
                if labels[best] < 0:  # outside every community: taken by similarity
                    mark[best] = (qstamp << np.uint64(32)) | TAKEN
                    taken[got] = best
                    got += 1
                else:
                    c = labels[best]
            if c < 0:
                break
            cstamp[c] = visited
            got = grow_region(qcode, c, k - got, g_ptr, g_idx, g_w, g_same, degree, labels, wq_nodes, wq_w, n_wq, k_q,
                              W2, g, w_max, seen, seen_s, n_seen, ex, use_allowed, allowed, mark, qstamp,
                              f_id, f_w, f_k, gains, taken, got)
        # cosines of the taken items: known for touched ones, computed for the others
        for b in range(got):
            j = taken[b]
            out_i[r, b] = j
            if stamp[j] == cur:
                out_s[r, b] = seen_s[where[j]]
            else:
                out_s[r, b] = qdot(X, j, q)
                compared += 1
        for b in range(got, k):
            out_i[r, b] = -1
            out_s[r, b] = -np.inf
        out_found[r] = got
        out_n[r] = compared


@njit(cache=True, parallel=True)
def _region_parallel(X, Q, w_ptr, w_idx, entries, EC, n_entry, ef, g_ptr, g_idx, g_w, g_same, degree, labels,
                     e_tot, a_tot, n_tot, W, g, w_max, qcode, knn_k, k, exclude, use_allowed, allowed,
                     stamps, counters, work_s, work_i, marks, counters2, rwork_i, rwork_f,
                     out_i, out_s, out_n, out_found, out_chosen):
    nq = Q.shape[0]
    T = stamps.shape[0]
    step = (nq + T - 1) // T
    for t in prange(T):
        lo = t * step
        hi = min(nq, lo + step)
        if lo < hi:
            _region_range(X, Q, lo, hi, w_ptr, w_idx, entries, EC, n_entry, ef, g_ptr, g_idx, g_w, g_same, degree, labels,
                          e_tot, a_tot, n_tot, W, g, w_max, qcode, knn_k, k, exclude, use_allowed, allowed,
                          stamps, counters, t, work_s, work_i, marks, counters2, rwork_i, rwork_f,
                          out_i, out_s, out_n, out_found, out_chosen)


class RegionGraph:
    """What region growing on the graph reads, checked once: the store's weighted kNN graph
    (CSR ``indptr``, ``indices``, ``weights``), each item's community (``labels``, dense
    0..C-1, -1 for none) and the quality's totals per community (``e``, ``a``, ``n``) and
    ``W`` (as :func:`graphret.communities.quality.community_totals` returns them), the
    quality's name, resolution and ``w_max``, and ``knn_k``, the graph's k (how many edges a
    query gets).  ``degree`` (weighted, float64) is computed from the graph when not given."""

    def __init__(self, indptr, indices, weights, labels, totals, *, quality: str = "newman",
                 resolution: float = 1.0, w_max: float = 1.0, knn_k: int = 10, degree=None) -> None:
        # compact dtypes: the growth reads these at random, so smaller is faster (the stored
        # weights are float32 cosines, so float32 loses nothing)
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(indices, dtype=np.int32)
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        n = len(self.indptr) - 1
        if len(self.indices) != self.indptr[-1] or len(self.weights) != len(self.indices):
            raise InputError("the region graph's indptr, indices and weights do not fit together; pass graph.indptr, graph.indices, graph.data")
        self.labels = np.ascontiguousarray(labels, dtype=np.int32)
        if self.labels.shape != (n,):
            raise InputError(f"{{labels}} must give one community per item ({n}), got shape {self.labels.shape}", param="labels")
        e, a, cnt, W = totals
        self.e = np.ascontiguousarray(e, dtype=np.float64)
        self.a = np.ascontiguousarray(a, dtype=np.float64)
        self.n_c = np.ascontiguousarray(cnt, dtype=np.float64)
        self.W = float(W)
        if not (len(self.e) == len(self.a) == len(self.n_c)) or (n and self.labels.max() >= len(self.e)):
            raise InputError("{totals} must hold (e, a, n) for every community label and W; use community_totals(graph, labels)", param="totals")
        if quality not in QUALITY_CODES:
            raise InputError(f"unknown quality {quality!r}; use {{quality=newman}} or {{quality=haq}}", param="quality")
        self.quality = quality
        self.resolution = check_resolution(resolution)
        self.w_max = float(w_max)
        if isinstance(knn_k, bool) or not isinstance(knn_k, (int, np.integer)) or knn_k < 1:
            raise InputError(f"{{knn_k}} must be a whole number >= 1, got {knn_k!r}", param="knn_k")
        self.knn_k = int(knn_k)
        if degree is None:
            degree = row_sums(self.weights.astype(np.float64), self.indptr)
        self.degree = np.ascontiguousarray(degree, dtype=np.float64)
        self.n = n
        # per edge: does it stay inside its row's community (growth follows only those)
        rows = np.repeat(np.arange(n), np.diff(self.indptr))
        self.same = np.ascontiguousarray((self.labels[rows] == self.labels[self.indices]) & (self.labels[rows] >= 0))

    @classmethod
    def from_graph(cls, graph, labels, *, quality: str = "newman", resolution: float = 1.0, w_max: float = 1.0,
                   knn_k: int = 10) -> "RegionGraph":
        """From a scipy CSR graph and a membership (totals computed here)."""
        import scipy.sparse as sp

        from graphret.communities.quality import community_totals

        G = sp.csr_matrix(graph)
        G.sort_indices()
        labels = np.asarray(labels, np.int64)
        inside = labels >= 0
        dense = np.full(len(labels), -1, np.int64)
        if inside.any():
            dense[inside] = np.unique(labels[inside], return_inverse=True)[1].ravel()
        # totals over the labelled items (unlabelled ones as their own singletons, then dropped)
        tmp = dense.copy()
        C = int(dense.max()) + 1 if inside.any() else 0
        tmp[~inside] = C + np.arange(int((~inside).sum()))
        e, a, cnt, W = community_totals(G, tmp)
        return cls(G.indptr, G.indices, G.data, dense, (e[:C], a[:C], cnt[:C], W), quality=quality,
                   resolution=resolution, w_max=w_max, knn_k=knn_k)


class _RegionScratch:
    """Per-thread node states (see :func:`_state`), kept between calls."""

    _cache: dict[tuple[int, int], "_RegionScratch"] = {}

    def __init__(self, n: int, threads: int) -> None:
        self.marks = np.zeros((threads, n), np.uint64)
        self.counters = np.zeros(threads, np.uint64)
        self.work_i = np.empty((threads, 2, n), np.int64)  # where (position in seen), frontier rows
        self.work_f = np.empty((threads, 3, n), np.float64)  # frontier w(j, R), k_j, gains

    @classmethod
    def get(cls, n: int, threads: int) -> "_RegionScratch":
        key = (int(n), int(threads))
        if key not in cls._cache:
            if len(cls._cache) > 2:
                cls._cache.clear()
            cls._cache[key] = _RegionScratch(n, threads)
        return cls._cache[key]


def graph_region_search(
    codes: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    walk: tuple[np.ndarray, np.ndarray, np.ndarray],
    region: RegionGraph,
    entry_codes: np.ndarray | None = None,
    ef: int = DEFAULT_REGION_EF,
    n_entry: int = 2,
    exclude: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    threads: int | None = None,
    return_chosen: bool = False,
):
    """Haq's Algorithm 1 on the graph for each query (see the module docstring).

    ``walk``: ``(indptr, indices, entries)`` -- the walk lists and entry points of
    :mod:`graphret.graph.search_graph`; ``region``: the weighted graph, communities and quality
    (:class:`RegionGraph`); ``ef``: the walk's result heap; ``exclude`` / ``allowed`` as in
    :func:`graphret.graph.walk.graph_walk`.

    Returns (rows int64 (q, k) in the order they joined the region, cosines float32 (q, k),
    codes compared int64 (q,)) and, with ``return_chosen``, the chosen community per query."""
    n = np.shape(codes)[0]
    if region.n != n:
        raise InputError(f"the region graph has {region.n} items but the archive {n}; pass the archive's graph")
    w_ptr, w_idx, entries = walk
    w = walk_inputs(codes, w_ptr, w_idx, queries, k, entries=entries, entry_codes=entry_codes, ef=ef, n_entry=n_entry,
                    exclude=exclude, allowed=allowed)
    return region_checked(w, region, threads=threads, return_chosen=return_chosen)


def region_checked(w: WalkInputs, region: RegionGraph, *, threads: int | None = None, return_chosen: bool = False):
    """:func:`graph_region_search` on walk inputs already checked (:func:`walk_inputs`, or
    :meth:`WalkInputs.with_queries` of inputs a searcher prepared once) and a region graph of
    the same archive."""
    n = w.n
    codes, w_ptr, w_idx, queries, entries, entry_codes = w.codes, w.indptr, w.indices, w.queries, w.entries, w.entry_codes
    nq, k, ef, n_entry, ex, use_allowed, allowed = len(w.queries), w.k, w.ef, w.n_entry, w.exclude, w.use_allowed, w.allowed
    T = threads_for(threads, nq)
    ws = WalkScratch.get(n, T)
    rs = _RegionScratch.get(n, T)
    out_i = np.empty((nq, k), np.int64)
    out_s = np.empty((nq, k), np.float32)
    out_n = np.empty(nq, np.int64)
    found = np.empty(nq, np.int64)
    chosen = np.empty(nq, np.int64)
    args = (codes, queries)
    rest = (w_ptr, w_idx, entries, entry_codes, n_entry, ef, region.indptr, region.indices, region.weights,
            region.same, region.degree, region.labels, region.e, region.a, region.n_c, region.W, region.resolution,
            region.w_max, QUALITY_CODES[region.quality], region.knn_k, k, ex, use_allowed, allowed)
    if T == 1:
        _region_range(*args, 0, nq, *rest, ws.stamps, ws.counters, 0, ws.work_s, ws.work_i, rs.marks, rs.counters,
                      rs.work_i, rs.work_f, out_i, out_s, out_n, found, chosen)
    else:
        _region_parallel(*args, *rest, ws.stamps, ws.counters, ws.work_s, ws.work_i, rs.marks, rs.counters,
                         rs.work_i, rs.work_f, out_i, out_s, out_n, found, chosen)
    short = np.flatnonzero(found < k)
    for i in short:  # past every touched item: complete by an exact scan (rare)
        mask = allowed.copy() if use_allowed else np.ones(n, np.bool_)
        mask[out_i[i, : found[i]]] = False
        if ex[i] >= 0:
            mask[ex[i]] = False
        rows = np.flatnonzero(mask)
        need = k - int(found[i])
        idx, sc = exact_search(codes[rows], queries[i : i + 1], need)
        out_i[i, found[i]:] = rows[idx[0]]
        out_s[i, found[i]:] = sc[0]
        out_n[i] = min(int(out_n[i]) + len(rows), n)
    result = (out_i, out_s, out_n)
    return result + (chosen,) if return_chosen else result
