"""The process :func:`graphret.api.ahead.compiled_ahead` starts: the graph steps of a build
run on generated codes, so that numba compiles (and caches) their kernels with the build's types.

    python -m graphret.api.warmup '{"steps": ["knn", "communities"], "rows": 1400, "options": {...}}'
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from graphret.api.ahead import SAMPLE_DIM
from graphret.api.build import _Clock, _knn, _walk_lists
from graphret.api.config import BuildConfig
from graphret.communities.config import find_partition
from graphret.graph.build import graph_from_knn

__all__ = ["run_steps"]


def run_steps(steps: list[str], rows: int, options: dict[str, Any], seed: int = 0) -> None:
    """Run the graph ``steps`` ("knn", "communities", "walk") of a build with ``options`` on
    ``rows`` generated unit codes (seeded): what a :func:`~graphret.api.ahead.compiled_ahead` process does.  The walk
    step alone takes its kNN graph from numpy, so that it compiles none of the kNN kernels."""
    config = BuildConfig.from_options(**options)
    codes = np.random.default_rng(seed).standard_normal((rows, SAMPLE_DIM)).astype(np.float32)
    codes /= np.linalg.norm(codes, axis=1, keepdims=True)
    if "knn" in steps or "communities" in steps:
        graph, _, _ = _knn(codes, None, config, {})  # (no candidates kept: compiled ahead only for archives <= 100k)
    else:
        k = min(config.graph.k, rows - 1)
        sims = codes @ codes.T
        np.fill_diagonal(sims, -np.inf)
        idx = np.argsort(-sims, axis=1, kind="stable")[:, :k].astype(np.int64)
        graph = graph_from_knn(idx, np.take_along_axis(sims, idx, axis=1).astype(np.float32),
                               symmetrize=config.graph.symmetrize)
    if "communities" in steps:
        for method in config.communities.methods:
            find_partition(graph, method, config.communities, seed=config.seed)
    if "walk" in steps:
        _walk_lists(codes, graph, None, {}, np.arange(rows), config, _Clock(), lambda _: None)


if __name__ == "__main__":
    request = json.loads(sys.argv[1])
    run_steps(request["steps"], int(request["rows"]), request["options"])
