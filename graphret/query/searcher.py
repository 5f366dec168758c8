"""Search a store's archive: :class:`Searcher`, the explicit in-memory object that holds what
queries need (codes, communities, graph layout, centroids), built from a store
:class:`~graphret.store.read.Snapshot` that it only reads.

Modes (GUIDE section 4):

* ``region`` (the default when the store has communities): Haq's Algorithm 1, see
  :mod:`graphret.query.region`;
* ``flat``: exact cosine top-K over the whole archive, see :mod:`graphret.query.flat`;
* ``class``: flat search inside the query's predicted class, see
  :mod:`graphret.query.classfilter`;
* ``probe``: exact top-K inside the P communities with the nearest centroids, see
  :mod:`graphret.query.probe`.

``where`` filters (:mod:`graphret.query.filters`) restrict the archive before ranking in every
mode.  A stored item used as a query never appears in its own results.  The archive is the
store's (:meth:`Snapshot.archive_rows`: train + val or everything, plus added items) unless
``archive`` names splits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphret.errors import InputError, ModeUnavailable
from graphret.graph.knn import check_dimension, exact_search
from graphret.graph.topk import check_k
from graphret.query.filters import filter_mask
from graphret.query.flat import flat_mode
from graphret.query.index import RetrievalIndex
from graphret.query.probe import probe_search
from graphret.query.queries import QuerySet, as_queries
from graphret.query.region import DEFAULT_SHORTLIST, region_search
from graphret.query.result import SearchResult
from graphret.store.read import Snapshot

__all__ = ["MODES", "DEFAULT_PROBE", "Searcher", "search", "default_mode"]

MODES = ("region", "flat", "class", "probe")
DEFAULT_PROBE = 4


def default_mode(store: Snapshot) -> str:
    """region when the store has communities, flat otherwise."""
    return "region" if store.community_methods else "flat"


class Searcher:
    """The archive of one store in one code space, ready to search (state: the index).

    ``archive``: the splits searched (None: the store's archive); ``communities``: the
    community method region and probe use (None: CNM when stored, else the first)."""

    def __init__(self, store: Snapshot, *, space: str = "default", archive: list[str] | None = None,
                 communities: str | None = None) -> None:
        if space not in store.spaces:
            raise InputError(f"the store has no code space {space!r}; choose one of {', '.join(store.spaces)} for {{space}}", param="space")
        if communities is not None:
            store.membership(communities)  # names the stored methods when unknown
        self.store = store
        self.space = space
        self.archive = None if archive is None else list(archive)
        self.rows = store.archive_rows(self.archive)
        if len(self.rows) == 0:
            raise InputError("the archive is empty; choose other splits for {archive}", param="archive")
        self.method = communities or store.default_community_method()
        codes = store.codes(space)
        whole = len(self.rows) == len(store) and np.array_equal(self.rows, np.arange(len(store)))
        self._codes = codes if whole else codes[self.rows]
        self._index: RetrievalIndex | None = None
        self._position = np.full(len(store), -1, np.int64)
        self._position[self.rows] = np.arange(len(self.rows))

    @property
    def index(self) -> RetrievalIndex:
        """The archive's index, with communities when the store has them (built on first use)."""
        if self._index is None:
            kwargs: dict[str, Any] = {}
            if self.method is not None:
                graph = self.store.graph()
                if len(self.rows) != len(self.store):
                    graph = graph[self.rows][:, self.rows]
                kwargs = dict(membership=self.store.membership(self.method)[self.rows], graph=graph,
                              quality=self.store.quality(self.method), knn_k=self.store.graph_k)
            self._index = RetrievalIndex(self._codes, **kwargs)
        return self._index

    def queries(self, q: Any, *, kind: str | None = None) -> QuerySet:
        """``q`` as a :class:`QuerySet` in this searcher's space (see :func:`as_queries`)."""
        return as_queries(self.store, q, space=self.space, kind=kind)

    def search(
        self,
        q: Any,
        *,
        k: int = 10,
        mode: str | None = None,
        where: list[str] | str | None = None,
        n_probe: int = DEFAULT_PROBE,
        shortlist: int | None = None,
        class_source: str = "classifier",
        batch_size: int | None = None,
    ) -> SearchResult:
        """Top-k archive items for each query in ``q`` (anything :func:`as_queries` takes).

        ``mode`` None: region when the store has communities, flat otherwise.  ``n_probe``: P
        of probe mode; ``shortlist``: communities region mode short-lists (default 4);
        ``class_source``: "classifier" or "knn" (class mode); ``batch_size``: queries per batch
        (None: all at once)."""
        store = self.store
        mode = default_mode(store) if mode is None else mode
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}", param="mode")
        check_k(k)  # a whole number >= 1, before anything is loaded
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
            raise InputError(f"{{batch_size}} must be at least 1, got {batch_size!r}", param="batch_size")
        if shortlist is not None and (isinstance(shortlist, bool) or not isinstance(shortlist, (int, np.integer)) or shortlist < 1):
            raise InputError(f"{{shortlist}} must be at least 1, got {shortlist!r}; use e.g. {{shortlist={DEFAULT_SHORTLIST}}}", param="shortlist")
        if mode in ("region", "probe") and self.method is None:
            raise ModeUnavailable(f"mode {mode} needs communities and this store has none; use {{mode=flat}} or rebuild with communities", mode=mode)
        queries = self.queries(q)
        check_dimension(self._codes.shape[1], np.asarray(queries.codes))
        index = self.index if mode in ("region", "probe") else None
        where = [where] if isinstance(where, str) else where
        mask = filter_mask(store, where)
        allowed = None
        if mask is not None:
            allowed = mask[self.rows]
            if not allowed.any():
                raise InputError(f"no archive item matches the filters {' and '.join(map(str, where))}; loosen {{where}}", param="where")
        exclude = np.where(queries.rows >= 0, self._position[np.maximum(queries.rows, 0)], -1)

        step = len(queries) if not batch_size else int(batch_size)
        found = np.empty((len(queries), k), np.int64)
        scores = np.empty((len(queries), k), np.float32)
        scanned = np.zeros(len(queries))
        details: dict[str, Any] = {}
        for start in range(0, max(len(queries), 1), max(step, 1)):
            part = slice(start, min(start + step, len(queries)))
            Q, ex = queries.codes[part], exclude[part]
            if mode == "flat":
                f, s, sc = flat_mode(self._codes, Q, k, exclude=ex, allowed=allowed)
            elif mode == "probe":
                f, s, sc = probe_search(index, Q, k, n_probe=n_probe, exclude=ex, allowed=allowed)
                details["n_probe"] = int(n_probe)
            elif mode == "region":
                f, s, sc, chosen = region_search(index, Q, k, shortlist=shortlist or DEFAULT_SHORTLIST, exclude=ex,
                                                 allowed=allowed, return_chosen=True)
                details.setdefault("chosen_community", []).extend(int(index.community_ids[c]) for c in chosen)
            else:
                f, s, sc, classes = self._class(queries.part(part), k, ex, allowed, class_source)
                details.setdefault("predicted_class", []).extend(
                    store.class_names[c] if 0 <= c < len(store.class_names) else int(c) for c in classes)
            found[part], scores[part], scanned[part] = f, s, sc
        return SearchResult(mode=mode, k=k, queries=queries, rows=self.rows[found], scores=scores,
                            scanned_fraction=scanned, store=store, community_method=self.method, details=details)

    def _class(self, queries: QuerySet, k: int, exclude: np.ndarray, allowed: np.ndarray | None, class_source: str):
        from graphret.query.classfilter import class_members, predict_classes

        store, codes, n = self.store, self._codes, len(self.rows)
        classes, voted = predict_classes(store, queries, self.rows, codes, exclude, class_source=class_source)
        found = np.empty((len(queries), k), np.int64)
        scores = np.empty((len(queries), k), np.float32)
        scanned = np.zeros(len(queries))
        for c in np.unique(classes):
            which = np.flatnonzero(classes == c)
            member = class_members(store, int(c))[self.rows]
            if allowed is not None:
                member &= allowed
            name = store.class_names[c] if 0 <= c < len(store.class_names) else str(c)
            keep = np.flatnonzero(member)
            local = np.full(n, -1, np.int64)
            local[keep] = np.arange(len(keep))
            ex = np.where(exclude[which] >= 0, local[np.maximum(exclude[which], 0)], -1)
            available = len(keep) - (1 if np.any(ex >= 0) else 0)
            if available < k:
                raise ModeUnavailable(
                    f"the predicted class {name!r} has only {max(available, 0)} archive items; use {{k={max(available, 1)}}} or less",
                    mode="class", param="k")
            f, s = exact_search(codes[keep], queries.codes[which], k, exclude=ex)
            found[which], scores[which] = keep[f], s
            scanned[which] = 1.0 if voted else len(keep) / n
        return found, scores, scanned, classes


def search(store: Snapshot, q: Any, *, k: int = 10, space: str = "default", archive: list[str] | None = None,
           communities: str | None = None, **options: Any) -> SearchResult:
    """One search with a fresh :class:`Searcher` (keep a Searcher to search many times)."""
    return Searcher(store, space=space, archive=archive, communities=communities).search(q, k=k, **options)
