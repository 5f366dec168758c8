"""Benchmark: multi-label retrieval on real NIH chest X-rays, beside Haq et al.'s CheXpert figures.

The set: ``../shared/data/nih-cxr1000`` (1,000 NIH ChestX-ray14 images, 64x64, 15 labels: the 14
findings and No Finding; 264 patients).  The CSV source finds the ``Patient ID`` group column,
so the seeded 70/30 split keeps each patient on one side: 693 archive (train) images, 307
queries (test), and the benchmark checks that no query shares a patient with the archive.

Stores (exact cosine 10-NN graph, CNM and Leiden, seed 0), one per encoder:

* ``pixels``: the untrained baseline (32x32 grey, PCA to 128);
* ``cnn-small``: the default encoder, the small CNN classifier trained with masked,
  class-weighted BCE for 60 megapixels of work on one thread (what ``graphret build-graph``
  does without options);
* ``cnn-small-480``: the same with 480 megapixels of work;
* ``cnn-resnet18``: a ResNet-18 classifier, 60 megapixels of work on one thread.

A work budget fixes the number of epochs from the set's size and image size, not the clock (the
epochs and seconds each took are reported).  Each store is benchmarked with
``graphret.evaluation.run_bench``: the test split as queries, K = 50, every mode (region with
CNM, region with Leiden, probe P = 4, class, flat) on the same codes in one run, exact duplicates
kept and counted, under both multi-label relevance rules: ``exact`` label-set match (Haq's
precision) and ``any`` shared positive label.  Reported: P@50, ACG@50, ACG_p@50, mAP@50 (AP
normalised by min(50, relevant archive items)), MRR, recall@50 against flat, the fraction
scanned, the group overlap, and Haq et al.'s CheXpert top-50 figures (ACG 0.65, ACG_p 0.37,
precision 73 %, all 13 labels) beside them.  Class mode is reported as unavailable, with the
reason, when a query's predicted finding has fewer than K archive items; the script also
counts the queries whose predicted finding would be large enough.

Writes ``nih.json`` (every figure, settings, training histories, the stores' manifests, machine
and date) and ``nih.md``, and per run ``<store>-<rule>/bench.json`` and ``bench.md``.

Usage::

    python benchmarks/bench_nih.py --out benchmarks/results/nih
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import common  # noqa: E402  (benchmarks/common.py: the repository on the path, shared helpers)

common.one_thread()  # before numpy loads BLAS: the machine is shared

import numpy as np  # noqa: E402

ROOT = common.ROOT
from shared_data import NIH_CSV as CSV  # noqa: E402
from graphret.metrics import auroc  # noqa: E402  (one home for the formula)
K = 50
RULES = ("exact", "any")

#: name -> (build options, what it is).
ENCODERS: dict[str, tuple[dict[str, Any], str]] = {
    "pixels": ({"encoder": "pixels"}, "pixel baseline (32x32 grey, PCA 128)"),
    "cnn-small": ({"encoder": "cnn", "backbone": "small", "work": 60.0, "threads": 1},
                  "small CNN (0.15 M parameters), 60 MP of work, 1 thread (the default encoder)"),
    "cnn-small-480": ({"encoder": "cnn", "backbone": "small", "work": 480.0, "threads": 1},
                      "small CNN, 480 MP of work, 1 thread"),
    "cnn-resnet18": ({"encoder": "cnn", "backbone": "resnet18", "work": 60.0, "threads": 1},
                     "ResNet-18, 60 MP of work, 1 thread"),
}
GRAPH_OPTIONS: dict[str, Any] = {"k": 10, "communities": ("cnm", "leiden"), "seed": 0}

#: Haq, Moradi & Wang, CheXpert, top-50 retrieval (the paper's figures; a different, larger set).
HAQ = {"ACG@50": 0.65, "ACG_p@50": 0.37, "P@50 (exact)": 0.73}


from common import log  # noqa: E402  (one home: benchmarks/common.py)


def _matches(path: Path, options: dict[str, Any]) -> bool:
    """True when the store at ``path`` was built from the NIH CSV with ``options``."""
    import graphret

    if not path.is_dir():
        return False

    try:
        manifest = graphret.open(path).manifest
    except Exception:  # noqa: BLE001 - a broken store is rebuilt
        return False
    params = manifest.get("params", {})
    wanted = {**GRAPH_OPTIONS, **options}
    same = all(params.get(key) == (list(value) if isinstance(value, tuple) else value) for key, value in wanted.items())
    return same and manifest.get("source", {}).get("description") == f"csv:{CSV}"


def build(name: str, stores: Path) -> Path:
    """The store of encoder ``name`` (reused when one built with the same options is there)."""
    import graphret

    options, _ = ENCODERS[name]
    path = stores / f"nih-{name}"
    if _matches(path, options):
        log(f"reusing {path}")
        return path
    t0 = time.perf_counter()
    graphret.build(str(CSV), path, overwrite=True, log=log, **GRAPH_OPTIONS, **options)
    log(f"built {path} in {time.perf_counter() - t0:.0f}s")
    return path


def training(store) -> dict[str, Any] | None:
    """Epochs, seconds and stopping reason of the store's trained encoder (None: untrained)."""
    manifest = store.manifest
    history = manifest.get("encoder", {}).get("config", {}).get("history")
    if not history:
        return None
    epochs = history.get("epochs") or []
    return {"epochs": len(epochs), "fit_seconds": manifest.get("build", {}).get("seconds", {}).get("fit_encoder"),
            "best_epoch": history.get("best_epoch"), "stopped": history.get("stopped"),
            "work_megapixels": manifest.get("params", {}).get("work"),
            "threads": manifest.get("params", {}).get("threads")}


def classifier_auroc(snapshot) -> dict[str, Any] | None:
    """The classifier's per-finding AUROC on the test split (its stored probabilities)."""
    if "probabilities" not in snapshot.items.schema.names:
        return None
    rows = np.flatnonzero(snapshot.splits.astype(str) == "test")
    probs = np.asarray(snapshot.items.column("probabilities").to_pylist(), np.float64)[rows]
    labels = snapshot.labels[rows]
    per = {}
    for j, name in enumerate(snapshot.class_names):
        known = labels[:, j] >= 0
        per[name] = auroc(probs[known, j], labels[known, j] == 1)
    values = [v for v in per.values() if v is not None]
    return {"mean": float(np.mean(values)) if values else None, "per_finding": per}


def class_coverage(snapshot, k: int) -> dict[str, Any]:
    """How many queries class mode could answer at ``k``: the queries whose predicted finding
    (the classifier's, else the 10-NN vote's) has at least ``k`` archive items."""
    from graphret.query.classfilter import has_classifier, predict_classes
    from graphret.query.queries import as_queries

    rows = np.flatnonzero(snapshot.splits.astype(str) == "test")
    archive = snapshot.archive_rows()
    queries = as_queries(snapshot, rows, kind="rows")
    source = "classifier" if has_classifier(snapshot) else "knn"
    position = np.full(len(snapshot), -1, np.int64)
    position[archive] = np.arange(len(archive))
    predicted, _ = predict_classes(snapshot, queries, archive, snapshot.codes()[archive], position[rows], class_source=source)
    sizes = (snapshot.labels[archive] == 1).sum(axis=0)
    names = snapshot.class_names
    counts = {names[c]: int((predicted == c).sum()) for c in np.unique(predicted)}
    return {"class_source": source, "k": k, "queries": int(len(rows)),
            "answerable": int((sizes[predicted] >= k).sum()),
            "predicted": counts, "archive_positives": {names[c]: int(sizes[c]) for c in range(len(names))}}


def chance(snapshot, rule: str) -> dict[str, float]:
    """P@K, ACG@K and ACG_p@K expected from a random ranking of the archive (any K): each
    metric averaged over every archive item as a result, per query."""
    from graphret.metrics import acg_at_k, acg_p_at_k, multilabel_relevance

    rows = np.flatnonzero(snapshot.splits.astype(str) == "test")
    archive = snapshot.archive_rows()
    q = snapshot.labels[rows]
    every = np.broadcast_to(snapshot.labels[archive][None], (len(rows),) + snapshot.labels[archive].shape)
    return {f"P@{K}": float(multilabel_relevance(q, every, rule=rule).mean()),
            f"ACG@{K}": acg_at_k(q, every, len(archive)), f"ACG_p@{K}": acg_p_at_k(q, every, len(archive))}


def bench(name: str, path: Path, out: Path, rule: str) -> dict[str, Any]:
    """run_bench on one store under one relevance rule; its JSON and Markdown in a sub-folder."""
    from graphret.evaluation import run_bench
    from graphret.evaluation.report import header_lines, markdown_table, to_json
    from graphret.store import open_store

    snapshot = open_store(path)
    log(f"bench {name} ({rule})")
    result = run_bench(snapshot, split="test", k=K, relevance_rule=rule, duplicates="keep", n_single=100, reps=2, log=log)
    folder = out / f"{name}-{rule}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(to_json(result))
    title = f"NIH ChestX-ray14 sample, {ENCODERS[name][1]}, relevance {rule}"
    (folder / "bench.md").write_text("\n".join([f"# {title}", ""] + [f"- {line}" for line in header_lines(result)]
                                               + ["", markdown_table(result), ""]))
    return {"encoder": name, "rule": rule, "relevance": result.settings["relevance"], "settings": result.settings,
            "rows": result.rows, "skipped": result.skipped, "notes": result.notes, "duplicates": result.duplicates,
            "folder": folder.name}


def f3(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.3f}"


def markdown(report: dict[str, Any]) -> str:
    """nih.md from the report."""
    m = report["machine"]
    first = report["runs"][0]["settings"]
    g = first["groups"]
    lines = [
        "# Multi-label retrieval on real NIH chest X-rays (nih-cxr1000)",
        "",
        f"Run {m['date_utc']} on {m['cpu']} ({m['cores']} cores, shared with other jobs; load average at start "
        f"{m['load_average']}). Command: `{report['command']}`.",
        "",
        f"Set: 1,000 NIH ChestX-ray14 images (64x64), 15 labels (14 findings + No Finding), 264 patients; seeded 70/30 "
        f"split by patient ({g['group_by']}): {first['archive_items']} archive (train) images, {first['queries']} queries "
        f"(test). Group overlap: **{g['queries_sharing']} of {g['queries']} queries share a patient with the archive** "
        f"({g['query_groups']} query patients, {g['archive_groups']} archive patients, {g['groups_shared']} on both sides). "
        f"K = {K}; every mode on the same codes in one run; exact duplicates kept "
        f"({report['runs'][0]['duplicates']['queries_with_duplicates']} queries have one). Stores: exact cosine 10-NN graph, "
        "CNM and Leiden (seed 0). mAP@50 divides each query's AP by min(50, relevant archive items). ACG@50 and ACG_p@50 "
        "do not depend on the relevance rule (they are the same in both tables).",
        "",
        "Haq et al.'s figures are for CheXpert (224k images, a different set and labeller, top-50), shown for scale: "
        f"ACG {HAQ['ACG@50']}, ACG_p {HAQ['ACG_p@50']}, precision {HAQ['P@50 (exact)']:.0%} (all 13 labels, exact label-set match).",
        "",
        "## Encoders and training",
        "",
        "| store | encoder | training | epochs (best) | fit s | classifier mean AUROC (test) | communities cnm / leiden |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for name, info in report["stores"].items():
        t = info.get("training") or {}
        auc = (info.get("auroc") or {}).get("mean")
        train = (f"{t['work_megapixels']:g} MP of work, {t['threads']} thread(s), masked weighted BCE" if t else "none")
        lines.append(f"| {name} | {ENCODERS[name][1]} | {train} | {t.get('epochs', '')} ({t.get('best_epoch', '')}) | "
                     f"{t.get('fit_seconds', '') or ''} | {f3(auc)} | {info['communities'].get('cnm')} / "
                     f"{info['communities'].get('leiden')} |" if t else
                     f"| {name} | {ENCODERS[name][1]} | none | | | | {info['communities'].get('cnm')} / {info['communities'].get('leiden')} |")
    for rule in RULES:
        runs = [r for r in report["runs"] if r["rule"] == rule]
        if not runs:
            continue
        lines += ["", f"## Relevance: {runs[0]['relevance']} ({rule})", "",
                  "| store | mode | P@50 | ACG@50 | ACG_p@50 | mAP@50 | MRR | nDCG@50 | recall@50 vs flat | scanned | x flat q/s |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for run in runs:
            for row in run["rows"]:
                lines.append(f"| {run['encoder']} | {row['mode']} | {f3(row[f'P@{K}'])} | {f3(row.get(f'ACG@{K}'))} | "
                             f"{f3(row.get(f'ACG_p@{K}'))} | {f3(row[f'mAP@{K}'])} | {f3(row['MRR'])} | {f3(row.get(f'nDCG@{K}'))} | "
                             f"{f3(row.get(f'recall@{K} vs flat'))} | {f3(row['scanned'])} | {f3(row.get('x flat q/s batched'))} |")
            for skipped in run["skipped"]:
                lines.append(f"| {run['encoder']} | {skipped['mode']} | unavailable: {skipped['reason']} |" + " |" * 8)
        c = report.get("chance", {}).get(rule)
        if c:
            lines.append(f"| *chance (random ranking)* | | {f3(c[f'P@{K}'])} | {f3(c[f'ACG@{K}'])} | {f3(c[f'ACG_p@{K}'])} | | | | | | |")
        haq_p = f"{HAQ['P@50 (exact)']:.3f}" if rule == "exact" else ""
        lines.append(f"| *Haq et al., CheXpert* | *region* | {haq_p} | {HAQ['ACG@50']:.3f} | {HAQ['ACG_p@50']:.3f} | | | | | | |")
    lines += ["", "## Class mode at K = 50", "",
              "Class mode searches the archive items positive for the query's predicted finding; a finding with fewer than "
              "50 archive items cannot give 50 results, so the mode is reported unavailable for the run (the other modes run).",
              "", "| store | class source | queries answerable (predicted finding has >= 50 archive items) | predicted findings |",
              "|---|---|---:|---|"]
    for name, info in report["stores"].items():
        c = info["class_coverage"]
        top = ", ".join(f"{k} {v}" for k, v in sorted(c["predicted"].items(), key=lambda kv: -kv[1]))
        lines.append(f"| {name} | {c['class_source']} | {c['answerable']} of {c['queries']} | {top} |")
    sizes = next(iter(report["stores"].values()))["class_coverage"]["archive_positives"]
    lines += ["", "Archive positives per finding: " + ", ".join(f"{k} {v}" for k, v in sizes.items()) + ".", ""]
    lines += ["## Reading the figures", ""] + [f"- {n}" for n in reading(report)]
    if report.get("not_run"):
        lines += ["", "Not run: " + "; ".join(report["not_run"]) + "."]
    return "\n".join(lines) + "\n"


def reading(report: dict[str, Any]) -> list[str]:
    """What the tables say, with the figures taken from the report."""
    def flat(encoder: str, rule: str) -> dict[str, Any] | None:
        run = next((r for r in report["runs"] if r["encoder"] == encoder and r["rule"] == rule), None)
        return None if run is None else next((row for row in run["rows"] if row["mode"] == "flat"), None)

    out = []
    best = max((e for e in report["stores"] if flat(e, "exact")), key=lambda e: flat(e, "exact")[f"P@{K}"], default=None)
    c = report.get("chance", {})
    if best is not None and c:
        b = flat(best, "exact")
        out.append(f"Best flat P@50 (exact): {best} {b[f'P@{K}']:.3f}, against {c['exact'][f'P@{K}']:.3f} for a random ranking "
                   f"and {HAQ['P@50 (exact)']:.2f} in Haq et al. on CheXpert; ACG_p@50 {b[f'ACG_p@{K}']:.3f} against "
                   f"{c['exact'][f'ACG_p@{K}']:.3f} at random and {HAQ['ACG_p@50']:.2f} in Haq et al.")
    pix = flat("pixels", "exact")
    if pix is not None:
        gains = {e: flat(e, "exact")[f"P@{K}"] - pix[f"P@{K}"] for e in report["stores"] if e != "pixels" and flat(e, "exact")}
        out.append("Trained encoders against the pixel baseline, flat P@50 (exact): "
                   + ", ".join(f"{e} {g:+.3f}" for e, g in gains.items())
                   + ". On 693 training images at 64x64 the classifiers reach a mean test AUROC of "
                   + ", ".join(f"{e} {f3((report['stores'][e].get('auroc') or {}).get('mean'))}" for e in gains)
                   + "; with classifiers this weak the trained codes retrieve about as well as the pixels do.")
    out += [
        "ACG@50 here is the GUIDE's definition: agreement over all 15 labels, negatives included. With 1 to 3 positives "
        "per image most labels agree whatever is retrieved, so it sits near 0.88 even at random; it is not comparable "
        "with Haq et al.'s 0.65. ACG_p@50 (the share of the query's positive findings a result has) and P@50 are the "
        "comparable figures, and Haq et al.'s are on a set 200 times larger (far more exact label-set matches to find), "
        "at 224 px rather than 64 px, with 13 labels rather than 15.",
        "Region growing (Haq's Algorithm 1) against flat: P@50 within a few hundredths of flat on every store while "
        "returning only about half of flat's top 50 (recall@50 vs flat), as on MedMNIST; on 693 archive images "
        "its cost per query is above flat's (x flat q/s < 1).",
        "Class mode is unavailable at K = 50 on every store: some query's predicted finding has fewer than 50 positive "
        "archive items (the class-mode table says which and for how many queries). The weighted BCE raises the rare "
        "findings' probabilities, so the classifiers' top finding is often a rare one (Fibrosis, Hernia), where the "
        "kNN vote of the pixel store mostly says No Finding. The benchmark reports the mode with its reason and runs "
        "the others; it does not abort.",
        "No query shares a patient with the archive (the split is by Patient ID), so no figure is inflated by the same "
        "patient's other images.",
    ]
    return out


def main() -> None:
    from graphret.evaluation.bench import machine_info
    from graphret.evaluation.report import _clean
    from graphret.store import open_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", nargs="*", default=list(ENCODERS), choices=list(ENCODERS))
    parser.add_argument("--stores", default="/tmp/graphret-bench/nih")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "nih"))
    parser.add_argument("--summary-only", action="store_true", help="rewrite nih.md from OUT/nih.json, run nothing")
    args = parser.parse_args()
    out = Path(args.out)
    if args.summary_only:
        (out / "nih.md").write_text(markdown(json.loads((out / "nih.json").read_text())))
        return
    if not CSV.is_file():
        raise SystemExit(f"{CSV} not found (set GRAPHRET_SHARED_DATA)")
    out.mkdir(parents=True, exist_ok=True)
    stores = Path(args.stores)
    stores.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": machine_info(), "command": "python benchmarks/bench_nih.py " + " ".join(sys.argv[1:]),
                              "k": K, "haq_chexpert": HAQ, "graph": GRAPH_OPTIONS, "stores": {}, "runs": [], "not_run": []}
    first = open_store(build(args.encoders[0], stores))  # the labels and the split are the same in every store
    report["chance"] = {rule: chance(first, rule) for rule in RULES}
    for name in args.encoders:
        try:
            path = build(name, stores)
            snapshot = open_store(path)
            report["stores"][name] = {
                "path": str(path), "options": ENCODERS[name][0], "description": ENCODERS[name][1],
                "encoder": snapshot.manifest["encoder"]["description"], "training": training(snapshot),
                "auroc": classifier_auroc(snapshot), "class_coverage": class_coverage(snapshot, K),
                "communities": {m: v.get("n_communities") for m, v in snapshot.manifest.get("communities", {}).items()},
                "manifest": snapshot.manifest,
            }
            for rule in RULES:
                report["runs"].append(bench(name, path, out, rule))
        except Exception as error:  # noqa: BLE001 (record and go on to the next encoder)
            log(f"{name} failed: {error!r}")
            report["not_run"].append(f"{name}: failed ({error})")
        (out / "nih.json").write_text(json.dumps(_clean(report), indent=1) + "\n")
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    (out / "nih.json").write_text(json.dumps(_clean(report), indent=1) + "\n")
    (out / "nih.md").write_text(markdown(report))
    log(f"wrote {out / 'nih.md'}")


if __name__ == "__main__":
    main()
