"""The retrieval benchmark as a library: every query mode on the same codes, in one run.

``run_bench(store)`` takes the store's ``split`` (test by default) as queries against its
archive (train + val, or everything, plus added items) and runs each mode:

* ``region`` -- Haq's Algorithm 1, once per stored community method ("region (cnm)",
  "region (leiden)"); ``region:cnm`` / ``region:leiden`` pick one;
* ``graph`` -- the walk through the graph (exact cosines of what it reaches);
* ``probe`` -- exact top-K in the ``n_probe`` lists with the nearest centroids (the default
  community method's communities cut to a bounded size; ``probe:leiden`` picks one);
* ``class`` -- flat search inside the query's predicted class (Qayyum et al.): the encoder's
  classifier when the store has one, otherwise a kNN vote of the 10 nearest archive items,
  labelled "class (kNN vote)".  On a multi-label store the class is one finding: the archive
  items positive for the predicted finding;
* ``flat`` -- exact cosine top-K, the reference for recall@K.

A mode that cannot answer on this store (class mode with a predicted class smaller than K, no
classifier and no labels to vote with, no communities) is reported in ``skipped`` with the
reason, and every other mode still runs.

Quality per mode (GUIDE section 5): P@K, mAP@K (AP normalised by min(K, relevant items in the
archive)), mAP@K over retrieved relevant items, MRR, Acc@1, Acc@10, nDCG@K (graded
``1 - |g_q - g_i|/(G-1)`` on ordinal grades, binary otherwise), ACG@K and ACG_p@K (multi-label),
and the curves: precision@K for K = 1..``curve_k`` and precision-recall.  Cost per mode, side by
side in the same run: queries/s batched (all queries in one call, the fastest of ``reps``
calls) and one at a time (the first ``n_single`` queries, a call each), p50/p95 latency of
those calls, the fraction of the archive scanned, and recall@K against flat.

Results are tidy: one record ``(mode, metric, k, value)`` per figure (:attr:`BenchResult.metrics`),
with the wide one-row-per-mode view in :attr:`BenchResult.rows`.

Relevance: same class (multi-class); multi-label: ``"exact"`` label-set match (Haq's precision)
or ``"any"`` shared positive label.  Exact duplicates: items of the archive whose code is
byte-identical to a query's.  ``duplicates="keep"`` leaves them retrievable and reports how
many there are; ``"drop"`` excludes them from each query's results (searching K + d and
removing them) and from its count of relevant items.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from graphret.data.groups import group_overlap
from graphret.errors import GraphretError, InputError
from graphret.evaluation.machine import cpu_model
from graphret.metrics import (
    accuracy_at_k,
    acg_at_k,
    acg_p_at_k,
    fraction_scanned,
    graded_relevance,
    ideal_graded_relevance,
    latency_percentile,
    mean_average_precision,
    mean_reciprocal_rank,
    multilabel_relevance,
    ndcg_at_k,
    precision_at_k,
    precision_curve,
    precision_recall_curve,
    queries_per_second,
    recall_at_k,
    relevance,
)
from graphret.params import nested_update, param, validate
from graphret.query.classfilter import has_classifier
from graphret.query.queries import QuerySet, as_queries
from graphret.query.config import DEFAULT_PROBE
from graphret.query.searcher import Searcher
from graphret.store.read import Snapshot

#: region-gain: region mode in Haq's joining order (region ranks its region by cosine by default)
MODES = ("region", "region-gain", "graph", "probe", "class", "flat")
DEFAULT_MODES = ("region", "graph", "probe", "class", "flat")
RELEVANCE_RULES = ("exact", "any")
DUPLICATE_POLICIES = ("keep", "drop")
CURVE_K = 100


@dataclass(frozen=True)
class BenchConfig:
    """What ``graphret bench`` runs and how it counts."""

    split: str = param("test", help="The split whose items are the queries.")
    modes: str = param("region,graph,probe,class,flat",
                       help="Comma list of region, graph, probe, class, flat; region runs once per stored community method "
                            "(region:cnm / region:leiden pick one, probe:leiden switches probe's); region-gain: region "
                            "in Haq's joining order rather than by cosine.")
    k: int = param(50, min=1, label="K", help="K of P@K, mAP@K, nDCG@K, ACG@K and recall@K.")
    relevance_rule: Literal["exact", "any"] = param(
        "exact", flag="--relevance",
        help="Multi-label relevance: exact label-set match, or any shared positive label (multi-class: same class).")
    duplicates: Literal["keep", "drop"] = param(
        "keep", help="Archive items whose code is identical to the query's: keep them retrievable (and count them) or drop them.")
    n_queries: int | None = param(None, min=1, flag="--queries", help="Use a seeded sample of N queries [the whole split].")
    n_single: int = param(100, min=0, flag="--single", help="Queries timed one at a time (latency p50/p95).")
    n_probe: int = param(DEFAULT_PROBE, min=1, flag="--probe", help="Lists probe mode searches (P).")
    ordinal: bool | None = param(None, help="Treat classes as ordinal grades for graded nDCG [when the class names are 0..G-1, G >= 3].")
    seed: int = param(0, min=0, help="Seed of the query sample.")
    reps: int = param(2, min=1, cli=False, help="Batched runs per mode (the fastest counts).")
    curve_k: int = param(CURVE_K, min=1, cli=False, help="Depth of the precision curves.")
    space: str = param("default", cli=False, help="Code space searched.")

    def __post_init__(self) -> None:
        validate(self)


@dataclass
class ModeSpec:
    name: str  # shown, e.g. "region (leiden)"
    mode: str  # search() mode
    communities: str | None = None
    class_source: str | None = None
    region_order: str | None = None  # region mode: cosine (None) or gain


@dataclass
class BenchResult:
    """The outcome of :func:`run_bench`: one record per (mode, metric, k) in ``metrics``, the
    curves per mode, what was skipped and why, and the run's settings, store manifest and
    machine."""

    settings: dict[str, Any]
    metrics: list[dict[str, Any]]
    curves: dict[str, dict[str, list[float]]]
    skipped: list[dict[str, str]]
    duplicates: dict[str, Any]
    store_info: dict[str, Any]
    manifest: dict[str, Any]
    machine: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    query_rows: np.ndarray | None = field(default=None, repr=False)  # store rows of the queries
    found: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # mode -> (q, K) store rows
    mode_info: dict[str, dict[str, Any]] = field(default_factory=dict)  # mode -> communities, class source

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One wide row per mode: ``mode``, its settings, then each metric as ``P@50`` etc."""
        out: dict[str, dict[str, Any]] = {}
        for record in self.metrics:
            row = out.setdefault(record["mode"], {"mode": record["mode"], **self.mode_info.get(record["mode"], {})})
            row[metric_label(record["metric"], record["k"])] = record["value"]
        return list(out.values())

    def table(self):
        """The per-mode table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def tidy(self):
        """The tidy records as a pandas DataFrame (columns mode, metric, k, value)."""
        import pandas as pd

        return pd.DataFrame(self.metrics, columns=["mode", "metric", "k", "value"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "machine": self.machine,
            "store": self.store_info,
            "duplicates": self.duplicates,
            "metrics": self.metrics,
            "rows": self.rows,
            "skipped": self.skipped,
            "notes": self.notes,
            "curves": self.curves,
            "manifest": self.manifest,
        }

    def row(self, name: str) -> dict[str, Any]:
        for r in self.rows:
            if r["mode"] == name:
                return r
        raise KeyError(name)


def metric_label(metric: str, k: int | None) -> str:
    """A tidy metric's column name: ``P@K`` with k = 50 -> ``P@50``."""
    return metric.replace("@K", f"@{k}") if k is not None else metric


def machine_info() -> dict[str, Any]:
    cpu = cpu_model()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": load,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


# -- modes ---------------------------------------------------------------------------------------
def parse_modes(store: Snapshot, modes) -> list[ModeSpec]:
    """Mode names (a list or a comma-separated string) -> the runs, expanded for the store."""
    if isinstance(modes, str):
        modes = [m.strip() for m in modes.split(",") if m.strip()]
    modes = list(modes or DEFAULT_MODES)
    if not modes:
        raise InputError("no modes given; choose from region, probe, class, flat", param="modes")
    specs: list[ModeSpec] = []
    methods = list(store.community_methods)
    for token in modes:
        mode, _, method = token.partition(":")
        if mode not in MODES:
            raise InputError(f"unknown mode {token!r}; choose from {', '.join(MODES)} (region:cnm, region:leiden, probe:leiden pick the communities)", param="modes")
        if method and mode not in ("region", "region-gain", "probe"):
            raise InputError(f"mode {mode} takes no community method ({token!r}); use region:METHOD or probe:METHOD", param="modes")
        if method and method not in methods:
            raise InputError(f"the store has no {method!r} communities; it has {', '.join(methods) or 'none'}", param="modes")
        if mode in ("region", "region-gain", "probe") and not methods:
            specs.append(ModeSpec(mode, mode.split("-")[0]))  # reported as skipped: the store has no communities
        elif mode == "region":
            for m in [method] if method else methods:
                specs.append(ModeSpec(f"region ({m})", "region", communities=m))
        elif mode == "region-gain":
            for m in [method] if method else methods:
                specs.append(ModeSpec(f"region ({m}, gain order)", "region", communities=m, region_order="gain"))
        elif mode == "probe":
            m = method or ("cnm" if "cnm" in methods else methods[0])
            specs.append(ModeSpec(f"probe ({m})", "probe", communities=m))
        elif mode == "graph":
            specs.append(ModeSpec("graph", "graph"))
        elif mode == "class":
            if has_classifier(store):
                specs.append(ModeSpec("class (classifier)", "class", class_source="classifier"))
            else:
                specs.append(ModeSpec("class (kNN vote)", "class", class_source="knn"))
        else:
            specs.append(ModeSpec("flat", "flat"))
    seen, unique = set(), []
    for s in specs:
        if s.name not in seen:
            seen.add(s.name)
            unique.append(s)
    return unique


# -- duplicates ----------------------------------------------------------------------------------
def exact_duplicates(codes: np.ndarray, query_rows: np.ndarray, archive_rows: np.ndarray) -> list[np.ndarray]:
    """For each query row, the archive rows (other than itself) whose code is byte-identical."""
    codes = np.ascontiguousarray(codes)
    groups: dict[bytes, list[int]] = {}
    for r in archive_rows:
        groups.setdefault(codes[r].tobytes(), []).append(int(r))
    out = []
    for q in query_rows:
        same = groups.get(codes[q].tobytes(), [])
        out.append(np.array([r for r in same if r != q], np.int64))
    return out


# -- the plan: queries, archive, relevant counts -------------------------------------------------
@dataclass
class _Plan:
    """Everything fixed before the modes run."""

    q_rows: np.ndarray
    total_split: int
    queries: QuerySet
    archive: np.ndarray
    dups: list[np.ndarray]
    extra: int  # K + extra searched when duplicates are dropped
    depth: int  # depth of the curves
    n_rel: np.ndarray
    grades: int | None


def _ordinal(store: Snapshot, ordinal: bool | None) -> int | None:
    """G (number of grades) when the store's classes are ordinal grades, else None."""
    names = store.class_names
    if ordinal is False or store.task != "multiclass" or len(names) < 3:
        return None
    if ordinal:
        return len(names)
    return len(names) if names == [str(i) for i in range(len(names))] else None


def _relevance(store: Snapshot, q_rows: np.ndarray, found: np.ndarray, rule: str) -> np.ndarray:
    labels = store.labels
    if store.task == "multiclass":
        return relevance(labels[q_rows], labels[found])
    return multilabel_relevance(labels[q_rows], labels[found], rule=rule)


def _relevant_counts(store: Snapshot, q_rows: np.ndarray, archive: np.ndarray, dups: list[np.ndarray], cfg: BenchConfig) -> np.ndarray:
    """Relevant archive items per query (for AP normalisation and recall curves)."""
    labels = store.labels
    arch_labels = labels[archive]
    in_archive = np.isin(q_rows, archive)
    if store.task == "multiclass":
        counts = np.bincount(arch_labels[arch_labels >= 0], minlength=len(store.class_names))
        n_rel = counts[labels[q_rows]] - in_archive.astype(int)
    else:
        ql = labels[q_rows] == 1
        al = arch_labels == 1
        if cfg.relevance_rule == "exact":
            n_rel = np.array([(al == row).all(axis=1).sum() for row in ql]) - in_archive.astype(int)
        else:
            n_rel = np.array([(al & row).any(axis=1).sum() for row in ql]) - (in_archive & ql.any(axis=1)).astype(int)
    if cfg.duplicates == "drop":
        for i, d in enumerate(dups):
            if len(d):
                n_rel[i] -= int(_relevance(store, q_rows[i: i + 1], d[None, :], cfg.relevance_rule).sum())
    return np.maximum(n_rel, 0)


def _plan(store: Snapshot, cfg: BenchConfig) -> _Plan:
    if store.task not in ("multiclass", "multilabel"):
        raise InputError("the benchmark needs labelled items (multi-class or multi-label); this store has none")
    present = sorted(set(map(str, store.splits)))
    if cfg.split not in present:
        raise InputError(f"the store has no split {cfg.split!r}; choose from {', '.join(present)} for {{split}}", param="split")
    labels = store.labels
    q_rows = np.flatnonzero(store.splits.astype(str) == cfg.split)
    labelled = labels[q_rows] >= 0 if store.task == "multiclass" else np.ones(len(q_rows), bool)
    q_rows = q_rows[labelled]
    if len(q_rows) == 0:
        raise InputError(f"split {cfg.split!r} has no labelled items to use as queries", param="split")
    total_split = int(len(q_rows))
    if cfg.n_queries is not None and cfg.n_queries < len(q_rows):
        q_rows = np.sort(np.random.default_rng(cfg.seed).choice(q_rows, cfg.n_queries, replace=False))
    archive = store.archive_rows()
    dups = exact_duplicates(store.codes(cfg.space), q_rows, archive)
    n_dup = np.array([len(d) for d in dups])
    available = len(archive) - np.isin(q_rows, archive).astype(int) - (n_dup if cfg.duplicates == "drop" else 0)
    if int(available.min()) < cfg.k:
        raise InputError(f"K = {cfg.k} is more than the {int(available.min())} archive items a query can retrieve; "
                         f"use {{k={max(int(available.min()), 1)}}} or less", param="k")
    return _Plan(
        q_rows=q_rows,
        total_split=total_split,
        queries=as_queries(store, q_rows, space=cfg.space, kind="rows"),
        archive=archive,
        dups=dups,
        extra=int(n_dup.max()) if cfg.duplicates == "drop" and len(n_dup) else 0,
        depth=min(max(cfg.k, cfg.curve_k), int(available.min())),
        n_rel=_relevant_counts(store, q_rows, archive, dups, cfg),
        grades=_ordinal(store, cfg.ordinal),
    )


# -- one mode ------------------------------------------------------------------------------------
def _run(searchers: dict, store: Snapshot, spec: ModeSpec, plan: _Plan, queries: QuerySet, k: int, cfg: BenchConfig):
    """(store rows (q, k), scanned fraction) of ``spec`` for ``queries``, duplicates dropped
    when the policy says so."""
    key = spec.communities
    if key not in searchers:
        searchers[key] = Searcher(store, space=cfg.space, communities=spec.communities)
    options = {"n_probe": cfg.n_probe} if spec.mode == "probe" else {}
    if spec.region_order:
        options["region_order"] = spec.region_order
    result = searchers[key].search(queries, k=k + plan.extra, mode=spec.mode, class_source=spec.class_source, **options)
    rows, scanned = result.rows, result.scanned_fraction
    if plan.extra:
        keep = np.empty((len(rows), k), np.int64)
        for i in range(len(rows)):
            qi = np.searchsorted(plan.q_rows, queries.rows[i])
            d = plan.dups[qi] if 0 <= qi < len(plan.q_rows) and plan.q_rows[qi] == queries.rows[i] else np.zeros(0, np.int64)
            r = rows[i][~np.isin(rows[i], d)] if len(d) else rows[i]
            keep[i] = r[:k]
        rows = keep
    return rows, scanned


def _timed(run, plan: _Plan, cfg: BenchConfig, n_single: int):
    """(found, scanned, best batched seconds, one-at-a-time latencies) of a mode."""
    run(plan.queries.part(slice(0, min(2, len(plan.q_rows)))), cfg.k)  # warm-up (index layout, numba), not timed
    best = np.inf
    for _ in range(max(1, cfg.reps)):
        t0 = time.perf_counter()
        found, scanned = run(plan.queries, cfg.k)
        best = min(best, time.perf_counter() - t0)
    latencies = np.empty(n_single)
    for i in range(n_single):
        t0 = time.perf_counter()
        run(plan.queries.part(slice(i, i + 1)), cfg.k)
        latencies[i] = time.perf_counter() - t0
    return found, scanned, best, latencies


def _quality(store: Snapshot, plan: _Plan, found: np.ndarray, cfg: BenchConfig) -> list[tuple[str, int | None, float]]:
    """(metric, k, value) of the quality metrics of one mode's results."""
    k, labels, q_rows, n_rel = cfg.k, store.labels, plan.q_rows, plan.n_rel
    rel_k = _relevance(store, q_rows, found, cfg.relevance_rule)
    out = [
        ("P@K", k, precision_at_k(rel_k, k)),
        ("mAP@K", k, mean_average_precision(rel_k, k, n_relevant=n_rel)),
        ("mAP@K (retrieved)", k, mean_average_precision(rel_k, k)),
        ("MRR", None, mean_reciprocal_rank(rel_k)),
    ]
    binary_ideal = (np.arange(k)[None, :] < np.minimum(n_rel, k)[:, None]).astype(float)
    if store.task == "multiclass":
        res_labels = labels[found]
        out += [("Acc@K", 1, accuracy_at_k(labels[q_rows], res_labels, 1)),
                ("Acc@K", min(10, k), accuracy_at_k(labels[q_rows], res_labels, min(10, k)))]
        if plan.grades:
            grel = graded_relevance(labels[q_rows], res_labels, plan.grades)
            ideal = ideal_graded_relevance(labels[q_rows], labels[plan.archive], plan.grades, k)
            out.append(("nDCG@K (graded)", k, ndcg_at_k(grel, k, ideal=ideal)))
        else:
            out.append(("nDCG@K", k, ndcg_at_k(rel_k, k, ideal=binary_ideal)))
    else:
        out += [("ACG@K", k, acg_at_k(labels[q_rows], labels[found], k)),
                ("ACG_p@K", k, acg_p_at_k(labels[q_rows], labels[found], k)),
                ("nDCG@K", k, ndcg_at_k(rel_k, k, ideal=binary_ideal))]
    return out


def _curves(store: Snapshot, plan: _Plan, deep: np.ndarray, cfg: BenchConfig) -> dict[str, list[float]]:
    rel = _relevance(store, plan.q_rows, deep, cfg.relevance_rule)
    d = deep.shape[1]
    recall, precision = precision_recall_curve(rel, np.minimum(plan.n_rel, d), d)
    return {
        "precision_at_k": [round(float(x), 5) for x in precision_curve(rel, d)],
        "pr_recall": [round(float(x), 5) for x in recall],
        "pr_precision": [round(float(x), 5) for x in precision],
    }


def _settings(store: Snapshot, plan: _Plan, cfg: BenchConfig, n_single: int) -> dict[str, Any]:
    manifest = store.manifest
    relevance_text = ("same class" if store.task == "multiclass" else
                      "exact label-set match" if cfg.relevance_rule == "exact" else "at least one shared positive label")
    return {
        "store": str(store.path),
        "split": cfg.split,
        "queries": int(len(plan.q_rows)),
        "queries_in_split": plan.total_split,
        "sampled": bool(cfg.n_queries is not None and cfg.n_queries < plan.total_split),
        "seed": cfg.seed,
        "archive": "+".join(store.default_archive),
        "archive_items": int(len(plan.archive)),
        "k": int(cfg.k),
        "curve_k": int(plan.depth),
        "relevance": relevance_text,
        "graded_relevance": f"1 - |g_q - g_i| / (G - 1), G = {plan.grades}" if plan.grades else None,
        "duplicates": cfg.duplicates,
        "n_probe": int(cfg.n_probe),
        "one_at_a_time_queries": int(n_single),
        "batched_reps": int(cfg.reps),
        "space": cfg.space,
        "encoder": manifest.get("encoder", {}).get("description") or manifest.get("encoder", {}).get("name"),
        "task": store.task,
        "groups": None if store.groups is None else {
            "group_by": manifest.get("source", {}).get("group_by"),
            **group_overlap(store.groups, plan.q_rows, plan.archive).to_json()},
        "config": asdict(cfg),
    }


def run_bench(store: Snapshot, config: BenchConfig | None = None, *, log=lambda _: None, **options: Any) -> BenchResult:
    """Run ``config.split`` as queries against the store's archive in every mode (see the
    module docstring); ``options`` are :class:`BenchConfig` fields (``k``, ``modes``,
    ``relevance_rule``, ``n_queries``...)."""
    cfg = nested_update(config or BenchConfig(), options)
    specs = parse_modes(store, cfg.modes)
    plan = _plan(store, cfg)
    searchers: dict = {}
    n_single = min(cfg.n_single, len(plan.q_rows))
    metrics: list[dict[str, Any]] = []
    notes: list[str] = []
    found_by_mode: dict[str, np.ndarray] = {}
    curves: dict[str, dict[str, list[float]]] = {}
    skipped: list[dict[str, str]] = []
    truth = None
    if not any(s.mode == "flat" for s in specs):  # recall's reference, not timed
        truth = _run(searchers, store, ModeSpec("flat", "flat"), plan, plan.queries, cfg.k, cfg)[0]
    for spec in sorted(specs, key=lambda s: s.mode != "flat"):  # flat first: recall's reference
        log(f"{spec.name}: {len(plan.q_rows)} queries, K = {cfg.k}")

        def run(queries: QuerySet, k: int, spec: ModeSpec = spec):
            return _run(searchers, store, spec, plan, queries, k, cfg)

        try:
            found, scanned, best, latencies = _timed(run, plan, cfg, n_single)
        except GraphretError as error:
            skipped.append({"mode": spec.name, "reason": str(error), "template": error.template})
            log(f"  skipped: {error}")
            continue
        deep = found
        if plan.depth > cfg.k:
            try:
                deep = run(plan.queries, plan.depth)[0]
            except GraphretError as error:  # e.g. a predicted class smaller than the curves' depth
                notes.append(f"{spec.name}: curves stop at K = {cfg.k} ({error})")
        if spec.mode == "flat":
            truth = found
        figures = _quality(store, plan, found, cfg) + [
            ("recall@K vs flat", cfg.k, recall_at_k(found, truth, cfg.k) if truth is not None else None),
            ("scanned", None, fraction_scanned(scanned)),
            ("q/s batched", None, queries_per_second(len(plan.q_rows), best)),
            ("q/s single", None, queries_per_second(n_single, latencies.sum()) if n_single else None),
            ("p50 ms", None, latency_percentile(latencies, 50) * 1e3 if n_single else None),
            ("p95 ms", None, latency_percentile(latencies, 95) * 1e3 if n_single else None),
        ]
        metrics += [{"mode": spec.name, "metric": m, "k": kk, "value": v} for m, kk, v in figures]
        found_by_mode[spec.name] = found
        curves[spec.name] = _curves(store, plan, deep, cfg)
        log("  " + ", ".join(f"{metric_label(m, kk)} {_fmt(v)}" for m, kk, v in figures))
    metrics += _relative_to_flat(metrics)
    order = {s.name: i for i, s in enumerate(specs)}
    metrics.sort(key=lambda r: order[r["mode"]])
    if any(s.class_source == "knn" for s in specs):
        notes.append("class mode: the store's encoder has no classifier, so each query's class is a vote of its 10 nearest archive items (class_source='knn'); that vote scans the whole archive")
    if plan.depth < cfg.curve_k:
        notes.append(f"curves stop at K = {plan.depth}: no query can retrieve more")
    dup_counts = np.array([len(d) for d in plan.dups])
    manifest = store.manifest
    return BenchResult(
        settings=_settings(store, plan, cfg, n_single),
        metrics=metrics,
        curves=curves,
        skipped=skipped,
        duplicates={"policy": cfg.duplicates, "criterion": "archive items whose code is byte-identical to the query's",
                    "queries_with_duplicates": int((dup_counts > 0).sum()), "duplicate_items": int(dup_counts.sum())},
        store_info={"source": manifest.get("source", {}).get("description"),
                    "encoder": manifest.get("encoder", {}).get("description") or manifest.get("encoder", {}).get("name"),
                    "items": len(store),
                    "communities": {m: v.get("n_communities") for m, v in manifest.get("communities", {}).items()}},
        manifest=manifest,
        machine=machine_info(),
        notes=notes,
        query_rows=plan.q_rows,
        found=found_by_mode,
        mode_info={s.name: {"communities": s.communities, "class_source": s.class_source} for s in specs},
    )


def _relative_to_flat(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each mode's queries/s as a multiple of flat's, measured in the same run."""
    flat = {r["metric"]: r["value"] for r in metrics if r["mode"] == "flat"}
    out = []
    for r in metrics:
        if r["metric"] in ("q/s batched", "q/s single") and r["value"] and flat.get(r["metric"]):
            out.append({"mode": r["mode"], "metric": f"x flat {r['metric']}", "k": None, "value": r["value"] / flat[r["metric"]]})
    return out


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}"
    return str(v)
