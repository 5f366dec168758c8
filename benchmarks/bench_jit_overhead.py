"""Benchmark: what the lazy ``njit`` wrapper (:mod:`graphret.kernels.jit`) costs a compiled
search (issue 25.5 must not slow the batch and serve paths).

One process, one thread, a pixel store's test items as queries by stored row, one query per
``Searcher.search_arrays`` call (the server's call, where a fixed per-call cost weighs most),
region and graph modes.  Each round times the same queries twice, through graphret's kernels
(:class:`~graphret.kernels.jit.Kernel`, as shipped) and through numba's dispatchers directly
(the entry kernels swapped for their ``dispatcher``), in alternating order; the report gives
the median of the per-round ratios (wrapper / dispatcher: 1.0 means no cost).

Usage::

    python benchmarks/bench_jit_overhead.py --store /tmp/mednist --out benchmarks/results/cli_query
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_average, log, one_thread, utc_stamp  # noqa: E402

MODES = ("region", "graph")


def main() -> None:
    one_thread()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/cli_query"))
    args = ap.parse_args()
    import numba

    import graphret.graph.walk as walk
    import graphret.query.graph_region as region
    from graphret.query.searcher import Searcher
    from graphret.store.read import open_store

    numba.set_num_threads(1)
    snapshot = open_store(args.store)
    searcher = Searcher(snapshot)
    rows = snapshot.split_rows(["test"])[: args.queries]
    entries = [(region, "_region_range"), (walk, "_walk_range"), (walk, "walk_slots")]
    kernels = [getattr(module, name) for module, name in entries]

    def use(direct: bool) -> None:
        for (module, name), kernel in zip(entries, kernels):
            setattr(module, name, kernel.dispatcher if direct else kernel)

    for mode in MODES:  # compiled, layouts and scratch made
        for row in rows[:20]:
            searcher.search_arrays(rows=np.array([row]), k=10, mode=mode)
    load_before = load_average()
    times: dict[tuple[str, bool], list[float]] = {}
    for r in range(args.rounds):
        log(f"round {r + 1}/{args.rounds}")
        for direct in (False, True) if r % 2 == 0 else (True, False):
            use(direct)
            for mode in MODES:
                start = time.perf_counter()
                for row in rows:
                    searcher.search_arrays(rows=np.array([row]), k=10, mode=mode)
                times.setdefault((mode, direct), []).append((time.perf_counter() - start) / len(rows) * 1e6)
    use(False)
    result = {"date": utc_stamp(), "store": args.store, "queries": len(rows), "rounds": args.rounds,
              "load_average_before": load_before, "load_average_after": load_average(), "modes": {}}
    lines = [f"# The lazy njit wrapper's cost to a compiled search ({result['date']})", "",
             f"Store `{args.store}`, {len(rows)} test items by stored row, one per `Searcher.search_arrays` call, k 10, one "
             f"thread; {args.rounds} rounds, wrapper and dispatcher alternating; load average {load_before} before, "
             f"{result['load_average_after']} after.", "",
             "| mode | through graphret's Kernel, us | numba's dispatcher directly, us | median per-round ratio |", "|---|---:|---:|---:|"]
    for mode in MODES:
        wrapped, direct = times[(mode, False)], times[(mode, True)]
        ratio = statistics.median(a / b for a, b in zip(wrapped, direct))
        result["modes"][mode] = {"wrapper_us": statistics.median(wrapped), "dispatcher_us": statistics.median(direct),
                                 "ratio": ratio, "wrapper_us_all": wrapped, "dispatcher_us_all": direct}
        lines.append(f"| {mode} | {statistics.median(wrapped):.1f} | {statistics.median(direct):.1f} | {ratio:.3f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "jit_overhead.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "jit_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
