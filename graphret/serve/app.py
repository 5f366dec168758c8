"""The ASGI application: :func:`create_app` opens a store and answers the HTTP API and the web
page (FastAPI on Starlette; run it with uvicorn, see :mod:`graphret.serve.run`)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import graphret
from graphret.serve.config import ServeConfig
from graphret.serve.errors import install_error_handlers
from graphret.serve.holder import StoreHolder
from graphret.serve.limits import BodyLimit
from graphret.serve.routes import ROUTERS
from graphret.serve.routes.add import sweep_uploads
from graphret.serve.routes.page import STATIC

__all__ = ["create_app"]

DESCRIPTION = """Retrieval over one graphret store: search by uploaded image, stored id or code
vector (the JSON of `graphret query --format json`), item details and thumbnails, communities,
health and the manifest's summary, and adds for clients holding the write token.  Errors are
JSON: `{"error", "type", "param", "status"}`."""


def create_app(store: str | Path, config: ServeConfig | None = None) -> FastAPI:
    """The application serving the store at ``store`` (opened now: a missing or damaged store
    is a GraphretError here, not on the first request)."""
    config = config or ServeConfig()
    holder = StoreHolder(store)
    sweep_uploads(config, holder.path, holder.view.snapshot.ids)  # the uploads of adds killed before their commit
    app = FastAPI(title="graphret", version=graphret.__version__, description=DESCRIPTION, docs_url=None, redoc_url=None)
    app.state.holder = holder
    app.state.config = config
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, max_bytes=config.max_upload_bytes)
    return app
