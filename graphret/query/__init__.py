"""Queries over a graph store: flat exact search (region, class and probe modes to come)."""

from graphret.query.flat import flat_search
from graphret.query.search import QuerySet, SearchResult, queries_from_ids, queries_from_images, queries_from_split, search

__all__ = ["QuerySet", "SearchResult", "flat_search", "queries_from_ids", "queries_from_images", "queries_from_split", "search"]
