"""Committed versions: which exist, which is newest, and reading a version's manifest.

A version exists exactly when its manifest file ``_versions/NNNNNNNN.json`` exists: the file is
complete before it gets that name (see :mod:`graphret.store.commit`), so listing the folder is
enough to know what was committed.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from graphret.errors import StoreError
from graphret.store.schema import (
    FORMAT_NAME,
    FORMAT_VERSION,
    LEGACY_FORMAT_VERSION,
    MANIFEST_FILE,
    REQUIRED_TABLES,
    VERSIONED_FORMAT,
    VERSIONS_DIR,
    version_file,
)

__all__ = ["committed_versions", "newest_version", "NewestVersion", "read_manifest", "require_store", "store_format", "check_manifest"]

_VERSION = re.compile(r"^(\d{8})\.json$")


def committed_versions(folder: Path) -> list[int]:
    """The committed version numbers of the store at ``folder``, ascending."""
    versions = Path(folder) / VERSIONS_DIR
    if not versions.is_dir():
        return []
    return sorted(int(m.group(1)) for name in _entry_names(versions) if (m := _VERSION.match(name)))


def _entry_names(versions: Path) -> list[str]:
    try:
        return [entry.name for entry in versions.iterdir()]
    except OSError as error:
        raise StoreError(f"cannot list {versions}: {error.strerror}; check the folder's permissions") from None


def newest_version(folder: Path) -> int | None:
    found = committed_versions(folder)
    return found[-1] if found else None


class NewestVersion:
    """:func:`newest_version` for a reader that asks often (the server asks per request): the
    ``_versions`` folder is listed again only when its modification time moved.  A commit or a
    vacuum renames or removes an entry, which moves it; but a change in the same clock tick as
    the change before would not, so a listing taken within :attr:`RACY_NS` of the folder's
    modification time is not trusted for the next call (as git treats a "racily clean" index)."""

    #: how long after the folder's last change a listing is trusted to see every entry
    RACY_NS = 1_000_000_000

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._listed = str(self.folder / VERSIONS_DIR)
        self._seen: tuple[int, int | None] | None = None  # (the folder's mtime, the newest version listed then)

    def __call__(self) -> int | None:
        try:
            mtime = os.stat(self._listed).st_mtime_ns  # looked at before the listing
        except OSError:
            return newest_version(self.folder)
        seen = self._seen
        if seen is not None and seen[0] == mtime:
            return seen[1]
        listed_at = time.time_ns()
        newest = newest_version(self.folder)
        self._seen = (mtime, newest) if listed_at - mtime > self.RACY_NS else None
        return newest


def store_format(folder: Path) -> int | None:
    """2 (:data:`VERSIONED_FORMAT`) when the folder holds a committed version, 1 for a graphret
    0.1 store, else None (each version's manifest says its own format: 2 or 3)."""
    if newest_version(folder) is not None:
        return VERSIONED_FORMAT
    if (Path(folder) / MANIFEST_FILE).is_file():
        return LEGACY_FORMAT_VERSION
    return None


def _load_json(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StoreError(f"{path} is not valid JSON ({error}); open another version or rebuild the store") from None
    except OSError as error:
        raise StoreError(f"cannot read {path}: {error.strerror}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise StoreError(f"{path} is not a graphret store manifest; give a folder written by `graphret build-graph`")
    return manifest


def check_manifest(manifest: dict[str, Any], where: Path) -> None:
    """The keys every reader relies on, present and of the right kind."""
    for key, kind in (("source", dict), ("encoder", dict), ("counts", dict), ("params", dict)):
        if not isinstance(manifest.get(key), kind):
            raise StoreError(f"{where} has no {key!r} section; the store is damaged: open another version or rebuild it")
    if not isinstance(manifest["counts"].get("items"), int):
        raise StoreError(f"{where} does not count its items; the store is damaged")
    if not isinstance(manifest["source"].get("class_names", []), list):
        raise StoreError(f"{where} has malformed class names; the store is damaged")
    communities = manifest.get("communities", {})
    if not isinstance(communities, dict) or not all(isinstance(info, dict) for info in communities.values()):
        raise StoreError(f"{where} has a malformed communities section; the store is damaged: open another version or rebuild it")


def require_store(folder: Path) -> int:
    """The store format of ``folder`` (see :func:`store_format`), or one line saying why it is
    no store: missing, a file, or a folder without a committed version."""
    folder = Path(folder)
    if not folder.exists():
        raise StoreError(f"no such store: {folder} (build one with `graphret build-graph -o {folder}`)")
    if not folder.is_dir():
        raise StoreError(f"{folder} is a file, not a store folder (give the folder `graphret build-graph -o` wrote)")
    kind = store_format(folder)
    if kind is None:
        raise StoreError(f"{folder} is not a graphret store (no committed version); give a folder written by `graphret build-graph`")
    return kind


def read_manifest(folder: Path, version: int | None = None) -> dict[str, Any]:
    """The manifest of ``version`` (default: the newest) of the store at ``folder``: checked
    for format name, a version this graphret reads, its table list and the sections readers
    use.  A graphret 0.1 store gives its single ``manifest.json``."""
    folder = Path(folder)
    kind = require_store(folder)
    if kind == LEGACY_FORMAT_VERSION:
        if version not in (None, 1):
            raise StoreError(f"{folder} is a format 1 store with a single version; run `graphret upgrade {folder}` for versions")
        path = folder / MANIFEST_FILE
        manifest = _load_json(path)
        if manifest.get("format_version") != LEGACY_FORMAT_VERSION:
            raise StoreError(f"{path} has format version {manifest.get('format_version')!r}; this graphret reads formats 1 to {FORMAT_VERSION}")
        if not isinstance(manifest.get("files"), dict) or not manifest["files"]:
            raise StoreError(f"{path} lists no files with their checksums; the store is damaged: rebuild it")
        check_manifest(manifest, path)
        return manifest
    versions = committed_versions(folder)
    number = versions[-1] if version is None else int(version)
    if number not in versions:
        raise StoreError(f"{folder} has no version {number}; its versions are {_ranges(versions)}", param="version")
    path = folder / VERSIONS_DIR / version_file(number)
    manifest = _load_json(path)
    declared = manifest.get("format_version")
    if not isinstance(declared, int):
        raise StoreError(f"{path} has no integer format_version; the store is damaged")
    if declared > FORMAT_VERSION:
        raise StoreError(f"{folder} has store format version {declared}, newer than this graphret reads ({FORMAT_VERSION}); upgrade graphret")
    if declared < VERSIONED_FORMAT:  # versioned manifests began with format 2; format 1 is a single manifest.json
        raise StoreError(f"{path} says format version {declared}, but versions are format {VERSIONED_FORMAT} or later; the store is damaged: "
                         "open another version or rebuild it")
    archive = manifest.get("archive")
    if not isinstance(archive, list) or not archive or not all(isinstance(name, str) for name in archive):
        raise StoreError(f"{path} does not list the archive's splits; the store is damaged: open another version or rebuild it")
    if manifest.get("version") != number:
        raise StoreError(f"{path} says it is version {manifest.get('version')!r}; the store is damaged")
    tables = manifest.get("tables")
    if not isinstance(tables, dict) or any(not isinstance(tables.get(t), list) or not tables.get(t) for t in REQUIRED_TABLES) \
            or not all(isinstance(entries, list) for entries in tables.values()):
        raise StoreError(f"{path} lists no fragments for its tables; the store is damaged: open another version or rebuild it")
    check_manifest(manifest, path)
    return manifest


def _ranges(numbers: list[int]) -> str:
    if not numbers:
        return "none"
    return f"{numbers[0]}..{numbers[-1]}" if numbers == list(range(numbers[0], numbers[-1] + 1)) else ", ".join(map(str, numbers))
