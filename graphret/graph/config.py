"""How a build makes its kNN graph: :class:`GraphConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graphret.graph.search_graph import DEFAULT_EF_CONSTRUCTION, DEFAULT_MAX_DEGREE, DEFAULT_PASSES
from graphret.params import param, validate


@dataclass(frozen=True)
class GraphConfig:
    """The cosine kNN graph's settings."""

    k: int = param(10, min=1, help="Neighbours per image in the kNN graph.")
    knn: Literal["exact", "approx"] = param(
        "exact", help="How the kNN lists are found: exact (blocked matrix products) or approx (pynndescent; its recall is measured on a sample).")
    symmetrize: Literal["union", "mutual"] = param(
        "union", help="union: i ~ j when either lists the other; mutual: only when both do.")
    walk: bool = param(True, help="Build the walk lists and entry points the graph and region modes search through.")
    walk_degree: int = param(DEFAULT_MAX_DEGREE, min=2, help="Most neighbours per item in the walk lists (HNSW's M at layer 0).")
    walk_passes: int = param(DEFAULT_PASSES, min=0, help="Walk-based passes that add the long edges a walk needs (NSG / Vamana).")
    walk_ef: int = param(DEFAULT_EF_CONSTRUCTION, min=1, help="Result-heap size of the walks that build the lists.")

    def __post_init__(self) -> None:
        validate(self)
