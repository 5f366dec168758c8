"""Quality functions for a partition of a weighted graph: Newman's modularity and Haq's.

Both qualities are a sum over communities of a *community term* that depends only on the
community's totals:

* ``e`` -- the weight of the edges inside the community, each undirected edge counted once;
* ``a`` -- the sum of the weighted degrees of its members (an inside edge counts twice);
* ``n`` -- its number of nodes;

and on the graph constants ``W`` (total edge weight, each undirected edge once), the resolution
``g`` and ``w_max`` (the largest possible edge weight, 1 for cosine similarities).  Each term is
defined exactly once, below, as a scalar function.  The same function is compiled with numba
and used by graphret's CNM (:mod:`graphret.communities.cnm`) both for the gain of a merge,
``term(merged) - term(a) - term(b)``, and for the quality of a partition, ``sum_c term(c)``,
so the two can never disagree.

Newman (weighted modularity with resolution g)::

    Q = sum_c [ e_c / W - g * (a_c / 2W)^2 ]

This is the same quantity as igraph's ``Graph.modularity(membership, weights, resolution)`` and
networkx's ``modularity(G, communities, weight, resolution)``.

Haq -- **a reconstruction**.  Haq, Moradi & Wang cite their own weighted modularity (Pattern
Recognition Letters 122, 2019) without restating it, and its text is not available to us.  The
one public implementation that cites it multiplies each community's Newman term by a factor
that grows with the community's mean internal similarity.  graphret uses that reconstruction::

    Q_haq = sum_c L_c * [ e_c / W - g * (a_c / 2W)^2 ]
    L_c   = 1 + 2 e_c / (n_c (n_c - 1) w_max)   for n_c > 1,   L_c = 1 for a single node.

``2 e_c / (n_c (n_c - 1))`` is the mean weight over all pairs inside the community, so ``L_c``
lies in ``[1, 2]`` when weights lie in ``(0, w_max]``.  To replace the reconstruction by the
published definition, change :func:`haq_term` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from graphret.errors import InputError

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = [
    "newman_term",
    "haq_term",
    "quality_function",
    "newman_modularity",
    "haq_modularity",
    "partition_quality",
    "community_totals",
    "renumber_membership",
    "validate_graph",
    "QUALITIES",
]


# --------------------------------------------------------------------------------------------
# The community terms: the one definition of each quality.  Scalar code only, so that numba
# can compile them unchanged (see graphret.communities.cnm).
# --------------------------------------------------------------------------------------------
def newman_term(e, a, n, W, g, w_max):
    """Newman's term of one community: ``e/W - g (a/2W)^2`` (``n`` and ``w_max`` unused)."""
    x = a / (2.0 * W)
    return e / W - g * x * x


def haq_term(e, a, n, W, g, w_max):
    """Haq's term of one community (graphret's reconstruction, see the module docstring):
    ``L * (e/W - g (a/2W)^2)`` with ``L = 1 + 2e / (n (n-1) w_max)`` for ``n > 1``, else 1."""
    x = a / (2.0 * W)
    base = e / W - g * x * x
    if n > 1:
        return (1.0 + 2.0 * e / (n * (n - 1.0) * w_max)) * base
    return base


QUALITIES: dict[str, Callable] = {"newman": newman_term, "haq": haq_term}


def quality_function(name: str) -> Callable:
    """The community-term function for ``"newman"`` or ``"haq"``:
    ``term(e, a, n, W, g, w_max) -> float``."""
    try:
        return QUALITIES[name]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown quality {name!r}; use one of: {', '.join(sorted(QUALITIES))}"
        ) from None


# --------------------------------------------------------------------------------------------
# Validation shared by the community modules
# --------------------------------------------------------------------------------------------
def check_resolution(resolution: float) -> float:
    try:
        g = float(resolution)
    except (TypeError, ValueError):
        raise InputError(f"resolution must be a number > 0, got {resolution!r}") from None
    if not np.isfinite(g) or g <= 0:
        raise InputError(f"resolution must be a finite number > 0, got {resolution!r}; use e.g. 1.0")
    return g


def validate_graph(graph, *, check_symmetric: bool = True) -> sp.csr_matrix:
    """Return ``graph`` as a canonical float64 CSR matrix, or raise :class:`InputError`.

    The graph must be square, symmetric, with a zero diagonal, finite positive weights, and at
    least one edge -- what :func:`graphret.graph.build.knn_graph` produces.  Isolated nodes and
    several components are fine.
    """
    import scipy.sparse as sp

    if not sp.issparse(graph):
        if isinstance(graph, np.ndarray) and graph.ndim == 2:
            graph = sp.csr_matrix(graph)
        else:
            raise InputError(
                f"graph must be a scipy sparse matrix, got {type(graph).__name__}; "
                "build it with graphret.graph.knn_graph"
            )
    if graph.ndim != 2 or graph.shape[0] != graph.shape[1]:
        raise InputError(f"graph must be a square n x n matrix, got shape {graph.shape}")
    g = sp.csr_matrix(graph, dtype=np.float64, copy=True)
    g.sum_duplicates()
    g.eliminate_zeros()
    g.sort_indices()
    if g.nnz and not np.all(np.isfinite(g.data)):
        raise InputError("graph has NaN or infinite edge weights; rebuild it from finite, L2-normalised codes")
    if g.nnz and g.data.min() < 0:
        bad = int((g.data < 0).sum())
        raise InputError(
            f"graph has {bad} negative edge weights; weights must be > 0 "
            "(knn_graph drops similarities <= 0)"
        )
    if g.diagonal().any():
        raise InputError("graph has self-loops (non-zero diagonal); remove them with graph.setdiag(0)")
    if check_symmetric and g.nnz:
        diff = abs(g - g.T)
        if diff.nnz and diff.max() > 1e-6 * max(1.0, float(g.data.max())):
            raise InputError(
                "graph is not symmetric; symmetrise it (e.g. knn_graph(..., symmetrize='union'))"
            )
    if g.nnz == 0:
        raise InputError("graph has no edges with positive weight; use more neighbours (k) or other codes")
    return g


def renumber_membership(labels: np.ndarray) -> np.ndarray:
    """Renumber community labels 0.. by decreasing size, ties by smallest member (int64)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return labels.astype(np.int64)
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    inv = inv.ravel()
    sizes = np.bincount(inv)
    order = np.lexsort((first, -sizes))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inv].astype(np.int64)


# --------------------------------------------------------------------------------------------
# Quality of a whole partition
# --------------------------------------------------------------------------------------------
def community_totals(graph: sp.csr_matrix | tuple[np.ndarray, np.ndarray, np.ndarray], membership: np.ndarray,
                     n_communities: int | None = None):
    """Per-community totals ``(e, a, n, W)`` (float64 arrays indexed by community id
    ``0..C-1``, and the graph's total weight) of a partition given as ids ``0..C-1``;
    nodes labelled -1 belong to no community (their edges count in W only).  ``graph``: a
    scipy sparse matrix, or CSR arrays ``(indptr, indices, data)``.

    ``e`` counts each inside edge once, ``a`` sums the members' weighted degrees, ``n`` counts
    the members.  This is the one place community totals are computed."""
    if isinstance(graph, tuple):
        indptr, col, data = graph
        n_nodes = len(indptr) - 1
        row = np.repeat(np.arange(n_nodes), np.diff(indptr))
    else:
        import scipy.sparse as sp

        coo = sp.coo_matrix(graph)
        n_nodes, row, col, data = graph.shape[0], coo.row, coo.col, coo.data
    membership = np.asarray(membership)
    if membership.shape != (n_nodes,):
        raise InputError(f"membership must have one label per node ({n_nodes}), got shape {membership.shape}")
    if not np.issubdtype(membership.dtype, np.integer):
        raise InputError("membership must be integer community labels")
    membership = membership.astype(np.int64, copy=False)
    C = (int(membership.max()) + 1 if n_nodes else 0) if n_communities is None else int(n_communities)
    C = max(C, 0)
    data = np.asarray(data).astype(np.float64)
    deg = np.bincount(row, weights=data, minlength=n_nodes)
    inside = (membership[row] >= 0) & (membership[row] == membership[col])
    e = np.bincount(membership[row[inside]], weights=data[inside], minlength=C) / 2.0
    clustered = membership >= 0
    a = np.bincount(membership[clustered], weights=deg[clustered], minlength=C)
    cnt = np.bincount(membership[clustered], minlength=C).astype(np.float64)
    W = float(data.sum()) / 2.0
    return e, a, cnt, W


def partition_quality(graph, membership, *, quality: str = "newman", resolution: float = 1.0,
                      w_max: float = 1.0) -> float:
    """``sum_c term(e_c, a_c, n_c, W, g, w_max)`` for the named quality (``"newman"``/``"haq"``)."""
    term = quality_function(quality)
    g = check_resolution(resolution)
    if not (np.isfinite(w_max) and w_max > 0):
        raise InputError(f"w_max must be a finite number > 0, got {w_max!r}")
    graph = validate_graph(graph)
    membership = np.asarray(membership)
    if membership.shape != (graph.shape[0],):
        raise InputError(f"membership must have one label per node ({graph.shape[0]}), got shape {membership.shape}")
    if not np.issubdtype(membership.dtype, np.integer):
        raise InputError("membership must be integer community labels")
    _, dense = np.unique(membership, return_inverse=True)
    e, a, cnt, W = community_totals(graph, dense.ravel())
    # the same scalar term, summed in float64 (vectorised through numpy broadcasting for newman,
    # a loop for the branching haq term; both call the one definition above)
    if term is newman_term:
        return float(np.sum(newman_term(e, a, cnt, W, g, w_max)))
    return float(sum(term(float(ei), float(ai), float(ni), W, g, w_max)
                     for ei, ai, ni in zip(e, a, cnt)))


def newman_modularity(graph: sp.csr_matrix, membership: np.ndarray, *,
                      resolution: float = 1.0) -> float:
    """Newman's weighted modularity ``sum_c [e_c/W - g (a_c/2W)^2]`` of ``membership`` on ``graph``.

    Equal to igraph's ``Graph.modularity(membership, weights=..., resolution=g)``.
    """
    return partition_quality(graph, membership, quality="newman", resolution=resolution)


def haq_modularity(graph: sp.csr_matrix, membership: np.ndarray, *, resolution: float = 1.0,
                   w_max: float = 1.0) -> float:
    """Haq's weighted modularity as reconstructed by graphret (see the module docstring):
    ``sum_c L_c [e_c/W - g (a_c/2W)^2]``, ``L_c = 1 + 2 e_c / (n_c (n_c-1) w_max)`` (1 if n_c = 1).

    This is a reconstruction: the published definition is not available to us.
    """
    return partition_quality(graph, membership, quality="haq", resolution=resolution, w_max=w_max)
