"""Probe lists of bounded size from communities, for IVF-style probing.

Probe (the FAISS IVF bridge) scans the P lists whose centroids are nearest the query.  It
works when the lists are compact and of even size; modularity communities are neither (plain
CNM on MedNIST pixel codes gives 29 communities, the largest holding a fifth of the archive),
so probe on them scans a lot for its recall.  :func:`bounded_lists` turns any partition into
lists of at most ``max_size`` items, leaving the partition itself (the one users analyse)
unchanged:

1. **Cut**: a community larger than ``max_size`` is split along a dendrogram -- CNM's, when
   given (``dendrogram=(a, b)`` in scipy's linkage ids, the size-bounded cut: each item goes
   to its largest ancestor of at most ``max_size`` items), else one made for it by CNM
   (:func:`graphret.communities.cnm.cnm`, Wakita-Tsurumi size heuristic) on the community's own
   subgraph, whose best cut is split again while too large.
2. **Split** what the graph cannot split (a piece with no inside edges, or whose CNM keeps it
   whole) into ``ceil(size / max_size)`` spherical k-means cells of its codes (seeded), or
   into consecutive chunks when no codes are given.
3. **Merge** pieces smaller than ``min_size`` into the neighbouring piece of the same
   community they share the most edge weight with, while the merged piece stays within
   ``max_size`` (smallest pieces first, ties by smaller label).

Every list lies inside one community, so probing lists refines probing communities.  The
result is renumbered 0.. by decreasing size (ties by smallest member).  Deterministic.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from graphret.kernels.jit import njit

from graphret.communities.quality import renumber_membership
from graphret.errors import InputError

__all__ = ["bounded_lists", "dendrogram_cut", "list_sizes", "default_max_size"]


def default_max_size(n: int) -> int:
    """``2 * ceil(sqrt(n))``: about sqrt(n) lists once the pieces are split and merged, as
    FAISS's rule of thumb for IVF (nlist ~ sqrt(n))."""
    return max(2, 2 * int(np.ceil(np.sqrt(max(n, 1)))))


def list_sizes(lists: np.ndarray) -> np.ndarray:
    """Items per list (int64)."""
    return np.bincount(np.asarray(lists, np.int64))


@njit(cache=True)
def _bounded_cut(n, a, b, size_after, max_size):
    """For each item, its largest dendrogram ancestor of at most max_size items (linkage ids;
    an item whose parent is already too large is its own piece)."""
    steps = a.shape[0]
    total = n + steps
    parent = np.full(total, -1, np.int64)
    size = np.ones(total, np.int64)
    for t in range(steps):
        parent[a[t]] = n + t
        parent[b[t]] = n + t
        size[n + t] = size_after[t]
    top = np.arange(total)
    for v in range(total - 1, -1, -1):  # parents have larger ids: top-down
        p = parent[v]
        if p >= 0 and size[p] <= max_size:
            top[v] = top[p]
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = top[i]
    return out


def dendrogram_cut(n: int, a: np.ndarray, b: np.ndarray, *, max_size: int) -> np.ndarray:
    """The size-bounded cut of a dendrogram over n items (merge t joins ids ``a[t]`` and
    ``b[t]`` into ``n + t``): each item's largest ancestor holding at most ``max_size`` items,
    as a membership renumbered 0.. (pieces by decreasing size)."""
    a = np.ascontiguousarray(a, dtype=np.int64)
    b = np.ascontiguousarray(b, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1 or a.size > max(n - 1, 0):
        raise InputError("the dendrogram's a and b must be two 1-D arrays of at most n - 1 merges")
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n + a.size):
        raise InputError("the dendrogram names an id outside 0..n+merges-1; pass the CNM result's dendrogram")
    size_after = _merge_sizes(n, a, b)
    return renumber_membership(_bounded_cut(int(n), a, b, size_after, int(max_size)))


@njit(cache=True)
def _merge_sizes(n, a, b):
    steps = a.shape[0]
    size = np.ones(n + steps, np.int64)
    out = np.empty(steps, np.int64)
    for t in range(steps):
        size[n + t] = size[a[t]] + size[b[t]]
        out[t] = size[n + t]
    return out


def _kmeans_split(codes: np.ndarray, parts: int, seed: int, iters: int = 10) -> np.ndarray:
    """Spherical k-means of ``codes`` into ``parts`` cells (k-means++ seeding, seeded), then
    cells above the mean size rebalanced by moving their farthest members: labels 0..parts-1."""
    m = len(codes)
    rng = np.random.default_rng(seed)
    X = codes.astype(np.float32)
    centres = np.empty((parts, X.shape[1]), np.float32)
    centres[0] = X[rng.integers(m)]
    best = X @ centres[0]
    for c in range(1, parts):
        p = np.maximum(1.0 - best, 0.0)
        p = p / p.sum() if p.sum() > 0 else np.full(m, 1.0 / m)
        centres[c] = X[rng.choice(m, p=p)]
        best = np.maximum(best, X @ centres[c])
    labels = np.zeros(m, np.int64)
    for _ in range(iters):
        labels = np.argmax(X @ centres.T, axis=1)
        for c in range(parts):
            members = X[labels == c]
            if len(members):
                v = members.sum(axis=0)
                centres[c] = v / max(np.linalg.norm(v), 1e-12)
    # balance: no cell above ceil(m / parts)
    cap = int(np.ceil(m / parts))
    sims = X @ centres.T
    order = np.argsort(-sims.max(axis=1), kind="stable")  # most confident first
    pref = np.argsort(-sims, axis=1, kind="stable")
    fill = np.zeros(parts, np.int64)
    out = np.empty(m, np.int64)
    for i in order:
        for c in pref[i]:
            if fill[c] < cap:
                out[i] = c
                fill[c] += 1
                break
    return out


def bounded_lists(
    membership: np.ndarray,
    *,
    max_size: int | None = None,
    min_size: int | None = None,
    graph: sp.spmatrix | None = None,
    codes: np.ndarray | None = None,
    dendrogram: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Lists of at most ``max_size`` items, each inside one community of ``membership`` (see
    the module docstring): int64 list label per item, 0.. by decreasing size.

    ``max_size``: default :func:`default_max_size` (2 sqrt(n)); ``min_size``: pieces smaller
    than this are merged into a neighbour (default ``max_size // 4``; 0 or 1: no merging);
    ``graph``: the symmetric kNN graph (CSR) used to split and merge; ``codes``: unit codes for
    the k-means split of what the graph cannot split; ``dendrogram``: CNM's ``(a, b)`` merge
    columns when ``membership`` is a cut of it (then step 1 uses it); ``seed``: the k-means
    seed."""
    membership = np.asarray(membership)
    n = membership.shape[0]
    if membership.ndim != 1 or not np.issubdtype(membership.dtype, np.integer):
        raise InputError("{membership} must be a 1-D integer array, one community label per item", param="membership")
    if n == 0:
        return np.zeros(0, np.int64)
    if max_size is None:
        max_size = default_max_size(n)
    if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)) or max_size < 1:
        raise InputError(f"{{max_size}} must be a whole number >= 1, got {max_size!r}", param="max_size")
    max_size = int(max_size)
    if min_size is None:
        min_size = max_size // 4
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 0:
        raise InputError(f"{{min_size}} must be a whole number >= 0, got {min_size!r}", param="min_size")
    G = None
    if graph is not None:
        if not sp.issparse(graph) or graph.shape != (n, n):
            raise InputError(f"{{graph}} must be the scipy sparse {n} x {n} kNN graph of these items", param="graph")
        G = sp.csr_matrix(graph, dtype=np.float64)
    if codes is not None:
        codes = np.asarray(codes, dtype=np.float32)
        if codes.shape[0] != n or codes.ndim != 2:
            raise InputError(f"{{codes}} must hold one code per item ({n}), got shape {codes.shape}", param="codes")
    comm = renumber_membership(np.where(membership >= 0, membership, membership.max() + 1 + np.arange(n)))

    # 1. cut along a dendrogram
    if dendrogram is not None:
        a, b = dendrogram
        cut = dendrogram_cut(n, a, b, max_size=max_size)
        pieces = _combine(comm, cut)
    else:
        pieces = comm
    pieces = _split_oversized(pieces, max_size, G, codes, seed)
    # 3. merge small pieces inside their community
    if min_size > 1 and G is not None:
        pieces = _merge_small(pieces, comm, G, max_size, min_size)
    return renumber_membership(pieces)


def _combine(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The intersection partition of two memberships (dense labels)."""
    key = first.astype(np.int64) * (int(second.max()) + 1) + second
    return np.unique(key, return_inverse=True)[1].ravel().astype(np.int64)


def _split_oversized(pieces: np.ndarray, max_size: int, G, codes, seed: int) -> np.ndarray:
    """Split every piece above max_size: CNM on its subgraph (recursively), else k-means or
    chunks."""
    from graphret.communities.cnm import cnm

    out = pieces.copy()
    next_label = int(out.max()) + 1
    order = np.argsort(out, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(out))]
    todo = [order[bounds[c]:bounds[c + 1]] for c in range(len(bounds) - 1) if bounds[c + 1] - bounds[c] > max_size]
    while todo:
        members = todo.pop()
        parts = None
        if G is not None:
            sub = G[members][:, members]
            if sub.nnz:
                res = cnm(sub, heuristic="size")
                if res.n_communities > 1:
                    parts = res.membership
        if parts is None:  # 2. the graph cannot split it
            k = int(np.ceil(len(members) / max_size))
            if codes is not None:
                parts = _kmeans_split(codes[members], k, seed)
            else:
                parts = np.arange(len(members)) * k // len(members)
        for p in range(int(parts.max()) + 1):
            chunk = members[parts == p]
            if p > 0:
                out[chunk] = next_label
                next_label += 1
            if len(chunk) > max_size:
                todo.append(chunk)
    return out


def _merge_small(pieces: np.ndarray, comm: np.ndarray, G: sp.csr_matrix, max_size: int, min_size: int) -> np.ndarray:
    """Merge pieces below min_size into the same-community neighbour piece they share the
    most weight with, keeping sizes <= max_size; smallest first."""
    labels = renumber_membership(pieces)
    L = int(labels.max()) + 1
    n = len(labels)
    P = sp.csr_matrix((np.ones(n), (np.arange(n), labels)), shape=(n, L))
    A = (P.T @ G @ P).tocsr()  # weight between pieces
    sizes = np.bincount(labels, minlength=L).astype(np.int64)
    piece_comm = np.zeros(L, np.int64)
    piece_comm[labels] = comm
    parent = np.arange(L)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in np.lexsort((np.arange(L), sizes)):
        p = int(p)
        root = find(p)
        if root != p or sizes[root] >= min_size:
            continue
        weight: dict[int, float] = {}
        # p's own neighbours (pieces merged into p earlier add theirs only through p's row)
        row = A.getrow(p)
        for q, w in zip(row.indices, row.data):
            r = find(int(q))
            if r == root or piece_comm[r] != piece_comm[root]:
                continue
            weight[r] = weight.get(r, 0.0) + float(w)
        best = -1
        for r in sorted(weight):
            if sizes[r] + sizes[root] <= max_size and (best < 0 or weight[r] > weight[best]):
                best = r
        if best >= 0:
            parent[root] = best
            sizes[best] += sizes[root]
    roots = np.array([find(x) for x in range(L)])
    return roots[labels]
