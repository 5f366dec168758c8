"""The sparse cosine kNN graph: exact (blocked) and approximate (pynndescent) kNN lists,
union or mutual symmetrisation, scipy CSR in memory and Arrow edges on disk."""


from graphret import lazy_exports

#: the exported names and their modules, imported on first use
_EXPORTS = {
    "edges_to_graph": "graphret.graph.build",
    "graph_from_knn": "graphret.graph.build",
    "graph_stats": "graphret.graph.build",
    "graph_to_edges": "graphret.graph.build",
    "knn_graph": "graphret.graph.build",
    "knn_graph_with_stats": "graphret.graph.build",
    "exact_knn": "graphret.graph.knn",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "edges_to_graph",
    "exact_knn",
    "graph_from_knn",
    "graph_stats",
    "graph_to_edges",
    "knn_graph",
    "knn_graph_with_stats",
]
