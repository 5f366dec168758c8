"""Query results as JSON, CSV, Parquet or a text table.

JSON, CSV and Parquet are made from Arrow arrays of the results, one row per (query, result),
whose item columns are taken (``take``) from columns made by Arrow's kernels once per store
version (:func:`item_columns`; for a few results, from those of the items shown), so writing
a whole split's results costs Arrow's time, not a Python loop's: JSON is assembled from
per-row fragments by Arrow's string kernels, CSV and Parquet by Arrow's writers.  Arrays are
built from buffers (:mod:`graphret.store.arrays`), so that writing them never imports pandas.
JSON keeps the shape and values of :meth:`SearchResult.to_dict` (one query per line); the
text table is made from ``to_dict``.
"""

from __future__ import annotations

import io
import json
import weakref
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa

from graphret.query.result import SearchResult
from graphret.store.arrays import numeric_array, text_array, text_scalar
from graphret.store.read import Snapshot, column_array, label_text

FORMATS = ("table", "json", "csv", "parquet")
#: formats written as bytes that a terminal cannot show
BINARY_FORMATS = ("parquet",)
CSV_COLUMNS = ["query_id", "query_label", "query_path", "rank", "id", "score", "label", "community", "path", "scanned_fraction"]


#: a string json.dumps writes with escapes (ensure_ascii): one holding a double quote, a backslash or
#: anything outside printable ASCII
_NEEDS_ESCAPE = r'[^\x20\x21\x23-\x5b\x5d-\x7e]'
#: result rows for which the items' columns are made for the whole store once per snapshot,
#: rather than for the rows shown (a query or two must not pay for every item)
WHOLE_STORE = 0.25
#: results per part of a JSON or CSV document (per Parquet row group): each part is made and
#: written before the next, so the memory a document's making takes (and the fresh pages a
#: process touches) stays that of one part whatever the batch, and no part nears Arrow's 2 GiB
#: string limit
PART_RESULTS = 1 << 17


@dataclass(frozen=True)
class ItemColumns:
    """Per item (of the whole store, or of the items a result shows): id, label text and path
    (for CSV and Parquet), and the JSON of a result row around its rank and score:
    ``json_lead`` = ``, "id": ID, "score": `` and ``json_rest`` = ``, "label": L,
    "community": C, "path": P}`` (the community under one method, null without one)."""

    id: pa.Array
    label: pa.Array
    path: pa.Array
    json_lead: pa.Array
    json_rest: pa.Array


_COLUMNS: "weakref.WeakKeyDictionary[Snapshot, dict[str | None, ItemColumns]]" = weakref.WeakKeyDictionary()


def item_columns(store: Snapshot, method: str | None = None, rows: np.ndarray | None = None) -> ItemColumns:
    """:class:`ItemColumns` of the items at ``rows`` (None: every item, made once per snapshot
    and community ``method``), from Arrow's kernels: no Python work per item but one per
    distinct label (and per id or path that JSON must escape)."""
    if rows is None:
        made = _COLUMNS.setdefault(store, {})
        if method not in made:
            made[method] = _item_columns(store, method, np.arange(len(store)))
        return made[method]
    return _item_columns(store, method, np.asarray(rows, np.int64))


def _item_columns(store: Snapshot, method: str | None, rows: np.ndarray) -> ItemColumns:
    import pyarrow.compute as pc

    which = numeric_array(rows)
    ids = store.items.column("id").take(which).combine_chunks()
    paths = store.items.column("path").take(which).combine_chunks()
    label, label_json = _labels(store, rows)
    if method is None:
        community = text_array(["null"]).take(numeric_array(np.zeros(len(rows), np.int64)))
    else:
        community = pc.cast(numeric_array(store.membership(method)[rows]), pa.string())
    join = pc.binary_join_element_wise
    return ItemColumns(
        id=ids, label=label, path=paths,
        json_lead=join(text_scalar(', "id": '), json_strings(ids), text_scalar(', "score": '), text_scalar("")),
        json_rest=join(text_scalar(', "label": '), label_json, text_scalar(', "community": '), community, text_scalar(', "path": '),
                       json_strings(paths), text_scalar("}"), text_scalar("")),
    )


def _labels(store: Snapshot, rows: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """The label text (:func:`label_text`) and JSON of the items at ``rows``: each distinct
    label is read once (:meth:`Snapshot.label_of` of its first item) and taken for the rest."""
    labels = store.labels
    if labels is None or len(rows) == 0:
        first, inverse = np.zeros(min(len(rows), 1), np.int64), np.zeros(len(rows), np.int64)
    else:
        _, first, inverse = np.unique(labels[rows], axis=0, return_index=True, return_inverse=True)
    values = [store.label_of(int(rows[r])) for r in first]
    which = numeric_array(np.asarray(inverse, np.int64).ravel())
    dumps = json.dumps
    return (text_array([label_text(v) for v in values]).take(which), text_array([dumps(v) for v in values]).take(which))


def json_strings(strings: pa.Array) -> pa.Array:
    """Each string as json.dumps writes it (a null as ``null``): quoted by Arrow, and only
    the strings that need escapes written by Python's encoder."""
    import pyarrow.compute as pc

    quoted = pc.binary_join_element_wise(text_scalar('"'), strings, text_scalar('"'), text_scalar(""))
    special = np.flatnonzero(column_array(pc.match_substring_regex(strings, _NEEDS_ESCAPE)))
    if len(special):
        mask = np.zeros(len(strings), np.bool_)
        mask[special] = True
        escaped = text_array([json.dumps(value) for value in strings.take(numeric_array(special)).to_pylist()])
        quoted = pc.replace_with_mask(quoted, numeric_array(mask), escaped)
    return pc.fill_null(quoted, text_scalar("null")) if strings.null_count else quoted


def json_values(values: Sequence[Any]) -> pa.Array:
    """Each value's JSON text as json.dumps writes it: strings and None by
    :func:`json_strings`, integers by ``str``, anything else (lists) by json.dumps."""
    if all(value is None or type(value) is str for value in values):
        return json_strings(text_array(values))
    if all(value is None or type(value) is int for value in values):
        return text_array(["null" if value is None else str(value) for value in values])
    dumps = json.dumps
    return text_array([dumps(value) for value in values])


def _shown(result: SearchResult) -> tuple[ItemColumns, pa.Array]:
    """The item columns a result's rows take from, and each result's index into them: the
    whole store's (prepared once per snapshot) for a large result, else those of the items
    shown."""
    flat = result.rows.ravel()
    if flat.size >= WHOLE_STORE * len(result.store):
        return item_columns(result.store, result.community_method), numeric_array(flat.astype(np.int64))
    shown, where = np.unique(flat, return_inverse=True)
    return item_columns(result.store, result.community_method, shown), numeric_array(np.asarray(where, np.int64).ravel())


def result_table(result: SearchResult) -> pa.Table:
    """One row per (query, result): query_index, query_id, query_label, query_path, rank, id,
    score, label (text), community, path, scanned_fraction."""
    return _table(result, *_shown(result), 0, len(result))


def result_tables(result: SearchResult, per: int) -> Iterator[pa.Table]:
    """:func:`result_table` in parts of ``per`` queries, each made when asked for."""
    items, flat = _shown(result)
    for start in range(0, len(result), per):
        yield _table(result, items, flat, start, min(per, len(result) - start))


def _table(result: SearchResult, items: ItemColumns, flat: pa.Array, start: int, n: int) -> pa.Table:
    """The rows of :func:`result_table` of queries ``start`` .. ``start + n - 1``."""
    k = result.rows.shape[1]
    part = slice(start, start + n)
    communities = result.communities()
    queries = result.queries
    per_query = numeric_array(np.repeat(np.arange(n, dtype=np.int64), k))
    shown = flat.slice(start * k, n * k)
    return pa.table({
        "query_index": numeric_array(np.repeat(np.arange(start, start + n, dtype=np.int32), k)),
        "query_id": text_array(queries.ids[part]).take(per_query),
        "query_label": text_array([label_text(label) for label in queries.labels[part]]).take(per_query),
        "query_path": text_array(queries.paths[part]).take(per_query),
        "rank": numeric_array(np.tile(np.arange(1, k + 1, dtype=np.int32), n)),
        "id": items.id.take(shown),
        "score": numeric_array(result.scores[part].ravel().astype(np.float32)),
        "label": items.label.take(shown),
        "community": pa.nulls(n * k, pa.int32()) if communities is None else numeric_array(communities[part].ravel().astype(np.int32)),
        "path": items.path.take(shown),
        "scanned_fraction": numeric_array(np.repeat(np.asarray(result.scanned_fraction[part], np.float64), k)),
    })


def _numbers(values: np.ndarray) -> pa.Array:
    """Numbers rounded to 6 decimals as :meth:`SearchResult.to_dict` rounds them, as JSON text
    that reads back as the same floats: Arrow's shortest form, a whole number with ``.0``
    (Arrow writes ``1``), a value that is not finite as json.dumps writes it (``NaN``)."""
    import pyarrow.compute as pc

    values = np.round(np.asarray(values, np.float64).ravel(), 6)
    text = pc.cast(numeric_array(values), pa.string())
    whole = values == np.trunc(values)  # (Arrow writes some, such as 1e+15, with an exponent: those stay)
    if whole.any():
        whole[whole] = column_array(pc.match_substring_regex(text.filter(numeric_array(whole)), r"^-?[0-9]+$"))
    if whole.any():
        text = pc.replace_with_mask(text, numeric_array(whole), pc.binary_join_element_wise(
            text.filter(numeric_array(whole)), text_scalar(".0"), text_scalar("")))
    odd = ~np.isfinite(values)
    if odd.any():
        text = pc.replace_with_mask(text, numeric_array(odd), text_array([json.dumps(float(v)) for v in values[odd]]))
    return text


def to_json_parts(result: SearchResult) -> Iterator[bytes | memoryview]:
    """The :meth:`SearchResult.to_dict` document as JSON, one query per line, in parts (the
    head, the results of :data:`PART_RESULTS` at a time, the end) made as a writer asks for
    them.

    Each result row becomes its text in one pass of Arrow's element-wise join -- the query's
    head before its first result, ``, `` or the query's tail after each -- from per-item
    fragments (:class:`ItemColumns`), so a part is the joined column's data buffer as it is."""
    import pyarrow.compute as pc

    q, k = result.rows.shape
    items, flat = _shown(result)
    queries, join = result.queries, pc.binary_join_element_wise
    heads = join(text_scalar('{"query": {"id": '), json_values(queries.ids), text_scalar(', "label": '), json_values(queries.labels),
                 text_scalar(', "path": '), json_values(queries.paths), text_scalar('}, "results": ['), text_scalar(""))
    extras = [key for key, values in result.details.items() if isinstance(values, list) and len(values) == q]
    ends = text_array(["},\n", "}\n"]).take(numeric_array((np.arange(q) == q - 1).astype(np.int64)))
    parts = [text_scalar('], "scanned_fraction": '), _numbers(result.scanned_fraction)]
    for key in extras:
        parts += [text_scalar(f", {json.dumps(key)}: "), json_values(result.details[key])]
    tails = join(*parts, ends, text_scalar(""))
    header = {"mode": result.mode, "k": result.k, "community_method": result.community_method}
    header.update({key: value for key, value in result.details.items() if not isinstance(value, list)})
    yield (json.dumps(header)[:-1] + ', "queries": [\n').encode()
    per = max(1, PART_RESULTS // k)
    rank = np.tile(np.arange(k), min(per, q))
    query = np.repeat(np.arange(min(per, q)), k)
    rank_texts = text_array([f'{{"rank": {r}' for r in range(1, k + 1)])
    for start in range(0, q, per):
        n = min(per, q - start)
        at, of = rank[: n * k], query[: n * k]
        first = pa.concat_arrays([heads.slice(start, n), text_array([""])]).take(numeric_array(np.where(at == 0, of, n)))
        after = pa.concat_arrays([tails.slice(start, n), text_array([", "])]).take(numeric_array(np.where(at == k - 1, of, n)))
        shown = flat.slice(start * k, n * k)
        rows = join(first, rank_texts.take(numeric_array(at)), items.json_lead.take(shown), _numbers(result.scores[start : start + n]),
                    items.json_rest.take(shown), after, text_scalar(""))
        width = np.dtype(np.int64 if rows.type == pa.large_string() else np.int32)
        offsets = np.frombuffer(rows.buffers()[1], width, count=len(rows) + 1, offset=rows.offset * width.itemsize)
        yield memoryview(rows.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
    yield b"]}\n"


def to_csv_parts(result: SearchResult) -> Iterator[bytes]:
    """One row per (query, result), written by Arrow's CSV writer (text quoted), in parts of
    :data:`PART_RESULTS` results made as a writer asks for them."""
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    yield (",".join(CSV_COLUMNS) + "\n").encode()
    for table in result_tables(result, max(1, PART_RESULTS // result.rows.shape[1])):
        table = table.select(CSV_COLUMNS)
        for name in ("score", "scanned_fraction"):  # 6 decimals, as the JSON has them
            table = table.set_column(table.schema.get_field_index(name), name, pc.round(pc.cast(table.column(name), pa.float64()), 6))
        out = io.BytesIO()
        pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        yield out.getvalue()


def to_parquet_bytes(result: SearchResult) -> bytes:
    """:func:`result_table` as a Parquet file, a row group per :data:`PART_RESULTS` results."""
    import pyarrow.parquet as pq

    out = io.BytesIO()
    tables = result_tables(result, max(1, PART_RESULTS // result.rows.shape[1]))
    first = next(tables, None)
    if first is None:  # no queries: the schema of an empty table
        first = _table(result, *_shown(result), 0, 0)
    with pq.ParquetWriter(out, first.schema) as writer:
        writer.write_table(first)
        for table in tables:
            writer.write_table(table)
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


def render_parts(result: SearchResult, *, fmt: str = "table") -> Iterable[bytes | memoryview]:
    """The result as ``fmt`` ("table", "json", "csv" or "parquet"): bytes in parts, to be
    written one after the other (JSON's and CSV's are made as they are asked for; :func:`render_bytes`
    joins them)."""
    if fmt == "json":
        return to_json_parts(result)
    if fmt == "csv":
        return to_csv_parts(result)
    if fmt == "table":
        return [to_table(result.to_dict()).encode()]
    return [to_parquet_bytes(result)]


def render_bytes(result: SearchResult, *, fmt: str = "table") -> bytes:
    """The result as ``fmt`` ("table", "json", "csv" or "parquet"), as bytes."""
    return b"".join(render_parts(result, fmt=fmt))


def render(result: SearchResult, *, fmt: str = "table") -> str:
    """The result as text: "table", "json" or "csv" (Parquet is binary: :func:`render_bytes`)."""
    if fmt in BINARY_FORMATS:
        raise ValueError(f"{fmt} is binary; use render_bytes")
    return render_bytes(result, fmt=fmt).decode()
