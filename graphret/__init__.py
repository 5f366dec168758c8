"""graphret: graph-analytics retrieval for medical images.

Encoders turn images into unit-norm codes; a sparse cosine kNN graph joins similar images;
weighted-modularity communities (CNM, Leiden) organise the archive; queries grow a region
inside the best community, or search flat, by class, or by probing communities.

>>> import graphret
>>> store = graphret.build("demo:n=300,size=32", "demo-store", encoder="pixels")
>>> store.search("test", k=10).to_pandas()
>>> store = graphret.open("demo-store")
>>> graphret.build_from_codes(codes, "my-store", ids=ids, labels=labels)

The layers, lowest first (each imports only those below it): ``errors``, ``atomic``,
``params`` -> ``data``, ``metrics`` -> ``encoders``, ``graph``, ``communities`` -> ``store``, ``cluster`` (the Ray engine) ->
``query``, ``analysis``, ``evaluation`` -> ``api`` (build, add, the Store) -> ``serve`` (the HTTP
service and web page) -> ``cli``.
The names below are imported on first use, so ``import graphret`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "AddConfig": "graphret.api.config",
    "BuildConfig": "graphret.api.config",
    "Store": "graphret.api.store",
    "build": "graphret.api.store",
    "build_from_codes": "graphret.api.store",
    "open": "graphret.api.store",
    "train": "graphret.api.train",
    "CommunityConfig": "graphret.communities.config",
    "EngineConfig": "graphret.cluster.config",
    "SourceConfig": "graphret.data.config",
    "EncoderConfig": "graphret.encoders.config",
    "TrainingConfig": "graphret.encoders.config",
    "GraphConfig": "graphret.graph.config",
    "GraphretError": "graphret.errors",
    "InputError": "graphret.errors",
    "ParameterError": "graphret.errors",
    "KTooLarge": "graphret.errors",
    "ModeUnavailable": "graphret.errors",
    "StoreError": "graphret.errors",
    "SearchConfig": "graphret.query.config",
    "SearchResult": "graphret.query.result",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'graphret' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
