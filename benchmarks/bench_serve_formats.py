"""Benchmark: what one request of `graphret serve` costs in-process on stores of different
formats (issue 25, item 3's A/B of the memory-mapped prepared tables, store format 3, against
format 2, whose tables a server builds in memory).

Each ``--store NAME=PATH`` is opened as a server worker opens it (:class:`StoreHolder`, warmed);
``NAME=PATH#anonymous`` opens it with the prepared arrays copied into the process's own memory
(anonymous pages, which numpy may back with transparent huge pages, against the file's 4 KiB
pages): whether the mapping itself costs anything.  Then, in ``--rounds`` rounds, each store
answers a block of ``--block`` searches by stored id (region unless ``--mode``, k 10, cycling
through 500 seeded test ids, or items where there is no test split) through the server's own ``run_search``, and another block through the
searcher's lean call alone (``search_arrays``: the index's part), the stores taking turns;
reported: this thread's CPU microseconds per request (min and median of the blocks), the minor
page faults per request in the timed blocks, and the Python calls per request (cProfile, one
block): what a format adds per request shows in these whatever the machine's load.

    python benchmarks/bench_serve_formats.py --store f2=/tmp/lean/mednist --store f3=/tmp/lean4/mednist \\
        --store 'f3-anonymous=/tmp/lean4/mednist#anonymous' --out benchmarks/results/serve_formats
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import sys
import time
from pathlib import Path

import numpy as np

from common import load_average, log, machine, one_thread, utc_stamp

one_thread()

ANONYMOUS = "#anonymous"


def open_holder(path: str):
    """A server's StoreHolder of ``path``; with ``#anonymous``, its prepared arrays copied."""
    import graphret.query.archive as archive
    from graphret.query.prepared import Prepared, PreparedRegion, read_prepared
    from graphret.serve.holder import StoreHolder

    if not path.endswith(ANONYMOUS):
        return StoreHolder(path)

    def copied(store, n):
        p = read_prepared(store, n)
        if p is None:
            return None
        c = np.array  # (a copy in this process's memory)
        return Prepared(tuple(c(a) for a in p.graph), None if p.degree is None else c(p.degree),
                        None if p.walk is None else tuple(c(a) for a in p.walk),
                        {m: PreparedRegion(c(r.labels), c(r.community), c(r.same), (*map(c, r.totals[:3]), r.totals[3]))
                         for m, r in p.regions.items()})

    archive.read_prepared = copied
    try:
        return StoreHolder(path[:-len(ANONYMOUS)])
    finally:
        archive.read_prepared = read_prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", action="append", required=True, metavar="NAME=PATH[#anonymous]")
    parser.add_argument("--mode", default="region")
    parser.add_argument("--block", type=int, default=300, help="requests per timed block")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from graphret.query.config import SearchConfig
    from graphret.query.queries import stored_rows
    from graphret.serve.config import ServeConfig
    from graphret.serve.search import run_search

    config, options = ServeConfig(), SearchConfig(k=10, mode=args.mode)
    stores = {}
    for item in args.store:
        name, _, path = item.partition("=")
        log(f"opening {name}")
        holder = open_holder(path)
        view = holder.view
        snap = view.snapshot
        pool = snap.split_rows(["test"]) if "test" in snap.split_names else np.arange(len(snap))
        ids = [str(snap.ids[r]) for r in np.random.default_rng(0).choice(pool, size=min(500, len(pool)), replace=False)]
        stores[name] = (view, ids, [stored_rows(view.snapshot, [i]) for i in ids], view.searcher(**options.index_options()),
                        view.snapshot.manifest.get("format_version"))

    def block(name: str, whole: bool) -> tuple[float, float]:
        view, ids, rows, searcher, _ = stores[name]
        faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        started = time.thread_time()
        for i in range(args.block):
            if whole:
                run_search(view, [ids[i % len(ids)]], "ids", options, config, n_queries=1)
            else:
                searcher.search_arrays(rows=rows[i % len(rows)], config=options)
        seconds = time.thread_time() - started
        return seconds / args.block * 1e6, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / args.block

    for name in stores:  # warm-up: first touches, compiled kernels loaded
        block(name, True), block(name, False)
    load0 = load_average()
    times: dict[tuple[str, bool], list[tuple[float, float]]] = {(n, w): [] for n in stores for w in (True, False)}
    for r in range(args.rounds):
        for name in stores:
            for whole in (True, False):
                times[(name, whole)].append(block(name, whole))
    calls = {}
    for name in stores:
        profile = cProfile.Profile()
        profile.enable()
        block(name, True)
        profile.disable()
        calls[name] = round(pstats.Stats(profile).total_calls / args.block, 1)
    rows = []
    for name, (_, _, _, _, fmt) in stores.items():
        for whole in (True, False):
            us = [t for t, _ in times[(name, whole)]]
            rows.append({"store": name, "format": fmt, "path": "run_search" if whole else "search_arrays",
                         "cpu_us_min": round(min(us), 1), "cpu_us_median": round(float(np.median(us)), 1),
                         "minflt_per_request": round(float(np.mean([f for _, f in times[(name, whole)]])), 3),
                         "python_calls_per_request": calls[name] if whole else None})
            log(json.dumps(rows[-1]))
    result = {"date": utc_stamp(), "load": [load0, load_average()], "machine": machine(), "mode": args.mode,
              "block": args.block, "rounds": args.rounds, "rows": rows,
              "command": "python benchmarks/bench_serve_formats.py " + " ".join(sys.argv[1:])}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        stamp = utc_stamp().replace(" ", "-").replace(":", "")
        (args.out / f"formats-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
        lines = [f"# One request of `graphret serve`, in-process, per store ({result['date']})", "",
                 f"Load average {load0} -> {result['load'][1]}; {args.rounds} rounds of {args.block} requests per store and path, "
                 f"by stored id, {args.mode}, k 10. Command: `{result['command']}`.", "",
                 "| store | format | path | CPU us / request, min | median | minor faults / request | Python calls / request |",
                 "|---|---:|---|---:|---:|---:|---:|"]
        for row in rows:
            lines.append(f"| {row['store']} | {row['format']} | {row['path']} | {row['cpu_us_min']} | {row['cpu_us_median']} | "
                         f"{row['minflt_per_request']} | {row['python_calls_per_request'] or '-'} |")
        (args.out / f"formats-{stamp}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
