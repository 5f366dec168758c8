"""Fragment files: immutable Arrow IPC files (or the encoder file) that a version lists with
their row count, size and SHA-256, written once and checked on every read.

A read checks the size and the checksum against the manifest (it cannot be switched off: a
manifest entry without them is refused), memory-maps the file and validates the Arrow data in
full, so a damaged or hostile file is one clear :class:`~graphret.errors.StoreError`, never a
crash.  A file that passed these checks and has not changed since (same device, inode, size,
mtime and ctime: :mod:`graphret.store.verified`) is not hashed nor validated in full again by
later processes; ``graphret verify`` always hashes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from graphret.errors import StoreError
from graphret.store import fs, verified
from graphret.store.schema import DATA_DIR

__all__ = ["fixed_size_list", "write_arrow", "sha256_file", "write_fragment", "add_file", "check_entry", "read_fragment",
           "read_table"]


def fixed_size_list(matrix: np.ndarray, value_type: pa.DataType) -> pa.FixedSizeListArray:
    """A 2-D numpy array as an Arrow fixed-size list column (zero-copy where possible)."""
    matrix = np.ascontiguousarray(matrix)
    flat = pa.array(matrix.reshape(-1), type=value_type)
    return pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])


def write_arrow(path: Path, table: pa.Table) -> None:
    """Write ``table`` as one Arrow IPC file (one record batch, uncompressed so it maps)."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks(), max_chunksize=max(table.num_rows, 1))


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """The file's SHA-256 (hex), read in blocks: into one reused buffer where Python offers it
    (``hashlib.file_digest``, 3.11: 20% faster than a new bytes object per block)."""
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):
            return hashlib.file_digest(f, "sha256").hexdigest()
        digest = hashlib.sha256()
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
        return digest.hexdigest()


def _entry(folder: Path, name: str, rows: int | None) -> dict[str, Any]:
    path = folder / name
    entry: dict[str, Any] = {"file": name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
    if rows is not None:
        entry["rows"] = int(rows)
    return entry


def write_fragment(folder: Path, table_name: str, table: pa.Table) -> dict[str, Any]:
    """Write ``table`` as a new fragment of ``table_name`` in the store at ``folder``; returns
    its manifest entry (``file`` relative to the store, ``rows``, ``bytes``, ``sha256``)."""
    name = f"{DATA_DIR}/{fs.unique_name(table_name, '.arrow')}"
    fs.write_durably(folder / name, lambda tmp: write_arrow(tmp, table))
    return _entry(folder, name, table.num_rows)


def add_file(folder: Path, kind: str, write, suffix: str) -> dict[str, Any]:
    """Write a new non-Arrow fragment (the encoder) with ``write(path)``; its manifest entry."""
    name = f"{DATA_DIR}/{fs.unique_name(kind, suffix)}"
    fs.write_durably(folder / name, write)
    return _entry(folder, name, None)


def check_entry(entry: Any, what: str) -> tuple[str, int, str]:
    """(file, bytes, sha256) of a manifest entry, which must have all three."""
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not isinstance(entry.get("bytes"), int) \
            or not isinstance(entry.get("sha256"), str) or len(entry["sha256"]) != 64:
        raise StoreError(f"the manifest's entry for {what} lacks its file, size or checksum; the store is damaged: "
                         "open an earlier version or rebuild it")
    name = entry["file"]
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise StoreError(f"the manifest names a file outside the store ({name!r}); the store is damaged")
    return name, entry["bytes"], entry["sha256"]


def verify_file(folder: Path, entry: Any, what: str, *, trust_remembered: bool = True) -> Path:
    """The fragment's path, after checking that it exists with the listed size and checksum
    (a check of this very file remembered by an earlier process counts, unless
    ``trust_remembered`` is False: :mod:`graphret.store.verified`)."""
    path, fresh = _verified(folder, entry, what, trust_remembered)
    if fresh is not None:
        verified.remember(*fresh)
    return path


def _verified(folder: Path, entry: Any, what: str, trust_remembered: bool
              ) -> tuple[Path, tuple[verified.Stamp, verified.Stamp | None, int] | None]:
    """The fragment's path once its size and checksum are known to match; with what to
    remember once every check passed (None: the checksum was remembered, not computed)."""
    name, size, digest = check_entry(entry, what)
    path = folder / name
    began = verified.now_ns()
    before = verified.stamp(path, digest) if path.is_file() else None
    if before is None:
        raise StoreError(f"the store is missing {name} ({what}); it was removed or the store is damaged: "
                         "open another version or rebuild the store")
    if before.size != size:
        raise StoreError(f"{path} is {before.size} bytes, the manifest says {size} (truncated?); rebuild the store")
    if trust_remembered and verified.remembered(before):
        return path, None
    if sha256_file(path) != digest:
        raise StoreError(f"{path} does not match its checksum in the manifest (modified or damaged); rebuild the store")
    return path, (before, verified.stamp(path, digest), began)


def read_fragment(folder: Path, entry: Any, what: str, *, trust_remembered: bool = True) -> pa.Table:
    """One verified fragment, memory-mapped and validated: in full when its checksum was
    computed now (a remembered check was made after a full validation passed)."""
    return _read_fragment(folder, entry, what, trust_remembered, private=False)[0]


def read_fragment_private(folder: Path, entry: Any, what: str) -> tuple[pa.Table, np.ndarray]:
    """:func:`read_fragment` from a private, writable mapping of the file (returned too: the
    table's buffers lie inside it), so that numpy views of its columns are writable arrays
    like any other (numba compiles read-only arrays as another type); a write would never
    reach the file, and the pages stay shared with every other reader until written."""
    table, mapping = _read_fragment(folder, entry, what, True, private=True)
    return table, mapping


def _read_fragment(folder: Path, entry: Any, what: str, trust_remembered: bool, *, private: bool):
    path, fresh = _verified(folder, entry, what, trust_remembered)
    mapping = None
    try:
        if private:
            mapping = np.memmap(path, np.uint8, mode="c")
            table = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(mapping))).read_all()
        else:
            table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
        table.validate(full=fresh is not None)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StoreError(f"{path} is not valid Arrow data ({first}); rebuild the store") from None
    rows = entry.get("rows")
    if rows is not None and rows != table.num_rows:
        raise StoreError(f"{path} has {table.num_rows} rows, the manifest says {rows}; the store is damaged")
    if fresh is not None:
        verified.remember(*fresh)
    return table, mapping


def read_table(folder: Path, entries: list[Any], what: str) -> pa.Table:
    """The table made of ``entries``' fragments in order (zero-copy for a single fragment)."""
    if not isinstance(entries, list) or not entries:
        raise StoreError(f"the manifest lists no fragments for the {what} table; the store is damaged")
    tables = [read_fragment(folder, entry, f"{what} fragment {i}") for i, entry in enumerate(entries)]
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise StoreError(f"the {what} fragments do not share one schema ({error}); the store is damaged") from None
