"""Tables and item rows as JSON-able records."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from graphret.serve.errors import NotFound
from graphret.serve.holder import View
from graphret.store.read import Snapshot
from graphret.store.schema import ADDED_COLUMN, GROUP_COLUMN, is_code_field

__all__ = ["records", "plain_dict", "row_of", "item_summary", "item_detail", "METADATA_SKIP"]

#: item columns shown as their own fields of an item, not among its metadata
METADATA_SKIP = {"id", "path", "split", "label", "label_name", "labels", "predicted", "probabilities", ADDED_COLUMN, GROUP_COLUMN}


def records(frame) -> list[dict[str, Any]]:
    """A pandas DataFrame as records, with numpy values made plain and NaN as null."""
    return json.loads(frame.to_json(orient="records", double_precision=6))


def plain_dict(values: dict[str, Any]) -> dict[str, Any]:
    """A dict of numpy and pandas scalars as plain JSON values (NaN as null)."""
    return {str(name): _plain(value) for name, value in values.items()}


def row_of(snapshot: Snapshot, item_id: str) -> int:
    """The store row of ``item_id`` (404 when the store has no such item)."""
    row = snapshot.row_of_id.get(item_id)
    if row is None:
        examples = ", ".join(map(str, snapshot.ids[:3]))
        raise NotFound(f"no item {item_id!r} in this store (version {snapshot.version}); ids look like {examples}", param="id")
    return int(row)


def _communities(snapshot: Snapshot, row: int) -> dict[str, int]:
    return {method: int(snapshot.membership(method)[row]) for method in snapshot.community_methods}


def item_summary(snapshot: Snapshot, row: int) -> dict[str, Any]:
    return {"id": str(snapshot.ids[row]), "row": int(row), "label": snapshot.label_of(int(row)),
            "split": str(snapshot.splits[row]), "communities": _communities(snapshot, row)}


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def item_detail(view: View, row: int) -> dict[str, Any]:
    snapshot = view.snapshot
    table = snapshot.items
    schema = table.schema
    values = table.slice(row, 1).select([f.name for f in schema if not is_code_field(f) and not pa.types.is_fixed_size_list(f.type)])
    fields = values.to_pylist()[0]
    predicted = None
    if "predicted" in schema.names and fields.get("predicted") is not None:
        c = int(fields["predicted"])
        predicted = snapshot.class_names[c] if 0 <= c < len(snapshot.class_names) else str(c)
    return {
        **item_summary(snapshot, row),
        "path": snapshot.paths[row],
        "added": bool(fields.get(ADDED_COLUMN) or False),
        "group": fields.get(GROUP_COLUMN),
        "predicted": predicted,
        "metadata": {name: _plain(value) for name, value in fields.items() if name not in METADATA_SKIP},
        "has_thumbnail": snapshot.thumbnail(row) is not None,
        "version": view.version,
    }
