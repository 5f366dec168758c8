"""Writing a store: one writer at a time, immutable fragments, put-if-absent commits.

:class:`Writer` is the one way to change a store.  It

1. takes the store's writer lock (``fcntl.flock`` on ``_writer.lock``), so writers on one
   machine wait for each other;
2. removes what an interrupted writer left (fragment files no version lists, temporary files);
3. reads the newest committed version (the *base*);
4. writes new fragment files (never touching existing ones), each fsynced and renamed into
   ``data/``;
5. commits: writes the next version's manifest to a temporary file, fsyncs it, and links it to
   ``_versions/<base + 1>.json`` -- a link that fails when the name exists, so of two writers
   that both read base N only one can commit N + 1, even without the lock.  The loser gets a
   :class:`CommitConflict`, and :func:`write_version` runs its change again on top of the
   winner's version.

A crash at any point leaves the store at its last committed version (plus files the next
writer removes).  The store is reached through symlinks as the user gave it: nothing is ever
renamed over the store's path.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa

from graphret.errors import StoreError
from graphret.store import fs
from graphret.store.fragments import add_file, check_entry, write_fragment
from graphret.store.schema import (
    DATA_DIR,
    FORMAT_NAME,
    FORMAT_VERSION,
    LOCK_FILE,
    TABLES,
    VERSIONS_DIR,
    version_file,
)
from graphret.store.versions import committed_versions, read_manifest, store_format

__all__ = ["CommitConflict", "Writer", "write_version", "referenced_files"]

RETRIES = 5


class CommitConflict(Exception):
    """Another writer committed the version this writer meant to commit."""


@contextlib.contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Hold the store's writer lock (waits for another writer to finish)."""
    path = folder / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, fs.file_mode())
    except OSError as error:
        raise StoreError(f"cannot write to the store {folder}: {error.strerror}; check the folder's permissions") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def referenced_files(folder: Path, versions: list[int] | None = None) -> set[str]:
    """The files (relative to the store) that the given versions (default: all) list."""
    names: set[str] = set()
    for number in committed_versions(folder) if versions is None else versions:
        try:
            manifest = read_manifest(folder, number)
        except StoreError:
            continue  # a damaged manifest protects nothing; verify reports it
        for entries in manifest.get("tables", {}).values():
            for entry in entries:
                names.add(check_entry(entry, "a fragment")[0])
        encoder = manifest.get("encoder", {}).get("file")
        if isinstance(encoder, dict):
            names.add(check_entry(encoder, "the encoder")[0])
    return names


def remove_litter(folder: Path) -> int:
    """Remove what interrupted writers left: temporary files and fragment files that no
    committed version lists.  Only called with the writer lock held."""
    removed = 0
    for sub in (VERSIONS_DIR, DATA_DIR):
        for path in (folder / sub).glob(".*.tmp"):
            fs.remove(path)
            removed += 1
    data = folder / DATA_DIR
    if data.is_dir():
        keep = referenced_files(folder)
        for path in data.iterdir():
            if path.is_file() and f"{DATA_DIR}/{path.name}" not in keep and not path.name.startswith("."):
                fs.remove(path)
                removed += 1
    return removed


class Writer:
    """A change to the store at ``folder`` in progress (state: the lock, the base version and
    the fragments written so far).  Use :func:`write_version`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.base_number: int | None = None
        self.base: dict[str, Any] | None = None
        self.written: list[str] = []

    def start(self) -> None:
        remove_litter(self.folder)
        versions = committed_versions(self.folder)
        self.base_number = versions[-1] if versions else None
        self.base = read_manifest(self.folder, self.base_number) if versions else None
        self.written = []

    def write_table(self, name: str, table: pa.Table) -> dict[str, Any]:
        """Write one new fragment of table ``name``; its manifest entry."""
        entry = write_fragment(self.folder, name, table)
        self.written.append(entry["file"])
        return entry

    def write_file(self, kind: str, write: Callable[[Path], None], suffix: str) -> dict[str, Any]:
        entry = add_file(self.folder, kind, write, suffix)
        self.written.append(entry["file"])
        return entry

    def discard(self) -> None:
        """Remove the fragments this attempt wrote (after a failure or a lost race)."""
        for name in self.written:
            with contextlib.suppress(OSError):
                fs.remove(self.folder / name)
        self.written = []

    def commit(self, manifest: dict[str, Any], *, operation: str) -> int:
        """Commit ``manifest`` (its ``tables`` listing every fragment of the new version) as
        the version after the base; :class:`CommitConflict` when another writer got there
        first."""
        number = (self.base_number or 0) + 1
        record = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "version": number,
            "parent": self.base_number,
            "operation": operation,
            "committed": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **{k: v for k, v in manifest.items() if k not in ("format", "format_version", "version", "parent", "operation", "committed", "files")},
        }
        for table in record.get("tables", {}):
            if table not in TABLES:
                raise ValueError(f"unknown table {table!r}")
        versions = self.folder / VERSIONS_DIR
        data = (json.dumps(record, indent=1) + "\n").encode()
        with fs.temporary(versions, "commit") as tmp:
            fs.step("write manifest")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                fs.step("fsync manifest")
                os.fsync(f.fileno())
            if not fs.link_exclusive(tmp, versions / version_file(number)):
                raise CommitConflict(number)
        self.written = []
        return number


def prepare_folder(folder: Path) -> None:
    """The store's folders, created (with the user's umask) where missing."""
    fs.makedirs(folder / VERSIONS_DIR)
    fs.makedirs(folder / DATA_DIR)


def write_version(folder: str | Path, change: Callable[[Writer], dict[str, Any]], *, operation: str,
                  create: bool = False, replace_legacy: bool = False) -> int:
    """Run ``change(writer)`` -- which writes fragments with the writer and returns the new
    version's manifest -- and commit it, under the writer lock; on a lost race run it again on
    top of the winner's version.  ``create`` makes the store's folders when missing;
    ``replace_legacy`` lets a build commit beside a format 1 store's files.  Returns the
    committed version number."""
    folder = Path(folder)
    if create:
        prepare_folder(folder)
    elif store_format(folder) is None:
        read_manifest(folder)  # the one-line "no such store" / "not a store" error
    if store_format(folder) == 1 and not replace_legacy:
        raise StoreError(f"{folder} is a format 1 store (graphret 0.1), which this graphret reads but does not change; "
                         f"run `graphret upgrade {folder}` first", param="store")
    with writer_lock(folder):
        for attempt in range(RETRIES):
            writer = Writer(folder)
            writer.start()
            try:
                manifest = change(writer)
                return writer.commit(manifest, operation=operation)
            except CommitConflict:
                writer.discard()
                time.sleep(0.05 * (attempt + 1))
            except BaseException:
                writer.discard()
                raise
    raise StoreError(f"{folder} kept changing under this writer ({RETRIES} attempts); try again")
