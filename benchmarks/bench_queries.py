"""Benchmark: query modes (graphret issue 5) beside FAISS, on the same codes in the same run.

Data sets:

* **MedNIST** (58,954 images, the whole set as the archive: a store built with
  ``graphret build-graph mednist_64.npz --no-split``: pixel baseline codes (128-d), exact
  10-NN graph, CNM (Newman) and Leiden communities).  Queries: 1,000 stored items drawn with
  a fixed seed, each excluded from its own results (FAISS: search K+1 and drop the query);
  exact duplicates of a query elsewhere in the archive stay retrievable.
* **Generated clustered codes** at n = 100k and 1M: a Gaussian mixture on the unit sphere
  (d = 64, n/1000 random unit centres, each point a centre plus N(0, spread^2/d) noise per
  coordinate, L2-normalised -- the generator of bench_communities.py, with ``--spread``, 1.25
  by default).  Queries: 1,000 fresh points from the same mixture.  The kNN graph (k = 10, union) is
  **approximate**: FAISS ``IndexIVFFlat`` (nlist = sqrt(n), nprobe = 8) asked for each point's
  11 nearest, self dropped; its recall against exact kNN on 1,000 sampled points is reported.
  Exact kNN (and pynndescent) at 1M is too slow on this 2-core machine.  Communities: Leiden
  (leidenalg, RBConfiguration, resolution 1, seed 0) on that graph up to ``--leiden-max``
  points (it took 3 minutes at 100k here, so 1M is out of reach), and at every size FAISS
  spherical k-means cells (n/1000 cells) as a stand-in: **at 1M the communities are k-means
  cells, not graph communities**; region growing still runs on the kNN graph inside them.
  CNM is not run on the generated sets (its cost is in bench_communities.py).

Measured for each data set, **single-threaded** (BLAS and FAISS limited to one thread: the
machine is shared and multi-threaded BLAS on a loaded 2-core box times thread contention, not
search):

* graphret flat (exact), probe P = 1, 2, 4, 8 (and 16, 32, 64 to see where recall saturates), region (Haq's Algorithm 1, short-list 4);
* FAISS ``IndexFlatIP`` (exact) and ``IndexIVFFlat`` (nlist = round(sqrt(n)), nprobe = 1, 2,
  4, 8, 16; k-means trained on up to 64 * nlist points, training time reported);

with queries/s one at a time (the first ``--single`` queries, each its own call) and batched
(all queries in one call), the fastest of ``--reps`` repetitions, p50/p95 latency of the one-at-a-time calls, the fraction of the
archive whose codes were compared (FAISS IVF: the probed lists' sizes), recall@K against
graphret flat's exact top-K, and precision@K of labels (same class; generated: same mixture
component).  Region ranks by region growth, not by similarity, so its recall against flat's
top-K is not its goal; its precision is the number to read.

Usage::

    python benchmarks/bench_queries.py --mednist ../shared/data/mednist/mednist_64.npz \\
        --mednist-store /tmp/graphret-bench/mednist-store --sizes 100000 1000000 \\
        --out benchmarks/results/queries
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import common  # noqa: E402  (benchmarks/common.py: the repository on the path, shared helpers)

common.one_thread()  # before numpy loads BLAS: the machine is shared

import numpy as np  # noqa: E402

ROOT = common.ROOT


K = 50
PROBES = (1, 2, 4, 8, 16, 32, 64)
IVF_PROBES = (1, 2, 4, 8, 16)


from common import exact_topk, log, machine, recall, timed  # noqa: E402  (one home: benchmarks/common.py)


# ------------------------------------------------------------------------------------ data
def clustered_codes(n: int, d: int = 64, seed: int = 0, spread: float = 2.5, n_queries: int = 0):
    """bench_communities.py's mixture: ``max(10, n // 1000)`` unit centres, centre plus
    N(0, spread^2/d) per coordinate, L2-normalised; plus ``n_queries`` fresh points."""
    rng = np.random.default_rng(seed)
    c = max(10, n // 1000)
    centres = rng.standard_normal((c, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(m):
        labels = rng.integers(0, c, m)
        x = np.empty((m, d), np.float32)
        for lo in range(0, m, 1 << 18):
            hi = min(lo + (1 << 18), m)
            block = centres[labels[lo:hi]] + spread * rng.standard_normal((hi - lo, d)) / np.sqrt(d)
            x[lo:hi] = block / np.linalg.norm(block, axis=1, keepdims=True)
        return x, labels

    x, labels = draw(n)
    q, q_labels = draw(n_queries)
    return x, labels, q, q_labels


def faiss_knn_graph(codes: np.ndarray, k: int, *, seed: int = 0, threads: int = 2):
    """Approximate kNN graph with FAISS IVF (nlist = sqrt(n), nprobe = 8), union-symmetrised
    by graphret; returns (graph, stats)."""
    import faiss

    from graphret.graph.build import graph_from_knn

    faiss.omp_set_num_threads(threads)
    n, d = codes.shape
    nlist = int(round(np.sqrt(n)))
    t0 = time.perf_counter()
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = codes[rng.choice(n, min(n, 64 * nlist), replace=False)]
    index.train(sample)
    index.add(codes)
    index.nprobe = 8
    sims, idx = index.search(codes, k + 1)
    rows = np.arange(n)[:, None]
    bad = (idx == rows) | (idx < 0)
    sims = np.where(bad, -np.inf, sims)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    idx = np.take_along_axis(idx, order, axis=1)
    sims = np.take_along_axis(sims, order, axis=1)
    sims = np.where(np.isfinite(sims), sims, 0.0).astype(np.float32)
    idx = np.where(idx < 0, rows, idx)
    seconds = time.perf_counter() - t0
    graph = graph_from_knn(idx, sims, symmetrize="union")
    # recall against exact kNN on a sample
    pick = rng.choice(n, min(n, 1000), replace=False)
    exact = exact_topk(codes, codes[pick], k, exclude=pick, block=100)
    faiss.omp_set_num_threads(1)
    return graph, {"method": "faiss IVFFlat kNN (nlist sqrt(n), nprobe 8)", "k": k, "seconds": round(seconds, 2),
                   "recall_vs_exact": round(recall(idx[pick], exact), 4), "recall_sample": int(len(pick))}


# ------------------------------------------------------------------------------------ runs




def _precision(found: np.ndarray, labels: np.ndarray | None, q_labels: np.ndarray | None) -> float | None:
    if labels is None or q_labels is None:
        return None
    return float(np.mean(labels[found] == q_labels[:, None]))


REPS = 3


def measure(name: str, batch_fn, single_fn, n_single: int, truth, labels, q_labels, extra=None) -> dict:
    """Run a method batched (all queries) and one at a time (the first n_single), each
    ``REPS`` times; the fastest repetition counts (the machine is shared and noisy)."""
    seconds = np.inf
    for _ in range(REPS):
        (found, scanned), s = timed(batch_fn)
        seconds = min(seconds, s)
    latencies = None
    for _ in range(REPS):
        lat = []
        for i in range(n_single):
            t0 = time.perf_counter()
            single_fn(i)
            lat.append(time.perf_counter() - t0)
        lat = np.asarray(lat)
        if latencies is None or lat.sum() < latencies.sum():
            latencies = lat
    row = {
        "method": name,
        "qps_batched": round(len(found) / seconds, 1),
        "qps_single": round(n_single / latencies.sum(), 1),
        "p50_ms": round(float(np.percentile(latencies, 50)) * 1e3, 3),
        "p95_ms": round(float(np.percentile(latencies, 95)) * 1e3, 3),
        "scanned_fraction": round(float(np.mean(scanned)), 4),
        "recall_at_k": round(recall(found, truth), 4) if truth is not None else 1.0,
        "precision_at_k": None if labels is None else round(_precision(found, labels, q_labels), 4),
    }
    if extra:
        row.update(extra)
    log(f"  {name}: {row['qps_single']} q/s single, {row['qps_batched']} q/s batched, recall {row['recall_at_k']}, scanned {row['scanned_fraction']}")
    return row


class GraphSearch:
    """The walk lists, entry points and region graph of one archive (graph and region modes)."""

    def __init__(self, codes: np.ndarray, graph, membership: np.ndarray) -> None:
        from graphret.graph.search_graph import build_search_graph, entry_points
        from graphret.query.graph_region import RegionGraph

        self.codes = codes
        self.indptr, self.indices = build_search_graph(codes, graph)
        self.entries = entry_points(codes, membership, graph=(self.indptr, self.indices))
        self.region = RegionGraph.from_graph(graph, membership, knn_k=10)

    def walk(self, queries, k, exclude, ef=48):
        from graphret.graph.walk import graph_walk

        found, _, compared = graph_walk(self.codes, self.indptr, self.indices, queries, k, entries=self.entries, ef=ef, exclude=exclude)
        return found, compared / len(self.codes)

    def grow(self, queries, k, exclude, ef=16):
        from graphret.query.graph_region import graph_region_search

        found, _, compared = graph_region_search(self.codes, queries, k, walk=(self.indptr, self.indices, self.entries),
                                                 region=self.region, ef=ef, exclude=exclude)
        return found, compared / len(self.codes)


def run_dataset(title: str, codes: np.ndarray, labels, queries: np.ndarray, q_labels, exclude: np.ndarray | None,
                indexes: dict, n_single: int, k: int = K, graphs: dict | None = None) -> dict:
    """Every method on one data set.  ``indexes``: community method -> RetrievalIndex;
    ``graphs``: community method -> GraphSearch (graph walk and region on the graph)."""
    import faiss

    from graphret.graph.knn import exact_search as flat_search
    from graphret.query.probe import probe_search

    faiss.omp_set_num_threads(1)
    n, d = codes.shape
    nq = len(queries)
    ex = exclude if exclude is not None else np.full(nq, -1, np.int64)
    rows: list[dict] = []
    log(f"{title}: n={n}, d={d}, {nq} queries ({n_single} one at a time)")

    truth, _ = flat_search(codes, queries, k, exclude=ex)
    rows.append(measure("graphret flat", lambda: (flat_search(codes, queries, k, exclude=ex)[0], np.ones(nq)),
                        lambda i: flat_search(codes, queries[i : i + 1], k, exclude=ex[i : i + 1]), n_single, truth, labels, q_labels))

    def drop_self(ids: np.ndarray) -> np.ndarray:
        out = np.empty((len(ids), k), np.int64)
        for i, row in enumerate(ids):
            row = row[row != ex[i]] if ex[i] >= 0 else row
            out[i] = row[:k]
        return out

    kk = k + (1 if exclude is not None else 0)
    flat_index = faiss.IndexFlatIP(d)
    flat_index.add(codes)
    rows.append(measure("FAISS IndexFlatIP", lambda: (drop_self(flat_index.search(queries, kk)[1]), np.ones(nq)),
                        lambda i: flat_index.search(queries[i : i + 1], kk), n_single, truth, labels, q_labels))

    for method, index in indexes.items():
        for P in PROBES:
            rows.append(measure(f"graphret probe P={P} ({method})",
                                lambda P=P, index=index: _pack(probe_search(index, queries, k, n_probe=P, exclude=ex)),
                                lambda i, P=P, index=index: probe_search(index, queries[i : i + 1], k, n_probe=P, exclude=ex[i : i + 1]),
                                n_single, truth, labels, q_labels, {"communities": index.n_communities}))
    for method, gs in (graphs or {}).items():
        rows.append(measure(f"graphret region on the graph ({method})", lambda gs=gs: gs.grow(queries, k, ex),
                            lambda i, gs=gs: gs.grow(queries[i: i + 1], k, ex[i: i + 1]), n_single, truth, labels, q_labels))
    if graphs:
        gs = next(iter(graphs.values()))
        rows.append(measure("graphret graph walk ef=48", lambda: gs.walk(queries, k, ex),
                            lambda i: gs.walk(queries[i: i + 1], k, ex[i: i + 1]), n_single, truth, labels, q_labels))

    nlist = int(round(np.sqrt(n)))
    quantizer = faiss.IndexFlatIP(d)
    ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    ivf.train(codes[rng.choice(n, min(n, 64 * nlist), replace=False)])
    train_s = time.perf_counter() - t0
    ivf.add(codes)
    sizes = np.array([ivf.invlists.list_size(i) for i in range(nlist)])
    for nprobe in IVF_PROBES:
        ivf.nprobe = nprobe
        _, lists = quantizer.search(queries, nprobe)
        scanned = sizes[lists].sum(axis=1) / n
        rows.append(measure(f"FAISS IndexIVFFlat nprobe={nprobe}",
                            lambda: (drop_self(ivf.search(queries, kk)[1]), scanned),
                            lambda i: ivf.search(queries[i : i + 1], kk),
                            n_single, truth, labels, q_labels, {"nlist": nlist, "train_seconds": round(train_s, 2)}))
    return {"title": title, "n": int(n), "d": int(d), "queries": int(nq), "single": int(n_single), "k": k, "rows": rows}


def _pack(result):
    found, _, scanned = result[:3]
    return found, scanned


# ------------------------------------------------------------------------------------ data sets
def mednist(npz: str, store_path: str, n_queries: int, n_single: int) -> tuple[dict, dict]:
    import graphret
    from graphret.query.searcher import Searcher
    from graphret.store import open_store

    if not Path(store_path, "manifest.json").is_file():
        log(f"building the MedNIST store at {store_path} (pixel baseline, --no-split)")
        graphret.build(npz, store_path, encoder="pixels", split=False, log=log)
    store = open_store(store_path)
    info = {
        "store": store_path,
        "encoder": store.manifest["encoder"]["description"],
        "graph": {key: store.manifest["graph"].get(key) for key in ("method", "k", "edges")},
        "communities": {m: {"n": v.get("n_communities"), "newman_modularity": v.get("newman_modularity")} for m, v in store.manifest["communities"].items()},
    }
    indexes = {}
    for method in store.community_methods:
        t0 = time.perf_counter()
        searcher = Searcher(store, communities=method)
        index, rows = searcher.index.probe, searcher.rows
        index.centroids, index.sorted_codes  # noqa: B018 (build the layout)
        info.setdefault("setup_seconds", {})[method] = round(time.perf_counter() - t0, 2)
        indexes[method] = index
    assert len(rows) == len(store)
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(rows), n_queries, replace=False))
    codes = np.ascontiguousarray(store.codes())
    labels = store.labels[rows]
    graphs = {method: GraphSearch(codes, store.graph(), store.membership(method)) for method in store.community_methods}
    result = run_dataset("MedNIST 64x64, pixel baseline (PCA 128), whole set as archive", codes, labels,
                         np.ascontiguousarray(codes[pick]), labels[pick], pick.astype(np.int64), indexes, n_single, graphs=graphs)
    result["info"] = info
    return result, store


def kmeans_communities(codes: np.ndarray, n_clusters: int, *, seed: int = 0, threads: int = 2) -> tuple[np.ndarray, float]:
    """Spherical k-means cells (FAISS, 20 iterations, trained on up to 64 points per cell) as
    communities: the stand-in where Leiden is too slow on this machine."""
    import faiss

    faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    n, d = codes.shape
    rng = np.random.default_rng(seed)
    sample = codes[rng.choice(n, min(n, 64 * n_clusters), replace=False)]
    km = faiss.Kmeans(d, n_clusters, niter=20, seed=seed, spherical=True, verbose=False)
    km.train(sample)
    _, assign = km.index.search(codes, 1)
    faiss.omp_set_num_threads(1)
    return assign.ravel().astype(np.int64), time.perf_counter() - t0


def generated(n: int, spread: float, n_queries: int, n_single: int, leiden_max: int) -> dict:
    from graphret.communities import leiden, newman_modularity
    from graphret.query.index import RetrievalIndex

    log(f"generating {n} clustered codes (spread {spread})")
    codes, labels, queries, q_labels = clustered_codes(n, seed=0, spread=spread, n_queries=n_queries)
    graph, knn_info = faiss_knn_graph(codes, 10)
    log(f"kNN graph: {knn_info}")
    memberships, community_info = {}, {}
    if n <= leiden_max:
        t0 = time.perf_counter()
        memberships["leiden"] = leiden(graph, resolution=1.0, seed=0).membership
        community_info["leiden"] = {"seconds": round(time.perf_counter() - t0, 1), "how": "leidenalg RBConfiguration on the kNN graph, resolution 1, seed 0"}
    clusters = max(10, n // 1000)
    memberships["kmeans"], seconds = kmeans_communities(codes, clusters)
    community_info["kmeans"] = {"seconds": round(seconds, 1), "how": f"FAISS spherical k-means, {clusters} cells, 20 iterations (not a graph method: the kNN graph is used by region growing only)"}
    indexes, graphs = {}, {}
    for method, membership in memberships.items():
        community_info[method]["n"] = int(membership.max() + 1)
        community_info[method]["newman_modularity"] = round(newman_modularity(graph, membership), 4)
        log(f"{method}: {community_info[method]}")
        t0 = time.perf_counter()
        index = RetrievalIndex(codes, membership=membership)
        index.centroids, index.sorted_codes  # noqa: B018
        graphs[method] = GraphSearch(codes, graph, membership)
        community_info[method]["index_setup_seconds"] = round(time.perf_counter() - t0, 2)
        indexes[method] = index
    result = run_dataset(f"generated clustered codes, n = {n:,}", codes, labels, queries, q_labels, None, indexes, n_single,
                         graphs=graphs)
    result["info"] = {
        "generator": f"{clusters} centres, d = 64, spread {spread}, seed 0; queries: fresh points from the same mixture",
        "knn_graph": knn_info,
        "communities": community_info,
    }
    return result


# ------------------------------------------------------------------------------------ report
def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Query modes vs FAISS",
        "",
        f"Run {m['date_utc']} on {m['cpu']} ({m['cores']} cores, shared with other jobs; load average at start "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}), one thread for graphret and FAISS alike. "
        f"numpy {m['numpy']}, faiss {m['faiss']}. K = {K}. Command: `{report['command']}`.",
        "",
        "Recall@K is against graphret flat's exact top-K; precision@K is label agreement (MedNIST class; generated: "
        "mixture component). Region ranks by region growth (Haq's Algorithm 1), not similarity: recall against flat is "
        "not its aim, precision is. Ratios are measured side by side in the same run.",
        "",
    ]
    for data in report["datasets"]:
        rows = data["rows"]
        flat = next(r for r in rows if r["method"] == "graphret flat")
        lines += [f"## {data['title']}", "", f"n = {data['n']:,}, d = {data['d']}, {data['queries']} queries batched, {data['single']} one at a time.", ""]
        info = data.get("info", {})
        if info:
            lines += ["```", json.dumps(info, indent=1), "```", ""]
        lines += [
            "| method | q/s single | q/s batched | p50 ms | p95 ms | scanned | recall@50 | P@50 | x flat (single) | x flat (batched) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            p = "" if r["precision_at_k"] is None else f"{r['precision_at_k']:.3f}"
            lines.append(
                f"| {r['method']} | {r['qps_single']:,.0f} | {r['qps_batched']:,.0f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
                f"{r['scanned_fraction']:.3f} | {r['recall_at_k']:.3f} | {p} | {r['qps_single'] / flat['qps_single']:.1f} | "
                f"{r['qps_batched'] / flat['qps_batched']:.1f} |"
            )
        faiss_flat = next(r for r in rows if r["method"] == "FAISS IndexFlatIP")
        lines += [
            "",
            f"graphret flat / FAISS IndexFlatIP time ratio: single {faiss_flat['qps_single'] / flat['qps_single']:.2f}x, "
            f"batched {faiss_flat['qps_batched'] / flat['qps_batched']:.2f}x (goal: within 1.5x).",
            "",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mednist", default=str(ROOT.parent / "shared" / "data" / "mednist" / "mednist_64.npz"))
    parser.add_argument("--mednist-store", default="/tmp/graphret-bench/mednist-store")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--spread", type=float, default=1.25)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--single", type=int, default=200)
    parser.add_argument("--skip-mednist", action="store_true")
    parser.add_argument("--leiden-max", type=int, default=200_000, help="largest generated n that gets Leiden communities (k-means cells always)")
    parser.add_argument("--reps", type=int, default=REPS, help="repetitions per measurement; the fastest counts")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "queries"))
    args = parser.parse_args()
    globals()["REPS"] = max(1, args.reps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine("faiss", threads_used=1), "command": "python benchmarks/bench_queries.py " + " ".join(sys.argv[1:]), "datasets": []}
    if not args.skip_mednist and Path(args.mednist).is_file():
        data, store = mednist(args.mednist, args.mednist_store, args.queries, args.single)
        report["datasets"].append(data)
        try:  # one MedNIST montage, the way the papers show retrieval results
            from graphret.query.montage import write_montage
            from graphret.query.searcher import search

            ids = [str(store.ids[r]) for r in np.random.default_rng(1).choice(len(store), 4, replace=False)]
            result = search(store, ids, k=K)
            write_montage(result, out / "mednist_region_montage.png", max_results=8)
        except Exception as error:  # noqa: BLE001
            log(f"montage failed: {error}")
    for n in args.sizes:
        report["datasets"].append(generated(n, args.spread, args.queries, args.single, args.leiden_max))
        (out / "queries.json").write_text(json.dumps(report, indent=1) + "\n")
    report["machine"]["load_average_at_end"] = os.getloadavg()
    (out / "queries.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "queries.md").write_text(markdown(report))
    log(f"wrote {out / 'queries.json'} and {out / 'queries.md'}")


if __name__ == "__main__":
    main()
