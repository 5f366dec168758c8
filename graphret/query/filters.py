"""``where`` metadata filters, applied to the archive before ranking in every mode.

A filter is ``COLUMN OP VALUE``: ``label=CXR``, ``split!=test``, ``anatomy in head,chest``,
``anatomy not in head``, ``age>=40``.  Operators: ``=`` (or ``==``), ``!=``, ``<``, ``<=``,
``>``, ``>=`` (numeric columns only), ``in`` / ``not in`` (comma-separated values).  Several
filters all apply (AND).

Columns are the store's item columns (``id``, ``path``, ``split``, ``label_name``, metadata
such as the demo set's ``anatomy``, ``predicted``, ``added``...).  ``label`` is special: its
values are class names (or class indices); on a multi-label store ``label=X`` keeps the items
positive for X and ``label!=X`` the others.  ``predicted`` takes class names too.  Code and
other list columns cannot be filtered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from graphret.errors import InputError

OPERATORS = ("not in", "in", "==", "!=", "<=", ">=", "=", "<", ">")
_PATTERN = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(not\s+in\b|in\b|==|!=|<=|>=|=|<|>)\s*(.*?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        joined = ",".join(self.values)
        return f"{self.column} {self.op} {joined}" if self.op in ("in", "not in") else f"{self.column}{self.op}{joined}"


def parse_where(text: str) -> Filter:
    """One ``where`` expression as a :class:`Filter` (InputError with the syntax otherwise)."""
    match = _PATTERN.match(str(text))
    if not match or not match.group(3):
        raise InputError(
            f"cannot read the filter {text!r}; write COLUMN=VALUE, COLUMN!=VALUE, COLUMN>=NUMBER or 'COLUMN in A,B'"
        )
    column, op, value = match.group(1), re.sub(r"\s+", " ", match.group(2).lower()), match.group(3)
    op = "=" if op == "==" else op
    if op in ("in", "not in"):
        values = tuple(v.strip() for v in value.split(",") if v.strip())
        if not values:
            raise InputError(f"the filter {text!r} lists no values; write e.g. 'anatomy in head,chest'")
    else:
        values = (value.strip().strip("'\""),)
    return Filter(column, op, values)


def filterable_columns(store) -> list[str]:
    names = []
    for field in store.items.schema:
        if pa.types.is_list(field.type) or pa.types.is_fixed_size_list(field.type) or pa.types.is_large_list(field.type):
            continue
        names.append(field.name)
    return names


def _class_index(store, value: str, filt: Filter) -> int:
    names = store.class_names
    if value in names:
        return names.index(value)
    lowered = [n.lower() for n in names]
    if value.lower() in lowered:
        return lowered.index(value.lower())
    try:
        c = int(value)
    except ValueError:
        c = -2
    if 0 <= c < len(names) or (c == -1 and filt.column == "label"):
        return c
    shown = ", ".join(names) if names else "(the store has no classes)"
    raise InputError(f"no class {value!r} in the filter {filt}; classes: {shown}", param="where")


def _numeric(value: str, filt: Filter) -> float:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return 1.0 if lowered == "true" else 0.0
    try:
        return float(value)
    except ValueError:
        raise InputError(f"column {filt.column!r} is numeric but the filter {filt} compares it with {value!r}; give a number", param="where") from None


def _compare(column: np.ndarray, op: str, targets: list, numeric: bool) -> np.ndarray:
    if op in ("=", "in"):
        return np.isin(column, targets)
    if op in ("!=", "not in"):
        return ~np.isin(column, targets)
    t = targets[0]
    return {"<": column < t, "<=": column <= t, ">": column > t, ">=": column >= t}[op]


def filter_mask(store, filters: list[Filter] | list[str] | None) -> np.ndarray | None:
    """Bool (N,) over store rows: the items every filter keeps (None when no filter)."""
    if not filters:
        return None
    mask = np.ones(len(store), bool)
    columns = filterable_columns(store)
    for filt in filters:
        if isinstance(filt, str):
            filt = parse_where(filt)
        mask &= _one_mask(store, filt, columns)
    return mask


def _one_mask(store, filt: Filter, columns: list[str]) -> np.ndarray:
    name = filt.column
    if name in ("label", "predicted") and (name in columns or name == "label"):
        if filt.op in ("<", "<=", ">", ">="):
            raise InputError(f"the filter {filt}: {name} takes =, != or in with class names", param="where")
        targets = [_class_index(store, v, filt) for v in filt.values]
        if name == "label" and store.task == "multilabel":
            positive = store.labels[:, targets] == 1
            hit = positive.any(axis=1)
            return ~hit if filt.op in ("!=", "not in") else hit
        if name == "label" and store.task != "multiclass":
            raise InputError(f"the filter {filt}: the store has no class labels (task {store.task})", param="where")
        column = store.items.column(name).to_numpy()
        return _compare(column, filt.op, targets, True)
    if name not in columns:
        raise InputError(f"unknown column {name!r} in the filter {filt}; columns: {', '.join(['label'] + [c for c in columns if c != 'label'])}")
    chunked = store.items.column(name)
    kind = chunked.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        column = chunked.to_numpy(zero_copy_only=False)
        if pa.types.is_boolean(kind):
            column = column.astype(np.float64)
        targets = [_numeric(v, filt) for v in filt.values]
        result = _compare(np.asarray(column, np.float64), filt.op, targets, True)
        return result & ~np.isnan(np.asarray(column, np.float64)) if filt.op not in ("!=", "not in") else result
    if filt.op in ("<", "<=", ">", ">="):
        raise InputError(f"column {name!r} holds text; the filter {filt} needs a numeric column (use =, != or in)", param="where")
    column = np.asarray([None if v is None else str(v) for v in chunked.to_pylist()], dtype=object)
    return _compare(column, filt.op, list(filt.values), False)
