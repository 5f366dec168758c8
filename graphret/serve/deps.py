"""What route functions receive (FastAPI dependencies): the store view a request reads, and the
server's config."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from graphret.serve.config import ServeConfig
from graphret.serve.holder import StoreHolder, View

__all__ = ["current_view", "server_config", "holder_of"]


def holder_of(request: Request) -> StoreHolder:
    return request.app.state.holder


async def current_view(request: Request) -> View:
    """The one store version this request reads (the newest when the request began).  Checking
    for a newer version is a directory listing, done here on the event loop; opening one takes
    seconds, so it runs in a worker thread."""
    holder = holder_of(request)
    if holder.is_current():
        return holder.view
    return await run_in_threadpool(holder.current)


async def server_config(request: Request) -> ServeConfig:
    return request.app.state.config
