"""Do two stores hold the same archive?  Codes to float tolerance, the same edges, the same
communities: how a store built on Ray is checked against the plain build of the same input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from graphret.store.read import Snapshot

__all__ = ["store_differences"]


def store_differences(a: str | Path, b: str | Path) -> dict[str, Any]:
    """What differs between stores ``a`` and ``b``: ``same_ids``, per code space the largest
    absolute code difference (``max_code_diff``), ``same_edges`` (the same (src, dst) pairs),
    ``max_weight_diff``, and per community method whether the memberships are equal."""
    left, right = Snapshot(a), Snapshot(b)
    out: dict[str, Any] = {"items": len(left), "same_ids": bool(np.array_equal(left.ids, right.ids))}
    out["max_code_diff"] = {space: float(np.abs(left.codes(space) - right.codes(space)).max(initial=0.0))
                            for space in left.spaces if space in right.spaces and out["same_ids"]}
    out["same_spaces"] = left.spaces == right.spaces
    pairs = [np.stack([s.edges.column("src").to_numpy(), s.edges.column("dst").to_numpy()]) for s in (left, right)]
    out["edges"] = [int(p.shape[1]) for p in pairs]
    out["same_edges"] = bool(pairs[0].shape == pairs[1].shape and np.array_equal(pairs[0], pairs[1]))
    if out["same_edges"]:
        weights = [s.edges.column("weight").to_numpy() for s in (left, right)]
        out["max_weight_diff"] = float(np.abs(weights[0] - weights[1]).max(initial=0.0))
    out["same_communities"] = {method: bool(np.array_equal(left.membership(method), right.membership(method)))
                               for method in left.community_methods if method in right.community_methods}
    return out
