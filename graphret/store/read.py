"""Open a graph store for reading: validate its manifest and schemas, memory-map its Arrow
files.  A :class:`Snapshot` never writes: everything it offers is read from the store's files
(and decoded once, in memory)."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from graphret.communities.kernels import Quality
from graphret.errors import StoreError
from graphret.store.schema import (
    ADDED_COLUMN,
    BASE_ITEMS_SCHEMA,
    CODE_COLUMN,
    COMMUNITIES_FILE,
    DENDROGRAM_FILE,
    EDGES_FILE,
    EDGES_SCHEMA,
    ENCODER_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    ITEMS_FILE,
    MANIFEST_FILE,
    code_column,
    is_code_field,
)
from graphret.store.write import sha256_file


def read_arrow(path: Path) -> pa.Table:
    """Memory-map one Arrow IPC file; a missing or damaged file is a StoreError."""
    if not path.is_file():
        raise StoreError(f"the store is missing {path.name} ({path}); rebuild it with `graphret build-graph`")
    try:
        source = pa.memory_map(str(path), "r")
        return pa.ipc.open_file(source).read_all()
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StoreError(f"{path} is damaged or truncated ({first}); rebuild the store with `graphret build-graph`") from None


def read_manifest(folder: Path) -> dict[str, Any]:
    """The store's manifest, checked for format name and a version this graphret reads."""
    if not folder.exists():
        raise StoreError(f"no such store: {folder} (build one with `graphret build-graph -o {folder}`)")
    if not folder.is_dir():
        raise StoreError(f"{folder} is a file, not a store folder (give the folder `graphret build-graph -o` wrote)")
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise StoreError(f"{folder} is not a graphret store (no {MANIFEST_FILE}); give a folder written by `graphret build-graph`")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StoreError(f"{path} is not valid JSON ({error}); rebuild the store") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise StoreError(f"{path} is not a graphret store manifest; give a folder written by `graphret build-graph`")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise StoreError(f"{path} has no integer format_version; rebuild the store")
    if version > FORMAT_VERSION:
        raise StoreError(
            f"{folder} has store format version {version}, newer than this graphret reads ({FORMAT_VERSION}); upgrade graphret"
        )
    return manifest


def _check_schema(table: pa.Table, expected: pa.Schema, name: str) -> None:
    for field in expected:
        if field.name not in table.schema.names:
            raise StoreError(f"{name} lacks column {field.name!r}; rebuild the store")
        actual = table.schema.field(field.name).type
        if actual != field.type:
            raise StoreError(f"{name} column {field.name!r} is {actual}, expected {field.type}; rebuild the store")


class Snapshot:
    """A graph store opened for reading (state: the manifest and memory-mapped tables)."""

    def __init__(self, path: str | Path, *, verify: bool = True) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        if verify:
            self.verify()
        self.items = read_arrow(self.path / ITEMS_FILE)
        _check_schema(self.items, BASE_ITEMS_SCHEMA, ITEMS_FILE)
        if CODE_COLUMN not in self.items.schema.names or not is_code_field(self.items.schema.field(CODE_COLUMN)):
            raise StoreError(f"{ITEMS_FILE} has no fixed-size float32 'code' column; rebuild the store")
        expected = self.manifest.get("counts", {}).get("items")
        if expected is not None and expected != self.items.num_rows:
            raise StoreError(f"{ITEMS_FILE} has {self.items.num_rows} rows but the manifest says {expected}; rebuild the store")

    def verify(self) -> None:
        """Compare every file's size and sha256 with the manifest."""
        for name, entry in self.manifest.get("files", {}).items():
            path = self.path / name
            if not path.is_file():
                raise StoreError(f"the store is missing {name} ({path}); rebuild it with `graphret build-graph`")
            if path.stat().st_size != entry.get("bytes"):
                raise StoreError(f"{path} is {path.stat().st_size} bytes, the manifest says {entry.get('bytes')} (truncated?); rebuild the store")
            if sha256_file(path) != entry.get("sha256"):
                raise StoreError(f"{path} does not match its checksum in the manifest (modified or damaged); rebuild the store")

    # -- items -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.items.num_rows

    @cached_property
    def ids(self) -> np.ndarray:
        return np.asarray(self.items.column("id").to_pylist(), dtype=object)

    @cached_property
    def row_of_id(self) -> dict[str, int]:
        return {item_id: row for row, item_id in enumerate(self.ids)}

    @cached_property
    def splits(self) -> np.ndarray:
        return np.asarray(self.items.column("split").to_pylist(), dtype=object)

    @cached_property
    def paths(self) -> list[str | None]:
        return self.items.column("path").to_pylist()

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["source"].get("class_names", []))

    @property
    def task(self) -> str:
        return str(self.manifest["source"].get("task", "unlabelled"))

    @cached_property
    def labels(self) -> np.ndarray | None:
        """int (N,) class indices, int8 (N, C) multi-label matrix, or None."""
        if self.task == "multilabel":
            return self._fixed_list("labels")
        if self.task == "multiclass":
            return self.items.column("label").to_numpy()
        return None

    def label_of(self, row: int) -> str | list[str] | None:
        """The label as outputs show it: class name, list of positive labels, or None (format
        it as text with :func:`label_text`)."""
        labels = self.labels
        if labels is None:
            return None
        if self.task == "multilabel":
            return [self.class_names[c] for c in np.flatnonzero(labels[row] == 1)]
        c = int(labels[row])
        return self.class_names[c] if c >= 0 else None

    def _fixed_list(self, column: str) -> np.ndarray:
        array = self.items.column(column).combine_chunks()
        width = array.type.list_size
        return array.values.to_numpy(zero_copy_only=False).reshape(len(array), width)

    @property
    def spaces(self) -> list[str]:
        """Names of the stored code spaces ("default" first)."""
        names = [f.name for f in self.items.schema if is_code_field(f)]
        return ["default" if n == CODE_COLUMN else n[len(CODE_COLUMN) + 1 :] for n in names]

    def codes(self, space: str = "default") -> np.ndarray:
        """float32 (N, d) unit-norm codes of one space, memory-mapped where possible."""
        if space not in self.spaces:
            raise StoreError(f"the store has no code space {space!r}; choose one of {', '.join(self.spaces)}")
        return self._fixed_list(code_column(space))

    # -- graph and communities -------------------------------------------------------------
    @cached_property
    def edges(self) -> pa.Table:
        table = read_arrow(self.path / EDGES_FILE)
        _check_schema(table, EDGES_SCHEMA, EDGES_FILE)
        return table

    def graph(self) -> sp.csr_matrix:
        """The symmetric weighted kNN graph over item rows, as scipy CSR."""
        n = len(self)
        src = self.edges.column("src").to_numpy()
        dst = self.edges.column("dst").to_numpy()
        weight = self.edges.column("weight").to_numpy()
        if len(src) and (src.min() < 0 or max(src.max(), dst.max()) >= n):
            raise StoreError(f"{EDGES_FILE} refers to rows outside the {n} items; rebuild the store")
        rows = np.concatenate([src, dst])
        cols = np.concatenate([dst, src])
        return sp.csr_matrix((np.concatenate([weight, weight]), (rows, cols)), shape=(n, n), dtype=np.float32)

    @cached_property
    def communities(self) -> pa.Table:
        table = read_arrow(self.path / COMMUNITIES_FILE)
        if table.num_columns and table.num_rows != len(self):  # no columns: built without communities
            raise StoreError(f"{COMMUNITIES_FILE} has {table.num_rows} rows for {len(self)} items; rebuild the store")
        return table

    @property
    def community_methods(self) -> list[str]:
        return list(self.communities.schema.names)

    def membership(self, method: str | None = None) -> np.ndarray:
        """int32 (N,) community of each item under ``method`` (default: CNM if stored, else
        the first method); -1 for items outside the clustered archive."""
        methods = self.community_methods
        if not methods:
            raise StoreError(f"{self.path} has no communities; rebuild it with communities")
        if method is None:
            method = "cnm" if "cnm" in methods else methods[0]
        if method not in methods:
            raise StoreError(f"the store has no {method!r} communities; choose one of {', '.join(methods)}")
        return self.communities.column(method).to_numpy()

    def default_community_method(self) -> str | None:
        methods = self.community_methods
        return ("cnm" if "cnm" in methods else methods[0]) if methods else None

    @cached_property
    def dendrogram(self) -> pa.Table | None:
        path = self.path / DENDROGRAM_FILE
        return read_arrow(path) if path.is_file() else None

    @property
    def encoder_path(self) -> Path:
        return self.path / ENCODER_FILE

    def encoder(self):
        """The store's fitted encoder (to encode outside images as queries)."""
        from graphret.encoders import load_encoder

        name = self.manifest.get("encoder", {}).get("name")
        if name == "none" or not self.encoder_path.is_file():
            raise StoreError(f"{self.path} has no encoder (it was built from codes); query it with codes or stored ids")
        return load_encoder(self.encoder_path, expect=name)

    # -- archive ---------------------------------------------------------------------------
    @property
    def default_archive(self) -> list[str]:
        return list(self.manifest.get("archive", ["all"]))

    def split_rows(self, splits: list[str]) -> np.ndarray:
        """Rows of the items in ``splits`` (["all"] = every item)."""
        if "all" in splits:
            return np.arange(len(self))
        present = sorted(set(self.splits))
        unknown = [s for s in splits if s not in present]
        if unknown:
            raise StoreError(f"the store has no split {unknown[0]!r}; choose from {', '.join(present + ['all'])}")
        return np.flatnonzero(np.isin(self.splits.astype(str), splits))

    @cached_property
    def added_rows(self) -> np.ndarray:
        """Rows of the items that arrived with ``graphret add`` (the ``added`` item column)."""
        if ADDED_COLUMN not in self.items.schema.names:
            return np.zeros(0, np.int64)
        return np.flatnonzero(self.items.column(ADDED_COLUMN).to_numpy(zero_copy_only=False).astype(bool))

    def archive_rows(self, splits: list[str] | None = None) -> np.ndarray:
        """Rows of the archive, int64: ``splits`` when given (["all"] = every item), else the
        store's archive (:func:`graphret.data.split.archive_splits` of its source, train + val
        or everything) plus every item added with ``graphret add``, whatever its split."""
        if splits is not None:
            return np.asarray(self.split_rows(list(splits)), np.int64)
        rows = self.split_rows(self.default_archive)
        if len(self.added_rows):
            rows = np.union1d(rows, self.added_rows)
        return np.asarray(rows, np.int64)

    def quality(self, method: str) -> Quality:
        """The quality function the store's ``method`` communities were found with (Leiden:
        Newman's), at the resolution it used."""
        info = self.manifest.get("communities", {}).get(method, {})
        params = self.manifest.get("params", {})
        name = info.get("quality_function") or (params.get("quality", "newman") if method == "cnm" else "newman")
        return Quality(str(name), float(info.get("resolution", params.get("resolution", 1.0))))

    @property
    def graph_k(self) -> int:
        """The k the store's kNN graph was built with."""
        return int(self.manifest.get("params", {}).get("k", 10))



def open_store(path: str | Path, *, verify: bool = True) -> Snapshot:
    """Open and validate the store at ``path``."""
    return Snapshot(path, verify=verify)


def label_text(label: str | list[str] | None, *, empty: str | None = "") -> str | None:
    """A label (as :meth:`Snapshot.label_of` gives it) as text: the class name, the positive
    labels joined by ``|`` (``(none)`` for a multi-label item with none), or ``empty`` when
    the item has no label.  The one label formatter of tables, CSV, montages and analysis."""
    if label is None:
        return empty
    if isinstance(label, (list, tuple)):
        return "|".join(label) if label else "(none)"
    return str(label)
