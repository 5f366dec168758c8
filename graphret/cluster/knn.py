"""The exact cosine kNN graph as sharded Ray tasks.

The codes go to the object store once; each task takes a shard of query rows against all codes
(:func:`graphret.graph.knn.exact_search`, the blocked matrix products and size-k heaps of
:mod:`graphret.graph.topk` that the plain build runs) and returns its rows' kNN lists; the
lists are put back in row order and become the graph as in :func:`knn_graph_with_stats`.
Shards are whole multiples of the plain build's query block and each task multiplies with the
driver's BLAS thread count (how BLAS splits a product among threads changes its rounding), so
every matrix product is the one the plain build computes and the lists (hence the edges) are
the same, given the same BLAS library and CPU kind on the workers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphret.cluster.session import RaySession, import_ray
from graphret.graph.build import graph_from_knn, graph_stats
from graphret.graph.knn import MAX_SCORES, SMALL_BATCH, exact_search, validate_codes
from graphret.graph.topk import check_k

__all__ = ["ray_exact_knn", "ray_knn_graph_with_stats", "shard_bounds"]

#: shards per CPU of the cluster (several, so a slow worker does not hold up the rest)
SHARDS_PER_CPU = 4


def shard_bounds(n: int, height: int, shards: int) -> list[tuple[int, int]]:
    """About ``shards`` ranges of rows covering 0..n, each a whole number of ``height``-row
    blocks (the last takes the rest; a last range under :data:`SMALL_BATCH` rows joins the one
    before, as the plain build never searches so few queries alone)."""
    blocks = math.ceil(n / height)
    per = max(1, math.ceil(blocks / max(1, shards))) * height
    bounds = [(start, min(start + per, n)) for start in range(0, n, per)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < SMALL_BATCH:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def _knn_shard(codes: np.ndarray, start: int, stop: int, k: int, block_size: int, max_scores: int,
               blas_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """The kNN lists of rows start..stop-1 against all codes (each row itself excluded), with
    the driver's BLAS threads."""
    import numba
    import ray
    from threadpoolctl import threadpool_limits

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    numba.set_num_threads(max(1, min(int(cpus), numba.config.NUMBA_NUM_THREADS)))
    rows = np.arange(start, stop, dtype=np.int64)
    # codes[rows] is a copy, as in exact_knn: a view of the archive itself would make numpy
    # compute X X^T with syrk instead of gemm, rounding the cosines differently
    with threadpool_limits(blas_threads, user_api="blas"):
        return exact_search(codes, codes[rows], k, exclude=rows, block_size=block_size, max_scores=max_scores)


def ray_exact_knn(codes: np.ndarray, k: int, session: RaySession, *, shards: int | None = None,
                  block_size: int = 2048, max_scores: int = MAX_SCORES) -> tuple[tuple[np.ndarray, np.ndarray], dict[str, Any]]:
    """:func:`graphret.graph.knn.exact_knn` of ``codes`` as Ray tasks (``shards`` of them,
    default :data:`SHARDS_PER_CPU` per task slot of the cluster), each reserving and computing
    with ``session.worker_cpus`` CPUs (BLAS threads: the driver's): ((indices, similarities),
    the manifest's record of the run)."""
    ray = import_ray()
    codes = validate_codes(codes)
    n = codes.shape[0]
    k = check_k(k, n - 1, what="the other codes")
    height = max(1, min(int(block_size), max_scores // max(n, 1)))
    bounds = shard_bounds(n, height, shards or SHARDS_PER_CPU * max(session.cpus // session.worker_cpus, 1))
    shared = ray.put(codes)
    task = ray.remote(num_cpus=session.worker_cpus)(_knn_shard)
    pending = {task.remote(shared, start, stop, k, block_size, max_scores, session.blas_threads): (start, stop)
               for start, stop in bounds}
    indices = np.empty((n, k), np.int64)
    similarities = np.empty((n, k), np.float32)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        start, stop = pending.pop(ready[0])
        indices[start:stop], similarities[start:stop] = ray.get(ready[0])
    return (indices, similarities), {"shards": len(bounds), "shard_rows": int(bounds[0][1] - bounds[0][0])}


def ray_knn_graph_with_stats(codes: np.ndarray, k: int, session: RaySession, *, symmetrize: str = "union",
                             shards: int | None = None) -> tuple[sp.csr_matrix, dict[str, Any]]:
    """:func:`graphret.graph.build.knn_graph_with_stats` (exact) with the kNN lists from
    :func:`ray_exact_knn`; the stats add the shards."""
    (idx, sims), info = ray_exact_knn(codes, k, session, shards=shards)
    graph = graph_from_knn(idx, sims, symmetrize=symmetrize)
    stats = graph_stats(graph)
    stats.update(method="exact", k=int(idx.shape[1]), symmetrize=symmetrize, dropped_nonpositive=int((sims <= 0).sum()),
                 engine="ray", **info)
    return graph, stats
