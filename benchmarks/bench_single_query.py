"""Benchmark: one query per call through ``Store.search`` against FAISS HNSW's single-row
``search`` at equal recall (issue 25, deliverable 2).

On a store's archive codes (MedNIST pixel codes: ``--store``), in one process and one thread:
FAISS ``IndexHNSWFlat`` (M 32, inner product) built on the archive, and graphret's graph mode
over the store's walk lists.  Queries: the store's test items by code (``--queries`` of them),
k 10, recall@10 against exact search.  For each FAISS efSearch and graphret ef the recall and
the microseconds per call, one query per call, for

* ``faiss``: ``index.search(q[None], 10)``;
* ``Store.search``: ``store.search(code, k=10, mode="graph", ef=...)`` (the public path: checks,
  normalisation, the result object);
* ``search_arrays``: ``Searcher.search_arrays(code, k=10, mode="graph", ef=...)`` (the lean call);
* ``by id``: ``store.search(item_id, k=10, mode="graph", ef=...)``, the same test items by their
  stored ids (their stored codes, no ratio: the goal is by code);
* ``one call``: the compiled call both make for one code (``SingleWalk``: the code made unit and
  walked, its output arrays), the floor under them: the rest is their Python.

"At equal recall" pairs each graphret ef with the cheapest FAISS efSearch whose recall is at
least graphret's; the ratio is graphret's time over FAISS's (goal: <= 2).  Timings alternate
the two libraries in rounds, so machine noise falls on both.

Usage::

    python benchmarks/bench_single_query.py --store /tmp/mednist-store --out benchmarks/results/single_query
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from common import load_average, recall, utc_stamp  # noqa: E402 - benchmarks/ is on the path of a script run from it

EFS = (8, 12, 16, 24, 32, 48)
FAISS_EFS = (8, 12, 16, 24, 32, 48, 64)


def per_call_us(call, queries, rounds: int) -> float:
    best = np.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        for q in queries:
            call(q)
        best = min(best, (time.perf_counter() - t0) / len(queries))
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import faiss
    import numba

    import graphret

    numba.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    store = graphret.open(args.store)
    searcher = store.searcher()
    archive = np.ascontiguousarray(searcher.index.codes)
    test = store.snapshot.split_rows(["test"])
    chosen = np.random.default_rng(0).choice(test, size=min(args.queries, len(test)), replace=False)
    Q = np.ascontiguousarray(store.codes()[chosen], np.float32)
    truth = np.argsort(-(Q @ archive.T), axis=1)[:, :10]
    t0 = time.perf_counter()
    index = faiss.IndexHNSWFlat(archive.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.add(archive)
    build_s = time.perf_counter() - t0
    position = searcher.index.position
    from graphret.graph.walk import SingleWalk

    searcher.lay_out()  # (as a server warms a version; Store.search would after Searcher.LAYOUT_AFTER queries)
    single = SingleWalk(searcher.index.graph_base, searcher.rows)
    Q1 = [np.ascontiguousarray(q[None]) for q in Q]
    ids = [str(store.snapshot.ids[r]) for r in chosen]

    faiss_rows = []
    for ef in FAISS_EFS:
        index.hnsw.efSearch = ef
        _, found = index.search(Q, 10)
        faiss_rows.append({"ef": ef, "recall": recall(found, truth)})
    graph_rows = []
    for ef in EFS:
        hits = searcher.search_arrays(Q, k=10, mode="graph", ef=ef)
        graph_rows.append({"ef": ef, "recall": recall(position[hits.rows], truth)})
    # warm every path, then time in alternating rounds
    store.search(Q[0], k=10, mode="graph")
    pairs = []
    for g in graph_rows:
        match = next((f for f in faiss_rows if f["recall"] >= g["recall"]), faiss_rows[-1])
        index.hnsw.efSearch = match["ef"]
        ef = g["ef"]
        times = {"faiss": [], "store": [], "lean": [], "call": [], "by_id": []}
        for _ in range(args.rounds):
            times["faiss"].append(per_call_us(lambda q: index.search(q[None], 10), Q, 1))
            times["store"].append(per_call_us(lambda q: store.search(q, k=10, mode="graph", ef=ef), Q, 1))
            times["lean"].append(per_call_us(lambda q: searcher.search_arrays(q, k=10, mode="graph", ef=ef), Q, 1))
            times["call"].append(per_call_us(lambda q: single(q, 10, ef), Q1, 1))
            times["by_id"].append(per_call_us(lambda i: store.search(i, k=10, mode="graph", ef=ef), ids, 1))
        row = {"graphret_ef": ef, "graphret_recall": round(g["recall"], 4), "faiss_ef": match["ef"],
               "faiss_recall": round(match["recall"], 4), **{f"{name}_us": round(min(v), 1) for name, v in times.items()}}
        row["store_vs_faiss"] = round(row["store_us"] / row["faiss_us"], 2)
        row["lean_vs_faiss"] = round(row["lean_us"] / row["faiss_us"], 2)
        pairs.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    result = {"date": utc_stamp(), "load": load_average(),
              "store": args.store, "archive": int(len(archive)), "dim": int(archive.shape[1]), "queries": int(len(Q)),
              "faiss_build_s": round(build_s, 1), "faiss_recall": faiss_rows, "graph_recall": graph_rows, "pairs": pairs,
              "command": "python benchmarks/bench_single_query.py " + " ".join(sys.argv[1:])}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "single_query.json").write_text(json.dumps(result, indent=2) + "\n")
        lines = ["# One query per call: `Store.search` (graph mode) against FAISS HNSW's single-row `search` (issue 25.2)", "",
                 f"{result['date']}, one thread, 2 shared cores (load average {', '.join(map(str, result['load']))}).  Archive: "
                 f"{len(archive):,} codes of {archive.shape[1]} dims ({args.store}); {len(Q)} test items as queries by code, k 10, "
                 "recall@10 against exact search.  FAISS: IndexHNSWFlat, M 32, inner product; each graphret ef paired with the "
                 "cheapest efSearch whose recall is at least graphret's.  Microseconds per call, best of "
                 f"{args.rounds} alternating rounds.  Command: `{result['command']}`.", "",
                 "The last column is the compiled call both paths make for one code (`SingleWalk`: the code made unit and "
                 "walked), the floor under them; `by id` the same items searched by their stored ids.", "",
                 "| graphret ef | recall | FAISS efSearch | recall | FAISS us | Store.search us | ratio | search_arrays us | ratio "
                 "| one call us | by id us |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in pairs:
            lines.append(f"| {r['graphret_ef']} | {r['graphret_recall']:.3f} | {r['faiss_ef']} | {r['faiss_recall']:.3f} | "
                         f"{r['faiss_us']:.1f} | {r['store_us']:.1f} | {r['store_vs_faiss']:.2f} | {r['lean_us']:.1f} | "
                         f"{r['lean_vs_faiss']:.2f} | {r['call_us']:.1f} | {r['by_id_us']:.1f} |")
        (args.out / "single_query.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
