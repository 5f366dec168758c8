"""The cosine kNN graph: kNN lists -> symmetric weighted graph (scipy CSR) and Arrow edges.

Weights are similarities clipped to be positive: a kNN pair whose similarity is <= 0 is not an
edge (and float rounding above 1, e.g. for duplicates, is clipped to 1).  Symmetrisation:

* ``"union"`` (default): ``i ~ j`` when ``j`` is in ``i``'s list or ``i`` in ``j``'s;
  ``w_ij = max(s_ij, s_ji)``;
* ``"mutual"``: ``i ~ j`` only when each is in the other's list; ``w_ij = max(s_ij, s_ji)``
  (the two are the same cosine up to float rounding).

The CSR matrix is ``n x n`` float32, symmetric, with a zero diagonal; ``graph_to_edges`` gives
each undirected edge once (``src < dst``), the layout of the store's Arrow edge table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from graphret.errors import InputError
from graphret.graph.csr import symmetric_csr
from graphret.graph.knn import exact_knn, validate_codes
from graphret.graph.topk import check_k

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = [
    "knn_graph",
    "knn_graph_with_stats",
    "knn_graph_and_candidates",
    "graph_from_knn",
    "graph_to_edges",
    "edges_to_graph",
    "edges_table",
    "edges_arrow",
    "EDGES_SCHEMA",
    "graph_stats",
    "METHODS",
    "AUTO_EXACT_MAX",
    "resolve_method",
    "SYMMETRIZE",
]

METHODS = ("exact", "approx", "faiss", "auto")
#: ``knn="auto"``: exact kNN for archives up to this many codes, faiss (IVF cells) above.  Exact
#: is O(n^2): on the shared 2-core machine, 128-d codes, one thread, 3.1 s at 10k, 23 s at 25k,
#: 82 s at 50k, where faiss took 2.3, 5.8 and 8.8 s with recall@10 0.98-1.0
#: (benchmarks/results/scale/knn.md); below 20k exact costs seconds and is exact.
AUTO_EXACT_MAX = 20_000
SYMMETRIZE = ("union", "mutual")

#: the graph as an Arrow table: each undirected edge once, src < dst, positive weight
EDGES_SCHEMA = pa.schema(
    [pa.field("src", pa.int64(), nullable=False), pa.field("dst", pa.int64(), nullable=False), pa.field("weight", pa.float32(), nullable=False)]
)


def graph_from_knn(indices: np.ndarray, similarities: np.ndarray, *,
                   symmetrize: str = "union") -> sp.csr_matrix:
    """Symmetric CSR graph from kNN lists ``(indices (n,k), similarities (n,k))``."""
    import scipy.sparse as sp

    if symmetrize not in SYMMETRIZE:
        raise InputError(f"unknown symmetrize {symmetrize!r}; use 'union' or 'mutual'")
    indices = np.asarray(indices)
    sims = np.asarray(similarities, dtype=np.float32)
    if indices.ndim != 2 or indices.shape != sims.shape:
        raise InputError(
            f"kNN indices and similarities must be (n, k) arrays of one shape, got "
            f"{indices.shape} and {sims.shape}"
        )
    n, k = indices.shape
    if n and (indices.min() < 0 or indices.max() >= n):
        raise InputError(f"kNN indices must lie in 0..{n - 1}; rebuild the kNN lists")
    keep = (sims > 0) & np.isfinite(sims) & (indices != np.arange(n)[:, None])
    ordered = np.sort(np.where(keep, indices, -1), axis=1)
    repeats = bool(((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)).any())
    del ordered
    if repeats:  # a list repeats a neighbour (approximate lists, rarely): keep its largest similarity
        A = _directed_dedup(indices, sims, keep, n)
    else:  # the usual case: the lists are the CSR rows, no (n k) sort
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(keep.sum(axis=1), out=indptr[1:])
        index_type = np.int32 if n < 2**31 else np.int64
        A = sp.csr_matrix((np.minimum(sims[keep], np.float32(1.0)), indices[keep].astype(index_type), indptr),
                          shape=(n, n))
    del keep
    AT = A.T.tocsr()
    if symmetrize == "union":
        G = A.maximum(AT)
    else:
        both = A.astype(bool).multiply(AT.astype(bool))
        G = A.maximum(AT).multiply(both)
    del A, AT
    G = sp.csr_matrix(G, dtype=np.float32)
    G.eliminate_zeros()  # no diagonal: a list never holds its own row
    G.sort_indices()
    return G


def _directed_dedup(indices: np.ndarray, sims: np.ndarray, keep: np.ndarray, n: int) -> sp.csr_matrix:
    """Directed CSR of kNN lists with one entry per (i, j), its largest similarity."""
    import scipy.sparse as sp

    k = indices.shape[1]
    rows = np.repeat(np.arange(n, dtype=np.int64), k)[keep.ravel()]
    cols = indices.astype(np.int64)[keep]
    vals = np.minimum(sims[keep], np.float32(1.0))
    key = rows * n + cols
    order = np.lexsort((-vals, key))
    key, rows, cols, vals = key[order], rows[order], cols[order], vals[order]
    first = np.ones(key.size, bool)
    first[1:] = key[1:] != key[:-1]
    return sp.csr_matrix((vals[first], (rows[first], cols[first])), shape=(n, n), dtype=np.float32)


def resolve_method(method: str, n: int) -> str:
    """The kNN method a build uses for ``n`` codes: ``method`` itself, or for ``"auto"``
    ``"exact"`` up to :data:`AUTO_EXACT_MAX` codes and ``"faiss"`` above."""
    if method not in METHODS:
        raise InputError(f"unknown kNN method {method!r}; use one of {', '.join(METHODS)}", param="knn")
    if method == "auto":
        return "exact" if n <= AUTO_EXACT_MAX else "faiss"
    return method


def _knn_lists(codes: np.ndarray, k: int, *, method: str, symmetrize: str, seed: int, keep: int = 0,
               **knn_options) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Validated codes, k, and the kNN lists of ``method`` (already resolved from "auto"), each
    ``max(k, keep)`` long where ``method`` is exact or faiss (the lists past k come from the
    same search: the walk lists' candidates)."""
    if method not in METHODS or method == "auto":
        raise InputError(f"unknown kNN method {method!r}; use 'exact', 'approx' or 'faiss'")
    if symmetrize not in SYMMETRIZE:
        raise InputError(f"unknown symmetrize {symmetrize!r}; use 'union' or 'mutual'")
    codes = validate_codes(codes)
    k = check_k(k, codes.shape[0] - 1, what="the other codes")
    if method == "exact":
        idx, sims = exact_knn(codes, min(max(k, keep), codes.shape[0] - 1), **knn_options)
    elif method == "faiss":
        from graphret.graph.faiss_knn import faiss_knn

        idx, sims = faiss_knn(codes, k, seed=seed, keep=min(max(k, keep), codes.shape[0] - 1), **knn_options)
    else:
        from graphret.graph.approx import approx_knn

        idx, sims = approx_knn(codes, k, seed=seed, **knn_options)
    return codes, k, idx, sims


def knn_graph_with_stats(codes: np.ndarray, k: int, *, method: str = "exact",
                         symmetrize: str = "union", seed: int = 0, recall_sample: int = 1000,
                         **knn_options) -> tuple[sp.csr_matrix, dict]:
    """:func:`knn_graph` plus :func:`graph_stats` (with ``method`` -- for ``"auto"`` the one
    chosen, and ``requested="auto"`` --, ``k``, ``symmetrize`` and, for the approximate methods,
    the recall against exact kNN on ``recall_sample`` seeded rows)."""
    graph, stats, _ = knn_graph_and_candidates(codes, k, method=method, symmetrize=symmetrize, seed=seed,
                                               recall_sample=recall_sample, **knn_options)
    return graph, stats


def knn_graph_and_candidates(codes: np.ndarray, k: int, *, keep: int = 0, method: str = "exact",
                             symmetrize: str = "union", seed: int = 0, recall_sample: int = 1000,
                             **knn_options) -> tuple[sp.csr_matrix, dict, np.ndarray | None]:
    """:func:`knn_graph_with_stats`, and each code's ``keep`` most similar codes of the same
    search ``(n, keep)`` int64 (-1: none) when ``keep`` > k and ``method`` is exact or faiss
    (else None): the walk lists' first candidates, found at the cost of merging them (FAISS IVF
    scores each code against a few thousand others for its k nearest).  The graph and its
    statistics do not depend on ``keep``."""
    requested = method
    method = resolve_method(method, int(np.shape(codes)[0]) if np.ndim(codes) == 2 else 0)
    faiss_report: dict = {}
    if method == "faiss":
        knn_options = {**knn_options, "report": faiss_report}
    wide = keep > k and method in ("exact", "faiss")
    codes, k, idx, sims = _knn_lists(codes, k, method=method, symmetrize=symmetrize, seed=seed,
                                     keep=keep if wide else 0, **knn_options)
    candidates = idx if wide and idx.shape[1] > k else None
    idx, sims = idx[:, :k], sims[:, :k]
    dropped = int((sims <= 0).sum())
    G = graph_from_knn(idx, sims, symmetrize=symmetrize)
    stats = graph_stats(G)
    stats.update(method=method, k=k, symmetrize=symmetrize, dropped_nonpositive=dropped)
    if requested != method:
        stats.update(requested=requested)
    if faiss_report:
        stats.update(faiss=faiss_report)
    if method != "exact":
        from graphret.graph.approx import knn_recall

        stats.update(recall=knn_recall(idx, codes, sample=recall_sample, seed=seed),
                     recall_sample=int(min(recall_sample, codes.shape[0])), seed=int(seed))
    return G, stats, candidates


def knn_graph(codes: np.ndarray, k: int, *, method: str = "exact", symmetrize: str = "union",
              seed: int = 0, **knn_options) -> sp.csr_matrix:
    """Cosine kNN graph of L2-normalised ``codes`` as an ``n x n`` float32 symmetric CSR matrix
    with a zero diagonal and positive weights (similarities <= 0 are dropped).

    ``method``: ``"exact"`` (:func:`graphret.graph.knn.exact_knn`), ``"approx"``
    (:func:`graphret.graph.approx.approx_knn`, seeded with ``seed``), ``"faiss"``
    (:func:`graphret.graph.faiss_knn.faiss_knn`, seeded) or ``"auto"`` (:func:`resolve_method`); ``symmetrize``:
    ``"union"`` or ``"mutual"``.  Use :func:`knn_graph_with_stats` to get the statistics (and the
    approximate graph's recall) too.
    """
    method = resolve_method(method, int(np.shape(codes)[0]) if np.ndim(codes) == 2 else 0)
    _, _, idx, sims = _knn_lists(codes, k, method=method, symmetrize=symmetrize, seed=seed, **knn_options)
    return graph_from_knn(idx, sims, symmetrize=symmetrize)


def graph_stats(graph: sp.csr_matrix) -> dict:
    """``{"n", "edges", "isolated", "components", "largest_component", "mean_degree",
    "min_weight", "max_weight", "total_weight"}`` of a symmetric graph (edges counted once)."""
    import scipy.sparse as sp

    graph = sp.csr_matrix(graph)
    n = graph.shape[0]
    upper = sp.triu(graph, k=1)
    deg = np.diff(graph.indptr)
    from scipy.sparse.csgraph import connected_components  # scipy.linalg comes with it: only when asked

    ncomp, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels) if n else np.zeros(0, int)
    w = upper.data
    return {
        "n": int(n),
        "edges": int(upper.nnz),
        "isolated": int((deg == 0).sum()),
        "components": int(ncomp),
        "largest_component": int(sizes.max()) if n else 0,
        "mean_degree": float(2 * upper.nnz / n) if n else 0.0,
        "min_weight": float(w.min()) if w.size else None,
        "max_weight": float(w.max()) if w.size else None,
        "total_weight": float(w.sum(dtype=np.float64)),
    }


def graph_to_edges(graph: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each undirected edge once: ``(src int64, dst int64, weight float32)`` with ``src < dst``,
    sorted by (src, dst)."""
    import scipy.sparse as sp

    if not sp.issparse(graph) or graph.shape[0] != graph.shape[1]:
        raise InputError("graph must be a square scipy sparse matrix; build it with knn_graph")
    upper = sp.triu(sp.csr_matrix(graph), k=1).tocsr()
    upper.sort_indices()
    src = np.repeat(np.arange(upper.shape[0], dtype=np.int64), np.diff(upper.indptr))
    return src, upper.indices.astype(np.int64), upper.data.astype(np.float32)


def edges_to_graph(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n: int) -> sp.csr_matrix:
    """Inverse of :func:`graph_to_edges`: symmetric ``n x n`` float32 CSR from undirected edges."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float32)
    if not (src.shape == dst.shape == weight.shape) or src.ndim != 1:
        raise InputError("src, dst and weight must be 1-D arrays of one length")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise InputError(f"edge endpoints must lie in 0..{n - 1}; the edge table does not match n = {n}")
    if src.size and (np.any(src == dst) or not np.all(np.isfinite(weight)) or weight.min() <= 0):
        raise InputError("edges must join two different nodes with a finite weight > 0")
    import scipy.sparse as sp

    indptr, indices, data = symmetric_csr(src, dst, weight, n)
    return sp.csr_matrix((data, indices, indptr), shape=(n, n))


def edges_arrow(src: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> pa.Table:
    """Undirected edges (``src < dst``, positive weight) as an Arrow table of
    :data:`EDGES_SCHEMA`."""
    return pa.table(
        [pa.array(np.asarray(src, np.int64)), pa.array(np.asarray(dst, np.int64)), pa.array(np.asarray(weight, np.float32))],
        schema=EDGES_SCHEMA,
    )


def edges_table(graph: sp.csr_matrix) -> pa.Table:
    """The graph's edges as an Arrow table (``src``, ``dst`` int64, ``weight`` float32), each
    undirected edge once with ``src < dst``."""
    return edges_arrow(*graph_to_edges(graph))
