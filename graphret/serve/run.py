"""Run a server: :func:`serve` starts uvicorn on the application of :func:`create_app` and
blocks until it is stopped (Ctrl-C or SIGTERM)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from graphret.serve.app import create_app
from graphret.serve.config import LOOPBACK, ServeConfig

__all__ = ["serve", "KEEP_ALIVE"]

#: seconds an idle keep-alive connection stays open
KEEP_ALIVE = 30


def serve(store: str | Path, config: ServeConfig | None = None, *, log: Callable[[str], None] = print) -> None:
    """Serve the store at ``store`` with ``config`` until stopped."""
    import uvicorn

    config = config or ServeConfig()
    app = create_app(store, config)
    mode = "read-write (adds need the write token)" if config.writable else "read-only"
    exposed = "" if config.host in (LOOPBACK, "localhost", "::1") else " -- reachable from the network"
    log(f"serving {store} (version {app.state.holder.describe()['version']}, {mode}) on http://{config.host}:{config.port}/{exposed}")
    # keep idle connections 30 s (uvicorn's default is 5): a busy client that reuses a connection
    # a little late would otherwise race the server closing it and see a reset
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False, timeout_keep_alive=KEEP_ALIVE)
