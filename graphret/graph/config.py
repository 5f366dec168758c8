"""How a build makes its kNN graph: :class:`GraphConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graphret.graph.search_graph import (CHEAP_WALK_ABOVE, DEFAULT_EF_CONSTRUCTION, DEFAULT_MAX_DEGREE, DEFAULT_PASSES,
                                         SEARCH_CANDIDATES)
from graphret.params import param, validate


@dataclass(frozen=True)
class GraphConfig:
    """The cosine kNN graph's settings."""

    k: int = param(10, min=1, help="Neighbours per image in the kNN graph.")
    knn: Literal["exact", "approx", "faiss", "auto"] = param(
        "auto", help="How the kNN lists are found: exact (blocked matrix products), approx (pynndescent), faiss (FAISS IVF, "
                      "for large archives) or auto (exact up to 20,000 codes, faiss above); an approximate graph's recall is "
                      "measured on a sample.")
    knn_threads: int | None = param(None, min=1, help="Threads for the faiss kNN [FAISS's default: all cores].")
    symmetrize: Literal["union", "mutual"] = param(
        "union", help="union: i ~ j when either lists the other; mutual: only when both do.")
    walk: bool = param(True, help="Build the walk lists and entry points the graph and region modes search through.")
    walk_degree: int = param(DEFAULT_MAX_DEGREE, min=2, help="Most neighbours per item in the walk lists (HNSW's M at layer 0).")
    walk_expand: bool | None = param(
        None, help="Score the neighbours of kNN neighbours as walk-list candidates too (one NN-descent step); off: the kNN "
                   f"graph's own lists only, much cheaper at a million codes [on up to {CHEAP_WALK_ABOVE:,} archive items, off above].")
    walk_passes: int | None = param(
        None, min=0, help=f"Walk-based passes that add the long edges a walk needs (NSG / Vamana) [{DEFAULT_PASSES} up to "
                          f"{CHEAP_WALK_ABOVE:,} archive items, 0 above].")
    walk_local: int | None = param(
        None, min=0, help="Local passes: each item walks from its own walk list towards its code and keeps the best it "
                          f"scores (a cheap NN-descent step) [0; 1 above {CHEAP_WALK_ABOVE:,} archive items where the kNN "
                          "search keeps no candidates (--walk-candidates 0, or knn approx)].")
    walk_candidates: int | None = param(
        None, min=0, help="First walk-list candidates from the kNN search itself (exact or faiss): each item's this many most "
                          "similar codes it compared, kept by the search at the cost of merging them; 0: the kNN graph's "
                          f"lists [0 up to {CHEAP_WALK_ABOVE:,} archive items, {SEARCH_CANDIDATES} above].")
    walk_ef: int = param(DEFAULT_EF_CONSTRUCTION, min=1, help="Result-heap size of the walks that build the lists.")

    def __post_init__(self) -> None:
        validate(self)
