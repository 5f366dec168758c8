"""Flat mode: exact cosine top-K over the whole archive (or the part the filters allow).

The search itself is :func:`graphret.graph.knn.exact_search`, the one exact top-k; this module
restricts it to the archive items the ``where`` filters keep.
"""

from __future__ import annotations

import numpy as np

from graphret.graph.knn import exact_search
from graphret.graph.topk import check_k


def flat_mode(codes: np.ndarray, queries: np.ndarray, k: int, *, exclude: np.ndarray,
              allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k archive positions, scores and scanned fraction of each query; ``allowed`` is a
    bool mask over archive positions (None: all), ``exclude[i]`` the query's own position or
    -1."""
    if allowed is None:
        found, scores = exact_search(codes, queries, k, exclude=exclude)
        return found, scores, np.ones(len(queries))
    keep = np.flatnonzero(allowed)
    local = np.full(len(codes), -1, np.int64)
    local[keep] = np.arange(len(keep))
    ex = np.where(exclude >= 0, local[np.maximum(exclude, 0)], -1)
    check_k(k, len(keep) - int(np.any(ex >= 0)), what="the archive items that match the filters")
    found, scores = exact_search(codes[keep], queries, k, exclude=ex)
    return keep[found], scores, np.full(len(queries), len(keep) / max(len(codes), 1))
