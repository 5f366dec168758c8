"""Prepared tables: what a query needs from a version that takes O(edges) to compute, computed
once when the version is written and memory-mapped by every process that opens it.

A store keeps its kNN graph as an edge list and its walk lists as directed edges (any Arrow
tool reads them); a search reads them as compressed sparse rows over the archive's positions,
with the communities' totals (:class:`graphret.query.archive.ArchiveIndex`).  Building those
from ten million edges takes seconds, which a server pays once per version but a one-query
command pays every time.  So a build, an add and a compact also write (format 3):

* ``adjacency`` (one row): the default archive's weighted graph as CSR (``indptr``,
  ``indices``, ``weights``), the weighted ``degree`` of each position and its walk lists
  (``walk_indptr``, ``walk_indices``; empty when the store keeps none);
* ``regions`` (one row per community method): ``method``, the dense community ``labels`` of
  each position, the stored id of each dense ``community``, ``same`` (1 where the edge stays
  inside its row's community) and the quality's totals ``e``, ``a``, ``n``, ``W``.

Each array is one ``large_list`` value of its row, so it maps without a copy.  What they hold
is made by the query layer (:mod:`graphret.query.prepared`); this module only names them, ties
them to the version they were made from, and turns their rows into arrays.

A prepared fragment's manifest entry records ``of``: :func:`source_of` the version it was made
from (the digests of its items, edges, communities, walk and entries fragments, its archive,
parameters and communities section).  A reader uses the tables only when that still matches
its own version (a writer that carried them over unchanged is caught) and otherwise builds
what it needs in memory, as it does for stores written before format 3.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["PREPARED_TABLES", "source_of", "arrays_table", "table_rows", "stamped"]

PREPARED_TABLES = ("adjacency", "regions")
#: the version's tables the prepared ones are made from
SOURCES = ("items", "edges", "communities", "walk", "entries")

_ARROW = {np.dtype(np.int64): pa.int64(), np.dtype(np.int32): pa.int32(), np.dtype(np.float32): pa.float32(),
          np.dtype(np.float64): pa.float64(), np.dtype(np.uint8): pa.uint8()}
_NUMPY = {arrow: dtype for dtype, arrow in _ARROW.items()}


def source_of(manifest: dict[str, Any]) -> str:
    """A digest of what the prepared tables of ``manifest``'s version are made from."""
    tables = manifest.get("tables", {})
    what = {"tables": {name: [entry.get("sha256") for entry in tables.get(name, []) if isinstance(entry, dict)] for name in SOURCES},
            "archive": manifest.get("archive"), "params": manifest.get("params"), "communities": manifest.get("communities")}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def stamped(entry: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """A prepared fragment's manifest entry, tied to the version ``manifest`` describes."""
    return {**entry, "of": source_of(manifest)}


def arrays_table(rows: list[dict[str, Any]]) -> pa.Table:
    """A table of one row per dict: numpy arrays as one ``large_list`` value each (flattened),
    strings and floats as they are.  Every row has the same keys."""
    columns = {}
    for name, first in rows[0].items():
        values = [row[name] for row in rows]
        if isinstance(first, np.ndarray):
            dtype = first.dtype
            flat = np.concatenate([np.asarray(v, dtype).ravel() for v in values]) if values else np.zeros(0, dtype)
            offsets = np.cumsum([0] + [np.asarray(v).size for v in values]).astype(np.int64)
            columns[name] = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat, type=_ARROW[dtype]))
        else:
            columns[name] = pa.array(values, type=pa.string() if isinstance(first, str) else pa.float64())
    return pa.table(columns)


def table_rows(table: pa.Table, mapping: np.ndarray | None = None) -> list[dict[str, Any]]:
    """The rows of an :func:`arrays_table`: arrays as numpy views of the table's buffers (no
    copy), taken from ``mapping`` (a writable private mapping of the file the table was read
    from: :func:`graphret.store.fragments.read_fragment_private`) where given, so they are
    writable; strings and floats as Python values.  A column of another type raises
    ValueError (the caller says which store is damaged)."""
    out: list[dict[str, Any]] = [{} for _ in range(table.num_rows)]

    def view(buffer: pa.Buffer, dtype: np.dtype, count: int, first: int) -> np.ndarray:
        if mapping is not None:
            start = buffer.address - mapping.ctypes.data + first * dtype.itemsize
            if 0 <= start and start + count * dtype.itemsize <= len(mapping):
                return np.asarray(mapping[start:start + count * dtype.itemsize]).view(dtype)  # (a plain ndarray)
        return np.frombuffer(buffer, dtype, count=count, offset=first * dtype.itemsize)

    for name in table.schema.names:
        column = table.column(name)
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        if pa.types.is_large_list(array.type) and array.type.value_type in _NUMPY and not array.null_count:
            dtype = _NUMPY[array.type.value_type]
            values = array.values
            if values.null_count:
                raise ValueError(f"column {name!r} holds nulls")
            flat = view(values.buffers()[1], dtype, len(values), values.offset) if len(values) else np.zeros(0, dtype)
            offsets = np.frombuffer(array.buffers()[1], np.int64, count=len(array) + 1, offset=array.offset * 8)
            for r in range(len(array)):
                out[r][name] = flat[offsets[r]:offsets[r + 1]]  # (offsets index the child as a whole)
        elif array.type in (pa.string(), pa.float64()):
            for r, value in enumerate(array.to_pylist()):
                out[r][name] = value
        else:
            raise ValueError(f"column {name!r} is {array.type}")
    return out
