"""Ranking with the graph's evidence: diffusion over the kNN graph, restricted to a query's
candidates.

Two diffusions, both power series of a normalised affinity built from the stored graph's
weights raised to ``gamma`` (``W^gamma``: sharper, as Iscen et al. found for ``gamma = 3``):

* **Manifold ranking** (Zhou et al., NIPS 2004; Iscen et al., CVPR 2017), query side, as the
  guide (section 8) states it: with ``S = D^{-1/2} W^gamma D^{-1/2}`` restricted to the
  candidates and ``y`` the query's ``seeds`` best cosines raised to ``gamma`` (0 elsewhere),
  ``f = (1 - a) sum_{t < steps} (a S)^t y`` (:func:`manifold_ranking`).
* **Graph-smoothed codes**, item side (database-side augmentation: Arandjelovic & Zisserman
  2012; Gordo et al. 2017, on the kNN graph): at build time every code is averaged with its
  graph neighbours, ``X~ = M^steps X`` with ``M = (I + lam D)^{-1} (I + lam W^gamma)``
  (:func:`smooth_codes`); at query time a candidate j scores ``<q, x~_j>``, which equals the
  same smoothing applied to the query's cosines over the *whole* graph,
  ``(M^steps s)_j`` with ``s_i = <q, x_i>`` -- an item whose neighbours are also close to q
  rises, one whose neighbours are far falls.  Query cost: one extra dot product per
  candidate (:func:`smoothed_scores`).

Restricted to the query's candidates (the walk's pool or the grown region), neither touches
anything else.  :func:`rerank` orders candidates by such a score.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from graphret.kernels.jit import njit

from graphret.errors import InputError
from graphret.kernels.vector import FAST

__all__ = [
    "smooth_codes",
    "smoothed_scores",
    "manifold_ranking",
    "rerank",
    "DEFAULT_GAMMA",
    "DEFAULT_SMOOTH_LAMBDA",
    "DEFAULT_SMOOTH_STEPS",
    "DEFAULT_ALPHA",
    "DEFAULT_STEPS",
    "DEFAULT_SEEDS",
]

DEFAULT_GAMMA = 3.0
DEFAULT_SMOOTH_LAMBDA = 0.25
DEFAULT_SMOOTH_STEPS = 2
DEFAULT_ALPHA = 0.9
DEFAULT_STEPS = 10
DEFAULT_SEEDS = 10


def _check_number(value, name: str, *, lo: float, hi: float | None = None, open_lo: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{{{name}}} must be a number, got {value!r}", param=name) from None
    bad = not np.isfinite(x) or (x <= lo if open_lo else x < lo) or (hi is not None and x >= hi)
    if bad:
        span = f"> {lo}" if open_lo else f">= {lo}"
        span += f" and < {hi}" if hi is not None else ""
        raise InputError(f"{{{name}}} must be a number {span}, got {value!r}", param=name)
    return x


def _check_steps(steps, name: str = "steps") -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise InputError(f"{{{name}}} must be a whole number >= 0, got {steps!r}", param=name)
    return int(steps)


def _graph(graph, n: int) -> sp.csr_matrix:
    if not sp.issparse(graph) or graph.shape != (n, n):
        raise InputError(f"the graph must be a scipy sparse {n} x {n} matrix over the codes; pass the store's kNN graph")
    G = sp.csr_matrix(graph, dtype=np.float64)
    G.sort_indices()
    if G.nnz and (G.data.min() < 0 or not np.all(np.isfinite(G.data))):
        raise InputError("the graph has negative or non-finite weights; rebuild it with knn_graph")
    return G


def smooth_codes(
    codes: np.ndarray,
    graph: sp.spmatrix,
    *,
    lam: float = DEFAULT_SMOOTH_LAMBDA,
    gamma: float = DEFAULT_GAMMA,
    steps: int = DEFAULT_SMOOTH_STEPS,
) -> np.ndarray:
    """Graph-smoothed codes ``X~ = M^steps X``, ``M = (I + lam D)^{-1} (I + lam W^gamma)``
    (``D`` the row sums of ``W^gamma``): float32 (n, d), not renormalised -- so that
    ``<q, x~_j>`` is exactly the smoothed cosine.  Computed once at build time; store it
    beside the codes (an Arrow fixed-size-list float32 column)."""
    X = np.asarray(codes, dtype=np.float32)
    if X.ndim != 2:
        raise InputError(f"{{codes}} must be a 2-D array (n, d), got shape {X.shape}")
    lam = _check_number(lam, "lam", lo=0.0)
    gamma = _check_number(gamma, "gamma", lo=0.0, open_lo=True)
    steps = _check_steps(steps)
    G = _graph(graph, X.shape[0])
    Wg = G.copy()
    Wg.data = Wg.data ** gamma
    deg = np.asarray(Wg.sum(axis=1), np.float64).ravel()
    scale = 1.0 / (1.0 + lam * deg)
    out = X.astype(np.float64)
    for _ in range(steps):
        out = (out + lam * (Wg @ out)) * scale[:, None]
    return out.astype(np.float32)


@njit(cache=True, fastmath=FAST)
def _smoothed_kernel(S, Q, rows, out):
    d = S.shape[1]
    for r in range(rows.shape[0]):
        q = Q[r]
        for b in range(rows.shape[1]):
            j = rows[r, b]
            if j < 0:
                out[r, b] = -np.inf
                continue
            s = np.float32(0.0)
            for t in range(d):
                s += S[j, t] * q[t]
            out[r, b] = s


def smoothed_scores(smoothed: np.ndarray, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``<q_r, x~_j>`` for each query r and candidate ``j = rows[r, b]`` (-1: none, scored
    -inf): float32 (q, m).  ``smoothed``: :func:`smooth_codes` of the archive."""
    S = np.ascontiguousarray(smoothed, dtype=np.float32)
    Q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    rows = np.ascontiguousarray(np.atleast_2d(rows), dtype=np.int64)
    if rows.shape[0] != Q.shape[0] or S.shape[1] != Q.shape[1]:
        raise InputError("rows must hold one candidate list per query, and the smoothed codes the queries' dimension")
    if rows.size and rows.max() >= S.shape[0]:
        raise InputError("a candidate row lies outside the smoothed codes; smooth the archive's own codes")
    out = np.empty(rows.shape, np.float32)
    _smoothed_kernel(S, Q, rows, out)
    return out


@njit(cache=True)
def _local(sorted_rows, order, j):
    """Position among the candidates of row j (binary search in the sorted rows), or -1."""
    lo = 0
    hi = sorted_rows.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if sorted_rows[mid] < j:
            lo = mid + 1
        else:
            hi = mid
    if lo < sorted_rows.shape[0] and sorted_rows[lo] == j:
        return order[lo]
    return -1


@njit(cache=True)
def _manifold_kernel(indptr, indices, weights, rows, y, alpha, steps, gamma, out):
    """Per query r: the candidates rows[r] (m of them; -1 = none), S restricted to them,
    f = (1 - a) sum_t (a S)^t y by the iteration f <- a S f + (1 - a) y."""
    m = rows.shape[1]
    for r in range(rows.shape[0]):
        order = np.argsort(rows[r])
        sorted_rows = rows[r][order]
        # restricted adjacency (CSR over local positions): count, then fill
        cnt = np.zeros(m + 1, np.int64)
        for b in range(m):
            j = rows[r, b]
            if j < 0:
                continue
            for p in range(indptr[j], indptr[j + 1]):
                if _local(sorted_rows, order, indices[p]) >= 0:
                    cnt[b + 1] += 1
        for b in range(m):
            cnt[b + 1] += cnt[b]
        li = np.empty(cnt[m], np.int64)
        lw = np.empty(cnt[m], np.float64)
        fill = cnt[:m].copy()
        deg = np.zeros(m, np.float64)
        for b in range(m):
            j = rows[r, b]
            if j < 0:
                continue
            for p in range(indptr[j], indptr[j + 1]):
                loc = _local(sorted_rows, order, indices[p])
                if loc >= 0:
                    w = float(weights[p]) ** gamma
                    li[fill[b]] = loc
                    lw[fill[b]] = w
                    fill[b] += 1
                    deg[b] += w
        for b in range(m):
            deg[b] = 1.0 / np.sqrt(deg[b]) if deg[b] > 0 else 0.0
        f = np.empty(m, np.float64)
        nxt = np.empty(m, np.float64)
        for b in range(m):
            f[b] = (1.0 - alpha) * y[r, b]
        for _ in range(steps - 1):
            for b in range(m):
                acc = 0.0
                for p in range(cnt[b], cnt[b + 1]):
                    acc += lw[p] * deg[li[p]] * f[li[p]]
                nxt[b] = alpha * deg[b] * acc + (1.0 - alpha) * y[r, b]
            for b in range(m):
                f[b] = nxt[b]
        for b in range(m):
            out[r, b] = f[b] if rows[r, b] >= 0 else -np.inf


def manifold_ranking(
    indptr: np.ndarray,
    indices: np.ndarray,
    weights: np.ndarray,
    rows: np.ndarray,
    sims: np.ndarray,
    *,
    seeds: int = DEFAULT_SEEDS,
    alpha: float = DEFAULT_ALPHA,
    steps: int = DEFAULT_STEPS,
    gamma: float = DEFAULT_GAMMA,
) -> np.ndarray:
    """Manifold-ranking scores of each query's candidates (the module docstring's first
    diffusion) on the graph ``(indptr, indices, weights)`` (the store's symmetric kNN graph as
    CSR arrays): ``rows`` (q, m) candidate rows by decreasing cosine ``sims`` (q, m) (-1 /
    -inf: none); ``y`` = the first ``seeds`` cosines (clipped at 0) to the power ``gamma``;
    ``steps`` terms of the series.  Returns float64 (q, m); a candidate the graph does not join
    to the seeds scores ``(1 - a) y``."""
    rows = np.ascontiguousarray(np.atleast_2d(rows), dtype=np.int64)
    sims = np.asarray(np.atleast_2d(sims), dtype=np.float64)
    if rows.shape != sims.shape:
        raise InputError("rows and sims must have one shape (queries, candidates)")
    alpha = _check_number(alpha, "alpha", lo=0.0, hi=1.0)
    gamma = _check_number(gamma, "gamma", lo=0.0, open_lo=True)
    steps = max(_check_steps(steps), 1)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise InputError(f"{{seeds}} must be a whole number >= 1, got {seeds!r}", param="seeds")
    # the graph's own arrays as they are (int32 / float32 from scipy): no per-call copies
    indptr = np.ascontiguousarray(indptr)
    indices = np.ascontiguousarray(indices)
    weights = np.ascontiguousarray(weights)
    if not (np.issubdtype(indptr.dtype, np.integer) and np.issubdtype(indices.dtype, np.integer) and np.issubdtype(weights.dtype, np.floating)):
        raise InputError("the graph must be CSR arrays: integer indptr and indices, float weights (graph.indptr, graph.indices, graph.data)")
    if len(indices) != indptr[-1] or len(weights) != len(indices):
        raise InputError("the graph's indptr, indices and weights do not fit together; pass graph.indptr, graph.indices, graph.data")
    if rows.size and rows.max() >= len(indptr) - 1:
        raise InputError("a candidate row lies outside the graph; pass the archive's graph")
    y = np.zeros(rows.shape, np.float64)
    s = min(int(seeds), rows.shape[1])
    y[:, :s] = np.maximum(np.where(rows[:, :s] >= 0, sims[:, :s], 0.0), 0.0) ** gamma
    out = np.empty(rows.shape, np.float64)
    _manifold_kernel(indptr, indices, weights, rows, y, alpha, steps, gamma, out)
    return out


def rerank(rows: np.ndarray, scores: np.ndarray, k: int, *, carry: np.ndarray | None = None):
    """Each query's candidates ordered by decreasing ``scores`` (ties: earlier candidate
    first), the best k: (rows int64 (q, k), their scores) -- and, with ``carry`` (an array of
    the rows' shape, e.g. the walk's cosines), ``carry`` in the same order as a third item."""
    rows = np.atleast_2d(np.asarray(rows))
    scores = np.atleast_2d(np.asarray(scores))
    if scores.shape != rows.shape:
        raise InputError("scores must have the shape of rows (queries, candidates)")
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    out = (np.take_along_axis(rows, order, axis=1).astype(np.int64), np.take_along_axis(scores, order, axis=1))
    if carry is None:
        return out
    return out + (np.take_along_axis(np.atleast_2d(np.asarray(carry)), order, axis=1),)
