"""Exports that open in networkx, igraph, Gephi, pandas or any Arrow tool.

* :func:`write_graphml` -- the archive graph as GraphML (networkx's writer): nodes keyed by
  item id with ``row``, ``split``, ``label`` and one integer attribute per partition; edges
  with ``weight``;
* :func:`node_table` / :func:`edge_table` and :func:`write_parquet` -- the same as Arrow tables
  (``nodes.parquet``, ``edges.parquet``), with community columns for every partition (on the
  edge table: both ends' communities and whether the edge stays inside);
* :func:`write_json` / :func:`write_csv` -- summaries.

Every file is written atomically (a temporary sibling renamed into place), so a failed export
never leaves a half-written file; a path that cannot be written is one InputError.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from graphret.atomic import atomic_path
from graphret.errors import InputError

__all__ = ["writable_target", "node_table", "edge_table", "write_graphml", "write_parquet", "write_json", "write_csv", "jsonable"]


@contextlib.contextmanager
def writable_target(path: str | Path) -> Iterator[Path]:
    """``atomic_path`` whose OS errors become one InputError naming the path."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder; give a file path")
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except OSError as error:
        reason = error.strerror or str(error)
        raise InputError(f"cannot write {path} ({reason}); choose a folder you can write to") from None


def ensure_folder(folder: str | Path) -> Path:
    """Create ``folder`` (and parents) or raise one InputError."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"cannot write into {folder}: it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create {folder} ({error.strerror or error}); choose a folder you can write to") from None
    return folder


def jsonable(value: Any) -> Any:
    """numpy / pandas values to plain JSON types (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return [jsonable(r) for r in value.to_dict(orient="records")]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def node_table(store, rows: np.ndarray, partitions: dict, *, degree: np.ndarray | None = None,
               internal: dict[str, np.ndarray] | None = None) -> pa.Table:
    """One row per archive item: ``row``, ``id``, ``path``, ``split``, ``label``,
    ``label_name``, ``degree``, then per partition ``<name>`` (community) and
    ``<name>_internal_degree``."""
    items = store.items
    rows = np.asarray(rows, dtype=np.int64)
    take = pa.array(rows)
    columns: dict[str, pa.Array] = {"row": pa.array(rows, pa.int64())}
    for name in ("id", "path", "split", "label", "label_name"):
        columns[name] = items.column(name).take(take).combine_chunks()
    if degree is not None:
        columns["degree"] = pa.array(np.asarray(degree, np.float64))
    for name, part in partitions.items():
        columns[name] = pa.array(np.asarray(part.membership, np.int32), pa.int32())
        if internal and name in internal:
            columns[f"{name}_internal_degree"] = pa.array(np.asarray(internal[name], np.float64))
    return pa.table(columns)


def edge_table(store, rows: np.ndarray, graph, partitions: dict) -> pa.Table:
    """Each undirected archive edge once: ``src``, ``dst`` (item rows), ``src_id``, ``dst_id``,
    ``weight``, then per partition ``<name>_src``, ``<name>_dst`` and ``<name>_inside``."""
    import scipy.sparse as sp

    upper = sp.triu(graph, k=1).tocoo()
    order = np.lexsort((upper.col, upper.row))
    i, j, w = upper.row[order], upper.col[order], upper.data[order]
    rows = np.asarray(rows, dtype=np.int64)
    ids = store.items.column("id")
    columns: dict[str, pa.Array] = {
        "src": pa.array(rows[i], pa.int64()),
        "dst": pa.array(rows[j], pa.int64()),
        "src_id": ids.take(pa.array(rows[i])).combine_chunks(),
        "dst_id": ids.take(pa.array(rows[j])).combine_chunks(),
        "weight": pa.array(w.astype(np.float32), pa.float32()),
    }
    for name, part in partitions.items():
        m = np.asarray(part.membership, np.int32)
        columns[f"{name}_src"] = pa.array(m[i], pa.int32())
        columns[f"{name}_dst"] = pa.array(m[j], pa.int32())
        columns[f"{name}_inside"] = pa.array(m[i] == m[j], pa.bool_())
    return pa.table(columns)


def write_graphml(path: str | Path, nodes: pa.Table, edges: pa.Table) -> Path:
    """GraphML of the node and edge tables (nodes keyed by ``id``; every other node column an
    attribute, nulls as empty strings; edges carry ``weight``)."""
    import networkx as nx

    G = nx.Graph()
    node_cols = [c for c in nodes.column_names if c not in ("id",)]
    data = {c: nodes.column(c).to_pylist() for c in node_cols}
    ids = nodes.column("id").to_pylist()
    G.add_nodes_from(
        (item_id, {c: ("" if data[c][k] is None else data[c][k]) for c in node_cols}) for k, item_id in enumerate(ids)
    )
    G.add_weighted_edges_from(zip(edges.column("src_id").to_pylist(), edges.column("dst_id").to_pylist(),
                                  (float(x) for x in edges.column("weight").to_numpy())))
    with writable_target(path) as tmp:
        nx.write_graphml(G, str(tmp), encoding="utf-8", prettyprint=False)
    return Path(path)


def write_parquet(path: str | Path, table: pa.Table | pd.DataFrame) -> Path:
    """One table as Parquet (pandas frames converted without their index)."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    with writable_target(path) as tmp:
        pq.write_table(table, str(tmp))
    return Path(path)


def write_json(path: str | Path, value: Any) -> Path:
    """``value`` (dicts, lists, DataFrames, numpy values) as indented JSON."""
    text = json.dumps(jsonable(value), indent=2) + "\n"
    with writable_target(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_csv(path: str | Path, frame: pd.DataFrame, *, index: bool = False) -> Path:
    """A DataFrame as CSV."""
    with writable_target(path) as tmp:
        frame.to_csv(tmp, index=index)
    return Path(path)
