"""What every community method returns: a :class:`Partition` of the graph's nodes.

CNM (:class:`~graphret.communities.cnm.CNMResult`, which adds the dendrogram) and Leiden
(:class:`~graphret.communities.leiden.LeidenResult`) both return one, so the build, the store
and the analysis treat them alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Partition:
    """A partition found by a community method.

    Subclasses provide ``membership`` (int64 (n,), communities numbered 0.. by decreasing
    size), ``quality`` (the value of the quality the method optimised), ``seconds`` and
    ``dendrogram`` (a dict of numpy columns, or None)."""

    method: str = ""
    membership: np.ndarray
    quality: float
    seconds: float
    dendrogram: dict | None

    @property
    def n_communities(self) -> int:
        return int(self.membership.max()) + 1 if self.membership.size else 0

    def settings(self) -> dict[str, Any]:
        """What the store's manifest records about how this partition was found."""
        return {}


def dense_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Community labels renumbered 0..C-1 in the order of their ids (int64; -1, outside every
    community, stays -1) and the ids (C,): ``np.unique(..., return_inverse=True)`` of the
    labelled items, by counting when the ids are small (np.unique imports numpy.ma, tens of ms
    that a one-query process need not pay)."""
    labels = np.asarray(labels, np.int64)
    inside = labels >= 0
    dense = np.full(len(labels), -1, np.int64)
    if not inside.any():
        return dense, np.zeros(0, np.int64)
    if int(labels.max()) <= 4 * len(labels) + 16:
        ids = np.flatnonzero(np.bincount(labels[inside]))
        number = np.zeros(int(ids[-1]) + 1, np.int64)
        number[ids] = np.arange(len(ids))
        dense[inside] = number[labels[inside]]
        return dense, ids
    ids, inverse = np.unique(labels[inside], return_inverse=True)
    dense[inside] = inverse.ravel()
    return dense, ids
