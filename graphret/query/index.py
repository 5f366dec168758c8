"""The in-memory search index over one archive: codes, and (for region and probe) communities,
centroids and the kNN graph laid out community by community.

A :class:`RetrievalIndex` is built from arrays (the benchmark does this) or by a
:class:`~graphret.query.searcher.Searcher` over a store, which keeps it so a batch of calls pays
the set-up once.  Positions ``0..n-1`` are archive positions; the searcher maps them back to
store rows.

Layout for region and probe: archive items are sorted by community (``order``), so the members
of community ``c`` are the contiguous slice ``off[c]:off[c+1]`` of ``sorted_codes``, and the
graph is permuted the same way (``sorted_graph``), so a neighbour ``j`` of a member lies in the
same community exactly when ``off[c] <= j < off[c+1]``.  Archive items outside every community
(label -1, e.g. the test split when the archive is all splits) join the community whose centroid is
nearest; they have no edges.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.sparse as sp

from graphret.communities.centroids import community_centroids
from graphret.communities.kernels import Quality
from graphret.communities.quality import community_totals
from graphret.errors import InputError, ModeUnavailable
from graphret.graph.knn import check_dimension


class RetrievalIndex:
    """Codes of an archive and, optionally, its communities and graph.

    ``codes`` float32 (n, d) unit rows; ``membership`` int (n,) community per item (-1: none);
    ``graph`` symmetric CSR (n, n) over the same items; ``quality`` the
    :class:`~graphret.communities.kernels.Quality` the communities were found with (its name,
    "newman" or "haq", is accepted too, with ``resolution``); ``knn_k`` the k of the graph (how
    many edges a query gets); ``centroids`` (C, d) when already known (else computed)."""

    def __init__(
        self,
        codes: np.ndarray,
        *,
        membership: np.ndarray | None = None,
        graph: sp.csr_matrix | None = None,
        quality: Quality | str = "newman",
        resolution: float = 1.0,
        knn_k: int = 10,
        centroids: np.ndarray | None = None,
    ) -> None:
        self.codes = np.asarray(codes, dtype=np.float32)
        if self.codes.ndim != 2:
            raise InputError("codes must be a 2-D array (n, d)")
        self.n, self.dim = self.codes.shape
        self._membership = None if membership is None else np.asarray(membership, np.int64)
        if self._membership is not None and self._membership.shape != (self.n,):
            raise InputError(f"membership must have one label per archive item ({self.n})")
        self._graph = graph
        self.quality = quality if isinstance(quality, Quality) else Quality(quality, resolution)
        self.knn_k = int(knn_k)
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
            raise ModeUnavailable("this archive has no communities; use {mode=flat} or rebuild the store with communities", mode="region")

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

    # -- graph (region mode) -----------------------------------------------------------------------
    @cached_property
    def sorted_graph(self) -> sp.csr_matrix:
        if self._graph is None:
            raise ModeUnavailable("this archive has no graph; region mode needs the store's kNN graph", mode="region")
        g = sp.csr_matrix(self._graph)
        if g.shape != (self.n, self.n):
            raise InputError(f"the graph is {g.shape} but the archive has {self.n} items")
        g = g[self.order][:, self.order].tocsr()
        g.sort_indices()
        return g

    @cached_property
    def graph_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr int64, indices int64, data float64) of the sorted graph, for the kernels."""
        g = self.sorted_graph
        return g.indptr.astype(np.int64), g.indices.astype(np.int64), g.data.astype(np.float64)

    @cached_property
    def degree(self) -> np.ndarray:
        """Weighted degree of every item, in sorted order (float64)."""
        return np.asarray(self.sorted_graph.sum(axis=1), np.float64).ravel()

    @cached_property
    def totals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(e, a, n) per community and W: the totals the quality terms take."""
        lab = np.repeat(np.arange(self.n_communities), np.diff(self.off))
        return community_totals(self.sorted_graph, lab, self.n_communities)

    def community_of_sorted(self, j: int) -> int:
        return int(np.searchsorted(self.off, j, side="right") - 1)

    def attach_gain(self, w_qc: float, k_q: float, c: int) -> float:
        """The quality gain of the query q (weighted degree ``k_q``, ``w_qc`` of it towards
        community ``c``) joining ``c``, in the graph with q's edges added (``W + k_q``,
        ``a_c + w_qc``): :func:`~graphret.communities.kernels.join_gain`."""
        e, a, cnt, W = self.totals
        W2 = W + k_q if W + k_q > 0 else 1.0
        return self.quality.join_gain(e[c], a[c] + w_qc, cnt[c], w_qc, k_q, W2)

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
