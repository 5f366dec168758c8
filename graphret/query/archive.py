"""The archive one searcher answers from, laid out for each mode (state: what has been built).

A store keeps the archive's codes, its kNN graph, its communities, the CNM dendrogram and the
walk lists with their entry points; an :class:`ArchiveIndex` turns them into what the query
kernels take, over *archive positions* 0..n-1 (``rows[p]`` is position p's store row), each
part built on first use and kept:

* ``walk``: the walk lists as CSR, the entry points and their codes (graph and region modes);
  a store without stored lists (a non-default archive, or one built with ``walk=False``) gets
  lists built here from its graph, once; ``walk_base``: the same checked once as a walk's
  inputs, so that a query checks only its own inputs; ``graph_base``: the same with the archive
  renumbered by community, which the graph mode's walks run over (:mod:`graphret.graph.layout`);
* ``region``: the weighted graph with the community of each item and the quality's totals
  (:class:`~graphret.query.graph_region.RegionGraph`, region mode);
* ``probe``: the communities cut into lists of bounded size
  (:func:`graphret.communities.lists.bounded_lists`), as a :class:`RetrievalIndex` (probe mode);
* ``smoothed``: graph-smoothed codes (:func:`graphret.graph.diffusion.smooth_codes`, the
  ``smoothed`` ranking).

Nothing is written back to the store: opening and searching a store never writes to it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from graphret.communities.partition import dense_labels
from graphret.errors import ModeUnavailable
from graphret.graph import layout
from graphret.graph.csr import symmetric_csr
from graphret.graph.walk import DEFAULT_EF, DEFAULT_N_ENTRY, WalkInputs, walk_inputs
from graphret.query.graph_region import RegionGraph
from graphret.query.index import RetrievalIndex
from graphret.query.prepared import Prepared, read_prepared
from graphret.store.prepared import arrays_table
from graphret.store.read import Snapshot

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["ArchiveIndex", "WalkLists", "prepared_tables"]


@dataclass
class WalkLists:
    """The walk's lists over archive positions, its entry points and their codes."""

    indptr: np.ndarray  # int64 (n + 1,)
    indices: np.ndarray  # int32
    entries: np.ndarray  # int64 positions
    entry_codes: np.ndarray  # float32 (len(entries), d), contiguous


class ArchiveIndex:
    """One archive of a store in one code space, with one community method (or none)."""

    def __init__(self, store: Snapshot, rows: np.ndarray, codes: np.ndarray, method: str | None, *,
                 stored_walk: bool = True, prepared: bool = True) -> None:
        """``codes``: the store's codes of every item in the searched space (the archive's rows
        are taken from them, without a copy when the archive is every item).  ``stored_walk``:
        this is the store's default archive in its default space, whose stored walk lists and,
        with ``prepared``, prepared tables (:mod:`graphret.query.prepared`) it reads instead of
        building them."""
        self.store = store
        self.stored_walk = stored_walk  # the store's walk lists cover this archive (its default one)
        self.use_prepared = prepared and stored_walk
        self.rows = rows
        self.method = method
        self.n = len(rows)
        self.whole = self.n == len(store) and np.array_equal(rows, np.arange(len(store)))
        self.codes = np.ascontiguousarray(codes if self.whole else codes[rows], dtype=np.float32)

    @cached_property
    def position(self) -> np.ndarray:
        """int64 (store items,) each store row's archive position, -1 outside the archive."""
        position = np.full(len(self.store), -1, np.int64)
        position[self.rows] = np.arange(self.n)
        return position

    @cached_property
    def prepared(self) -> Prepared | None:
        """The store's prepared arrays of this archive (memory-mapped), or None: build them."""
        return read_prepared(self.store, self.n) if self.use_prepared else None

    # -- the stored graph and communities over the archive ------------------------------------
    @cached_property
    def graph_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kNN graph restricted to the archive as CSR arrays ``(indptr, indices, data)``,
        sorted indices (what region mode reads: no scipy needed)."""
        if self.prepared is not None:
            return self.prepared.graph
        src, dst, weight = self.store.edge_arrays()
        if not self.whole:  # (positions grow with rows: the stored order is kept)
            src, dst = self.position[src], self.position[dst]
            keep = (src >= 0) & (dst >= 0)
            src, dst, weight = src[keep], dst[keep], weight[keep]
        return symmetric_csr(src, dst, weight, self.n)

    @cached_property
    def graph(self) -> sp.csr_matrix:
        """The kNN graph restricted to the archive (scipy CSR, sorted indices)."""
        import scipy.sparse as sp

        indptr, indices, data = self.graph_arrays
        return sp.csr_matrix((data, indices, indptr), shape=(self.n, self.n))

    def _require_communities(self, mode: str) -> np.ndarray:
        if self.method is None:
            raise ModeUnavailable(f"mode {mode} needs communities and this store has none; use {{mode=flat}} or rebuild with communities",
                                  mode=mode)
        return self.store.membership(self.method)[self.rows]

    # -- walk ---------------------------------------------------------------------------------
    @cached_property
    def walk(self) -> WalkLists:
        ready = self.prepared.walk if self.prepared is not None else None  # (the stored lists as CSR)
        stored = self.store.walk_lists if self.stored_walk and ready is None else None
        if ready is not None:
            indptr, indices = ready
        elif stored is not None:
            src, dst = stored
            if not self.whole:  # (the whole archive's positions are its rows)
                src, dst = self.position[src], self.position[dst]
                keep = (src >= 0) & (dst >= 0)
                src, dst = src[keep], dst[keep]
            indptr = np.zeros(self.n + 1, np.int64)
            np.cumsum(np.bincount(src, minlength=self.n), out=indptr[1:])
            if len(src) > 1 and np.all(src[1:] >= src[:-1]):  # stored list by list (a build writes them so): as they are
                indices = dst.astype(np.int32)
            else:  # each list keeps its stored order
                indices = dst[np.argsort(src, kind="stable")].astype(np.int32)
        else:
            from graphret.graph.search_graph import build_search_graph, walk_effort

            # as a build would for an archive of this size whose kNN search kept no candidates (there is none here)
            passes, expand, local, _ = walk_effort(self.n, searched=False)
            groups = self.store.membership(self.method)[self.rows] if self.method and layout.pays(self.n) else None
            indptr, indices = build_search_graph(self.codes, self.graph if self.graph.nnz else None, passes=passes, expand=expand,
                                                 local_passes=local, groups=groups)
        entry_rows = self.store.entry_rows if stored is not None or ready is not None else None
        entries = np.zeros(0, np.int64) if entry_rows is None else self.position[entry_rows]
        entries = entries[entries >= 0]
        if entries.size == 0:
            from graphret.graph.search_graph import entry_points

            membership = self.store.membership(self.method)[self.rows] if self.method else None
            entries = entry_points(self.codes, membership, graph=(indptr, indices))
        return WalkLists(indptr, indices, entries, np.ascontiguousarray(self.codes[entries]))

    @cached_property
    def walk_base(self) -> WalkInputs:
        """The walk lists, entry points and codes checked once as a walk's inputs (no queries
        yet: :meth:`WalkInputs.with_queries` adds them per call)."""
        walk = self.walk
        return walk_inputs(self.codes, walk.indptr, walk.indices, np.zeros((0, self.codes.shape[1]), np.float32), 1,
                           entries=walk.entries, entry_codes=walk.entry_codes, ef=DEFAULT_EF, n_entry=DEFAULT_N_ENTRY,
                           exclude=None, allowed=None)

    @cached_property
    def graph_base(self) -> WalkInputs:
        """:attr:`walk_base` with the archive renumbered by community for the graph and region
        modes' unfiltered walks (:mod:`graphret.graph.layout`; one more copy of the codes and
        lists, made on the first such search, and of the region graph on the first region
        search; above :data:`~graphret.graph.layout.COMPACT_ABOVE` items also a one-byte copy of
        the codes that the graph mode's walks score, :mod:`graphret.graph.compact`), or
        :attr:`walk_base` itself without communities or up to
        :data:`~graphret.graph.layout.LAYOUT_ABOVE` items."""
        base = self.walk_base
        if self.method is None or not layout.pays(self.n):
            return base
        groups = self.store.membership(self.method)[self.rows]
        return replace(base, layout=layout.walk_layout(base.codes, base.indptr, base.indices, base.entries, groups,
                                                        compact=layout.compact_pays(self.n)))

    # -- region -------------------------------------------------------------------------------
    @cached_property
    def region(self) -> tuple[RegionGraph, np.ndarray]:
        """The region graph and, per dense community label, the store's community id."""
        self._require_communities("region")
        return self.region_of(self.method)

    def region_of(self, method: str) -> tuple[RegionGraph, np.ndarray]:
        """:attr:`region` for the store's ``method`` communities (from the prepared tables when
        they hold it)."""
        quality = self.store.quality(method)
        options = dict(quality=quality.name, resolution=quality.resolution, w_max=quality.w_max, knn_k=self.store.graph_k)
        ready = self.prepared.regions.get(method) if self.prepared is not None else None
        if ready is not None and self.prepared.degree is not None:
            indptr, indices, weights = self.graph_arrays
            region = RegionGraph(indptr, indices, weights, ready.labels, ready.totals, degree=self.prepared.degree, same=ready.same,
                                 **options)
            return region, ready.community
        membership = self.store.membership(method)[self.rows]
        return RegionGraph.from_graph(self.graph_arrays, membership, **options), dense_labels(membership)[1]

    # -- probe --------------------------------------------------------------------------------
    @cached_property
    def probe(self) -> RetrievalIndex:
        """The communities cut into lists of bounded size (the stored partition is unchanged)."""
        from graphret.communities.lists import bounded_lists

        membership = self._require_communities("probe")
        return RetrievalIndex(self.codes, membership=bounded_lists(membership, graph=self.graph, codes=self.codes))

    # -- ranking ------------------------------------------------------------------------------
    @cached_property
    def smoothed(self) -> np.ndarray:
        from graphret.graph.diffusion import smooth_codes

        return smooth_codes(self.codes, self.graph)


def prepared_tables(store: Snapshot) -> dict[str, pa.Table]:
    """The ``adjacency`` and ``regions`` tables of ``store``'s default archive, computed as a
    search over it computes them (one home: :class:`ArchiveIndex`)."""
    rows = store.archive_rows()
    methods = store.community_methods
    index = ArchiveIndex(store, rows, store.codes(), methods[0] if methods else None, prepared=False)
    indptr, indices, weights = index.graph_arrays
    walk = index.walk if store.walk_lists is not None else None
    regions, degree = [], np.zeros(0, np.float64)
    for method in methods:
        region, ids = index.region_of(method)
        degree = region.degree
        regions.append({"method": method, "labels": region.labels, "community": np.asarray(ids, np.int32),
                        "same": region.same.view(np.uint8), "e": region.e, "a": region.a, "n": region.n_c, "W": region.W})
    tables = {"adjacency": arrays_table([{
        "indptr": np.asarray(indptr, np.int64), "indices": np.asarray(indices, np.int32), "weights": np.asarray(weights, np.float32),
        "degree": np.asarray(degree, np.float64),
        "walk_indptr": walk.indptr if walk is not None else np.zeros(0, np.int64),
        "walk_indices": walk.indices if walk is not None else np.zeros(0, np.int32)}])}
    if regions:
        tables["regions"] = arrays_table(regions)
    return tables
