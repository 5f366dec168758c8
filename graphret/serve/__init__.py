"""``graphret serve``: a retrieval service and a web page over one store.

>>> from graphret.serve import ServeConfig, create_app, serve
>>> app = create_app("mednist-store")                      # an ASGI app (FastAPI)
>>> serve("mednist-store", ServeConfig(port=8000))         # uvicorn, until Ctrl-C

The layer above :mod:`graphret.api`: the routes (:mod:`.routes`) read one store version per
request (:mod:`.holder`), check uploads (:mod:`.uploads`) and writers (:mod:`.auth`), bound
request bodies (:mod:`.limits`) and answer errors as JSON (:mod:`.errors`).
"""

from graphret.serve.app import create_app
from graphret.serve.background import BackgroundServer
from graphret.serve.config import ServeConfig
from graphret.serve.run import serve

__all__ = ["BackgroundServer", "ServeConfig", "create_app", "serve"]
