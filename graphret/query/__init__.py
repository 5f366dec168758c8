"""Queries over a graph store: region (Haq's Algorithm 1), flat, class-filtered and probe search.

The layer's API (the store-centred one is :meth:`graphret.Store.search`)::

    from graphret.store import open_store
    from graphret.query import Searcher

    searcher = Searcher(open_store("mednist-store"))
    result = searcher.search("test", k=50, mode="region", where=["label!=Hand"])
    result.rows, result.ids, result.scores, result.scanned_fraction   # numpy arrays (q, k) / (q,)
    result.to_arrow(), result.to_pandas(), result.to_dict()

Lower level, on arrays: :class:`RetrievalIndex` with :func:`probe_search` and
:func:`region_search`; flat search is :func:`graphret.graph.knn.exact_search`.
"""

from graphret.query.filters import Filter, filter_mask, parse_where
from graphret.query.index import RetrievalIndex
from graphret.query.probe import probe_search
from graphret.query.queries import QuerySet, as_queries
from graphret.query.region import region_search
from graphret.query.result import SearchResult
from graphret.query.searcher import DEFAULT_PROBE, MODES, Searcher, default_mode, search

__all__ = [
    "DEFAULT_PROBE",
    "MODES",
    "Filter",
    "QuerySet",
    "RetrievalIndex",
    "SearchResult",
    "Searcher",
    "as_queries",
    "default_mode",
    "filter_mask",
    "parse_where",
    "probe_search",
    "region_search",
    "search",
]
