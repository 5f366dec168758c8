"""The store-centred public API: :class:`Store`, what ``graphret.build`` and ``graphret.open``
return.

>>> import graphret
>>> store = graphret.build("demo:n=300,size=32", "demo-store", encoder="pixels")
>>> result = store.search("test", k=10)                  # a split, ids, image paths or codes
>>> frame = result.to_pandas()                           # one row per (query, result)
>>> store.add("new-scans/")                              # encode, link, assign communities
>>> store.communities().summary()                        # community analysis
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from graphret.api.add import add_to_store
from graphret.api.build import build_store, build_store_from_codes
from graphret.api.config import AddConfig, BuildConfig
from graphret.data.imageset import ImageSet
from graphret.query.result import SearchResult
from graphret.params import keyword_options
from graphret.query.config import SearchConfig, parse_archive
from graphret.query.archive import prepared_tables
from graphret.query.searcher import Searcher, search_store
from graphret.store.maintain import DEFAULT_GRACE, compact, history, vacuum, verify
from graphret.store.read import Snapshot, open_store
from graphret.store.versions import newest_version

__all__ = ["Store", "build", "build_from_codes", "open"]

Log = Callable[[str], None]


class Store:
    """An opened graph store: search it, add to it, analyse its communities (state: the
    :class:`~graphret.store.read.Snapshot` it reads and the searchers it has built)."""

    def __init__(self, path: str | Path, *, version: int | None = None) -> None:
        self.path = Path(path)
        self.snapshot: Snapshot = open_store(self.path, version=version)
        self._searchers: dict[tuple, Searcher] = {}

    def __repr__(self) -> str:
        return (f"Store({str(self.path)!r}, version={self.version}, items={len(self)}, task={self.task!r}, "
                f"communities={self.community_methods})")

    @property
    def version(self) -> int:
        """The version this store object reads (``refresh()`` moves it to the newest)."""
        return self.snapshot.version

    def __len__(self) -> int:
        return len(self.snapshot)

    # -- what the store holds --------------------------------------------------------------------
    @property
    def manifest(self) -> dict[str, Any]:
        return self.snapshot.manifest

    @property
    def ids(self) -> np.ndarray:
        return self.snapshot.ids

    @property
    def task(self) -> str:
        return self.snapshot.task

    @property
    def class_names(self) -> list[str]:
        return self.snapshot.class_names

    @property
    def spaces(self) -> list[str]:
        return self.snapshot.spaces

    @property
    def community_methods(self) -> list[str]:
        return self.snapshot.community_methods

    def codes(self, space: str = "default") -> np.ndarray:
        return self.snapshot.codes(space)

    def membership(self, method: str | None = None) -> np.ndarray:
        return self.snapshot.membership(method)

    def to_arrow(self) -> pa.Table:
        """The items table with each stored community method as a column."""
        table = self.snapshot.items
        for method in self.community_methods:
            table = table.append_column(f"community_{method}", self.snapshot.communities.column(method))
        return table

    def to_pandas(self):
        return self.to_arrow().to_pandas()

    # -- search ----------------------------------------------------------------------------------
    def searcher(self, *, space: str = "default", archive: list[str] | None = None, communities: str | None = None) -> Searcher:
        """The in-memory searcher for one (space, archive, community method), built once."""
        archive = parse_archive(archive)
        key = (space, None if archive is None else tuple(archive), communities)
        if key not in self._searchers:
            self._searchers[key] = Searcher(self.snapshot, space=space, archive=archive, communities=communities)
        return self._searchers[key]

    @keyword_options(SearchConfig)
    def search(self, q: Any = None, *, compose: str | dict[str, str] | None = None, kind: str | None = None,
               config: SearchConfig | None = None, **options: Any) -> SearchResult:
        """The top-k archive items for each query in ``q``: a split name, stored ids, image
        files or folders, or an array of codes (``kind`` says which when detection should not
        guess).  ``config`` and/or the keyword ``options`` are
        :class:`~graphret.query.config.SearchConfig` fields: ``k``, ``mode`` (region, the default
        with communities, graph, flat, class or probe), ``where`` (metadata filters such as
        ``"label=CXR"``), ``ef`` (the walk's effort, graph and region modes), ``n_probe`` (probe
        mode), ``class_source`` (class mode), ``rank`` (``smoothed`` or ``manifold``: re-order by
        the graph), ``space``, ``archive``, ``communities``, ``batch_size``; an option the
        chosen mode ignores is a ParameterError.

        ``compose`` (instead of ``q``): a composite query of a decompose store,
        ``"A:normal,B:abnormal"`` or ``{"normal": A, "abnormal": B}`` (A, B stored ids or image
        files): A's normal code beside B's abnormal code, searched in the ``both`` space
        (:mod:`graphret.query.compose`)."""
        return search_store(self.snapshot, self.searcher, q, compose=compose, kind=kind,
                            config=SearchConfig.from_options(config, **options))

    # -- change ----------------------------------------------------------------------------------
    @keyword_options(AddConfig)
    def add(self, source: str | Path | ImageSet, *, log: Log = lambda _: None, **options: Any) -> dict[str, Any]:
        """Encode the images of ``source`` with the store's encoder, link them into the graph
        and the communities, and move to the new version; ``options``: ``k``, ``seed`` and the
        source options (``split``, ``on_corrupt``, CSV columns)."""
        summary = add_to_store(self.path, source, AddConfig.from_options(**options), log=log)
        self.refresh()
        return summary

    def refresh(self) -> "Store":
        """Move to the store's newest version (after a write by this or another process); a
        no-op when this is already the newest."""
        if newest_version(self.path) != self.snapshot.version or self.snapshot.read_only:
            self.snapshot = open_store(self.path)
            self._searchers.clear()
        return self

    def versions(self) -> list[dict[str, Any]]:
        """The committed versions: number, operation, when, items, edges."""
        return history(self.path)

    def compact(self) -> "Store":
        """Merge each table's fragments into one file (a new version) and move to it."""
        compact(self.path, prepare=prepared_tables)
        return self.refresh()

    def vacuum(self, *, keep: int = 1, grace: float = DEFAULT_GRACE) -> dict[str, int]:
        """Remove versions older than the newest ``keep`` (and superseded over ``grace`` seconds
        ago) and the files only they list."""
        return vacuum(self.path, keep=keep, grace=grace)

    def verify(self, *, all_versions: bool = False) -> list[str]:
        """What is wrong with this version's files (or every version's); empty when sound."""
        return verify(self.path, version=None if all_versions else self.version, all_versions=all_versions)

    # -- analyse ---------------------------------------------------------------------------------
    def communities(self, methods: str | list[str] = "all", *, cut: int | None = None, images: ImageSet | None = None):
        """A :class:`~graphret.analysis.api.CommunityAnalysis` of the stored partitions (and
        the CNM dendrogram cut at ``cut`` communities)."""
        from graphret.analysis.api import CommunityAnalysis

        return CommunityAnalysis(self.snapshot, methods=methods, cut=cut, images=images)

    def evaluate(self, **options: Any):
        """Every query mode on the store's test split, side by side
        (:func:`graphret.evaluation.run_bench`)."""
        from graphret.evaluation import run_bench

        return run_bench(self.snapshot, **options)


def open(path: str | Path, *, version: int | None = None) -> Store:  # noqa: A001 - graphret.open, as lancedb.connect
    """Open the store at ``path``: its newest version, or ``version``."""
    return Store(path, version=version)


@keyword_options(BuildConfig)
def build(source: str | Path | ImageSet | None, path: str | Path, *, config: BuildConfig | None = None,
          log: Log | None = None, **options: Any) -> Store:
    """Build a store from ``source`` (an npz, a folder, a CSV manifest, ``"demo"`` or None for
    the embedded demo set, ``"medmnist:NAME"``, or an ImageSet) at ``path`` and open it.

    ``options`` are flat build options (``encoder="pixels"``, ``k=10``, ``communities=("cnm",)``,
    ``epochs=5``, ...: :class:`~graphret.api.config.BuildConfig`'s, each listed in this
    function's signature with its default), or pass ``config``.  ``log``: a function that takes
    each progress line (training then shows progress bars too); None: quiet.  Nothing but the
    store is written: the training checkpoint beside it is removed once the store is."""
    if config is not None and options:
        config = BuildConfig.from_options(**{**config.flat(), **options})
    config = config or BuildConfig.from_options(**options)
    build_store(source, path, config, log=log)
    return Store(path)


@keyword_options(BuildConfig)
def build_from_codes(codes: np.ndarray, path: str | Path, *, ids=None, labels=None, class_names=None, metadata=None,
                         splits=None, log: Log | None = None, **options: Any) -> Store:
    """Build a store from codes you already have (n, d) and open it: ``ids``, ``labels`` (class
    names, indices with ``class_names``, or a 0/1 matrix for multi-label), ``metadata`` columns
    and ``splits`` (default: every item in the archive); ``options`` as for :func:`build`
    (graph and community options)."""
    build_store_from_codes(codes, path, ids=ids, labels=labels, class_names=class_names, metadata=metadata, splits=splits,
                     config=BuildConfig.from_options(**options), log=log)
    return Store(path)
