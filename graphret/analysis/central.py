"""Inside one partition: each community's most central images (by weighted degree inside it),
the community graph (communities joined by their inter-community weight), and each
community's nearest neighbouring communities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphret.errors import InputError

__all__ = ["internal_degree", "central_items", "community_graph", "community_edges", "neighbouring_communities"]


def internal_degree(graph: sp.csr_matrix, membership: np.ndarray) -> np.ndarray:
    """Each node's summed edge weight to the other members of its own community."""
    membership = np.asarray(membership, dtype=np.int64)
    coo = graph.tocoo()
    inside = membership[coo.row] == membership[coo.col]
    return np.bincount(coo.row[inside], weights=coo.data[inside], minlength=graph.shape[0])


def _check_community(membership: np.ndarray, community: int) -> int:
    try:
        c = int(community)
    except (TypeError, ValueError):
        raise InputError(f"community must be a whole number, got {community!r}") from None
    ids = np.unique(membership)
    if c not in set(ids.tolist()):
        raise InputError(f"no community {community} in this partition; ids run {ids.min()}..{ids.max()}")
    return c


def central_items(graph: sp.csr_matrix, membership: np.ndarray, *, community: int | None = None,
                  top: int = 10) -> pd.DataFrame:
    """The ``top`` most central members of each community (or of ``community``): columns
    ``community``, ``rank`` (1 = most central), ``node`` (archive position), ``internal_degree``
    and ``degree``; ties broken by the smaller node.  Communities come largest first."""
    membership = np.asarray(membership, dtype=np.int64)
    inner = internal_degree(graph, membership)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    if community is not None:
        nodes = np.flatnonzero(membership == _check_community(membership, community))
    else:
        nodes = np.arange(membership.size)
    size = np.bincount(membership)
    # sort by (community size desc, community, internal degree desc, node)
    order = np.lexsort((nodes, -inner[nodes], membership[nodes], -size[membership[nodes]]))
    ordered = nodes[order]
    comm = membership[ordered]
    starts = np.r_[0, np.flatnonzero(np.diff(comm)) + 1]
    rank = np.arange(ordered.size) - np.repeat(starts, np.diff(np.r_[starts, ordered.size]))
    keep = rank < top
    ordered, comm, rank = ordered[keep], comm[keep], rank[keep]
    return pd.DataFrame({"community": comm, "rank": rank + 1, "node": ordered,
                         "internal_degree": inner[ordered], "degree": degree[ordered]})


def community_graph(graph: sp.csr_matrix, membership: np.ndarray) -> sp.csr_matrix:
    """K x K symmetric matrix of inter-community weights ``w(c, d) = sum of edge weights
    between c and d`` (each undirected edge once), diagonal the inside weight ``e_c``;
    indexed by community id."""
    membership = np.asarray(membership, dtype=np.int64)
    K = int(membership.max()) + 1
    M = sp.csr_matrix((np.ones(membership.size), (np.arange(membership.size), membership)), shape=(membership.size, K))
    C = (M.T @ graph @ M).tocsr()
    C = C.tolil()
    C.setdiag(C.diagonal() / 2.0)
    return C.tocsr()


def community_edges(graph: sp.csr_matrix, membership: np.ndarray) -> pd.DataFrame:
    """The community graph as an edge table ``source``, ``target`` (source < target),
    ``weight``, heaviest first."""
    C = sp.triu(community_graph(graph, membership), k=1).tocoo()
    frame = pd.DataFrame({"source": C.row.astype(np.int64), "target": C.col.astype(np.int64), "weight": C.data})
    return frame.sort_values(["weight", "source", "target"], ascending=[False, True, True], kind="stable").reset_index(drop=True)


def neighbouring_communities(graph: sp.csr_matrix, membership: np.ndarray, community: int, *,
                             top: int = 5, C: sp.csr_matrix | None = None) -> pd.DataFrame:
    """``community``'s ``top`` neighbouring communities by inter-community weight: columns
    ``community``, ``neighbour``, ``neighbour_size``, ``weight`` and ``share`` (the fraction of
    ``community``'s boundary weight that goes to that neighbour)."""
    membership = np.asarray(membership, dtype=np.int64)
    c = _check_community(membership, community)
    C = community_graph(graph, membership) if C is None else C
    row = C.getrow(c).tocoo()
    mask = row.col != c
    nb, w = row.col[mask], row.data[mask]
    order = np.lexsort((nb, -w))[:top]
    size = np.bincount(membership, minlength=C.shape[0])
    cut = float(w.sum())
    return pd.DataFrame({
        "community": np.full(order.size, c, np.int64),
        "neighbour": nb[order].astype(np.int64),
        "neighbour_size": size[nb[order]].astype(np.int64),
        "weight": w[order],
        "share": w[order] / cut if cut > 0 else np.zeros(order.size),
    })
