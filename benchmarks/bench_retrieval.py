"""Benchmark: retrieval quality and cost of every query mode on the real sets (graphret issue 6).

For each set it builds a store (once; an existing store at the same path is reused) and runs
``graphret.evaluation.run_bench`` on it: the test split as queries against the archive (train +
val; a seeded 70/30 split where the set has none), every mode -- region with CNM, region with
Leiden, probe (P = 4, CNM), class (the CNN's classifier, or a kNN vote for the pixel baseline),
flat -- on the same codes in one run, K = 50, exact duplicates kept and counted.

Sets: BreastMNIST, PneumoniaMNIST, RetinaMNIST (ordinal: graded nDCG), the PBC blood-cell set,
MedNIST (both: seeded 70/30 split), each with the pixel baseline (32x32 grey, PCA 128) and,
where ``--cnn`` names it, the trained CNN encoder (ResNet-18 at the set's size, its training capped
by ``--cnn-time`` seconds); and the embedded demo set (multi-label) with CheXpert-style metrics
(ACG@K, ACG_p@K) under both relevance rules.  Stores: CNM with the Wakita-Tsurumi size
heuristic and multilevel refinement, plus Leiden, exact 10-NN graph.

Writes ``summary.md`` and ``summary.json`` (every figure, the stores' manifests, machine and
date), and for each run the bench's own JSON / Markdown / plots in a sub-folder, beside the
guide's figures to beat (section 7).

Usage::

    python benchmarks/bench_retrieval.py --out benchmarks/results/retrieval \\
        --cnn breastmnist pneumoniamnist retinamnist blood:300 --cnn-time 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import common  # noqa: E402  (benchmarks/common.py: the repository on the path, shared helpers)

common.one_thread()  # before numpy loads BLAS: the machine is shared

import numpy as np  # noqa: E402

ROOT = common.ROOT
from shared_data import SETS  # noqa: E402

#: GUIDE section 7: (frozen ImageNet CNN Acc@1, Mahbod et al. 2024; MedMNIST v2 ResNet-18 test accuracy;
#: the guide's pixel floor Acc@1, P@10)
REFERENCE = {
    "breastmnist": (0.801, 0.863, 0.83, 0.69),
    "pneumoniamnist": (0.835, 0.854, 0.84, 0.82),
    "retinamnist": (0.463, 0.524, 0.38, 0.39),
    "blood": (0.731, 0.958, 0.67, 0.60),
    "mednist": (None, None, None, None),
}
K = 50


from common import log  # noqa: E402  (one home: benchmarks/common.py)


def build(key: str, encoder: str, stores: Path, cnn_time: float) -> Path:
    import graphret

    path = stores / f"{key}-{encoder}"
    if (path / "manifest.json").is_file():
        log(f"reusing {path}")
        return path
    source = "demo" if key == "demo" else str(SETS[key][1])
    options: dict = {}
    if encoder == "cnn":
        options = {"backbone": "resnet18", "time_limit": cnn_time, "threads": 2}
    t0 = time.perf_counter()
    graphret.build(source, path, encoder=encoder, k=10, communities=("cnm", "leiden"), heuristic="size",
                   refine="multilevel", seed=0, log=log, **options)
    log(f"built {path} in {time.perf_counter() - t0:.0f}s")
    return path


def classifier_accuracy(store) -> float | None:
    """Test accuracy of the store's CNN classifier (its ``predicted`` column on the test split)."""
    if "predicted" not in store.items.schema.names or store.task != "multiclass":
        return None
    rows = np.flatnonzero(store.splits.astype(str) == "test")
    predicted = store.items.column("predicted").to_numpy()[rows]
    return float(np.mean(predicted == store.labels[rows])) if len(rows) else None


def bench_one(key: str, encoder: str, path: Path, out: Path, *, n_queries: int | None, relevance_rule: str = "exact",
              tag: str = "") -> dict:
    from graphret.evaluation import run_bench, write_report
    from graphret.store import open_store

    store = open_store(path)
    name = SETS[key][0] if key in SETS else "demo (multi-label findings)"
    log(f"bench {name} / {encoder}{tag}")
    result = run_bench(store, split="test", k=K, relevance_rule=relevance_rule, duplicates="keep", n_queries=n_queries,
                       n_single=100, reps=2, log=log)
    folder = out / f"{key}-{encoder}{tag}"
    write_report(result, folder, title=f"{name}, {encoder} encoder{tag}")
    return {
        "set": key,
        "name": name,
        "encoder": encoder,
        "encoder_description": result.settings["encoder"],
        "relevance": result.settings["relevance"],
        "classifier_accuracy": classifier_accuracy(store),
        "build_seconds": store.manifest.get("build", {}).get("seconds"),
        "communities": result.store_info["communities"],
        "settings": result.settings,
        "duplicates": result.duplicates,
        "rows": result.rows,
        "skipped": result.skipped,
        "notes": result.notes,
        "p_at_10": {mode: c["precision_at_k"][9] for mode, c in result.curves.items()},
        "folder": folder.name,
    }


def f3(x) -> str:
    return "" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.3f}"


def summary_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Retrieval benchmark: every query mode on the real sets",
        "",
        f"Run {m['date_utc']} on {m['cpu']} ({m['cores']} cores, shared with other jobs; load average at start "
        f"{m['load_average']}). Command: `{report['command']}`.",
        "",
        f"Queries: the test split (MedNIST and the blood-cell set: a seeded 70/30 split; at most {report['max_queries']} "
        f"queries, a seeded sample where the split is larger), archive: train + val. K = {K}. Relevance: same class; "
        "RetinaMNIST also graded nDCG `1 - |g_q - g_i|/4`. Exact duplicates (byte-identical codes) are kept retrievable "
        "and counted per run (sub-folder `bench.md`). Every mode of a row group ran on the same codes in one run. "
        "mAP@50 divides each query's AP by min(50, relevant archive items). Cost columns: batched queries/s relative to "
        "flat in the same run (single-threaded BLAS), fraction of the archive scanned. Region = Haq's Algorithm 1; "
        "class = Qayyum's class filter (CNN: its classifier; pixels: a 10-NN vote, which itself scans the archive).",
        "",
        "Stores: exact 10-NN cosine graph (union), CNM (Newman quality, size heuristic + multilevel refinement) and "
        "Leiden (RBConfiguration, resolution 1, seed 0). CNN = ResNet-18 trained on the train split at the set's size, "
        "training capped per set at " + ", ".join(f"{k} {v:.0f} s" for k, v in report.get("cnn_time_per_set", {}).items())
        + " on this machine (epochs run and training seconds: `Runs` below).",
        "",
        "| set | encoder | mode | Acc@1 | P@10 | P@50 | mAP@50 | MRR | nDCG@50 | scanned | q/s batched | x flat q/s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in report["runs"]:
        if run["set"] == "demo":
            continue
        for row in run["rows"]:
            nd = row.get(f"nDCG@{K} (graded)", row.get(f"nDCG@{K}"))
            lines.append(
                f"| {run['name']} | {run['encoder']} | {row['mode']} | {f3(row.get('Acc@1'))} | {f3(run['p_at_10'].get(row['mode']))} | "
                f"{f3(row[f'P@{K}'])} | {f3(row[f'mAP@{K}'])} | {f3(row['MRR'])} | {f3(nd)} | {f3(row['scanned'])} | "
                f"{row['q/s batched']:,.0f} | {row.get('x flat q/s batched', float('nan')):.2f} |"
            )
    lines += ["", "## Beside the figures to beat (guide section 7)", "",
              "Flat retrieval Acc@1 / P@10 against: frozen ImageNet CNN features Acc@1 (Mahbod et al. 2024), the guide's pixel floor, "
              "and the MedMNIST v2 ResNet-18 classifier's test accuracy (beside our CNN classifier's).", "",
              "| set | encoder | flat Acc@1 | flat P@10 | ref frozen-CNN Acc@1 | pixel floor Acc@1 / P@10 | our classifier acc | MedMNIST v2 ResNet-18 acc | beats frozen CNN | clears pixel floor |",
              "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for run in report["runs"]:
        if run["set"] == "demo":
            continue
        flat = next((r for r in run["rows"] if r["mode"] == "flat"), None)
        if flat is None:
            continue
        ref, clf, floor, floor_p = REFERENCE.get(run["set"], (None,) * 4)
        a1, p10 = flat.get("Acc@1"), run["p_at_10"].get("flat")
        lines.append(
            f"| {run['name']} | {run['encoder']} | {f3(a1)} | {f3(p10)} | {f3(ref)} | {f3(floor)} / {f3(floor_p)} | "
            f"{f3(run['classifier_accuracy'])} | {f3(clf)} | {'' if ref is None else ('yes' if a1 > ref else 'no')} | "
            f"{'' if floor is None else ('yes' if a1 >= floor - 0.005 else 'no')} |"
        )
    lines += ["", "## The papers' claims on these data", "",
              "Haq: region growing against flat on P@50. Qayyum: class filtering against flat on mAP@50 "
              "(differences, positive = the paper's method is better).", "",
              "| set | encoder | flat P@50 | region (cnm) - flat | region (leiden) - flat | flat mAP@50 | class - flat mAP@50 | class source |",
              "|---|---|---:|---:|---:|---:|---:|---|"]
    for run in report["runs"]:
        rows = {r["mode"]: r for r in run["rows"]}
        flat = rows.get("flat")
        if flat is None:
            continue
        cls = next((r for r in run["rows"] if r["mode"].startswith("class")), None)

        def d(name, key):
            r = rows.get(name)
            return "" if r is None else f"{r[key] - flat[key]:+.3f}"

        cls_gain = "" if cls is None else f"{cls[f'mAP@{K}'] - flat[f'mAP@{K}']:+.3f}"

        lines.append(
            f"| {run['name']} | {run['encoder']}{' (' + run['relevance'] + ')' if run['set'] == 'demo' else ''} | {f3(flat[f'P@{K}'])} | {d('region (cnm)', f'P@{K}')} | "
            f"{d('region (leiden)', f'P@{K}')} | {f3(flat[f'mAP@{K}'])} | {cls_gain} | "
            f"{'' if cls is None else cls['mode']} |"
        )
    lines += ["", "Reading the class column: relevance is binary and class mode returns K items of the one predicted class, "
              "so (multi-class) each query's AP@50 and P@50 are 1 when the predicted class is right and 0 when it is wrong: "
              "class mode's mAP@50 is the classifier's (or the 10-NN vote's) accuracy on the queries. The lift is real for "
              "a user who wants a page of same-class images, but it trades away Acc@1 where the classifier is less accurate "
              "than the nearest neighbour (compare the class and flat rows' Acc@1 above)."]
    demo = [r for r in report["runs"] if r["set"] == "demo"]
    if demo:
        lines += ["", "## Multi-label (CheXpert-style) metrics on the demo set", "",
                  "The embedded demo set (2,000 synthetic phantoms, five findings, multi-label; pixel baseline): Haq et al.'s "
                  "ACG@50 and ACG_p@50, and precision under both relevance rules. (Haq et al. on CheXpert: ACG 0.65, "
                  "ACG_p 0.37, precision 73 % -- a different, real data set; shown for scale only.)", "",
                  "| relevance | mode | P@50 | mAP@50 | MRR | ACG@50 | ACG_p@50 | nDCG@50 | scanned |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for run in demo:
            for row in run["rows"]:
                lines.append(f"| {run['relevance']} | {row['mode']} | {f3(row[f'P@{K}'])} | {f3(row[f'mAP@{K}'])} | {f3(row['MRR'])} | "
                             f"{f3(row.get(f'ACG@{K}'))} | {f3(row.get(f'ACG_p@{K}'))} | {f3(row.get(f'nDCG@{K}'))} | {f3(row['scanned'])} |")
    lines += ["", "## Runs", "", "| set | encoder | queries | archive | duplicates (queries / items) | communities | cnn epochs / train s | folder |",
              "|---|---|---:|---:|---|---|---|---|"]
    for run in report["runs"]:
        s, d = run["settings"], run["duplicates"]
        ep = run.get("cnn_training") or {}
        lines.append(f"| {run['name']} | {run['encoder']} | {s['queries']} of {s['queries_in_split']} | {s['archive_items']} | "
                     f"{d['queries_with_duplicates']} / {d['duplicate_items']} | {run['communities']} | "
                     + (f"{ep.get('epochs')} / {ep.get('seconds')} s ({ep.get('stopped')})" if ep else "") + f" | `{run['folder']}/` |")
    if report.get("not_run"):
        lines += ["", "Not run: " + "; ".join(report["not_run"]) + "."]
    return "\n".join(lines) + "\n"


def cnn_training(path: Path) -> dict | None:
    manifest = json.loads((path / "manifest.json").read_text())
    enc = manifest.get("encoder", {})
    if enc.get("name") != "cnn":
        return None
    seconds = manifest.get("build", {}).get("seconds", {}).get("fit_encoder")
    history = enc.get("config", {}).get("history") or {}
    epochs = len(history.get("epochs") or [])
    return {"epochs": epochs, "seconds": seconds, "stopped": history.get("stopped"), "best_epoch": history.get("best_epoch")}


def main() -> None:
    from graphret.evaluation.bench import machine_info
    from graphret.evaluation.report import _clean

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    parser.add_argument("--cnn", nargs="*", default=["breastmnist", "pneumoniamnist"], help="sets that also get the trained CNN encoder, as NAME or NAME:SECONDS (a training cap for that set)")
    parser.add_argument("--cnn-time", type=float, default=240.0, help="training time cap (s) per CNN")
    parser.add_argument("--queries", type=int, default=2000, help="at most this many queries per run (seeded sample)")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--stores", default="/tmp/graphret-bench/retrieval")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "retrieval"))
    parser.add_argument("--summary-only", action="store_true", help="rewrite summary.md from OUT/summary.json, run nothing")
    args = parser.parse_args()
    out = Path(args.out)
    if args.summary_only:
        (out / "summary.md").write_text(summary_markdown(json.loads((out / "summary.json").read_text())))
        return
    out.mkdir(parents=True, exist_ok=True)
    stores = Path(args.stores)
    stores.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine_info(), "command": "python benchmarks/bench_retrieval.py " + " ".join(sys.argv[1:]),
              "k": K, "max_queries": args.queries, "cnn_time": args.cnn_time, "runs": [], "not_run": []}
    cnn_time = {}
    for item in args.cnn:
        name, _, seconds = item.partition(":")
        cnn_time[name] = float(seconds) if seconds else args.cnn_time
    report["cnn_time_per_set"] = cnn_time
    plan = [(key, "pixels") for key in args.sets] + [(key, "cnn") for key in args.sets if key in cnn_time]
    for key in args.sets:
        if key not in cnn_time:
            report["not_run"].append(f"{SETS[key][0]} with the CNN encoder (training time on this 2-core machine)")
    if not args.no_demo:
        plan.insert(0, ("demo", "pixels"))
    for key, encoder in plan:
        if key != "demo" and not SETS[key][1].is_file():
            report["not_run"].append(f"{key}: {SETS[key][1]} not found")
            continue
        try:
            path = build(key, encoder, stores, cnn_time.get(key, args.cnn_time))
            if key == "demo":
                for rule in ("exact", "any"):
                    run = bench_one(key, encoder, path, out, n_queries=args.queries, relevance_rule=rule, tag=f"-{rule}")
                    report["runs"].append(run)
            else:
                run = bench_one(key, encoder, path, out, n_queries=args.queries)
                run["cnn_training"] = cnn_training(path)
                report["runs"].append(run)
        except Exception as error:  # noqa: BLE001 (record and go on to the next set)
            log(f"{key}/{encoder} failed: {error!r}")
            report["not_run"].append(f"{key}/{encoder}: failed ({error})")
        (out / "summary.json").write_text(json.dumps(_clean(report), indent=1) + "\n")
        (out / "summary.md").write_text(summary_markdown(report))
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    manifests = {}
    for key, encoder in plan:
        p = stores / f"{key}-{encoder}" / "manifest.json"
        if p.is_file():
            manifests[f"{key}-{encoder}"] = json.loads(p.read_text())
    report["manifests"] = manifests
    (out / "summary.json").write_text(json.dumps(_clean(report), indent=1) + "\n")
    (out / "summary.md").write_text(summary_markdown(report))
    log(f"wrote {out / 'summary.md'}")


if __name__ == "__main__":
    main()
