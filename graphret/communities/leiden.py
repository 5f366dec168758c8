"""Leiden baseline: leidenalg's ``RBConfigurationVertexPartition`` on the same weighted graph.

``RBConfigurationVertexPartition`` optimises Newman's modularity with a resolution parameter
(the configuration null model), so with the same weights and resolution it optimises the same
quantity as graphret's ``cnm(quality="newman")``.  leidenalg's own ``partition.modularity``
ignores weights, so score the result with :func:`graphret.communities.quality.newman_modularity`
or :func:`~graphret.communities.quality.haq_modularity`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphret.communities.quality import check_resolution, renumber_membership, validate_graph
from graphret.errors import InputError

__all__ = ["leiden", "to_igraph"]


def to_igraph(graph: sp.csr_matrix):
    """An undirected ``igraph.Graph`` with edge attribute ``weight`` from a symmetric CSR graph."""
    import igraph as ig

    G = validate_graph(graph)
    upper = sp.triu(G, k=1).tocoo()
    g = ig.Graph(n=G.shape[0], edges=np.column_stack([upper.row, upper.col]).tolist(),
                 directed=False)
    g.es["weight"] = upper.data.tolist()
    return g


def leiden(graph: sp.csr_matrix, *, resolution: float = 1.0, seed: int = 0,
           n_iterations: int = -1) -> np.ndarray:
    """Leiden communities of ``graph`` (symmetric CSR, positive weights): membership int64
    ``(n,)``, renumbered 0.. by decreasing size (ties by smallest member) like :func:`cnm`.

    ``n_iterations=-1`` iterates until the partition is stable; ``seed`` makes it deterministic.
    """
    import leidenalg

    g_res = check_resolution(resolution)
    if isinstance(n_iterations, bool) or not isinstance(n_iterations, (int, np.integer)) \
            or n_iterations == 0 or n_iterations < -1:
        raise InputError(f"n_iterations must be a positive integer or -1 (until stable), got {n_iterations!r}")
    g = to_igraph(graph)
    part = leidenalg.find_partition(
        g, leidenalg.RBConfigurationVertexPartition, weights="weight",
        resolution_parameter=g_res, seed=int(seed), n_iterations=int(n_iterations),
    )
    return renumber_membership(np.asarray(part.membership, dtype=np.int64))
