"""Queries over a graph store: region (Haq's Algorithm 1 on the graph), graph walk, flat,
class-filtered and probe search.

The layer's API (the store-centred one is :meth:`graphret.Store.search`)::

    from graphret.store import open_store
    from graphret.query import Searcher

    searcher = Searcher(open_store("mednist-store"))
    result = searcher.search("test", k=50, mode="region", where=["label!=Hand"])
    result.rows, result.ids, result.scores, result.scanned_fraction   # numpy arrays (q, k) / (q,)
    result.to_arrow(), result.to_pandas(), result.to_dict()

Lower level, on arrays: :func:`graphret.graph.walk.graph_walk`, :func:`graph_region_search`,
:class:`RetrievalIndex` with :func:`probe_search`; flat search is
:func:`graphret.graph.knn.exact_search`.
"""

from graphret import lazy_exports

#: the exported names and their modules, imported on first use
_EXPORTS = {
    "Filter": "graphret.query.filters",
    "filter_mask": "graphret.query.filters",
    "parse_where": "graphret.query.filters",
    "RetrievalIndex": "graphret.query.index",
    "probe_search": "graphret.query.probe",
    "QuerySet": "graphret.query.queries",
    "as_queries": "graphret.query.queries",
    "RegionGraph": "graphret.query.graph_region",
    "graph_region_search": "graphret.query.graph_region",
    "SearchResult": "graphret.query.result",
    "DEFAULT_PROBE": "graphret.query.config",
    "MODES": "graphret.query.config",
    "RANKS": "graphret.query.config",
    "SearchConfig": "graphret.query.config",
    "Searcher": "graphret.query.searcher",
    "default_mode": "graphret.query.searcher",
    "search": "graphret.query.searcher",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "DEFAULT_PROBE",
    "MODES",
    "RANKS",
    "RegionGraph",
    "Filter",
    "QuerySet",
    "RetrievalIndex",
    "SearchConfig",
    "SearchResult",
    "Searcher",
    "as_queries",
    "default_mode",
    "filter_mask",
    "parse_where",
    "probe_search",
    "graph_region_search",
    "search",
]
