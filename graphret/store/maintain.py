"""Keeping a store in shape: :func:`compact` (merge fragments), :func:`vacuum` (remove old
versions and unreferenced files), :func:`upgrade` (format 1 -> 2), :func:`verify` (check every
file of every version) and :func:`history` (the versions, newest last)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from graphret.errors import GraphretError, StoreError
from graphret.store import fs
from graphret.store.commit import (
    Writer,
    referenced_files,
    remove_litter,
    write_version,
    writer_lock,
)
from graphret.store.fragments import read_fragment, read_table, verify_file
from graphret.store.prepared import PREPARED_TABLES, stamped
from graphret.store.read import Snapshot
from graphret.store.schema import (
    ADDED_COLUMN,
    DATA_DIR,
    LEGACY_FORMAT_VERSION,
    VERSIONED_FORMAT,
    VERSIONS_DIR,
    version_file,
)
from graphret.store.versions import committed_versions, read_manifest, require_store, store_format
from graphret.store.write import Prepare, remove_legacy_files, with_prepared

__all__ = ["compact", "vacuum", "upgrade", "verify", "history", "DEFAULT_GRACE"]

#: seconds a superseded version stays readable (a reader that opened it may still be reading)
DEFAULT_GRACE = 3600.0


def compact(folder: str | Path, *, prepare: Prepare | None = None) -> int:
    """Commit a version whose every table is one fragment (the same rows and manifest); its
    prepared tables, made from the same rows, are tied to it again (:func:`stamped`).  With
    ``prepare`` (:func:`graphret.query.prepared.prepared_tables`), a version without them (a
    store written before format 3) gets them."""

    def change(writer: Writer) -> dict[str, Any]:
        base = Snapshot(writer.folder, version=writer.base_number)
        tables = dict(base.manifest["tables"])
        # the tables a snapshot checks as it reads them; the others (walk, entries) merge as stored
        checked = {"items": lambda: base.items, "edges": lambda: base.edges, "communities": lambda: base.communities,
                   "dendrogram": lambda: base.dendrogram, "thumbnails": lambda: base.thumbnails}
        for name, entries in base.manifest["tables"].items():
            if len(entries) > 1 and name not in PREPARED_TABLES:
                table = checked[name]() if name in checked else read_table(base.path, entries, name)
                tables[name] = [writer.write_table(name, table)]
        manifest = {**{k: v for k, v in base.manifest.items() if k != "tables"}, "tables": tables}
        for name in PREPARED_TABLES:  # (made from the same rows: tied to the new version when they were to the base)
            if name in tables and base.prepared_table(name) is not None:
                tables[name] = [stamped(entry, manifest) for entry in tables[name]]
        if prepare is not None and base.prepared_table("adjacency") is None:
            manifest = with_prepared(writer, manifest, prepare)
        return manifest

    return write_version(folder, change, operation="compact")


def _committed_at(folder: Path, number: int) -> float:
    """When version ``number`` was committed (its manifest file's time)."""
    return (Path(folder) / VERSIONS_DIR / version_file(number)).stat().st_mtime


def vacuum(folder: str | Path, *, keep: int = 1, grace: float = DEFAULT_GRACE, now: float | None = None) -> dict[str, int]:
    """Remove old versions and the files only they list: every version but the newest ``keep``
    and those superseded less than ``grace`` seconds ago (a reader may still be reading them).
    Returns how many versions and files went."""
    folder = Path(folder)
    if keep < 1:
        raise StoreError(f"{{keep}} must be at least 1 (the newest version always stays), got {keep}", param="keep")
    if require_store(folder) != VERSIONED_FORMAT:
        raise StoreError(f"{folder} is a format 1 store; run `graphret upgrade {folder}` first")
    now = time.time() if now is None else now
    with writer_lock(folder):
        litter = remove_litter(folder)
        versions = committed_versions(folder)
        drop = []
        for i, number in enumerate(versions[:-keep] if len(versions) > keep else []):
            superseded = _committed_at(folder, versions[i + 1])
            if now - superseded >= grace:
                drop.append(number)
        for number in drop:  # oldest first: a crash leaves a prefix removed
            fs.remove(folder / VERSIONS_DIR / version_file(number))
        if drop:
            fs.fsync_dir(folder / VERSIONS_DIR)
        keep_files = referenced_files(folder)
        files = 0
        for path in (folder / DATA_DIR).iterdir():
            if path.is_file() and f"{DATA_DIR}/{path.name}" not in keep_files:
                fs.remove(path)
                files += 1
    return {"versions_removed": len(drop), "files_removed": files + litter, "versions_left": len(versions) - len(drop)}


def upgrade(folder: str | Path) -> int:
    """Rewrite a format 1 store (graphret 0.1) as format 2, in place: its tables become the
    fragments of version 1 (items gain the ``added`` column), then its old files go."""
    folder = Path(folder)
    if require_store(folder) != LEGACY_FORMAT_VERSION:
        raise StoreError(f"{folder} is already a format 2 store; nothing to upgrade")
    old = Snapshot(folder)

    def change(writer: Writer) -> dict[str, Any]:
        items = old.items
        if ADDED_COLUMN not in items.schema.names:
            items = items.append_column(pa.field(ADDED_COLUMN, pa.bool_()), pa.array(np.zeros(len(old), bool)))
        else:
            items = items.set_column(items.schema.get_field_index(ADDED_COLUMN), ADDED_COLUMN,
                                     pa.array(items.column(ADDED_COLUMN).to_numpy(zero_copy_only=False).astype(bool)))
        tables = {"items": [writer.write_table("items", items)], "edges": [writer.write_table("edges", old.edges)],
                  "communities": [writer.write_table("communities", old.communities)]}
        if old.dendrogram is not None:
            tables["dendrogram"] = [writer.write_table("dendrogram", old.dendrogram)]
        manifest = {k: v for k, v in old.manifest.items() if k not in ("format", "format_version", "files")}
        manifest["tables"] = tables
        entry = old.encoder_entry
        if entry is not None:
            source = verify_file(folder, entry, "the encoder")
            manifest["encoder"] = {**manifest["encoder"],
                                   "file": writer.write_file("encoder", lambda tmp: tmp.write_bytes(source.read_bytes()), ".pt")}
        manifest["upgraded_from"] = LEGACY_FORMAT_VERSION
        return manifest

    number = write_version(folder, change, operation="upgrade", create=True, replace_legacy=True)
    remove_legacy_files(folder)
    return number


def verify(folder: str | Path, *, version: int | None = None, all_versions: bool = False) -> list[str]:
    """Every problem found, one line each (none: the store is sound): each file of the newest
    version (or ``version``, or every version) against its size and checksum, as Arrow data,
    and the tables against the manifest and each other."""
    folder = Path(folder)
    numbers = committed_versions(folder) if all_versions and store_format(folder) == VERSIONED_FORMAT else [version]
    problems: list[str] = []
    for number in numbers:
        label = f"version {number}" if number is not None else "the newest version"
        try:
            snapshot = Snapshot(folder, version=number)
            label = f"version {snapshot.version}"
            for name, entries in snapshot.tables.items():
                for i, entry in enumerate(entries):
                    try:
                        read_fragment(folder, entry, f"{name} fragment {i}", trust_remembered=False)
                    except GraphretError as error:
                        problems.append(f"{label}: {error}")
            if snapshot.encoder_entry is not None:
                try:
                    verify_file(folder, snapshot.encoder_entry, "the encoder", trust_remembered=False)
                except GraphretError as error:
                    problems.append(f"{label}: {error}")
            snapshot.graph()  # edges within the items
            for method in snapshot.community_methods:  # one row per item, labels in -1..n-1
                try:
                    snapshot.membership(method)
                except GraphretError as error:
                    problems.append(f"{label}: {error}")
            if snapshot.edges.num_rows != snapshot.manifest["counts"].get("edges", snapshot.edges.num_rows):
                problems.append(f"{label}: {snapshot.edges.num_rows} edges, the manifest counts {snapshot.manifest['counts']['edges']}")
        except GraphretError as error:
            problems.append(f"{label}: {error}")
    return problems


def history(folder: str | Path) -> list[dict[str, Any]]:
    """One row per committed version: number, operation, when, items, edges."""
    folder = Path(folder)
    if require_store(folder) == LEGACY_FORMAT_VERSION:
        manifest = read_manifest(folder)
        return [{"version": 1, "operation": "build (format 1)", "committed": manifest.get("created"),
                 "items": manifest["counts"]["items"], "edges": manifest["counts"].get("edges")}]
    rows = []
    for number in committed_versions(folder):
        try:
            manifest = read_manifest(folder, number)
        except StoreError as error:
            rows.append({"version": number, "operation": f"damaged: {error}"})
            continue
        rows.append({"version": number, "operation": manifest.get("operation"),
                     "committed": manifest.get("committed") or datetime.fromtimestamp(_committed_at(folder, number)).isoformat(),
                     "items": manifest["counts"]["items"], "edges": manifest["counts"].get("edges")})
    return rows
