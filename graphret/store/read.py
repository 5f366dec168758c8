"""Open a graph store for reading: validate its manifest and schemas, memory-map its Arrow
files.  A :class:`Snapshot` never writes: everything it offers is read from the store's files
(and decoded once, in memory)."""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from graphret.communities.kernels import Quality
from graphret.errors import StoreError, VersionRemoved
from graphret.graph.csr import symmetric_csr
from graphret.store.fragments import read_fragment_private, read_table, verify_file
from graphret.store.prepared import source_of, table_rows
from graphret.store.schema import (
    ADDED_COLUMN,
    BASE_ITEMS_SCHEMA,
    CODE_COLUMN,
    EDGES_SCHEMA,
    ENTRIES_SCHEMA,
    GROUP_COLUMN,
    LEGACY_FILES,
    LEGACY_FORMAT_VERSION,
    WALK_SCHEMA,
    code_column,
    is_code_field,
)
from graphret.store.thumbnails import THUMBNAILS_SCHEMA
from graphret.store.versions import committed_versions, read_manifest

if TYPE_CHECKING:
    import scipy.sparse as sp


#: at most this many ids are looked up without the dict of every id (Snapshot.rows_of_ids)
FEW_IDS = 8


def _check_schema(table: pa.Table, expected: pa.Schema, name: str) -> None:
    for field in expected:
        if field.name not in table.schema.names:
            raise StoreError(f"the {name} table lacks column {field.name!r}; rebuild the store")
        actual = table.schema.field(field.name).type
        if actual != field.type:
            raise StoreError(f"the {name} table's column {field.name!r} is {actual}, expected {field.type}; rebuild the store")


def _legacy_tables(manifest: dict[str, Any]) -> tuple[dict[str, list], dict[str, Any] | None]:
    """A format 1 manifest's files as format 2 table entries (one fragment each)."""
    files = manifest["files"]
    tables = {name: [{"file": file, **files[file]}] for name, file in LEGACY_FILES.items() if file in files}
    if "items.arrow" not in files:
        raise StoreError("the store's manifest does not list items.arrow; the store is damaged: rebuild it")
    encoder = {"file": "encoder.pt", **files["encoder.pt"]} if "encoder.pt" in files else None
    return tables, encoder


class Snapshot:
    """One version of a graph store, opened for reading (state: the manifest and the tables
    read so far).  Every table is read from the files this version lists, each checked against
    its size and checksum and validated as Arrow data before use; a snapshot never writes."""

    def __init__(self, path: str | Path, *, version: int | None = None, manifest: dict[str, Any] | None = None) -> None:
        """``manifest``: a version being written (its fragments written, the manifest not yet
        committed: a writer prepares what it derives from them), instead of reading one."""
        self.path = Path(path)
        self.manifest = read_manifest(self.path, version) if manifest is None else manifest
        self._encoder = None  # loaded on first use (encoder())
        self._values_read: dict[str, int] = {}  # ids / values looked up one by one so far (rows_of_ids, item_text)
        self._encoder_lock = threading.RLock()
        self.format_version = int(self.manifest["format_version"])
        if self.format_version == LEGACY_FORMAT_VERSION:
            self.version = 1
            self.tables, self._encoder_entry = _legacy_tables(self.manifest)
        else:
            self.version = int(self.manifest["version"])
            self.tables = self.manifest["tables"]
            encoder = self.manifest.get("encoder", {}).get("file")
            self._encoder_entry = encoder if isinstance(encoder, dict) else None
        self.items = self._read(self.tables["items"], "items")
        _check_schema(self.items, BASE_ITEMS_SCHEMA, "items")
        if CODE_COLUMN not in self.items.schema.names or not is_code_field(self.items.schema.field(CODE_COLUMN)):
            raise StoreError("the items table has no fixed-size float32 'code' column; rebuild the store")
        expected = self.manifest["counts"]["items"]
        if expected != self.items.num_rows:
            raise StoreError(f"the items table has {self.items.num_rows} rows but the manifest says {expected}; the store is damaged")

    def _read(self, entries: list[Any], what: str) -> pa.Table:
        return self._still_listed(read_table, entries, what)

    def _still_listed(self, read, entries: Any, what: str):
        """``read(folder, entries, what)``; a file that went missing because a vacuum removed
        this version while it was read is said to be that (the store is fine), not damage."""
        try:
            return read(self.path, entries, what)
        except StoreError:
            if self.format_version != LEGACY_FORMAT_VERSION and self.version not in committed_versions(self.path):
                raise VersionRemoved(f"version {self.version} of {self.path} was removed (by a vacuum) while it was being read; "
                                     "run it again to read the newest version, or vacuum with a longer {grace}", param="grace") from None
            raise

    @property
    def read_only(self) -> bool:
        """Format 1 stores are read, not changed (``graphret upgrade`` rewrites them)."""
        return self.format_version == LEGACY_FORMAT_VERSION

    # -- items -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.items.num_rows

    @cached_property
    def ids(self) -> np.ndarray:
        return np.asarray(self.items.column("id").to_pylist(), dtype=object)

    @cached_property
    def row_of_id(self) -> dict[str, int]:
        return dict(zip(self.ids.tolist(), range(len(self))))  # (the last row of a repeated id, as before)

    def rows_of_ids(self, ids: list[str]) -> list[int | None]:
        """The row of each stored id (None: not stored; a repeated id: its last row).  Until
        ``FEW_IDS`` ids have been looked up in a snapshot, each is found by a scan of the id
        column's bytes, so a command that asks for one id does not build a dict of every id;
        later ones (a notebook's loop) and many ids go through :attr:`row_of_id`, built once (a
        server builds it as a version opens)."""
        looked = self._values_read.get("ids", 0) + len(ids)
        if "row_of_id" in self.__dict__ or looked > FEW_IDS:
            return [self.row_of_id.get(i) for i in ids]
        self._values_read["ids"] = looked
        offsets, data = string_buffers(self.items.column("id"))
        return [_last_row_of(offsets, data, str(item_id).encode()) for item_id in ids]

    @cached_property
    def splits(self) -> np.ndarray:
        """Each item's split name (object array), from :attr:`_split_codes`."""
        names, codes = self._split_codes
        return np.asarray(names, dtype=object)[codes] if names else np.zeros(0, dtype=object)

    def item_text(self, column: str, rows: list[int]) -> list[str | None]:
        """The ``id`` or ``path`` of the items at ``rows``: from :attr:`ids` / :attr:`paths` once
        they are decoded, else from the column's values one by one while at most ``FEW_IDS * 8``
        have been read so (then the column is decoded once): a command that shows a query and
        its ten results does not decode every item's id and path, a notebook's loop decodes
        them once."""
        decoded = {"id": "ids", "path": "paths"}[column]
        read = self._values_read.get(column, 0) + len(rows)
        if decoded in self.__dict__ or read > FEW_IDS * 8:
            values = getattr(self, decoded)
            return [values[r] for r in rows]
        self._values_read[column] = read
        array = self.items.column(column)
        return [array[int(r)].as_py() for r in rows]

    @cached_property
    def _split_codes(self) -> tuple[tuple[str, ...], np.ndarray]:
        """The distinct splits and each item's index among them, from the column's bytes (no
        Python string per item)."""
        return string_codes(self.items.column("split"))

    @cached_property
    def split_names(self) -> frozenset[str]:
        """The distinct splits of the items (a query by split name checks it, per call)."""
        return frozenset(self._split_codes[0])

    @cached_property
    def predicted(self) -> np.ndarray | None:
        """int64 (N,) the encoder's predicted class per item (the ``predicted`` column), or None."""
        if "predicted" not in self.items.schema.names:
            return None
        return _read_only(column_array(self.items.column("predicted")).astype(np.int64))

    @cached_property
    def paths(self) -> list[str | None]:
        return self.items.column("path").to_pylist()

    @cached_property
    def groups(self) -> np.ndarray | None:
        """The group (patient, volume) of each item, where the source had groups, else None."""
        if GROUP_COLUMN not in self.items.schema.names:
            return None
        return np.asarray(self.items.column(GROUP_COLUMN).to_pylist(), dtype=object)

    @property
    def class_names(self) -> list[str]:
        return list(self._class_names)

    @cached_property
    def _class_names(self) -> tuple[str, ...]:
        return tuple(self.manifest["source"].get("class_names", []))

    @property
    def task(self) -> str:
        return str(self.manifest["source"].get("task", "unlabelled"))

    @cached_property
    def labels(self) -> np.ndarray | None:
        """int (N,) class indices, int8 (N, C) multi-label matrix, or None."""
        if self.task == "multilabel":
            return self._fixed_list("labels")
        if self.task == "multiclass":
            return column_array(self.items.column("label"))
        return None

    def label_of(self, row: int) -> str | list[str] | None:
        """The label as outputs show it: class name, list of positive labels, or None (format
        it as text with :func:`label_text`)."""
        labels = self.labels
        if labels is None:
            return None
        names = self._class_names  # (read per result shown: no copy of the list per call)
        if labels.ndim == 2:  # multilabel
            return [names[c] for c in np.flatnonzero(labels[row] == 1)]
        c = int(labels[row])
        return names[c] if c >= 0 else None

    def _fixed_list(self, column: str) -> np.ndarray:
        array = self.items.column(column)
        array = array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()  # one chunk: no copy
        width = array.type.list_size
        values = array.values.slice(array.offset * width, len(array) * width)
        return column_array(values).reshape(len(array), width)

    @cached_property
    def spaces(self) -> list[str]:
        """Names of the stored code spaces ("default" first)."""
        names = [f.name for f in self.items.schema if is_code_field(f)]
        return ["default" if n == CODE_COLUMN else n[len(CODE_COLUMN) + 1 :] for n in names]

    @cached_property
    def _codes(self) -> dict[str, np.ndarray]:
        return {}

    def codes(self, space: str = "default") -> np.ndarray:
        """float32 (N, d) unit-norm codes of one space, memory-mapped where possible; read once
        per snapshot (read-only: a query by stored id takes its rows from it)."""
        cached = self._codes.get(space)
        if cached is None:
            if space not in self.spaces:
                raise StoreError(f"the store has no code space {space!r}; choose one of {', '.join(self.spaces)}")
            cached = self._codes[space] = _read_only(self._fixed_list(code_column(space)))
        return cached

    # -- graph and communities -------------------------------------------------------------
    @cached_property
    def edges(self) -> pa.Table:
        table = self._read(self.tables["edges"], "edges")
        _check_schema(table, EDGES_SCHEMA, "edges")
        return table

    def edge_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stored kNN graph's edges ``(src, dst, weight)`` over item rows, each undirected
        edge once."""
        n = len(self)
        src = column_array(self.edges.column("src"))
        dst = column_array(self.edges.column("dst"))
        weight = column_array(self.edges.column("weight"))
        if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
            raise StoreError(f"the edges table refers to rows outside the {n} items; the store is damaged")
        return src, dst, weight

    def graph_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The symmetric weighted kNN graph over item rows as CSR arrays ``(indptr, indices,
        data)`` (:func:`graphret.graph.csr.symmetric_csr`: no scipy needed)."""
        return symmetric_csr(*self.edge_arrays(), len(self))

    def graph(self) -> sp.csr_matrix:
        """The symmetric weighted kNN graph over item rows, as scipy CSR (sorted indices)."""
        import scipy.sparse as sp

        indptr, indices, data = self.graph_arrays()
        return sp.csr_matrix((data, indices, indptr), shape=(len(self), len(self)))

    @cached_property
    def communities(self) -> pa.Table:
        table = self._read(self.tables["communities"], "communities")
        if table.num_columns and table.num_rows != len(self):  # no columns: built without communities
            raise StoreError(f"the communities table has {table.num_rows} rows for {len(self)} items; the store is damaged")
        for field in table.schema:
            if field.type != pa.int32():
                raise StoreError(f"the communities column {field.name!r} is {field.type}, not int32; the store is damaged")
        return table

    @property
    def community_methods(self) -> list[str]:
        return list(self.communities.schema.names)

    @cached_property
    def _memberships(self) -> dict[str, np.ndarray]:
        return {}

    def membership(self, method: str | None = None) -> np.ndarray:
        """int32 (N,) community of each item under ``method`` (default: CNM if stored, else
        the first method); -1 for items outside the clustered archive.  Read once per snapshot
        (read-only)."""
        cached = self._memberships.get(method) if method is not None else None
        if cached is not None:
            return cached
        methods = self.community_methods
        if not methods:
            raise StoreError(f"{self.path} has no communities; rebuild it with communities")
        if method is None:
            method = "cnm" if "cnm" in methods else methods[0]
        if method not in methods:
            raise StoreError(f"the store has no {method!r} communities; choose one of {', '.join(methods)}")
        if method not in self._memberships:
            labels = column_array(self.communities.column(method))
            n = len(self)
            if n and (labels.min() < -1 or labels.max() >= n):  # a label is a community number < n, or -1 for none
                raise StoreError(f"the {method} communities column holds labels from {labels.min()} to {labels.max()}, outside "
                                 f"-1..{n - 1}; the store is damaged: run `graphret versions` and read an earlier version, or rebuild it")
            self._memberships[method] = _read_only(labels)
        return self._memberships[method]

    def default_community_method(self) -> str | None:
        methods = self.community_methods
        return ("cnm" if "cnm" in methods else methods[0]) if methods else None

    @cached_property
    def dendrogram(self) -> pa.Table | None:
        entries = self.tables.get("dendrogram")
        return self._read(entries, "dendrogram") if entries else None

    @cached_property
    def walk_lists(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The stored walk lists as directed edges ``(src, dst)`` (item rows, each item's list
        in order), or None for a store built without them."""
        entries = self.tables.get("walk")
        if not entries:
            return None
        table = self._read(entries, "walk")
        _check_schema(table, WALK_SCHEMA, "walk")
        src, dst = column_array(table.column("src")), column_array(table.column("dst"))
        if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= len(self)):
            raise StoreError(f"the walk table refers to rows outside the {len(self)} items; the store is damaged")
        return src, dst

    @cached_property
    def entry_rows(self) -> np.ndarray | None:
        """The walk's entry points (item rows), or None."""
        entries = self.tables.get("entries")
        if not entries:
            return None
        table = self._read(entries, "entries")
        _check_schema(table, ENTRIES_SCHEMA, "entries")
        rows = column_array(table.column("row"))
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise StoreError(f"the entries table refers to rows outside the {len(self)} items; the store is damaged")
        return rows

    def prepared_table(self, name: str) -> pa.Table | None:
        """The prepared table ``name`` (:mod:`graphret.store.prepared`) when this version lists
        one made from it, read (checked, privately mapped) on first use; else None (build what
        it holds)."""
        return self._prepared_read(name)[0]

    def prepared_rows(self, name: str) -> list[dict[str, Any]] | None:
        """The rows of :meth:`prepared_table` ``name`` as arrays (writable views of the file's
        private mapping: no copy; :func:`~graphret.store.prepared.table_rows`), or None."""
        table, mapping = self._prepared_read(name)
        if table is None:
            return None
        try:
            return table_rows(table, mapping)
        except ValueError as error:
            raise StoreError(f"the prepared {name} table of {self.path} is malformed ({error}); the store is damaged: "
                             "rebuild it") from None

    def _prepared_read(self, name: str) -> tuple[pa.Table | None, np.ndarray | None]:
        cached = self._prepared.get(name)
        if cached is None:
            entries = self.tables.get(name) or []
            current = len(entries) == 1 and isinstance(entries[0], dict) and entries[0].get("of") == source_of(self.manifest)
            read = (lambda folder, listed, what: read_fragment_private(folder, listed[0], what))
            cached = self._prepared[name] = self._still_listed(read, entries, name) if current else (None, None)
        return cached

    @cached_property
    def _prepared(self) -> dict[str, tuple[pa.Table | None, np.ndarray | None]]:
        return {}

    @property
    def has_thumbnails(self) -> bool:
        """True when this version lists a ``thumbnails`` table (stores built before it existed,
        or from codes, have none)."""
        return bool(self.tables.get("thumbnails"))

    @cached_property
    def thumbnails(self) -> pa.Table | None:
        """The ``thumbnails`` table (``row``, ``png``), read on first use; None without one."""
        entries = self.tables.get("thumbnails")
        if not entries:
            return None
        table = self._read(entries, "thumbnails")
        _check_schema(table, THUMBNAILS_SCHEMA, "thumbnails")
        return table

    @cached_property
    def _thumbnail_index(self) -> np.ndarray:
        """Position in the thumbnails table of each item row's thumbnail (-1: none)."""
        index = np.full(len(self), -1, np.int64)
        table = self.thumbnails
        if table is not None and table.num_rows:
            rows = column_array(table.column("row"))
            inside = (rows >= 0) & (rows < len(self))
            index[rows[inside]] = np.flatnonzero(inside)
        return index

    def thumbnail(self, row: int) -> bytes | None:
        """The stored PNG thumbnail of item ``row``, or None (no thumbnails table, or none for
        this item)."""
        if not self.has_thumbnails or not 0 <= int(row) < len(self):
            return None
        position = int(self._thumbnail_index[int(row)])
        if position < 0:
            return None
        return self.thumbnails.column("png")[position].as_py()

    @property
    def encoder_entry(self) -> dict[str, Any] | None:
        """The manifest entry of the encoder file (None for a store built from codes)."""
        return self._encoder_entry

    def encoder(self):
        """The store's fitted encoder (to encode outside images as queries), its file checked
        against the manifest when first loaded, then kept for this version: a server or a
        :class:`~graphret.Store` encoding an upload per query loads (and a model you bring
        re-hashes) it once, not per query.  A model you bring checks its own file again before
        each encoding (:meth:`~graphret.encoders.external.base.ExternalEncoder.encode`)."""
        from graphret.encoders import load_encoder

        name = self.manifest.get("encoder", {}).get("name")
        if name == "none" or self._encoder_entry is None:
            raise StoreError(f"{self.path} has no encoder (it was built from codes); query it with codes or stored ids")
        with self._encoder_lock:
            if self._encoder is None:
                self._encoder = load_encoder(self._still_listed(verify_file, self._encoder_entry, "the encoder"), expect=name)
            return self._encoder

    def encode(self, images):
        """``images`` (an :class:`~graphret.data.imageset.ImageSet`) encoded by the store's
        encoder (:meth:`encoder`), one encoding at a time (the encoder builds its engine on
        first use, and requests share it)."""
        encoder = self.encoder()
        with self._encoder_lock:
            return encoder.encode(images)

    # -- archive ---------------------------------------------------------------------------
    @property
    def default_archive(self) -> list[str]:
        return list(self.manifest.get("archive", ["all"]))

    def split_rows(self, splits: list[str]) -> np.ndarray:
        """Rows of the items in ``splits`` (["all"] = every item)."""
        if "all" in splits:
            return np.arange(len(self))
        present = sorted(self.split_names)
        unknown = [s for s in splits if s not in present]
        if unknown:
            raise StoreError(f"the store has no split {unknown[0]!r}; choose from {', '.join(present + ['all'])}")
        names, codes = self._split_codes
        return np.flatnonzero(np.isin(codes, [i for i, name in enumerate(names) if name in splits]))

    @cached_property
    def added_rows(self) -> np.ndarray:
        """Rows of the items that arrived with ``graphret add`` (the ``added`` item column)."""
        if ADDED_COLUMN not in self.items.schema.names:
            return np.zeros(0, np.int64)
        return np.flatnonzero(column_array(self.items.column(ADDED_COLUMN)))

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



_NUMPY_TYPES = {pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64, pa.uint8(): np.uint8,
                pa.uint16(): np.uint16, pa.uint32(): np.uint32, pa.uint64(): np.uint64, pa.float32(): np.float32,
                pa.float64(): np.float64}


def column_array(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric Arrow column as a numpy array: a read-only view of its buffer (one chunk, no
    nulls: no copy), else converted; a boolean column as bool, nulls False.  Arrow's own
    ``to_numpy`` (and its compute functions) import pandas on first use, half a second that a
    query by id from the command line need not pay."""
    array = column
    if isinstance(column, pa.ChunkedArray):
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if array.type == pa.bool_():
        def bits(buffer):
            unpacked = np.unpackbits(np.frombuffer(buffer, np.uint8), bitorder="little")
            return unpacked[array.offset : array.offset + len(array)].astype(bool)

        validity, values = array.buffers()[:2]
        if len(array) == 0:
            return np.zeros(0, bool)
        return bits(values) & bits(validity) if validity is not None and array.null_count else bits(values)
    dtype = _NUMPY_TYPES.get(array.type)
    if dtype is None or array.null_count:
        return array.to_numpy(zero_copy_only=False)
    if len(array) == 0:
        return np.zeros(0, dtype)
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * np.dtype(dtype).itemsize)


def string_buffers(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A string column's offsets (int64, n + 1, from 0) and UTF-8 bytes (uint8) as numpy views
    of its buffers (a null reads as the empty string)."""
    array = column
    if isinstance(column, pa.ChunkedArray):
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    width = {pa.string(): np.int32, pa.large_string(): np.int64}.get(array.type)
    if width is None:
        raise StoreError(f"expected a string column, got {array.type}; the store is damaged")
    n = len(array)
    if n == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.uint8)
    offsets = np.frombuffer(array.buffers()[1], width, count=n + 1, offset=array.offset * np.dtype(width).itemsize).astype(np.int64)
    data = array.buffers()[2]
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    if array.null_count:  # (graphret's string columns are not nullable) a null reads as ""
        values = [(value or "").encode() for value in array.to_pylist()]
        return np.r_[0, np.cumsum([len(v) for v in values])].astype(np.int64), np.frombuffer(b"".join(values), np.uint8)
    return offsets - offsets[0], data[offsets[0]:]


def string_codes(column: pa.Array | pa.ChunkedArray) -> tuple[tuple[str, ...], np.ndarray]:
    """The distinct values of a string column and each row's index among them, from the
    column's bytes (no Python string per row): each value one 64-bit key when all fit in 8
    bytes (split names do), else its padded bytes."""
    offsets, data = string_buffers(column)
    lengths = np.diff(offsets)
    width = -(-max(int(lengths.max(initial=0)), 1) // 8) * 8  # whole 8-byte words
    at = np.minimum(offsets[:-1, None] + np.arange(width), max(len(data) - 1, 0))
    padded = np.where(np.arange(width) < lengths[:, None], data[at] if len(data) else 0, 0).astype(np.uint8)
    # each value as one key: a 64-bit word when it fits (a split name does), else its bytes
    fixed = np.ascontiguousarray(padded).view(np.uint64 if width == 8 else f"S{width}").ravel()
    ordered = np.sort(fixed)  # (not np.unique: it imports numpy.ma)
    keys = ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered
    names = tuple(bytes(key.tobytes() if width == 8 else key).rstrip(b"\0").decode() for key in keys)
    return names, np.searchsorted(keys, fixed)


def _last_row_of(offsets: np.ndarray, data: np.ndarray, key: bytes, tries: int = 64) -> int | None:
    """The last row of a string column (``offsets``, ``data``: :func:`string_buffers`) whose
    value is ``key``, or None: the bytes searched from the end (memchr speed), a hit counted
    where it starts a row of that length; after ``tries`` hits inside other values, every row
    of that length is compared."""
    raw, end = data.tobytes(), len(data)
    for _ in range(tries if key else 0):
        at = raw.rfind(key, 0, end)
        if at < 0:
            return None
        starts = offsets[:-1]
        rows = np.arange(np.searchsorted(starts, at, "left"), np.searchsorted(starts, at, "right"))  # (empty values share one)
        hit = rows[offsets[rows + 1] - at == len(key)]
        if len(hit):
            return int(hit[-1])
        end = at + len(key) - 1
    lengths = np.diff(offsets)
    same = np.flatnonzero(lengths == len(key))
    if len(key):
        same = same[(data[offsets[same, None] + np.arange(len(key))] == np.frombuffer(key, np.uint8)).all(axis=1)]
    return int(same[-1]) if len(same) else None


def _read_only(array: np.ndarray) -> np.ndarray:
    """``array`` marked read-only: a snapshot's arrays are shared by every query of its version."""
    array.setflags(write=False)
    return array


def open_store(path: str | Path, *, version: int | None = None) -> Snapshot:
    """Open ``version`` (default: the newest) of the store at ``path``."""
    return Snapshot(path, version=version)


def label_text(label: str | list[str] | None, *, empty: str | None = "") -> str | None:
    """A label (as :meth:`Snapshot.label_of` gives it) as text: the class name, the positive
    labels joined by ``|`` (``(none)`` for a multi-label item with none), or ``empty`` when
    the item has no label.  The one label formatter of tables, CSV, montages and analysis."""
    if label is None:
        return empty
    if isinstance(label, (list, tuple)):
        return "|".join(label) if label else "(none)"
    return str(label)
