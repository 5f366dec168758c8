"""Run queries against a store's archive and return ranked item rows with scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphret.errors import InputError
from graphret.query.flat import flat_search
from graphret.store.read import GraphStore

MODES = ("flat",)


@dataclass
class QuerySet:
    """q queries: their codes and, for stored items, their store rows (-1 for outside images)."""

    codes: np.ndarray  # float32 (q, d), unit rows
    rows: np.ndarray  # int64 (q,), store row or -1
    ids: list[str | None]
    paths: list[str | None]
    labels: list[str | list[str] | None]

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


def queries_from_rows(store: GraphStore, rows: np.ndarray, *, space: str = "default") -> QuerySet:
    rows = np.asarray(rows, np.int64)
    return QuerySet(
        codes=np.asarray(store.codes(space)[rows]),
        rows=rows,
        ids=[str(store.ids[r]) for r in rows],
        paths=[store.paths[r] for r in rows],
        labels=[store.label_of(int(r)) for r in rows],
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
    """Outside image files as queries, encoded with the store's encoder."""
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
    )


def search(
    store: GraphStore,
    queries: QuerySet,
    *,
    k: int,
    mode: str = "flat",
    archive: list[str] | None = None,
    space: str = "default",
) -> SearchResult:
    """Top-k archive items for each query.  A stored item never appears in its own results."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    archive_rows = store.archive_rows(archive)
    if len(archive_rows) == 0:
        raise InputError("the archive is empty; choose another --archive")
    position = np.full(len(store), -1, np.int64)
    position[archive_rows] = np.arange(len(archive_rows))
    exclude = np.where(queries.rows >= 0, position[np.maximum(queries.rows, 0)], -1)
    codes = store.codes(space)
    found, scores = flat_search(codes[archive_rows], queries.codes, k, exclude=exclude)
    return SearchResult(
        mode=mode,
        k=k,
        queries=queries,
        rows=archive_rows[found],
        scores=scores,
        scanned_fraction=np.ones(len(queries)),
    )
