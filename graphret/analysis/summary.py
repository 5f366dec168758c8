"""Summary of a partition: community sizes, Newman and Haq quality, coverage, conductance.

For a weighted graph with total weight ``W`` (each undirected edge once) and a community ``c``
with inside weight ``e_c``, volume ``vol_c = a_c`` (sum of its members' weighted degrees) and
boundary ``cut_c = vol_c - 2 e_c``:

* coverage = ``sum_c e_c / W``, the fraction of the edge weight that stays inside communities
  (Fortunato, "Community detection in graphs", Phys. Rep. 2010, sec. 3.3.2);
* conductance of ``c`` = ``cut_c / min(vol_c, 2W - vol_c)`` (0 where that minimum is 0, i.e.
  a community with no edges or one holding the whole graph), lower is better separated;
* Newman's and Haq's modularity come from :mod:`graphret.communities.quality`, the functions
  CNM optimises, so the numbers match the build's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphret.communities.quality import (
    community_totals,
    haq_modularity,
    newman_modularity,
)

__all__ = ["community_stats", "partition_summary", "conductance"]


def conductance(cut: np.ndarray, vol: np.ndarray, total_volume: float) -> np.ndarray:
    """``cut / min(vol, total_volume - vol)``, 0 where the minimum is 0."""
    denom = np.minimum(vol, total_volume - vol)
    out = np.zeros_like(np.asarray(cut, dtype=np.float64))
    ok = denom > 1e-12 * max(total_volume, 1.0)
    out[ok] = cut[ok] / denom[ok]
    return out


def community_stats(graph: sp.csr_matrix, membership: np.ndarray) -> pd.DataFrame:
    """One row per community (largest first): ``community``, ``size``, ``internal_weight``
    (e), ``volume``, ``cut``, ``conductance``, ``mean_similarity`` (mean edge weight over all
    member pairs, ``2e / (n(n-1))``, 0 for a single image) and ``density`` (fraction of member
    pairs joined by an edge)."""
    membership = np.asarray(membership, dtype=np.int64)
    e, vol, size, W = community_totals(graph, membership)
    size = size.astype(np.int64)
    coo = graph.tocoo()
    inside = membership[coo.row] == membership[coo.col]
    edges_in = np.bincount(membership[coo.row[inside]], minlength=size.size) / 2.0
    used = np.flatnonzero(size > 0)
    e, vol, size, edges_in = e[used], vol[used], size[used], edges_in[used]
    cut = np.maximum(vol - 2.0 * e, 0.0)
    pairs = size * (size - 1) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_sim = np.where(pairs > 0, e / np.where(pairs > 0, pairs, 1), 0.0)
        density = np.where(pairs > 0, edges_in / np.where(pairs > 0, pairs, 1), 0.0)
    table = pd.DataFrame({
        "community": used.astype(np.int64),
        "size": size.astype(np.int64),
        "internal_weight": e,
        "volume": vol,
        "cut": cut,
        "conductance": conductance(cut, vol, 2.0 * W),
        "mean_similarity": mean_sim,
        "density": density,
    })
    return table.sort_values(["size", "community"], ascending=[False, True], kind="stable").reset_index(drop=True)


def partition_summary(graph: sp.csr_matrix, membership: np.ndarray, *, resolution: float = 1.0,
                      stats: pd.DataFrame | None = None) -> dict:
    """Numbers describing one partition: item and community counts, the size distribution,
    Newman and Haq modularity (at ``resolution``), coverage and conductance (mean, median, and
    the size-weighted mean over communities)."""
    membership = np.asarray(membership, dtype=np.int64)
    stats = community_stats(graph, membership) if stats is None else stats
    sizes = stats["size"].to_numpy()
    W = float(graph.data.sum()) / 2.0
    n = int(membership.size)
    cond = stats["conductance"].to_numpy()
    return {
        "items": n,
        "communities": int(sizes.size),
        "singletons": int((sizes == 1).sum()),
        "size_min": int(sizes.min()),
        "size_median": float(np.median(sizes)),
        "size_mean": float(sizes.mean()),
        "size_max": int(sizes.max()),
        "largest_share": float(sizes.max() / n),
        "items_in_top10": float(np.sort(sizes)[::-1][:10].sum() / n),
        "newman_modularity": newman_modularity(graph, membership, resolution=resolution),
        "haq_modularity": haq_modularity(graph, membership, resolution=resolution),
        "coverage": float(stats["internal_weight"].sum() / W) if W > 0 else float("nan"),
        "conductance_mean": float(cond.mean()),
        "conductance_median": float(np.median(cond)),
        "conductance_weighted": float(np.average(cond, weights=sizes)),
        "resolution": float(resolution),
    }
