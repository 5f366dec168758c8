"""One consistent version per request: :class:`StoreHolder` keeps a :class:`View` of the store's
newest version and moves to a newer one between requests.

A request takes the current :class:`View` once and reads only through it, so everything it
answers comes from one version even while an add commits the next.  When a writer (this server
or another process) has committed a newer version, the next request that notices opens it as a
new :class:`~graphret.api.store.Store` (a Store per version: the old one stays as it was for
the requests still holding it, which :meth:`Store.refresh` in place would not allow), warms it,
and swaps it in; requests arriving meanwhile keep the old view rather than wait.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np

import graphret
from graphret.api.store import Store
from graphret.errors import GraphretError
from graphret.query.searcher import Searcher
from graphret.store.pixels import ItemImages
from graphret.store.thumbnails import DEFAULT_THUMBNAIL_SIZE, thumbnail_png
from graphret.store.versions import NewestVersion, newest_version

__all__ = ["StoreHolder", "View", "THUMBNAIL_CACHE"]

log = logging.getLogger("graphret.serve")

#: thumbnails made from pixels (stores without a thumbnails table) kept per version
THUMBNAIL_CACHE = 4096


class View:
    """One version of the store and what requests build from it once (state: the Store, its
    warmed searchers, the community analysis, the pixel reader and cached answers), each built
    under its own lock so that a slow one (the analysis) does not hold up the others."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._search_lock = threading.Lock()
        self._analysis_lock = threading.Lock()
        self._pixels_lock = threading.Lock()
        self._cache_locks: dict[str, threading.Lock] = {}
        self._cache_guard = threading.Lock()
        self._analysis = None
        self._warmed: set[tuple] = set()
        self._cache: dict[str, Any] = {}
        self._thumbnails: OrderedDict[int, bytes | None] = OrderedDict()

    @property
    def version(self) -> int:
        return self.store.version

    @property
    def snapshot(self):
        return self.store.snapshot

    def searcher(self, *, space: str = "default", archive: list[str] | None = None, communities: str | None = None) -> Searcher:
        """The store's searcher for (space, archive, communities), its lazily built index made
        whole by one query per mode before any request shares it."""
        with self._search_lock:
            key = (space, None if archive is None else tuple(archive), communities)
            searcher = self.store.searcher(space=space, archive=archive, communities=communities)
            if key not in self._warmed:
                _warm(searcher)
                self._warmed.add(key)
            return searcher

    def analysis(self):
        """The store's :class:`~graphret.analysis.api.CommunityAnalysis` (every method), built once."""
        with self._analysis_lock:
            if self._analysis is None:
                self._analysis = self.store.communities()
            return self._analysis

    @cached_property
    def images(self) -> ItemImages:
        """Pixels of stored items from their recorded paths or source (thumbnail fallback)."""
        return ItemImages(self.snapshot)

    def item_pixels(self, row: int) -> np.ndarray | None:
        """The item's pixels from its recorded path or source (None where they cannot be read)."""
        with self._pixels_lock:  # ItemImages loads the source once; one reader at a time
            return self.images.image(int(row))

    def thumbnail(self, row: int) -> bytes | None:
        """The item's stored thumbnail; for a store without one, a thumbnail made from its
        pixels (the last :data:`THUMBNAIL_CACHE` kept); None when neither exists."""
        stored = self.snapshot.thumbnail(row)
        if stored is not None:
            return stored
        with self._pixels_lock:
            if row in self._thumbnails:
                self._thumbnails.move_to_end(row)
                return self._thumbnails[row]
        pixels = self.item_pixels(row)
        made = None if pixels is None else thumbnail_png(pixels, DEFAULT_THUMBNAIL_SIZE)
        with self._pixels_lock:
            self._thumbnails[row] = made
            while len(self._thumbnails) > THUMBNAIL_CACHE:
                self._thumbnails.popitem(last=False)
        return made

    def cached(self, name: str, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per version under ``name`` (a rendered map, the filters)."""
        with self._cache_guard:
            lock = self._cache_locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._cache:
                self._cache[name] = make()
            return self._cache[name]


def _warm(searcher: Searcher) -> None:
    """Run one tiny query in each mode that uses the index (and one code alone in graph mode, whose
    compiled call is its own: Searcher._single_code), so its cached parts (the graph mode's
    community layout among them: ~2.6 s and 0.6 GB at 1M items) are built once here rather than
    raced for by concurrent requests or paid by the first one; and build the id look-up that searches
    by stored id go through (a dict of every id: about 1 s at 1M items, which the first such
    request of each worker otherwise paid while the requests behind it waited) and the item
    paths every answer shows (decoded once per version)."""
    searcher.store.row_of_id  # noqa: B018 - built now
    searcher.store.paths  # noqa: B018 - decoded now
    codes = searcher.store.codes(searcher.space)[searcher.rows[:1]]
    if searcher.method is None or len(searcher.rows) < 2:
        return
    searcher.lay_out()
    for mode, q in (("region", codes), ("graph", codes), ("probe", codes), ("graph", codes[0])):  # (a code alone: its own call)
        try:
            searcher.search(np.asarray(q, np.float32), k=1, mode=mode)
        except GraphretError:
            pass


class StoreHolder:
    """The server's store: the current :class:`View`, moved to the newest version between
    requests (state: the view and the lock of whoever is opening a newer one)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._opening = threading.Lock()
        self._unreadable: int | None = None  # a newer version that failed to open (not retried)
        self._newest = NewestVersion(self.path)  # asked per request: lists _versions/ only when it changed
        self._view = self._open()

    def _open(self) -> View:
        view = View(graphret.open(self.path))
        if len(view.store):
            view.searcher()
        return view

    @property
    def view(self) -> View:
        """The view requests read now (without looking for a newer version)."""
        return self._view

    def is_current(self) -> bool:
        """True when the view is the newest committed version (or cannot move: format 1)."""
        view = self._view
        return view.snapshot.read_only or self._newest() in (None, view.version, self._unreadable)

    def current(self) -> View:
        """The view a request reads, after moving to the newest committed version when one is
        there and nobody else is opening it already."""
        view = self._view
        if view.snapshot.read_only:  # a format 1 store has no versions to move between
            return view
        newest = self._newest()
        if newest not in (None, view.version, self._unreadable) and self._opening.acquire(blocking=False):
            try:
                if newest_version(self.path) != self._view.version:
                    self._view = self._open()
            except GraphretError as error:  # a newer version that cannot be read: keep serving this one
                self._unreadable = newest
                log.warning("staying on version %s of %s: %s", view.version, self.path, error)
            finally:
                self._opening.release()
        return self._view

    def refresh(self) -> View:
        """Move to the newest version now (after this server's own write), waiting for an
        opener already at work."""
        with self._opening:
            if newest_version(self.path) != self._view.version:
                self._view = self._open()
        return self._view

    def describe(self) -> dict[str, Any]:
        view = self._view
        return {"path": str(self.path), "version": view.version, "items": len(view.store)}
