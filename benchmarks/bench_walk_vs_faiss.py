"""Benchmark: the graph walk against FAISS IVF-Flat and HNSW-Flat at recall@50 >= 0.95, one
thread, batched, on MedNIST pixel codes and on a store of generated codes (issue 25,
deliverable 4) -- a bounded run of the walk-vs-FAISS rows of bench_graph_search.py, with walk
lists of other build settings beside the default ones, each walked in the archive's order and
in community order (``layout``: graphret.graph.layout, what the graph mode's searcher walks).

Data and settings as bench_graph_search.py: MedNIST pixel codes (32x32 grey, PCA 128), archive
= the seeded 70 % split, ``--queries`` seeded test codes; exact kNN graph (k 10), CNM (size +
multilevel) for the entry points; walk lists ``build_search_graph`` with the default settings
and each ``--lists`` variant (``max_degree:alpha``); FAISS IVF-Flat (nlist = sqrt(n)) and
HNSW-Flat (M 32, efConstruction 40).  Every search on one thread (numba, FAISS, BLAS),
fastest of ``--reps`` batched passes taken in turn over all rows.  The goal row: for each family the fastest setting with
recall@50 >= 0.95, and walk / max(IVF, HNSW) -- ratios from one run.  The profile columns: codes scored per query (the
walk's ``compared``: its entry points and every node it touched; FAISS HNSW's ``hnsw_stats.ndis``; IVF's
``indexIVF_stats.ndis`` plus the nlist centroids) and the time per scored code, so that a difference in speed reads as
fewer distances or cheaper ones.

Generated codes (``--store``, a store of ``bench_query_cost.py``: ``clustered_codes``, d = 128,
spread 1.25, seed 0): its codes, kNN graph and CNM communities; ``--queries`` fresh points of
the same mixture; walk lists rebuilt here from the stored kNN graph, timed on 2 threads: the
build's default for the size (above 100,000 items: the kNN lists and one local pass), built in
the archive's order and in community order (``build_search_graph(groups=)``: the same lists,
checked), the kNN lists alone, and with ``--full`` the full lists (expansion + 2 passes) built
in community order (``--lists`` variants are ``max_degree:alpha`` with the default effort);
FAISS IVF-Flat nlist sqrt(n) trained on every 20th code; HNSW-Flat only with ``--hnsw``
(M 32, efConstruction 40, built on 2 threads: long at 1M).  ``--candidates N`` adds the lists
from the kNN search's N candidates (the build's default above 100k items), ``--candidates-only``
walks only those.  ``--compact`` walks each layout a third way: scoring its one-byte copy of the
codes (graphret.graph.compact, what the searcher walks above COMPACT_ABOVE items), the best
nodes rescored exactly, the best seed's community prefetched whole.

    python benchmarks/bench_walk_vs_faiss.py --out benchmarks/results/graph_search
    python benchmarks/bench_walk_vs_faiss.py --store /tmp/qc/codes-1000000 --queries 1000 --reps 3 --lists \
        --name walk_vs_faiss_1m --out benchmarks/results/graph_search
    python benchmarks/bench_walk_vs_faiss.py --store /tmp/qc/codes-1000000 --queries 1000 --reps 5 --candidates 64 \
        --candidate-locals 0 --candidates-only --compact --name walk_vs_faiss_1m_compact --out benchmarks/results/graph_search
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
WALK_EFS_1M = (48, 64, 80, 96, 128)
IVF_PROBES_1M = (1, 2, 4)


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


def mednist_data(n_queries: int) -> dict:
    """MedNIST pixel codes: archive, seeded test queries, exact kNN graph, CNM communities, and
    the walk-list settings to compare (bench_graph_search's WALK)."""
    from bench_graph_search import WALK, pixel_codes
    from graphret.communities.cnm import cnm
    from graphret.graph.build import graph_from_knn
    from graphret.graph.knn import exact_knn

    data = pixel_codes("mednist")
    codes = data["archive"]
    rng = np.random.default_rng(0)
    queries = np.ascontiguousarray(data["queries"][np.sort(rng.choice(len(data["queries"]), n_queries, replace=False))])
    graph = graph_from_knn(*exact_knn(codes, 10))
    membership = cnm(graph, heuristic="size", refine="multilevel").membership
    return {"name": "MedNIST pixel codes", "codes": codes, "queries": queries, "graph": graph, "membership": membership,
            "walk": dict(WALK), "ef": WALK_EFS, "ivf_probes": IVF_PROBES}


def generated_data(store_path: str, n_queries: int, candidates: int = 0, candidate_locals: tuple[int, ...] = ()) -> dict:
    """A bench_query_cost.py store of generated codes: its codes, kNN graph and communities,
    fresh queries of the same mixture (the store's codes are checked to be the mixture's), and
    the walk lists the build makes by default for the size beside the kNN lists alone."""
    from bench_query_cost import D, SPREAD
    from bench_queries import clustered_codes
    from graphret.graph.search_graph import walk_effort
    from graphret.store.read import Snapshot

    snap = Snapshot(store_path)
    codes = np.array(snap.codes(), dtype=np.float32)  # in memory, as FAISS holds its copy (the store maps its file)
    n = len(codes)
    again, _, queries, _ = clustered_codes(n, d=D, seed=0, spread=SPREAD, n_queries=n_queries)
    if not (np.array_equal(again[:100], codes[:100]) and np.array_equal(again[-100:], codes[-100:])):
        raise SystemExit(f"{store_path} does not hold bench_query_cost.py's generated codes of {n} items")
    del again
    effort = walk_effort(n, searched=False)  # the lists of the stored kNN graph (--candidates: the search's own)
    extra = {}
    if candidates:  # each code's most similar codes of the build's FAISS kNN search (graphret.graph.faiss_knn, keep)
        from graphret.graph.faiss_knn import faiss_knn

        (cand, _), seconds = timed(lambda: faiss_knn(codes, 10, keep=candidates, threads=2))
        log(f"the kNN search with {candidates} candidates kept: {seconds:.0f} s (2 threads)")
        extra = {"candidates": cand, "candidate_locals": candidate_locals, "candidates_seconds": round(seconds, 1)}
    return {**extra, "name": f"generated codes (clustered_codes, d {D}, spread {SPREAD}), store {store_path}", "codes": codes,
            "queries": queries, "graph": snap.graph(), "membership": snap.membership(),
            "walk": {"max_degree": 24, "alpha": 1.0, "passes": effort.passes, "expand": effort.expand,
                     "local_passes": effort.local_passes},
            "cheap": {"passes": 0, "expand": False, "local_passes": 0}, "ef": WALK_EFS_1M, "ivf_probes": IVF_PROBES_1M}


def run(data: dict, reps: int, variants: list[tuple[int, float]], with_hnsw: bool, full: bool = False,
        compact: bool = False, candidates_only: bool = False) -> dict:
    import faiss
    import numba

    from graphret.graph.compact import compact_codes
    from graphret.graph.layout import walk_layout
    from graphret.graph.walk import RESCORE_MARGIN
    from graphret.graph.search_graph import build_search_graph, entry_points
    from graphret.graph.walk import graph_walk

    codes, queries, graph, membership = data["codes"], data["queries"], data["graph"], data["membership"]
    n, d = codes.shape
    log(f"{data['name']}: {n:,} codes, {len(queries):,} queries")
    block = max(1, (1 << 26) // n)  # queries scored at a time: their (block, n) cosines and argpartition stay ~1 GB
    truth, seconds = timed(lambda: exact_topk(codes, queries, K, block=block))
    log(f"exact top-{K} in {seconds:.0f} s")
    searches, builds = [], {}
    if "candidates_seconds" in data:
        builds["the FAISS kNN search keeping the candidates"] = {"seconds_2_threads": data["candidates_seconds"],
                                                                 "keep": int(data["candidates"].shape[1])}
    settings = [(f"max_degree {m}, alpha {a}", {**data["walk"], "max_degree": m, "alpha": a})
                for m, a in [(data["walk"]["max_degree"], data["walk"]["alpha"])] + variants]
    if "cheap" in data:
        default = settings[0][0]
        settings.append((f"{default}, built in community order", {**data["walk"], "groups": True}))
        settings.append(("kNN lists only (no local pass)", {**data["walk"], **data["cheap"]}))
        if full:
            settings.append(("full lists (expansion, 2 passes), built in community order",
                             {**data["walk"], "passes": 2, "expand": True, "local_passes": 0, "groups": True}))
        for local in data.get("candidate_locals", ()):
            settings.append((f"the kNN search's {data['candidates'].shape[1]} candidates, {local} local pass"
                             f"{'' if local == 1 else 'es'}, built in community order",
                             {**data["walk"], "passes": 0, "expand": False, "local_passes": local, "groups": True,
                              "neighbors": "candidates"}))
    if candidates_only and "candidates" in data:
        settings = [setting for setting in settings if "candidates" in setting[0]]
    numba.set_num_threads(2)
    built: list[tuple[str, tuple]] = []
    for name, walk in settings:
        groups = membership if walk.pop("groups", False) else None  # (graphret.graph.search_graph, 6)
        source = data["candidates"] if walk.pop("neighbors", None) == "candidates" else graph
        lists, seconds = timed(lambda: build_search_graph(codes, source, **walk, threads=2, groups=groups))
        builds[name] = {"seconds_2_threads": round(seconds, 1), "mean_degree": round(float(np.diff(lists[0]).mean()), 2),
                        **{key: walk[key] for key in ("passes", "expand", "local_passes") if key in walk},
                        "order": "community" if groups is not None else "archive"}
        same = next((other for other, done in built if all(np.array_equal(a, b) for a, b in zip(done, lists))), None)
        built.append((name, lists))
        log(f"lists {name}: {builds[name]}")
        if same is not None:  # the same lists, built faster or slower: their walks are the other's
            builds[name]["identical_to"] = same
            continue
        entries = entry_points(codes, membership, graph=lists)
        entry_codes = np.ascontiguousarray(codes[entries])
        layout, seconds = timed(lambda: walk_layout(codes, *lists, entries, membership))
        builds[name]["layout_seconds"] = round(seconds, 2)
        orders = [(None, ""), (layout, ", community layout")]
        if compact:  # the layout with its one-byte scoring copy (graphret.graph.compact), as the searcher walks above LAYOUT_ABOVE
            small, seconds = timed(lambda: compact_codes(layout.codes, layout.entries))
            builds[name]["compact_seconds"] = round(seconds, 2)
            orders.append((layout._replace(compact=small), f", community layout, one-byte codes (rescored within {RESCORE_MARGIN:g} sd)"))
        for ef in data["ef"]:
            for laid, label in orders:
                row = {"family": "walk", "lists": name + label, "setting": f"ef={ef}"}
                searches.append((row, lambda lists=lists, entries=entries, entry_codes=entry_codes, ef=ef, laid=laid: graph_walk(
                    codes, *lists, queries, K, entries=entries, entry_codes=entry_codes, ef=ef, threads=1, layout=laid)))
    faiss.omp_set_num_threads(1)
    nlist = int(np.sqrt(n))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(codes if n <= 200_000 else codes[::20])
    ivf.add(codes)
    hnsw = None
    if with_hnsw:
        faiss.omp_set_num_threads(2)
        hnsw = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 40
        _, seconds = timed(lambda: hnsw.add(codes))
        builds["FAISS HNSW-Flat M 32, efConstruction 40"] = {"seconds_2_threads": round(seconds, 1)}
        faiss.omp_set_num_threads(1)

    def ivf_search(nprobe):
        ivf.nprobe = nprobe
        faiss.cvar.indexIVF_stats.reset()
        rows = ivf.search(queries, K)[1]
        return rows, None, faiss.cvar.indexIVF_stats.ndis + nlist * len(queries)  # list codes + the centroid scan

    def hnsw_search(ef):
        hnsw.hnsw.efSearch = ef
        faiss.cvar.hnsw_stats.reset()
        rows = hnsw.search(queries, K)[1]
        return rows, None, faiss.cvar.hnsw_stats.ndis

    for nprobe in data["ivf_probes"]:
        searches.append(({"family": "FAISS IVF-Flat", "lists": f"nlist {nlist}", "setting": f"nprobe={nprobe}"},
                         lambda nprobe=nprobe: ivf_search(nprobe)))
    for ef in HNSW_EFS if hnsw is not None else ():
        searches.append(({"family": "FAISS HNSW-Flat", "lists": "M 32, efConstruction 40",
                          "setting": f"efSearch={ef} (searches max(ef, K))"}, lambda ef=ef: hnsw_search(ef)))
    numba.set_num_threads(1)
    for row, fn in searches:
        found, _, scored = fn()
        row["recall"] = round(recall(found, truth), 4)
        row["scored_per_query"] = round(float(np.sum(scored)) / len(queries), 1)
    interleaved_qps(searches, len(queries), reps)
    for row, _ in searches:
        row["ns_per_scored"] = round(1e9 / (row["qps"] * row["scored_per_query"]), 1)
    rows = [row for row, _ in searches]
    for row in rows:
        log(str(row))
    report = goal(rows)
    return {"data": data["name"], "n": n, "queries": len(queries), "k": K, "builds": builds, "rows": rows, "goal": report,
            "hnsw": hnsw is not None, "duels": duels(searches, report, 4 * reps + 1)}


def duels(searches: list[tuple[dict, object]], report: dict, rounds: int) -> dict:
    """Each walk family's goal setting against each FAISS family's, timed back to back in
    ``rounds`` rounds (the order alternating): the median, min and max of the per-round ratio
    walk q/s / FAISS q/s.  On a shared machine the fastest-pass figures of the table move with
    busy spells (which FAISS index is the faster one among them); a paired ratio moves less,
    and the goal reads against the smaller median of the two rivals."""
    best = report["best_at_recall"]
    fns = {id(row): fn for row, fn in searches}
    rivals = [key for key in best if key.startswith("FAISS")]
    out = {}
    for key in (key for key in best if key.startswith("walk")):
        for rival in rivals:
            ratios = []
            for r in range(rounds):
                pair = [fns[id(best[key])], fns[id(best[rival])]]
                seconds = [timed(fn)[1] for fn in (pair if r % 2 == 0 else pair[::-1])]
                walk_s, faiss_s = seconds if r % 2 == 0 else seconds[::-1]
                ratios.append(faiss_s / walk_s)
            name = f"{key} vs {rival}"
            out[name] = {"walk": key, "against": f"{rival} {best[rival]['setting']}", "rounds": rounds,
                         "median": round(float(np.median(ratios)), 3), "min": round(min(ratios), 3), "max": round(max(ratios), 3)}
            log(f"duel {name}: {out[name]}")
    return out


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
    lines = [f"# Walk vs FAISS at recall@{K} >= {GOAL_RECALL} (issue 25.4), {report['data']}", "",
             f"Run {m['date_utc']} on {m['cpu']} ({m['cores']} cores, shared; load average at start "
             f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}); numpy {m['numpy']}, numba {m['numba']}, "
             f"faiss {m['faiss']}.", "", f"Command: `{report['command']}`", "",
             f"n = {report['n']:,}, {report['queries']:,} queries batched, one thread, K = {K}"
             f"{'' if report['hnsw'] else '; FAISS HNSW-Flat not built in this run (--hnsw)'}.", "",
             "| family | lists / index | setting | q/s | recall@50 | codes scored / query | us / query | ns / code scored |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['family']} | {r['lists']} | {r['setting']} | {r['qps']:,} | {r['recall']:.4f} | {r['scored_per_query']:,.0f} | "
              f"{1e6 / r['qps']:.1f} | {r['ns_per_scored']:.1f} |" for r in report["rows"]]
    lines += ["", "Builds (2 threads): " + "; ".join(f"{k}: {json.dumps(v)}" for k, v in report["builds"].items()), "",
              "Fastest setting with recall >= 0.95 per family, and the walk's ratio to the faster FAISS index:", ""]
    lines += [f"- {k}: {r['setting']}, {r['qps']:,} q/s, recall {r['recall']:.4f}" for k, r in report["goal"]["best_at_recall"].items()]
    lines += [f"- **{k}: {v}x**" for k, v in report["goal"]["walk_over_faster_faiss"].items()]
    if report.get("duels"):
        lines += ["", "Duels (each walk's setting above against each FAISS index's, back to back, the order alternating; "
                      "walk q/s / FAISS q/s per round):", ""]
        lines += [f"- {v['walk']} vs {v['against']}: **median {v['median']}x** (min {v['min']}, max {v['max']}, {v['rounds']} rounds)"
                  for v in report["duels"].values()]
        walks = {v["walk"] for v in report["duels"].values()}
        lines += ["", "Goal (walk >= the faster FAISS index), by the duels: " + "; ".join(
            f"{w}: **{min(v['median'] for v in report['duels'].values() if v['walk'] == w)}x** against the harder rival"
            for w in sorted(walks))]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--lists", nargs="*", default=["32:1.2"], help="extra walk-list settings, max_degree:alpha each")
    parser.add_argument("--store", default=None, help="a bench_query_cost.py store of generated codes instead of MedNIST")
    parser.add_argument("--hnsw", action="store_true", help="with --store: build FAISS HNSW-Flat too (long at 1M)")
    parser.add_argument("--full", action="store_true",
                        help="with --store: the full lists too (expansion + 2 passes), built in community order (long at 1M)")
    parser.add_argument("--candidates", type=int, default=0,
                        help="with --store: walk lists from the kNN search's this many most similar codes too")
    parser.add_argument("--candidate-locals", type=int, nargs="*", default=[0, 1],
                        help="local passes over the --candidates lists, one setting each [0 1]")
    parser.add_argument("--compact", action="store_true",
                        help="walk the community layout with its one-byte scoring copy too (graphret.graph.compact)")
    parser.add_argument("--candidates-only", action="store_true",
                        help="with --store and --candidates: only the candidate lists (the build's default above 100k)")
    parser.add_argument("--name", default="walk_vs_faiss", help="results file name")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    variants = [(int(v.split(":")[0]), float(v.split(":")[1])) for v in args.lists]
    t0 = time.perf_counter()
    started = machine("numba", "faiss")
    data = generated_data(args.store, args.queries, args.candidates, tuple(args.candidate_locals)) if args.store \
        else mednist_data(args.queries)
    report = run(data, args.reps, variants, with_hnsw=args.hnsw or not args.store, full=args.full and bool(args.store),
                 compact=args.compact, candidates_only=args.candidates_only)
    report["machine"] = started
    report["command"] = "python benchmarks/bench_walk_vs_faiss.py " + " ".join(sys.argv[1:])
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(markdown(report))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=1, default=str))
        (args.out / f"{args.name}.md").write_text(markdown(report))


if __name__ == "__main__":
    main()
