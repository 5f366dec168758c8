"""The layout probe search reads: an archive's codes sorted by list (community), with each
list's centroid.

A :class:`RetrievalIndex` is built from arrays (the benchmark does this) or by a
:class:`~graphret.query.searcher.Searcher` over a store, which keeps it so a batch of calls pays
the set-up once.  Positions ``0..n-1`` are archive positions; the searcher maps them back to
store rows.

Archive items are sorted by list (``order``), so the members of list ``c`` are the contiguous
slice ``off[c]:off[c+1]`` of ``sorted_codes``.  Archive items outside every list
(label -1) join the list whose centroid is nearest.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from graphret.communities.centroids import community_centroids
from graphret.errors import InputError, ModeUnavailable
from graphret.graph.knn import check_dimension


class RetrievalIndex:
    """Codes of an archive and, optionally, their lists (communities).

    ``codes`` float32 (n, d) unit rows; ``membership`` int (n,) list per item (-1: none);
    ``centroids`` (C, d) when already known (else computed)."""

    def __init__(self, codes: np.ndarray, *, membership: np.ndarray | None = None, centroids: np.ndarray | None = None) -> None:
        self.codes = np.asarray(codes, dtype=np.float32)
        if self.codes.ndim != 2:
            raise InputError("codes must be a 2-D array (n, d)")
        self.n, self.dim = self.codes.shape
        self._membership = None if membership is None else np.asarray(membership, np.int64)
        if self._membership is not None and self._membership.shape != (self.n,):
            raise InputError(f"membership must have one label per archive item ({self.n})")
        self._centroids_in = centroids

    def check_queries(self, queries: np.ndarray) -> np.ndarray:
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        check_dimension(self.dim, queries)
        return np.ascontiguousarray(queries)

    # -- communities ---------------------------------------------------------------------------
    @property
    def has_communities(self) -> bool:
        return self._membership is not None and bool(np.any(self._membership >= 0))

    def _require_communities(self) -> None:
        if not self.has_communities:
            raise ModeUnavailable("this archive has no communities; use {mode=flat} or rebuild the store with communities", mode="probe")

    @cached_property
    def labels(self) -> np.ndarray:
        """Dense community label 0..C-1 of every archive item (unclustered items: nearest
        centroid)."""
        self._require_communities()
        raw = self._membership
        clustered = raw >= 0
        uniq, dense = np.unique(raw[clustered], return_inverse=True)
        labels = np.full(self.n, -1, np.int64)
        labels[clustered] = dense.ravel()
        C = len(uniq)
        if self._centroids_in is not None and len(self._centroids_in) == int(raw.max()) + 1:
            base = np.asarray(self._centroids_in, np.float32)[uniq]
        else:
            base = community_centroids(self.codes, labels, C)
        self._base_centroids = base
        outside = np.flatnonzero(~clustered)
        for lo in range(0, len(outside), 4096):
            chunk = outside[lo : lo + 4096]
            labels[chunk] = np.argmax(self.codes[chunk] @ base.T, axis=1)
        self.community_ids = uniq  # the store's community id of each dense label
        return labels

    @property
    def n_communities(self) -> int:
        return len(self.off) - 1

    @cached_property
    def order(self) -> np.ndarray:
        """Archive positions sorted by community (stable)."""
        return np.argsort(self.labels, kind="stable")

    @cached_property
    def off(self) -> np.ndarray:
        counts = np.bincount(self.labels, minlength=int(self.labels.max()) + 1)
        return np.r_[0, np.cumsum(counts)].astype(np.int64)

    @cached_property
    def rank(self) -> np.ndarray:
        """Sorted index of every archive position (inverse of ``order``)."""
        rank = np.empty(self.n, np.int64)
        rank[self.order] = np.arange(self.n)
        return rank

    @cached_property
    def sorted_codes(self) -> np.ndarray:
        return np.ascontiguousarray(self.codes[self.order])

    @cached_property
    def centroids(self) -> np.ndarray:
        """(C, d) unit-norm centroids of the communities (archive items, after assigning the
        unclustered ones)."""
        labels = self.labels
        if np.all(self._membership >= 0):
            return self._base_centroids
        return community_centroids(self.codes, labels, int(labels.max()) + 1)

    def positions_in_sorted(self, allowed: np.ndarray | None) -> np.ndarray | None:
        """An archive-position mask in sorted order."""
        return None if allowed is None else np.asarray(allowed, bool)[self.order]

    def excluded_in_sorted(self, exclude: np.ndarray | None, n_queries: int, allowed_s: np.ndarray | None) -> np.ndarray:
        """Each query's excluded archive position (itself) in sorted order, -1 for none or
        where the filters already leave it out."""
        excl_s = np.full(n_queries, -1, np.int64)
        if exclude is not None:
            exclude = np.asarray(exclude, np.int64)
            ok = exclude >= 0
            excl_s[ok] = self.rank[exclude[ok]]
            if allowed_s is not None:
                excl_s[ok & ~allowed_s[np.maximum(excl_s, 0)]] = -1
        return excl_s
