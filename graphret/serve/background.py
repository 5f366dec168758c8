"""A server in a background thread of this process: :class:`BackgroundServer`, for notebooks,
tests and benchmarks (``with BackgroundServer(app) as server: httpx.get(server.url + "/health")``).
It listens on loopback, on a free port unless told one, and stops when the block ends."""

from __future__ import annotations

import socket
import threading
import time

from graphret.serve.run import KEEP_ALIVE

__all__ = ["BackgroundServer"]


class BackgroundServer:
    """uvicorn serving ``app`` on ``host``:``port`` (0: a free port) in a daemon thread (state:
    the uvicorn server and its thread)."""

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0) -> None:
        self.app = app
        self.host = host
        self._socket = _bound_socket(host, port)  # bound here, so the port is known and stays ours
        self.port = int(self._socket.getsockname()[1])
        self.timeout = timeout
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "BackgroundServer":
        import uvicorn

        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning", access_log=False,
                                lifespan="off", timeout_keep_alive=KEEP_ALIVE)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name=f"graphret-serve-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self.timeout)
        self._socket.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _bound_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock
