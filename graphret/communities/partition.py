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
