"""graphret's Clauset-Newman-Moore (CNM) greedy agglomeration, compiled with numba.

Start from singletons; repeatedly merge the pair of *adjacent* communities whose merge gains the
most quality; record every merge (the dendrogram); the partition returned is the one of
highest quality along the way, and :meth:`CNMResult.cut` gives the partition at any number of
communities.  Merging goes on past the best point until no two communities are adjacent, so
the dendrogram is complete (one root per connected component; isolated nodes stay singletons).

Quality: ``"newman"`` (weighted modularity with resolution) or ``"haq"`` (graphret's
reconstruction of Haq's weighted modularity).  The gain of merging communities ``x`` and ``y``
is ``term(merged) - term(x) - term(y)`` with the one term function of
:mod:`graphret.communities.quality`, compiled here with numba, so gains and qualities come from
the same definition.  The gain depends only on the two communities' totals (e, a, n) and the
weight between them, so after a merge only the new community's pairs change.

Data structures (all flat arrays, no dense matrix):

* **Community ids** follow scipy's linkage convention: nodes are ``0..n-1`` and the community
  made by merge ``t`` (0-based) is ``n + t``.  Every id is therefore one immutable state; a
  community that merges dies and is never reused.
* **Neighbour maps**, one per live community, are slices of an append-only arena of
  ``(neighbour id, weight)`` entries.  When ``x`` and ``y`` merge into ``c``, ``c``'s map is
  built from the two old maps, each neighbour id resolved to the live community that now holds
  it with a union-find (``parent`` array, path compression) and duplicate neighbours summed in
  a scratch accumulator.  The neighbours' own maps are *not* touched -- their entries that name
  ``x`` or ``y`` become stale and are resolved to ``c`` when those maps are next read.  The
  arena is compacted when full, so it stays within a small multiple of the edge count.
* **Rows and a lazy max-heap.**  Each candidate pair ``(r, y)`` belongs to the row of the
  younger community ``y`` (its map lists exactly the communities that were adjacent to it when
  it was made, all older).  The gain of a pair never changes while both ends live, so each row
  needs only its best pair on a global max-heap ``(priority, gain, r, y)``.  A popped entry
  whose row owner ``y`` has died is dropped; one whose partner ``r`` has died (the pair moved
  to the row of ``r``'s successor) triggers a rescan of ``y``'s row for its next best live
  partner; otherwise the pair is merged.  Ties are broken by the smaller first id, then the
  smaller second id, so the result is deterministic and the merge taken is always the one of
  largest gain (the exact greedy path, as networkx's implementation).

A merge of ``x`` and ``y`` costs ``O((|map x| + |map y|) alpha(n))`` array work plus one heap
push (``O(log n)``); row rescans cost the row length.  As in CNM the total is ``O(m d log n)``
for a dendrogram of depth ``d``, with a small constant (contiguous arrays, no per-pair heap
updates).  Plain CNM on graphs without much hierarchy merges unevenly (one community swallowing
singletons one at a time), which makes the big community's map be rebuilt over and over and
the run tend towards ``O(n^2)``; ``heuristic="size"`` applies the Wakita-Tsurumi consolidation
ratio on community sizes: candidates are ranked by ``gain * min(n_x/n_y, n_y/n_x)``
(``gain / ratio`` for negative gains), which prefers merges of similar size.  The ratio depends
only on the two communities' own totals, so it fits the lazy heap unchanged.  The recorded gains and qualities are always the true ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from graphret.kernels.jit import njit

from graphret.communities.kernels import QUALITY_CODES, merge_gain, move_gain, term
from graphret.communities.partition import Partition
from graphret.communities.quality import (
    check_resolution,
    community_totals,
    renumber_membership,
    validate_graph,
)
from graphret.errors import InputError
from graphret.kernels.heap import queue_heapify, queue_pop, queue_push, queue_reserve

__all__ = ["cnm", "CNMResult", "replay_membership", "HEURISTICS"]

HEURISTICS = (None, "size", "degree")
_HEUR_CODES = {None: 0, "size": 1, "degree": 2}

@njit(cache=True, inline="always")
def _find(parent, x):
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


class Merging(NamedTuple):
    """CNM's state, one slot per community id (nodes 0..n-1, merge t makes n + t): totals
    ``e``, ``a``, ``cnt``; ``alive``; the union-find ``parent``; each live community's map as
    a slice ``mstart, mlen`` of the arena (held beside, as it grows)."""

    e: np.ndarray
    a: np.ndarray
    cnt: np.ndarray
    alive: np.ndarray
    parent: np.ndarray
    mstart: np.ndarray
    mlen: np.ndarray


class Scoring(NamedTuple):
    """How a candidate merge is scored: quality code, ``W``, resolution ``g``, ``w_max`` and
    the ranking heuristic code (:data:`_HEUR_CODES`)."""

    q: int
    W: float
    g: float
    w_max: float
    heur: int


@njit(cache=True)
def _priority(gain, nx, ny, ax, ay, heur):
    if heur == 0:
        return gain
    if heur == 2:
        nx = ax
        ny = ay
    ratio = nx / ny if nx < ny else ny / nx
    if gain >= 0:
        return gain * ratio
    return gain / ratio


@njit(cache=True, inline="always")
def _pair(e, a, cnt, sc, x, y, w):
    """(priority, gain) of merging communities x and y (totals ``e, a, cnt``) with weight w
    between them."""
    gn = merge_gain(sc.q, e[x], a[x], cnt[x], e[y], a[y], cnt[y], w, sc.W, sc.g, sc.w_max)
    return _priority(gn, cnt[x], cnt[y], a[x], a[y], sc.heur), gn


# (loops read a structure's arrays into locals once: numba counts references on every array
# taken out of a structure, which costs ~10% when done per pair)


@njit(cache=True)
def _row_best(st, sc, y, anb, aw, lo, hi, older_only):
    """Best candidate merge of ``y`` over the arena entries ``lo..hi`` (partners resolved
    already; only live ones, and with ``older_only`` only ids below y): the largest priority,
    ties by smaller partner.  Returns (partner or -1, priority)."""
    e, a, cnt, alive = st.e, st.a, st.cnt, st.alive
    best_r = -1
    best_p = 0.0
    for p in range(lo, hi):
        r = anb[p]
        if not alive[r] or (older_only and r >= y):
            continue
        pr, _ = _pair(e, a, cnt, sc, y, r, aw[p])
        if best_r < 0 or pr > best_p or (pr == best_p and r < best_r):
            best_r = r
            best_p = pr
    return best_r, best_p


@njit(cache=True)
def _start(indptr, indices, data, n, e0, a0, c0):
    """The singletons' state, their maps in a fresh arena (each node's map is its row)."""
    total = 2 * n
    st = Merging(np.zeros(total, np.float64), np.zeros(total, np.float64), np.zeros(total, np.float64),
                 np.zeros(total, np.bool_), np.arange(total), np.zeros(total, np.int64), np.zeros(total, np.int64))
    nnz = indptr[n]
    cap = max(2 * nnz + 16, 1024)
    anb = np.empty(cap, np.int64)
    aw = np.empty(cap, np.float64)
    anb[:nnz] = indices[:nnz]
    aw[:nnz] = data[:nnz]
    for i in range(n):
        st.alive[i] = True
        st.cnt[i] = c0[i]
        st.e[i] = e0[i]
        st.a[i] = a0[i]
        st.mstart[i] = indptr[i]
        st.mlen[i] = indptr[i + 1] - indptr[i]
    return st, anb, aw


@njit(cache=True)
def _first_queue(st, sc, n, anb, aw):
    """The merge queue: each node's best pair with an older neighbour.  Entry: (priority,
    tie key ``x * 2n + y`` -- smaller ids first --, payload y)."""
    total = 2 * n
    cap = max(2 * n, 1024)
    hp = np.empty(cap, np.float64)
    ht = np.empty(cap, np.int64)
    hy = np.empty(cap, np.int64)
    size = 0
    for y in range(n):
        s0 = st.mstart[y]
        r, pr = _row_best(st, sc, y, anb, aw, s0, s0 + st.mlen[y], True)
        if r >= 0:
            hp[size] = pr
            ht[size] = r * total + y
            hy[size] = y
            size += 1
    queue_heapify(hp, ht, hy, size)
    return hp, ht, hy, size


@njit(cache=True)
def _merged_map(st, x, y, anb, aw, acc, mark, touched, step):
    """c = x + y: the live communities adjacent to x or y (resolved with the union-find) into
    ``touched``, their summed weights in ``acc``; returns (how many, weight between x and y)."""
    parent = st.parent
    ntouch = 0
    wxy = 0.0
    for src in (x, y):
        s0 = st.mstart[src]
        for p in range(s0, s0 + st.mlen[src]):
            r = _find(parent, anb[p])
            if r == x or r == y:
                if src == x:  # count the x-y weight once
                    wxy += aw[p]
                continue
            if mark[r] != step:
                mark[r] = step
                acc[r] = 0.0
                touched[ntouch] = r
                ntouch += 1
            acc[r] += aw[p]
    return ntouch, wxy


@njit(cache=True)
def _compact(st, anb, aw, c, x, y, extra):
    """The arena with only the live maps (not x's and y's), grown until ``extra`` more entries
    fit in half of it; returns (anb, aw, entries used)."""
    alive, mstart, mlen = st.alive, st.mstart, st.mlen
    live = 0
    for v in range(c):
        if alive[v] and v != x and v != y:
            live += mlen[v]
    ncap = anb.size
    while live + extra > ncap // 2:
        ncap *= 2
    nanb = np.empty(ncap, np.int64)
    naw = np.empty(ncap, np.float64)
    pos = 0
    for v in range(c):
        if alive[v] and v != x and v != y:
            s0 = mstart[v]
            L = mlen[v]
            nanb[pos:pos + L] = anb[s0:s0 + L]
            naw[pos:pos + L] = aw[s0:s0 + L]
            mstart[v] = pos
            pos += L
    return nanb, naw, pos


@njit(cache=True)
def _cnm_kernel(graph, n, sc, start):
    """CNM on ``graph`` = (indptr, indices, data) of n nodes; ``start`` = (e0, a0, c0): node
    i starts with internal weight e0[i], total degree a0[i] and c0[i] members (0 / degree / 1
    for a plain graph; set for an aggregated graph)."""
    indptr, indices, data = graph
    e0, a0, c0 = start
    total = 2 * n
    st, anb, aw = _start(indptr, indices, data, n, e0, a0, c0)
    e, a, cnt, alive, parent, mstart, mlen = st
    used = indptr[n]
    q0 = 0.0
    for i in range(n):
        q0 += term(sc.q, e[i], a[i], cnt[i], sc.W, sc.g, sc.w_max)
    # Each candidate pair (r, y), r < y, belongs to the row of the younger community y.  The
    # queue holds one entry per row: its best pair (lazy: checked when popped).
    hp, ht, hy, hsize = _first_queue(st, sc, n, anb, aw)
    out_a = np.empty(n, np.int64)
    out_b = np.empty(n, np.int64)
    out_gain = np.empty(n, np.float64)
    out_q = np.empty(n, np.float64)
    out_size = np.empty(n, np.int64)
    acc = np.zeros(total, np.float64)
    mark = np.full(total, -1, np.int64)
    touched = np.empty(total, np.int64)
    Q = q0
    step = 0
    while hsize > 0:
        x = ht[0] // total
        y = hy[0]
        hsize = queue_pop(hp, ht, hy, hsize)
        if not alive[y]:
            continue
        if not alive[x]:
            # the row's best partner has merged away: find the row's next best
            s0 = mstart[y]
            r, pr = _row_best(st, sc, y, anb, aw, s0, s0 + mlen[y], False)
            if r >= 0:
                hp, ht, hy = queue_reserve(hp, ht, hy, hsize)
                hsize = queue_push(hp, ht, hy, hsize, pr, r * total + y, y)
            continue
        c = n + step
        # c's map from x's and y's, neighbours resolved to live communities, weights summed
        ntouch, wxy = _merged_map(st, x, y, anb, aw, acc, mark, touched, step)
        if used + ntouch > anb.size:  # compact the arena (and grow it if needed)
            anb, aw, used = _compact(st, anb, aw, c, x, y, ntouch)
        _, gain = _pair(e, a, cnt, sc, x, y, wxy)
        e[c] = e[x] + e[y] + wxy
        a[c] = a[x] + a[y]
        cnt[c] = cnt[x] + cnt[y]
        Q += gain
        alive[x] = False
        alive[y] = False
        alive[c] = True
        parent[x] = c
        parent[y] = c
        mstart[c] = used
        mlen[c] = ntouch
        out_a[step] = x
        out_b[step] = y
        out_gain[step] = gain
        out_q[step] = Q
        out_size[step] = np.int64(cnt[c])
        # write c's map; its row's best pair goes on the queue
        for t in range(ntouch):
            anb[used + t] = touched[t]
            aw[used + t] = acc[touched[t]]
        best_r, best_p = _row_best(st, sc, c, anb, aw, used, used + ntouch, False)
        used += ntouch
        if best_r >= 0:
            hp, ht, hy = queue_reserve(hp, ht, hy, hsize)
            hsize = queue_push(hp, ht, hy, hsize, best_p, best_r * total + c, c)
        step += 1

    return q0, out_a[:step], out_b[:step], out_gain[:step], out_q[:step], out_size[:step]


@njit(cache=True)
def _refine_kernel(indptr, indices, data, labels, W, g, w_max, q, max_passes):
    """Vertex mover: visit nodes in order and move each to the neighbouring community with the
    largest quality gain ``term(old - i) + term(new + i) - term(old) - term(new)`` (same term
    function); repeat passes until no node moves or ``max_passes``.  Returns the new labels and
    the number of moves."""
    n = labels.size
    C = 0
    for i in range(n):
        if labels[i] + 1 > C:
            C = labels[i] + 1
    e = np.zeros(C, np.float64)
    a = np.zeros(C, np.float64)
    cnt = np.zeros(C, np.float64)
    k = np.zeros(n, np.float64)
    for i in range(n):
        li = labels[i]
        cnt[li] += 1.0
        for p in range(indptr[i], indptr[i + 1]):
            k[i] += data[p]
            if labels[indices[p]] == li:
                e[li] += 0.5 * data[p]
        a[li] += k[i]
    acc = np.zeros(C, np.float64)
    mark = np.full(C, -1, np.int64)
    touched = np.empty(C, np.int64)
    moves = 0
    stamp = 0
    for _ in range(max_passes):
        moved = 0
        for i in range(n):
            if indptr[i + 1] == indptr[i]:
                continue
            o = labels[i]
            nt = 0
            stamp += 1
            w_own = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                c = labels[indices[p]]
                if c == o:
                    w_own += data[p]
                    continue
                if mark[c] != stamp:
                    mark[c] = stamp
                    acc[c] = 0.0
                    touched[nt] = c
                    nt += 1
                acc[c] += data[p]
            if nt == 0:
                continue
            best = 1e-12 * abs(term(q, e[o], a[o], cnt[o], W, g, w_max)) + 1e-15
            best_c = -1
            for t in range(nt):
                c = touched[t]
                d = move_gain(q, (e[o], a[o], cnt[o]), w_own, (e[c], a[c], cnt[c]), acc[c], k[i], (W, g, w_max))
                if d > best or (d == best and best_c >= 0 and c < best_c):
                    best = d
                    best_c = c
            if best_c >= 0:
                c = best_c
                e[o] -= w_own
                a[o] -= k[i]
                cnt[o] -= 1.0
                e[c] += acc[c]
                a[c] += k[i]
                cnt[c] += 1.0
                labels[i] = c
                moved += 1
        moves += moved
        if moved == 0:
            break
    return labels, moves


@njit(cache=True)
def _replay(n, ma, mb, steps):
    parent = np.arange(n + steps)
    for t in range(steps):
        parent[ma[t]] = n + t
        parent[mb[t]] = n + t
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = _find(parent, i)
    return out


def replay_membership(n: int, a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Membership after the first ``steps`` merges of a dendrogram (linkage ids), renumbered."""
    a = np.ascontiguousarray(a, dtype=np.int64)
    b = np.ascontiguousarray(b, dtype=np.int64)
    if not 0 <= steps <= a.size:
        raise InputError(f"steps must be in 0..{a.size}, got {steps}")
    return renumber_membership(_replay(int(n), a, b, int(steps)))


# ----------------------------------------------------------------------------- public API
@dataclass
class CNMResult(Partition):
    """Result of :func:`cnm` (a :class:`~graphret.communities.partition.Partition`).

    ``dendrogram`` holds one row per merge, as numpy columns (Arrow-friendly):

    * ``step`` -- 0-based merge number ``t``;
    * ``a``, ``b`` -- the ids of the two communities merged, ``a < b``, in scipy's linkage
      convention: ids ``0..n-1`` are the nodes and merge ``t`` makes community ``n + t``;
    * ``gain`` -- the quality gained by the merge (may be negative after the best point);
    * ``quality_after`` -- the quality of the partition after the merge;
    * ``size_after`` -- the number of nodes in the merged community.

    ``membership`` is the partition of highest quality (``best_step`` merges; ``quality``),
    communities numbered 0.. by decreasing size, ties by smallest member.
    """

    membership: np.ndarray
    dendrogram: dict
    quality: float
    n_nodes: int
    initial_quality: float
    best_step: int
    quality_name: str = "newman"
    resolution: float = 1.0
    heuristic: str | None = None
    seconds: float = 0.0
    meta: dict = field(default_factory=dict)
    refine: str | None = None
    method: str = "cnm"

    def settings(self) -> dict[str, Any]:
        return {"quality_function": self.quality_name, "resolution": self.resolution, "heuristic": self.heuristic,
                "refine": self.refine, "dendrogram_best_step": int(self.best_step)}

    @property
    def n_merges(self) -> int:
        return int(self.dendrogram["step"].size)

    @property
    def min_communities(self) -> int:
        """The number of communities at the end of the dendrogram (connected components)."""
        return self.n_nodes - self.n_merges

    def quality_at(self, n_communities: int) -> float:
        """The recorded quality of the cut at ``n_communities``."""
        s = self._steps_for(n_communities)
        return self.initial_quality if s == 0 else float(self.dendrogram["quality_after"][s - 1])

    def _steps_for(self, n_communities: int) -> int:
        try:
            nc = int(n_communities)
        except (TypeError, ValueError):
            raise InputError(f"n_communities must be an integer, got {n_communities!r}") from None
        if nc != n_communities or not self.min_communities <= nc <= self.n_nodes:
            raise InputError(
                f"cannot cut at {n_communities} communities; choose between {self.min_communities} "
                f"(one per connected component) and {self.n_nodes} (singletons)"
            )
        return self.n_nodes - nc

    def cut(self, n_communities: int) -> np.ndarray:
        """Membership with exactly ``n_communities`` communities, from the dendrogram."""
        s = self._steps_for(n_communities)
        return replay_membership(self.n_nodes, self.dendrogram["a"], self.dendrogram["b"], s)

    def dendrogram_table(self):
        """The dendrogram as a ``pyarrow.Table`` (columns as in :attr:`dendrogram`)."""
        import pyarrow as pa

        return pa.table({k: pa.array(v) for k, v in self.dendrogram.items()})

    def linkage(self) -> np.ndarray:
        """scipy-style linkage matrix ``(a, b, merge number + 1, size)`` of the merges (only a
        full tree when the graph is connected; distances are the merge ranks, not gains)."""
        d = self.dendrogram
        return np.column_stack([d["a"], d["b"], d["step"] + 1, d["size_after"]]).astype(np.float64)


@njit(cache=True)
def _sum_terms(e, a, cnt, W, g, w_max, q):
    total = 0.0
    for c in range(e.size):
        total += term(q, e[c], a[c], cnt[c], W, g, w_max)
    return total


def _quality(G, membership, g, w_max, qcode):
    """Quality of a partition of an already validated graph (same terms, compiled)."""
    e, a, cnt, W = community_totals(G, membership)
    return float(_sum_terms(e, a, cnt, W, g, w_max, qcode))


def _moves(G, membership, W, g, w_max, qcode, passes):
    labels, moves = _refine_kernel(G.indptr.astype(np.int64), G.indices.astype(np.int64), G.data,
                                   np.array(membership, dtype=np.int64), W, g, w_max, qcode,
                                   int(passes))
    return renumber_membership(labels), moves


def _aggregate_cnm(G, membership, W, g, w_max, qcode, hcode):
    """CNM on the graph of the communities of ``membership`` (internal weights, degrees and
    sizes carried over); returns the node membership of its best cut."""
    n = G.shape[0]
    C = int(membership.max()) + 1
    P = sp.csr_matrix((np.ones(n), (np.arange(n), membership)), shape=(n, C))
    A = (P.T @ G @ P).tocsr()
    e0 = A.diagonal() / 2.0
    deg = np.asarray(A.sum(axis=1), dtype=np.float64).ravel()
    A.setdiag(0)
    A.eliminate_zeros()
    A.sort_indices()
    q0, ma, mb, _, quals, _ = _cnm_kernel(
        (A.indptr.astype(np.int64), A.indices.astype(np.int64), A.data.astype(np.float64)), C,
        Scoring(qcode, float(W), float(g), float(w_max), hcode),
        (e0.astype(np.float64), deg, np.bincount(membership, minlength=C).astype(np.float64)))
    allq = np.concatenate([[q0], quals])
    b = int(np.argmax(allq))
    top = _replay(C, np.minimum(ma, mb), np.maximum(ma, mb), b)
    return renumber_membership(top[membership])


def _multilevel(G, W, g, w_max, qcode, quality, passes, max_levels=10):
    """Coarse-to-fine: node moves from singletons, then repeatedly CNM on the aggregated graph
    and node moves on the original graph, while the quality improves."""
    n = G.shape[0]
    m, _ = _moves(G, np.arange(n), W, g, w_max, qcode, passes)
    q = _quality(G, m, g, w_max, qcode)
    levels = 0
    for _ in range(max_levels):
        m2 = _aggregate_cnm(G, m, W, g, w_max, qcode, 0)  # plain CNM: the coarse graph is small
        m2, _ = _moves(G, m2, W, g, w_max, qcode, passes)
        q2 = _quality(G, m2, g, w_max, qcode)
        if q2 <= q + 1e-12:
            break
        m, q = m2, q2
        levels += 1
    return m, q, levels


def cnm(graph: sp.csr_matrix, *, quality: str = "newman", resolution: float = 1.0,
        heuristic: str | None = None, w_max: float = 1.0, refine: bool | str = False,
        max_refine_passes: int = 20) -> CNMResult:
    """CNM greedy agglomeration of ``graph`` (symmetric CSR, positive weights, zero diagonal).

    ``quality``: ``"newman"`` or ``"haq"`` (see :mod:`graphret.communities.quality`);
    ``resolution``: g > 0; ``heuristic``: ``None`` (plain CNM), ``"size"`` (Wakita-Tsurumi
    consolidation ratio on community sizes, in nodes) or ``"degree"`` (the ratio on weighted
    degrees); ``w_max``: Haq's largest edge weight (1 for cosine).

    ``refine``: ``False`` -- the result is the best cut of the dendrogram.  ``True`` -- then a
    vertex mover improves that cut (each node moves to the adjacent community with the largest
    gain of the same quality, in node order, until no node moves or ``max_refine_passes``).
    ``"multilevel"`` -- also a coarse-to-fine pass (node moves from singletons, then plain CNM
    on the graph of those communities -- cheap there, and better than the heuristic at that
    level -- then node moves again, repeated while the quality improves), and the better of the
    two partitions is returned.  With refinement,
    ``membership``/``quality`` are the refined partition and its quality, while ``dendrogram``,
    ``cut`` and ``meta["dendrogram_quality"]`` stay those of the agglomeration.
    """
    import time

    if quality not in QUALITY_CODES:
        raise InputError(f"unknown quality {quality!r}; use 'newman' or 'haq'")
    if refine not in (False, True, "multilevel"):
        raise InputError(f"unknown refine {refine!r}; use False, True or 'multilevel'")
    if heuristic not in HEURISTICS:
        raise InputError(f"unknown heuristic {heuristic!r}; use None, 'size' or 'degree'")
    g = check_resolution(resolution)
    if not (np.isfinite(w_max) and w_max > 0):
        raise InputError(f"w_max must be a finite number > 0, got {w_max!r}")
    G = validate_graph(graph)
    n = G.shape[0]
    W = float(G.data.sum()) / 2.0
    t0 = time.perf_counter()
    deg = np.asarray(G.sum(axis=1), dtype=np.float64).ravel()
    q0, ma, mb, gains, quals, sizes = _cnm_kernel(
        (G.indptr.astype(np.int64), G.indices.astype(np.int64), G.data.astype(np.float64)), n,
        Scoring(QUALITY_CODES[quality], float(W), float(g), float(w_max), _HEUR_CODES[heuristic]),
        (np.zeros(n), deg, np.ones(n)))
    seconds = time.perf_counter() - t0
    steps = ma.size
    dendro = {
        "step": np.arange(steps, dtype=np.int64),
        "a": np.minimum(ma, mb),
        "b": np.maximum(ma, mb),
        "gain": gains,
        "quality_after": quals,
        "size_after": sizes,
    }
    allq = np.concatenate([[q0], quals])
    best = int(np.argmax(allq))
    membership = replay_membership(n, dendro["a"], dendro["b"], best)
    best_q = float(allq[best])
    meta = {"dendrogram_quality": best_q, "cnm_seconds": seconds}
    if refine:
        t1 = time.perf_counter()
        qcode = QUALITY_CODES[quality]
        labels, moves = _moves(G, membership, W, g, float(w_max), qcode, max_refine_passes)
        best_q = _quality(G, labels, g, float(w_max), qcode)
        membership = labels
        meta.update(refine_moves=int(moves), refined_quality=best_q)
        if refine == "multilevel":
            ml, ml_q, levels = _multilevel(G, W, g, float(w_max), qcode, quality,
                                           max_refine_passes)
            meta.update(multilevel_quality=ml_q, multilevel_levels=levels)
            if ml_q > best_q:
                membership, best_q = ml, ml_q
        meta["refine_seconds"] = time.perf_counter() - t1
        seconds = time.perf_counter() - t0
    return CNMResult(
        membership=membership, dendrogram=dendro, quality=best_q, n_nodes=n,
        initial_quality=float(q0), best_step=best, quality_name=quality, resolution=g,
        heuristic=heuristic, seconds=seconds, meta=meta,
        refine={False: None, True: "moves", "multilevel": "multilevel"}[refine],
    )
