"""Scale of the real build path: ``graphret.build_from_codes`` at 100k, 300k, 1M generated codes and
at CheXpert's 223,414 items with its real label table (issue 17).

Each size runs in a fresh process (``--one``), so its peak memory is its own.  A build is
``graphret.build_from_codes`` with the default config except ``knn`` (kNN, CNM with its size
heuristic and multilevel refinement, walk lists, store write); the seconds and peak resident
memory per step come from the store's manifest (``build.seconds``, ``build.peak_rss_mib_by_step``:
``VmHWM`` reset between steps), the write step from the wall clock around the call.  The kNN
recall@10 is the manifest's (against exact kNN on 1,000 seeded rows).

Codes:

* **generated**: ``bench_queries.clustered_codes`` (d = 128, n / 1000 unit centres, centre +
  N(0, spread^2 / d), spread 1.25, L2-normalised), the scale sweep's mixture at d = 128.
* **CheXpert** (``--chexpert``): the 223,414 rows of ``chexpert-labels/train.csv.gz`` (labels
  only, no images).  Each of the 14 observations gets a random unit direction; an item's code is
  the sum of the directions of its positive observations (1.0) plus half of those of its
  uncertain ones (-1.0), plus a random unit direction of its label set (so two items with the
  same positives share a cluster), plus N(0, spread^2 / d) noise, L2-normalised.  Labels are
  stored as the multi-label matrix (1 positive, 0 negative or blank, -1 uncertain); Sex and
  Frontal/Lateral as metadata.  Queries: 200 held-out codes drawn the same way from random
  rows; query cost per mode (flat, graph, region) in ms per query, batched and one at a time,
  with recall@10 against flat.

Run: ``python benchmarks/bench_scale_build.py --sizes 100000 300000 1000000 --chexpert``; a
size's result is merged into ``benchmarks/results/scale/build.json`` as soon as it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import reset_peak, vm_mib  # noqa: E402  (one home: benchmarks/common.py)
from shared_data import CHEXPERT_LABELS as CHEXPERT  # noqa: E402
OBSERVATIONS = ["No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
                "Consolidation", "Pneumonia", "Atelectasis", "Pleural Effusion", "Pleural Other", "Pneumothorax",
                "Fracture", "Support Devices"]
D = 128
SPREAD = 1.25


def chexpert_codes(seed: int = 0, n_queries: int = 200):
    """(codes, labels int8 (n, 14), metadata, query codes, query labels) following CheXpert's label sets."""
    import pandas as pd

    table = pd.read_csv(CHEXPERT)
    raw = table[OBSERVATIONS].to_numpy(dtype=np.float64)
    labels = np.where(np.isnan(raw), 0, raw).astype(np.int8)  # blank = not mentioned = negative
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((len(OBSERVATIONS), D))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    positive = (labels == 1).astype(np.float64)
    key = (positive.astype(np.int64) << np.arange(len(OBSERVATIONS))).sum(axis=1)  # the positive set as a bit mask
    sets, set_of = np.unique(key, return_inverse=True)
    set_dirs = rng.standard_normal((len(sets), D))
    set_dirs /= np.linalg.norm(set_dirs, axis=1, keepdims=True)

    def draw(rows):
        x = positive[rows] @ directions + 0.5 * (labels[rows] == -1) @ directions + set_dirs[set_of[rows]]
        x += SPREAD * rng.standard_normal((len(rows), D)) / np.sqrt(D)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    n = len(table)
    codes = np.empty((n, D), np.float32)
    for lo in range(0, n, 1 << 16):
        codes[lo:lo + (1 << 16)] = draw(np.arange(lo, min(lo + (1 << 16), n)))
    q_rows = rng.choice(n, n_queries, replace=False)
    metadata = {"sex": table["Sex"].astype(str).to_numpy(), "view": table["Frontal/Lateral"].astype(str).to_numpy()}
    info = {"label_sets": int(len(sets)), "rows": int(n)}
    return codes, labels, metadata, draw(q_rows), labels[q_rows], info


def query_costs(store, queries: np.ndarray, k: int = 10, single: int = 50) -> list[dict]:
    """ms per query (batched and one at a time) and recall@k against flat, per mode."""
    out = []
    flat_rows = None
    for mode in ("flat", "graph", "region"):
        store.search(queries[:2], k=k, mode=mode)  # warm (searcher, numba)
        t0 = time.perf_counter()
        result = store.search(queries, k=k, mode=mode)
        batched = (time.perf_counter() - t0) / len(queries) * 1000
        t0 = time.perf_counter()
        for i in range(single):
            store.search(queries[i:i + 1], k=k, mode=mode)
        one = (time.perf_counter() - t0) / single * 1000
        if mode == "flat":
            flat_rows = result.rows
        recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(result.rows, flat_rows)]))
        out.append({"mode": mode, "ms_per_query_batched": round(batched, 3), "ms_per_query_single": round(one, 3),
                    "recall_vs_flat": round(recall, 4), "scanned": round(float(np.mean(result.scanned_fraction)), 4)})
    return out


def one(kind: str, n: int, knn: str, options: dict) -> dict:
    """Build one store in this process and report its figures."""
    import importlib

    import graphret
    import bench_queries as bq

    # each step's own peak (the library never resets it itself; graphret.api.build is also the build function)
    importlib.import_module("graphret.api.build").STEP_PEAK_RESET = reset_peak

    t0 = time.perf_counter()
    if kind == "chexpert":
        codes, labels, metadata, queries, _, info = chexpert_codes()
        extra = {"labels": labels, "class_names": OBSERVATIONS, "metadata": metadata}
    else:
        codes, _, queries, _ = bq.clustered_codes(n, d=D, seed=0, spread=SPREAD, n_queries=200)
        extra, info = {}, {}
    n = len(codes)
    generate = time.perf_counter() - t0
    rss_codes = vm_mib("VmRSS")
    with tempfile.TemporaryDirectory(dir=os.environ.get("SCALE_TMP")) as tmp:
        t0 = time.perf_counter()
        store = graphret.build_from_codes(codes, Path(tmp) / "store", knn=knn, log=lambda m: print(f"  [{n}] {m}", flush=True),
                                          **extra, **options)
        wall = time.perf_counter() - t0
        write_peak = vm_mib("VmHWM")  # since the last step's reset: edges, items and the write
        manifest = store.manifest
        build = manifest["build"]
        seconds = dict(build["seconds"])
        seconds["write"] = round(wall - seconds["total"], 3)
        peaks = dict(build.get("peak_rss_mib_by_step", {}))
        peaks["write"] = round(write_peak, 1)
        graph = manifest["graph"]
        t0 = time.perf_counter()
        reopened = graphret.open(Path(tmp) / "store")
        open_s = time.perf_counter() - t0
        queries_out = query_costs(reopened, queries)
        disk = sum(f.stat().st_size for f in Path(tmp, "store").rglob("*") if f.is_file())
    return {
        "kind": kind, "n": n, "d": int(codes.shape[1]), "knn": knn, "knn_used": graph["method"], "options": options,
        "generate_s": round(generate, 2), "codes_mib": round(codes.nbytes / 2**20, 1), "rss_after_codes_mib": round(rss_codes, 1),
        "recall": graph.get("recall"), "faiss": graph.get("faiss"), "edges": graph["edges"], "seconds": seconds, "wall_s": round(wall, 2),
        "peak_mib_by_step": peaks, "peak_mib": round(max(peaks.values()), 1),
        "graph_csr_mib": round(graph["edges"] * 2 * 8 / 2**20 + (n + 1) * 4 / 2**20, 1),
        "communities": {m: c["n_communities"] for m, c in manifest["communities"].items()},
        "walk": manifest.get("walk"), "open_s": round(open_s, 2), "store_mib": round(disk / 2**20, 1),
        "queries": queries_out, "info": info,
    }


STEPS = ("knn", "cnm", "walk", "write")


def crossover(sizes: list[int], out: Path) -> None:
    """Exact kNN against the faiss kNN (calibrated nprobe) on the generated codes, one thread:
    the size above which ``knn="auto"`` picks faiss.  Writes knn.json and knn.md."""
    import bench_queries as bq

    from graphret.graph.approx import knn_recall
    from graphret.graph.faiss_knn import faiss_knn
    from graphret.graph.knn import exact_knn

    faiss_knn(bq.clustered_codes(3000, d=D, seed=1, spread=SPREAD)[0], 10, threads=1)  # numba compile outside the timings
    exact_knn(bq.clustered_codes(3000, d=D, seed=1, spread=SPREAD)[0], 10)
    rows = []
    for n in sizes:
        codes = bq.clustered_codes(n, d=D, seed=0, spread=SPREAD)[0]
        t0 = time.perf_counter()
        exact_knn(codes, 10)
        exact_s = time.perf_counter() - t0
        report: dict = {}
        t0 = time.perf_counter()
        idx, _ = faiss_knn(codes, 10, threads=1, report=report)
        faiss_s = time.perf_counter() - t0
        rows.append({"n": n, "exact_s": round(exact_s, 2), "faiss_s": round(faiss_s, 2), "faiss_nprobe": report["nprobe"],
                     "faiss_nlist": report["nlist"], "faiss_recall": knn_recall(idx, codes, sample=1000)})
        print(rows[-1], flush=True)
    (out / "knn.json").write_text(json.dumps({"run": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                              "load": os.getloadavg(), "rows": rows}, indent=1))
    lines = ["# Exact kNN against the faiss kNN: where `--knn auto` switches", "",
             f"Generated clustered codes (d = {D}, spread {SPREAD}), k = 10, one thread (BLAS, FAISS, numba), machine shared "
             f"(load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end).  Command: "
             "`python benchmarks/bench_scale_build.py --crossover 10000 25000 50000 100000`.", "",
             "| n | exact s | faiss s | faiss nlist | faiss nprobe (calibrated) | faiss recall@10 | exact / faiss |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['exact_s']} | {r['faiss_s']} | {r['faiss_nlist']} | {r['faiss_nprobe']} | "
                     f"{r['faiss_recall']:.4f} | {r['exact_s'] / r['faiss_s']:.1f} |")
    (out / "knn.md").write_text("\n".join(lines) + "\n")


def estimate(runs: list[dict], target: int = 10_000_000) -> dict:
    """Per step: seconds as a * n^b fitted (least squares in log-log) over the generated sizes,
    and peak memory above the process's baseline as linear in n; both at ``target``."""
    runs = sorted((r for r in runs if r["kind"] == "generated" and r["n"] >= 100_000), key=lambda r: r["n"])
    if not runs:
        return {}
    largest = runs[-1]  # rows built like the largest one (same kNN request and options), one per size
    alike = [r for r in runs if r["knn"] == largest["knn"] and r.get("options") == largest.get("options")]
    sizes = sorted({r["n"] for r in alike})
    if len(sizes) < 2:
        return {}
    # the least disturbed run of each size (the machine is shared: the same build varied 2-5x)
    best = {n_: {step: min(r["seconds"].get(step, np.inf) for r in alike if r["n"] == n_) for step in STEPS} for n_ in sizes}
    runs = [min((r for r in alike if r["n"] == n_), key=lambda r: r["peak_mib"]) for n_ in sizes]
    for r in runs:
        r = dict(r)
    n = np.array(sizes, float)
    out = {"n": target, "from": [int(x) for x in n], "steps": {}}
    for step in STEPS:
        sec = np.array([best[n_][step] for n_ in sizes], float)
        if not np.isfinite(sec).all() or (sec <= 0).any():
            continue
        b, _ = np.polyfit(np.log(n), np.log(sec), 1)
        # every step touches every code, so none grows slower than n: a fitted b < 1 is the shared machine's
        # noise, and the estimate extrapolates from the largest run with the growth clamped at 1
        growth = max(float(b), 1.0)
        out["steps"][step] = {"exponent": round(float(b), 2), "used": round(growth, 2),
                              "seconds": round(float(sec[-1] * (target / n[-1]) ** growth), 0)}
    base = np.array([r["rss_after_codes_mib"] - r["codes_mib"] for r in runs], float).mean()
    peak = np.array([r["peak_mib"] - base for r in runs], float)
    slope, icpt = np.polyfit(n, peak, 1)
    out["seconds_total"] = round(sum(v["seconds"] for v in out["steps"].values()), 0)
    out["peak_mib"] = round(float(base + icpt + slope * target), 0)
    out["peak_mib_per_million"] = round(float(slope * 1e6), 0)
    out["codes_mib"] = round(target * runs[-1]["d"] * 4 / 2**20, 0)
    return out


def markdown(report: dict) -> str:
    runs = sorted(report["runs"], key=lambda r: (r["kind"] != "generated", r["n"], str(r.get("options"))))
    lines = ["# Scale of the real build path: `build_from_codes` from 100k to 1M codes, and CheXpert's 223,414 items", ""]
    if runs:
        r0 = runs[-1]
        lines += [f"Machine: {r0.get('machine')} ({r0.get('cores')} cores shared with other jobs: load average "
                  f"{', '.join(f'{x:.1f}' for x in r0.get('load', []))} at the end of the last run); BLAS, FAISS and numba "
                  f"on {r0.get('threads', 1)} thread.  Command per row in `build.json` (`command`).", ""]
    lines += ["`graphret.build_from_codes(codes, knn=..., communities=['cnm'])` with the default config otherwise (k = 10, union, "
              "CNM with its size heuristic and multilevel refinement, walk lists of degree 24), except `walk_passes` where "
              "the row says.  Seconds and peak resident memory (MiB, `VmHWM` per step, the process's imports and the "
              "generated codes included) per step; recall@10 of the kNN lists against exact kNN on 1,000 seeded rows.", "",
              "| codes | n | commit | kNN (nprobe) | recall@10 | walk passes, expand | knn s | cnm s | walk s | write s | total s | knn MiB | cnm MiB | walk MiB | write MiB | peak MiB | codes MiB | CSR graph MiB |",
              "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        sec, mem = r["seconds"], r["peak_mib_by_step"]
        total = sum(sec.get(s, 0) for s in STEPS)
        walk = r.get("walk") or {}
        passes = f"{walk.get('passes', '-')}, {'yes' if walk.get('expand', True) else 'no'}"
        nprobe = (r.get("faiss") or {}).get("nprobe", r.get("nprobe_note", ""))
        lines.append(f"| {r['kind']} | {r['n']:,} | {r.get('commit', '?')} | {r['knn_used']} ({r['knn']}{', ' + str(nprobe) if nprobe else ''}) | {r['recall'] if r['recall'] is not None else 'exact'} | {passes} | "
                     + " | ".join(f"{sec.get(s, float('nan')):.1f}" for s in STEPS) + f" | {total:.1f} | "
                     + " | ".join(f"{mem.get(s, float('nan')):.0f}" for s in STEPS)
                     + f" | {r['peak_mib']:.0f} | {r['codes_mib']:.0f} | {r['graph_csr_mib']:.0f} |")
    notes = [(i + 1, r) for i, r in enumerate(runs) if r.get("note")]
    if notes:
        lines += [""] + [f"Row {i} ({r['kind']} {r['n']:,}, commit {r.get('commit')}): {r['note']}." for i, r in notes]
    est = estimate(report["runs"])
    if est:
        lines += ["", f"## {est['n']:,} codes, estimated", "",
                  f"From the generated rows at {', '.join(f'{x:,}' for x in est['from'])} built like the largest (the fastest run of "
                  "each size per step, as the shared machine slowed the same build 2-5x): the growth exponent b of n^b fitted per "
                  "step, clamped at 1 (every step touches every code; a smaller fit is noise), and the largest run's seconds "
                  "scaled by (10M / n)^b; peak memory above the imports as linear in n.  Wall seconds on this loaded machine, "
                  "not CPU seconds.", "",
                  "| step | fitted b | b used | seconds at 10M |", "|---|---:|---:|---:|"]
        for step, v in est["steps"].items():
            lines.append(f"| {step} | {v['exponent']} | {v.get('used', v['exponent'])} | {v['seconds']:,.0f} |")
        lines += [f"| total | | {est['seconds_total']:,.0f} |", "",
                  f"Peak memory at 10M: about {est['peak_mib']:,.0f} MiB ({est['peak_mib_per_million']:,.0f} MiB per million codes; "
                  f"the codes alone are {est['codes_mib']:,.0f} MiB)."]
    memory = Path(__file__).resolve().parent / "results" / "scale" / "memory.json"
    if memory.exists():
        m = {r["what"]: r["above_inputs_mib"] for r in json.loads(memory.read_text())}
        lines += ["", "Rows before commit c2453aa predate the memory fixes measured at 1M in isolation (`memory.md`): the entry "
                  f"points' medoids took {m['medoids_before']:,.0f} MiB above the codes, now {m['medoids_now']:,.0f}; "
                  f"graph_from_knn {m['graph_before']:,.0f}, now {m['graph_now']:,.0f}; and build_from_codes no longer "
                  "keeps a normalised copy of codes that are unit already (512 MiB at 1M).  The 1M row of commit 48ecbb9 "
                  "predates them; the 1M row of commit 9623128 is the build with them (and with the cheap walk lists)."]
    cx = [r for r in runs if r["kind"] == "chexpert"]
    if cx:
        lines += ["", f"## CheXpert scale: {cx[0]['n']:,} items with the real label table", "",
                  f"Codes generated from the label table (see the script's docstring): {cx[0]['info'].get('label_sets')} distinct "
                  "positive-label sets, default walk lists (2 passes)."]
    for r in cx:
        lines += ["", f"* commit {r.get('commit')}, nprobe {(r.get('faiss') or {}).get('nprobe')}: kNN recall@10 {r['recall']}; "
                  f"build {sum(r['seconds'].get(s, 0) for s in STEPS):.0f} s (kNN {r['seconds']['knn']:.0f}, CNM "
                  f"{r['seconds']['cnm']:.0f}, walk lists {r['seconds']['walk']:.0f}), peak {r['peak_mib']:.0f} MiB, "
                  f"store {r['store_mib']:.0f} MiB on disk, opened in {r['open_s']} s."]
    lines += ["", "## Query cost", "", "200 fresh codes, k = 10, against each store (ms per query batched / one at a time, 50 of "
              "them one at a time); recall@10 against flat search; the fraction of the archive scanned.", "",
              "| codes | n | walk passes, expand | flat ms | graph ms | graph recall@10 | graph scanned | region ms | region recall@10 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        q = {x["mode"]: x for x in r.get("queries", [])}
        if not q:
            continue
        walk = r.get("walk") or {}
        lines.append(f"| {r['kind']} | {r['n']:,} | {walk.get('passes', '-')}, {'yes' if walk.get('expand', True) else 'no'} | "
                     f"{q['flat']['ms_per_query_batched']} / {q['flat']['ms_per_query_single']} | "
                     f"{q['graph']['ms_per_query_batched']} / {q['graph']['ms_per_query_single']} | {q['graph']['recall_vs_flat']} | "
                     f"{q['graph']['scanned']} | {q['region']['ms_per_query_batched']} / {q['region']['ms_per_query_single']} | "
                     f"{q['region']['recall_vs_flat']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[])
    parser.add_argument("--chexpert", action="store_true")
    parser.add_argument("--knn", default="auto")
    parser.add_argument("--walk-passes", type=int, default=None, help="walk_passes for the builds [the default]")
    parser.add_argument("--no-walk-expand", action="store_true", help="walk lists from the kNN graph's own lists only")
    parser.add_argument("--communities", default="cnm", help="community methods of the builds [cnm: the issue's kNN + CNM]")
    parser.add_argument("--threads", type=int, default=1, help="BLAS, OpenMP (FAISS) and numba threads [1: the machine is shared]")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale"))
    parser.add_argument("--one", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--report", action="store_true", help="only write build.md from build.json")
    parser.add_argument("--crossover", type=int, nargs="*", help="only time exact against faiss kNN at these sizes")
    args = parser.parse_args()
    if args.crossover:
        args.out.mkdir(parents=True, exist_ok=True)
        crossover(args.crossover, args.out)
        return
    if args.report:
        (args.out / "build.md").write_text(markdown(json.loads((args.out / "build.json").read_text())))
        return
    options = {"communities": args.communities.split(",")}
    if args.walk_passes is not None:
        options["walk_passes"] = args.walk_passes
    if args.no_walk_expand:
        options["walk_expand"] = False
    if args.one:
        print("RESULT " + json.dumps(one(args.one[0], int(args.one[1]), args.knn, options)), flush=True)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "build.json"
    report = json.loads(path.read_text()) if path.exists() else {"runs": []}
    jobs = [("generated", n) for n in args.sizes] + ([("chexpert", 0)] if args.chexpert else [])
    for kind, n in jobs:
        cmd = [sys.executable, __file__, "--one", kind, str(n), "--knn", args.knn, "--communities", args.communities]
        if args.walk_passes is not None:
            cmd += ["--walk-passes", str(args.walk_passes)]
        if args.no_walk_expand:
            cmd += ["--no-walk-expand"]
        print(" ".join(cmd), flush=True)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "graphret"], capture_output=True, text=True,
                               cwd=Path(__file__).resolve().parent).stdout.strip()
        threads = str(args.threads)
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               "NUMBA_NUM_THREADS": threads}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)  # the code at the commit below
        sys.stdout.write(proc.stdout[-4000:])
        sys.stderr.write(proc.stderr[-4000:])
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"{kind} {n}: failed (rc {proc.returncode})", flush=True)
            continue
        result = json.loads(line[len("RESULT "):])
        result.update(commit=commit + ("+changes" if dirty else ""), threads=args.threads, run=datetime.now(timezone.utc).isoformat(timespec="seconds"), command=" ".join(sys.argv),
                      load=os.getloadavg(), machine=platform.processor() or platform.machine(), cores=os.cpu_count())
        report["runs"] = [r for r in report["runs"] if not (r["kind"] == kind and r["n"] == result["n"] and r["knn"] == args.knn
                                                            and r.get("options") == options)] + [result]
        path.write_text(json.dumps(report, indent=1))
        (args.out / "build.md").write_text(markdown(report))
        print(json.dumps({k: result[k] for k in ("kind", "n", "recall", "seconds", "peak_mib_by_step", "wall_s")}), flush=True)


if __name__ == "__main__":
    main()
