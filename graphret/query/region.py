"""Region mode: Haq, Moradi & Wang's Algorithm 1 -- region growing inside the community that
gains the most quality from the query.

For each query q:

1. **Short-list** the ``shortlist`` communities whose centroids are most similar to q.
2. Compute q's similarities to the short-listed members only, and give q its ``k`` strongest
   edges among them (k = the store graph's k; weights are similarities > 0, as in the graph).
3. **Choose** the community c with the largest gain of attaching q, i.e. CNM's merge gain of
   the singleton {q} and c: ``term(c + q) - term(c) - term({q})`` with the store's quality
   function (:mod:`graphret.communities.quality`, the same term CNM optimises).  For Newman's
   modularity this is ``w(q,c)/W - g k_q a_c / (2W^2)``.
4. **Grow** a region R = {q} inside c: repeatedly add the member j with the largest gain of
   joining R, ``term(R + j) - term(R) - term({j})`` (Newman: ``w(j,R)/W - g k_j a_R/(2W^2)``),
   among the members connected to R, then add j's edges inside c to the neighbours' w(., R).
   When no available member connects to R, the most similar remaining member (by cosine to q)
   joins R and growing goes on from it.  Stop when K are taken.
5. When c is exhausted, go on to the next community: the other short-listed ones by
   decreasing attach gain, then the rest by centroid similarity (their similarities are
   computed then; q has no edges into them, so they start from their most similar member).

Results are ranked in the order they joined the region (the chosen community's members come
first), each with its cosine score.  Filters and the query's own item are applied before
anything: excluded members are neither scored nor grown into.  The reported scanned fraction
counts the archive codes compared with q (centroids are not counted).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from graphret.communities.kernels import join_gain
from graphret.errors import InputError
from graphret.graph.knn import row_dots
from graphret.graph.topk import check_k
from graphret.query.index import RetrievalIndex

DEFAULT_SHORTLIST = 4


def _community_sims(index: RetrievalIndex, q: np.ndarray, c: int, allowed_s: np.ndarray | None, excl: int):
    """(similarity per member of c (-inf: unavailable), available mask, codes compared)."""
    lo, hi = int(index.off[c]), int(index.off[c + 1])
    codes = index.sorted_codes
    if allowed_s is None:
        sims = np.empty(hi - lo, np.float32)
        row_dots(codes, lo, hi, q, sims)
        avail = np.ones(hi - lo, bool)
        compared = hi - lo
    else:
        avail = allowed_s[lo:hi].copy()
        sims = np.full(hi - lo, -np.inf, np.float32)
        members = np.flatnonzero(avail)
        sims[members] = codes[lo + members] @ q
        compared = len(members)
    if lo <= excl < hi:
        avail[excl - lo] = False
        sims[excl - lo] = -np.inf
    return sims, avail, compared


@njit(cache=True)
def _grow_kernel(qcode, lo, hi, sims, avail, wq, deg, indptr, indices, data, k_q, need, W2, g, wm):
    """Region growing inside one community (sorted indices lo..hi-1); returns the local indices
    taken, in order.  The frontier (available members connected to R) is kept as a list, so a
    step costs O(|frontier|), not O(community size)."""
    n = hi - lo
    wR = wq.copy()
    kj = deg + wq
    avail = avail.copy()
    in_front = np.zeros(n, np.bool_)
    front = np.empty(n, np.int64)
    nf = 0
    for j in range(n):
        if avail[j] and wR[j] > 0:
            in_front[j] = True
            front[nf] = j
            nf += 1
    taken = np.empty(min(need, n), np.int64)
    nt = 0
    eR = 0.0
    aR = k_q
    nR = 1.0
    while nt < need:
        best = -1
        if nf == 0:
            bs = -np.inf
            for j in range(n):
                if avail[j] and (best < 0 or sims[j] > bs):
                    best = j
                    bs = sims[j]
            if best < 0:
                break
        else:
            bg = -np.inf
            bpos = -1
            for p in range(nf):
                j = front[p]
                gain = join_gain(qcode, eR, aR, nR, wR[j], kj[j], W2, g, wm)
                if gain > bg or (gain == bg and sims[j] > sims[best]):
                    bg = gain
                    best = j
                    bpos = p
            front[bpos] = front[nf - 1]
            nf -= 1
        in_front[best] = False
        avail[best] = False
        taken[nt] = best
        nt += 1
        eR += wR[best]
        aR += kj[best]
        nR += 1.0
        row = lo + best
        for p in range(indptr[row], indptr[row + 1]):
            nb = indices[p]
            if nb >= lo and nb < hi:
                j = nb - lo
                wR[j] += data[p]
                if avail[j] and not in_front[j]:
                    in_front[j] = True
                    front[nf] = j
                    nf += 1
    return taken[:nt]


def _grow(index: RetrievalIndex, c: int, sims: np.ndarray, avail: np.ndarray, q_nb: np.ndarray, q_w: np.ndarray,
          k_q: float, need: int) -> list[int]:
    """Sorted indices (local to c) of up to ``need`` members of c, in the order they join the
    region."""
    lo, hi = int(index.off[c]), int(index.off[c + 1])
    e_tot, a_tot, n_tot, W = index.totals
    indptr, indices, data = index.graph_arrays
    wq = np.zeros(hi - lo, np.float64)
    inside = (q_nb >= lo) & (q_nb < hi)
    np.add.at(wq, q_nb[inside] - lo, q_w[inside])
    W2 = W + k_q if W + k_q > 0 else 1.0
    taken = _grow_kernel(
        index.quality.code, lo, hi, np.asarray(sims, np.float64), avail, wq, index.degree[lo:hi],
        indptr, indices, data,
        float(k_q), int(need), float(W2), float(index.quality.resolution), float(index.quality.w_max),
    )
    return taken.tolist()


def region_search(
    index: RetrievalIndex,
    queries: np.ndarray,
    k: int,
    *,
    shortlist: int = DEFAULT_SHORTLIST,
    exclude: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    return_chosen: bool = False,
):
    """Haq's Algorithm 1 for each query (see the module docstring).

    Returns (positions int64 (q, k) into the archive, scores float32 (q, k), scanned fraction
    float64 (q,)) and, with ``return_chosen``, the chosen community (dense label) per query."""
    queries = index.check_queries(queries)
    if isinstance(shortlist, bool) or not isinstance(shortlist, (int, np.integer)) or shortlist < 1:
        raise InputError(f"the short-list must hold at least 1 community, got {shortlist!r}; use e.g. {{shortlist={DEFAULT_SHORTLIST}}}", param="shortlist")
    q = len(queries)
    C = index.n_communities
    off = index.off
    allowed_s = index.positions_in_sorted(allowed)
    total = int(allowed_s.sum()) if allowed_s is not None else index.n
    excl_s = index.excluded_in_sorted(exclude, q, allowed_s)
    check_k(k, total - (1 if np.any(excl_s >= 0) else 0), what="the archive after filters")
    index.totals  # build the graph layout before the loop
    L = min(int(shortlist), C)
    cscores = queries @ index.centroids.T
    out_pos = np.empty((q, k), np.int64)
    out_sc = np.empty((q, k), np.float32)
    scanned = np.zeros(q, np.float64)
    chosen = np.full(q, -1, np.int64)
    for i in range(q):
        x = queries[i]
        cs = cscores[i]
        short = np.argpartition(-cs, L - 1)[:L] if L < C else np.arange(C)
        short = short[np.argsort(-cs[short], kind="stable")]
        cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for c in short:
            sims, avail, compared = _community_sims(index, x, int(c), allowed_s, int(excl_s[i]))
            cache[int(c)] = (sims, avail)
            scanned[i] += compared
        # the query's k strongest edges to short-listed members
        all_sims = np.concatenate([cache[int(c)][0] for c in short])
        all_idx = np.concatenate([np.arange(off[c], off[c + 1]) for c in short])
        kk = min(index.knn_k, len(all_sims))
        top = np.argpartition(-all_sims, kk - 1)[:kk] if kk < len(all_sims) else np.arange(len(all_sims))
        good = np.isfinite(all_sims[top]) & (all_sims[top] > 0)
        q_nb, q_w = all_idx[top[good]], all_sims[top[good]].astype(np.float64)
        k_q = float(q_w.sum())
        comm_of_edge = np.searchsorted(off, q_nb, side="right") - 1
        gains = []
        for c in short:
            w_qc = float(q_w[comm_of_edge == c].sum())
            gains.append(index.attach_gain(w_qc, k_q, int(c)) if w_qc > 0 else -np.inf)
        gains = np.asarray(gains)
        first = short[np.lexsort((-cs[short], -gains))]
        taken: list[int] = []
        visited = set()

        def visit(c: int) -> None:
            visited.add(c)
            if c not in cache:
                sims, avail, compared = _community_sims(index, x, c, allowed_s, int(excl_s[i]))
                cache[c] = (sims, avail)
                scanned[i] += compared
            sims, avail = cache[c]
            got = _grow(index, c, sims, avail, q_nb, q_w, k_q, k - len(taken))
            taken.extend(int(off[c]) + j for j in got)

        for c in first:
            if len(taken) >= k:
                break
            visit(int(c))
        if len(taken) < k:
            for c in np.argsort(-cs, kind="stable"):
                if len(taken) >= k:
                    break
                if int(c) not in visited:
                    visit(int(c))
        chosen[i] = int(first[0])
        taken_arr = np.asarray(taken[:k], np.int64)
        out_pos[i] = index.order[taken_arr]
        out_sc[i] = index.sorted_codes[taken_arr] @ x
    result = (out_pos, out_sc, scanned / max(index.n, 1))
    return result + (chosen,) if return_chosen else result
