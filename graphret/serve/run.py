"""Run a server: :func:`serve` starts uvicorn on the application of :func:`create_app` and
blocks until it is stopped (Ctrl-C or SIGTERM)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Callable

from graphret.serve.app import create_app
from graphret.serve.config import LOOPBACK, ServeConfig

__all__ = ["serve", "KEEP_ALIVE"]

#: seconds an idle keep-alive connection stays open
KEEP_ALIVE = 30


#: the environment variable through which worker processes receive the store and the config
WORKER_ENV = "GRAPHRET_SERVE_WORKER"
#: seconds a worker process may take to open the store and answer a health check
WORKER_START_SECONDS = 300


def serve(store: str | Path, config: ServeConfig | None = None, *, log: Callable[[str], None] = print) -> None:
    """Serve the store at ``store`` with ``config`` until stopped: one process, or
    ``config.workers`` processes sharing the listening socket (uvicorn's supervisor), each
    opening the store itself -- its files are memory-mapped, so the workers share their pages."""
    import uvicorn

    config = config or ServeConfig()
    app = create_app(store, config)  # opened here too: a bad store fails now, with one line
    mode = "read-write (adds need the write token)" if config.writable else "read-only"
    exposed = "" if config.host in (LOOPBACK, "localhost", "::1") else " -- reachable from the network"
    processes = f", {config.workers} worker processes" if config.workers > 1 else ""
    log(f"serving {store} (version {app.state.holder.describe()['version']}, {mode}{processes}) on "
        f"http://{config.host}:{config.port}/{exposed}")
    # keep idle connections 30 s (uvicorn's default is 5): a busy client that reuses a connection
    # a little late would otherwise race the server closing it and see a reset
    options = dict(host=config.host, port=config.port, log_level="warning", access_log=False, timeout_keep_alive=KEEP_ALIVE)
    if config.workers == 1:
        uvicorn.run(app, **options)
        return
    del app
    os.environ[WORKER_ENV] = json.dumps({"store": str(store), "config": dataclasses.asdict(config)})
    # a worker opens and warms the store before it answers the supervisor's health checks:
    # give it the time a large store takes on a busy machine (uvicorn's 5 s restarts it forever)
    uvicorn.run("graphret.serve.run:worker_app", factory=True, workers=config.workers,
                timeout_worker_healthcheck=WORKER_START_SECONDS, **options)


def worker_app():
    """The application of one worker process (:func:`serve` with ``workers`` > 1)."""
    given = json.loads(os.environ[WORKER_ENV])
    return create_app(given["store"], ServeConfig(**given["config"]))
