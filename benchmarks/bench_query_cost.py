"""Benchmark: the cost of one query against the archive's size (issue 25, deliverable 1).

Stores of 10k, 100k and 1M generated codes (``bench_queries.clustered_codes``, d = 128, built
once through ``graphret.build_from_codes`` with cheap options: FAISS kNN, CNM, the walk lists
that ``walk_effort`` picks for the size) and, per store, the time of one query per call:

* **by id**: ``store.search([stored_id], k=10, mode=M)`` -- a stored item as the query;
* **by code**: ``store.search(code, k=10, mode=M)`` -- a fresh code;
* **lean**: ``Searcher.search_arrays`` -- arrays in, arrays out, what the server calls;

for M in region (the default), graph and flat (flat scans the archive, so it is the O(n)
contrast).  The searcher is warmed first (what a query needs is prepared once per store
version); each figure is the median of ``--queries`` calls, in microseconds, the fastest of
``--rounds`` such medians, the rounds taken in turn over every store and path (a busy spell of
the shared machine then hits every size alike).  Also graph mode's walk alone (``walk_checked``)
over the archive's order and over the community layout.  A per-query
cost that does not depend on the archive's size shows as a 1M / 10k ratio near 1 for region
and graph.  By image: an image query is its encoding (independent of the archive) plus a
query by code; stores built from codes have no encoder, so it is measured on MedNIST only
(``--mednist STORE``).

Usage::

    python benchmarks/bench_query_cost.py --work /tmp/qc --out benchmarks/results/query_cost            # builds what is missing
    python benchmarks/bench_query_cost.py --work /tmp/qc --sizes 1000000 --build-only                   # one build
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_queries import clustered_codes  # noqa: E402
from common import log, utc_stamp  # noqa: E402

D = 128
SPREAD = 1.25
MODES = ("region", "graph", "flat")
#: the filter of the filtered paths: the stores' labels are c0..c19, so it keeps 95 % of the items
WHERE = "label!=c0"


def store_path(work: Path, n: int) -> Path:
    return work / f"codes-{n}"


def ensure_store(work: Path, n: int):
    """The store of n generated codes under ``work``, built when missing (seconds recorded)."""
    import graphret

    path = store_path(work, n)
    if path.exists():
        try:
            return graphret.open(path), None
        except graphret.GraphretError:
            pass
    codes, labels, _, _ = clustered_codes(n, d=D, seed=0, spread=SPREAD)
    log(f"building {n} codes")
    started = time.perf_counter()
    store = graphret.build_from_codes(codes, path, labels=[f"c{c}" for c in labels % 20], knn="faiss",
                                      communities=["cnm"], log=lambda m: log(f"  [{n}] {m}"))
    seconds = time.perf_counter() - started
    log(f"built {n} in {seconds:.0f} s")
    return store, seconds


def median_us(call, items) -> float:
    times = []
    for item in items:
        t0 = time.perf_counter()
        call(item)
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1e6, 1)


def calls(store, n_queries: int, seed: int) -> dict:
    """The timed calls of one store, warmed: ``{(mode, path): (call, items)}``."""
    rng = np.random.default_rng(seed)
    n = len(store)
    ids = [str(store.ids[r]) for r in rng.choice(n, size=min(n_queries, n), replace=False)]
    _, _, fresh, _ = clustered_codes(1000, d=D, seed=seed + 1, spread=SPREAD, n_queries=n_queries)
    searcher = store.searcher()
    searcher.lay_out()  # (warmed as a server warms a version: Searcher.LAYOUT_AFTER)
    rows = np.asarray([store.snapshot.row_of_id[i] for i in ids], np.int64)
    out = {}
    for mode in MODES:
        store.search(ids[:1], k=10, mode=mode)  # warm: the index parts this mode needs
        store.search(fresh[0], k=10, mode=mode)
        searcher.search_arrays(fresh[:1], k=10, mode=mode)
        out[(mode, "by_id")] = (lambda i, mode=mode: store.search([i], k=10, mode=mode), ids)
        out[(mode, "by_code")] = (lambda q, mode=mode: store.search(q, k=10, mode=mode), fresh)
        out[(mode, "lean_code")] = (lambda q, mode=mode: searcher.search_arrays(q[None, :], k=10, mode=mode), fresh)
        out[(mode, "lean_row")] = (lambda r, mode=mode: searcher.search_arrays(None, rows=np.array([r]), k=10, mode=mode), rows)
    # the walk alone, over the archive's order and over the community layout (graphret.graph.layout)
    from graphret.graph.walk import walk_checked

    index = searcher.index
    for name, base in (("walk_archive_order", index.walk_base), ("walk_layout", index.graph_base)):
        walk_checked(base.with_queries(fresh[:1], 10))
        out[("graph", name)] = (lambda q, base=base: walk_checked(base.with_queries(q, 10)), fresh)
    # region's search alone (walk + growth, cosine order's nearest item held), the same two ways
    from graphret.query.graph_region import DEFAULT_REGION_EF, region_checked

    region, _ = index.region
    for name, base in (("region_archive_order", index.walk_base), ("region_layout", index.graph_base)):
        def grow(q, base=base):
            return region_checked(base.with_queries(q, 10, ef=DEFAULT_REGION_EF), region, hold_nearest=True)
        grow(fresh[:1])
        out[("region", name)] = (grow, fresh)
    # filtered (WHERE keeps 95 % of the items): through store.search, and each search alone with the
    # mask over the archive's order or over the layout's positions (what the Searcher maps once per filter)
    allowed, n_allowed = searcher.allowed(WHERE)
    laid = None if index.graph_base.layout is None else np.ascontiguousarray(allowed[index.graph_base.layout.order])
    for mode in ("region", "graph"):
        store.search(fresh[0], k=10, mode=mode, where=WHERE)
        out[(mode, "by_code_where")] = (lambda q, mode=mode: store.search(q, k=10, mode=mode, where=WHERE), fresh)
        for name, mask in (("where_archive_order", None), ("where_layout", laid)):
            def search(q, mode=mode, mask=mask):
                w = index.graph_base.with_queries(q, 10, allowed=allowed, n_allowed=n_allowed, allowed_laid=mask,
                                                  ef=DEFAULT_REGION_EF if mode == "region" else None)
                return region_checked(w, region, hold_nearest=True) if mode == "region" else walk_checked(w)
            search(fresh[:1])
            out[(mode, f"{mode}_{name}")] = (search, fresh)
    return out


def measure(stores: dict[int, object], n_queries: int, seed: int, rounds: int) -> dict[int, dict]:
    """Median microseconds per call, per store, mode and path: the fastest of ``rounds`` medians,
    the rounds taken in turn over every store and path (so that a busy spell of the shared
    machine hits every size alike, not one)."""
    timed_calls = {n: calls(store, n_queries, seed) for n, store in stores.items()}
    best: dict[int, dict] = {n: {} for n in stores}
    for r in range(rounds):
        for n, table in timed_calls.items():
            for (mode, path), (call, items) in table.items():
                us = median_us(call, items)
                mine = best[n].setdefault(mode, {})
                mine[path] = min(us, mine.get(path, np.inf))
        log(f"round {r + 1}: " + "; ".join(f"{n} graph {best[n]['graph']}" for n in stores))
    return best


def mednist_image(path: str, n_queries: int) -> dict:
    """By image on a pixel store: ``store.search(image_file)`` against by id (same store)."""
    import graphret

    store = graphret.open(path)
    folder = Path(os.environ.get("GRAPHRET_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "mednist" / "jpeg_sample"
    files = sorted(folder.rglob("*.jpeg"))[:n_queries]
    ids = [str(i) for i in store.ids[: len(files)]]
    store.search(str(files[0]), k=10)
    store.search(ids[:1], k=10)
    return {"items": len(store), "by_image": median_us(lambda f: store.search(str(f), k=10), files),
            "by_id": median_us(lambda i: store.search([i], k=10), ids)}


def write_report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "query_cost.json").write_text(json.dumps(results, indent=2) + "\n")
    sizes = sorted(results["sizes"], key=int)
    lines = ["# One query's cost against the archive's size (issue 25.1)", "",
             f"{results['date']}, {results['machine']} (2 cores shared with other work; load average {results['load']}), "
             f"commit {results['commit']}.  Command: `{results['command']}`.", "",
             f"Median microseconds per call, one query per call, k = 10, searcher warmed (prepared once per store version); the fastest of {results.get('rounds', 1)} medians, the rounds taken in turn over every store and path. "
             "Stores: generated codes (d = 128) through `build_from_codes` (FAISS kNN, CNM, default walk lists for the size). "
             "`by id`: `store.search([id])`; `by code`: `store.search(code)`; `lean`: `Searcher.search_arrays` "
             "(arrays in, arrays out, the server's call) with a code or a stored row; `walk archive order` / `walk layout`: the graph "
             "mode's walk alone (`walk_checked`, by code) over the archive in its own order and renumbered by community "
             "(`graphret.graph.layout`, what graph mode walks); `region archive order` / `region layout`: region's search alone (`region_checked`: walk and growth, by code) the same two ways (region mode grows over the layout above `LAYOUT_ABOVE` items too); `by code where`: `store.search(code, where='label!=c0')` (95 % of the items kept), and `MODE where archive order` / `layout`: that filtered search alone with the mask over the archive's order or the layout's positions (the Searcher maps a filter's mask onto the layout once).  Flat scans the archive: the O(n) contrast.", ""]
    header = "| mode | path | " + " | ".join(f"{int(s):,}" for s in sizes) + f" | {int(sizes[-1]):,} / {int(sizes[0]):,} |"
    lines += [header, "|---|---|" + "---:|" * (len(sizes) + 1)]
    for mode in MODES:
        for path in ("by_id", "by_code", "lean_code", "lean_row", "walk_archive_order", "walk_layout", "region_archive_order",
                     "region_layout", "by_code_where", f"{mode}_where_archive_order", f"{mode}_where_layout"):
            if any(path not in results["sizes"][s]["us"][mode] for s in sizes):
                continue
            values = [results["sizes"][s]["us"][mode][path] for s in sizes]
            lines.append(f"| {mode} | {path.replace('_', ' ')} | " + " | ".join(f"{v:,.0f}" for v in values)
                         + f" | {values[-1] / values[0]:.2f} |")
    builds = [f"{int(s):,}: {results['sizes'][s]['build_s']:.0f} s" for s in sizes if results["sizes"][s].get("build_s")]
    if builds:
        lines += ["", "Build seconds (this run): " + ", ".join(builds) + "."]
    steps = [f"{int(s):,}: " + ", ".join(f"{k} {v:.0f} s" for k, v in results["sizes"][s]["build_steps_s"].items())
             + " (walk lists: {passes} passes, expand {expand}, {local_passes} local)".format(**results["sizes"][s]["walk"])
             for s in sizes if results["sizes"][s].get("build_steps_s")]
    if steps:
        lines += ["", "Each store's build as its manifest records it (2 threads, on the shared machine): " + "; ".join(steps) + "."]
    if results.get("mednist"):
        m = results["mednist"]
        lines += ["", f"By image on the MedNIST pixel store ({m['items']:,} items, region): `store.search(jpeg_file)` "
                      f"{m['by_image']:,.0f} us per call against {m['by_id']:,.0f} us by id: the difference is reading "
                      "and encoding the image, which does not depend on the archive."]
    (out / "query_cost.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--work", type=Path, required=True, help="where the stores are built (kept for reruns)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every store and path; the fastest median is kept")
    parser.add_argument("--mednist", default=None, help="a MedNIST pixel store, for the by-image figure")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numba

    numba.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    previous = {}
    if args.out and (args.out / "query_cost.json").exists():
        previous = json.loads((args.out / "query_cost.json").read_text()).get("sizes", {})
    sizes = dict(previous)
    stores, seconds = {}, {}
    for n in args.sizes:
        stores[n], seconds[n] = ensure_store(args.work, n)
    if args.build_only:
        return
    for n, us in measure(stores, args.queries, args.seed, args.rounds).items():
        manifest = stores[n].manifest
        sizes[str(n)] = {"build_s": seconds[n] or previous.get(str(n), {}).get("build_s"), "us": us,
                         "build_steps_s": manifest.get("build", {}).get("seconds"),
                         "walk": {key: manifest.get("walk", {}).get(key, 0) for key in ("passes", "expand", "local_passes", "candidates")}}
    del stores
    if args.build_only or not args.out:
        return
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
    results = {"date": utc_stamp(), "machine": platform.machine(),
               "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()), "commit": commit,
               "command": "python benchmarks/bench_query_cost.py " + " ".join(sys.argv[1:]), "sizes": sizes, "rounds": args.rounds,
               "mednist": mednist_image(args.mednist, args.queries) if args.mednist else None}
    write_report(results, args.out)


if __name__ == "__main__":
    main()
