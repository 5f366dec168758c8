"""Build-time neighbour lists for the graph walk (:mod:`graphret.graph.walk`) and its entry points.

A plain kNN graph is a poor graph to walk: its lists are redundant (a node's ten nearest
often all lie on one side of it), it has hubs, and, having only short edges, a greedy walk
stalls far from the query.  The lists built here follow HNSW's layer 0, NSG and Vamana
(Malkov & Yashunin 2018; Fu et al. 2019; Subramanya et al. 2019):

1. **Candidates** of node i: its kNN lists (or graph neighbours) and, with ``expand=True``,
   their neighbours too (one NN-descent step), scored exactly against i; the ``pool`` most
   similar are kept, by decreasing cosine.  A build above :data:`CHEAP_WALK_ABOVE` items passes
   instead the kNN search's own :data:`SEARCH_CANDIDATES` most similar codes of each item
   (:func:`graphret.graph.build.knn_graph_and_candidates`: FAISS IVF compares each code with a
   few thousand for its k nearest, so these are nearly exact at the cost of merging them).  (Without kNN lists: ``max_degree`` random nodes,
   seeded -- Vamana's start.)
2. **Diversify** (the relative-neighbourhood rule): walk the candidates from the most
   similar; keep ``j`` unless a neighbour ``n`` already kept is closer to ``j`` than ``i`` is,
   ``alpha * d(n, j) <= d(i, j)`` with ``d^2 = 2 - 2 cos`` (``alpha = 1``: HNSW / NSG; larger
   ``alpha`` keeps more long edges, Vamana).  At most ``max_degree`` are kept.  Exact
   duplicates of i never prune (they would prune everything else).
3. **Reverse edges**: every kept ``i -> j`` also offers ``j -> i``.  A node whose forward and
   reverse lists together exceed ``max_degree`` is diversified again over their union (as HNSW
   prunes a neighbour's list when a new link overflows it).
4. **Walk-based passes** (``passes``, NSG / Vamana): each node walks the current lists from
   the global medoid towards its own code (result heap ``ef_construction``); the nodes
   expanded on the way -- near ones and the far ones the walk crossed -- and its current
   neighbours are its new candidates, diversified as in 2, then 3 again.  These long edges
   make the graph navigable: on MedNIST pixel codes two passes lift the walk's recall@50 at
   ef = 50 from 0.86 to 0.99.
5. **Local passes** (``local_passes``, before the walk-based ones): each node walks the current
   lists from its own neighbours towards its own code (result heap :data:`LOCAL_EF`); the
   ``pool`` most similar nodes the walk scored are its new candidates, diversified as in 2, then
   3 again.  An NN-descent step that scores only the part of the neighbours' neighbourhoods
   the walk finds promising: on 1M generated codes (2 threads, a loaded machine) one pass over
   the kNN-only lists took 136 s against their 20 s, and lifted the walk's recall@50 at ef 64
   from 0.906 to 0.937 (benchmarks/results/graph_search/walk_vs_faiss_1m.md).
6. **Build order** (``groups``): every step reads the codes and lists of a node's neighbours,
   which at a million codes are random rows of 512 MB; built over the archive renumbered by
   community (:mod:`graphret.graph.layout`), most of those reads are nearby.  On 1M generated
   codes (2 threads, load 6-9) the kNN lists plus one local pass took 57-76 s in community
   order against 159-192 s in the archive's, the same lists
   (benchmarks/results/graph_search/walk_vs_faiss_1m_order.md).

The result is a CSR adjacency ``(indptr int64 (n+1,), indices int32 (nnz,))``, each list
sorted by decreasing cosine to its node.  It maps one to one onto an Arrow
``large_list<int32>`` column (offsets = ``indptr``, values = ``indices``), one row per item.

**Entry points** replace HNSW's upper layers: the medoid of each community of a partition (the
member nearest the community's normalised mean, which for unit codes is also the member with
the largest sum of cosines to the others), plus one per connected component of the walk graph
that holds none, so every part of the graph can be reached.  A query starts from the entry
points most similar to it.

Deterministic: no random step except the seeded random start, ties by smaller row, and the
result does not depend on the number of threads.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from graphret.kernels.jit import njit, prange

from graphret.errors import InputError
from graphret.graph import layout
from graphret.graph.segments import row_sums
from graphret.graph.walk import WalkFilter, WalkIndex, next_stamp, walk_one, walk_query, walk_slots, walk_work
from graphret.kernels.heap import ranks_before, sorted_push
from graphret.kernels.vector import FAST, row_dot

__all__ = [
    "build_search_graph",
    "entry_points",
    "neighbor_lists",
    "DEFAULT_MAX_DEGREE",
    "DEFAULT_POOL",
    "CHEAP_WALK_ABOVE",
    "walk_effort",
    "WalkEffort",
    "LOCAL_EF",
    "SEARCH_CANDIDATES",
]

DEFAULT_MAX_DEGREE = 24
DEFAULT_POOL = 64
DEFAULT_ALPHA = 1.0
DEFAULT_PASSES = 2
DEFAULT_EF_CONSTRUCTION = 64
#: result heap of a local pass's walks (from the node's own list: a short walk suffices)
LOCAL_EF = 16
#: archives larger than this get the cheap walk lists by default (no expansion, no walk-based passes:
#: the kNN search's SEARCH_CANDIDATES diversified, or the kNN lists and one local pass): benchmarks/results/scale/build.md measured the full lists at 65 s for 100k
#: codes, 625 s for 223k and past 5 minutes at 1M, the kNN-only ones at 5.6 s, 16.5 s and 16 s,
#: for graph-mode recall@10 0.95 -> 0.91 at 100k and 0.92 -> 0.89 at 1M; one local pass costs
#: 136 s against the kNN lists' 20 s at 1M (2 threads, loaded machine) and lifts the walk's
#: recall@50 at ef 64 from 0.906 to 0.937 (benchmarks/results/graph_search/walk_vs_faiss_1m.md).
#: Built in community order (``groups``) at 1M: these 57 s, the full lists 364 s, and the full
#: ones walk no better there (recall@50 at ef 80 0.9617 against 0.9622; walk_vs_faiss_1m_order.md)
CHEAP_WALK_ABOVE = 100_000
#: above CHEAP_WALK_ABOVE, each item's walk list starts from this many of its most similar codes that
#: the FAISS kNN search compared it with (the search scores a few thousand codes per item for its
#: k nearest; keeping the best 64 costs their merging only), in place of the kNN graph's lists and
#: their local pass: on 1M generated codes (2 threads, load 14-18) the walk's recall@50 at ef 64
#: 0.9556 against 0.9374 (ef 80: 0.9741 / 0.9622), the lists 21 CPU s against 43, the search
#: 24 CPU s more (benchmarks/results/scale/build_steps_1m.md); a local pass over them adds 0.001
SEARCH_CANDIDATES = DEFAULT_POOL
#: cosines at or above this count as exact duplicates (never used to prune)
DUPLICATE_COSINE = 1.0 - 1e-6


class WalkEffort(NamedTuple):
    """How much work the walk lists get: walk-based ``passes`` from the medoid, neighbour
    ``expand``-sion of the first candidates, ``local_passes`` from each node's own list, and the
    first ``candidates`` from the kNN search itself (each item's most similar codes it compared:
    :func:`graphret.graph.build.knn_graph_and_candidates`; 0: the kNN graph's lists)."""

    passes: int
    expand: bool
    local_passes: int
    candidates: int


def walk_effort(n: int, *, passes: int | None = None, expand: bool | None = None,
                local_passes: int | None = None, candidates: int | None = None, searched: bool = True) -> WalkEffort:
    """The walk-list effort for an archive of ``n`` items: what is given, else the full lists
    (:data:`DEFAULT_PASSES` passes, expansion, no local pass) up to :data:`CHEAP_WALK_ABOVE`
    items and above, the kNN search's :data:`SEARCH_CANDIDATES` most similar codes diversified;
    where the search kept none (``searched`` False: a kNN method that keeps no candidates), the kNN
    lists and one local pass."""
    full = n <= CHEAP_WALK_ABOVE
    wanted = (0 if full else SEARCH_CANDIDATES) if candidates is None else int(candidates)
    kept = wanted if searched else 0
    return WalkEffort((DEFAULT_PASSES if full else 0) if passes is None else int(passes),
                      full if expand is None else bool(expand),
                      (0 if full or kept else 1) if local_passes is None else int(local_passes), kept)


def neighbor_lists(neighbors, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The candidate source as CSR arrays ``(indptr int64, indices int64)``: from kNN lists
    ``(n, k)`` (entries < 0 ignored) or a scipy sparse ``n x n`` matrix (its nonzero
    pattern; weights are ignored)."""
    if sp.issparse(neighbors):
        g = sp.csr_matrix(neighbors)
        if g.shape != (n, n):
            raise InputError(f"the neighbour graph is {g.shape} but there are {n} codes; pass the graph of these codes as {{neighbors}}")
        g.sort_indices()
        return g.indptr.astype(np.int64), g.indices.astype(np.int64)
    arr = np.asarray(neighbors)
    if arr.ndim != 2 or arr.shape[0] != n or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(
            f"{{neighbors}} must be kNN lists, an integer array (n, k) with n = {n}, or a scipy sparse graph; got shape {arr.shape}"
        )
    if arr.size and arr.max() >= n:
        raise InputError(f"{{neighbors}} lists a row {int(arr.max())} outside 0..{n - 1}; rebuild the kNN lists of these codes")
    keep = arr >= 0
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    return indptr, arr[keep].astype(np.int64)


@njit(cache=True)
def _sort_desc(sims, ids, m):
    """Insertion sort of the first m entries by decreasing cosine, ties by smaller row."""
    for a in range(1, m):
        s = sims[a]
        j = ids[a]
        b = a - 1
        while b >= 0 and ranks_before(s, j, sims[b], ids[b]):
            sims[b + 1] = sims[b]
            ids[b + 1] = ids[b]
            b -= 1
        sims[b + 1] = s
        ids[b + 1] = j


@njit(cache=True, inline="always")
def _pool_push(ps, pj, size, pool, s, j):
    """Offer (s, j) to the ``pool`` most similar candidates: filled unsorted, sorted once full
    (best first, ties by smaller row), then kept sorted; returns the new size (the caller sorts
    a pool that never filled)."""
    if size < pool:
        ps[size] = s
        pj[size] = j
        size += 1
        if size == pool:
            _sort_desc(ps, pj, size)
        return size
    return sorted_push(ps, pj, size, pool, s, j)


@njit(cache=True, fastmath=FAST)
def _diversify(X, cand, csim, m, max_degree, alpha2, out, ksim):
    """Keep candidates (sorted best first) by the relative-neighbourhood rule; returns the
    number kept in ``out``.  Prune j when a kept n has ``alpha^2 (2 - 2 s_nj) <= 2 - 2 s_ij``."""
    kept = 0
    for a in range(m):
        j = cand[a]
        s_ij = csim[a]
        ok = True
        limit = 1.0 - (1.0 - s_ij) / alpha2  # prune when s_nj >= limit
        for b in range(kept):
            nb = out[b]
            if ksim[b] >= DUPLICATE_COSINE:
                continue  # a duplicate of i never prunes
            if row_dot(X, nb, j) >= limit:
                ok = False
                break
        if ok:
            out[kept] = j
            ksim[kept] = s_ij
            kept += 1
            if kept == max_degree:
                break
    return kept


@njit(cache=True, fastmath=FAST, inline="always")
def _keep(X, i, cand, csim, m, max_degree, alpha2, kept, ksim, out_idx, out_cnt):
    """Node i's forward list: its m candidates (best first) diversified (:func:`_diversify`)
    into ``out_idx[i]``, their count into ``out_cnt[i]``."""
    c = _diversify(X, cand, csim, m, max_degree, alpha2, kept, ksim)
    out_cnt[i] = c
    for b in range(c):
        out_idx[i, b] = kept[b]


@njit(cache=True, inline="always")
def _add_once(mark, i, j, cand, m):
    """Append j to node i's candidates unless it is there (``mark[j] == i``); returns the count."""
    if mark[j] != i:
        mark[j] = i
        cand[m] = j
        m += 1
    return m


@njit(cache=True, inline="always")
def _gather(nb_ptr, nb_idx, i, expand, mark, cand):
    """Node i's candidates, each once: its neighbours (and, with ``expand``, theirs) into
    ``cand``; returns how many."""
    m = 0
    mark[i] = i
    for p in range(nb_ptr[i], nb_ptr[i + 1]):
        j = nb_idx[p]
        m = _add_once(mark, i, j, cand, m)
        if expand:
            for p2 in range(nb_ptr[j], nb_ptr[j + 1]):
                m = _add_once(mark, i, nb_idx[p2], cand, m)
    return m


@njit(cache=True, parallel=True, fastmath=FAST)
def _forward_kernel(X, nb_ptr, nb_idx, expand, pool, max_degree, alpha2, n_chunks, cap, out_idx, out_cnt):
    n = X.shape[0]
    step = (n + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        lo = ch * step
        hi = min(n, lo + step)
        mark = np.full(n, -1, np.int64)
        cand = np.empty(cap, np.int64)
        ps = np.empty(pool, np.float32)
        pj = np.empty(pool, np.int64)
        kept = np.empty(max_degree, np.int64)
        ksim = np.empty(max_degree, np.float32)
        for i in range(lo, hi):
            m = _gather(nb_ptr, nb_idx, i, expand, mark, cand)
            # the pool most similar, best first (ties: smaller row)
            size = 0
            for a in range(m):
                j = cand[a]
                size = _pool_push(ps, pj, size, pool, row_dot(X, i, j), j)
            if size < pool:
                _sort_desc(ps, pj, size)
            _keep(X, i, pj, ps, size, max_degree, alpha2, kept, ksim, out_idx, out_cnt)


@njit(cache=True, parallel=True, fastmath=FAST)
def _merge_kernel(X, f_idx, f_cnt, r_ptr, r_idx, max_degree, alpha2, n_chunks, out_ptr, out_idx):
    """Final list of node i: forward ∪ reverse, sorted by cosine, diversified when longer than
    max_degree.  First pass (out_idx empty): counts only; second pass writes."""
    n = X.shape[0]
    write = out_idx.shape[0] > 0
    step = (n + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        lo = ch * step
        hi = min(n, lo + step)
        mark = np.full(n, -1, np.int64)
        cap = 2 * max_degree + 16
        cand = np.empty(cap, np.int64)
        csim = np.empty(cap, np.float32)
        kept = np.empty(max_degree, np.int64)
        ksim = np.empty(max_degree, np.float32)
        for i in range(lo, hi):
            m = 0
            total = f_cnt[i] + r_ptr[i + 1] - r_ptr[i]
            if total > cap:
                cap = 2 * total
                cand = np.empty(cap, np.int64)
                csim = np.empty(cap, np.float32)
            mark[i] = i
            for b in range(f_cnt[i]):
                m = _add_once(mark, i, f_idx[i, b], cand, m)
            for p in range(r_ptr[i], r_ptr[i + 1]):
                m = _add_once(mark, i, r_idx[p], cand, m)
            for a in range(m):
                csim[a] = row_dot(X, i, cand[a])
            _sort_desc(csim, cand, m)
            if m > max_degree:
                c = _diversify(X, cand, csim, m, max_degree, alpha2, kept, ksim)
                for b in range(c):
                    cand[b] = kept[b]
                m = c
            if write:
                base = out_ptr[i]
                for b in range(m):
                    out_idx[base + b] = cand[b]
            else:
                out_ptr[i + 1] = m


@njit(cache=True, parallel=True, fastmath=FAST)
def _refine_kernel(X, indptr, indices, entry, ef, max_degree, alpha2, n_chunks, out_idx, out_cnt):
    """Vamana / NSG pass: for each node i, walk the current lists from ``entry`` towards x_i
    (:func:`graphret.graph.walk.walk_query`, i itself not returned); the nodes expanded on the
    way (near and far) and i's current neighbours are i's candidates, diversified into at most
    max_degree forward neighbours."""
    n = X.shape[0]
    step = (n + n_chunks - 1) // n_chunks
    entries = np.full(1, entry, np.int64)
    index = WalkIndex(X, indptr, indices, entries, np.ascontiguousarray(X[entry:entry + 1]))
    no_filter = WalkFilter(np.empty(0, np.int64), False, np.zeros(1, np.bool_))
    for ch in prange(n_chunks):
        lo = ch * step
        hi = min(n, lo + step)
        w = walk_work(walk_slots(n, 1), 0, ef, 1)
        mark = np.full(n, -1, np.int64)
        cj = np.empty(n, np.int64)
        cs = np.empty(n, np.float32)
        kept = np.empty(max_degree, np.int64)
        ksim = np.empty(max_degree, np.float32)
        for i in range(lo, hi):
            _, n_exp, _, _ = walk_query(index, X[i], ef, 1, i, no_filter, w, None)
            m = 0
            mark[i] = i
            for a in range(n_exp):
                pos = w.expanded[a]
                j = w.seen[pos]
                if mark[j] != i:
                    mark[j] = i
                    cj[m] = j
                    cs[m] = w.seen_s[pos]
                    m += 1
            for p in range(indptr[i], indptr[i + 1]):  # and its current neighbours
                j = indices[p]
                if m < n and mark[j] != i:
                    mark[j] = i
                    cj[m] = j
                    cs[m] = row_dot(X, i, j)
                    m += 1
            _sort_desc(cs, cj, m)
            _keep(X, i, cj, cs, m, max_degree, alpha2, kept, ksim, out_idx, out_cnt)


@njit(cache=True, fastmath=FAST)
def _local_range(X, indptr, indices, ef, pool, max_degree, alpha2, lo, hi, out_idx, out_cnt):
    """Local pass over nodes lo..hi-1 (module docstring, 5): node i walks from its current
    neighbours towards x_i (i itself never scored); the ``pool`` most similar nodes scored on
    the way are diversified into at most max_degree forward neighbours."""
    n = X.shape[0]
    seeds = 1
    for i in range(lo, hi):
        seeds = max(seeds, indptr[i + 1] - indptr[i])
    index = WalkIndex(X, indptr, indices, np.zeros(1, np.int64), np.ascontiguousarray(X[0:1]))
    no_filter = WalkFilter(np.empty(0, np.int64), False, np.zeros(1, np.bool_))
    w = walk_work(walk_slots(n, 1), 0, ef, seeds)
    ps = np.empty(pool, np.float32)
    pj = np.empty(pool, np.int64)
    kept = np.empty(max_degree, np.int64)
    ksim = np.empty(max_degree, np.float32)
    for i in range(lo, hi):
        cur = next_stamp(w)
        m = 0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            w.seed_j[m] = j
            w.seed_s[m] = row_dot(X, i, j)
            m += 1
        w.stamp[i] = cur  # i is never its own candidate
        _, n_seen, _ = walk_one(index, X[i], m, ef, i, no_filter, w, cur)
        size = 0
        for b in range(n_seen):
            size = _pool_push(ps, pj, size, pool, w.seen_s[b], w.seen[b])
        if size < pool:
            _sort_desc(ps, pj, size)
        _keep(X, i, pj, ps, size, max_degree, alpha2, kept, ksim, out_idx, out_cnt)


@njit(cache=True, parallel=True)
def _local_kernel(X, indptr, indices, ef, pool, max_degree, alpha2, n_chunks, out_idx, out_cnt):
    n = X.shape[0]
    step = (n + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        lo = ch * step
        hi = min(n, lo + step)
        if lo < hi:
            _local_range(X, indptr, indices, ef, pool, max_degree, alpha2, lo, hi, out_idx, out_cnt)


def _check_int(value, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise InputError(f"{{{name}}} must be a whole number >= {lo}, got {value!r}", param=name)
    return int(value)


def build_search_graph(
    codes: np.ndarray,
    neighbors=None,
    *,
    max_degree: int = DEFAULT_MAX_DEGREE,
    pool: int = DEFAULT_POOL,
    expand: bool = True,
    alpha: float = DEFAULT_ALPHA,
    passes: int = DEFAULT_PASSES,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    local_passes: int = 0,
    seed: int = 0,
    threads: int | None = None,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Walk lists of unit-norm ``codes`` from their kNN lists (see the module docstring).

    ``neighbors``: kNN lists ``(n, k)`` int (-1 for none) or the symmetric kNN graph (scipy
    sparse); None starts from ``max_degree`` random neighbours per node (seeded with ``seed``,
    Vamana's start; give ``passes`` >= 2 then); ``max_degree``: the most neighbours a node keeps (HNSW's M at layer 0);
    ``pool``: candidates scored per node in the first pass; ``expand``: add neighbours of
    neighbours to them; ``alpha`` >= 1: the pruning relaxation; ``passes``: walk-based
    passes after the first (0: the diversified kNN lists only); ``ef_construction``: the
    result-heap size of their walks; ``local_passes``: passes that walk from each node's own
    list (before the walk-based ones; module docstring, 5).  ``threads``: numba threads (default: numba's setting).
    ``groups``: one label per code (the community membership, -1 for none): the lists are built
    over the codes renumbered so that each group is contiguous (:mod:`graphret.graph.layout`)
    and mapped back -- lists of the same construction (ties fall to the smaller position rather
    than row), built several times faster on archives that outgrow the caches (module docstring, 6).

    Returns ``(indptr int64 (n+1,), indices int32 (nnz,))``, each list by decreasing cosine.
    Cost: about ``n * (candidates + passes * 6 * ef_construction + local_passes * 12 * LOCAL_EF)``
    dot products, plus the diversification of each pool."""
    import numba

    codes = np.ascontiguousarray(codes, dtype=np.float32)
    if codes.ndim != 2 or codes.shape[0] < 2:
        raise InputError(f"{{codes}} must be a 2-D array of at least 2 codes, got shape {codes.shape}")
    n = codes.shape[0]
    max_degree = _check_int(max_degree, "max_degree", 1)
    pool = max(_check_int(pool, "pool", 1), max_degree)
    passes = _check_int(passes, "passes", 0)
    local_passes = _check_int(local_passes, "local_passes", 0)
    ef_construction = _check_int(ef_construction, "ef_construction", 1)
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise InputError(f"{{alpha}} must be a number >= 1, got {alpha!r}", param="alpha") from None
    if not np.isfinite(alpha) or alpha < 1.0:
        raise InputError(f"{{alpha}} must be a number >= 1 (1 = HNSW's rule), got {alpha!r}", param="alpha")
    order = None
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n,) or not np.issubdtype(groups.dtype, np.integer):
            raise InputError(f"{{groups}} must hold one integer label per code ({n}), got shape {groups.shape}; "
                             "pass the community membership", param="groups")
        order, rank = layout.group_order(groups)
        codes = np.ascontiguousarray(codes[order])
    if neighbors is None:
        rng = np.random.default_rng(seed)
        r = min(max_degree, n - 1)
        rand = (np.arange(n)[:, None] + rng.integers(1, n, size=(n, r))) % n  # never the node itself
        nb_ptr, nb_idx = neighbor_lists(rand, n)
        expand = False
    else:
        nb_ptr, nb_idx = neighbor_lists(neighbors, n)
        if order is not None:
            nb_ptr, nb_idx, _ = layout.renumber_rows(nb_ptr, nb_idx, order, rank)
            nb_idx = nb_idx.astype(np.int64)
    n_chunks = min(max(1, int(threads or numba.get_num_threads())) * 4, n)
    alpha2 = alpha * alpha
    f_idx = np.empty((n, max_degree), np.int64)
    f_cnt = np.zeros(n, np.int64)
    deg = np.diff(nb_ptr)
    if expand:  # the most candidates a node can gather: its list and its neighbours' lists
        cap = int((deg + row_sums(deg[nb_idx], nb_ptr)).max()) if n else 1
    else:
        cap = int(deg.max()) if n else 1
    _forward_kernel(codes, nb_ptr, nb_idx, bool(expand), pool, max_degree, alpha2, n_chunks, max(cap, 1), f_idx, f_cnt)
    indptr, indices = _with_reverse(codes, f_idx, f_cnt, max_degree, alpha2, n_chunks)
    for _ in range(local_passes):
        f_cnt[:] = 0
        _local_kernel(codes, indptr, indices, LOCAL_EF, pool, max_degree, alpha2, n_chunks, f_idx, f_cnt)
        indptr, indices = _with_reverse(codes, f_idx, f_cnt, max_degree, alpha2, n_chunks)
    if passes:
        entry = int(entry_points(codes)[0])
        for _ in range(passes):
            f_cnt[:] = 0
            _refine_kernel(codes, indptr, indices, entry, ef_construction, max_degree, alpha2, n_chunks, f_idx, f_cnt)
            indptr, indices = _with_reverse(codes, f_idx, f_cnt, max_degree, alpha2, n_chunks)
    if order is not None:  # back to archive rows: row j is position rank[j], position p is row order[p]
        return layout.renumber_rows(indptr, indices, rank, order)[:2]
    return indptr, indices.astype(np.int32)


def _with_reverse(codes, f_idx, f_cnt, max_degree, alpha2, n_chunks):
    """Forward lists plus reverse edges, each list diversified again when too long: CSR
    ``(indptr int64, indices int64)``."""
    n = codes.shape[0]
    src = np.repeat(np.arange(n, dtype=np.int64), f_cnt)
    dst = f_idx[np.arange(max_degree)[None, :] < f_cnt[:, None]]
    order = np.argsort(dst, kind="stable")
    r_idx = src[order]
    r_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(dst, minlength=n), out=r_ptr[1:])
    out_ptr = np.zeros(n + 1, np.int64)
    _merge_kernel(codes, f_idx, f_cnt, r_ptr, r_idx, max_degree, alpha2, n_chunks, out_ptr, np.empty(0, np.int64))
    np.cumsum(out_ptr, out=out_ptr)
    out_idx = np.empty(int(out_ptr[-1]), np.int64)
    _merge_kernel(codes, f_idx, f_cnt, r_ptr, r_idx, max_degree, alpha2, n_chunks, out_ptr, out_idx)
    return out_ptr, out_idx


def entry_points(
    codes: np.ndarray,
    membership: np.ndarray | None = None,
    *,
    graph: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Entry rows for the walk, int64: the medoid of each community of ``membership`` (labels
    >= 0; -1 = none), in community order, then the medoid of every connected component of
    ``graph`` (walk lists ``(indptr, indices)``) that holds no entry point yet.  Without a
    membership, the global medoid (of all codes) comes first.

    Medoid of a set S: ``argmax_{j in S} <x_j, sum_{i in S} x_i>`` (ties by smaller row)."""
    codes = np.asarray(codes, dtype=np.float32)
    n = codes.shape[0]
    rows: list[np.ndarray] = []
    if membership is None:
        rows.append(np.array([_medoid(codes, np.arange(n))], np.int64))
    else:
        membership = np.asarray(membership)
        if membership.shape != (n,) or not np.issubdtype(membership.dtype, np.integer):
            raise InputError(f"{{membership}} must hold one integer label per code ({n}), got shape {membership.shape}")
        rows.append(_medoids(codes, membership))
    entries = np.concatenate(rows)
    if graph is not None:
        from scipy.sparse.csgraph import connected_components

        indptr, indices = graph
        if len(indptr) != n + 1:
            raise InputError(f"the walk graph has {len(indptr) - 1} rows but there are {n} codes; rebuild it for these codes")
        g = sp.csr_matrix((np.ones(len(indices), np.int8), np.asarray(indices), np.asarray(indptr)), shape=(n, n))
        ncomp, comp = connected_components(g, directed=True, connection="weak")
        covered = np.zeros(ncomp, bool)
        covered[comp[entries]] = True
        missing = np.flatnonzero(~covered)
        if missing.size:
            entries = np.concatenate([entries, _medoids(codes, np.where(np.isin(comp, missing), comp, -1))])
    return entries.astype(np.int64)


def _medoid(codes: np.ndarray, members: np.ndarray) -> int:
    mean = codes[members].sum(axis=0, dtype=np.float64)
    return int(members[int(np.argmax(codes[members] @ mean.astype(np.float32)))])


def _medoids(codes: np.ndarray, labels: np.ndarray, *, block: int = 1 << 16) -> np.ndarray:
    """Medoid of each label >= 0, in label order (labels renumbered densely).  The label sums
    (float64) and the scores go ``block`` codes at a time: no copy of the codes (a million
    codes' copies in float64 cost 1.5 GB here before)."""
    inside = np.flatnonzero(labels >= 0)
    if inside.size == 0:
        return np.zeros(0, np.int64)
    uniq, dense = np.unique(labels[inside], return_inverse=True)
    C = len(uniq)
    sums = np.zeros((C, codes.shape[1]), np.float64)
    for lo in range(0, inside.size, block):
        part = slice(lo, lo + block)
        one_hot = sp.csr_matrix((np.ones(len(dense[part])), (dense[part], np.arange(len(dense[part])))),
                                shape=(C, len(dense[part])))
        sums += one_hot @ codes[inside[part]].astype(np.float64)
    sums32 = sums.astype(np.float32)
    score = np.empty(inside.size, np.float32)
    for lo in range(0, inside.size, block):
        part = slice(lo, lo + block)
        score[part] = np.einsum("ij,ij->i", codes[inside[part]], sums32[dense[part]])
    order = np.lexsort((inside, -score, dense))  # by label, best score, smaller row
    first = np.r_[True, dense[order][1:] != dense[order][:-1]]
    return inside[order[first]].astype(np.int64)
