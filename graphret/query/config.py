"""Every option of a search, as one typed, frozen config: :class:`SearchConfig`.

It is the single home of the search options' defaults, bounds, help and the modes each applies
to: :meth:`graphret.Store.search` and :meth:`~graphret.query.searcher.Searcher.search` take its
fields as keywords (or a ``config``), ``graphret query``'s options are generated from it
(:mod:`graphret.cli.options`), and the server's request models derive from it
(:mod:`graphret.serve.models`).  A mode-specific option (``n_probe``, ``ef``,
``class_source``) given with a mode it does not apply to is refused with one line naming it
(:class:`~graphret.errors.ParameterError`), never silently ignored::

    >>> SearchConfig(mode="flat", n_probe=4)
    Traceback (most recent call last):
    ParameterError: n_probe applies to the probe mode only; leave it out or use mode=probe
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Literal

from graphret.errors import InputError
from graphret.graph.walk import DEFAULT_EF
from graphret.params import fields_of, nested_update, param, validate
from graphret.query.graph_region import DEFAULT_REGION_EF

__all__ = ["SearchConfig", "parse_archive", "MODES", "RANKS", "CLASS_SOURCES", "REGION_ORDERS", "DEFAULT_PROBE", "INDEX_OPTIONS"]

MODES = ("region", "graph", "flat", "class", "probe")
RANKS = ("smoothed", "manifold")
CLASS_SOURCES = ("classifier", "knn")
#: how region mode orders the region it grew: by cosine to the query, or in Haq's joining order
REGION_ORDERS = ("cosine", "gain")
#: lists probe mode searches when ``n_probe`` is not given
DEFAULT_PROBE = 16
#: the options that choose what a :class:`~graphret.query.searcher.Searcher` holds (its index);
#: the others are per search
INDEX_OPTIONS = ("space", "archive", "communities")


def parse_archive(archive: Any) -> list[str] | None:
    """The splits an ``archive`` option names: None (the store's archive), a split name or
    comma list as the command line takes it (``"all"``, ``"train,val"``), or a list of names."""
    if archive is None:
        return None
    names = archive.split(",") if isinstance(archive, str) else archive
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise InputError(f"{{archive}} must be split names (a list or a comma list), got {archive!r}; use e.g. {{archive=all}}", param="archive")
    names = [name.strip() for name in names if name.strip()]
    if not names:
        raise InputError("{archive} names no split; use e.g. {archive=all}", param="archive")
    return names


@dataclass(frozen=True)
class SearchConfig:
    """How a search runs: K, the mode and its options, filters, re-ranking, the searched index.

    ``n_probe``, ``ef`` and ``class_source`` apply to some modes only and default to None, the
    mode's own default; given with another mode they are a :class:`ParameterError`.  When
    ``mode`` is None the store decides (region with communities, else flat) and the check runs
    then (:meth:`for_mode`)."""

    k: int = param(10, min=1, label="K", help="Results per query.")
    mode: Literal[MODES] | None = param(  # type: ignore[valid-type]
        None, help="region (Haq's region growing on the graph), graph (a walk through the graph), flat (exact), class "
                   "(inside the predicted class) or probe (exact inside the P nearest lists) [region when the store has "
                   "communities, else flat].")
    where: tuple[str, ...] = param(
        (), repeat=True, help="Metadata filter applied before ranking, e.g. label=CXR, split!=test, 'anatomy in head,chest', "
                              "age>=40 (repeatable).")
    n_probe: int | None = param(None, min=1, flag="--probe", applies_to=("probe",),
                                help=f"Lists probe mode searches (P) [{DEFAULT_PROBE}].")
    ef: int | None = param(None, min=1, applies_to=("graph", "region"),
                           help=f"The walk's effort, graph and region modes: larger finds more, slower [graph {DEFAULT_EF}; "
                                f"region {DEFAULT_REGION_EF}].")
    rank: Literal[RANKS] | None = param(  # type: ignore[valid-type]
        None, help="Re-order the results by the graph: smoothed (cosine to graph-smoothed codes) or manifold (manifold "
                   "ranking) [the mode's own order].")
    class_source: Literal[CLASS_SOURCES] | None = param(  # type: ignore[valid-type]
        None, flag="--class-from", applies_to=("class",),
        help="Class mode: the encoder's classifier, or a kNN vote of the query's nearest archive items [classifier].")
    region_order: Literal[REGION_ORDERS] | None = param(  # type: ignore[valid-type]
        None, applies_to=("region",),
        help="How region mode ranks the region it grew: cosine (with the walk's nearest image, the most similar "
             "first) or gain (Haq's region alone, in the order the items joined by quality gain) [cosine].")
    batch_size: int | None = param(None, min=1, help="Queries searched per batch [all at once].")
    space: str = param("default", help="Code space to search (decompose stores: normal, abnormal or both).")
    archive: tuple[str, ...] | None = param(None, help="Splits searched, or 'all' [train+val, or all, plus added items].")
    communities: str | None = param(None, help="Community method region and probe use and results show [cnm, else leiden].")

    def __post_init__(self) -> None:
        if isinstance(self.where, str) or self.where is None:
            object.__setattr__(self, "where", () if self.where is None else (self.where,))
        if isinstance(self.where, (list, tuple)):
            object.__setattr__(self, "where", tuple(w.strip() if isinstance(w, str) else w for w in self.where
                                                    if not isinstance(w, str) or w.strip()))
        archive = parse_archive(self.archive)
        object.__setattr__(self, "archive", None if archive is None else tuple(archive))
        for name in ("where", "archive"):
            value = getattr(self, name)
            if value is not None and not all(isinstance(v, str) for v in value):
                raise InputError(f"{{{name}}} must be strings, got {list(value)!r}", param=name)
        validate(self, selector="mode", noun="mode")

    @classmethod
    def from_options(cls, config: "SearchConfig | None" = None, **options: Any) -> "SearchConfig":
        """``config`` (default: the defaults) with the flat keyword ``options`` set; an unknown
        name is an InputError listing the known ones."""
        if not options:
            return config or cls()
        if config is None and _NAME_SET.issuperset(options):
            values = tuple(options.values())
            try:  # a search makes its config per call: the same options give the same (frozen) config
                # (keyed with each value's type: k=True or k=2.0 hashes as 1 or 2, and must be refused as it would be fresh)
                return _config_of(tuple(options), tuple(map(type, values)), values)
            except TypeError:  # an unhashable value (a list of filters): made afresh
                return cls(**options)
        return nested_update(config or cls(), options)

    @classmethod
    def option_names(cls) -> list[str]:
        return list(_NAMES)

    def for_mode(self, mode: str) -> "SearchConfig":
        """This config with ``mode`` decided (checks the mode-specific options against it)."""
        return self if self.mode == mode else _with_mode(self, mode)

    def index_options(self) -> dict[str, Any]:
        """The options that choose the searched index: space, archive (a list or None), communities."""
        return {"space": self.space, "archive": None if self.archive is None else list(self.archive),
                "communities": self.communities}

    @property
    def probe(self) -> int:
        """The lists probe mode searches."""
        return DEFAULT_PROBE if self.n_probe is None else self.n_probe

    @property
    def walk_ef(self) -> int:
        """The walk's result heap for the config's mode (graph or region)."""
        if self.ef is not None:
            return self.ef
        return DEFAULT_REGION_EF if self.mode == "region" else DEFAULT_EF

    @property
    def region_ranking(self) -> str:
        """How region mode orders its region (cosine unless asked for gain)."""
        return self.region_order or "cosine"

    @property
    def classes_from(self) -> str:
        """Where class mode's predicted class comes from."""
        return self.class_source or "classifier"


_NAMES = tuple(f.name for f in fields_of(SearchConfig))
_NAME_SET = frozenset(_NAMES)


@functools.lru_cache(maxsize=1024)
def _config_of(names: tuple[str, ...], types: tuple[type, ...], values: tuple) -> SearchConfig:
    """The config of these options (their names, their values' types, their values), validated
    once (a query per call then pays a dictionary look-up, not a validation: tens of
    microseconds against a walk of the same)."""
    return SearchConfig(**dict(zip(names, values)))


@functools.lru_cache(maxsize=1024)
def _with_mode(config: SearchConfig, mode: str) -> SearchConfig:
    return dataclasses.replace(config, mode=mode)
