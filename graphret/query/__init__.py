"""Queries over a graph store: region (Haq's Algorithm 1), flat, class-filtered and probe search.

The Python API::

    from graphret.store import open_store
    from graphret.query import search, queries_from_ids, queries_from_split, queries_from_images, queries_from_codes

    store = open_store("mednist-store")
    result = search(store, queries_from_split(store, "test"), k=50, mode="region", where=["label!=Hand"])
    result.rows, result.ids, result.scores, result.scanned_fraction   # numpy arrays (q, k) / (q,)
    result.to_arrow()                                                  # one row per (query, result)

Lower level, on arrays: :class:`RetrievalIndex` with :func:`flat_mode`, :func:`probe_search`
and :func:`region_search`.
"""

from graphret.query.filters import Filter, filter_mask, parse_where
from graphret.query.flat import flat_mode
from graphret.query.index import RetrievalIndex
from graphret.query.probe import probe_search
from graphret.query.region import region_search
from graphret.query.search import (
    MODES,
    QuerySet,
    SearchResult,
    archive_rows,
    index_for_store,
    queries_from_codes,
    queries_from_ids,
    queries_from_images,
    queries_from_rows,
    queries_from_split,
    search,
)

__all__ = [
    "MODES",
    "Filter",
    "QuerySet",
    "RetrievalIndex",
    "SearchResult",
    "archive_rows",
    "filter_mask",
    "flat_mode",
    "index_for_store",
    "parse_where",
    "probe_search",
    "queries_from_codes",
    "queries_from_ids",
    "queries_from_images",
    "queries_from_rows",
    "queries_from_split",
    "region_search",
    "search",
]
