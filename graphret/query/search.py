"""Run queries against a store's archive and return ranked item rows with scores.

Modes (GUIDE section 4):

* ``region`` (the default when the store has communities): Haq's Algorithm 1, see
  :mod:`graphret.query.region`;
* ``flat``: exact cosine top-K over the whole archive, see :mod:`graphret.query.flat`;
* ``class``: flat search inside the query's predicted class, see
  :mod:`graphret.query.classfilter`;
* ``probe``: exact top-K inside the P communities with the nearest centroids, see
  :mod:`graphret.query.probe`.

``where`` filters (:mod:`graphret.query.filters`) restrict the archive before ranking in every
mode.  A stored item used as a query never appears in its own results.

The archive: ``archive=None`` is the store's default archive (train + val, or everything)
**plus every item added with ``graphret add``** whatever its split (added items are marked by
the ``added`` item column); an explicit list of splits is exactly those splits ("all": every
item).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphret.errors import InputError
from graphret.graph.knn import check_dimension, exact_search
from graphret.graph.topk import check_k
from graphret.query.flat import flat_mode
from graphret.query.index import RetrievalIndex
from graphret.store.read import GraphStore

MODES = ("region", "flat", "class", "probe")
DEFAULT_PROBE = 4


@dataclass
class QuerySet:
    """q queries: their codes and, for stored items, their store rows (-1 for outside images)."""

    codes: np.ndarray  # float32 (q, d), unit rows
    rows: np.ndarray  # int64 (q,), store row or -1
    ids: list[str | None]
    paths: list[str | None]
    labels: list[str | list[str] | None]
    predicted: np.ndarray | None = None  # int64 (q,) classifier's class (class mode), or None
    images: Any = None  # the ImageSet of outside images (for montages), or None

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class SearchResult:
    """Top-k results of each query: store rows, scores, and the fraction of the archive whose
    codes were compared."""

    mode: str
    k: int
    queries: QuerySet
    rows: np.ndarray  # int64 (q, k) store rows
    scores: np.ndarray  # float32 (q, k)
    scanned_fraction: np.ndarray  # float64 (q,)
    store: GraphStore | None = field(default=None, repr=False)
    community_method: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # per-mode extras (chosen community, class, ...)

    @property
    def ids(self) -> np.ndarray:
        """object (q, k) ids of the results."""
        return self.store.ids[self.rows]

    def communities(self) -> np.ndarray | None:
        if self.store is None or not self.community_method:
            return None
        return self.store.membership(self.community_method)[self.rows]

    def to_arrow(self):
        """One row per (query, result): query_index, query_id, rank, id, row, score, label,
        community, path, scanned_fraction -- a ``pyarrow.Table``."""
        import pyarrow as pa

        q, k = self.rows.shape
        store = self.store
        flat_rows = self.rows.ravel()
        communities = self.communities()
        labels = [store.label_of(int(r)) for r in flat_rows]
        label_type = pa.list_(pa.string()) if store.task == "multilabel" else pa.string()
        return pa.table(
            {
                "query_index": pa.array(np.repeat(np.arange(q), k), pa.int32()),
                "query_id": pa.array(np.repeat(np.asarray(self.queries.ids, dtype=object), k).tolist(), pa.string()),
                "rank": pa.array(np.tile(np.arange(1, k + 1), q), pa.int32()),
                "id": pa.array(store.ids[flat_rows].tolist(), pa.string()),
                "row": pa.array(flat_rows, pa.int64()),
                "score": pa.array(self.scores.ravel(), pa.float32()),
                "label": pa.array(labels, label_type),
                "community": pa.nulls(q * k, pa.int32()) if communities is None else pa.array(communities.ravel(), pa.int32()),
                "path": pa.array([store.paths[int(r)] for r in flat_rows], pa.string()),
                "scanned_fraction": pa.array(np.repeat(self.scanned_fraction, k), pa.float64()),
            }
        )


# -- queries -----------------------------------------------------------------------------------
def queries_from_rows(store: GraphStore, rows: np.ndarray, *, space: str = "default") -> QuerySet:
    rows = np.asarray(rows, np.int64)
    predicted = None
    if "predicted" in store.items.schema.names:
        predicted = store.items.column("predicted").to_numpy()[rows].astype(np.int64)
    return QuerySet(
        codes=np.asarray(store.codes(space)[rows]),
        rows=rows,
        ids=[str(store.ids[r]) for r in rows],
        paths=[store.paths[r] for r in rows],
        labels=[store.label_of(int(r)) for r in rows],
        predicted=predicted,
    )


def queries_from_ids(store: GraphStore, ids: list[str], *, space: str = "default") -> QuerySet:
    """Stored items as queries, by id."""
    rows = []
    for item_id in ids:
        if item_id not in store.row_of_id:
            examples = ", ".join(map(str, store.ids[:3]))
            raise InputError(f"unknown id {item_id!r}; ids in this store look like {examples}")
        rows.append(store.row_of_id[item_id])
    return queries_from_rows(store, np.array(rows), space=space)


def queries_from_split(store: GraphStore, split: str, *, space: str = "default") -> QuerySet:
    """Every stored item of one split as a query."""
    rows = store.archive_rows([split])
    if len(rows) == 0:
        raise InputError(f"the store has no items in split {split!r}")
    return queries_from_rows(store, rows, space=space)


def queries_from_images(store: GraphStore, paths: list[str], *, space: str = "default") -> QuerySet:
    """Outside image files (or folders of them, recursively) as queries, encoded with the
    store's encoder."""
    from graphret.data.files import image_files

    images = image_files(paths)
    encoded = store.encoder().encode(images)
    if space not in encoded.spaces:
        raise InputError(f"the store's encoder has no code space {space!r}; choose one of {', '.join(encoded.spaces)}")
    return QuerySet(
        codes=encoded.spaces[space],
        rows=np.full(len(images), -1, np.int64),
        ids=[None] * len(images),
        paths=list(images.paths),
        labels=[None] * len(images),
        predicted=None if encoded.predicted is None else np.asarray(encoded.predicted, np.int64),
        images=images,
    )


def queries_from_codes(codes: np.ndarray, *, ids: list[str | None] | None = None) -> QuerySet:
    """Raw codes (q, d) as queries (L2-normalised here)."""
    codes = np.asarray(codes, np.float32)
    if codes.ndim == 1:
        codes = codes[None, :]
    if codes.ndim != 2:
        raise InputError("query codes must be a (q, d) array")
    codes = codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12)
    q = len(codes)
    return QuerySet(codes=codes, rows=np.full(q, -1, np.int64), ids=list(ids) if ids else [None] * q, paths=[None] * q, labels=[None] * q)


# -- the archive and its index -----------------------------------------------------------------
def added_rows(store: GraphStore) -> np.ndarray:
    if "added" not in store.items.schema.names:
        return np.zeros(0, np.int64)
    return np.flatnonzero(store.items.column("added").to_numpy(zero_copy_only=False).astype(bool))


def archive_rows(store: GraphStore, archive: list[str] | None = None) -> np.ndarray:
    """Store rows of the archive (see the module docstring for the rule on added items)."""
    rows = store.archive_rows(archive)
    if archive is None:
        extra = added_rows(store)
        if len(extra):
            rows = np.union1d(rows, extra)
    return np.asarray(rows, np.int64)


def _cache(store: GraphStore) -> dict:
    return store.__dict__.setdefault("_graphret_query_cache", {})


def community_settings(store: GraphStore, method: str) -> tuple[str, float]:
    """(quality function, resolution) the store's ``method`` communities were built with."""
    info = store.manifest.get("communities", {}).get(method, {})
    params = store.manifest.get("params", {})
    quality = info.get("quality_function") or (params.get("quality", "newman") if method == "cnm" else "newman")
    resolution = float(info.get("resolution", params.get("resolution", 1.0)))
    return str(quality), resolution


def index_for_store(store: GraphStore, *, space: str = "default", archive: list[str] | None = None,
                    method: str | None = None) -> tuple[RetrievalIndex, np.ndarray]:
    """(index, archive store rows) for the store, built once per (space, archive, method) and
    kept on the opened store."""
    key = (space, None if archive is None else tuple(archive), method)
    cache = _cache(store)
    if key in cache:
        return cache[key]
    rows = archive_rows(store, archive)
    if len(rows) == 0:
        raise InputError("the archive is empty; choose another --archive")
    codes = store.codes(space)
    codes = codes if len(rows) == len(store) and np.array_equal(rows, np.arange(len(store))) else codes[rows]
    kwargs: dict[str, Any] = {}
    if method is not None:
        from graphret.query.centroids import store_centroids

        quality, resolution = community_settings(store, method)
        graph = store.__dict__.get("_graphret_graph")
        if graph is None:
            graph = store.graph()
            store.__dict__["_graphret_graph"] = graph
        if len(rows) != len(store):
            graph = graph[rows][:, rows]
        kwargs = dict(
            membership=store.membership(method)[rows],
            graph=graph,
            quality=quality,
            resolution=resolution,
            knn_k=int(store.manifest.get("params", {}).get("k", 10)),
            centroids=store_centroids(store, method, space),
        )
    index = RetrievalIndex(codes, **kwargs)
    cache[key] = (index, rows)
    return cache[key]


def default_mode(store: GraphStore) -> str:
    return "region" if store.community_methods else "flat"


# -- search --------------------------------------------------------------------------------------
def search(
    store: GraphStore,
    queries: QuerySet,
    *,
    k: int,
    mode: str | None = None,
    archive: list[str] | None = None,
    space: str = "default",
    where: list[str] | None = None,
    n_probe: int = DEFAULT_PROBE,
    shortlist: int | None = None,
    communities: str | None = None,
    class_source: str = "classifier",
    batch_size: int | None = None,
) -> SearchResult:
    """Top-k archive items for each query (see the module docstring).

    ``mode`` None: region when the store has communities, flat otherwise.  ``communities``:
    the community method region and probe use (default: CNM when stored, else the first).
    ``n_probe``: P of probe mode; ``shortlist``: communities region mode short-lists;
    ``class_source``: "classifier" or "knn" (class mode); ``batch_size``: queries per batch
    (None: all at once)."""
    from graphret.query.filters import filter_mask

    mode = default_mode(store) if mode is None else mode
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    check_k(k, 10**18)  # K >= 1 before anything is loaded
    method = None
    if mode in ("region", "probe"):
        if not store.community_methods:
            raise InputError(f"mode {mode} needs communities and this store has none; use --mode flat or rebuild with communities")
        method = communities or store.default_community_method()
        store.membership(method)  # names the stored methods when unknown
    elif communities:
        store.membership(communities)
    shown_method = communities or store.default_community_method()
    index, rows = index_for_store(store, space=space, archive=archive, method=method)
    check_dimension(index.dim, np.asarray(queries.codes))
    mask = filter_mask(store, where)
    allowed = None
    if mask is not None:
        allowed = mask[rows]
        if not allowed.any():
            raise InputError(f"no archive item matches --where {' and '.join(map(str, where))}; loosen the filter")
    position = np.full(len(store), -1, np.int64)
    position[rows] = np.arange(len(rows))
    exclude = np.where(queries.rows >= 0, position[np.maximum(queries.rows, 0)], -1)

    step = len(queries) if not batch_size else max(1, int(batch_size))
    found = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    scanned = np.zeros(len(queries))
    details: dict[str, Any] = {}
    for start in range(0, max(len(queries), 1), step):
        stop = min(start + step, len(queries))
        part = slice(start, stop)
        Q = queries.codes[part]
        ex = exclude[part]
        if mode == "flat":
            f, s, sc = flat_mode(index.codes, Q, k, exclude=ex, allowed=allowed)
        elif mode == "probe":
            from graphret.query.probe import probe_search

            f, s, sc = probe_search(index, Q, k, n_probe=n_probe, exclude=ex, allowed=allowed)
            details["n_probe"] = int(n_probe)
        elif mode == "region":
            from graphret.query.region import DEFAULT_SHORTLIST, region_search

            f, s, sc, chosen = region_search(index, Q, k, shortlist=shortlist or DEFAULT_SHORTLIST, exclude=ex, allowed=allowed, return_chosen=True)
            details.setdefault("chosen_community", []).extend(int(index.community_ids[c]) for c in chosen)
        else:
            f, s, sc, classes = _class(store, index, rows, _slice_queries(queries, part), k, ex, allowed, class_source)
            details.setdefault("predicted_class", []).extend(store.class_names[c] if 0 <= c < len(store.class_names) else int(c) for c in classes)
        found[part], scores[part], scanned[part] = f, s, sc
    return SearchResult(
        mode=mode,
        k=k,
        queries=queries,
        rows=rows[found],
        scores=scores,
        scanned_fraction=scanned,
        store=store,
        community_method=method or shown_method,
        details=details,
    )


def _slice_queries(queries: QuerySet, part: slice) -> QuerySet:
    return QuerySet(
        codes=queries.codes[part],
        rows=queries.rows[part],
        ids=queries.ids[part],
        paths=queries.paths[part],
        labels=queries.labels[part],
        predicted=None if queries.predicted is None else queries.predicted[part],
    )


def _class(store, index: RetrievalIndex, rows: np.ndarray, queries: QuerySet, k: int, exclude: np.ndarray,
           allowed: np.ndarray | None, class_source: str):
    from graphret.query.classfilter import class_members, predict_classes

    classes, voted = predict_classes(store, queries, rows, index.codes, exclude, class_source=class_source)
    found = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    scanned = np.zeros(len(queries))
    for c in np.unique(classes):
        which = np.flatnonzero(classes == c)
        member = class_members(store, int(c))[rows]
        if allowed is not None:
            member &= allowed
        name = store.class_names[c] if 0 <= c < len(store.class_names) else str(c)
        keep = np.flatnonzero(member)
        local = np.full(index.n, -1, np.int64)
        local[keep] = np.arange(len(keep))
        ex = np.where(exclude[which] >= 0, local[np.maximum(exclude[which], 0)], -1)
        available = len(keep) - (1 if np.any(ex >= 0) else 0)
        if available < k:
            raise InputError(f"the predicted class {name!r} has only {max(available, 0)} archive items; use --k {max(available, 1)} or less")
        f, s = exact_search(index.codes[keep], queries.codes[which], k, exclude=ex)
        found[which], scores[which] = keep[f], s
        scanned[which] = 1.0 if voted else len(keep) / index.n
    return found, scores, scanned, classes
