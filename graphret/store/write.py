"""Create a store, or add to one: each a new committed version (see :mod:`graphret.store.commit`).

* :func:`write_store` -- a build: a new version whose fragments are all new (a new store, or
  ``overwrite`` of an existing one: its old versions stay readable until vacuumed);
* :func:`append_version` -- an add: new fragments for the new items, their edges and their
  community assignments only, and the manifest; the rest of the version is the base version's
  fragments, listed again, not rewritten.

Both take ``prepare``: a function of the version being written (a :class:`Snapshot` of its
fragments, before the commit) that returns its prepared tables (:mod:`graphret.store.prepared`,
made by the query layer), written and committed with the rest; without it a version has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa

from graphret.errors import StoreError
from graphret.store import fs
from graphret.store.commit import Writer, write_version
from graphret.store.fragments import fixed_size_list, sha256_file, write_arrow
from graphret.store.prepared import PREPARED_TABLES, stamped
from graphret.store.read import Snapshot
from graphret.store.schema import (
    FORMAT_VERSION,
    LEGACY_FILES,
    LEGACY_FORMAT_VERSION,
    MANIFEST_FILE,
    VERSIONS_DIR,
)
from graphret.store.versions import store_format

__all__ = ["Prepare", "with_prepared", "StoreContent", "write_store", "append_version", "check_store_target", "fixed_size_list", "write_arrow",
           "sha256_file", "Appended"]


def check_store_target(target: str | Path, *, overwrite: bool = False) -> Path:
    """Refuse, before any work, a target that is a file, a folder holding something other than
    a store, or an existing store without ``overwrite``.  A folder left by an interrupted build
    (graphret's folders, no committed version) is taken over."""
    target = Path(target)
    if target.exists():
        if not target.is_dir():
            raise StoreError(f"{target} exists and is a file; choose another output folder for {{output}}", param="output")
        kind = store_format(target)
        ours = {VERSIONS_DIR, "data", "_writer.lock"}
        if kind is None and any(p.name not in ours for p in target.iterdir()):
            raise StoreError(f"{target} exists and is not a graphret store; choose another output folder for {{output}}", param="output")
        if kind is not None and not overwrite:
            raise StoreError(f"a store already exists at {target}; pass {{overwrite=True}} to replace it or choose another {{output}}", param="overwrite")
    return target


@dataclass
class StoreContent:
    """Everything a built version holds: the tables, how to write the encoder file (a function
    of the destination path, or None for a store without an encoder) and the manifest (the
    ``tables`` and the encoder's ``file`` are filled in when written)."""

    items: pa.Table
    edges: pa.Table
    communities: pa.Table
    manifest: dict[str, Any]
    dendrogram: pa.Table | None = None
    write_encoder: Callable[[Path], None] | None = None
    thumbnails: pa.Table | None = None  # row -> small PNG (graphret.store.thumbnails), or None
    walk: pa.Table | None = None  # the walk lists (WALK_SCHEMA), or None
    entries: pa.Table | None = None  # the walk's entry points (ENTRIES_SCHEMA), or None


#: what makes a version's prepared tables from it (graphret.query.prepared.prepared_tables)
Prepare = Callable[[Snapshot], dict[str, pa.Table]]


def with_prepared(writer: Writer, manifest: dict[str, Any], prepare: Prepare | None) -> dict[str, Any]:
    """``manifest`` (the version being written) with its prepared tables written and listed,
    each tied to it (:func:`stamped`); none of the base's are carried over."""
    tables = {name: entries for name, entries in manifest["tables"].items() if name not in PREPARED_TABLES}
    manifest = {**manifest, "tables": tables}
    if prepare is not None:
        pending = Snapshot(writer.folder, manifest={**manifest, "format_version": FORMAT_VERSION,
                                                    "version": (writer.base_number or 0) + 1})
        for name, table in prepare(pending).items():
            tables[name] = [stamped(writer.write_table(name, table), manifest)]
    return manifest


def write_store(target: str | Path, content: StoreContent, *, overwrite: bool = False, prepare: Prepare | None = None) -> Path:
    """Commit ``content`` as a new version of the store at ``target`` (created if missing).
    Replaces an existing store only with ``overwrite``; a format 1 store replaced this way
    loses its old files once the new version is committed."""
    target = check_store_target(target, overwrite=overwrite)
    legacy = store_format(target) == LEGACY_FORMAT_VERSION if target.exists() else False

    def change(writer: Writer) -> dict[str, Any]:
        if writer.base is not None and not overwrite:  # another build won the race
            raise StoreError(f"a store appeared at {target} meanwhile; pass {{overwrite=True}} to replace it", param="overwrite")
        tables = {
            "items": [writer.write_table("items", content.items)],
            "edges": [writer.write_table("edges", content.edges)],
            "communities": [writer.write_table("communities", content.communities)],
        }
        if content.dendrogram is not None:
            tables["dendrogram"] = [writer.write_table("dendrogram", content.dendrogram)]
        for name, table in (("thumbnails", content.thumbnails), ("walk", content.walk), ("entries", content.entries)):
            if table is not None and table.num_rows:
                tables[name] = [writer.write_table(name, table)]
        manifest = {**content.manifest, "tables": tables}
        if content.write_encoder is not None:
            encoder = writer.write_file("encoder", content.write_encoder, ".pt")
            manifest["encoder"] = {**manifest.get("encoder", {}), "file": encoder}
        return with_prepared(writer, manifest, prepare)

    write_version(target, change, operation="build", create=True, replace_legacy=legacy)
    if legacy:
        remove_legacy_files(target)
    return target


def remove_legacy_files(folder: Path) -> None:
    """Remove a format 1 store's files once a format 2 version is committed beside them (a
    committed version takes precedence, so a crash halfway leaves a readable store)."""
    names = [MANIFEST_FILE] + list(LEGACY_FILES.values()) + ["encoder.pt"] + [p.name for p in folder.glob("centroids-*.arrow")]
    for name in names:
        if (folder / name).exists():
            fs.remove(folder / name)


@dataclass
class Appended:
    """What an add writes: the new items' rows, their edges, their community assignments (in
    the store's communities schema), the new manifest (without ``tables``), the new items'
    thumbnails (rows counted in the whole store; None: none) and walk-list edges."""

    items: pa.Table
    edges: pa.Table
    communities: pa.Table
    manifest: dict[str, Any]
    thumbnails: pa.Table | None = None
    walk: pa.Table | None = None  # the new items' walk lists and the links to them


def append_version(folder: str | Path, make: Callable[[Snapshot], Appended], *, prepare: Prepare | None = None) -> int:
    """Commit the newest version plus what ``make(base_snapshot)`` returns, writing only the
    new fragments.  ``make`` runs under the writer lock, on the newest version (again, on a
    lost race), so concurrent adds all land."""

    def change(writer: Writer) -> dict[str, Any]:
        base = Snapshot(writer.folder, version=writer.base_number)
        appended = make(base)
        tables = {name: list(entries) for name, entries in base.manifest["tables"].items()}
        for name, table in (("items", appended.items), ("edges", appended.edges), ("communities", appended.communities),
                            ("thumbnails", appended.thumbnails), ("walk", appended.walk)):
            if table is not None and (table.num_rows or name == "items"):
                tables.setdefault(name, []).append(writer.write_table(name, table))
        manifest = dict(appended.manifest)
        manifest["tables"] = tables
        return with_prepared(writer, manifest, prepare)

    return write_version(folder, change, operation="add")
