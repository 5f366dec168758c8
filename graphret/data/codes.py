"""Codes a user already has, read from a Parquet or CSV table (:func:`read_code_table`).

The codes are either one list column (Parquet: a list or fixed-size list of floats) or, in a
flat table, numbered columns sharing a prefix (``code_0 .. code_127``, ``emb_0 ..``).  Other
columns: ``id`` (or ``id_column``), ``split`` (or ``split_column``), labels (``label_columns``:
one column of class names, or several 0/1 columns for multi-label; default: a ``label``
column when there is one), and every other scalar column as metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from graphret.errors import InputError

__all__ = ["CodeTable", "read_code_table"]

_NUMBERED = re.compile(r"^(.*?)(\d+)$")


@dataclass
class CodeTable:
    """Codes (n, d) and what describes each row."""

    codes: np.ndarray
    ids: list[str] | None
    splits: list[str] | None
    labels: Any
    class_names: list[str] | None
    metadata: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""


def _read(path: Path) -> pa.Table:
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        import pyarrow.csv as pacsv

        return pacsv.read_csv(path)
    except (pa.ArrowInvalid, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"cannot read the code table {path} ({first}); give a Parquet or CSV file") from None


def _code_columns(table: pa.Table, code_column: str | None) -> tuple[np.ndarray, list[str]]:
    """(codes, the column names they came from)."""
    names = table.column_names
    if code_column is not None and code_column in names:
        column = table.column(code_column).combine_chunks()
        if not (pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type)):
            raise InputError(f"column {code_column!r} is not a list of numbers; give the codes' column as {{code_column}}", param="code_column")
        return _list_codes(column, code_column), [code_column]
    lists = [n for n in names if pa.types.is_list(table.schema.field(n).type) or pa.types.is_fixed_size_list(table.schema.field(n).type)]
    if code_column is None and len(lists) == 1:
        return _list_codes(table.column(lists[0]).combine_chunks(), lists[0]), lists
    groups: dict[str, list[tuple[int, str]]] = {}
    for name in names:
        match = _NUMBERED.match(name)
        kind = table.schema.field(name).type
        if match and (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            groups.setdefault(match.group(1), []).append((int(match.group(2)), name))
    if code_column is not None:
        groups = {code_column: groups.get(code_column, [])}
    prefix, members = max(groups.items(), key=lambda kv: len(kv[1]), default=("", []))
    if len(members) < 2:
        raise InputError("no codes found: give one list column or numbered columns (code_0, code_1, ...), "
                         "and name them with {code_column} when there are several", param="code_column")
    members.sort()
    columns = [name for _, name in members]
    codes = np.column_stack([table.column(c).to_numpy(zero_copy_only=False) for c in columns]).astype(np.float32)
    return codes, columns


def _list_codes(column: pa.Array, name: str) -> np.ndarray:
    lengths = {len(v) if v is not None else -1 for v in column.to_pylist()[:1000]}
    if -1 in lengths or len(lengths) != 1:
        raise InputError(f"the codes in column {name!r} are missing or of different lengths")
    return np.asarray(column.to_pylist(), np.float32)


def read_code_table(path: str | Path, *, code_column: str | None = None, id_column: str | None = None,
                    split_column: str | None = None, label_columns: Sequence[str] | None = None) -> CodeTable:
    """The codes and the columns that describe them (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such code table: {path}")
    table = _read(path)
    codes, used = _code_columns(table, code_column)
    names = table.column_names

    def pick(given: str | None, default: str, what: str) -> str | None:
        if given is not None and given not in names:
            raise InputError(f"the code table has no column {given!r} for the {what}; columns: {', '.join(names)}")
        return given or (default if default in names else None)

    id_name = pick(id_column, "id", "ids")
    split_name = pick(split_column, "split", "splits")
    if label_columns is not None:
        missing = [c for c in label_columns if c not in names]
        if missing:
            raise InputError(f"the code table has no label column {missing[0]!r}; columns: {', '.join(names)}", param="label_columns")
        label_names = list(label_columns)
    else:
        label_names = ["label"] if "label" in names else []
    labels, class_names = None, None
    if len(label_names) == 1:
        labels = np.asarray([None if v is None else str(v) for v in table.column(label_names[0]).to_pylist()], dtype=object)
    elif label_names:
        labels = np.column_stack([table.column(c).to_numpy(zero_copy_only=False) for c in label_names]).astype(np.int8)
        class_names = label_names
    taken = set(used) | {id_name, split_name, *label_names}
    metadata = {}
    for name in names:
        kind = table.schema.field(name).type
        if name in taken or not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_string(kind)
                                 or pa.types.is_boolean(kind) or pa.types.is_large_string(kind)):
            continue
        metadata[name] = np.asarray(table.column(name).to_pylist(), dtype=object if pa.types.is_string(kind) else None)
    return CodeTable(
        codes=codes,
        ids=None if id_name is None else [str(v) for v in table.column(id_name).to_pylist()],
        splits=None if split_name is None else [str(v) for v in table.column(split_name).to_pylist()],
        labels=labels,
        class_names=class_names,
        metadata=metadata,
        source=f"codes:{path}",
    )
