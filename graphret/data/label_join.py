"""Labels for a folder of files from a separate CSV table, joined on path or SOPInstanceUID.

A plain folder of DICOM files (or images) has no class folders; its labels live in a table.
:func:`join_labels` reads the table with the CSV manifest's rules
(:func:`graphret.data.csv_manifest.read_label_table`) and gives each item the labels of its row:

* on ``SOPInstanceUID`` when the table has a column of that name (any case) and the items
  carry the DICOM tag (every frame of a file shares its instance's row);
* else on the path column: a row's path, relative to the table's folder (or
  ``CsvOptions.root``) or absolute, names the item's file.

Items with no row are dropped and counted in ``ImageSet.skipped``; rows with no item are
ignored.  The table's split column, when it has one, gives the splits; else the seeded split
runs over the joined items, by the table's group column, else by the items' own groups.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from graphret.data.csv_manifest import CsvOptions, read_label_table
from graphret.data.imageset import ImageSet
from graphret.data.split import assign_splits
from graphret.errors import InputError

SKIP_NOT_IN_TABLE = "items not in the label table"


def _sop_column(header: list[str]) -> str | None:
    for name in header:
        if name.strip().lower() in ("sopinstanceuid", "sop_instance_uid", "sop instance uid"):
            return name
    return None


def join_labels(images: ImageSet, labels_csv: str | Path, *, options: CsvOptions | None = None,
                seed: int = 0, split: bool = True) -> ImageSet:
    """``images`` with labels, splits and groups from the table ``labels_csv`` (module docstring)."""
    opts = options or CsvOptions()
    table = read_label_table(labels_csv, options=opts)
    if table.labels is None:
        raise InputError(f"{table.path} has no label columns to join; name them with {{label_columns}}", param="label_columns")
    sop_col = _sop_column(table.header)
    if sop_col is not None and "SOPInstanceUID" in images.metadata:
        key_of_row = {v.strip(): i for i, v in enumerate(table.columns[sop_col]) if v.strip()}
        item_keys = [str(v) for v in images.metadata["SOPInstanceUID"]]
        how = f"{sop_col} = SOPInstanceUID"
    elif table.path_column is not None:
        base = Path(opts.root).expanduser() if opts.root is not None else table.path.parent
        key_of_row = {}
        for i, raw in enumerate(table.columns[table.path_column]):
            p = Path(raw.strip()).expanduser()
            if raw.strip():
                key_of_row[os.path.normpath(str(p if p.is_absolute() else base / p))] = i
        item_keys = [os.path.normpath(p) for p in images.paths]
        how = f"column {table.path_column!r} = file path"
    else:
        raise InputError(
            f"{table.path} has neither a path column nor a SOPInstanceUID column to join on; "
            f"the columns are {', '.join(table.header)}"
        )
    keep = [k for k, key in enumerate(item_keys) if key in key_of_row]
    if not keep:
        raise InputError(
            f"no item of {images.source} matches a row of {table.path} (joined on {how}); "
            "write the table's paths relative to its folder, or as absolute paths"
        )
    rows = [key_of_row[item_keys[k]] for k in keep]
    idx = np.array(keep)
    labels = table.labels[np.array(rows)]
    skipped = Counter(images.skipped)
    if len(keep) < len(images):
        skipped[SKIP_NOT_IN_TABLE] += len(images) - len(keep)
    groups = table.groups_of(rows)
    group_by = f"column {table.group_column!r}" if groups is not None else images.group_by
    if groups is None and images.groups is not None:
        groups = np.asarray(images.groups)[idx]
    splits, origin = assign_splits(len(keep), split=split, seed=seed, labels=labels,
                                   source_splits=table.splits_of(rows), groups=groups, group_by=group_by)
    metadata = {name: np.asarray(col)[idx] for name, col in images.metadata.items()}
    for name, col in table.metadata.items():
        metadata[name if name not in metadata else f"table:{name}"] = col[np.array(rows)]
    reader = images.read
    if reader is not None and len(keep) < len(images):
        reader = _Subset(reader, keep)
    return replace(
        images,
        ids=[images.ids[k] for k in keep],
        paths=[images.paths[k] for k in keep],
        splits=splits,
        labels=labels,
        class_names=list(table.class_names),
        task=table.task,  # type: ignore[arg-type]
        images=None if images.images is None else images.images[idx],
        read=None if images.images is not None else reader,
        skipped=dict(sorted(skipped.items())),
        split_origin=origin,
        metadata=metadata,
        groups=groups,
        group_by=group_by if groups is not None else "",
        source=f"{images.source} + labels:{table.path}",
    )


class _Subset:
    """A reader over some rows of another reader (picklable)."""

    def __init__(self, reader, rows: list[int]) -> None:
        self.reader = reader
        self.rows = rows

    def __call__(self, i: int) -> np.ndarray:
        return self.reader(self.rows[i])
