"""A CSV manifest: one row per image, an image path column and label columns.

Commas separate fields (tabs in a ``.tsv`` file); the first row names the columns; a ``.gz``
file is read through gzip.  :func:`read_label_table` reads the table alone (a labels-only
table such as CheXpert's, with no image files).

Paths are relative to the CSV's folder (or ``CsvOptions.root``) or absolute.  Columns:

* path column: ``CsvOptions.path_column``, else the first of path / filename / file /
  image / image_path / img (any case);
* id column (optional): ``id_column``, else a column named "id" (any case); else the path
  without extension is the id;
* split column (optional): ``split_column``, else a column named "split" (any case), with
  values train / val / test (any case; "valid", "validation" accepted);
* group column (optional): ``group_column``, else a column named Patient ID / patient_id /
  patient / subject / group (any case): the seeded split keeps each group (patient) in one
  split, and ``ImageSet.groups`` records it;
* label columns: ``label_columns``, else chosen automatically from the other columns: two or
  more columns holding only 1 / 0 / -1 / blank -> multi-label over those columns (the other
  columns become metadata, as for CheXpert's Sex, Age, Frontal/Lateral, AP/PA); else a
  single remaining column, or one named label / class / target -> multi-class with class
  names from its values.

Multi-label columns follow CheXpert's convention: 1 positive, 0 negative, -1 uncertain,
blank not mentioned.  The policy maps them into graphret's labels (1, 0, or -1 = masked out
of training losses):

* ``uncertain="ignore"`` (U-Ignore, default) -> -1; ``"ones"`` (U-Ones) -> 1;
  ``"zeros"`` (U-Zeros) -> 0;
* ``blank="zeros"`` (default, unmentioned = negative, as the CheXpert paper's labeller
  reads it) -> 0; ``blank="ignore"`` -> -1.

Rows whose image file does not exist are skipped and counted (``on_corrupt="skip"``) or
raise :class:`~graphret.errors.InputError` (``on_corrupt="error"``); with
``CsvOptions.verify=True`` every image is also decoded once at load time, as for folders.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np

from graphret.data._common import (
    check_on_corrupt,
    existing_file,
    make_unique,
    normalise_split,
    strip_extension,
)
from graphret.data.imageset import ImageSet
from graphret.data.pictures import (
    FileReader,
    corrupt_error,
    is_image_name,
    verify_image,
)
from graphret.data.problems import Problem
from graphret.data.split import assign_splits
from graphret.errors import InputError

if TYPE_CHECKING:
    from graphret.data.medical import MedicalOptions

PATH_COLUMNS = ("path", "filename", "file", "image", "image_path", "img")
CLASS_COLUMNS = ("label", "class", "target", "labels", "diagnosis")
SKIP_MISSING = "missing files"
SKIP_CORRUPT = "corrupt images"


@dataclass(frozen=True)
class CsvOptions:
    """How to read a CSV manifest (every field optional; see the module docstring)."""

    path_column: str | None = None
    label_columns: Sequence[str] | None = None
    split_column: str | None = None
    id_column: str | None = None
    task: Literal["auto", "multiclass", "multilabel"] = "auto"
    uncertain: Literal["ignore", "ones", "zeros"] = "ignore"
    blank: Literal["zeros", "ignore"] = "zeros"
    root: str | Path | None = None  # folder that relative paths start from (default: the CSV's)
    verify: bool = True  # check every image file decodes at load time (on_corrupt decides what a bad one does)
    # The column whose equal values form a group kept inside one split (a patient); None: a
    # column named Patient ID / patient_id / patient / subject / group (any case), if any.
    group_column: str | None = None


_BLANKS = ("", "nan", "na", "n/a", "none", "null")


def _ternary(value: str) -> int | None:
    """"1", "1.0" -> 1; "0" -> 0; "-1" -> -1; blank -> 99 (marker); anything else -> None."""
    v = value.strip().lower()
    if v in _BLANKS:
        return 99
    try:
        f = float(v)
    except ValueError:
        return None
    if f in (1.0, 0.0, -1.0):
        return int(f)
    return None


def _find(columns: list[str], wanted: str | None, candidates: Sequence[str], what: str, csv_path: Path) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise InputError(
                f"{csv_path}: no {what} column {wanted!r}; the columns are {', '.join(columns)} "
                f"(name one of them with {{{what}_column}})",
                param=f"{what}_column",
            )
        return wanted
    lower = {c.strip().lower(): c for c in reversed(columns)}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    return None


def _policy_map(uncertain: str, blank: str) -> dict[int, int]:
    if uncertain not in ("ignore", "ones", "zeros"):
        raise InputError(f"unknown uncertain policy {uncertain!r}; use {{uncertain=ignore}}, ones or zeros", param="uncertain")
    if blank not in ("zeros", "ignore"):
        raise InputError(f"unknown blank policy {blank!r}; use {{blank=zeros}} or ignore", param="blank")
    return {
        1: 1,
        0: 0,
        -1: {"ignore": -1, "ones": 1, "zeros": 0}[uncertain],
        99: {"zeros": 0, "ignore": -1}[blank],
    }


def _metadata_column(values: list[str]) -> np.ndarray:
    uniq, inverse = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    try:
        numbers = np.array([float(v) if v.strip() else np.nan for v in uniq], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=object).astype(str)
    return numbers[inverse]


def _class_order(values: set[str]) -> list[str]:
    try:
        nums = {v: float(v) for v in values}
    except ValueError:
        return sorted(values)
    return sorted(values, key=lambda v: (nums[v], v))


GROUP_COLUMNS = ("patient id", "patient_id", "patientid", "patient", "subject", "subject_id", "group")


@dataclass
class LabelTable:
    """A CSV manifest's table read alone, with or without image files: the columns, the chosen
    label / path / id / split / group columns, the labels of every row, the metadata columns."""

    path: Path
    header: list[str]
    columns: dict[str, list[str]]
    path_column: str | None
    id_column: str | None
    split_column: str | None
    group_column: str | None
    task: str
    class_names: list[str]
    labels: np.ndarray | None
    metadata: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def label_counts(self) -> dict[str, dict[int, int]]:
        """Per label (multi-label: per column) the count of each value 1 / 0 / -1 (multi-class:
        one entry per class name, counting its rows under key 1)."""
        if self.labels is None:
            return {}
        if self.task == "multilabel":
            return {name: {v: int((self.labels[:, j] == v).sum()) for v in (1, 0, -1)} for j, name in enumerate(self.class_names)}
        return {name: {1: int((self.labels == k).sum())} for k, name in enumerate(self.class_names)}

    def splits_of(self, rows: list[int]) -> np.ndarray | None:
        """The split column's values for ``rows`` as train/val/test, or None without one."""
        if self.split_column is None:
            return None
        raw = [self.columns[self.split_column][i] for i in rows]
        norm = [normalise_split(v) if v.strip() else None for v in raw]
        bad = sorted({v for v, n in zip(raw, norm) if n is None})
        if bad:
            raise InputError(f"{self.path}: split column {self.split_column!r} has values {bad[:5]} (use train, val or test)")
        return np.array(norm, dtype=object)

    def groups_of(self, rows: list[int]) -> np.ndarray | None:
        """The group column's values for ``rows``; a blank value is the row's own group."""
        if self.group_column is None:
            return None
        col = self.columns[self.group_column]
        return np.array([col[i].strip() or f"row:{i + 2}" for i in rows], dtype=object)


def _open_text(csv_path: Path):
    """The CSV as text: plain, or gzip-compressed (``.gz``)."""
    if csv_path.suffix.lower() == ".gz":
        import gzip

        return gzip.open(csv_path, "rt", newline="", encoding="utf-8-sig")
    return open(csv_path, newline="", encoding="utf-8-sig")


def _delimiter(csv_path: Path) -> str:
    name = csv_path.name.lower()
    return "\t" if name.endswith((".tsv", ".tsv.gz")) else ","


def read_label_table(csv_path: str | Path, *, options: CsvOptions | None = None, need_path: bool = False) -> LabelTable:
    """Read a CSV manifest's table (``.csv``, ``.tsv``, or either gzipped) without touching any
    image file: labels under the uncertainty policy, metadata, and the path / id / split / group
    columns.  This reads a labels-only table such as CheXpert's ``train.csv`` as it is.
    ``need_path``: an InputError when no path column is found."""
    opts = options or CsvOptions()
    csv_path = existing_file(csv_path, what="CSV file")
    policy = _policy_map(opts.uncertain, opts.blank)
    try:
        with _open_text(csv_path) as f:
            rows = list(csv.reader(f, delimiter=_delimiter(csv_path)))
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as e:
        raise InputError(f"cannot read CSV {csv_path} ({e}); save it as UTF-8 text") from e
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise InputError(f"{csv_path} is empty (it needs a header row and one row per image)")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise InputError(f"{csv_path} has a header but no rows (add one row per image)")
    if len(set(header)) != len(header):
        dup = sorted(k for k, v in Counter(header).items() if v > 1)
        raise InputError(f"{csv_path}: duplicate column names {dup} (rename them)")
    width = len(header)
    for lineno, r in enumerate(body, start=2):
        if len(r) != width:
            raise InputError(f"{csv_path} line {lineno} has {len(r)} fields, the header has {width} (fix the row)")
    columns = {h: [r[j] for r in body] for j, h in enumerate(header)}

    path_col = _find(header, opts.path_column, PATH_COLUMNS, "path", csv_path)
    if path_col is None and need_path:
        raise InputError(
            f"{csv_path} has no image path column; the columns are {', '.join(header)} "
            "(name one path, filename or image, or name it with {path_column})",
            param="path_column",
        )
    id_col = _find(header, opts.id_column, ("id",), "id", csv_path)
    split_col = _find(header, opts.split_column, ("split",), "split", csv_path)
    if opts.group_column is not None and opts.group_column not in header:
        raise InputError(
            f"{csv_path}: no group column {opts.group_column!r}; the columns are {', '.join(header)} "
            "(name one with {group_column})",
            param="group_column",
        )
    group_col = _find(header, opts.group_column, GROUP_COLUMNS, "group", csv_path)
    # a SOPInstanceUID column is a join key (graphret.data.label_join), never a label
    rest = [c for c in header if c not in (path_col, id_col, split_col, group_col)
            and c.strip().lower().replace("_", "").replace(" ", "") != "sopinstanceuid"]

    task, label_cols = _choose_labels(csv_path, header, rest, columns, opts)
    meta_cols = [c for c in rest if c not in label_cols]

    n_rows = len(body)
    class_names: list[str] = []
    labels: np.ndarray | None = None
    if task == "multilabel":
        labels = np.zeros((n_rows, len(label_cols)), np.int8)
        for j, col in enumerate(label_cols):
            uniq, inverse = np.unique(np.asarray(columns[col], dtype=object).astype(str), return_inverse=True)
            mapped = np.zeros(len(uniq), np.int8)
            for u, v in enumerate(uniq.tolist()):
                t = _ternary(v)
                if t is None:
                    i = columns[col].index(v)
                    raise InputError(
                        f"{csv_path}: column {col!r} row {i + 2} holds {v!r}; multi-label columns "
                        "take 1, 0, -1 (uncertain) or blank"
                    )
                mapped[u] = policy[t]
            labels[:, j] = mapped[inverse]
        class_names = list(label_cols)
    elif task == "multiclass":
        values = [v.strip() for v in columns[label_cols[0]]]
        class_names = _class_order({v for v in values if v.lower() not in _BLANKS})
        index = {c: k for k, c in enumerate(class_names)}
        labels = np.array([index.get(v, -1) for v in values], dtype=np.int64)
    metadata = {c: _metadata_column(columns[c]) for c in meta_cols}
    return LabelTable(
        path=csv_path, header=header, columns=columns, path_column=path_col, id_column=id_col,
        split_column=split_col, group_column=group_col, task=task, class_names=class_names,
        labels=labels, metadata=metadata,
    )


def load_csv(
    csv_path: str | Path,
    *,
    options: CsvOptions | None = None,
    seed: int = 0,
    split: bool = True,
    on_corrupt: str = "skip",
    medical: "MedicalOptions | None" = None,
) -> ImageSet:
    """Read a CSV manifest into an :class:`ImageSet` whose images are read lazily.  Rows may
    point at image files, DICOM files (one item per frame) or NIfTI volumes (one item per
    slice), as ``medical`` (:class:`graphret.data.medical.MedicalOptions`) sets."""
    from graphret.data.medical import MedicalOptions, expand_files, item_groups

    opts = options or CsvOptions()
    check_on_corrupt(on_corrupt)
    (medical or MedicalOptions()).checked()
    table = read_label_table(csv_path, options=opts, need_path=True)
    csv_path = table.path
    columns, path_col, id_col = table.columns, table.path_column, table.id_column
    assert path_col is not None
    n_rows = len(table)

    # Resolve and check files.
    base = Path(opts.root).expanduser() if opts.root is not None else csv_path.parent
    skipped: Counter = Counter()
    keep: list[int] = []
    paths: list[str] = []
    for i, raw in enumerate(columns[path_col]):
        p = raw.strip()
        if not p:
            if on_corrupt == "error":
                raise InputError(f"{csv_path} row {i + 2} has an empty {path_col!r} (fill it or drop the row)")
            skipped[SKIP_MISSING] += 1
            continue
        full = Path(p).expanduser()
        if not full.is_absolute():
            full = base / full
        if not full.is_file():
            if on_corrupt == "error":
                raise Problem(SKIP_MISSING, f"image file not found: {full} (row {i + 2} of {csv_path})", "fix the path").error()
            skipped[SKIP_MISSING] += 1
            continue
        if opts.verify and is_image_name(full.name):
            reason = verify_image(full)
            if reason is not None:
                if on_corrupt == "error":
                    raise corrupt_error(full, reason)
                skipped[SKIP_CORRUPT] += 1
                continue
        keep.append(i)
        paths.append(str(full))
    if not keep:
        raise InputError(
            f"none of the {n_rows} images listed in {csv_path} exist under {base} "
            "(paths are read relative to the CSV's folder; write them relative to it, or as absolute paths)"
        )

    expanded = expand_files(paths, medical, on_corrupt=on_corrupt)
    skipped.update(expanded.skipped)
    if len(expanded.source_pos) == 0:
        detail = ", ".join(f"{v} {k}" for k, v in sorted(skipped.items()))
        raise InputError(f"no readable images among the {n_rows} rows of {csv_path} ({detail}); check the files or use another source")
    rows = [keep[k] for k in expanded.source_pos]
    labels = table.labels[np.array(rows)] if table.labels is not None else None

    if id_col is not None:
        base_ids = [columns[id_col][i].strip() for i in keep]
        dup = [k for k, v in Counter(base_ids).items() if v > 1]
        if dup or any(not x for x in base_ids):
            raise InputError(f"{csv_path}: id column {id_col!r} has {'duplicate ids ' + repr(dup[:3]) if dup else 'empty ids'} (ids must be unique)")
    else:
        base_ids = make_unique(_row_id(columns[path_col][i]) for i in keep)
    ids = make_unique(base_ids[k] + sfx for k, sfx in zip(expanded.source_pos, expanded.suffix))

    source_splits = table.splits_of(rows)
    groups = table.groups_of(rows)
    group_by = f"column {table.group_column!r}" if groups is not None else expanded.group_by
    if groups is None:
        groups = item_groups(expanded, ids)
    splits, origin = assign_splits(len(ids), split=split, seed=seed, labels=labels, source_splits=source_splits,
                                   groups=groups, group_by=group_by)

    metadata = {c: v[np.array(rows)] for c, v in table.metadata.items()}
    for name, column in expanded.metadata.items():
        if name in metadata:
            name = f"dicom:{name}"
        metadata[name] = column

    item_paths = [paths[k] for k in expanded.source_pos]
    return ImageSet(
        ids=ids,
        paths=item_paths,
        splits=splits,
        labels=labels,
        class_names=table.class_names,
        task=table.task,  # type: ignore[arg-type]
        source=f"csv:{csv_path}",
        read=expanded.reader if expanded.medical else FileReader(item_paths),
        skipped=dict(sorted(skipped.items())),
        split_origin=origin,
        metadata=metadata,
        groups=groups,
        group_by=group_by if groups is not None else "",
    )


def _row_id(raw_path: str) -> str:
    """A row's id from its path: without the extension (``.nii.gz`` counts as one)."""
    from graphret.data.nifti import is_nifti_path, strip_nifti_suffix

    p = raw_path.strip().replace("\\", "/")
    return strip_nifti_suffix(p) if is_nifti_path(p) else strip_extension(p)


def _choose_labels(
    csv_path: Path, header: list[str], rest: list[str], columns: dict[str, list[str]], opts: CsvOptions
) -> tuple[str, list[str]]:
    """The task and the label columns."""
    if opts.task not in ("auto", "multiclass", "multilabel"):
        raise InputError(f"task must be 'auto', 'multiclass' or 'multilabel', got {opts.task!r}")
    if opts.label_columns is not None:
        cols = list(opts.label_columns)
        missing = [c for c in cols if c not in header]
        if missing:
            raise InputError(f"{csv_path}: no label column {missing[0]!r}; the columns are {', '.join(header)} (fix {{label_columns}})",
                             param="label_columns")
        if not cols:
            return "unlabelled", []
        if opts.task == "multiclass" and len(cols) > 1:
            raise InputError(f"{csv_path}: a multi-class task takes one label column, got {len(cols)}")
        task = opts.task if opts.task != "auto" else ("multilabel" if len(cols) > 1 else "multiclass")
        return task, cols
    if not rest:
        return "unlabelled", []
    binary = [c for c in rest if all(_ternary(v) is not None for v in set(columns[c]))]
    if opts.task == "multilabel" or (opts.task == "auto" and len(binary) >= 2):
        if not binary:
            raise InputError(f"{csv_path}: no column holds only 1/0/-1/blank; name the label columns with {{label_columns}}", param="label_columns")
        return "multilabel", binary
    if len(rest) == 1:
        return "multiclass", rest
    named = [c for c in rest if c.strip().lower() in CLASS_COLUMNS]
    if named:
        return "multiclass", named[:1]
    raise InputError(
        f"{csv_path}: cannot tell the label column among {', '.join(rest)} "
        "(name it with {label_columns})",
        param="label_columns",
    )
