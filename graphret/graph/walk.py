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

Batches run in numba, queries split over threads; every query is independent, so results do
not depend on the number of threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from graphret.errors import InputError
from graphret.graph.knn import check_dimension, exact_search
from graphret.graph.topk import check_k, heap_drain, heap_push

#: float reassociation for SIMD dot products, keeping inf/NaN semantics
FAST = {"reassoc", "contract", "nsz", "arcp"}

__all__ = ["graph_walk", "walk_inputs", "walk_checked", "threads_for", "WalkInputs", "walk_one", "score_entries", "WalkScratch", "DEFAULT_EF", "DEFAULT_N_ENTRY", "BRUTE_FACTOR"]

DEFAULT_EF = 48
DEFAULT_N_ENTRY = 2
#: scan the allowed rows exactly when n_allowed^2 < BRUTE_FACTOR * ef * n
BRUTE_FACTOR = 10.0


@intrinsic
def prefetch(typingctx, arr, row, col):
    """Hint the CPU to fetch ``arr[row, col]``'s cache line (LLVM ``llvm.prefetch``, read, keep
    in all cache levels): a walk prefetches every unseen neighbour's code before scoring
    them, so the memory loads overlap instead of queueing one after another."""
    if not isinstance(arr, types.Array) or arr.ndim != 2:
        return None

    def codegen(context, builder, signature, args):
        aryty, rowty, colty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        inds = [context.cast(builder, args[1], rowty, types.intp), context.cast(builder, args[2], colty, types.intp)]
        ptr = cgutils.get_item_pointer2(context, builder, data=ary.data, shape=cgutils.unpack_tuple(builder, ary.shape),
                                        strides=cgutils.unpack_tuple(builder, ary.strides), layout=aryty.layout,
                                        inds=inds, wraparound=False, boundscheck=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, row, col), codegen


@njit(cache=True, inline="always")
def prefetch_row(X, j):
    """Prefetch row j of X, one call per 64-byte line."""
    step = max(1, 64 // X.itemsize)
    for t in range(0, X.shape[1], step):
        prefetch(X, j, t)


@njit(cache=True, fastmath=FAST, inline="always")
def qdot(X, j, q):
    """<x_j, q> in float32 (SIMD)."""
    s = np.float32(0.0)
    for t in range(X.shape[1]):
        s += X[j, t] * q[t]
    return s


@njit(cache=True, fastmath=FAST, inline="always")
def qdot4(X, j0, j1, j2, j3, q):
    """Four dot products in one pass over q (independent chains, q loaded once)."""
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    for t in range(X.shape[1]):
        v = q[t]
        s0 += X[j0, t] * v
        s1 += X[j1, t] * v
        s2 += X[j2, t] * v
        s3 += X[j3, t] * v
    return s0, s1, s2, s3


@njit(cache=True, inline="always")
def _cand_before(s1, j1, s2, j2):
    return s1 > s2 or (s1 == s2 and j1 < j2)


@njit(cache=True)
def _cand_push(cs, ci, size, s, j):
    """Push (s, j) on the candidate max-heap (best at the root); returns the new size."""
    pos = size
    while pos > 0:
        parent = (pos - 1) >> 1
        if _cand_before(s, j, cs[parent], ci[parent]):
            cs[pos] = cs[parent]
            ci[pos] = ci[parent]
            pos = parent
        else:
            break
    cs[pos] = s
    ci[pos] = j
    return size + 1


@njit(cache=True)
def _cand_pop(cs, ci, size):
    """Remove the root of the candidate heap (read it before); returns the new size."""
    size -= 1
    s = cs[size]
    j = ci[size]
    pos = 0
    while True:
        left = 2 * pos + 1
        if left >= size:
            break
        best = left
        right = left + 1
        if right < size and _cand_before(cs[right], ci[right], cs[left], ci[left]):
            best = right
        if _cand_before(cs[best], ci[best], s, j):
            cs[pos] = cs[best]
            ci[pos] = ci[best]
            pos = best
        else:
            break
    if size > 0:
        cs[pos] = s
        ci[pos] = j
    return size


@njit(cache=True, fastmath=FAST)
def score_entries(EC, entries, q, n_entry, out_s, out_j):
    """The ``n_entry`` entry rows most similar to q, best first, into out_s / out_j; returns
    how many (min(n_entry, len(entries))).  ``EC[a]`` is the code of row ``entries[a]``
    (a contiguous copy: scoring it streams through memory)."""
    m = 0
    for a in range(entries.shape[0]):
        e = entries[a]
        s = qdot(EC, a, q)
        if m < n_entry:
            pos = m
            m += 1
        elif _cand_before(s, e, out_s[m - 1], out_j[m - 1]):
            pos = m - 1
        else:
            continue
        while pos > 0 and _cand_before(s, e, out_s[pos - 1], out_j[pos - 1]):
            out_s[pos] = out_s[pos - 1]
            out_j[pos] = out_j[pos - 1]
            pos -= 1
        out_s[pos] = s
        out_j[pos] = e
    return m


@njit(cache=True, fastmath=FAST)
def walk_one(X, indptr, indices, q, seed_s, seed_j, n_seeds, ef, ex, use_allowed, allowed,
             stamp, cur, cand_s, cand_i, res_s, res_t, res_i, seen, seen_s, expanded):
    """One query's walk (the module docstring's steps 2-4), for use inside other kernels.

    ``stamp[j] == cur`` marks j as seen (the caller bumps ``cur`` per query); ``cand_*`` hold
    the candidate heap (capacity >= number of nodes), ``res_*`` the result heap (capacity
    ``ef``); every node touched is appended to ``seen`` with its cosine in ``seen_s`` (capacity
    >= number of nodes), and the position in ``seen`` of every node expanded to ``expanded``.
    Returns (results kept, nodes touched, nodes expanded)."""
    n_res = 0
    n_cand = 0
    n_seen = 0
    n_exp = 0
    for a in range(n_seeds):
        j = seed_j[a]
        if stamp[j] == cur:
            continue
        stamp[j] = cur
        s = seed_s[a]
        seen[n_seen] = j
        seen_s[n_seen] = s
        n_seen += 1
        n_cand = _cand_push(cand_s, cand_i, n_cand, s, n_seen - 1)
        if j != ex and (not use_allowed or allowed[j]):
            n_res = heap_push(res_s, res_t, res_i, n_res, ef, s, j, j)
    while n_cand > 0:
        sc = cand_s[0]
        if n_res == ef and sc < res_s[0]:
            break
        pos = cand_i[0]
        c = seen[pos]
        expanded[n_exp] = pos
        n_exp += 1
        n_cand = _cand_pop(cand_s, cand_i, n_cand)
        # unseen neighbours go to the end of `seen`, their codes prefetched, then scored
        first = n_seen
        for p in range(indptr[c], indptr[c + 1]):
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
            j = seen[b]
            s = seen_s[b]
            if n_res < ef or s > res_s[0]:
                n_cand = _cand_push(cand_s, cand_i, n_cand, s, b)
                if j != ex and (not use_allowed or allowed[j]):
                    n_res = heap_push(res_s, res_t, res_i, n_res, ef, s, j, j)
    return n_res, n_seen, n_exp


@njit(cache=True, fastmath=FAST)
def _walk_range(X, indptr, indices, entries, EC, Q, lo, hi, n_entry, ef, k, exclude, use_allowed, allowed,
                stamps, counters, t, work_s, work_i, out_i, out_s, out_n, out_found):
    """Queries lo..hi-1 with scratch slot t (stamps, and the work arrays of WalkScratch)."""
    stamp = stamps[t]
    cand_s = work_s[t, 0]
    seen_s = work_s[t, 1]
    cand_i = work_i[t, 0]
    seen = work_i[t, 1]
    expanded = work_i[t, 2]
    res_s = np.empty(ef, np.float32)
    res_t = np.empty(ef, np.int64)
    res_i = np.empty(ef, np.int64)
    seed_s = np.empty(max(n_entry, 1), np.float32)
    seed_j = np.empty(max(n_entry, 1), np.int64)
    top_s = np.empty(k, np.float32)
    top_t = np.empty(k, np.int64)
    top_i = np.empty(k, np.int64)
    for r in range(lo, hi):
        cur = next_stamp(stamp, counters, t)
        q = Q[r]
        m = score_entries(EC, entries, q, n_entry, seed_s, seed_j)
        n_res, n_seen, _ = walk_one(X, indptr, indices, q, seed_s, seed_j, m, ef, exclude[r],
                                    use_allowed, allowed, stamp, cur, cand_s, cand_i,
                                    res_s, res_t, res_i, seen, seen_s, expanded)
        # codes compared: the entry points scored, plus the nodes touched that are not one
        out_n[r] = entries.shape[0] + n_seen - m
        # the answer: the best k of every node scored (the result heap's best k when ef >= k)
        kk = best_seen(seen, seen_s, n_seen, k, exclude[r], use_allowed, allowed, top_s, top_t, top_i,
                       out_i[r], out_s[r])
        out_found[r] = kk
        for b in range(kk, k):
            out_i[r, b] = -1
            out_s[r, b] = -np.inf


@njit(cache=True)
def next_stamp(stamp, counters, t):
    """The next query's stamp value in slot t (uint8: the stamps are zeroed every 255 queries,
    a small array that stays in cache)."""
    if counters[t] >= 255:
        stamp[:] = 0
        counters[t] = 0
    counters[t] += 1
    return np.uint8(counters[t])


@njit(cache=True)
def best_seen(seen, seen_s, n_seen, k, ex, use_allowed, allowed, top_s, top_t, top_i, out_i, out_s):
    """The best k returnable nodes among the first n_seen of ``seen`` into out_i / out_s, best
    first (ties: smaller row); returns how many."""
    size = 0
    for b in range(n_seen):
        j = seen[b]
        s = seen_s[b]
        if size == k and s < top_s[0]:
            continue
        if j == ex or (use_allowed and not allowed[j]):
            continue
        size = heap_push(top_s, top_t, top_i, size, k, s, j, j)
    heap_drain(top_s, top_t, top_i, size, out_i, out_s)
    return size


@njit(cache=True, parallel=True)
def _walk_parallel(X, indptr, indices, entries, EC, Q, n_entry, ef, k, exclude, use_allowed, allowed,
                   stamps, counters, work_s, work_i, out_i, out_s, out_n, out_found):
    nq = Q.shape[0]
    T = stamps.shape[0]
    step = (nq + T - 1) // T
    for t in prange(T):
        lo = t * step
        hi = min(nq, lo + step)
        if lo < hi:
            _walk_range(X, indptr, indices, entries, EC, Q, lo, hi, n_entry, ef, k, exclude, use_allowed, allowed,
                        stamps, counters, t, work_s, work_i, out_i, out_s, out_n, out_found)


class WalkScratch:
    """Per-thread work memory for walks over an archive of n rows, kept between calls so a
    single query neither allocates nor zeroes n-sized arrays: ``stamps`` (uint8 'seen'
    marks), ``work_s`` (candidate and seen cosines) and ``work_i`` (candidate, seen and
    expanded positions).  One is cached per (n, threads)."""

    _cache: dict[tuple[int, int], "WalkScratch"] = {}

    def __init__(self, n: int, threads: int) -> None:
        self.stamps = np.zeros((threads, n), np.uint8)
        self.counters = np.zeros(threads, np.int64)
        self.work_s = np.empty((threads, 2, n), np.float32)
        self.work_i = np.empty((threads, 3, n), np.int64)

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
        import weakref

        _CHECKED[:] = _CHECKED[-3:] + [(weakref.ref(indptr), weakref.ref(indices), n)]
    return indptr, indices


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

    @property
    def n(self) -> int:
        return self.codes.shape[0]

    def with_queries(self, queries: np.ndarray, k: int, *, exclude: np.ndarray | None = None,
                     allowed: np.ndarray | None = None, n_allowed: int | None = None, ef: int | None = None) -> "WalkInputs":
        """These checked lists with other queries: only the per-query inputs are checked, so a
        caller that keeps the archive's inputs (a searcher, prepared once per store version)
        pays nothing that grows with the archive per call.  ``n_allowed``: ``allowed.sum()``
        when the caller knows it; ``ef``: another result heap than these inputs'."""
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
        k = check_k(k, n_allowed - (1 if (ex >= 0).any() else 0), what="the archive after filters")
        return WalkInputs(self.codes, self.indptr, self.indices, queries, self.entries, self.entry_codes, ef, self.n_entry,
                          ex, use_allowed, allowed, n_allowed, k)


#: the ``allowed`` placeholder of an unfiltered walk
_NO_MASK = np.zeros(1, np.bool_)


def walk_inputs(codes: np.ndarray, indptr: np.ndarray, indices: np.ndarray, queries: np.ndarray, k: int, *,
                entries: np.ndarray, entry_codes: np.ndarray | None, ef: int, n_entry: int,
                exclude: np.ndarray | None, allowed: np.ndarray | None) -> WalkInputs:
    """The checks every walk over the lists makes of its inputs (:func:`graph_walk` and the
    region search of :mod:`graphret.query.graph_region`), with one-line errors, and K bounded by
    the rows the filters leave."""
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
    ef = _check_positive(ef, "ef")
    n_entry = _check_positive(n_entry, "n_entry")
    lists = WalkInputs(codes, indptr, indices, np.zeros((0, codes.shape[1]), np.float32), entries, entry_codes, ef, n_entry,
                       np.zeros(0, np.int64), False, _NO_MASK, n, 1)
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Approximate top-k of each query by a walk over the lists ``(indptr, indices)`` of
    :func:`graphret.graph.search_graph.build_search_graph`.

    ``codes`` (n, d) unit rows; ``queries`` (q, d); ``entries``: entry rows
    (:func:`~graphret.graph.search_graph.entry_points`), of which the ``n_entry`` most similar
    seed each walk; ``entry_codes``: ``codes[entries]`` as one contiguous array, when the
    caller keeps it between calls (else gathered per call); ``ef``: the result-heap size that decides when the walk stops (larger:
    higher recall, slower; may be below k); ``exclude[i]``: a row query i must not return (-1: none); ``allowed``:
    bool mask (n,) of returnable rows (None: all); ``threads``: numba threads (default: numba's).

    Returns (rows int64 (q, k), cosines float32 (q, k), codes compared int64 (q,)), each row by
    decreasing cosine, ties by smaller row."""
    w = walk_inputs(codes, indptr, indices, queries, k, entries=entries, entry_codes=entry_codes, ef=ef, n_entry=n_entry,
                    exclude=exclude, allowed=allowed)
    return walk_checked(w, threads=threads)


def walk_checked(w: WalkInputs, *, threads: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`graph_walk` on inputs :func:`walk_inputs` (or :meth:`WalkInputs.with_queries`)
    has checked."""
    codes, indptr, indices, queries, entries, entry_codes = w.codes, w.indptr, w.indices, w.queries, w.entries, w.entry_codes
    n, nq, k, ef, n_entry, ex, use_allowed, allowed, n_allowed = w.n, len(w.queries), w.k, w.ef, w.n_entry, w.exclude, \
        w.use_allowed, w.allowed, w.n_allowed

    if use_allowed and float(n_allowed) ** 2 < BRUTE_FACTOR * ef * n:
        return _exact_allowed(codes, queries, k, allowed, ex)

    T = threads_for(threads, nq)
    scratch = WalkScratch.get(n, T)
    out_i = np.empty((nq, k), np.int64)
    out_s = np.empty((nq, k), np.float32)
    out_n = np.empty(nq, np.int64)
    found = np.empty(nq, np.int64)
    if T == 1:
        _walk_range(codes, indptr, indices, entries, entry_codes, queries, 0, nq, n_entry, ef, k, ex, use_allowed, allowed,
                    scratch.stamps, scratch.counters, 0, scratch.work_s, scratch.work_i, out_i, out_s, out_n, found)
    else:
        _walk_parallel(codes, indptr, indices, entries, entry_codes, queries, n_entry, ef, k, ex, use_allowed, allowed,
                       scratch.stamps, scratch.counters, scratch.work_s, scratch.work_i, out_i, out_s, out_n, found)
    short = np.flatnonzero(found < k)
    if short.size:  # the walk could not reach k returnable rows: scan them exactly
        mask = allowed if use_allowed else np.ones(n, np.bool_)
        i2, s2, n2 = _exact_allowed(codes, queries[short], k, mask, ex[short])
        out_i[short], out_s[short] = i2, s2
        out_n[short] = np.minimum(out_n[short] + n2, n)
    return out_i, out_s, out_n


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
