"""Benchmark: the whole build of a large archive step by step (issue 25, deliverable 4: the walk
lists for 1M items inside the 5-minute build), and what the built store's walk lists give.

``graphret.build_from_codes`` on ``--n`` generated codes (``bench_queries.clustered_codes``,
d = 128, spread 1.25, seed 0: bench_query_cost.py's stores), FAISS kNN, CNM, the default
config otherwise, each ``--config`` in turn (``key=value,...`` build options, ``default``: none),
on ``--threads`` threads (BLAS, FAISS's OpenMP, numba).  Each build step -- and the parts of
the kNN step and of the walk lists -- is timed in wall seconds and in this process's CPU
seconds (user + system, all threads: robust to the shared machine's load, which the wall is
not), with the load average when it ended; the functions are wrapped where the build calls
them, nothing else changes.

Then the store's own walk lists: graph mode's recall@10 against flat (``Store.search`` of
200 fresh codes, as benchmarks/results/scale/build.md), and the walk over the community layout
(what graph mode walks above 50k items) at each ``--efs``: recall@50 against exact top-50 and
queries per second (one thread, batched, the fastest of ``--reps`` passes taken in turn over
every store and ef) on ``--queries`` fresh codes of the same mixture.

    python benchmarks/bench_build_steps.py --n 1000000 --configs default walk_candidates=0 \\
        --out benchmarks/results/scale --name build_steps_1m
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

from common import exact_topk, log, machine, recall

#: where the build calls them: (module, function, step it belongs to)
WRAPPED = (
    ("graphret.graph.faiss_knn", "_centroids", "knn"), ("graphret.graph.faiss_knn", "_probe", "knn"),
    ("graphret.graph.faiss_knn", "_calibrate", "knn"), ("graphret.graph.faiss_knn", "_search_cells", "knn"),
    ("graphret.graph.faiss_knn", "faiss_knn", "knn"),
    ("graphret.graph.build", "graph_from_knn", "knn"), ("graphret.graph.build", "graph_stats", "knn"),
    ("graphret.graph.approx", "knn_recall", "knn"), ("graphret.api.build", "_knn", "knn"),
    ("graphret.api.build", "find_partition", "communities"),
    ("graphret.graph.search_graph", "_forward_kernel", "walk"), ("graphret.graph.search_graph", "_with_reverse", "walk"),
    ("graphret.graph.search_graph", "_local_kernel", "walk"), ("graphret.graph.search_graph", "_refine_kernel", "walk"),
    ("graphret.api.build", "entry_points", "walk"), ("graphret.api.build", "_walk_lists", "walk"),
    ("graphret.api.build", "prepared_tables", "write"), ("graphret.api.build", "write_store", "write"),
)
D = 128
SPREAD = 1.25


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


#: the rows the wrapped functions time into: the current build's (:func:`wrap` wraps once per process)
ROWS: list[dict] = []


def wrap() -> None:
    """Time each WRAPPED function (that exists in this checkout) into :data:`ROWS`, nested calls
    indented; once per process (a second wrapping would time every call twice)."""
    if getattr(wrap, "done", False):
        return
    wrap.done = True  # type: ignore[attr-defined]
    depth = [0]
    for module, name, step in WRAPPED:
        mod = importlib.import_module(module)
        fn = getattr(mod, name, None)
        if fn is None:
            continue

        def timed_fn(*args, _fn=fn, _name=name, _step=step, **kwargs):
            t0, c0 = time.perf_counter(), cpu_seconds()
            depth[0] += 1
            try:
                return _fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                ROWS.append({"part": _name, "step": _step, "depth": depth[0], "wall_s": round(time.perf_counter() - t0, 1),
                             "cpu_s": round(cpu_seconds() - c0, 1), "load": round(os.getloadavg()[0], 1)})

        setattr(mod, name, timed_fn)


def option(text: str) -> tuple[str, object]:
    key, value = text.split("=")
    return key, json.loads(value)


def build(n: int, config: str, work: Path, n_queries: int):
    import graphret
    from bench_queries import clustered_codes

    options = dict(option(part) for part in config.split(",")) if config != "default" else {}
    codes, labels, queries, _ = clustered_codes(n, d=D, seed=0, spread=SPREAD, n_queries=n_queries)  # queries: fresh draws
    wrap()
    ROWS.clear()
    path = work / f"build-{n}-{config.replace('=', '-').replace(',', '_')}"
    shutil.rmtree(path, ignore_errors=True)
    log(f"building {n:,} codes, {config}")
    t0, c0 = time.perf_counter(), cpu_seconds()
    store = graphret.build_from_codes(codes, path, labels=[f"c{c}" for c in labels % 20], knn="faiss", communities=["cnm"],
                                      log=lambda m: log(f"  {m}"), **options)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    manifest = store.manifest
    rows = list(ROWS)
    steps: dict[str, dict] = {}
    for row in rows:
        if row["depth"] == 0:
            into = steps.setdefault(row["step"], {"wall_s": 0.0, "cpu_s": 0.0})
            into["wall_s"] = round(into["wall_s"] + row["wall_s"], 1)
            into["cpu_s"] = round(into["cpu_s"] + row["cpu_s"], 1)
    report = {"config": config, "options": options, "n": n, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
              "load_at_end": [round(x, 1) for x in os.getloadavg()], "steps": steps, "parts": rows,
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "manifest_seconds": manifest["build"]["seconds"], "walk": manifest.get("walk"),
              "knn": {key: manifest["graph"].get(key) for key in ("faiss", "recall", "edges")}}
    log(f"built in {wall:.0f} s wall, {cpu:.0f} s CPU: {steps}")
    return path, report, queries


def quality(path: Path, efs: list[int], queries) -> tuple[dict, list]:
    """Graph mode's recall@10 against flat, and the walk over the layout: searches to time."""
    import numpy as np

    import graphret
    from graphret.graph.walk import walk_checked

    store = graphret.open(path)
    n = len(store)
    graph = store.search(queries[:200], k=10, mode="graph").rows
    flat = store.search(queries[:200], k=10, mode="flat").rows
    out = {"graph_recall_at_10": round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(graph, flat)])), 4)}
    base = store.searcher().index.graph_base  # the inputs graph mode walks (the community layout above 50k)
    codes = np.asarray(store.codes(), dtype=np.float32)
    truth = exact_topk(codes, queries, 50, block=max(1, (1 << 26) // n))
    searches = []
    for ef in efs:
        def walk(ef=ef):
            return walk_checked(base.with_queries(queries, 50, ef=ef), threads=1)
        rows = walk()[0]
        row = {"ef": ef, "recall_at_50": round(recall(rows, truth), 4)}
        out.setdefault("walk", []).append(row)
        searches.append((row, walk))
    return out, searches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--configs", nargs="+", default=["default"], help="build options per build, key=json,... or default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_build_steps"))
    parser.add_argument("--efs", type=int, nargs="+", default=[48, 64, 80, 96])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the built stores")
    parser.add_argument("--name", default="build_steps")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--report", action="store_true", help="only write NAME.md again from NAME.json under --out")
    args = parser.parse_args()
    if args.report:
        (args.out / f"{args.name}.md").write_text(markdown(json.loads((args.out / f"{args.name}.json").read_text())))
        return
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[name] = str(args.threads)
    import numba

    started = machine("numba", "faiss")
    args.work.mkdir(parents=True, exist_ok=True)
    builds, searches = [], []
    for config in args.configs:
        numba.set_num_threads(args.threads)
        path, report, queries = build(args.n, config, args.work, args.queries)
        numba.set_num_threads(1)
        report["quality"], found = quality(path, args.efs, queries)
        builds.append(report)
        searches += [(report["config"], row, fn) for row, fn in found]
        if not args.keep:
            shutil.rmtree(path, ignore_errors=True)
    best = [float("inf")] * len(searches)
    for _ in range(args.reps):  # passes taken in turn over every store and ef
        for a, (_, _, fn) in enumerate(searches):
            t0 = time.perf_counter()
            fn()
            best[a] = min(best[a], time.perf_counter() - t0)
    for (_, row, _), seconds in zip(searches, best):
        row["qps"] = round(args.queries / seconds)
    report = {"machine": started, "command": "python benchmarks/bench_build_steps.py " + " ".join(sys.argv[1:]),
              "threads": args.threads, "builds": builds, "load_at_end": [round(x, 1) for x in os.getloadavg()]}
    text = markdown(report)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=1, default=str))
        (args.out / f"{args.name}.md").write_text(text)


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# The whole build step by step, and its walk lists (issue 25.4)", "",
             f"Run {m['date_utc']} on {m['cpu']} ({m['cores']} cores, shared; load average at start "
             f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}, at the end "
             f"{', '.join(f'{x:.1f}' for x in report['load_at_end'])}); {report['threads']} threads.", "",
             f"Command: `{report['command']}`", "",
             "CPU s = this process's user + system seconds over all its threads (the load does not inflate them "
             "as it does the wall); load = the 1-minute load average when the step ended.", ""]
    for b in report["builds"]:
        lines += [f"## {b['n']:,} codes, config `{b['config']}`", "",
                  f"Whole build: **{b['wall_s']} s wall, {b['cpu_s']} CPU s**; peak RSS {b['peak_rss_mib']:,} MiB; "
                  f"kNN {json.dumps(b['knn'])}; walk {json.dumps(b['walk'])}.", "",
                  *([f"Note: {b['note']}.", ""] if b.get("note") else []),
                  "| step / part | wall s | CPU s | load |", "|---|---:|---:|---:|"]
        lines += [f"| {'&nbsp;&nbsp;' * r['depth']}{r['part']} ({r['step']}) | {r['wall_s']} | {r['cpu_s']} | {r['load']} |"
                  for r in b["parts"]]
        q = b["quality"]
        lines += ["", f"Graph mode recall@10 against flat (200 fresh codes): **{q['graph_recall_at_10']}**.", "",
                  "| walk over the layout, ef | recall@50 | q/s (one thread) |", "|---:|---:|---:|"]
        lines += [f"| {w['ef']} | {w['recall_at_50']:.4f} | {w['qps']:,} |" for w in q["walk"]]
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
