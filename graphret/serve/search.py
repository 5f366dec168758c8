"""A search as the server runs it: the options checked against the server's limits, one searcher
of the request's store version, and the answer in ``graphret query --format json``'s shape."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from graphret.errors import InputError
from graphret.serve.config import ServeConfig
from graphret.serve.holder import View
from graphret.query.config import SearchConfig
from graphret.query.queries import stored_rows
from graphret.query.result import result_dict

__all__ = ["run_search", "where_list", "code_matrix"]


def where_list(where: list[str] | str | None) -> list[str] | None:
    """``where`` as a list of filters (empty entries dropped), or None."""
    if where is None:
        return None
    items = [where] if isinstance(where, str) else list(where)
    items = [w for w in (item.strip() for item in items) if w]
    return items or None


def code_matrix(codes: list[list[float]]) -> np.ndarray:
    """Code vectors from JSON as a (q, d) float32 array (rows must share one length)."""
    lengths = {len(row) for row in codes}
    if not codes or len(lengths) != 1 or 0 in lengths:
        raise InputError("{codes} must be a non-empty list of code vectors of one length", param="codes")
    return np.asarray(codes, np.float32)


def run_search(view: View, value: Any, kind: str, options: SearchConfig, config: ServeConfig, *, n_queries: int) -> dict[str, Any]:
    """Search ``view``'s store with ``value`` (of query ``kind``: ids, codes or images) and the
    request's ``options``; the JSON answer."""
    if options.k > config.max_k:
        raise InputError(f"k = {options.k} is over this server's limit; use {{k={config.max_k}}} or less", param="k")
    if n_queries > config.max_queries:
        raise InputError(f"{n_queries} queries in one request is over this server's limit of {config.max_queries}; "
                         "send fewer", param=kind)
    searcher = view.searcher(**options.index_options())
    started = time.perf_counter()
    if kind == "images":
        queries = searcher.queries(value, kind=kind)
        encoded = time.perf_counter()
        payload = searcher.search(queries, options).to_dict()
    else:  # the lean call: arrays in, arrays out, the JSON made from them
        store = view.snapshot
        if kind == "ids":
            rows = stored_rows(store, value)
            hits = searcher.search_arrays(rows=rows, config=options)
            meta = ([str(store.ids[r]) for r in rows], [store.label_of(int(r)) for r in rows], [store.paths[r] for r in rows])
        else:
            hits = searcher.search_arrays(value, config=options)
            meta = ([None] * len(value), [None] * len(value), [None] * len(value))
        encoded = started
        mode = options.mode or searcher.default_mode
        payload = result_dict(store, mode, options.k, searcher.method, *meta, hits.rows, hits.scores, hits.scanned_fraction,
                              hits.details)
    done = time.perf_counter()
    payload.update(version=view.version, seconds=round(done - encoded, 6),
                   encode_seconds=round(encoded - started, 6) if kind == "images" else None)
    return payload

