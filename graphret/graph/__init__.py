"""The sparse cosine kNN graph: exact (blocked) and approximate (pynndescent) kNN lists,
union or mutual symmetrisation, scipy CSR in memory and Arrow edges on disk."""

from graphret.graph.build import (
    edges_to_graph,
    graph_from_knn,
    graph_stats,
    graph_to_edges,
    knn_graph,
    knn_graph_with_stats,
)
from graphret.graph.knn import exact_knn

__all__ = [
    "edges_to_graph",
    "exact_knn",
    "graph_from_knn",
    "graph_stats",
    "graph_to_edges",
    "knn_graph",
    "knn_graph_with_stats",
]
