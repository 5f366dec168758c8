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

from graphret.query.filters import Filter, filter_mask, parse_where
from graphret.query.index import RetrievalIndex
from graphret.query.probe import probe_search
from graphret.query.queries import QuerySet, as_queries
from graphret.query.graph_region import RegionGraph, graph_region_search
from graphret.query.result import SearchResult
from graphret.query.config import DEFAULT_PROBE, MODES, RANKS, SearchConfig
from graphret.query.searcher import Searcher, default_mode, search

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
