"""What a search is asked with: :class:`QuerySet`, made from whatever the user holds by
:func:`as_queries` (as LanceDB's query builder detects its query's kind).

* a split name of the store (``"test"``): every stored item of that split;
* a stored id, or a list of them: those items;
* an image file or a folder of images (a path, or a list of paths): encoded with the store's
  encoder; DICOM files give one query per frame and NIfTI volumes one per slice, read with the
  window and frame choice the store was built with (:func:`medical_options`);
* an array of codes, (d,) or (q, d): L2-normalised here;
* store rows (an integer array, ``rows=True``);
* an :class:`~graphret.data.imageset.ImageSet`: encoded with the store's encoder.

Stored items used as queries never appear in their own results (their ``rows`` say which).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.errors import InputError
from graphret.graph.knn import real_array
from graphret.kernels.unit import UNIT_NOT_FINITE, UNIT_ZERO, unit_rows
from graphret.store.read import Snapshot

__all__ = ["QuerySet", "as_queries", "code_queries", "query_floats", "unit_codes", "unit_queries", "row_queries", "stored_rows"]


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
    # a composite query's parts (graphret.query.compose): {"normal": QuerySet, "abnormal": QuerySet}
    composite: dict[str, "QuerySet"] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def part(self, which: slice) -> "QuerySet":
        """The queries in ``which`` (a slice)."""
        return QuerySet(
            codes=self.codes[which],
            rows=self.rows[which],
            ids=self.ids[which],
            paths=self.paths[which],
            labels=self.labels[which],
            predicted=None if self.predicted is None else self.predicted[which],
        )


def row_queries(store: Snapshot, rows: np.ndarray, space: str) -> QuerySet:
    rows = np.asarray(rows)
    if rows.ndim != 1 or (len(rows) and rows.dtype.kind not in "iu"):
        raise InputError(f"query rows must be a 1-D array of store rows (integers), got {rows.dtype} of shape {rows.shape}", param="q")
    rows = rows.astype(np.int64)
    listed = rows.tolist()  # (once, as Python ints: the per-item look-ups below, and the range check, which on a
    # query or a few is a fraction of numpy's two reductions: ~1 us a call each)
    if listed and (min(listed) < 0 or max(listed) >= len(store)):
        raise InputError(f"query rows must lie in 0..{len(store) - 1}", param="rows")
    predicted = None if store.predicted is None else store.predicted[rows]
    return QuerySet(
        codes=store.codes(space)[rows],
        rows=rows,
        ids=[str(i) for i in store.item_text("id", listed)],
        paths=store.item_text("path", listed),
        labels=[store.label_of(r) for r in listed],
        predicted=predicted,
    )


def _from_images(store: Snapshot, images: ImageSet, space: str) -> QuerySet:
    encoded = store.encode(images)
    if space not in encoded.spaces:
        raise InputError(f"the store's encoder has no code space {space!r}; choose one of {', '.join(encoded.spaces)} for {{space}}", param="space")
    return QuerySet(
        codes=encoded.spaces[space],
        rows=np.full(len(images), -1, np.int64),
        ids=[None] * len(images),
        paths=list(images.paths),
        labels=[None] * len(images),
        predicted=None if encoded.predicted is None else np.asarray(encoded.predicted, np.int64),
        images=images,
    )


def query_floats(codes: Any) -> np.ndarray:
    """Query codes as float32, when they are real numbers (the checks of :func:`real_array`)."""
    return real_array(codes, name="query codes", param="q")


def unit_codes(codes: Any) -> np.ndarray:
    """Query codes as float32 (q, d) unit rows (:func:`graphret.kernels.unit.unit_rows`); a
    (d,) code is one row; an error names NaN or infinite values and all-zero rows (the one
    home of a query code's checks, for :func:`code_queries` and, on the errors, the searcher's
    single-code path)."""
    codes = query_floats(codes)
    if codes.ndim == 1:
        codes = codes[None, :]
    if codes.ndim != 2:
        raise InputError(f"query codes must be a (q, d) array, got shape {codes.shape}")
    unit = np.empty(codes.shape, np.float32)
    status, row = unit_rows(np.ascontiguousarray(codes), unit)
    if status == UNIT_NOT_FINITE:
        raise InputError("query codes hold NaN or infinite values")
    if status == UNIT_ZERO:
        raise InputError(f"query code {row} is all zeros, which has no direction to compare; give non-zero codes", param="q")
    return unit


def unit_queries(codes: np.ndarray, ids: Sequence[str | None] | None = None) -> QuerySet:
    """The :class:`QuerySet` of unit codes (:func:`unit_codes`) that are no stored items."""
    q = len(codes)
    return QuerySet(codes=codes, rows=np.full(q, -1, np.int64), ids=list(ids) if ids else [None] * q,
                    paths=[None] * q, labels=[None] * q)


def code_queries(codes: Any, ids: Sequence[str | None] | None = None) -> QuerySet:
    """The :class:`QuerySet` of query codes, (d,) or (q, d), made unit rows."""
    return unit_queries(unit_codes(codes), ids)


def _examples(store: Snapshot) -> str:
    return ", ".join(map(str, store.ids[:3]))


KINDS = ("split", "ids", "images", "codes", "rows")


def stored_rows(store: Snapshot, ids: Sequence[str]) -> np.ndarray:
    """int64 store rows of stored ``ids`` (an unknown id is an InputError showing what ids look like)."""
    rows = store.rows_of_ids(list(ids))
    for item_id, row in zip(ids, rows):
        if row is None:
            raise InputError(f"unknown id {item_id!r}; ids in this store look like {_examples(store)}", param="ids")
    return np.array(rows, np.int64)


def _from_ids(store: Snapshot, ids: Sequence[str], space: str) -> QuerySet:
    return row_queries(store, stored_rows(store, ids), space)


def _from_split(store: Snapshot, split: str, space: str) -> QuerySet:
    rows = store.split_rows([split])
    if len(rows) == 0:
        raise InputError(f"the store has no items in split {split!r}", param="split")
    return row_queries(store, rows, space)


def medical_options(store: Snapshot):
    """How DICOM and NIfTI query files become images: as the store's own items did (the window,
    frames and NIfTI slicing its build recorded), else the defaults (the file's window, every
    frame, every slice along axis 2)."""
    from graphret.data.medical import MedicalOptions

    params = store.manifest.get("params", {})
    defaults = MedicalOptions()
    chosen = {name: params.get(name) for name in ("window", "frames", "slice_axis", "slice_step")}
    return MedicalOptions(**{name: getattr(defaults, name) if value is None else value for name, value in chosen.items()})


def _from_paths(store: Snapshot, paths: Sequence[str], space: str) -> QuerySet:
    from graphret.data.files import image_files

    return _from_images(store, image_files(list(paths), medical_options(store)), space)


def _detect(store: Snapshot, q: Any) -> str:
    """The kind of ``q`` (see the module docstring)."""
    if isinstance(q, ImageSet):
        return "images"
    if isinstance(q, np.ndarray) and q.dtype.kind in "OUS":  # an array of ids or paths reads as a list of them
        q = q.tolist() if q.ndim == 1 else q
    if isinstance(q, np.ndarray):
        return "rows" if q.dtype.kind in "iu" else "codes"
    texts = [q] if isinstance(q, (str, Path)) else q
    if isinstance(texts, (list, tuple)) and texts and all(isinstance(x, (str, Path)) for x in texts):
        names = [str(x) for x in texts]
        if isinstance(q, str) and q in store.split_names:
            return "split"
        stored = store.rows_of_ids(names)
        if all(row is not None for row in stored):
            return "ids"
        if all(Path(n).exists() for n in names):
            return "images"
        missing = next(n for n, row in zip(names, stored) if row is None and not Path(n).exists())
        raise InputError(
            f"{missing!r} is neither a split, a stored id nor an existing image path; splits: "
            f"{', '.join(sorted(store.split_names))}; ids look like {_examples(store)}"
        )
    if isinstance(q, (list, tuple)) and q and all(isinstance(x, (list, tuple, np.ndarray)) for x in q):
        return "codes"
    raise InputError(f"cannot search with a {type(q).__name__}; give a split name, stored ids, image paths, or an array of codes")


def as_queries(store: Snapshot, q: Any, *, space: str = "default", kind: str | None = None) -> QuerySet:
    """The :class:`QuerySet` for ``q`` (see the module docstring for what it may be).

    ``kind`` (one of :data:`KINDS`) says what ``q`` is; None detects it: a string is a split
    of the store, else a stored id, else an image file or folder; a float array is codes, an
    integer array store rows."""
    if space not in store.spaces:
        raise InputError(f"the store has no code space {space!r}; choose one of {', '.join(store.spaces)} for {{space}}", param="space")
    if isinstance(q, QuerySet):
        return q
    kind = _detect(store, q) if kind is None else kind
    if kind not in KINDS:
        raise InputError(f"unknown query kind {kind!r}; choose one of {', '.join(KINDS)}", param="kind")
    if kind == "split":
        return _from_split(store, str(q), space)
    if kind == "codes":
        return code_queries(q)
    if kind == "rows":
        return row_queries(store, np.asarray(q), space)
    if kind == "images" and isinstance(q, ImageSet):
        return _from_images(store, q, space)
    names = [str(q)] if isinstance(q, (str, Path)) else [str(x) for x in q]
    return _from_ids(store, names, space) if kind == "ids" else _from_paths(store, names, space)
