"""Benchmark: search through the graph (graphret issue 13) beside FAISS, same codes, same run.

Modes (all graphret functions are the array-level ones of this issue; the lead wires them into
``graphret query``):

* **flat** -- exact top-K (``graphret.graph.knn.exact_search``, BLAS + heap);
* **walk ef=E** -- best-first search over the walk lists (``graphret.graph.walk``), built at
  build time by ``build_search_graph`` (diversified kNN lists + walk-based passes + reverse
  edges, ``max_degree`` M) and entered at the 2 community medoids nearest the query;
* **region (graph)** -- Haq's Algorithm 1 on the stored kNN graph (``graphret.query.graph_region``):
  q's edges from a walk (ef 8 / 16 / 32), the community of largest attach gain, growth by the
  quality gain along stored edges; ranked in Haq's pure gain order;
* **rank (graph-smoothed)** -- the walk's pool of R candidates re-ranked by the graph-smoothed
  cosine ``<q, x~_j>`` (``graphret.graph.diffusion.smooth_codes``: ``X~ = M^2 X``,
  ``M = (I + 0.25 D)^{-1} (I + 0.25 W^3)`` on the kNN graph); **rank (manifold)**: the same pool
  by manifold ranking restricted to it (a = 0.9, 10 steps, 10 seeds, W^3);
* **probe (lists)** -- exact top-K inside the P nearest *bounded lists*
  (``graphret.communities.lists.bounded_lists``: CNM communities cut to at most 2 sqrt(n)
  items), through the existing ``probe_search``;
* FAISS ``IndexFlatIP``, ``IndexIVFFlat`` (nlist = sqrt(n), nprobe sweep) and
  ``IndexHNSWFlat`` (M = 32, efConstruction 40, efSearch sweep; FAISS searches with
  max(efSearch, K)).

Everything at query time runs on **one thread** (numba.set_num_threads(1),
faiss.omp_set_num_threads(1), threadpoolctl for BLAS); builds use ``--build-threads``.  For
each mode: queries/s batched (all queries in one call, fastest of ``--reps``) and one at a
time (the first ``--single`` queries, fastest of ``--reps`` passes), p50 / p95 latency of the
single calls, the fraction of the archive whose codes were compared (graphret: counted by the
kernels; FAISS HNSW: its ``ndis`` counter; IVF: the probed lists' sizes), recall@K against
exact top-K, precision@K of labels.  The machine is shared (2 cores, other jobs): walk vs
HNSW is also timed as an interleaved duel (alternating calls, median of the per-round ratios).

Data: **MedNIST** pixel codes (32x32 grey, PCA 128, fitted on the train split), seeded 70/30
split: archive = train (41,268), queries = a seeded sample of the test split.  **Generated**
1M 128-d codes: ``--generator patch`` (each of n/1000 clusters a 16-dimensional Gaussian patch
around a random unit centre, plus a little isotropic noise: local intrinsic dimension ~14,
between the real sets' 4 (MedNIST) and 22 (blood cells), TwoNN estimate) or ``isotropic``
(bench_queries.py's mixture: full-dimensional Gaussian blobs, intrinsic dimension ~56).  At
1M the kNN graph comes from FAISS IVF (``--knn faiss``, bench_queries.py's ``faiss_knn_graph``,
benchmark-only; exact kNN is out of reach here) and the walk lists are built from it as for
MedNIST; ``--knn walk`` instead builds walk lists from a random start (Vamana) and takes each
item's 10 nearest by a walk (recall against exact on 1,000 items reported either way);
communities: CNM (size heuristic + multilevel refinement).

Quality (``--quality``): P@50 of flat, region (gain order), region re-ranked by the smoothed
cosine, and the graph ranking on the five real sets with pixel codes (test split vs archive).

CNM variant (``--cnm-variants``): plain CNM, CNM size heuristic + multilevel refinement and
Leiden on the MedNIST archive graph: communities, Newman Q, seconds, and probe with bounded
lists from each.

Usage::

    python benchmarks/bench_graph_search.py --out benchmarks/results/graph_search \\
        --mednist-queries 5000 --quality --cnm-variants --sizes 1000000 --gen-queries 1000
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
from shared_data import SETS  # noqa: E402

K = 50
KNN_K = 10
KNN_SOURCE = "faiss"
REPS = 3
BUILD_THREADS = 2
# build-time settings (the recommended defaults)
WALK = {"max_degree": 24, "alpha": 1.0, "passes": 2, "ef_construction": 64}
N_ENTRY = 2
WALK_EFS = (32, 36, 40, 48, 64, 96, 128, 192)
REGION_EFS = (8, 16, 32)
RANK_POOL = 100
HNSW_EFS = (16, 32, 48, 64, 96, 128, 256)
IVF_PROBES = (1, 2, 4, 8, 16, 32)
PROBES = (4, 8, 16, 32)


from common import log, machine, recall, timed  # noqa: E402  (one home: benchmarks/common.py)


def one_thread():
    import faiss
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    return threadpool_limits(1)


def build_threads():
    import faiss
    import numba

    numba.set_num_threads(min(BUILD_THREADS, numba.config.NUMBA_NUM_THREADS))
    faiss.omp_set_num_threads(BUILD_THREADS)


# ------------------------------------------------------------------------------------ data
def pixel_codes(key: str) -> dict:
    """Pixel codes (32x32 grey, PCA 128, fitted on the train split) of a real set: archive =
    train (+ val), queries = test, with labels."""
    from graphret.data import open_source
    from graphret.encoders.pixels import PixelPCAEncoder
    from graphret.encoders.training import training_indices
    from graphret.data.split import archive_splits

    images = open_source(str(SETS[key][1]), seed=0)
    train, _ = training_indices(images)
    encoder = PixelPCAEncoder().fit(images, train)
    codes = encoder.encode(images).spaces["default"]
    chosen = archive_splits(images.splits)
    archive = np.arange(len(images)) if chosen == ["all"] else images.indices_of(chosen)
    test = images.indices_of(["test"])
    labels = np.asarray(images.labels)
    return {"archive": np.ascontiguousarray(codes[archive]), "queries": np.ascontiguousarray(codes[test]),
            "a_labels": labels[archive], "q_labels": labels[test], "split": images.split_origin,
            "encoder": encoder.description}


def patch_codes(n: int, d: int = 128, m: int = 16, seed: int = 0, spread: float = 1.25, noise: float = 0.1,
                n_queries: int = 0, per_cluster: int = 1000):
    """``max(10, n // per_cluster)`` clusters, each ``centre + spread * U z / sqrt(m) + noise *
    e / sqrt(d)`` with U a random orthonormal d x m basis per cluster, z ~ N(0, I_m), e ~
    N(0, I_d), L2-normalised; plus ``n_queries`` fresh points from the same mixture."""
    rng = np.random.default_rng(seed)
    c = max(10, n // per_cluster)
    centres = rng.standard_normal((c, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bases = np.linalg.qr(rng.standard_normal((c, d, m)))[0].astype(np.float32)

    def draw(count):
        labels = rng.integers(0, c, count)
        x = np.empty((count, d), np.float32)
        for lo in range(0, count, 1 << 16):
            hi = min(lo + (1 << 16), count)
            lab = labels[lo:hi]
            z = rng.standard_normal((hi - lo, m)).astype(np.float32) * np.float32(spread / np.sqrt(m))
            block = centres[lab] + np.einsum("kdm,km->kd", bases[lab], z) + noise * rng.standard_normal((hi - lo, d)) / np.sqrt(d)
            x[lo:hi] = block / np.linalg.norm(block, axis=1, keepdims=True)
        return x, labels

    x, labels = draw(n)
    q, q_labels = draw(n_queries)
    return x, labels, q, q_labels


def isotropic_codes(n: int, d: int = 128, seed: int = 0, spread: float = 1.25, n_queries: int = 0):
    from benchmarks.bench_queries import clustered_codes

    return clustered_codes(n, d=d, seed=seed, spread=spread, n_queries=n_queries)


# ------------------------------------------------------------------------------------ builds
class Built:
    """Everything built for one archive: kNN graph, communities, walk lists, entries, lists,
    smoothed codes (and how long each took)."""

    def __init__(self, codes: np.ndarray, graph, *, membership=None, seconds=None, walk_lists=None) -> None:
        from graphret.communities.cnm import cnm
        from graphret.communities.lists import bounded_lists
        from graphret.graph.diffusion import smooth_codes
        from graphret.graph.search_graph import build_search_graph, entry_points
        from graphret.query.graph_region import RegionGraph
        from graphret.query.index import RetrievalIndex

        self.codes = codes
        self.graph = graph
        self.seconds = dict(seconds or {})
        build_threads()
        t0 = time.perf_counter()
        if membership is None:
            result = cnm(graph, heuristic="size", refine="multilevel")
            membership = result.membership
            self.seconds["cnm_size_multilevel"] = round(time.perf_counter() - t0, 2)
        self.membership = membership
        if walk_lists is None:
            t0 = time.perf_counter()
            walk_lists = build_search_graph(codes, graph, **WALK)
            self.seconds["walk_lists"] = round(time.perf_counter() - t0, 2)
        self.walk_lists = walk_lists
        self.entries = entry_points(codes, membership, graph=self.walk_lists)
        self.entry_codes = np.ascontiguousarray(codes[self.entries])
        t0 = time.perf_counter()
        self.lists = bounded_lists(membership, graph=graph, codes=codes)
        self.seconds["bounded_lists"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        self.smoothed = smooth_codes(codes, graph)
        self.seconds["smooth_codes"] = round(time.perf_counter() - t0, 2)
        self.region = RegionGraph.from_graph(graph, membership, knn_k=KNN_K)
        t0 = time.perf_counter()
        self.probe_index = RetrievalIndex(codes, membership=self.lists)
        self.probe_index.centroids, self.probe_index.sorted_codes  # noqa: B018
        self.seconds["probe_layout"] = round(time.perf_counter() - t0, 2)
        indptr, indices = self.walk_lists
        self.info = {
            "n": int(len(codes)),
            "communities": int(membership.max() + 1),
            "walk_lists": {**WALK, "mean_degree": round(float(np.diff(indptr).mean()), 2), "max_degree_seen": int(np.diff(indptr).max()),
                           "entries": int(len(self.entries))},
            "lists": {"n": int(self.lists.max() + 1), "max_size": int(np.bincount(self.lists).max()),
                      "mean_size": round(float(np.bincount(self.lists).mean()), 1)},
            "seconds": self.seconds,
        }

    # -- query functions: (rows, compared per query) ---------------------------------------------
    def walk(self, queries, ef, k=K, exclude=None):
        from graphret.graph.walk import graph_walk

        i, _, n = graph_walk(self.codes, *self.walk_lists, queries, k, entries=self.entries, entry_codes=self.entry_codes,
                             ef=ef, n_entry=N_ENTRY, exclude=exclude, threads=1)
        return i, n

    def region_search(self, queries, ef, k=K, exclude=None):
        from graphret.query.graph_region import graph_region_search

        i, _, n = graph_region_search(self.codes, queries, k, walk=(*self.walk_lists, self.entries), region=self.region,
                                      entry_codes=self.entry_codes, ef=ef, n_entry=N_ENTRY, exclude=exclude, threads=1)
        return i, n

    def rank_smoothed(self, queries, pool=RANK_POOL, k=K, exclude=None):
        from graphret.graph.diffusion import rerank, smoothed_scores
        from graphret.graph.walk import graph_walk

        rows, _, n = graph_walk(self.codes, *self.walk_lists, queries, pool, entries=self.entries,
                                entry_codes=self.entry_codes, ef=pool, n_entry=N_ENTRY, exclude=exclude, threads=1)
        scores = smoothed_scores(self.smoothed, queries, rows)
        return rerank(rows, scores, k)[0], n + pool  # the smoothed codes of the pool are compared too

    def rank_manifold(self, queries, pool=RANK_POOL, k=K, exclude=None):
        from graphret.graph.diffusion import manifold_ranking, rerank
        from graphret.graph.walk import graph_walk

        rows, sims, n = graph_walk(self.codes, *self.walk_lists, queries, pool, entries=self.entries,
                                   entry_codes=self.entry_codes, ef=pool, n_entry=N_ENTRY, exclude=exclude, threads=1)
        g = self.graph
        return rerank(rows, manifold_ranking(g.indptr, g.indices, g.data, rows, sims), k)[0], n

    def region_smoothed(self, queries, ef, pool=RANK_POOL, k=K, exclude=None):
        """The grown region (pool items, gain order) re-ranked by the smoothed cosine."""
        from graphret.graph.diffusion import rerank, smoothed_scores

        rows, n = self.region_search(queries, ef, k=pool, exclude=exclude)
        return rerank(rows, smoothed_scores(self.smoothed, queries, rows), k)[0], n + pool

    def probe(self, queries, P, k=K, exclude=None):
        from graphret.query.probe import probe_search

        rows, _, frac = probe_search(self.probe_index, queries, k, n_probe=P, exclude=exclude)
        return rows, frac * len(self.codes)


# ------------------------------------------------------------------------------------ measuring




def measure(name: str, batch_fn, single_fn, n: int, n_single: int, truth, labels, q_labels, extra=None) -> dict:
    """Batched (all queries, fastest of REPS) and one at a time (the first n_single, fastest
    of REPS passes)."""
    seconds = np.inf
    for _ in range(REPS):
        (found, compared), s = timed(batch_fn)
        seconds = min(seconds, s)
    latencies = None
    for _ in range(REPS):
        lat = np.empty(n_single)
        for i in range(n_single):
            t0 = time.perf_counter()
            single_fn(i)
            lat[i] = time.perf_counter() - t0
        if latencies is None or lat.sum() < latencies.sum():
            latencies = lat
    row = {
        "method": name,
        "qps_batched": round(len(found) / seconds, 1),
        "qps_single": round(n_single / latencies.sum(), 1) if n_single else None,
        "p50_ms": round(float(np.percentile(latencies, 50)) * 1e3, 4) if n_single else None,
        "p95_ms": round(float(np.percentile(latencies, 95)) * 1e3, 4) if n_single else None,
        "compared_fraction": round(float(np.mean(compared)) / n, 5),
        "recall_at_k": round(recall(found, truth), 4),
        "precision_at_k": None if labels is None else round(float(np.mean(labels[found] == q_labels[:, None])), 4),
    }
    if extra:
        row.update(extra)
    log(f"  {name}: {row['qps_batched']:,.0f} q/s batched, {row['qps_single']} single, recall {row['recall_at_k']}, "
        f"compared {row['compared_fraction']}, P@K {row['precision_at_k']}")
    return row


def duel(fn_a, fn_b, rounds: int = 9) -> dict:
    """Alternate two batched calls; median and spread of time(b) / time(a) over the rounds
    (> 1: a is faster)."""
    ratios = []
    for _ in range(rounds):
        _, ta = timed(fn_a)
        _, tb = timed(fn_b)
        ratios.append(tb / ta)
    return {"median_ratio": round(float(np.median(ratios)), 3), "min_ratio": round(float(np.min(ratios)), 3),
            "max_ratio": round(float(np.max(ratios)), 3), "rounds": rounds}


def run_modes(title: str, built: Built, queries, q_labels, labels, exclude, n_single: int, *, hnsw: bool = True,
              flat_reps: int | None = None, info=None) -> dict:
    import faiss

    from graphret.graph.knn import exact_search

    global REPS
    codes = built.codes
    n, d = codes.shape
    nq = len(queries)
    ex = np.full(nq, -1, np.int64) if exclude is None else exclude
    rows: list[dict] = []
    log(f"{title}: n={n}, d={d}, {nq} queries ({n_single} one at a time)")
    limits = one_thread()
    truth, _ = exact_search(codes, queries, K, exclude=ex)
    keep = REPS
    if flat_reps:
        REPS = flat_reps
    rows.append(measure("graphret flat", lambda: (exact_search(codes, queries, K, exclude=ex)[0], np.full(nq, n)),
                        lambda i: exact_search(codes, queries[i:i + 1], K, exclude=ex[i:i + 1]), n, min(n_single, 50 if flat_reps else n_single),
                        truth, labels, q_labels))
    REPS = keep
    # warm the numba caches (compiled and cached on disk; not timed)
    built.walk(queries[:2], 32, exclude=ex[:2])
    built.region_search(queries[:2], 16, exclude=ex[:2])
    built.rank_smoothed(queries[:2], exclude=ex[:2])
    built.rank_manifold(queries[:2], exclude=ex[:2])
    for ef in WALK_EFS:
        rows.append(measure(f"graphret walk ef={ef}", lambda ef=ef: built.walk(queries, ef, exclude=ex),
                            lambda i, ef=ef: built.walk(queries[i:i + 1], ef, exclude=ex[i:i + 1]), n, n_single, truth, labels, q_labels,
                            {"ef": ef}))
    for ef in REGION_EFS:
        rows.append(measure(f"graphret region (graph, gain order) ef={ef}", lambda ef=ef: built.region_search(queries, ef, exclude=ex),
                            lambda i, ef=ef: built.region_search(queries[i:i + 1], ef, exclude=ex[i:i + 1]), n, n_single, truth,
                            labels, q_labels, {"ef": ef}))
    rows.append(measure(f"graphret rank (graph-smoothed, walk pool {RANK_POOL})", lambda: built.rank_smoothed(queries, exclude=ex),
                        lambda i: built.rank_smoothed(queries[i:i + 1], exclude=ex[i:i + 1]), n, n_single, truth, labels, q_labels))
    rows.append(measure(f"graphret rank (manifold, walk pool {RANK_POOL})", lambda: built.rank_manifold(queries, exclude=ex),
                        lambda i: built.rank_manifold(queries[i:i + 1], exclude=ex[i:i + 1]), n, n_single, truth, labels, q_labels))
    built.probe(queries[:2], 4, exclude=ex[:2])
    for P in PROBES:
        rows.append(measure(f"graphret probe P={P} (bounded CNM lists)", lambda P=P: built.probe(queries, P, exclude=ex),
                            lambda i, P=P: built.probe(queries[i:i + 1], P, exclude=ex[i:i + 1]), n, n_single, truth, labels, q_labels,
                            {"lists": built.info["lists"]["n"]}))

    kk = K + (1 if exclude is not None else 0)

    def drop_self(ids):
        out = np.empty((len(ids), K), np.int64)
        for i, row in enumerate(ids):
            row = row[row != ex[i]] if ex[i] >= 0 else row
            out[i] = row[:K]
        return out

    build_threads()
    t0 = time.perf_counter()
    nlist = int(round(np.sqrt(n)))
    quantizer = faiss.IndexFlatIP(d)
    ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(codes[np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)])
    ivf.add(codes)
    ivf_seconds = time.perf_counter() - t0
    hnsw_index = None
    if hnsw:
        t0 = time.perf_counter()
        hnsw_index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw_index.add(codes)
        hnsw_seconds = time.perf_counter() - t0
    limits = one_thread()  # noqa: F841
    sizes = np.array([ivf.invlists.list_size(i) for i in range(nlist)])
    for nprobe in IVF_PROBES:
        ivf.nprobe = nprobe
        _, lists = quantizer.search(queries, nprobe)
        compared = sizes[lists].sum(axis=1) + nlist
        rows.append(measure(f"FAISS IndexIVFFlat nprobe={nprobe}", lambda: (drop_self(ivf.search(queries, kk)[1]), compared),
                            lambda i: ivf.search(queries[i:i + 1], kk), n, n_single, truth, labels, q_labels,
                            {"nlist": nlist, "build_seconds": round(ivf_seconds, 2)}))
    if hnsw_index is not None:
        for ef in HNSW_EFS:
            hnsw_index.hnsw.efSearch = ef
            faiss.cvar.hnsw_stats.reset()
            hnsw_index.search(queries, kk)
            ndis = faiss.cvar.hnsw_stats.ndis / nq
            rows.append(measure(f"FAISS IndexHNSWFlat M=32 efSearch={ef}", lambda: (drop_self(hnsw_index.search(queries, kk)[1]), np.full(nq, ndis)),
                                lambda i: hnsw_index.search(queries[i:i + 1], kk), n, n_single, truth, labels, q_labels,
                                {"ef": ef, "build_seconds": round(hnsw_seconds, 2)}))
    result = {"title": title, "n": int(n), "d": int(d), "queries": int(nq), "single": int(n_single), "k": K, "rows": rows,
              "build": built.info, **(info or {})}
    result["goals"] = goals(result, built, queries, ex, ivf, hnsw_index, kk, drop_self)
    return result


def goals(result: dict, built: Built, queries, ex, ivf, hnsw_index, kk, drop_self) -> dict:
    """The issue's cost goals for this data set, with an interleaved duel for walk vs FAISS."""
    rows = result["rows"]
    flat = next(r for r in rows if r["method"] == "graphret flat")
    walks = [r for r in rows if r["method"].startswith("graphret walk") and r["recall_at_k"] >= 0.95]
    out: dict = {}
    if walks:
        best_walk = max(walks, key=lambda r: r["qps_batched"])
        out["walk"] = {"method": best_walk["method"], "qps_batched": best_walk["qps_batched"], "recall": best_walk["recall_at_k"]}
        ref = None
        if hnsw_index is not None:
            hn = [r for r in rows if r["method"].startswith("FAISS IndexHNSWFlat") and r["recall_at_k"] >= 0.95]
            if hn:
                ref = hn[0]  # the first efSearch reaching 0.95
                out["hnsw_first_ef_at_0.95"] = {"method": ref["method"], "qps_batched": ref["qps_batched"], "recall": ref["recall_at_k"]}
                hnsw_index.hnsw.efSearch = ref["ef"]
                out["duel_walk_vs_hnsw"] = duel(lambda: built.walk(queries, best_walk["ef"], exclude=ex),
                                                lambda: hnsw_index.search(queries, kk))
        ivfs = [r for r in rows if r["method"].startswith("FAISS IndexIVFFlat") and r["recall_at_k"] >= 0.95]
        if ivfs:
            best_ivf = max(ivfs, key=lambda r: r["qps_batched"])
            out["ivf_best_at_0.95"] = {"method": best_ivf["method"], "qps_batched": best_ivf["qps_batched"], "recall": best_ivf["recall_at_k"]}
            ivf.nprobe = int(best_ivf["method"].split("=")[-1])
            out["duel_walk_vs_ivf"] = duel(lambda: built.walk(queries, best_walk["ef"], exclude=ex),
                                           lambda: ivf.search(queries, kk))
    regions = [r for r in rows if r["method"].startswith("graphret region")]
    if regions:
        fast = max(regions, key=lambda r: r["qps_batched"])
        out["region"] = {"method": fast["method"], "x_flat_batched": round(fast["qps_batched"] / flat["qps_batched"], 2),
                         "compared_fraction": fast["compared_fraction"], "precision_at_k": fast["precision_at_k"]}
    probes = [r for r in rows if r["method"].startswith("graphret probe") and r["recall_at_k"] >= 0.95]
    if probes:
        cheapest = min(probes, key=lambda r: r["compared_fraction"])
        out["probe"] = {"method": cheapest["method"], "recall": cheapest["recall_at_k"], "compared_fraction": cheapest["compared_fraction"]}
    log(f"goals: {json.dumps(out)}")
    return out


# ------------------------------------------------------------------------------------ data sets
def mednist_run(n_queries: int, n_single: int) -> dict:
    from graphret.graph.build import graph_from_knn
    from graphret.graph.knn import exact_knn

    data = pixel_codes("mednist")
    archive = data["archive"]
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(data["queries"]), min(n_queries, len(data["queries"])), replace=False))
    build_threads()
    t0 = time.perf_counter()
    idx, sims = exact_knn(archive, KNN_K)
    graph = graph_from_knn(idx, sims)
    knn_seconds = time.perf_counter() - t0
    built = Built(archive, graph, seconds={"exact_knn": round(knn_seconds, 2)})
    return run_modes("MedNIST pixel codes (32x32 grey, PCA 128), seeded 70/30 split", built, data["queries"][pick],
                     data["q_labels"][pick], data["a_labels"], None, n_single,
                     info={"data": {"archive": int(len(archive)), "test_split": int(len(data["queries"])), "queries_sampled": int(len(pick)),
                                    "split": data["split"], "encoder": data["encoder"]}})


def walk_knn(codes: np.ndarray, k: int, *, seed: int = 0, sample: int = 1000):
    """kNN lists from a walk graph built from a random start (no kNN input): each item's k
    nearest by a walk (ef 64), itself excluded; recall against exact on ``sample`` items."""
    from graphret.graph.build import graph_from_knn
    from graphret.graph.knn import exact_search
    from graphret.graph.search_graph import build_search_graph, entry_points
    from graphret.graph.walk import graph_walk

    build_threads()
    t0 = time.perf_counter()
    lists = build_search_graph(codes, None, **WALK, seed=seed)
    t_lists = time.perf_counter() - t0
    entries = entry_points(codes, None, graph=lists)
    t0 = time.perf_counter()
    import numba

    idx, sims, _ = graph_walk(codes, *lists, codes, k, entries=entries, ef=64, exclude=np.arange(len(codes)),
                              threads=numba.get_num_threads())
    t_knn = time.perf_counter() - t0
    graph = graph_from_knn(idx, sims)
    pick = np.random.default_rng(seed).choice(len(codes), min(sample, len(codes)), replace=False)
    exact, _ = exact_search(codes, codes[pick], k, exclude=pick)
    rec = recall(idx[pick], exact)
    return graph, lists, {"method": "walk lists from a random start (Vamana, 2 passes), then each item's 10 nearest by a walk (ef 64)",
                          "walk_lists_seconds": round(t_lists, 1), "knn_seconds": round(t_knn, 1),
                          "recall_vs_exact": round(rec, 4), "recall_sample": int(len(pick))}


def generated_run(n: int, generator: str, n_queries: int, n_single: int, hnsw_max: int) -> dict:
    log(f"generating {n:,} {generator} codes")
    if generator == "patch":
        codes, labels, queries, q_labels = patch_codes(n, n_queries=n_queries)
        desc = (f"{max(10, n // 1000)} clusters, each a 16-d Gaussian patch (spread 1.25) around a random unit centre plus "
                "isotropic noise 0.1, d = 128, L2-normalised, seed 0; queries: fresh points from the same mixture")
    else:
        codes, labels, queries, q_labels = isotropic_codes(n, n_queries=n_queries)
        desc = (f"{max(10, n // 1000)} random unit centres, d = 128, centre + N(0, 1.25^2/d) per coordinate (bench_queries.py's "
                "mixture), L2-normalised, seed 0; queries: fresh points from the same mixture")
    if KNN_SOURCE == "walk":
        graph, lists, knn_info = walk_knn(codes, KNN_K)
        seconds = {"knn_from_walk": knn_info["knn_seconds"], "walk_lists_random_start": knn_info["walk_lists_seconds"]}
    else:  # as build-graph will have it: a kNN graph first (here FAISS IVF, benchmark-only), walk lists from it
        from benchmarks.bench_queries import faiss_knn_graph

        graph, knn_info = faiss_knn_graph(codes, KNN_K, threads=BUILD_THREADS)
        lists, seconds = None, {"faiss_ivf_knn": knn_info["seconds"]}
    log(f"kNN graph: {knn_info}")
    built = Built(codes, graph, walk_lists=lists, seconds=seconds)
    return run_modes(f"generated {generator} codes, n = {n:,}, d = 128", built, queries, q_labels, labels, None, n_single,
                     hnsw=n <= hnsw_max, flat_reps=1, info={"generator": desc, "knn_graph": knn_info})


# ------------------------------------------------------------------------------------ quality
def quality_run(keys) -> list[dict]:
    """P@50 on the real sets, pixel codes, all test queries."""
    from graphret.graph.build import graph_from_knn
    from graphret.graph.knn import exact_knn, exact_search

    out = []
    for key in keys:
        if not SETS[key][1].is_file():
            log(f"skip {key}: {SETS[key][1]} not found")
            continue
        data = pixel_codes(key)
        archive, queries = data["archive"], data["queries"]
        al, ql = data["a_labels"], data["q_labels"]
        build_threads()
        idx, sims = exact_knn(archive, KNN_K)
        graph = graph_from_knn(idx, sims)
        built = Built(archive, graph)
        one_thread()

        def p(rows):
            return round(float(np.mean(al[rows] == ql[:, None])), 4)

        flat = exact_search(archive, queries, K)[0]
        row = {"set": key, "name": SETS[key][0], "archive": int(len(archive)), "queries": int(len(queries)), "split": data["split"],
               "communities": int(built.membership.max() + 1),
               "flat": p(flat),
               "walk ef=48": p(built.walk(queries, 48)[0]),
               "region gain order (ef 32)": p(built.region_search(queries, 32)[0]),
               "region re-ranked (graph-smoothed)": p(built.region_smoothed(queries, 32)[0]),
               "rank manifold (walk pool 100)": p(built.rank_manifold(queries)[0]),
               "rank graph-smoothed (walk pool 100)": p(built.rank_smoothed(queries)[0])}
        log(f"quality {key}: {row}")
        out.append(row)
    return out


def cnm_variants_run() -> dict:
    """Plain CNM, CNM size + multilevel, Leiden on the MedNIST archive graph, and probe on
    bounded lists from each."""
    from graphret.communities import leiden, newman_modularity
    from graphret.communities.cnm import cnm
    from graphret.communities.lists import bounded_lists
    from graphret.graph.build import graph_from_knn
    from graphret.graph.knn import exact_knn, exact_search
    from graphret.query.index import RetrievalIndex
    from graphret.query.probe import probe_search

    data = pixel_codes("mednist")
    archive = data["archive"]
    queries = data["queries"][np.sort(np.random.default_rng(0).choice(len(data["queries"]), 2000, replace=False))]
    build_threads()
    idx, sims = exact_knn(archive, KNN_K)
    graph = graph_from_knn(idx, sims)
    truth, _ = exact_search(archive, queries, K)
    rows = []
    for name in ("cnm plain", "cnm size + multilevel", "leiden"):
        t0 = time.perf_counter()
        dendro = None
        if name == "cnm plain":
            res = cnm(graph)
            membership, dendro = res.membership, (res.dendrogram["a"], res.dendrogram["b"])
        elif name == "cnm size + multilevel":
            membership = cnm(graph, heuristic="size", refine="multilevel").membership
        else:
            membership = leiden(graph, resolution=1.0, seed=0)
        seconds = time.perf_counter() - t0
        sizes = np.bincount(membership)
        row = {"method": name, "seconds": round(seconds, 2), "communities": int(len(sizes)), "largest": int(sizes.max()),
               "newman_q": round(newman_modularity(graph, membership), 4)}
        one_thread()
        for label, members in (("probe_communities", membership), ("probe_lists", bounded_lists(membership, graph=graph, codes=archive, dendrogram=dendro))):
            index = RetrievalIndex(archive, membership=members)
            curve = []
            for P in (1, 2, 4, 8, 16, 32):
                found, _, frac = probe_search(index, queries, K, n_probe=P)
                curve.append({"P": P, "recall": round(recall(found, truth), 4), "compared": round(float(frac.mean()), 4)})
            ok = [c for c in curve if c["recall"] >= 0.95]
            row[label] = {"n": int(members.max() + 1), "max_size": int(np.bincount(members).max()), "curve": curve,
                          "cheapest_at_0.95": min(ok, key=lambda c: c["compared"]) if ok else None}
        build_threads()
        log(f"variant {row}")
        rows.append(row)
    return {"data": "MedNIST pixel codes, archive (train split, 41,268), exact 10-NN union graph; probe: 2,000 test queries", "rows": rows}


# ------------------------------------------------------------------------------------ report
def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Search through the graph (issue 13) vs FAISS",
        "",
        f"Run {m['date_utc']} on {m['cpu']} ({m['cores']} cores, shared with other jobs; load average at start "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}). Queries on one thread for graphret and FAISS alike "
        f"(numba, FAISS OpenMP and BLAS limited to 1); builds on {m['build_threads']}. numpy {m['numpy']}, numba {m['numba']}, "
        f"faiss {m['faiss']}. K = {K}. Command: `{report['command']}`.",
        "",
        "Recall@K is against exact top-K; P@K is label agreement (MedNIST class; generated: mixture component). compared = "
        "the fraction of the archive whose codes were compared with the query (graphret: counted by the kernels, entry points "
        "included; rank modes also count the pool's smoothed codes; FAISS HNSW: its ndis counter; IVF: the probed lists plus "
        "the nlist centroids). Region and rank modes order by the graph, not by the query's cosine: their recall against flat "
        "is not their aim. This machine is shared and noisy: ratios measured in the same run (and the interleaved duels) are "
        "the numbers to read.",
        "",
    ]
    for data in report["datasets"]:
        rows = data["rows"]
        flat = next(r for r in rows if r["method"] == "graphret flat")
        lines += [f"## {data['title']}", "", f"n = {data['n']:,}, d = {data['d']}, {data['queries']:,} queries batched, {data['single']} one at a time.", ""]
        extra = {k: v for k, v in data.items() if k in ("data", "generator", "knn_graph", "build")}
        lines += ["```", json.dumps(extra, indent=1), "```", ""]
        lines += ["| method | q/s single | q/s batched | p50 ms | p95 ms | compared | recall@50 | P@50 | x flat (batched) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            p = "" if r["precision_at_k"] is None else f"{r['precision_at_k']:.4f}"
            single = "" if r["qps_single"] is None else f"{r['qps_single']:,.0f}"
            p50 = "" if r["p50_ms"] is None else f"{r['p50_ms']:.3f}"
            p95 = "" if r["p95_ms"] is None else f"{r['p95_ms']:.3f}"
            lines.append(f"| {r['method']} | {single} | {r['qps_batched']:,.0f} | {p50} | {p95} | {r['compared_fraction']:.4f} | "
                         f"{r['recall_at_k']:.4f} | {p} | {r['qps_batched'] / flat['qps_batched']:.1f} |")
        lines += ["", "Goals:", "", "```", json.dumps(data.get("goals", {}), indent=1), "```", ""]
    if report.get("quality"):
        cols = [c for c in report["quality"][0] if c not in ("set", "name", "archive", "queries", "split", "communities")]
        lines += ["## Quality: P@50 on the real sets, pixel codes (test split vs archive, all test queries)", "",
                  "| set | archive | queries | split | " + " | ".join(cols) + " | default graph ranking - flat |",
                  "|---|---:|---:|---|" + "---:|" * len(cols) + "---:|"]
        for r in report["quality"]:
            lines.append(f"| {r['name']} | {r['archive']:,} | {r['queries']:,} | {r['split']} | " + " | ".join(f"{r[c]:.4f}" for c in cols)
                         + f" | {r['rank graph-smoothed (walk pool 100)'] - r['flat']:+.4f} |")
        lines.append("")
    if report.get("cnm_variants"):
        v = report["cnm_variants"]
        lines += ["## CNM variants on MedNIST (default for build-graph)", "", v["data"], "",
                  "| method | seconds | communities | largest | Newman Q | probe on communities: cheapest P at recall >= 0.95 | bounded lists | probe on bounded lists: cheapest P at recall >= 0.95 |",
                  "|---|---:|---:|---:|---:|---|---|---|"]
        for r in v["rows"]:
            def fmt(c):
                return "none" if c is None else f"P={c['P']}: recall {c['recall']:.3f}, compared {c['compared']:.3f}"
            lines.append(f"| {r['method']} | {r['seconds']:.2f} | {r['communities']} | {r['largest']:,} | {r['newman_q']:.4f} | "
                         f"{fmt(r['probe_communities']['cheapest_at_0.95'])} | {r['probe_lists']['n']} (max {r['probe_lists']['max_size']}) | "
                         f"{fmt(r['probe_lists']['cheapest_at_0.95'])} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mednist-queries", type=int, default=5000)
    parser.add_argument("--single", type=int, default=200)
    parser.add_argument("--skip-mednist", action="store_true")
    parser.add_argument("--quality", action="store_true", help="the P@50 table on the five real sets")
    parser.add_argument("--quality-sets", nargs="*", default=list(SETS))
    parser.add_argument("--cnm-variants", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="*", default=[])
    parser.add_argument("--generator", choices=("patch", "isotropic"), default="patch")
    parser.add_argument("--gen-queries", type=int, default=1000)
    parser.add_argument("--gen-single", type=int, default=100)
    parser.add_argument("--knn", choices=("faiss", "walk"), default="faiss",
                        help="generated sets: kNN graph by FAISS IVF (nprobe 8; then walk lists from it, as build-graph) or by a walk "
                             "graph from a random start (Vamana; its lists then serve the queries)")
    parser.add_argument("--hnsw-max", type=int, default=200_000, help="largest generated n that also gets FAISS HNSW (its build is slow here)")
    parser.add_argument("--reps", type=int, default=REPS)
    parser.add_argument("--build-threads", type=int, default=BUILD_THREADS)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "graph_search"))
    parser.add_argument("--name", default="graph_search", help="file stem of the JSON / Markdown written")
    args = parser.parse_args()
    globals()["REPS"] = max(1, args.reps)
    globals()["BUILD_THREADS"] = max(1, args.build_threads)
    globals()["KNN_SOURCE"] = args.knn
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine("faiss", "numba", query_threads=1, build_threads=BUILD_THREADS), "command": "python benchmarks/bench_graph_search.py " + " ".join(sys.argv[1:]), "datasets": []}

    def save():
        (out / f"{args.name}.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
        (out / f"{args.name}.md").write_text(markdown(report))

    if not args.skip_mednist and SETS["mednist"][1].is_file():
        report["datasets"].append(mednist_run(args.mednist_queries, args.single))
        save()
    if args.cnm_variants and SETS["mednist"][1].is_file():
        report["cnm_variants"] = cnm_variants_run()
        save()
    if args.quality:
        report["quality"] = quality_run(args.quality_sets)
        save()
    for n in args.sizes:
        report["datasets"].append(generated_run(n, args.generator, args.gen_queries, args.gen_single, args.hnsw_max))
        save()
    report["machine"]["load_average_at_end"] = os.getloadavg()
    save()
    log(f"wrote {out / (args.name + '.json')} and {out / (args.name + '.md')}")


if __name__ == "__main__":
    main()
