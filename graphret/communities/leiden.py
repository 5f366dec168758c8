"""Leiden baseline: leidenalg's ``RBConfigurationVertexPartition`` on the same weighted graph.

``RBConfigurationVertexPartition`` optimises Newman's modularity with a resolution parameter
(the configuration null model), so with the same weights and resolution it optimises the same
quantity as graphret's ``cnm(quality="newman")``.  leidenalg's own ``partition.modularity``
ignores weights, so score the result with :func:`graphret.communities.quality.newman_modularity`
or :func:`~graphret.communities.quality.haq_modularity`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphret.communities.partition import Partition
from graphret.communities.quality import (
    check_resolution,
    newman_modularity,
    renumber_membership,
    validate_graph,
)
from graphret.errors import InputError

__all__ = ["leiden", "LeidenResult", "to_igraph"]


@dataclass
class LeidenResult(Partition):
    """Result of :func:`leiden`: ``membership``, its Newman ``quality`` (weighted, computed by
    graphret: leidenalg's own ignores weights), and the settings."""

    membership: np.ndarray
    quality: float
    resolution: float
    seed: int
    seconds: float = 0.0
    dendrogram: dict | None = field(default=None, repr=False)
    method: str = "leiden"

    def settings(self) -> dict[str, Any]:
        return {"partition": "RBConfigurationVertexPartition", "resolution": self.resolution, "seed": self.seed}


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
           n_iterations: int = -1) -> LeidenResult:
    """Leiden communities of ``graph`` (symmetric CSR, positive weights): a
    :class:`LeidenResult` whose membership (int64 ``(n,)``) is renumbered 0.. by decreasing
    size (ties by smallest member) like :func:`~graphret.communities.cnm.cnm`.

    ``n_iterations=-1`` iterates until the partition is stable; ``seed`` makes it deterministic.
    """
    import leidenalg

    g_res = check_resolution(resolution)
    if isinstance(n_iterations, bool) or not isinstance(n_iterations, (int, np.integer)) \
            or n_iterations == 0 or n_iterations < -1:
        raise InputError(f"n_iterations must be a positive integer or -1 (until stable), got {n_iterations!r}")
    started = time.perf_counter()
    g = to_igraph(graph)
    part = leidenalg.find_partition(
        g, leidenalg.RBConfigurationVertexPartition, weights="weight",
        resolution_parameter=g_res, seed=int(seed), n_iterations=int(n_iterations),
    )
    membership = renumber_membership(np.asarray(part.membership, dtype=np.int64))
    return LeidenResult(membership=membership, quality=newman_modularity(graph, membership, resolution=g_res),
                        resolution=g_res, seed=int(seed), seconds=time.perf_counter() - started)
