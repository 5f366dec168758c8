"""What route functions receive (FastAPI dependencies): the store view a request reads, and the
server's config."""

from __future__ import annotations

from fastapi import Request

from graphret.serve.config import ServeConfig
from graphret.serve.holder import StoreHolder, View

__all__ = ["current_view", "server_config", "holder_of"]


def holder_of(request: Request) -> StoreHolder:
    return request.app.state.holder


def current_view(request: Request) -> View:
    """The one store version this request reads (the newest when the request began)."""
    return holder_of(request).current()


def server_config(request: Request) -> ServeConfig:
    return request.app.state.config
