"""Query results as JSON, CSV, Parquet or a text table.

JSON, CSV and Parquet are made from one Arrow table of the results (:func:`result_table`,
one row per (query, result)) whose text columns are taken (``take``) from columns prepared
once per store version (:func:`item_columns`), so writing a whole split's results costs
Arrow's time, not a Python loop's: JSON is assembled from per-row fragments by Arrow's string
kernels, CSV and Parquet by Arrow's writers.  JSON keeps the shape of
:meth:`SearchResult.to_dict` (one query per line); the text table is made from ``to_dict``.
"""

from __future__ import annotations

import io
import json
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from graphret.query.result import SearchResult
from graphret.store.read import Snapshot, label_text

FORMATS = ("table", "json", "csv", "parquet")
#: formats written as bytes that a terminal cannot show
BINARY_FORMATS = ("parquet",)
CSV_COLUMNS = ["query_id", "query_label", "query_path", "rank", "id", "score", "label", "community", "path", "scanned_fraction"]


@dataclass(frozen=True)
class ItemColumns:
    """Per store item: its id, label text and path (for CSV and Parquet) and the same as JSON
    fragments (``"id"``, ``"label"`` or a list, ``"path"`` or null)."""

    id: pa.Array
    label: pa.Array
    path: pa.Array
    id_json: pa.Array
    label_json: pa.Array
    path_json: pa.Array


_COLUMNS: "weakref.WeakKeyDictionary[Snapshot, ItemColumns]" = weakref.WeakKeyDictionary()


def item_columns(store: Snapshot) -> ItemColumns:
    """The store's :class:`ItemColumns`, made once per snapshot (one pass over the items)."""
    columns = _COLUMNS.get(store)
    if columns is None:
        n = len(store)
        labels = [store.label_of(r) for r in range(n)] if store.labels is not None else [None] * n
        ids = store.items.column("id").combine_chunks()
        paths = store.items.column("path").combine_chunks()
        dumps = json.dumps
        columns = ItemColumns(
            id=ids,
            label=pa.array([label_text(label) for label in labels], pa.string()),
            path=paths,
            id_json=pa.array([dumps(i) for i in ids.to_pylist()], pa.string()),
            label_json=pa.array([dumps(label) for label in labels], pa.string()),
            path_json=pa.array([dumps(p) for p in paths.to_pylist()], pa.string()),
        )
        _COLUMNS[store] = columns
    return columns


_COMMUNITY_JSON: "weakref.WeakKeyDictionary[Snapshot, dict[str, pa.Array]]" = weakref.WeakKeyDictionary()


def _community_json(store: Snapshot, method: str | None) -> pa.Array:
    """Each item's community under ``method`` as JSON text (``null`` without a method), made
    once per snapshot and method."""
    if method is None:
        return pa.array(["null"], pa.string()).take(pa.array(np.zeros(len(store), np.int64)))
    made = _COMMUNITY_JSON.setdefault(store, {})
    if method not in made:
        import pyarrow.compute as pc

        made[method] = pc.cast(pa.array(store.membership(method).astype(np.int64)), pa.string())
    return made[method]


def _query_columns(result: SearchResult) -> dict[str, list]:
    queries = result.queries
    return {"id": list(queries.ids), "label": list(queries.labels), "path": list(queries.paths)}


def result_table(result: SearchResult) -> pa.Table:
    """One row per (query, result): query_index, query_id, query_label, query_path, rank, id,
    score, label (text), community, path, scanned_fraction."""
    q, k = result.rows.shape
    flat = pa.array(result.rows.ravel(), pa.int64())
    items = item_columns(result.store)
    communities = result.communities()
    meta = _query_columns(result)
    per_query = np.repeat(np.arange(q), k)
    return pa.table({
        "query_index": pa.array(per_query, pa.int32()),
        "query_id": pa.array(meta["id"], pa.string()).take(per_query),
        "query_label": pa.array([label_text(label) for label in meta["label"]], pa.string()).take(per_query),
        "query_path": pa.array(meta["path"], pa.string()).take(per_query),
        "rank": pa.array(np.tile(np.arange(1, k + 1, dtype=np.int32), q)),
        "id": items.id.take(flat),
        "score": pa.array(result.scores.ravel(), pa.float32()),
        "label": items.label.take(flat),
        "community": pa.nulls(q * k, pa.int32()) if communities is None else pa.array(communities.ravel().astype(np.int32)),
        "path": items.path.take(flat),
        "scanned_fraction": pa.array(np.repeat(result.scanned_fraction, k), pa.float64()),
    })


def _text(values: pa.Array, null: str) -> pa.Array:
    """Numbers as JSON text (nulls as ``null``)."""
    import pyarrow.compute as pc

    return pc.fill_null(pc.cast(values, pa.string()), null)


def _rounded(values: np.ndarray) -> pa.Array:
    """Scores as :meth:`SearchResult.to_dict` rounds them (6 decimals)."""
    return pa.array(np.round(np.asarray(values, np.float64), 6))


def to_json_bytes(result: SearchResult) -> bytes:
    """The :meth:`SearchResult.to_dict` document as JSON, one query per line.

    Each result row becomes its text in one pass of Arrow's element-wise join -- the query's
    head before its first result, ``, `` or the query's tail after each -- from per-item
    fragments prepared once, so the document is the joined column's data buffer as it is."""
    import pyarrow.compute as pc

    q, k = result.rows.shape
    flat = pa.array(result.rows.ravel(), pa.int64())
    items = item_columns(result.store)
    meta = _query_columns(result)
    dumps = json.dumps
    heads = [f'{{"query": {{"id": {dumps(i)}, "label": {dumps(label)}, "path": {dumps(p)}}}, "results": ['
             for i, label, p in zip(meta["id"], meta["label"], meta["path"])]
    extras = [key for key, values in result.details.items() if isinstance(values, list) and len(values) == q]
    scanned = np.round(np.asarray(result.scanned_fraction, np.float64), 6)
    tails = [f'], "scanned_fraction": {dumps(float(scanned[i]))}'
             + "".join(f", {dumps(key)}: {dumps(result.details[key][i])}" for key in extras) + ("},\n" if i < q - 1 else "}\n")
             for i in range(q)]
    rank = np.tile(np.arange(k), q)
    query = np.repeat(np.arange(q), k)
    first = pa.array(heads + [""], pa.string()).take(pa.array(np.where(rank == 0, query, q)))
    after = pa.array(tails + [", "], pa.string()).take(pa.array(np.where(rank == k - 1, query, q)))
    ranks = pa.array([str(r) for r in range(1, k + 1)], pa.string()).take(pa.array(rank))
    rows = pc.binary_join_element_wise(
        first, '{"rank": ', ranks, ', "id": ', items.id_json.take(flat),
        ', "score": ', _text(_rounded(result.scores.ravel()), "null"), ', "label": ', items.label_json.take(flat),
        ', "community": ', _community_json(result.store, result.community_method).take(flat), ', "path": ', items.path_json.take(flat), "}", after, "")
    header = {"mode": result.mode, "k": result.k, "community_method": result.community_method}
    header.update({key: value for key, value in result.details.items() if not isinstance(value, list)})
    offsets = np.frombuffer(rows.buffers()[1], np.int32, count=len(rows) + 1, offset=rows.offset * 4) if len(rows) else [0, 0]
    body = memoryview(rows.buffers()[2])[int(offsets[0]) : int(offsets[-1])] if len(rows) else b""
    return b"".join([(dumps(header)[:-1] + ', "queries": [\n').encode(), body, b"]}\n"])


def to_csv_bytes(result: SearchResult) -> bytes:
    """One row per (query, result), written by Arrow's CSV writer (text quoted)."""
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    table = result_table(result)
    table = table.select(CSV_COLUMNS)
    for name in ("score", "scanned_fraction"):  # 6 decimals, as the JSON has them
        table = table.set_column(table.schema.get_field_index(name), name, pc.round(pc.cast(table.column(name), pa.float64()), 6))
    out = io.BytesIO()
    out.write((",".join(CSV_COLUMNS) + "\n").encode())
    pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return out.getvalue()


def to_parquet_bytes(result: SearchResult) -> bytes:
    """:func:`result_table` as a Parquet file."""
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(result_table(result), out)
    return out.getvalue()


def to_table(payload: dict[str, Any]) -> str:
    """A readable text table per query."""
    lines = []
    for entry in payload["queries"]:
        query = entry["query"]
        who = query["id"] if query["id"] is not None else query["path"]
        extra = ""
        if "chosen_community" in entry:
            extra = f"  community: {entry['chosen_community']}"
        if "predicted_class" in entry:
            extra = f"  predicted class: {entry['predicted_class']}"
        lines.append(
            f"query {who}  label: {label_text(query['label'], empty='-')}  mode: {payload['mode']}{extra}  "
            f"scanned: {100 * entry['scanned_fraction']:.1f}% of the archive"
        )
        rows = [("rank", "id", "score", "label", "community", "path")]
        for hit in entry["results"]:
            community = "" if hit["community"] is None else str(hit["community"])
            rows.append((str(hit["rank"]), hit["id"], f"{hit['score']:.4f}", label_text(hit["label"]), community, hit["path"] or ""))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        for r in rows:
            lines.append("  " + "  ".join(r[c].ljust(widths[c]) for c in range(5)) + "  " + r[5])
        lines.append("")
    return "\n".join(lines)


def render_bytes(result: SearchResult, *, fmt: str = "table") -> bytes:
    """The result as ``fmt`` ("table", "json", "csv" or "parquet"), as bytes."""
    if fmt == "table":
        return to_table(result.to_dict()).encode()
    return {"json": to_json_bytes, "csv": to_csv_bytes, "parquet": to_parquet_bytes}[fmt](result)


def render(result: SearchResult, *, fmt: str = "table") -> str:
    """The result as text: "table", "json" or "csv" (Parquet is binary: :func:`render_bytes`)."""
    if fmt in BINARY_FORMATS:
        raise ValueError(f"{fmt} is binary; use render_bytes")
    return render_bytes(result, fmt=fmt).decode()
