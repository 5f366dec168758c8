"""Community centroids: the normalised mean code of each community's members."""

from __future__ import annotations

import numpy as np

__all__ = ["community_centroids"]


def community_centroids(codes: np.ndarray, membership: np.ndarray, n_communities: int | None = None) -> np.ndarray:
    """float32 (C, d) unit-norm mean code of each community ``0..C-1``; members with label -1
    are ignored; an empty community gets a zero row."""
    codes = np.asarray(codes, dtype=np.float32)
    membership = np.asarray(membership)
    C = int(membership.max()) + 1 if n_communities is None else int(n_communities)
    inside = membership >= 0
    labels = membership[inside]
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    sums = np.zeros((C, codes.shape[1]), np.float64)
    if len(order):
        rows = np.flatnonzero(inside)[order]
        block = 1 << 18  # bounded memory for a large archive
        # reduceat over the sorted members, in chunks of rows to bound memory
        for lo in range(0, len(rows), block):
            hi = min(lo + block, len(rows))
            chunk_labels = sorted_labels[lo:hi]
            heads = np.flatnonzero(np.r_[True, chunk_labels[1:] != chunk_labels[:-1]])
            partial = np.add.reduceat(codes[rows[lo:hi]].astype(np.float64), heads, axis=0)
            np.add.at(sums, chunk_labels[heads], partial)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)
