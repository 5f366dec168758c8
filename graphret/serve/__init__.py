"""``graphret serve``: a retrieval service and a web page over one store.

>>> from graphret.serve import ServeConfig, create_app, serve
>>> app = create_app("mednist-store")                      # an ASGI app (FastAPI)
>>> serve("mednist-store", ServeConfig(port=8000))         # uvicorn, until Ctrl-C

The layer above :mod:`graphret.api`: the routes (:mod:`.routes`) read one store version per
request (:mod:`.holder`), check uploads (:mod:`.uploads`) and writers (:mod:`.auth`), bound
request bodies (:mod:`.limits`) and answer errors as JSON (:mod:`.errors`).  The names below
are imported on first use, so the command line's ``--help`` does not load the web framework.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BackgroundServer": "graphret.serve.background",
    "ServeConfig": "graphret.serve.config",
    "create_app": "graphret.serve.app",
    "serve": "graphret.serve.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'graphret.serve' has no attribute {name!r}")
