"""Where a build's heavy steps run: :class:`EngineConfig` (``--engine``, ``--address``,
``--workers``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graphret.params import param, validate

__all__ = ["EngineConfig"]


@dataclass(frozen=True)
class EngineConfig:
    """The engine of a build: this process, or a Ray cluster."""

    name: Literal["local", "ray"] = param(
        "local", option="engine",
        help="Where encoding and the kNN graph run: local (this process) or ray (Ray Data blocks, an encoder actor pool and "
        "sharded kNN tasks on a Ray cluster; needs `pip install \"graphret[ray]\"`).")
    address: str | None = param(
        None, applies_to=("ray",),
        help="ray: the cluster to run on (auto, ray://host:10001 or host:6379) [none: start a local Ray instance].")
    workers: int | None = param(
        None, min=1, applies_to=("ray",),
        help="ray: encoder actors (one model each) [one per GPU of the cluster, else one per CPU].")

    def __post_init__(self) -> None:
        validate(self, selector="name", noun="engine")
