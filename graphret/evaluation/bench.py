"""The retrieval benchmark as a library: every query mode on the same codes, in one run.

``run_bench(store)`` takes the store's ``split`` (test by default) as queries against its
archive (train + val, or everything plus added items) and runs each mode:

* ``region`` -- Haq's Algorithm 1, once per stored community method ("region (cnm)",
  "region (leiden)"); ``region:cnm`` / ``region:leiden`` pick one;
* ``probe`` -- exact top-K in the ``n_probe`` communities with the nearest centroids (the
  default community method; ``probe:leiden`` picks one);
* ``class`` -- flat search inside the query's predicted class (Qayyum et al.): the encoder's
  classifier when the store has one, otherwise a kNN vote of the 10 nearest archive items,
  labelled "class (kNN vote)";
* ``flat`` -- exact cosine top-K, the reference for recall@K.

Quality per mode (GUIDE section 5): P@K, mAP@K (AP normalised by min(K, relevant items in the
archive)), mAP@K over retrieved relevant items, MRR, Acc@1, Acc@10, nDCG@K (graded
``1 - |g_q - g_i|/(G-1)`` on ordinal grades, binary otherwise), ACG@K and ACG_p@K (multi-label),
and the curves: precision@K for K = 1..``curve_k`` and precision-recall.  Cost per mode, side by
side in the same run: queries/s batched (all queries in one call, the fastest of ``reps``
calls) and one at a time (the first ``n_single`` queries, a ``search`` call each), p50/p95
latency of those calls, the fraction of the archive scanned, and recall@K against flat.

Relevance: same class (multi-class); multi-label: ``"exact"`` label-set match (Haq's precision)
or ``"any"`` shared positive label.  Exact duplicates: items of the archive whose code is
byte-identical to a query's (for a deterministic encoder, the same pixels give the same code).
``duplicates="keep"`` leaves them retrievable and reports how many there are; ``"drop"``
excludes them from each query's results (searching K + d and removing them) and from its count
of relevant items.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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

MODES = ("region", "probe", "class", "flat")
DEFAULT_MODES = ("region", "probe", "class", "flat")
RELEVANCE_RULES = ("exact", "any")
DUPLICATE_POLICIES = ("keep", "drop")
CURVE_K = 100


@dataclass
class ModeSpec:
    name: str  # shown, e.g. "region (leiden)"
    mode: str  # search() mode
    communities: str | None = None
    class_source: str | None = None


@dataclass
class BenchResult:
    """The outcome of :func:`run_bench`: one row per mode (``rows``), the curves per mode,
    what was skipped and why, and the run's settings, store manifest and machine."""

    settings: dict[str, Any]
    rows: list[dict[str, Any]]
    curves: dict[str, dict[str, list[float]]]
    skipped: list[dict[str, str]]
    duplicates: dict[str, Any]
    store_info: dict[str, Any]
    manifest: dict[str, Any]
    machine: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    query_rows: np.ndarray | None = field(default=None, repr=False)  # store rows of the queries
    found: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # mode -> (q, K) store rows

    def table(self):
        """The per-mode table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "machine": self.machine,
            "store": self.store_info,
            "duplicates": self.duplicates,
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
def parse_modes(store, modes) -> list[ModeSpec]:
    """Mode names (a list or a comma-separated string) -> the runs, expanded for the store."""
    if isinstance(modes, str):
        modes = [m.strip() for m in modes.split(",") if m.strip()]
    modes = list(modes or DEFAULT_MODES)
    if not modes:
        raise InputError("no modes given; choose from region, probe, class, flat")
    specs: list[ModeSpec] = []
    try:
        methods = list(store.community_methods)
    except Exception:  # noqa: BLE001 (a store built without communities)
        methods = []
    for token in modes:
        mode, _, method = token.partition(":")
        if mode not in MODES:
            raise InputError(f"unknown mode {token!r}; choose from {', '.join(MODES)} (region:cnm, region:leiden, probe:leiden pick the communities)")
        if method and mode not in ("region", "probe"):
            raise InputError(f"mode {mode} takes no community method ({token!r}); use region:METHOD or probe:METHOD")
        if method and method not in methods:
            raise InputError(f"the store has no {method!r} communities; it has {', '.join(methods) or 'none'}")
        if mode in ("region", "probe") and not methods:
            specs.append(ModeSpec(mode, mode))  # run() reports that the store has no communities
        elif mode == "region":
            for m in [method] if method else methods:
                specs.append(ModeSpec(f"region ({m})", "region", communities=m))
        elif mode == "probe":
            m = method or ("cnm" if "cnm" in methods else methods[0])
            specs.append(ModeSpec(f"probe ({m})", "probe", communities=m))
        elif mode == "class":
            from graphret.query.classfilter import has_classifier

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


# -- the run -------------------------------------------------------------------------------------
def _check_args(k, relevance_rule, duplicates, n_queries, n_single):
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"K must be at least 1, got {k} (use e.g. --k 50)")
    if relevance_rule not in RELEVANCE_RULES:
        raise InputError(f"unknown relevance rule {relevance_rule!r}; choose exact or any")
    if duplicates not in DUPLICATE_POLICIES:
        raise InputError(f"unknown duplicate policy {duplicates!r}; choose keep or drop")
    if n_queries is not None and n_queries < 1:
        raise InputError(f"the number of queries must be at least 1, got {n_queries}")
    if n_single < 0:
        raise InputError(f"the number of one-at-a-time queries must be >= 0, got {n_single}")


def _ordinal(store, ordinal: bool | None) -> int | None:
    """G (number of grades) when the store's classes are ordinal grades, else None."""
    names = store.class_names
    if ordinal is False or store.task != "multiclass" or len(names) < 3:
        return None
    if ordinal:
        return len(names)
    return len(names) if names == [str(i) for i in range(len(names))] else None


def run_bench(
    store,
    *,
    split: str = "test",
    modes=DEFAULT_MODES,
    k: int = 50,
    relevance_rule: str = "exact",
    duplicates: str = "keep",
    n_queries: int | None = None,
    seed: int = 0,
    n_single: int = 100,
    reps: int = 2,
    curve_k: int = CURVE_K,
    n_probe: int = 4,
    ordinal: bool | None = None,
    space: str = "default",
    log=lambda _: None,
) -> BenchResult:
    """Run the chosen ``split`` as queries against the store's archive in every mode (see the
    module docstring).  ``n_queries``: a seeded sample of that many queries (None: all);
    ``ordinal``: treat classes as ordinal grades for nDCG (None: when the class names are
    0..G-1 with G >= 3)."""
    from graphret.query.search import archive_rows as store_archive_rows
    from graphret.query.search import queries_from_rows, search

    _check_args(k, relevance_rule, duplicates, n_queries, n_single)
    if store.task not in ("multiclass", "multilabel"):
        raise InputError("the benchmark needs labelled items (multi-class or multi-label); this store has none")
    specs = parse_modes(store, modes)
    present = sorted(set(map(str, store.splits)))
    if split not in present:
        raise InputError(f"the store has no split {split!r}; choose from {', '.join(present)}")
    labels = store.labels
    q_rows = np.flatnonzero(store.splits.astype(str) == split)
    labelled = labels[q_rows] >= 0 if store.task == "multiclass" else np.ones(len(q_rows), bool)
    q_rows = q_rows[labelled]
    if len(q_rows) == 0:
        raise InputError(f"split {split!r} has no labelled items to use as queries")
    total_split = int(len(q_rows))
    if n_queries is not None and n_queries < len(q_rows):
        q_rows = np.sort(np.random.default_rng(seed).choice(q_rows, n_queries, replace=False))
    arch = store_archive_rows(store)
    arch_labels = labels[arch]
    n_archive = len(arch)
    codes = store.codes(space)
    dups = exact_duplicates(codes, q_rows, arch)
    n_dup = np.array([len(d) for d in dups])
    dup_info = {
        "policy": duplicates,
        "criterion": "archive items whose code is byte-identical to the query's",
        "queries_with_duplicates": int((n_dup > 0).sum()),
        "duplicate_items": int(n_dup.sum()),
    }
    extra = int(n_dup.max()) if duplicates == "drop" and len(n_dup) else 0
    depth = max(k, curve_k)
    # every query excludes itself when it is in the archive; count what each can retrieve
    in_archive = np.isin(q_rows, arch)
    available = n_archive - in_archive.astype(int) - (n_dup if duplicates == "drop" else 0)
    if int(available.min()) < k:
        raise InputError(f"K = {k} is more than the {int(available.min())} archive items a query can retrieve; use --k {max(int(available.min()), 1)} or less")
    depth = min(depth, int(available.min()))
    queries = queries_from_rows(store, q_rows, space=space)
    G = _ordinal(store, ordinal)

    # relevant archive items per query (for AP normalisation and recall curves)
    if store.task == "multiclass":
        counts = np.bincount(arch_labels[arch_labels >= 0], minlength=len(store.class_names))
        n_rel = counts[labels[q_rows]] - (in_archive & True).astype(int)
    else:
        ql = labels[q_rows] == 1
        al = arch_labels == 1
        if relevance_rule == "exact":
            n_rel = np.array([(al == row).all(axis=1).sum() for row in ql]) - in_archive.astype(int)
        else:
            n_rel = np.array([(al & row).any(axis=1).sum() for row in ql]) - (in_archive & ql.any(axis=1)).astype(int)
    if duplicates == "drop":
        for i, d in enumerate(dups):
            if len(d):
                n_rel[i] -= int(_relevance(store, labels, q_rows[i : i + 1], d[None, :], relevance_rule).sum())
    n_rel = np.maximum(n_rel, 0)

    def run(spec: ModeSpec, qs, kk: int, batch_size=None):
        extra_k = extra if duplicates == "drop" else 0
        result = search(store, qs, k=kk + extra_k, mode=spec.mode, space=space, n_probe=n_probe,
                        communities=spec.communities, class_source=spec.class_source or "classifier", batch_size=batch_size)
        rows, scanned = result.rows, result.scanned_fraction
        if extra_k:
            keep = np.empty((len(rows), kk), np.int64)
            for i in range(len(rows)):
                qi = np.searchsorted(q_rows, qs.rows[i])
                d = dups[qi] if 0 <= qi < len(q_rows) and q_rows[qi] == qs.rows[i] else np.zeros(0, np.int64)
                r = rows[i][~np.isin(rows[i], d)] if len(d) else rows[i]
                keep[i] = r[:kk]
            rows = keep
        return rows, scanned

    def slice_q(lo, hi):
        from graphret.query.search import _slice_queries

        return _slice_queries(queries, slice(lo, hi))

    results: list[dict[str, Any]] = []
    notes: list[str] = []
    found_by_mode: dict[str, np.ndarray] = {}
    curves: dict[str, dict[str, list[float]]] = {}
    skipped: list[dict[str, str]] = []
    flat_truth = None
    if not any(s.mode == "flat" for s in specs):  # recall's reference, not timed
        flat_truth = run(ModeSpec("flat", "flat"), queries, k)[0]
    ordered = sorted(specs, key=lambda s: s.mode != "flat")  # flat first: recall's reference
    n_single = min(n_single, len(q_rows))
    for spec in ordered:
        log(f"{spec.name}: {len(q_rows)} queries, K = {k}")
        try:
            run(spec, slice_q(0, min(2, len(q_rows))), k)  # warm-up (index layout, numba), not timed
        except GraphretError as error:
            skipped.append({"mode": spec.name, "reason": str(error)})
            log(f"  skipped: {error}")
            continue
        best = np.inf
        for _ in range(max(1, reps)):
            t0 = time.perf_counter()
            found, scanned = run(spec, queries, k)
            best = min(best, time.perf_counter() - t0)
        latencies = np.empty(n_single)
        for i in range(n_single):
            t0 = time.perf_counter()
            run(spec, slice_q(i, i + 1), k)
            latencies[i] = time.perf_counter() - t0
        deep = found
        if depth > k:
            try:
                deep = run(spec, queries, depth)[0]
            except InputError as error:  # e.g. a predicted class smaller than the curves' depth
                notes.append(f"{spec.name}: curves stop at K = {k} ({error})")
        rel_k = _relevance(store, labels, q_rows, found, relevance_rule)
        rel_d = _relevance(store, labels, q_rows, deep, relevance_rule)
        if spec.mode == "flat":
            flat_truth = found
        row: dict[str, Any] = {
            "mode": spec.name,
            "communities": spec.communities,
            "class_source": spec.class_source,
            f"P@{k}": precision_at_k(rel_k, k),
            f"mAP@{k}": mean_average_precision(rel_k, k, n_relevant=n_rel),
            f"mAP@{k} (retrieved)": mean_average_precision(rel_k, k),
            "MRR": mean_reciprocal_rank(rel_k),
        }
        if store.task == "multiclass":
            res_labels = labels[found]
            row["Acc@1"] = accuracy_at_k(labels[q_rows], res_labels, 1)
            row["Acc@10"] = accuracy_at_k(labels[q_rows], res_labels, min(10, k))
            if G:
                grel = graded_relevance(labels[q_rows], res_labels, G)
                row[f"nDCG@{k} (graded)"] = ndcg_at_k(grel, k, ideal=ideal_graded_relevance(labels[q_rows], arch_labels, G, k))
            else:
                ideal = (np.arange(k)[None, :] < np.minimum(n_rel, k)[:, None]).astype(float)
                row[f"nDCG@{k}"] = ndcg_at_k(rel_k, k, ideal=ideal)
        else:
            row[f"ACG@{k}"] = acg_at_k(labels[q_rows], labels[found], k)
            row[f"ACG_p@{k}"] = acg_p_at_k(labels[q_rows], labels[found], k)
            ideal = (np.arange(k)[None, :] < np.minimum(n_rel, k)[:, None]).astype(float)
            row[f"nDCG@{k}"] = ndcg_at_k(rel_k, k, ideal=ideal)
        row.update({
            f"recall@{k} vs flat": recall_at_k(found, flat_truth, k) if flat_truth is not None else None,
            "scanned": fraction_scanned(scanned),
            "q/s batched": queries_per_second(len(q_rows), best),
            "q/s single": queries_per_second(n_single, latencies.sum()) if n_single else None,
            "p50 ms": latency_percentile(latencies, 50) * 1e3 if n_single else None,
            "p95 ms": latency_percentile(latencies, 95) * 1e3 if n_single else None,
        })
        results.append(row)
        found_by_mode[spec.name] = found
        d = deep.shape[1]
        recall, precision = precision_recall_curve(rel_d, np.minimum(n_rel, d), d)
        curves[spec.name] = {
            "precision_at_k": [round(float(x), 5) for x in precision_curve(rel_d, d)],
            "pr_recall": [round(float(x), 5) for x in recall],
            "pr_precision": [round(float(x), 5) for x in precision],
        }
        log("  " + ", ".join(f"{key} {_fmt(v)}" for key, v in row.items() if key not in ("mode", "communities", "class_source")))
    flat_row = next((r for r in results if r["mode"] == "flat"), None)
    if flat_row:
        for row in results:
            row["x flat q/s batched"] = row["q/s batched"] / flat_row["q/s batched"]
            if row["q/s single"] and flat_row["q/s single"]:
                row["x flat q/s single"] = row["q/s single"] / flat_row["q/s single"]
    order = {s.name: i for i, s in enumerate(specs)}
    results.sort(key=lambda r: order[r["mode"]])
    if any(s.class_source == "knn" for s in specs):
        notes.append("class mode: the store's encoder has no classifier, so each query's class is a vote of its 10 nearest archive items (class_source='knn'); that vote scans the whole archive")
    if depth < curve_k:
        notes.append(f"curves stop at K = {depth}: no query can retrieve more")
    manifest = store.manifest
    settings = {
        "store": str(store.path),
        "split": split,
        "queries": int(len(q_rows)),
        "queries_in_split": total_split,
        "sampled": bool(n_queries is not None and n_queries < total_split),
        "seed": seed,
        "archive": "+".join(store.default_archive),
        "archive_items": int(n_archive),
        "k": int(k),
        "curve_k": int(depth),
        "relevance": _relevance_text(store, relevance_rule),
        "graded_relevance": f"1 - |g_q - g_i| / (G - 1), G = {G}" if G else None,
        "duplicates": duplicates,
        "n_probe": int(n_probe),
        "one_at_a_time_queries": int(n_single),
        "batched_reps": int(reps),
        "space": space,
        "encoder": manifest.get("encoder", {}).get("description") or manifest.get("encoder", {}).get("name"),
        "task": store.task,
    }
    info = {
        "source": manifest.get("source", {}).get("description"),
        "encoder": settings["encoder"],
        "items": len(store),
        "communities": {m: v.get("n_communities") for m, v in manifest.get("communities", {}).items()},
    }
    return BenchResult(settings=settings, rows=results, curves=curves, skipped=skipped, duplicates=dup_info,
                       store_info=info, manifest=manifest, machine=machine_info(), notes=notes,
                       query_rows=q_rows, found=found_by_mode)


def _relevance_text(store, rule: str) -> str:
    if store.task == "multiclass":
        return "same class"
    return "exact label-set match" if rule == "exact" else "at least one shared positive label"


def _relevance(store, labels, q_rows, found, rule) -> np.ndarray:
    if store.task == "multiclass":
        return relevance(labels[q_rows], labels[found])
    return multilabel_relevance(labels[q_rows], labels[found], rule=rule)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}"
    return str(v)
