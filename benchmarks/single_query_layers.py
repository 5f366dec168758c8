"""Where one query's time goes: each layer of ``Store.search(code, k=10, mode="graph")``, outermost
first, and the pieces around the compiled call (issue 25.2's per-call Python cost).

Each line is the best per-call time over ``--repeat`` runs of ``--number`` calls (timeit) on
one test item's code of a store, one thread; a layer's time includes the layers below it, so
the difference between two lines is what the outer one adds.  Layers:

* ``Store.search``: the public call (options -> config, the searcher, the result object);
* ``Searcher.search``: with a config object; ``search_arrays``: the lean call (Hits);
* ``Searcher._single_code``: the code's checks, the single walk, the Hits;
* ``SingleWalk``: the compiled call with its output arrays and the rows' map;
* ``_walk_code`` (graphret's Kernel) and its numba dispatcher: the code made unit and walked;

and pieces: the config from keyword options, the searcher's look-up, the scanned fraction,
the QuerySet and SearchResult objects.

Usage::

    python benchmarks/single_query_layers.py --store /tmp/mednist-store --ef 16 --out benchmarks/results/single_query
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

from common import load_average, one_thread, utc_stamp  # noqa: E402 - benchmarks/ is on the path of a script run from it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--ef", type=int, default=16)
    parser.add_argument("--number", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    one_thread()
    import numba
    import numpy as np

    import graphret
    from graphret.graph.walk import WalkScratch, _walk_code
    from graphret.query.config import SearchConfig
    from graphret.query.queries import unit_queries
    from graphret.query.result import SearchResult
    from graphret.query.searcher import scanned_fraction

    numba.set_num_threads(1)
    store = graphret.open(args.store)
    searcher = store.searcher()
    searcher.lay_out()
    q = np.ascontiguousarray(store.codes()[store.snapshot.split_rows(["test"])[0]], np.float32)
    ef, k = args.ef, 10
    options = {"k": k, "mode": "graph", "ef": ef}
    config = searcher._config(SearchConfig.from_options(None, **options))
    store.search(q, **options)  # compiled, laid out, the single walk made
    walk = searcher._single
    q1 = np.ascontiguousarray(q[None])
    out = (np.empty((1, k), np.int64), np.empty((1, k), np.float32), np.empty(1, np.int64), np.empty(1, np.int64))
    unit = np.empty((1, q.shape[0]), np.float32)
    slots = WalkScratch.get(walk.n, 1).slots
    opts = (ef, walk.base.n_entry, k)
    unit_code, hits = searcher._single_code(q, config)
    layers = {
        "Store.search": lambda: store.search(q, **options),
        "Searcher.search (a config)": lambda: searcher.search(q, config),
        "Searcher.search_arrays": lambda: searcher.search_arrays(q, **options),
        "Searcher._single_code": lambda: searcher._single_code(q, config),
        "SingleWalk call": lambda: walk(q1, k, ef),
        "_walk_code (Kernel)": lambda: _walk_code(walk.index, q1, opts, walk.filter, slots, out, unit, True, walk.compact),
        "_walk_code (numba dispatcher)": lambda: _walk_code.dispatcher(walk.index, q1, opts, walk.filter, slots, out, unit, True, walk.compact),
        "piece: SearchConfig.from_options": lambda: SearchConfig.from_options(None, **options),
        "piece: Store.searcher()": lambda: store.searcher(**config.index_options()),
        "piece: scanned_fraction": lambda: scanned_fraction(out[2], walk.n),
        "piece: unit_queries (QuerySet)": lambda: unit_queries(unit_code),
        "piece: SearchResult": lambda: SearchResult(mode="graph", k=k, queries=None, rows=hits.rows, scores=hits.scores,
                                                    scanned_fraction=hits.scanned_fraction, store=searcher.store,
                                                    community_method=searcher.method, details=hits.details),
    }
    times = {}
    for name, call in layers.items():
        times[name] = round(min(timeit.repeat(call, number=args.number, repeat=args.repeat)) / args.number * 1e6, 2)
        print(f"{name:34s} {times[name]:8.2f} us", file=sys.stderr, flush=True)
    result = {"date": utc_stamp(), "load": load_average(), "store": args.store, "ef": ef, "k": k, "us": times,
              "command": "python benchmarks/single_query_layers.py " + " ".join(sys.argv[1:])}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "layers.json").write_text(json.dumps(result, indent=2) + "\n")
        lines = ["# Where one query's time goes: the layers of `Store.search(code, k=10, mode=\"graph\")` (issue 25.2)", "",
                 f"{result['date']}, one thread, 2 shared cores (load average {', '.join(map(str, result['load']))}); "
                 f"{args.store}, one test item's code, ef {ef}, k {k}.  Best per-call time of {args.repeat} x {args.number} "
                 f"calls; a layer includes the ones below it.  Command: `{result['command']}`.", "",
                 "| layer or piece | us per call |", "|---|---:|"]
        lines += [f"| {name} | {us:.2f} |" for name, us in times.items()]
        (args.out / "layers.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
