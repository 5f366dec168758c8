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

CHEXPERT = Path(__file__).resolve().parents[2] / "shared" / "data" / "chexpert-labels" / "train.csv.gz"
if not CHEXPERT.exists():
    CHEXPERT = Path("/work/shared/data/chexpert-labels/train.csv.gz")
OBSERVATIONS = ["No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
                "Consolidation", "Pneumonia", "Atelectasis", "Pleural Effusion", "Pleural Other", "Pneumothorax",
                "Fracture", "Support Devices"]
D = 128
SPREAD = 1.25


def vm_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        return next(float(line.split()[1]) / 1024.0 for line in status if line.startswith(field + ":"))


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
    key = np.packbits(positive.astype(bool), axis=1, bitorder="little").view(np.uint16).ravel()
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
    import graphret
    import bench_queries as bq

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
        "recall": graph.get("recall"), "edges": graph["edges"], "seconds": seconds, "wall_s": round(wall, 2),
        "peak_mib_by_step": peaks, "peak_mib": round(max(peaks.values()), 1),
        "graph_csr_mib": round(graph["edges"] * 2 * 8 / 2**20 + (n + 1) * 4 / 2**20, 1),
        "communities": {m: c["n_communities"] for m, c in manifest["communities"].items()},
        "walk": manifest.get("walk"), "open_s": round(open_s, 2), "store_mib": round(disk / 2**20, 1),
        "queries": queries_out, "info": info,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[])
    parser.add_argument("--chexpert", action="store_true")
    parser.add_argument("--knn", default="auto")
    parser.add_argument("--walk-passes", type=int, default=None, help="walk_passes for the builds [the default]")
    parser.add_argument("--communities", default="cnm", help="community methods of the builds [cnm: the issue's kNN + CNM]")
    parser.add_argument("--threads", type=int, default=1, help="BLAS, OpenMP (FAISS) and numba threads [1: the machine is shared]")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale"))
    parser.add_argument("--one", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    options = {"communities": args.communities.split(",")}
    if args.walk_passes is not None:
        options["walk_passes"] = args.walk_passes
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
        print(" ".join(cmd), flush=True)
        threads = str(args.threads)
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               "NUMBA_NUM_THREADS": threads}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        sys.stdout.write(proc.stdout[-4000:])
        sys.stderr.write(proc.stderr[-4000:])
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"{kind} {n}: failed (rc {proc.returncode})", flush=True)
            continue
        result = json.loads(line[len("RESULT "):])
        result.update(threads=args.threads, run=datetime.now(timezone.utc).isoformat(timespec="seconds"), command=" ".join(sys.argv),
                      load=os.getloadavg(), machine=platform.processor() or platform.machine(), cores=os.cpu_count())
        report["runs"] = [r for r in report["runs"] if not (r["kind"] == kind and r["n"] == result["n"] and r["knn"] == args.knn
                                                            and r.get("options") == options)] + [result]
        path.write_text(json.dumps(report, indent=1))
        print(json.dumps({k: result[k] for k in ("kind", "n", "recall", "seconds", "peak_mib_by_step", "wall_s")}), flush=True)


if __name__ == "__main__":
    main()
