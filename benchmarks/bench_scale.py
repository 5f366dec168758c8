"""Benchmark: how build and query costs grow with n (graphret issue 6), FAISS beside graphret.

Generated clustered codes (``bench_queries.clustered_codes``: d = 64, n/1000 unit centres, spread
1.25, seed 0; 500 fresh queries from the same mixture) at each ``--sizes`` n, and in the same run:

**build**, each step timed in this process after a warm-up on a tiny input (numba compiles not
counted), single-threaded BLAS:

* kNN (k = 10): graphret exact (``exact_knn``, blocked matrix products) up to ``--exact-max``; the
  approximate graph by FAISS ``IndexIVFFlat`` (nlist = sqrt(n), nprobe = 8,
  ``bench_queries.faiss_knn_graph``) at every n, with its recall against exact on 1,000 rows;
  the communities below run on the exact graph where there is one, else the approximate one;
* CNM (Newman quality) with ``heuristic="size", refine="multilevel"`` at every n, plain CNM up
  to ``--cnm-plain-max`` (plain CNM slows towards O(n^2) on graphs without hierarchy:
  bench_communities.py saw it pass 600 s at 300k), Leiden (leidenalg RBConfiguration,
  resolution 1, seed 0) up to ``--leiden-max``;

**query** (``bench_queries.run_dataset``): graphret flat, probe P = 1, 4, 16 and region for each
community method, FAISS ``IndexFlatIP`` and ``IndexIVFFlat`` (nprobe 1, 4, 16), queries/s
batched and one at a time, p50/p95, fraction scanned, recall@50 against flat, precision@50 of
the mixture component.

Usage::

    python benchmarks/bench_scale.py --sizes 10000 100000 --out benchmarks/results/scale
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_queries as bq  # noqa: E402  (reuse: generator, FAISS kNN graph, the per-method query runner)


from common import log, timed  # noqa: E402  (one home: benchmarks/common.py)




def warm_up() -> None:
    """Compile numba kernels on a tiny graph (cached on disk; not timed)."""
    from graphret.communities import cnm
    from graphret.graph.build import graph_from_knn
    from graphret.graph.knn import exact_knn

    x, _, _, _ = bq.clustered_codes(500, seed=1)
    g = graph_from_knn(*exact_knn(x, 5))
    cnm(g)
    cnm(g, heuristic="size", refine="multilevel")


def one_size(n: int, args) -> dict:
    from graphret.communities import cnm, leiden, newman_modularity
    from graphret.graph.build import graph_from_knn
    from graphret.graph.knn import exact_knn
    from graphret.query.index import RetrievalIndex

    log(f"n = {n:,}: generating codes")
    codes, labels, queries, q_labels = bq.clustered_codes(n, seed=0, spread=args.spread, n_queries=args.queries)
    build: list[dict] = []
    graph = None
    if n <= args.exact_max:
        (idx_sims, s) = timed(lambda: exact_knn(codes, 10), digits=2)
        graph = graph_from_knn(*idx_sims, symmetrize="union")
        build.append({"step": "kNN exact (graphret)", "seconds": s, "edges": int(graph.nnz // 2)})
        log(f"  exact kNN {s}s")
    else:
        build.append({"step": "kNN exact (graphret)", "seconds": None, "note": f"not run above n = {args.exact_max:,}"})
    approx, info = bq.faiss_knn_graph(codes, 10, threads=1)
    build.append({"step": "kNN approx (FAISS IVFFlat, nprobe 8)", "seconds": info["seconds"], "edges": int(approx.nnz // 2),
                  "recall_vs_exact": info["recall_vs_exact"]})
    log(f"  approx kNN {info}")
    used = "exact" if graph is not None else "approx"
    graph = graph if graph is not None else approx
    memberships = {}
    r, s = timed(lambda: cnm(graph, heuristic="size", refine="multilevel"), digits=2)
    memberships["cnm"] = r.membership
    build.append({"step": "CNM size + multilevel", "seconds": s, "communities": int(r.membership.max() + 1),
                  "newman_modularity": round(newman_modularity(graph, r.membership), 4)})
    log(f"  {build[-1]}")
    if n <= args.cnm_plain_max:
        r, s = timed(lambda: cnm(graph), digits=2)
        build.append({"step": "CNM plain", "seconds": s, "communities": int(r.membership.max() + 1),
                      "newman_modularity": round(newman_modularity(graph, r.membership), 4)})
        log(f"  {build[-1]}")
    else:
        build.append({"step": "CNM plain", "seconds": None, "note": f"not run above n = {args.cnm_plain_max:,}"})
    if n <= args.leiden_max:
        m, s = timed(lambda: leiden(graph, resolution=1.0, seed=0).membership, digits=2)
        memberships["leiden"] = m
        build.append({"step": "Leiden", "seconds": s, "communities": int(m.max() + 1), "newman_modularity": round(newman_modularity(graph, m), 4)})
        log(f"  {build[-1]}")
    else:
        build.append({"step": "Leiden", "seconds": None, "note": f"not run above n = {args.leiden_max:,}"})
    indexes, graphs = {}, {}
    for method, membership in memberships.items():
        t0 = time.perf_counter()
        index = RetrievalIndex(codes, membership=membership)
        index.centroids, index.sorted_codes  # noqa: B018 (build the layout)
        graphs[method] = bq.GraphSearch(codes, graph, membership)
        build.append({"step": f"query index: probe layout, walk lists, region graph ({method})", "seconds": round(time.perf_counter() - t0, 2)})
        indexes[method] = index
    result = bq.run_dataset(f"generated clustered codes, n = {n:,}", codes, labels, queries, q_labels, None, indexes, args.single,
                            graphs=graphs)
    result["build"] = build
    result["graph_used"] = used
    return result


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Scale sweep: build and query costs, graphret beside FAISS",
        "",
        f"Run {m['date_utc']} on {m['cpu']} ({m['cores']} cores, shared with other jobs; load average at start "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}), one thread for graphret and FAISS alike "
        f"(the FAISS kNN graph: one thread too). numpy {m['numpy']}, faiss {m['faiss']}. Command: `{report['command']}`.",
        "",
        "Generated clustered codes (d = 64, n/1000 centres, spread "
        f"{report['spread']}); {report['queries']} fresh queries, {report['single']} of them one at a time. K = {bq.K}. "
        "Times in seconds; ratios are side by side in the same run."
        + (f" Sizes {', '.join(f'{n:,}' for n in report['merged_from']['sizes'])} come from an earlier run "
           f"({report['merged_from']['date_utc']}, `{report['merged_from']['command']}`) of the same script."
           if report.get("merged_from") else ""),
        "",
        "## Build",
        "",
        "| n | step | seconds | edges | kNN recall | communities | Newman Q | note |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for d in report["datasets"]:
        for b in d["build"]:
            sec = "" if b.get("seconds") is None else f"{b['seconds']:.2f}"
            lines.append(f"| {d['n']:,} | {b['step']} | {sec} | {b.get('edges', '')} | {b.get('recall_vs_exact', '')} | "
                         f"{b.get('communities', '')} | {b.get('newman_modularity', '')} | {b.get('note', '')} |")
    lines += ["", "Communities and region growing ran on the " + ", ".join(f"{d['graph_used']} graph at n = {d['n']:,}" for d in report["datasets"]) + ".", "",
              "## Queries", "",
              "| n | method | q/s single | q/s batched | p50 ms | p95 ms | scanned | recall@50 | P@50 | x flat (batched) |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d in report["datasets"]:
        flat = next(r for r in d["rows"] if r["method"] == "graphret flat")
        for r in d["rows"]:
            p = "" if r["precision_at_k"] is None else f"{r['precision_at_k']:.3f}"
            lines.append(f"| {d['n']:,} | {r['method']} | {r['qps_single']:,.0f} | {r['qps_batched']:,.0f} | {r['p50_ms']:.2f} | "
                         f"{r['p95_ms']:.2f} | {r['scanned_fraction']:.3f} | {r['recall_at_k']:.3f} | {p} | {r['qps_batched'] / flat['qps_batched']:.2f} |")
    if report.get("not_run"):
        lines += ["", "Not run: " + "; ".join(report["not_run"]) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--spread", type=float, default=1.25)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--single", type=int, default=100)
    parser.add_argument("--exact-max", type=int, default=100_000, help="largest n with an exact kNN graph")
    parser.add_argument("--cnm-plain-max", type=int, default=100_000)
    parser.add_argument("--leiden-max", type=int, default=100_000)
    parser.add_argument("--probes", type=int, nargs="*", default=[1, 4, 16])
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scale"))
    parser.add_argument("--merge", action="store_true", help="keep OUT/scale.json's other sizes; replace only the sizes run now")
    args = parser.parse_args()
    bq.PROBES = tuple(args.probes)
    bq.IVF_PROBES = tuple(args.probes)
    bq.REPS = max(1, args.reps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"machine": bq.machine(), "command": "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:]),
              "spread": args.spread, "queries": args.queries, "single": args.single, "datasets": [], "not_run": []}
    if args.merge and (out / "scale.json").is_file():
        previous = json.loads((out / "scale.json").read_text())
        kept = [d for d in previous["datasets"] if d["n"] not in args.sizes]
        report["merged_from"] = {"command": previous["command"], "date_utc": previous["machine"]["date_utc"], "sizes": [d["n"] for d in kept]}
        report["datasets"] = kept
    if 1_000_000 not in args.sizes + [d["n"] for d in report["datasets"]]:
        report["not_run"].append("n = 1,000,000 (not within this run's time on a shared 2-core machine; "
                                 "benchmarks/results/queries has FAISS-kNN + k-means query costs at 1M)")
    def save() -> None:  # after every size, so that a long run leaves its finished sizes
        (out / "scale.json").write_text(json.dumps(report, indent=1) + "\n")
        (out / "scale.md").write_text(markdown(report))

    warm_up()
    for n in args.sizes:
        report["datasets"].append(one_size(n, args))
        report["datasets"].sort(key=lambda d: d["n"])
        save()
    report["machine"]["load_average_at_end"] = os.getloadavg()
    save()
    log(f"wrote {out / 'scale.md'}")


if __name__ == "__main__":
    main()
