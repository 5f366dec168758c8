"""Write a graph store: every file into a temporary folder, then one rename into place."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from graphret.atomic import atomic_write_bytes
from graphret.errors import StoreError
from graphret.store.schema import (
    COMMUNITIES_FILE,
    DENDROGRAM_FILE,
    EDGES_FILE,
    ENCODER_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    ITEMS_FILE,
    MANIFEST_FILE,
)


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
            raise StoreError(f"{target} exists and is a file; choose another output folder for {{output}}", param="output")
        if any(target.iterdir()) and not is_store_folder(target):
            raise StoreError(f"{target} exists and is not a graphret store; choose another output folder for {{output}}", param="output")
        if is_store_folder(target) and not overwrite:
            raise StoreError(f"a store already exists at {target}; pass {{overwrite=True}} to replace it or choose another {{output}}", param="overwrite")
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
        raise StoreError(f"cannot create the store folder {target}: {error.strerror}; choose a writable {{output}}", param="output") from None
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


@dataclass
class StoreContent:
    """Everything a store version holds: the tables, how to write the encoder file (a function
    of the destination path, or None for a store without an encoder) and the manifest (its
    ``files`` entry is filled in when written)."""

    items: pa.Table
    edges: pa.Table
    communities: pa.Table
    manifest: dict[str, Any]
    dendrogram: pa.Table | None = None
    write_encoder: Callable[[Path], None] | None = None


def write_store(target: str | Path, content: StoreContent, *, overwrite: bool = False) -> Path:
    """Write ``content`` as the store at ``target`` (atomically, see
    :func:`write_store_folder`); the manifest lists every file with its size and checksum."""

    def fill(folder: Path) -> None:
        write_arrow(folder / ITEMS_FILE, content.items)
        write_arrow(folder / EDGES_FILE, content.edges)
        write_arrow(folder / COMMUNITIES_FILE, content.communities)
        names = [ITEMS_FILE, EDGES_FILE, COMMUNITIES_FILE]
        if content.dendrogram is not None:
            write_arrow(folder / DENDROGRAM_FILE, content.dendrogram)
            names.append(DENDROGRAM_FILE)
        if content.write_encoder is not None:
            content.write_encoder(folder / ENCODER_FILE)
            names.append(ENCODER_FILE)
        manifest = dict(content.manifest)
        manifest["files"] = file_entries(folder, names)
        write_manifest(folder, manifest)

    return write_store_folder(target, fill, overwrite=overwrite)
