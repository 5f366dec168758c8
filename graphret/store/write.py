"""Write a graph store: every file into a temporary folder, then one rename into place."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from graphret.errors import StoreError
from graphret.store.atomic import atomic_write_bytes
from graphret.store.schema import EDGES_SCHEMA, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE


def fixed_size_list(matrix: np.ndarray, value_type: pa.DataType) -> pa.FixedSizeListArray:
    """A 2-D numpy array as an Arrow fixed-size list column (zero-copy where possible)."""
    matrix = np.ascontiguousarray(matrix)
    flat = pa.array(matrix.reshape(-1), type=value_type)
    return pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])


def write_arrow(path: Path, table: pa.Table) -> None:
    """Write ``table`` as one Arrow IPC file (one record batch, uncompressed so it maps)."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks(), max_chunksize=max(table.num_rows, 1))


def edges_table(src: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> pa.Table:
    """The edges table: each undirected edge once, src < dst, positive weight."""
    return pa.table(
        [pa.array(np.asarray(src, np.int64)), pa.array(np.asarray(dst, np.int64)), pa.array(np.asarray(weight, np.float32))],
        schema=EDGES_SCHEMA,
    )


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entries(folder: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """Checksums and sizes of the store's files, for the manifest."""
    return {name: {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size} for name in names}


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically (format name and version first)."""
    ordered = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **manifest}
    atomic_write_bytes(folder / MANIFEST_FILE, (json.dumps(ordered, indent=2, sort_keys=False) + "\n").encode())


def is_store_folder(path: Path) -> bool:
    return (path / MANIFEST_FILE).is_file()


def check_store_target(target: str | Path, *, overwrite: bool = False) -> Path:
    """Refuse, before any work, a target that is a file, a folder holding something other than
    a store, or an existing store without ``overwrite``."""
    target = Path(target)
    if target.exists():
        if not target.is_dir():
            raise StoreError(f"{target} exists and is a file; choose another output folder with -o")
        if any(target.iterdir()) and not is_store_folder(target):
            raise StoreError(f"{target} exists and is not a graphret store; choose another output folder with -o")
        if is_store_folder(target) and not overwrite:
            raise StoreError(f"a store already exists at {target}; pass --overwrite to replace it or choose another -o")
    return target


def write_store_folder(target: str | Path, fill: Callable[[Path], None], *, overwrite: bool = False) -> Path:
    """Create the store at ``target`` by calling ``fill(tmp_folder)`` on a fresh temporary
    folder beside it and renaming that folder into place.  An existing store is replaced only
    with ``overwrite`` and only once the new one is complete; on any error nothing at
    ``target`` changes."""
    target = check_store_target(target, overwrite=overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    except OSError as error:
        raise StoreError(f"cannot create the store folder {target}: {error.strerror}; choose a writable -o") from None
    try:
        fill(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rmdir(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return target
