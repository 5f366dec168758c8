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
import sys
import types
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


def lazy_exports(package: str, exports: dict[str, str]):
    """A package's ``__getattr__`` and ``__dir__`` that import each exported name's module on
    first use (PEP 562), so importing one module of a package does not import all of them:
    ``graphret query --id X`` loads only what a search needs.  ``exports``: name -> module."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    # a name exported from a submodule of the same name (communities.cnm, the function, from
    # communities/cnm.py) stays the export when the submodule's import binds it on the package,
    # as an eager ``from .cnm import cnm`` in the package would have left it
    module = sys.modules[package]
    clashes = {name for name, source in exports.items() if source == f"{package}.{name}"}
    if clashes and type(module) is types.ModuleType:
        module.__class__ = type("LazyPackage", (types.ModuleType,), {"__setattr__": _keep_exports(clashes)})
    return __getattr__, __dir__


def _keep_exports(clashes: set[str]):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in clashes and isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}":
            value = getattr(value, name)
        types.ModuleType.__setattr__(self, name, value)

    return __setattr__


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
