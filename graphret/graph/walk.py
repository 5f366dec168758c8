"""Graph walk: best-first (beam) search over stored neighbour lists, the query side of HNSW's
layer 0, NSG and pynndescent (Malkov & Yashunin 2018, Algorithm 2; Fu et al. 2019).

For a query q, with a candidate max-heap C and a result heap R of at most ``ef`` entries:

1. score the entry points, seed C and R with the ``n_entry`` most similar;
2. pop the best candidate c from C; stop when R is full and ``cos(q, c)`` is below R's worst;
3. for each neighbour j of c not seen yet: ``s = cos(q, x_j)``; when R is not full or s beats
   R's worst, push j on C and (when j may be returned) on R, dropping R's worst beyond ``ef``;
4. repeat from 2.  The answer is the best ``k`` of every node scored on the way, by decreasing
   cosine (ties: smaller row) -- R's best k when ``ef >= k``.

``ef`` trades recall for speed; unlike HNSW it may be below k (the walk stops sooner and the k
best of the nodes it scored are returned).  Scores are exact cosines; *compared* counts distinct
archive codes whose cosine with q was computed (the entry points scored, plus every node the
walk touched).

Filters: the walk traverses every node but returns only rows that are ``allowed`` and not the
query's own row (``exclude``).  A selective filter makes the walk wander; when the allowed rows
are few enough that scanning them is cheaper (``n_allowed^2 < BRUTE_FACTOR * ef * n``), the
allowed rows are scanned exactly instead.  When a walk returns fewer than k rows (a graph in
several pieces, a filter that the walk could not satisfy), that query is answered by an exact
scan of the allowed rows, so k results always come back when k exist.

Over a layout that holds a one-byte copy of the codes (:mod:`graphret.graph.compact`, large
archives), steps 1-3 score that copy, the best seed's community is prefetched whole, and the
answer is the best k by exact cosine of the nodes whose approximate cosine may rank them there
(:func:`rescored`): rows with exact cosines, as always; *compared* then counts the one-byte codes.

Batches run in numba, queries split over threads; every query is independent, so results do
not depend on the number of threads.  The kernels read named structures (:class:`WalkIndex`,
:class:`WalkFilter`, :class:`WalkOptions`, a thread's :class:`WalkWork`), and
:func:`walk_query` is the one kernel every walk runs: the searches here, the region search
(:mod:`graphret.query.graph_region`) and the walk-list passes
(:mod:`graphret.graph.search_graph`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from graphret.kernels.jit import njit, prange

from graphret.errors import InputError
from graphret.graph.compact import error_sd, scaled_query
from graphret.graph.knn import check_dimension, exact_search
from graphret.graph.layout import WalkLayout
from graphret.graph.topk import check_k
from graphret.kernels.heap import first_ranked, key_bits, key_tie, kth_push, min_pop, min_push, rank_key, sorted_push
from graphret.kernels.unit import UNIT_OK, unit_rows
from graphret.kernels.vector import FAST, prefetch, prefetch_at, prefetch_row, qdot, qdot4

__all__ = ["graph_walk", "walk_inputs", "walk_checked", "threads_for", "WalkInputs", "WalkIndex", "WalkFilter",
           "WalkOptions", "WalkWork", "SingleWalk", "WalkSlots", "WalkScratch", "walk_query", "walk_one", "walk_work", "walk_slots",
           "score_entries", "best_seen", "rescored", "returnable", "DEFAULT_EF", "DEFAULT_N_ENTRY", "BRUTE_FACTOR",
           "RESCORE_MARGIN"]

DEFAULT_EF = 48
DEFAULT_N_ENTRY = 2
#: scan the allowed rows exactly when n_allowed^2 < BRUTE_FACTOR * ef * n
BRUTE_FACTOR = 10.0
#: a walk over compact codes (:mod:`graphret.graph.compact`) rescores exactly every node whose approximate cosine
#: is within RESCORE_MARGIN standard deviations of the rounding error (:func:`~graphret.graph.compact.error_sd`)
#: of the k-th best approximate cosine
RESCORE_MARGIN = 4.0
#: a walk over compact codes prefetches its best seed's community whole when it has at most this many rows
PREFETCH_GROUP_ROWS = 4096


# ------------------------------------------------------------------ what the kernels read and write
class WalkIndex(NamedTuple):
    """What a walk reads: the archive and its walk lists, the entry rows and their codes."""

    codes: np.ndarray  # float32 (n, d), contiguous
    indptr: np.ndarray  # int64 (n + 1,)
    indices: np.ndarray  # int32 (nnz,)
    entries: np.ndarray  # int64 (e,)
    entry_codes: np.ndarray  # float32 (e, d): codes[entries], contiguous (scoring streams through it)


class WalkFilter(NamedTuple):
    """Which rows query r may return: never ``exclude[r]`` (-1: none) and, with ``use_allowed``,
    only rows where ``allowed`` is set.  The walk still traverses every row."""

    exclude: np.ndarray  # int64 (q,)
    use_allowed: bool
    allowed: np.ndarray  # bool (n,), or a placeholder of 1


class WalkOptions(NamedTuple):
    """A batch's walk settings: result heap ``ef``, entry points seeding each walk, results."""

    ef: int
    n_entry: int
    k: int


class WalkSlots(NamedTuple):
    """Per-thread work memory over an archive of n rows (slot t for thread t): ``stamps``
    (uint8 'seen' marks), ``counters`` (the last stamp value), ``work_s`` (seen cosines) and
    ``work_i`` (the candidate queue's rank keys, seen and expanded positions)."""

    stamps: np.ndarray  # uint8 (T, n)
    counters: np.ndarray  # int64 (T,)
    work_s: np.ndarray  # float32 (T, n)
    work_i: np.ndarray  # int64 (T, 3, n)


class WalkWork(NamedTuple):
    """One thread's memory for one walk at a time: its slot's n-sized arrays and the small
    ones (the best ``ef`` returnable cosines, entry seeds)."""

    stamp: np.ndarray
    counter: np.ndarray  # the slot's counter, a view of length 1
    queue: np.ndarray  # uint64 (n,): the candidates' rank keys (score, position in seen), a min-heap
    seen: np.ndarray
    seen_s: np.ndarray
    expanded: np.ndarray
    res_s: np.ndarray  # float32 (ef,): the best ef returnable cosines, a min-heap (the ef-th best at the root)
    seed_s: np.ndarray
    seed_j: np.ndarray


class WalkOut(NamedTuple):
    """A batch's results: rows and cosines (q, k), codes compared and results found (q,)."""

    rows: np.ndarray
    cosines: np.ndarray
    compared: np.ndarray
    found: np.ndarray


@njit(cache=True, interpretable=True)
def walk_slots(n, threads):
    """Fresh :class:`WalkSlots` for ``threads`` threads over n rows."""
    return WalkSlots(np.zeros((threads, n), np.uint8), np.zeros(threads, np.int64),
                     np.empty((threads, n), np.float32), np.empty((threads, 3, n), np.int64))


@njit(cache=True)
def walk_work(slots, t, ef, n_entry):
    """Thread t's :class:`WalkWork` for walks with result heap ``ef`` and ``n_entry`` seeds."""
    m = max(n_entry, 1)
    return WalkWork(slots.stamps[t], slots.counters[t:t + 1], slots.work_i[t, 0].view(np.uint64), slots.work_i[t, 1],
                    slots.work_s[t], slots.work_i[t, 2], np.empty(ef, np.float32), np.empty(m, np.float32),
                    np.empty(m, np.int64))


# ------------------------------------------------------------------ the kernels
@njit(cache=True, inline="always")
def returnable(j, ex, filt):
    """May row j be returned to a query whose own row is ``ex``?"""
    return j != ex and (not filt.use_allowed or filt.allowed[j])


@njit(cache=True, fastmath=FAST)
def score_entries(EC, entries, q, n_entry, out_s, out_j):
    """The ``n_entry`` entry rows most similar to q, best first, into out_s / out_j; returns
    how many (min(n_entry, len(entries))).  ``EC[a]`` is the code of row ``entries[a]``
    (a contiguous copy: scoring it streams through memory, four rows a pass over q)."""
    m = 0
    a = 0
    while a + 4 <= entries.shape[0]:
        s0, s1, s2, s3 = qdot4(EC, a, a + 1, a + 2, a + 3, q)
        m = sorted_push(out_s, out_j, m, n_entry, s0, entries[a])
        m = sorted_push(out_s, out_j, m, n_entry, s1, entries[a + 1])
        m = sorted_push(out_s, out_j, m, n_entry, s2, entries[a + 2])
        m = sorted_push(out_s, out_j, m, n_entry, s3, entries[a + 3])
        a += 4
    while a < entries.shape[0]:
        m = sorted_push(out_s, out_j, m, n_entry, qdot(EC, a, q), entries[a])
        a += 1
    return m


@njit(cache=True)
def next_stamp(w):
    """The next walk's stamp value (uint8: the stamps are zeroed every 255 walks, a small array
    that stays in cache)."""
    if w.counter[0] >= 255:
        w.stamp[:] = 0
        w.counter[0] = 0
    w.counter[0] += 1
    return np.uint8(w.counter[0])


@njit(cache=True, fastmath=FAST)
def walk_one(index, q, n_seeds, ef, ex, filt, w, cur):
    """One query's walk (the module docstring's steps 2-4) from the ``n_seeds`` seeds in
    ``w.seed_s / w.seed_j``, for use inside other kernels.

    ``w.stamp[j] == cur`` marks j as seen; every node touched is appended to ``w.seen`` with its
    cosine in ``w.seen_s``, and the position in ``seen`` of every node expanded to
    ``w.expanded``.  The candidate queue (capacity n) holds rank keys (score, position in
    ``seen``: :func:`graphret.kernels.heap.rank_key`), so a step compares one integer; the
    result heap keeps only the best ``ef`` returnable cosines (its root, the ef-th best, is
    the stopping bound: the nodes themselves are chosen after the walk, :func:`best_seen`).
    Returns (results kept, nodes touched, nodes expanded)."""
    X, indptr, indices = index.codes, index.indptr, index.indices
    stamp, seen, seen_s, queue, res = w.stamp, w.seen, w.seen_s, w.queue, w.res_s
    bits = seen_s.view(np.uint32)  # (a cosine's bits make its rank key)
    use_allowed, allowed = filt.use_allowed, filt.allowed  # (read once: not per node)
    n_res = 0
    n_cand = 0
    n_seen = 0
    n_exp = 0
    for a in range(n_seeds):
        j = w.seed_j[a]
        if stamp[j] == cur:
            continue
        stamp[j] = cur
        s = w.seed_s[a]
        seen[n_seen] = j
        seen_s[n_seen] = s
        n_cand = min_push(queue, n_cand, rank_key(bits[n_seen], n_seen))
        n_seen += 1
        if j != ex and (not use_allowed or allowed[j]):
            n_res = kth_push(res, n_res, ef, s)
    while n_cand > 0:
        pos = key_tie(queue[0])
        if n_res == ef and seen_s[pos] < res[0]:
            break
        c = seen[pos]
        w.expanded[n_exp] = pos
        n_exp += 1
        n_cand = min_pop(queue, n_cand)
        if n_cand > 0:  # the row pointer of the candidate likely expanded next (hnswlib's prefetching)
            prefetch_at(indptr, seen[key_tie(queue[0])])
        lo, hi = indptr[c], indptr[c + 1]
        for p in range(lo, hi):  # the neighbours' stamps, all in flight before the first is read
            prefetch_at(stamp, indices[p])
        # unseen neighbours go to the end of `seen`, their codes prefetched, then scored
        first = n_seen
        for p in range(lo, hi):
            j = indices[p]
            if stamp[j] == cur:
                continue
            stamp[j] = cur
            seen[n_seen] = j
            n_seen += 1
            prefetch_row(X, j)
        b = first
        while b + 4 <= n_seen:
            s0, s1, s2, s3 = qdot4(X, seen[b], seen[b + 1], seen[b + 2], seen[b + 3], q)
            seen_s[b] = s0
            seen_s[b + 1] = s1
            seen_s[b + 2] = s2
            seen_s[b + 3] = s3
            b += 4
        while b < n_seen:
            seen_s[b] = qdot(X, seen[b], q)
            b += 1
        for b in range(first, n_seen):
            s = seen_s[b]
            if n_res < ef or s > res[0]:
                n_cand = min_push(queue, n_cand, rank_key(bits[b], b))
                j = seen[b]
                if j != ex and (not use_allowed or allowed[j]):
                    n_res = kth_push(res, n_res, ef, s)
        if n_cand > 0:  # the list of the candidate expanded next
            prefetch_at(indices, indptr[seen[key_tie(queue[0])]])
    return n_res, n_seen, n_exp


@njit(cache=True, fastmath=FAST)
def walk_query(index, q, ef, n_entry, ex, filt, w, blocks):
    """One query's whole walk: a fresh stamp, the ``n_entry`` entry points most similar to q
    as seeds (step 1), then :func:`walk_one`.  The kernel every walk runs (searches, the
    region search, the walk-list passes).  ``blocks``: None, or (starts, rows) -- the walk runs
    over a layout whose groups start at positions ``starts``, and the group of the best seed,
    when of at most ``rows`` rows, is prefetched whole first (:func:`prefetch_group`).  Returns
    (nodes touched, nodes expanded, the stamp value marking them, codes compared: the entry
    points scored plus the touched nodes that are not one)."""
    cur = next_stamp(w)
    m = score_entries(index.entry_codes, index.entries, q, n_entry, w.seed_s, w.seed_j)
    if blocks is not None and m > 0:  # (pruned when compiled without)
        prefetch_group(index, w.stamp, blocks[0], w.seed_j[0], blocks[1])
    _, n_seen, n_exp = walk_one(index, q, m, ef, ex, filt, w, cur)
    return n_seen, n_exp, cur, index.entries.shape[0] + n_seen - m


@njit(cache=True)
def prefetch_group(index, stamp, starts, p, rows):
    """Prefetch the codes, walk lists and stamps of the layout group holding position p (the
    positions ``starts[g]..starts[g+1]-1``) when it has at most ``rows`` rows: a walk stays in
    its query's community most of the way and touches many of its rows, so one stream of
    contiguous lines replaces as many random loads."""
    g = np.searchsorted(starts, p, side="right") - 1
    lo, hi = starts[g], starts[g + 1]
    if hi - lo > rows:
        return
    X, indptr, indices = index.codes, index.indptr, index.indices
    line = max(1, 64 // X.itemsize)
    for j in range(lo, hi):
        for t in range(0, X.shape[1], line):
            prefetch(X, j, t)
    for j in range(lo, hi + 1, 8):
        prefetch_at(indptr, j)
    for e in range(indptr[lo], indptr[hi], 16):
        prefetch_at(indices, e)
    for j in range(lo, hi, 64):
        prefetch_at(stamp, j)


@njit(cache=True)
def best_seen(w, n_seen, ex, filt, out_i, out_s):
    """The best ``len(out_i)`` returnable nodes among the first n_seen of ``w.seen`` into
    out_i / out_s, best first (ties: smaller row); returns how many.

    One selection over the nodes as rank keys (:func:`graphret.kernels.heap.rank_key`), held in
    the candidate queue's memory (free once the walk has ended): on MedNIST pixel codes (234
    nodes, k 50) 2.6 us a query against 5.9 us for a bounded heap offered every node."""
    seen, use_allowed, allowed = w.seen, filt.use_allowed, filt.allowed
    bits = w.seen_s.view(np.uint32)
    keys = w.queue
    m = 0
    for b in range(n_seen):
        j = seen[b]
        if j == ex or (use_allowed and not allowed[j]):
            continue
        keys[m] = rank_key(bits[b], j)
        m += 1
    return _put_first(keys, m, out_i, out_s)


@njit(cache=True, inline="always")
def _put_first(keys, m, out_i, out_s):
    """The ``len(out_i)`` first of the rank keys ``keys[:m]`` (tie key: the row) into out_i /
    out_s, best first; returns how many."""
    first = first_ranked(keys, m, out_i.shape[0])
    out_bits = out_s.view(np.uint32)
    for c in range(first.shape[0]):
        out_i[c] = key_tie(first[c])
        out_bits[c] = key_bits(first[c])
    return first.shape[0]


@njit(cache=True, fastmath=FAST)
def rescored(X, q, w, n_seen, floor, ex, filt, out_i, out_s):
    """After a walk scored compact codes: the best ``len(out_i)`` returnable nodes by exact
    cosine with q (float32 codes X) among the first n_seen of ``w.seen`` whose approximate
    cosine ``w.seen_s`` is at least ``floor``, into out_i / out_s, best first (ties: smaller
    row); returns how many.  Their codes are all prefetched first (the loads overlap); their
    exact cosines replace the approximate ones in ``w.seen_s``."""
    seen, seen_s, picked, keys = w.seen, w.seen_s, w.expanded, w.queue
    use_allowed, allowed = filt.use_allowed, filt.allowed
    m = 0
    for b in range(n_seen):
        j = seen[b]
        if seen_s[b] >= floor and j != ex and (not use_allowed or allowed[j]):
            picked[m] = b
            m += 1
            prefetch_row(X, j)
    bits = seen_s.view(np.uint32)
    for c in range(m):
        b = picked[c]
        seen_s[b] = qdot(X, seen[b], q)
        keys[c] = rank_key(bits[b], seen[b])
    return _put_first(keys, m, out_i, out_s)


@njit(cache=True, fastmath=FAST, interpretable=True)
def _walk_range(index, Q, lo, hi, opts, filt, slots, t, out, compact):
    """Queries lo..hi-1 with scratch slot t: each walk's answer is the best k of every node it
    scored (the result heap's best k when ef >= k).  With ``compact`` (the codes, step and
    entry codes of a :class:`graphret.graph.compact.CompactCodes`, the rescoring margin, the
    layout's group starts and the most rows of a group prefetched whole), the walk scores the
    one-byte codes, and the answer is the best k by exact cosine of the nodes it scored whose
    approximate cosine is within ``compact[3]`` rounding-error standard deviations of the k-th
    best approximate one.

    Called from Python, the named structures come as plain tuples and are named here: numba's
    dispatcher types a plain tuple of arrays by its fast fingerprint but a named one through a
    slow Python path (about 1 us per field and call, a tenth of a single query's walk)."""
    index, opts, filt, slots, out = WalkIndex(*index), WalkOptions(*opts), WalkFilter(*filt), WalkSlots(*slots), WalkOut(*out)
    w = walk_work(slots, t, opts.ef, opts.n_entry)
    k = opts.k
    if compact is not None:  # (pruned when compiled without one)
        scored = WalkIndex(compact[0], index.indptr, index.indices, index.entries, compact[2])
        q_scaled = np.empty(Q.shape[1], np.float32)
        best_i = np.empty(k, np.int64)
        best_s = np.empty(k, np.float32)
    for r in range(lo, hi):
        ex = filt.exclude[r]
        if compact is None:
            n_seen, _, _, compared = walk_query(index, Q[r], opts.ef, opts.n_entry, ex, filt, w, None)
            kk = best_seen(w, n_seen, ex, filt, out.rows[r], out.cosines[r])
        else:  # steered by the one-byte codes, the nodes that may rank in the best k rescored exactly
            q_small = scaled_query(Q[r], compact[1], q_scaled)
            n_seen, _, _, compared = walk_query(scored, q_small, opts.ef, opts.n_entry, ex, filt, w, (compact[4], compact[5]))
            m = best_seen(w, n_seen, ex, filt, best_i, best_s)
            floor = best_s[k - 1] - compact[3] * error_sd(q_small) if m == k else -np.inf
            kk = rescored(index.codes, Q[r], w, n_seen, floor, ex, filt, out.rows[r], out.cosines[r])
        out.compared[r] = compared
        out.found[r] = kk
        for b in range(kk, k):
            out.rows[r, b] = -1
            out.cosines[r, b] = -np.inf


@njit(cache=True, parallel=True)
def _walk_parallel(index, Q, opts, filt, slots, out, compact):
    nq = Q.shape[0]
    T = slots[0].shape[0]  # slots.stamps
    step = (nq + T - 1) // T
    for t in prange(T):
        lo = t * step
        hi = min(nq, lo + step)
        if lo < hi:
            _walk_range(index, Q, lo, hi, opts, filt, slots, t, out, compact)


class WalkScratch:
    """Per-thread work memory for walks over an archive of n rows (:class:`WalkSlots`), kept
    between calls so a single query neither allocates nor zeroes n-sized arrays.  One is
    cached per (n, threads)."""

    _cache: dict[tuple[int, int], "WalkScratch"] = {}

    def __init__(self, n: int, threads: int) -> None:
        self.slots = tuple(walk_slots(n, threads))  # plain: see _walk_range

    @classmethod
    def get(cls, n: int, threads: int) -> "WalkScratch":
        key = (int(n), int(threads))
        scratch = cls._cache.get(key)
        if scratch is None:
            if len(cls._cache) > 2:
                cls._cache.clear()
            scratch = cls._cache[key] = WalkScratch(n, threads)
        return scratch


#: walk lists already checked: (weakref to indptr, weakref to indices, n)
_CHECKED: list = []


def check_walk_graph(n: int, indptr: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The walk lists as (indptr int64, indices int32), or InputError when they do not fit n.
    Lists already in that form are checked once (remembered while they live)."""
    for ref_p, ref_i, size in _CHECKED:
        if ref_p() is indptr and ref_i() is indices and size == n:
            return indptr, indices
    given = (indptr, indices)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    if indptr.ndim != 1 or len(indptr) != n + 1 or indptr[0] != 0 or indptr[-1] != len(indices):
        raise InputError(
            f"the walk graph does not match the archive ({n} codes, indptr of length {len(indptr)}); "
            "rebuild it with build_search_graph(codes, ...)"
        )
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= n):
        raise InputError("the walk graph names rows outside the archive; rebuild it with build_search_graph(codes, ...)")
    if given[0] is indptr and given[1] is indices:
        remember_checked(n, indptr, indices)
    return indptr, indices


def remember_checked(n: int, indptr: np.ndarray, indices: np.ndarray) -> None:
    """Count these lists (int64 and int32, contiguous) as checked for ``n`` codes while they
    live: :func:`check_walk_graph` did, or their owner did (a store's prepared lists whose
    checks are remembered: :mod:`graphret.query.prepared`)."""
    import weakref

    _CHECKED[:] = _CHECKED[-3:] + [(weakref.ref(indptr), weakref.ref(indices), n)]


def _check_positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{{{name}}} must be a whole number >= 1, got {value!r}", param=name)
    return int(value)


@dataclass
class WalkInputs:
    """A walk's inputs, checked and laid out for the kernels (:func:`walk_inputs`)."""

    codes: np.ndarray  # float32 (n, d), contiguous
    indptr: np.ndarray
    indices: np.ndarray
    queries: np.ndarray  # float32 (q, d), contiguous
    entries: np.ndarray  # int64
    entry_codes: np.ndarray  # float32 (len(entries), d), contiguous
    ef: int
    n_entry: int
    exclude: np.ndarray  # int64 (q,), -1: none (a row outside ``allowed`` counts as none)
    use_allowed: bool
    allowed: np.ndarray  # bool (n,), or a placeholder of 1 when not use_allowed
    n_allowed: int
    k: int
    layout: WalkLayout | None = None  # the archive renumbered for the walk (graphret.graph.layout), or None
    allowed_laid: np.ndarray | None = None  # ``allowed`` over the layout's positions, where the caller keeps one

    @property
    def n(self) -> int:
        return self.codes.shape[0]

    @property
    def index(self) -> tuple:
        """The :class:`WalkIndex`, as a plain tuple for the kernels (see :func:`_walk_range`)."""
        return (self.codes, self.indptr, self.indices, self.entries, self.entry_codes)

    @property
    def filter(self) -> tuple:
        """The :class:`WalkFilter`, as a plain tuple for the kernels."""
        return (self.exclude, self.use_allowed, self.allowed)

    def laid_out(self) -> tuple[tuple, tuple, WalkLayout | None]:
        """(index, filter, layout) the kernels walk: over the layout when there is one, unless
        an ``allowed`` mask comes without its layout form ``allowed_laid`` (mapping a mask is
        O(n): its owner maps it once); exclusions mapped in, rows out through
        ``layout.order``; else :attr:`index`, :attr:`filter` and None."""
        layout = self.layout
        if layout is None or (self.use_allowed and self.allowed_laid is None):
            return self.index, self.filter, None
        ex = self.exclude
        filt = (layout.positions(ex) if ex.size and ex.max() >= 0 else ex, self.use_allowed,
                self.allowed_laid if self.use_allowed else _NO_MASK)
        return (layout.codes, layout.indptr, layout.indices, layout.entries, self.entry_codes), filt, layout

    def with_queries(self, queries: np.ndarray, k: int, *, exclude: np.ndarray | None = None,
                     allowed: np.ndarray | None = None, n_allowed: int | None = None, ef: int | None = None,
                     allowed_laid: np.ndarray | None = None) -> "WalkInputs":
        """These checked lists with other queries: only the per-query inputs are checked, so a
        caller that keeps the archive's inputs (a searcher, prepared once per store version)
        pays nothing that grows with the archive per call.  ``n_allowed``: ``allowed.sum()``
        when the caller knows it; ``ef``: another result heap than these inputs';
        ``allowed_laid``: ``allowed[layout.order]``, kept by a caller that reuses the mask, so
        that filtered walks run over the layout too."""
        n = self.codes.shape[0]
        ef = self.ef if ef is None else _check_positive(ef, "ef")
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        check_dimension(self.codes.shape[1], queries)
        queries = np.ascontiguousarray(queries)
        nq = len(queries)
        ex = np.full(nq, -1, np.int64) if exclude is None else np.ascontiguousarray(exclude, dtype=np.int64).ravel()
        if ex.shape != (nq,):
            raise InputError(f"{{exclude}} must hold one row per query ({nq}), got {ex.shape[0]}", param="exclude")
        use_allowed = allowed is not None
        if use_allowed:
            allowed = np.ascontiguousarray(allowed, dtype=np.bool_).ravel()
            if allowed.shape != (n,):
                raise InputError(f"{{allowed}} must be a boolean mask over the {n} archive rows, got {allowed.shape[0]}", param="allowed")
            n_allowed = int(allowed.sum()) if n_allowed is None else int(n_allowed)
            ex = np.where((ex >= 0) & allowed[np.clip(ex, 0, n - 1)], ex, -1)
        else:
            allowed = _NO_MASK
            n_allowed = n
        if not use_allowed or self.layout is None:
            allowed_laid = None
        elif allowed_laid is not None:
            allowed_laid = np.ascontiguousarray(allowed_laid, dtype=np.bool_).ravel()
            if allowed_laid.shape != (n,):
                raise InputError(f"{{allowed_laid}} must be the allowed mask over the {n} layout positions; pass "
                                 "allowed[layout.order]", param="allowed_laid")
        k = check_k(k, n_allowed - (1 if (ex >= 0).any() else 0), what="the archive after filters")
        return WalkInputs(self.codes, self.indptr, self.indices, queries, self.entries, self.entry_codes, ef, self.n_entry,
                          ex, use_allowed, allowed, n_allowed, k, self.layout, allowed_laid)


#: the ``allowed`` placeholder of an unfiltered walk
_NO_MASK = np.zeros(1, np.bool_)


def walk_inputs(codes: np.ndarray, indptr: np.ndarray, indices: np.ndarray, queries: np.ndarray, k: int, *,
                entries: np.ndarray, entry_codes: np.ndarray | None, ef: int, n_entry: int,
                exclude: np.ndarray | None, allowed: np.ndarray | None, layout: WalkLayout | None = None) -> WalkInputs:
    """The checks every walk over the lists makes of its inputs (:func:`graph_walk` and the
    region search of :mod:`graphret.query.graph_region`), with one-line errors, and K bounded by
    the rows the filters leave.  ``layout``: these codes, lists and entries renumbered
    (:func:`graphret.graph.layout.walk_layout`), which unfiltered walks then run over."""
    codes = np.ascontiguousarray(codes, dtype=np.float32)
    if codes.ndim != 2:
        raise InputError("the archive codes must be a 2-D array (n, d)")
    n = codes.shape[0]
    indptr, indices = check_walk_graph(n, indptr, indices)
    entries = np.ascontiguousarray(entries, dtype=np.int64).ravel()
    if entries.size == 0 or int(entries.min()) < 0 or int(entries.max()) >= n:
        raise InputError("{entries} must name at least one archive row (0..n-1); use entry_points(codes, membership)", param="entries")
    if entry_codes is None:
        entry_codes = codes[entries]
    entry_codes = np.ascontiguousarray(entry_codes, dtype=np.float32)
    if entry_codes.shape != (len(entries), codes.shape[1]):
        raise InputError("{entry_codes} must be codes[entries], one row per entry point", param="entry_codes")
    if layout is not None and (layout.codes.shape != codes.shape or len(layout.indices) != len(indices)
                               or len(layout.entries) != len(entries)):
        raise InputError("{layout} is not of these codes and walk lists; make it with walk_layout(codes, indptr, indices, "
                         "entries, membership)", param="layout")
    ef = _check_positive(ef, "ef")
    n_entry = _check_positive(n_entry, "n_entry")
    lists = WalkInputs(codes, indptr, indices, np.zeros((0, codes.shape[1]), np.float32), entries, entry_codes, ef, n_entry,
                       np.zeros(0, np.int64), False, _NO_MASK, n, 1, layout)
    return lists.with_queries(queries, k, exclude=exclude, allowed=allowed)


def threads_for(threads: int | None, nq: int) -> int:
    """Threads a batch of nq queries runs on: one for a single query (no thread pool is
    asked), else ``threads`` or numba's, at most nq."""
    if nq <= 1:
        return 1
    import numba

    return max(1, min(int(threads or numba.get_num_threads()), nq))


def graph_walk(
    codes: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    entries: np.ndarray,
    entry_codes: np.ndarray | None = None,
    ef: int = DEFAULT_EF,
    n_entry: int = DEFAULT_N_ENTRY,
    exclude: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    threads: int | None = None,
    layout: WalkLayout | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Approximate top-k of each query by a walk over the lists ``(indptr, indices)`` of
    :func:`graphret.graph.search_graph.build_search_graph`.

    ``codes`` (n, d) unit rows; ``queries`` (q, d); ``entries``: entry rows
    (:func:`~graphret.graph.search_graph.entry_points`), of which the ``n_entry`` most similar
    seed each walk; ``entry_codes``: ``codes[entries]`` as one contiguous array, when the
    caller keeps it between calls (else gathered per call); ``ef``: the result-heap size that decides when the walk stops (larger:
    higher recall, slower; may be below k); ``exclude[i]``: a row query i must not return (-1: none); ``allowed``:
    bool mask (n,) of returnable rows (None: all); ``threads``: numba threads (default: numba's);
    ``layout``: the same inputs renumbered for locality (:func:`graphret.graph.layout.walk_layout`:
    the same answers, faster on large archives), used by walks without ``allowed``.

    Returns (rows int64 (q, k), cosines float32 (q, k), codes compared int64 (q,)), each row by
    decreasing cosine, ties by smaller row (with a layout: by smaller layout position)."""
    w = walk_inputs(codes, indptr, indices, queries, k, entries=entries, entry_codes=entry_codes, ef=ef, n_entry=n_entry,
                    exclude=exclude, allowed=allowed, layout=layout)
    return walk_checked(w, threads=threads)


def walk_checked(w: WalkInputs, *, threads: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`graph_walk` on inputs :func:`walk_inputs` (or :meth:`WalkInputs.with_queries`)
    has checked."""
    n, nq, k = w.n, len(w.queries), w.k
    if w.use_allowed and float(w.n_allowed) ** 2 < BRUTE_FACTOR * w.ef * n:
        return _exact_allowed(w.codes, w.queries, k, w.allowed, w.exclude)

    T = threads_for(threads, nq)
    slots = WalkScratch.get(n, T).slots
    out = (np.empty((nq, k), np.int64), np.empty((nq, k), np.float32), np.empty(nq, np.int64), np.empty(nq, np.int64))
    opts = (w.ef, w.n_entry, k)  # WalkOptions
    index, filt, layout = w.laid_out()  # (with a layout: the same walk over the renumbered archive)
    compact = _compact_of(layout)
    if T == 1:
        _walk_range(index, w.queries, 0, nq, opts, filt, slots, 0, out, compact)
    else:
        _walk_parallel(index, w.queries, opts, filt, slots, out, compact)
    out_i, out_s, out_n, found = out  # WalkOut
    if layout is not None:  # (a -1 maps to a row here, but a query short of k is answered again below, whole)
        out_i = layout.order[out_i]
    short = np.flatnonzero(found < k)
    if short.size:  # the walk could not reach k returnable rows: scan them exactly
        mask = w.allowed if w.use_allowed else np.ones(n, np.bool_)
        i2, s2, n2 = _exact_allowed(w.codes, w.queries[short], k, mask, w.exclude[short])
        out_i[short], out_s[short] = i2, s2
        out_n[short] = np.minimum(out_n[short] + n2, n)
    return out_i, out_s, out_n


@njit(cache=True, interpretable=True)
def _walk_code(index, code, opts, filt, slots, out, unit, normalise, compact):
    """One query's whole search in one compiled call: with ``normalise``, ``code`` (float32
    (1, d)) made unit into ``unit`` (:func:`graphret.kernels.unit.unit_rows`), then ``unit``
    walked as :func:`_walk_range` walks a batch's query (without, ``unit`` is walked as given).
    Returns unit_rows' status (the walk runs only when it is UNIT_OK)."""
    status = UNIT_OK
    if normalise:
        status, _ = unit_rows(code, unit)
    if status == UNIT_OK:
        _walk_range(index, unit, 0, 1, opts, filt, slots, 0, out, compact)
    return status


class SingleWalk:
    """One unfiltered query's search with nothing per call but one compiled call
    (:func:`_walk_code`: a code made unit, then walked; or a unit code walked): the index of ``base`` (inputs
    :func:`walk_inputs` checked once) as the kernel reads it, over its layout when it has one,
    and the map from the walk's positions to the caller's rows (``rows``: archive position ->
    the caller's row; None: archive positions), both made once.  The walk is the one
    :func:`walk_checked` runs for a one-query batch without filters, and the normalisation the
    one every query code gets (:func:`graphret.query.queries.unit_codes`), so the answers are
    the same, bit for bit."""

    def __init__(self, base: WalkInputs, rows: np.ndarray | None = None) -> None:
        self.base = base
        self.index, _, layout = base.laid_out()
        self.filter = (np.full(1, -1, np.int64), False, _NO_MASK)  # WalkFilter: no exclusion, no mask
        order = None if layout is None else layout.order
        self.rank = None if layout is None else layout.rank  # archive position -> layout position
        self.compact = _compact_of(layout)  # (a large archive's one-byte codes, as walk_checked walks them)
        self.to_row = order if rows is None else rows if order is None else rows[order]
        self.n = base.n
        self.dim = base.codes.shape[1]

    def __call__(self, code: np.ndarray, k: int, ef: int, *, exclude: int = -1,
                 normalise: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """(the unit code float32 (1, d), rows int64 (1, k), cosines float32 (1, k), codes
        compared int64 (1,)) of one query code, float32 (1, d) contiguous (and writable
        without ``normalise``: a unit code, walked as given), never returning archive position
        ``exclude`` (-1: none), with k <= n - (exclude >= 0) and ef >= 1 (the caller's checks);
        None when the code is not finite or all zeros (the caller's checks name it) or the walk
        reaches fewer than k rows (:func:`walk_checked` then answers by an exact scan)."""
        out = (np.empty((1, k), np.int64), np.empty((1, k), np.float32), np.empty(1, np.int64), np.empty(1, np.int64))
        unit = np.empty((1, self.dim), np.float32) if normalise else code
        filt = self.filter
        if exclude >= 0:
            filt = (np.array([exclude if self.rank is None else self.rank[exclude]], np.int64), False, _NO_MASK)
        status = _walk_code(self.index, code, (ef, self.base.n_entry, k), filt, WalkScratch.get(self.n, 1).slots,
                            out, unit, normalise, self.compact)
        if status != UNIT_OK or out[3][0] < k:
            return None
        return unit, (out[0] if self.to_row is None else self.to_row[out[0]]), out[1], out[2]


def _compact_of(layout: WalkLayout | None) -> tuple | None:
    """What :func:`_walk_range` reads to walk a layout's one-byte codes (then rescore), or None
    for a walk of the float32 codes (no layout, or one without them)."""
    if layout is None or layout.compact is None:
        return None
    return (layout.compact.codes, layout.compact.step, layout.compact.entry_codes, RESCORE_MARGIN, layout.starts,
            PREFETCH_GROUP_ROWS)


def _exact_allowed(codes, queries, k, allowed, ex):
    """Exact top-k over the allowed rows (the query's own row left out)."""
    rows = np.flatnonzero(allowed)
    local_ex = np.full(len(queries), -1, np.int64)
    has = ex >= 0
    if has.any():
        pos = np.searchsorted(rows, ex[has])
        ok = (pos < len(rows)) & (rows[np.minimum(pos, len(rows) - 1)] == ex[has])
        local_ex[np.flatnonzero(has)[ok]] = pos[ok]
    sub = np.ascontiguousarray(codes[rows])
    idx, sc = exact_search(sub, queries, k, exclude=local_ex)
    return rows[idx], sc, np.full(len(queries), len(rows), np.int64)
