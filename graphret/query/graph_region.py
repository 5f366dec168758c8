"""Region growing on the graph: Haq, Moradi & Wang's Algorithm 1 over the stored weighted kNN
graph, touching only what the walk and the growth reach.

For each query q:

1. **Edges.**  A graph walk (:func:`graphret.graph.walk.walk_query`, result heap ``ef``) scores
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
5. **Nearest item held** (``hold_nearest``, not Haq's; the search's default order uses it): the
   most similar item the walk found heads the results, then the region in join order, its last
   member dropped if the nearest was not in it.  Haq's choice of c maximises the quality gain,
   not the similarity, so q's single nearest item can sit in another community (on RetinaMNIST
   pixel codes the region's MRR was 0.015 below flat's until it held it:
   ``benchmarks/results/region_order``).

Only the quality terms decide the order (Haq's pure gain order); a similarity is computed only
for a node the walk touches or an item taken.  Results are ranked in the order they joined,
with their exact cosines; *compared* counts the distinct archive codes scored.  Filters:
``allowed`` rows and the query's own row (``exclude``) are never taken (q's edges go to allowed
rows only); the graph is still traversed through them by the walk, not by the growth.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from graphret.kernels.jit import njit, prange

from graphret.communities.kernels import QUALITY_CODES, join_gain
from graphret.communities.quality import check_resolution
from graphret.errors import InputError
from graphret.graph.knn import exact_search
from graphret.graph.layout import WalkLayout, renumber_rows
from graphret.graph.segments import row_sums
from graphret.graph.walk import (WalkFilter, WalkIndex, WalkInputs, WalkOptions, WalkScratch, WalkSlots, best_seen,
                                 returnable, threads_for, walk_inputs, walk_query, walk_work)
from graphret.kernels.vector import qdot

__all__ = ["graph_region_search", "region_checked", "RegionGraph", "DEFAULT_REGION_EF"]

#: result-heap size of the walk that finds q's edges (it needs knn_k of them, not K)
DEFAULT_REGION_EF = 16


class RegionArrays(NamedTuple):
    """What the growth reads (:class:`RegionGraph`'s arrays): the weighted graph (CSR) with
    ``same[p]``: edge p stays inside its row's community; ``degree``; ``labels``; the
    quality's totals per community ``e, a, n_c`` and ``W``; resolution ``g``, ``w_max``, the
    quality's code; ``knn_k``, how many edges a query gets."""

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    same: np.ndarray
    degree: np.ndarray
    labels: np.ndarray
    e: np.ndarray
    a: np.ndarray
    n_c: np.ndarray
    W: float
    g: float
    w_max: float
    qcode: int
    knn_k: int


class RegionSlots(NamedTuple):
    """Per-thread memory of the growth over n nodes, kept between calls: ``marks`` (node
    states, see :func:`_state`), ``counters`` (the last query stamp), ``work_i`` (position in
    the walk's ``seen``, frontier rows), ``work_f`` (frontier ``w(j, R)``, ``k_j``, gains)."""

    marks: np.ndarray  # uint64 (T, n)
    counters: np.ndarray  # uint64 (T,)
    work_i: np.ndarray  # int64 (T, 2, n)
    work_f: np.ndarray  # float64 (T, 3, n)


class Frontier(NamedTuple):
    """The members connected to R: row, ``w(j, R)``, ``k_j`` and their join gains."""

    rows: np.ndarray
    w: np.ndarray
    k: np.ndarray
    gains: np.ndarray


class QueryEdges(NamedTuple):
    """One query's edges (step 1): ``n`` rows and weights, the degree ``k_q`` and ``W' = W + k_q``."""

    rows: np.ndarray
    w: np.ndarray
    n: int
    k_q: float
    W2: float


class Touched(NamedTuple):
    """What one query's walk touched (``seen / seen_s``, the first ``n``), the query's own row
    ``ex``, the filter, its node states (``mark``, ``stamp``) and the communities it has
    grown (``visited[c] == r + 1`` for query r)."""

    seen: np.ndarray
    seen_s: np.ndarray
    n: int
    ex: int
    filt: tuple
    mark: np.ndarray
    stamp: np.uint64
    visited: np.ndarray
    r: int


class RegionOut(NamedTuple):
    """A batch's results: rows in join order and cosines (q, k), codes compared, found, and
    the chosen community per query."""

    rows: np.ndarray
    cosines: np.ndarray
    compared: np.ndarray
    found: np.ndarray
    chosen: np.ndarray


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
def _set_state(mark, j, stamp, state):
    mark[j] = (stamp << np.uint64(32)) | state


#: best_touched's community argument: any community, or none visited yet
ANY = -2
NOT_VISITED = -3


# (the hot loops below read a structure's arrays into locals once: numba counts references on
# every array taken out of a structure, which costs ~5% when done per node)
@njit(cache=True)
def best_touched(tq, labels, c):
    """The most similar touched item still available, in community c (any community when c
    is :data:`ANY`; in no visited community when c is :data:`NOT_VISITED`), ties by smaller
    row; -1 if none."""
    seen, seen_s, mark, stamp, visited, ex = tq.seen, tq.seen_s, tq.mark, tq.stamp, tq.visited, tq.ex
    use_allowed, allowed = tq.filt.use_allowed, tq.filt.allowed
    best = -1
    bs = np.float32(0.0)
    for p in range(tq.n):
        j = seen[p]
        lab = labels[j]
        if c >= 0 and lab != c:
            continue
        if c == NOT_VISITED and lab >= 0 and visited[lab] == tq.r + 1:
            continue
        if j == ex or (use_allowed and not allowed[j]) or _state(mark, j, stamp) == TAKEN:
            continue
        s = seen_s[p]
        if best < 0 or s > bs or (s == bs and j < best):
            best = j
            bs = s
    return best


@njit(cache=True, inline="always")
def _front_add(mark, stamp, fr, nf, j, w, k):
    """j joins the frontier at position nf with ``w(j, R) = w``, ``k_j = k``; returns nf + 1."""
    _set_state(mark, j, stamp, np.uint64(nf) + FRONT)
    fr.rows[nf] = j
    fr.w[nf] = w
    fr.k[nf] = k
    return nf + 1


@njit(cache=True)
def _first_frontier(rg, qe, tq, c, fr):
    """q's edges inside c start the frontier; returns its size."""
    mark, stamp, labels, degree = tq.mark, tq.stamp, rg.labels, rg.degree
    nf = 0
    for a in range(qe.n):
        j = qe.rows[a]
        if labels[j] != c or not returnable(j, tq.ex, tq.filt):
            continue
        st = _state(mark, j, stamp)
        if st == TAKEN:
            continue
        if st >= FRONT:
            pos = np.int64(st - FRONT)
            fr.w[pos] += qe.w[a]
            fr.k[pos] += qe.w[a]
        else:
            nf = _front_add(mark, stamp, fr, nf, j, qe.w[a], degree[j] + qe.w[a])
    return nf


@njit(cache=True)
def _best_front(rg, qe, fr, nf, eR, aR, nR):
    """Position of the frontier member with the largest join gain (ties: smaller row)."""
    rows, fw, fk, gains = fr.rows, fr.w, fr.k, fr.gains
    for p in range(nf):
        gains[p] = join_gain(rg.qcode, eR, aR, nR, fw[p], fk[p], qe.W2, rg.g, rg.w_max)
    bg = gains[0]
    for p in range(1, nf):
        bg = max(bg, gains[p])
    bp = -1
    for p in range(nf):
        if gains[p] == bg and (bp < 0 or rows[p] < rows[bp]):
            bp = p
    return bp


@njit(cache=True, error_model="numpy")
def grow_region(rg, qe, tq, c, need, fr, out, n_out):
    """Grow R = {q} inside community c (step 3 of the module docstring) until ``need`` more
    items are taken, appending them to ``out`` from ``n_out``; returns the new count.

    ``rg``: :class:`RegionArrays`; ``qe``: q's edges; ``tq``: what the walk touched (a restart
    takes the most similar) and the node states (see :func:`_state`); ``fr``: the frontier."""
    g_ptr, g_idx, g_w, g_same, degree = rg.indptr, rg.indices, rg.weights, rg.same, rg.degree
    mark, stamp, ex, use_allowed, allowed = tq.mark, tq.stamp, tq.ex, tq.filt.use_allowed, tq.filt.allowed
    f_w = fr.w
    nf = _first_frontier(rg, qe, tq, c, fr)
    eR = 0.0
    aR = qe.k_q
    nR = 1.0
    got = 0
    while got < need:
        wj = 0.0
        if nf == 0:
            # no member connects to R: the most similar touched member of c joins R
            best = best_touched(tq, rg.labels, c)
            if best < 0:
                break
            kj = degree[best]
        else:
            bp = _best_front(rg, qe, fr, nf, eR, aR, nR)
            best = fr.rows[bp]
            wj = f_w[bp]
            kj = fr.k[bp]
            last = nf - 1  # remove bp from the frontier (the last member takes its place)
            if bp != last:
                _front_add(mark, stamp, fr, bp, fr.rows[last], f_w[last], fr.k[last])
            nf -= 1
        _set_state(mark, best, stamp, TAKEN)
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
            elif nb != ex and (not use_allowed or allowed[nb]):
                # (q's edges were all in the first frontier, so nb has none)
                nf = _front_add(mark, stamp, fr, nf, nb, g_w[p], degree[nb])
    return n_out + got


@njit(cache=True)
def _query_edges(rg, w, n_seen, ex, filt, rows, sims, wts):
    """Step 1: q's edges, its ``knn_k`` most similar returnable touched items with cosine > 0
    (weight = cosine, at most 1)."""
    n_e = best_seen(w, n_seen, ex, filt, rows, sims)
    n_wq = 0
    k_q = 0.0
    for a in range(n_e):
        if sims[a] > 0:
            rows[n_wq] = rows[a]
            wts[n_wq] = min(float(sims[a]), 1.0)
            k_q += wts[n_wq]
            n_wq += 1
    W2 = rg.W + k_q if rg.W + k_q > 0 else 1.0
    return QueryEdges(rows, wts, n_wq, k_q, W2)


@njit(cache=True)
def _communities_by_gain(rg, qe, r, cslot, cstamp, cl, cw, cg):
    """Step 2: the communities of q's edges into ``cl`` by decreasing attach gain, then weight
    towards q, then label (``cstamp[c] == r + 1`` marks them); returns how many."""
    n_c = 0
    for a in range(qe.n):
        c = rg.labels[qe.rows[a]]
        if c < 0:
            continue
        if cstamp[c] != r + 1:
            cstamp[c] = r + 1
            cslot[c] = n_c
            cl[n_c] = c
            cw[n_c] = 0.0
            n_c += 1
        cw[cslot[c]] += qe.w[a]
    for a in range(n_c):
        c = cl[a]
        cg[a] = attach_gain(rg.qcode, rg.e[c], rg.a[c], rg.n_c[c], cw[a], qe.k_q, qe.W2, rg.g, rg.w_max)
    for a in range(n_c):  # selection sort (n_c <= knn_k)
        best = a
        for b in range(a + 1, n_c):
            if cg[b] > cg[best] or (cg[b] == cg[best] and (cw[b] > cw[best] or (cw[b] == cw[best] and cl[b] < cl[best]))):
                best = b
        cg[a], cg[best] = cg[best], cg[a]
        cw[a], cw[best] = cw[best], cw[a]
        cl[a], cl[best] = cl[best], cl[a]
    return n_c


@njit(cache=True, error_model="numpy")
def _grow_all(rg, qe, tq, cl, n_c, k, fr, taken):
    """Steps 3-4: grow community by community -- those of q's edges in order, then the
    community of the most similar touched item not taken (an item outside every community is
    taken by similarity) -- until k are taken or the touched items run out; returns how many."""
    got = 0
    nxt = 0
    while got < k:
        c = -1
        while nxt < n_c and c < 0:
            if tq.visited[cl[nxt]] != tq.r + 1:
                c = cl[nxt]
            nxt += 1
        while c < 0 and got < k:
            best = best_touched(tq, rg.labels, NOT_VISITED)
            if best < 0:
                break
            if rg.labels[best] < 0:  # outside every community: taken by similarity
                _set_state(tq.mark, best, tq.stamp, TAKEN)
                taken[got] = best
                got += 1
            else:
                c = rg.labels[best]
        if c < 0:
            break
        tq.visited[c] = tq.r + 1
        got = grow_region(rg, qe, tq, c, k - got, fr, taken, got)
    return got


@njit(cache=True)
def _nearest_first(taken, got, k, nearest, mark, stamp):
    """Step 5 (``hold_nearest``): the query's nearest item heads the results, the region
    following in join order (its last member dropped when K were taken); returns the count."""
    if _state(mark, nearest, stamp) == TAKEN:
        for b in range(got):
            if taken[b] == nearest:
                for a in range(b, 0, -1):
                    taken[a] = taken[a - 1]
                break
    else:
        _set_state(mark, nearest, stamp, TAKEN)
        got = min(got + 1, k)
        for a in range(got - 1, 0, -1):
            taken[a] = taken[a - 1]
    taken[0] = nearest
    return got


@njit(cache=True)
def _next_query_stamp(mark, counters, t):
    if counters[t] >= np.uint64(4294967294):
        mark[:] = 0
        counters[t] = 0
    counters[t] += np.uint64(1)
    return counters[t]


@njit(cache=True, error_model="numpy", interpretable=True)
def _region_range(index, Q, lo, hi, opts, filt, slots, rslots, t, rg, out, hold_nearest):
    """Queries lo..hi-1 with scratch slot t (the walk's and the growth's); from Python the named
    structures come as plain tuples (see :func:`graphret.graph.walk._walk_range`)."""
    index, opts, filt, slots, rslots = WalkIndex(*index), WalkOptions(*opts), WalkFilter(*filt), WalkSlots(*slots), RegionSlots(*rslots)
    rg, out = RegionArrays(*rg), RegionOut(*out)
    w = walk_work(slots, t, opts.ef, opts.n_entry)
    k = opts.k
    mark = rslots.marks[t]
    where = rslots.work_i[t, 0]
    fr = Frontier(rslots.work_i[t, 1], rslots.work_f[t, 0], rslots.work_f[t, 1], rslots.work_f[t, 2])
    kk = max(rg.knn_k, 1)
    wq_rows = np.empty(kk, np.int64)
    wq_w = np.empty(kk, np.float64)
    wq_s = np.empty(kk, np.float32)
    cl = np.empty(kk, np.int64)
    cw = np.empty(kk, np.float64)
    cg = np.empty(kk, np.float64)
    taken = np.empty(k, np.int64)
    C = rg.e.shape[0]
    cslot = np.zeros(C, np.int64)
    cstamp = np.zeros(C, np.int64)
    visited = np.zeros(C, np.int64)
    for r in range(lo, hi):
        qstamp = _next_query_stamp(mark, rslots.counters, t)
        q = Q[r]
        ex = filt.exclude[r]
        n_seen, _, cur, compared = walk_query(index, q, opts.ef, opts.n_entry, ex, filt, w, None)
        for p in range(n_seen):
            where[w.seen[p]] = p
        qe = _query_edges(rg, w, n_seen, ex, filt, wq_rows, wq_s, wq_w)
        tq = Touched(w.seen, w.seen_s, n_seen, ex, filt, mark, qstamp, visited, r)
        n_c = _communities_by_gain(rg, qe, r, cslot, cstamp, cl, cw, cg)
        if n_c > 0:
            out.chosen[r] = cl[0]
        else:
            j = best_touched(tq, rg.labels, ANY)
            out.chosen[r] = rg.labels[j] if j >= 0 else -1
        got = _grow_all(rg, qe, tq, cl, n_c, k, fr, taken)
        if hold_nearest and qe.n > 0:
            got = _nearest_first(taken, got, k, qe.rows[0], mark, qstamp)
        # cosines of the taken items: known for touched ones, computed for the others
        for b in range(got):
            j = taken[b]
            out.rows[r, b] = j
            if w.stamp[j] == cur:
                out.cosines[r, b] = w.seen_s[where[j]]
            else:
                out.cosines[r, b] = qdot(index.codes, j, q)
                compared += 1
        for b in range(got, k):
            out.rows[r, b] = -1
            out.cosines[r, b] = -np.inf
        out.found[r] = got
        out.compared[r] = compared


@njit(cache=True, parallel=True)
def _region_parallel(index, Q, opts, filt, slots, rslots, rg, out, hold_nearest):
    nq = Q.shape[0]
    T = slots[0].shape[0]  # slots.stamps
    step = (nq + T - 1) // T
    for t in prange(T):
        lo = t * step
        hi = min(nq, lo + step)
        if lo < hi:
            _region_range(index, Q, lo, hi, opts, filt, slots, rslots, t, rg, out, hold_nearest)


class RegionGraph:
    """What region growing on the graph reads, checked once: the store's weighted kNN graph
    (CSR ``indptr``, ``indices``, ``weights``), each item's community (``labels``, dense
    0..C-1, -1 for none) and the quality's totals per community (``e``, ``a``, ``n``) and
    ``W`` (as :func:`graphret.communities.quality.community_totals` returns them), the
    quality's name, resolution and ``w_max``, and ``knn_k``, the graph's k (how many edges a
    query gets).  ``degree`` (weighted, float64) and ``same`` (per edge: it stays inside its
    row's community) are computed from the graph when not given (a store's prepared tables
    give them: :mod:`graphret.query.prepared`)."""

    def __init__(self, indptr, indices, weights, labels, totals, *, quality: str = "newman",
                 resolution: float = 1.0, w_max: float = 1.0, knn_k: int = 10, degree=None, same=None) -> None:
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
        self._laid_out: tuple[WalkLayout, RegionGraph] | None = None
        # per edge: does it stay inside its row's community (growth follows only those)
        if same is None:
            rows = np.repeat(np.arange(n), np.diff(self.indptr))
            same = (self.labels[rows] == self.labels[self.indices]) & (self.labels[rows] >= 0)
        self.same = np.ascontiguousarray(same, dtype=np.bool_)
        if self.same.shape != self.indices.shape:
            raise InputError("{same} must hold one flag per edge of the graph", param="same")
        #: the arrays the kernels read, as one value (:class:`RegionArrays`, plain: see _region_range)
        self.arrays = tuple(RegionArrays(self.indptr, self.indices, self.weights, self.same, self.degree, self.labels, self.e,
                                   self.a, self.n_c, self.W, self.resolution, self.w_max, QUALITY_CODES[quality],
                                   self.knn_k))

    def in_layout(self, layout: WalkLayout) -> "RegionGraph":
        """This graph over a walk layout's positions (:mod:`graphret.graph.layout`: node p is
        row ``layout.order[p]``), made on the first call for that layout (one copy of the
        graph).  The growth reads the graph where the walk left off, so in community order
        its loads are nearby too; answers are the same rows, except that exact ties between
        communities fall to the smaller position rather than the smaller row."""
        done = self._laid_out
        if done is None or done[0] is not layout:
            if len(layout.order) != self.n:
                raise InputError(f"the layout has {len(layout.order)} items but the region graph {self.n}; make it for this archive")
            indptr, indices, weights = renumber_rows(self.indptr, self.indices, layout.order, layout.rank, self.weights)
            laid = RegionGraph(indptr, indices, weights, self.labels[layout.order], (self.e, self.a, self.n_c, self.W),
                               quality=self.quality, resolution=self.resolution, w_max=self.w_max, knn_k=self.knn_k,
                               degree=self.degree[layout.order])
            done = self._laid_out = (layout, laid)
        return done[1]

    @classmethod
    def from_graph(cls, graph, labels, *, quality: str = "newman", resolution: float = 1.0, w_max: float = 1.0,
                   knn_k: int = 10) -> "RegionGraph":
        """From a scipy CSR graph, or its arrays ``(indptr, indices, data)`` with sorted indices
        (no scipy needed), and a membership (totals computed here)."""
        from graphret.communities.partition import dense_labels
        from graphret.communities.quality import community_totals

        if isinstance(graph, tuple):
            indptr, indices, data = graph
        else:
            import scipy.sparse as sp

            G = sp.csr_matrix(graph)
            G.sort_indices()
            indptr, indices, data = G.indptr, G.indices, G.data
        dense = dense_labels(labels)[0]
        inside = dense >= 0
        # totals over the labelled items (unlabelled ones as their own singletons, then dropped)
        tmp = dense.copy()
        C = int(dense.max()) + 1 if inside.any() else 0
        tmp[~inside] = C + np.arange(int((~inside).sum()))
        e, a, cnt, W = community_totals((indptr, indices, data), tmp)
        return cls(indptr, indices, data, dense, (e[:C], a[:C], cnt[:C], W), quality=quality,
                   resolution=resolution, w_max=w_max, knn_k=knn_k)


class _RegionScratch:
    """Per-thread node states and frontiers (:class:`RegionSlots`), kept between calls."""

    _cache: dict[tuple[int, int], "_RegionScratch"] = {}

    def __init__(self, n: int, threads: int) -> None:
        self.slots = (np.zeros((threads, n), np.uint64), np.zeros(threads, np.uint64),  # RegionSlots, plain
                      np.empty((threads, 2, n), np.int64), np.empty((threads, 3, n), np.float64))

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
    hold_nearest: bool = False,
    layout: WalkLayout | None = None,
):
    """Haq's Algorithm 1 on the graph for each query (see the module docstring).

    ``walk``: ``(indptr, indices, entries)`` -- the walk lists and entry points of
    :mod:`graphret.graph.search_graph`; ``region``: the weighted graph, communities and quality
    (:class:`RegionGraph`); ``ef``: the walk's result heap; ``exclude`` / ``allowed`` as in
    :func:`graphret.graph.walk.graph_walk`; ``hold_nearest``: step 5 of the module docstring;
    ``layout``: the walk's inputs renumbered (:func:`graphret.graph.layout.walk_layout`), which
    unfiltered searches then run over, with the region graph renumbered alike.

    Returns (rows int64 (q, k) in the order they joined the region, cosines float32 (q, k),
    codes compared int64 (q,)) and, with ``return_chosen``, the chosen community per query."""
    n = np.shape(codes)[0]
    if region.n != n:
        raise InputError(f"the region graph has {region.n} items but the archive {n}; pass the archive's graph")
    w_ptr, w_idx, entries = walk
    w = walk_inputs(codes, w_ptr, w_idx, queries, k, entries=entries, entry_codes=entry_codes, ef=ef, n_entry=n_entry,
                    exclude=exclude, allowed=allowed, layout=layout)
    return region_checked(w, region, threads=threads, return_chosen=return_chosen, hold_nearest=hold_nearest)


def region_checked(w: WalkInputs, region: RegionGraph, *, threads: int | None = None, return_chosen: bool = False,
                   hold_nearest: bool = False):
    """:func:`graph_region_search` on walk inputs already checked (:func:`walk_inputs`, or
    :meth:`WalkInputs.with_queries` of inputs a searcher prepared once) and a region graph of
    the same archive."""
    n, nq, k = w.n, len(w.queries), w.k
    index, filt, layout = w.laid_out()  # with a layout: the region graph over its positions too
    rg = region if layout is None else region.in_layout(layout)
    T = threads_for(threads, nq)
    slots = WalkScratch.get(n, T).slots
    rslots = _RegionScratch.get(n, T).slots
    out = (np.empty((nq, k), np.int64), np.empty((nq, k), np.float32), np.empty(nq, np.int64),  # RegionOut
           np.empty(nq, np.int64), np.empty(nq, np.int64))
    opts = (w.ef, w.n_entry, k)  # WalkOptions
    if T == 1:
        _region_range(index, w.queries, 0, nq, opts, filt, slots, rslots, 0, rg.arrays, out, bool(hold_nearest))
    else:
        _region_parallel(index, w.queries, opts, filt, slots, rslots, rg.arrays, out, bool(hold_nearest))
    out_i, out_s, out_n, found, chosen = out
    if layout is not None:
        out_i = np.where(out_i >= 0, layout.order[np.maximum(out_i, 0)], -1)
    for i in np.flatnonzero(found < k):  # past every touched item: complete by an exact scan (rare)
        mask = w.allowed.copy() if w.use_allowed else np.ones(n, np.bool_)
        mask[out_i[i, : found[i]]] = False
        if w.exclude[i] >= 0:
            mask[w.exclude[i]] = False
        rows = np.flatnonzero(mask)
        need = k - int(found[i])
        idx, sc = exact_search(w.codes[rows], w.queries[i : i + 1], need)
        out_i[i, found[i]:] = rows[idx[0]]
        out_s[i, found[i]:] = sc[0]
        out_n[i] = min(int(out_n[i]) + len(rows), n)
    result = (out_i, out_s, out_n)
    return result + (chosen,) if return_chosen else result
