"""Benchmark: the graph walk against FAISS IVF-Flat and HNSW-Flat at recall@50 >= 0.95, one
thread, batched, on MedNIST pixel codes (issue 25, deliverable 4) -- a bounded run of the
walk-vs-FAISS rows of bench_graph_search.py, with walk lists of other build settings beside
the default ones.

Data and settings as bench_graph_search.py: MedNIST pixel codes (32x32 grey, PCA 128), archive
= the seeded 70 % split, ``--queries`` seeded test codes; exact kNN graph (k 10), CNM (size +
multilevel) for the entry points; walk lists ``build_search_graph`` with the default settings
and each ``--lists`` variant (``max_degree:alpha``); FAISS IVF-Flat (nlist = sqrt(n)) and
HNSW-Flat (M 32, efConstruction 40).  Every search on one thread (numba, FAISS, BLAS),
fastest of ``--reps`` batched passes taken in turn over all rows.  The goal row: for each family the fastest setting with
recall@50 >= 0.95, and walk / max(IVF, HNSW) -- ratios from one run.

    python benchmarks/bench_walk_vs_faiss.py --out benchmarks/results/graph_search
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import exact_topk, log, machine, one_thread, recall, timed

one_thread()

import numpy as np  # noqa: E402

K = 50
WALK_EFS = (24, 28, 32, 36, 40, 48, 64)
IVF_PROBES = (2, 4, 6, 8, 12, 16)
HNSW_EFS = (16, 24, 32, 48)
GOAL_RECALL = 0.95


def interleaved_qps(searches: list[tuple[dict, object]], n: int, reps: int) -> None:
    """Each search's queries per second, the fastest of ``reps`` passes, the passes taken in
    turn over all searches (so a busy spell of the shared machine hits every row alike), into
    its row's ``qps``."""
    best = [np.inf] * len(searches)
    for _ in range(reps):
        for a, (_, fn) in enumerate(searches):
            best[a] = min(best[a], timed(fn)[1])
    for (row, _), seconds in zip(searches, best):
        row["qps"] = round(n / seconds)


def run(n_queries: int, reps: int, variants: list[tuple[int, float]]) -> dict:
    import faiss
    import numba

    from bench_graph_search import WALK, pixel_codes
    from graphret.communities.cnm import cnm
    from graphret.graph.build import graph_from_knn
    from graphret.graph.knn import exact_knn
    from graphret.graph.search_graph import build_search_graph, entry_points
    from graphret.graph.walk import graph_walk

    data = pixel_codes("mednist")
    codes = data["archive"]
    rng = np.random.default_rng(0)
    queries = np.ascontiguousarray(data["queries"][np.sort(rng.choice(len(data["queries"]), n_queries, replace=False))])
    n, d = codes.shape
    log(f"{n:,} codes, {len(queries):,} queries")
    graph = graph_from_knn(*exact_knn(codes, 10))
    membership = cnm(graph, heuristic="size", refine="multilevel").membership
    truth = exact_topk(codes, queries, K)
    searches, builds = [], {}
    for max_degree, alpha in [(WALK["max_degree"], WALK["alpha"])] + variants:
        name = f"max_degree {max_degree}, alpha {alpha}"
        lists, seconds = timed(lambda: build_search_graph(codes, graph, **{**WALK, "max_degree": max_degree, "alpha": alpha}))
        builds[name] = {"seconds_2_threads": round(seconds, 1), "mean_degree": round(float(np.diff(lists[0]).mean()), 2)}
        entries = entry_points(codes, membership, graph=lists)
        entry_codes = np.ascontiguousarray(codes[entries])
        for ef in WALK_EFS:
            row = {"family": "walk", "lists": name, "setting": f"ef={ef}"}
            searches.append((row, lambda lists=lists, entries=entries, entry_codes=entry_codes, ef=ef: graph_walk(
                codes, *lists, queries, K, entries=entries, entry_codes=entry_codes, ef=ef, threads=1)[0]))
    faiss.omp_set_num_threads(1)
    nlist = int(np.sqrt(n))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(codes)
    ivf.add(codes)
    hnsw = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 40
    hnsw.add(codes)

    def ivf_search(nprobe):
        ivf.nprobe = nprobe
        return ivf.search(queries, K)[1]

    def hnsw_search(ef):
        hnsw.hnsw.efSearch = ef
        return hnsw.search(queries, K)[1]

    for nprobe in IVF_PROBES:
        searches.append(({"family": "FAISS IVF-Flat", "lists": f"nlist {nlist}", "setting": f"nprobe={nprobe}"},
                         lambda nprobe=nprobe: ivf_search(nprobe)))
    for ef in HNSW_EFS:
        searches.append(({"family": "FAISS HNSW-Flat", "lists": "M 32, efConstruction 40",
                          "setting": f"efSearch={ef} (searches max(ef, K))"}, lambda ef=ef: hnsw_search(ef)))
    numba.set_num_threads(1)
    for row, fn in searches:
        row["recall"] = round(recall(fn(), truth), 4)
    interleaved_qps(searches, len(queries), reps)
    rows = [row for row, _ in searches]
    for row in rows:
        log(str(row))
    return {"n": n, "queries": len(queries), "k": K, "builds": builds, "rows": rows, "goal": goal(rows)}


def goal(rows: list[dict]) -> dict:
    """Per family (walk: per lists), the fastest setting with recall >= GOAL_RECALL, and the
    walk's ratio to the faster of IVF and HNSW."""
    best: dict[str, dict] = {}
    for r in rows:
        key = r["family"] if r["family"] != "walk" else f"walk ({r['lists']})"
        if r["recall"] >= GOAL_RECALL and (key not in best or r["qps"] > best[key]["qps"]):
            best[key] = r
    faiss_best = max((r["qps"] for k, r in best.items() if k.startswith("FAISS")), default=0)
    ratios = {k: round(r["qps"] / faiss_best, 3) for k, r in best.items() if k.startswith("walk") and faiss_best}
    return {"best_at_recall": best, "walk_over_faster_faiss": ratios}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Walk vs FAISS at recall@{K} >= {GOAL_RECALL} (issue 25.4), MedNIST pixel codes", "",
             f"Run {m['date_utc']} on {m['cpu']} ({m['cores']} cores, shared; load average at start "
             f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}); numpy {m['numpy']}, numba {m['numba']}, "
             f"faiss {m['faiss']}.", "", f"Command: `{report['command']}`", "",
             f"n = {report['n']:,}, {report['queries']:,} queries batched, one thread, K = {K}.", "",
             "| family | lists / index | setting | q/s | recall@50 |", "|---|---|---|---:|---:|"]
    lines += [f"| {r['family']} | {r['lists']} | {r['setting']} | {r['qps']:,} | {r['recall']:.4f} |" for r in report["rows"]]
    lines += ["", "Walk list builds (2 threads): " + "; ".join(f"{k}: {v['seconds_2_threads']} s, mean degree {v['mean_degree']}"
                                                            for k, v in report["builds"].items()), "",
              "Fastest setting with recall >= 0.95 per family, and the walk's ratio to the faster FAISS index:", ""]
    lines += [f"- {k}: {r['setting']}, {r['qps']:,} q/s, recall {r['recall']:.4f}" for k, r in report["goal"]["best_at_recall"].items()]
    lines += [f"- **{k}: {v}x**" for k, v in report["goal"]["walk_over_faster_faiss"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--lists", nargs="*", default=["32:1.2"], help="extra walk-list settings, max_degree:alpha each")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    variants = [(int(v.split(":")[0]), float(v.split(":")[1])) for v in args.lists]
    t0 = time.perf_counter()
    started = machine("numba", "faiss")
    report = run(args.queries, args.reps, variants)
    report["machine"] = started
    report["command"] = "python benchmarks/bench_walk_vs_faiss.py " + " ".join(sys.argv[1:])
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(markdown(report))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "walk_vs_faiss.json").write_text(json.dumps(report, indent=1, default=str))
        (args.out / "walk_vs_faiss.md").write_text(markdown(report))


if __name__ == "__main__":
    main()
