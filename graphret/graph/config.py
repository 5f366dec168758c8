"""How a build makes its kNN graph: :class:`GraphConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graphret.params import param, validate


@dataclass(frozen=True)
class GraphConfig:
    """The cosine kNN graph's settings."""

    k: int = param(10, min=1, help="Neighbours per image in the kNN graph.")
    knn: Literal["exact", "approx"] = param(
        "exact", help="How the kNN lists are found: exact (blocked matrix products) or approx (pynndescent; its recall is measured on a sample).")
    symmetrize: Literal["union", "mutual"] = param(
        "union", help="union: i ~ j when either lists the other; mutual: only when both do.")

    def __post_init__(self) -> None:
        validate(self)
