"""The items table: one row per image with its ids, paths, splits, labels, metadata and codes.

:func:`items_table` makes it for a build; :func:`new_items_table` makes rows for items added to
an existing store, in that store's schema.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from graphret.data.imageset import ImageSet
from graphret.encoders.base import Encoded
from graphret.errors import InputError
from graphret.store.fragments import fixed_size_list
from graphret.store.read import Snapshot
from graphret.store.schema import (
    ADDED_COLUMN,
    CODE_COLUMN,
    GROUP_COLUMN,
    RESERVED_ITEM_COLUMNS,
    code_column,
    is_code_field,
)

__all__ = ["items_table", "new_items_table"]


def items_table(images: ImageSet, encoded: Encoded) -> pa.Table:
    """One row per item: ids, paths, splits, labels, metadata, codes (and predictions)."""
    n = len(images)
    columns: dict[str, pa.Array] = {
        "id": pa.array(images.ids, pa.string()),
        "path": pa.array(images.paths, pa.string()),
        "split": pa.array([str(s) for s in images.splits], pa.string()),
    }
    if images.task == "multiclass" and images.labels is not None:
        label = np.asarray(images.labels, np.int32)
        names = [images.class_names[c] if c >= 0 else None for c in label]
    else:
        label = np.full(n, -1, np.int32)
        names = [None if images.labels is None else "|".join(images.label_names(i) or []) for i in range(n)]
    columns["label"] = pa.array(label, pa.int32())
    columns["label_name"] = pa.array(names, pa.string())
    if images.task == "multilabel" and images.labels is not None:
        columns["labels"] = fixed_size_list(np.asarray(images.labels, np.int8), pa.int8())
    for name, values in images.metadata.items():
        if name in RESERVED_ITEM_COLUMNS or name.startswith(CODE_COLUMN):
            raise InputError(f"metadata column {name!r} clashes with a store column; rename it")
        columns[name] = pa.array(list(values))
    for space, codes in encoded.spaces.items():
        columns[code_column(space)] = fixed_size_list(np.asarray(codes, np.float32), pa.float32())
    if encoded.predicted is not None:
        columns["predicted"] = pa.array(np.asarray(encoded.predicted, np.int32), pa.int32())
    if encoded.probabilities is not None:
        columns["probabilities"] = fixed_size_list(np.asarray(encoded.probabilities, np.float32), pa.float32())
    if images.groups is not None:
        columns[GROUP_COLUMN] = pa.array([str(g) for g in images.groups], pa.string())
    columns[ADDED_COLUMN] = pa.array(np.zeros(n, bool), pa.bool_())
    return pa.table(columns)


def new_items_table(store: Snapshot, images: ImageSet, encoded: Encoded) -> tuple[pa.Table, list[str]]:
    """New items in the store's item schema (``added`` set), and the names of their metadata
    columns the store does not have (dropped).  Class labels are mapped into the store's
    classes by name; an unknown name becomes -1 (no label)."""
    n = len(images)
    old_schema = store.items.schema
    names = store.class_names
    dropped = sorted(set(images.metadata) - set(old_schema.names))
    columns: dict[str, pa.Array] = {}
    label = np.full(n, -1, np.int32)
    label_name: list[str | None] = [None] * n
    labels_ml = None
    if store.task == "multiclass" and images.task == "multiclass" and images.labels is not None:
        for i, c in enumerate(np.asarray(images.labels)):
            name = images.class_names[c] if c >= 0 else None
            label_name[i] = name
            if name in names:
                label[i] = names.index(name)
    elif store.task == "multilabel":
        labels_ml = np.full((n, len(names)), -1, np.int8)
        if images.task == "multilabel" and images.labels is not None:
            for j, name in enumerate(images.class_names):
                if name in names:
                    labels_ml[:, names.index(name)] = np.asarray(images.labels)[:, j]
            label_name = ["|".join(images.label_names(i) or []) for i in range(n)]
    elif images.labels is not None:
        label_name = [None if images.label_names(i) is None else str(images.label_names(i)) for i in range(n)]
    for field in old_schema:
        name = field.name
        if name == "id":
            columns[name] = pa.array(list(images.ids), pa.string())
        elif name == "path":
            columns[name] = pa.array(list(images.paths), pa.string())
        elif name == "split":
            columns[name] = pa.array([str(s) for s in images.splits], pa.string())
        elif name == "label":
            columns[name] = pa.array(label, pa.int32())
        elif name == "label_name":
            columns[name] = pa.array(label_name, pa.string())
        elif name == "labels" and labels_ml is not None:
            columns[name] = fixed_size_list(labels_ml, pa.int8())
        elif is_code_field(field):
            space = "default" if name == CODE_COLUMN else name[len(CODE_COLUMN) + 1 :]
            if space not in encoded.spaces:
                raise InputError(f"the store's encoder no longer gives code space {space!r}; rebuild the store")
            codes = np.asarray(encoded.spaces[space], np.float32)
            if codes.shape[1] != field.type.list_size:
                raise InputError(f"new codes of space {space!r} have dimension {codes.shape[1]}, the store's {field.type.list_size}; rebuild the store")
            columns[name] = fixed_size_list(codes, pa.float32())
        elif name == "predicted" and encoded.predicted is not None:
            columns[name] = pa.array(np.asarray(encoded.predicted, np.int32), pa.int32())
        elif name == "probabilities" and encoded.probabilities is not None and pa.types.is_fixed_size_list(field.type):
            columns[name] = fixed_size_list(np.asarray(encoded.probabilities, np.float32), pa.float32())
        elif name == ADDED_COLUMN:
            columns[name] = pa.array(np.ones(n, bool), pa.bool_())
        elif name == GROUP_COLUMN and images.groups is not None:
            columns[name] = pa.array([str(g) for g in images.groups], pa.string())
        elif name in images.metadata:
            try:
                columns[name] = pa.array(list(images.metadata[name])).cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise InputError(f"metadata column {name!r} of the new images does not fit the store's type {field.type}") from None
        else:
            if not field.nullable:
                raise InputError(f"the new images lack the store's required column {name!r}")
            columns[name] = pa.nulls(n, field.type)
    return pa.table([columns[field.name] for field in old_schema], schema=old_schema), dropped
