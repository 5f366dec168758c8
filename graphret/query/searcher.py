"""Search a store's archive: :class:`Searcher`, the explicit in-memory object that holds what
queries need (an :class:`~graphret.query.archive.ArchiveIndex`: codes, walk lists, region
graph, probe lists), built from a store :class:`~graphret.store.read.Snapshot` that it only
reads.

Modes (GUIDE sections 4 and 8):

* ``region`` (the default when the store has communities): Haq's Algorithm 1 on the stored
  graph -- the query's edges from a graph walk, the community of largest quality gain, a
  region grown along stored edges in gain order (:mod:`graphret.query.graph_region`); by
  default the walk's nearest item joins it and all are shown by cosine to the query, the most
  similar first (``region_order="gain"``: Haq's region alone, in the order it grew);
* ``graph``: a best-first walk through the stored walk lists from the entry points nearest the
  query, exact cosines, ``ef`` trading recall for speed (:mod:`graphret.graph.walk`);
* ``flat``: exact cosine top-K over the whole archive (:mod:`graphret.query.flat`);
* ``class``: flat search inside the query's predicted class (:mod:`graphret.query.classfilter`);
* ``probe``: exact top-K inside the ``n_probe`` lists with the nearest centroids, the lists
  being the communities cut to a bounded size (:mod:`graphret.query.probe`).

``rank`` re-orders any mode's results by a score that uses the graph: ``smoothed`` (cosine to
graph-smoothed codes) or ``manifold`` (manifold ranking among the candidates); the mode's
best ``RANK_POOL`` are re-ranked and the scores shown stay the exact cosines.  ``where``
filters (:mod:`graphret.query.filters`) restrict the archive before ranking in every mode.  A
stored item used as a query never appears in its own results.  The archive is the store's
(:meth:`Snapshot.archive_rows`: train + val or everything, plus added items) unless
``archive`` names splits.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import numpy as np

from graphret.errors import InputError, ModeUnavailable, ParameterError
from graphret.graph.knn import check_dimension, exact_search
from graphret.graph.topk import check_k
from graphret.graph.walk import SingleWalk, WalkInputs, walk_checked
from graphret.kernels.jit import interpreting
from graphret.query.archive import ArchiveIndex
from graphret.query.filters import filter_mask
from graphret.query.flat import flat_mode
from graphret.query.config import DEFAULT_PROBE, MODES, RANKS, SearchConfig, parse_archive
from graphret.query.graph_region import region_checked
from graphret.query.probe import probe_search
from graphret.query.queries import QuerySet, as_queries, code_queries, query_floats, row_queries, unit_queries
from graphret.query.result import SearchResult
from graphret.params import default_of, fields_of, keyword_options
from graphret.store.read import Snapshot

__all__ = ["MODES", "RANKS", "DEFAULT_PROBE", "Hits", "Searcher", "search", "search_store", "default_mode"]

_FIELDS = {field.name: field for field in fields_of(SearchConfig)}
#: candidates a graph ranking re-orders
RANK_POOL = 100
#: distinct ``where`` filter lists a searcher keeps evaluated
FILTER_CACHE = 64
#: distinct configs a searcher keeps checked (:meth:`Searcher._config`)
CONFIG_CACHE = 256
#: graph and region queries a searcher answers over the archive's own order before it lays the
#: archive out by community (:meth:`Searcher.lay_out`): at a million items the layout takes
#: seconds and saves about 50 us per query, so it pays back over tens of thousands of queries
LAYOUT_AFTER = 10_000


class Hits(NamedTuple):
    """What :meth:`Searcher.search_arrays` returns: store rows int64 (q, k), cosines float32
    (q, k), the fraction of the archive compared per query (q,), and the mode's per-query
    extras (``chosen_community``, ``predicted_class``...)."""

    rows: np.ndarray
    scores: np.ndarray
    scanned_fraction: np.ndarray
    details: dict[str, Any]


def default_mode(store: Snapshot) -> str:
    """region when the store has communities, flat otherwise."""
    return "region" if store.community_methods else "flat"


def _filter_key(where: list[str] | tuple[str, ...] | str) -> tuple[str, ...]:
    return (where,) if isinstance(where, str) else tuple(map(str, where))


def scanned_fraction(compared: np.ndarray, n: int) -> np.ndarray:
    """The fraction of an archive of n items whose codes a query compared (float64, per query)."""
    return np.minimum(compared, n) / max(n, 1)


def by_cosine(found: np.ndarray, cosines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's results by decreasing cosine (ties: the order they came in)."""
    order = np.argsort(-cosines, axis=1, kind="stable")
    each = np.arange(len(order))[:, None]  # (indexing, not take_along_axis: a single query pays its setup per call)
    return found[each, order], cosines[each, order]


class Searcher:
    """The archive of one store in one code space, ready to search (state: its index).

    ``archive``: the splits searched (None: the store's archive); ``communities``: the
    community method region and probe use (None: CNM when stored, else the first)."""

    def __init__(self, store: Snapshot, *, space: str = "default", archive: list[str] | None = None,
                 communities: str | None = None) -> None:
        if space not in store.spaces:
            raise InputError(f"the store has no code space {space!r}; choose one of {', '.join(store.spaces)} for {{space}}", param="space")
        if communities is not None:
            store.membership(communities)  # names the stored methods when unknown
        self.store = store
        self.space = space
        self.archive = parse_archive(archive)
        self.rows = store.archive_rows(self.archive)
        if len(self.rows) == 0:
            raise InputError("the archive is empty; choose other splits for {archive}", param="archive")
        self.method = communities or store.default_community_method()
        self.index = ArchiveIndex(store, self.rows, store.codes(space), self.method,
                                  stored_walk=self.archive is None and space == "default")
        self.default_mode = default_mode(store)
        self._filters: dict[tuple[str, ...], tuple[np.ndarray, int]] = {}
        self._filters_laid: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}  # mask -> over the layout
        self._asked = 0  # queries asked of the graph and region modes (_laid_out)
        self._configs: dict[int, tuple[SearchConfig, SearchConfig]] = {}  # id(config) -> (config, checked)
        self._single: SingleWalk | None = None  # the single-code walk over the base walked last (_single_code)

    def queries(self, q: Any, *, kind: str | None = None) -> QuerySet:
        """``q`` as a :class:`QuerySet` in this searcher's space (see :func:`as_queries`)."""
        return as_queries(self.store, q, space=self.space, kind=kind)

    @keyword_options(SearchConfig)
    def search(self, q: Any, config: SearchConfig | None = None, **options: Any) -> SearchResult:
        """Top-k archive items for each query in ``q`` (anything :func:`as_queries` takes).

        ``config`` and/or the keyword ``options`` are :class:`~graphret.query.config.SearchConfig`
        fields: ``k``, ``mode`` (None: region when the store has communities, flat otherwise),
        ``where``, ``n_probe`` (probe mode), ``ef`` (graph and region modes), ``rank``,
        ``class_source`` (class mode), ``batch_size``; an option the mode ignores is a
        ParameterError.  ``space``, ``archive`` and ``communities`` are this searcher's own."""
        config = self._config(SearchConfig.from_options(config, **options))
        single = self._single_code(q, config)
        if single is not None:
            queries, hits = unit_queries(single[0]), single[1]
        else:
            queries = self.queries(q)
            hits = self._run(queries, config)
        return SearchResult(mode=config.mode, k=config.k, queries=queries, rows=hits.rows, scores=hits.scores,
                            scanned_fraction=hits.scanned_fraction, store=self.store, community_method=self.method,
                            details=hits.details)

    @keyword_options(SearchConfig)
    def search_arrays(self, codes: np.ndarray | None = None, config: SearchConfig | None = None, *,
                      rows: np.ndarray | None = None, **options: Any) -> Hits:
        """The lean call for services: arrays in, arrays out.  ``codes`` float (q, d) (made
        unit here) or ``rows`` int (q,), stored items as queries (never in their own results);
        returns :class:`Hits` (store rows (q, k), cosines (q, k), scanned fraction (q,), the
        mode's per-query extras).  Options as :meth:`search`; nothing per call grows with the
        archive (what the modes need is built once per searcher)."""
        config = self._config(SearchConfig.from_options(config, **options))
        if (codes is None) == (rows is None):
            raise InputError("give query {codes} or stored {rows}, one of them", param="codes")
        if rows is not None:
            rows = np.asarray(rows)
            if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
                raise InputError("{rows} must be a 1-D array of store rows", param="rows")
            queries = row_queries(self.store, rows, self.space)
        else:
            single = self._single_code(codes, config)
            if single is not None:
                return single[1]
            queries = code_queries(codes)
        return self._run(queries, config)

    def _config(self, config: SearchConfig) -> SearchConfig:
        """The config checked against this searcher, its mode decided; once per config object
        (configs are frozen, and a search's options give the same object each call:
        :meth:`SearchConfig.from_options`)."""
        known = self._configs.get(id(config))
        if known is not None and known[0] is config:
            return known[1]
        self._check_index(config)
        checked = config.for_mode(config.mode or self.default_mode)
        if len(self._configs) >= CONFIG_CACHE:
            self._configs.clear()
        self._configs[id(config)] = (config, checked)  # (the config held: its id is not reused while kept)
        return checked

    def _single_code(self, q: Any, config: SearchConfig) -> tuple[np.ndarray, Hits] | None:
        """One query code, a 1-D float array of this space's dimension, made unit and walked in
        one compiled call (:meth:`_walk_alone`): the same unit code every code query gets
        (:func:`~graphret.query.queries.unit_codes`).  Returns (the unit code (1, d), the hits),
        or None where the general path answers (other queries or options, a code it refuses):
        the same answers, the same errors, from their one home."""
        if not (type(q) is np.ndarray and q.ndim == 1 and q.dtype.kind == "f" and q.shape[0] == self.index.codes.shape[1]):
            return None
        code = q if q.dtype == np.float32 else query_floats(q)
        return self._walk_alone(config, np.ascontiguousarray(code[None]), -1, normalise=True)

    def _walk_alone(self, config: SearchConfig, code: np.ndarray, row: int, *,
                    normalise: bool) -> tuple[np.ndarray, Hits] | None:
        """One query in graph mode without filters or ranking, with nothing per call but one
        compiled call (:class:`~graphret.graph.walk.SingleWalk`, laid out once per searcher),
        the same walk :meth:`_run` makes of a one-query batch: ``code`` float32 (1, d), made unit
        there with ``normalise`` (else unit already, and writable), ``row`` its store row (never
        returned) or -1.  Returns (the unit code, the hits), or None where :meth:`_run` answers
        (another mode or options, K over what can be returned, a code unit_rows refuses, a walk
        short of k)."""
        if not (config.mode == "graph" and not config.where and config.rank is None):
            return None
        index = self.index
        ex = int(index.position[row]) if row >= 0 else -1
        if config.k > index.n - (ex >= 0):
            return None
        base = index.graph_base if self._laid_out(1) else index.walk_base
        walk = self._single
        if walk is None or walk.base is not base:
            walk = self._single = SingleWalk(base, self.rows)
        found = walk(code, config.k, config.walk_ef, exclude=ex, normalise=normalise)
        if found is None:
            return None
        unit, rows, scores, compared = found
        return unit, Hits(rows, scores, scanned_fraction(compared, index.n), {})

    def allowed(self, where: list[str] | tuple[str, ...] | str | None) -> tuple[np.ndarray | None, int]:
        """The archive positions the ``where`` filters keep (None: no filter) and how many;
        each distinct filter list is evaluated once per searcher (the last
        :data:`FILTER_CACHE` kept), so a repeated filter costs nothing that grows with the
        archive."""
        if not where:
            return None, self.index.n
        key = _filter_key(where)
        cached = self._filters.get(key)
        if cached is None:
            allowed = filter_mask(self.store, list(key))[self.rows]
            allowed.setflags(write=False)
            if not allowed.any():
                raise InputError(f"no archive item matches the filters {' and '.join(key)}; loosen {{where}}", param="where")
            cached = (allowed, int(allowed.sum()))
            while len(self._filters) >= FILTER_CACHE:
                self._filters.pop(next(iter(self._filters)))
            self._filters[key] = cached
        return cached

    def _allowed_laid(self, where, allowed: np.ndarray | None, base: WalkInputs) -> np.ndarray | None:
        """``allowed`` over the walk layout's positions (``allowed[layout.order]``), mapped once
        per filter list as :meth:`allowed` evaluates it, so filtered walks run over the layout
        too; None without a filter or a layout."""
        if allowed is None or base.layout is None:
            return None
        key = _filter_key(where)
        cached = self._filters_laid.get(key)
        if cached is None or cached[0] is not allowed:
            cached = (allowed, np.ascontiguousarray(allowed[base.layout.order]))
            while len(self._filters_laid) >= FILTER_CACHE:
                self._filters_laid.pop(next(iter(self._filters_laid)))
            self._filters_laid[key] = cached
        return cached[1]

    def _run(self, queries: QuerySet, config: SearchConfig) -> Hits:
        """Search ``queries`` with a checked config: store rows, cosines, scanned fractions, extras."""
        mode, k, rank = config.mode, config.k, config.rank
        check_dimension(self.index.codes.shape[1], queries.codes)
        if len(queries) == 1:  # (a stored item, a code alone made unit before: one compiled call where it applies)
            code = queries.codes
            if not (code.dtype == np.float32 and code.flags.c_contiguous and code.flags.writeable):
                code = np.array(code, np.float32)
            alone = self._walk_alone(config, code, int(queries.rows[0]), normalise=False)
            if alone is not None:
                return alone[1]
        allowed, n_allowed = self.allowed(config.where)
        exclude = np.where(queries.rows >= 0, self.index.position[np.maximum(queries.rows, 0)], -1)
        available = n_allowed - int((exclude >= 0).any())
        # K against what can be returned before the (queries x K) results are allocated
        check_k(k, available, what="the archive" if allowed is None else "the archive after filters")
        depth = k if rank is None else max(k, min(RANK_POOL, available))
        details: dict[str, Any] = {}
        nq = len(queries)
        step = nq if not config.batch_size else int(config.batch_size)
        if step >= nq:  # one batch (a single query, or no batch size): no copies
            found, scores, scanned = self._batch(config, queries, depth, exclude, allowed, n_allowed, details)
        else:
            found = np.empty((nq, k), np.int64)
            scores = np.empty((nq, k), np.float32)
            scanned = np.zeros(nq)
            for start in range(0, nq, step):
                part = slice(start, min(start + step, nq))
                found[part], scores[part], scanned[part] = self._batch(config, queries.part(part), depth, exclude[part],
                                                                       allowed, n_allowed, details)
        if mode == "probe":
            details["n_probe"] = int(config.probe)
        if rank is not None:
            details["rank"] = rank
        return Hits(self.rows[found], scores, scanned, details)

    def _batch(self, config: SearchConfig, queries: QuerySet, depth: int, exclude: np.ndarray, allowed: np.ndarray | None,
               n_allowed: int, details: dict[str, Any]):
        f, s, sc = self._mode(config, queries, depth, exclude, allowed, n_allowed, details=details)
        if config.rank is not None:
            f, s = self._rerank(config.rank, queries.codes, f, s, config.k)
        return f, s, sc

    def _laid_out(self, nq: int) -> bool:
        """Whether these ``nq`` queries walk the community layout (:mod:`graphret.graph.layout`):
        once it exists, or once this searcher has been asked :data:`LAYOUT_AFTER` queries (this
        batch included) with the compiled kernels; until then they walk the archive's own order,
        since the layout is a copy of the codes and lists (seconds at a million items) that pays
        back only over thousands of queries (a server lays it out as it warms: :meth:`lay_out`)."""
        self._asked += nq
        return "graph_base" in vars(self.index) or (not interpreting() and self._asked >= LAYOUT_AFTER)

    def lay_out(self) -> None:
        """Build the community layout the graph and region modes walk now (a server warming a
        version, a benchmark of warmed searches) rather than after :data:`LAYOUT_AFTER` queries."""
        self.index.graph_base  # noqa: B018 - built now

    def _check_index(self, config: SearchConfig) -> None:
        """A config's space, archive and communities, where given, must be this searcher's."""
        mine = {"space": self.space, "archive": self.archive, "communities": self.method}
        for name, value in config.index_options().items():
            if value != default_of(_FIELDS[name]) and value != mine[name]:
                raise ParameterError(f"this searcher searches {name} {mine[name]!r}, not {value!r}; make a Searcher with "
                                     f"{{{name}={value}}} (Store.search does)", param=name)

    def _mode(self, config: SearchConfig, queries: QuerySet, k: int, exclude: np.ndarray, allowed: np.ndarray | None,
              n_allowed: int, *, details: dict[str, Any]):
        """(positions (q, k), cosines (q, k), scanned fraction (q,)) of one batch in the config's mode."""
        index, Q, n, mode = self.index, queries.codes, self.index.n, config.mode
        if mode == "flat":
            return flat_mode(index.codes, Q, k, exclude=exclude, allowed=allowed)
        if mode == "probe":
            return probe_search(index.probe, Q, k, n_probe=config.probe, exclude=exclude, allowed=allowed)
        if mode in ("graph", "region"):  # the walk's inputs checked once per searcher, the queries' per call
            base = index.graph_base if self._laid_out(len(Q)) else index.walk_base
            w = base.with_queries(Q, k, exclude=exclude, allowed=allowed, n_allowed=n_allowed, ef=config.walk_ef,
                                  allowed_laid=self._allowed_laid(config.where, allowed, base))
        if mode == "graph":
            f, s, compared = walk_checked(w)
            return f, s, scanned_fraction(compared, n)
        if mode == "region":
            region, ids = index.region
            by_cosine_order = config.region_ranking == "cosine"
            f, s, compared, chosen = region_checked(w, region, return_chosen=True, hold_nearest=by_cosine_order)
            if by_cosine_order:  # the region and the walk's nearest item, the most similar first (issue 23.5)
                f, s = by_cosine(f, s)
            details.setdefault("chosen_community", []).extend(int(ids[c]) if c >= 0 else None for c in chosen)
            return f, s, scanned_fraction(compared, n)  # entry points count once even where the walk meets them
        f, s, sc, classes = self._class(queries, k, exclude, allowed, config.classes_from)
        details.setdefault("predicted_class", []).extend(
            self.store.class_names[c] if 0 <= c < len(self.store.class_names) else int(c) for c in classes)
        return f, s, sc

    def _rerank(self, rank: str, Q: np.ndarray, found: np.ndarray, cosines: np.ndarray, k: int):
        """The best k of each query's candidates by the graph ranking, with their cosines."""
        from graphret.graph.diffusion import manifold_ranking, rerank, smoothed_scores

        if rank == "smoothed":
            scores = smoothed_scores(self.index.smoothed, Q, found)
        else:
            graph = self.index.graph
            scores = manifold_ranking(graph.indptr, graph.indices, graph.data, found, cosines)
        rows, _, carried = rerank(found, scores, k, carry=cosines)
        return rows, carried.astype(np.float32)

    def _class(self, queries: QuerySet, k: int, exclude: np.ndarray, allowed: np.ndarray | None, class_source: str):
        from graphret.query.classfilter import class_members, predict_classes

        store, codes, n = self.store, self.index.codes, self.index.n
        classes, voted = predict_classes(store, queries, self.rows, codes, exclude, class_source=class_source)
        found = np.empty((len(queries), k), np.int64)
        scores = np.empty((len(queries), k), np.float32)
        scanned = np.zeros(len(queries))
        for c in np.unique(classes):
            which = np.flatnonzero(classes == c)
            member = class_members(store, int(c))[self.rows]
            if allowed is not None:
                member &= allowed
            name = store.class_names[c] if 0 <= c < len(store.class_names) else str(c)
            keep = np.flatnonzero(member)
            local = np.full(n, -1, np.int64)
            local[keep] = np.arange(len(keep))
            ex = np.where(exclude[which] >= 0, local[np.maximum(exclude[which], 0)], -1)
            available = len(keep) - (1 if np.any(ex >= 0) else 0)
            if available < k:
                raise ModeUnavailable(
                    f"the predicted class {name!r} has only {max(available, 0)} archive items; use {{k={max(available, 1)}}} or less",
                    mode="class", param="k")
            f, s = exact_search(codes[keep], queries.codes[which], k, exclude=ex)
            found[which], scores[which] = keep[f], s
            scanned[which] = 1.0 if voted else len(keep) / n
        return found, scores, scanned, classes


@keyword_options(SearchConfig)
def search(store: Snapshot, q: Any, config: SearchConfig | None = None, **options: Any) -> SearchResult:
    """One search with a fresh :class:`Searcher` (keep a Searcher to search many times)."""
    config = SearchConfig.from_options(config, **options)
    return Searcher(store, **config.index_options()).search(q, config)


def search_store(store: Snapshot, searcher_for: Callable[..., Searcher], q: Any = None, *,
                 compose: str | dict[str, str] | None = None, kind: str | None = None,
                 config: SearchConfig | None = None) -> SearchResult:
    """A search as :meth:`graphret.Store.search` and ``graphret query`` run it: ``q`` (of
    ``kind``, detected when None) or a composite query ``compose`` of a decompose store (A's
    normal code beside B's abnormal code, in the ``both`` space), by the searcher
    ``searcher_for(space=, archive=, communities=)`` gives."""
    config = config or SearchConfig()
    if compose is not None:
        from graphret.query.compose import COMPOSITE_SPACE, composite_queries

        if q is not None:
            raise ParameterError("give a query {q} or a composite query {compose}, not both", param="compose")
        if config.space not in ("default", COMPOSITE_SPACE):
            raise ParameterError(f"a composite query searches the {COMPOSITE_SPACE} space, not {config.space!r}; "
                                 "leave {space} out", param="space")
        queries = composite_queries(store, compose)
        config = dataclasses.replace(config, space=COMPOSITE_SPACE)
        return searcher_for(**config.index_options()).search(queries, config)
    if q is None:
        raise ParameterError("give a query {q} (a split, ids, image files or codes) or a composite query {compose}", param="q")
    searcher = searcher_for(**config.index_options())
    return searcher.search(q if kind is None else searcher.queries(q, kind=kind), config)  # (None: the searcher detects it)
