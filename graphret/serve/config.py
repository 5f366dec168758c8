"""How a server runs: :class:`ServeConfig`, one frozen config whose fields the ``graphret serve``
command's options are generated from (:mod:`graphret.params`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from graphret.errors import InputError
from graphret.params import nested_update, param, validate

__all__ = ["ServeConfig", "TOKEN_ENV", "LOOPBACK"]

#: the environment variable a write token may come from (so it stays out of ``ps`` listings)
TOKEN_ENV = "GRAPHRET_WRITE_TOKEN"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ServeConfig:
    """Where a server listens and what it allows.  Safe by default: loopback only, read-only
    (writes need ``write_token``), uploads bounded in size and in pixels."""

    host: str = param(LOOPBACK, help="Address to listen on (loopback by default; 0.0.0.0 exposes the server to the network).")
    port: int = param(8000, min=0, max=65535, help="Port to listen on (0: any free port).")
    write_token: str | None = param(None, cli=False,
                                    help=f"Token that write requests (add) must send; none: the server is read-only (or set {TOKEN_ENV}).")
    max_upload_mb: float = param(20.0, min=0.01, max=4096.0, help="Largest request body accepted, in MiB (uploads included).")
    max_pixels: int = param(50_000_000, min=1, help="Largest uploaded image accepted, in pixels (width x height).")
    max_files: int = param(256, min=1, help="Most images one add request may upload.")
    max_k: int = param(1000, min=1, help="Most results one query may ask for.")
    max_queries: int = param(100, min=1, help="Most queries (ids, code vectors or images) one search request may hold.")
    uploads: str | None = param(None, help="Folder where images added by upload are kept [STORE/uploads].")
    search_threads: int = param(1, min=1, max=64,
                                help="Threads per server process that run searches: searches hold the GIL, so more threads "
                                "only interleave them and every request waits for the others (with 32 clients on MedNIST, "
                                "p99 230 ms with 40 threads, 26 ms with one); more processes (--workers) use more cores.")
    workers: int = param(1, min=1, max=64,
                         help="Server processes, each with its own event loop, all reading the store's memory-mapped files "
                         "(one per core serves the most queries; 1: one process).")

    def __post_init__(self) -> None:
        validate(self)
        if self.write_token is not None and not self.write_token.strip():
            raise InputError("{write_token} must not be empty; give a secret or none for a read-only server", param="write_token")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def writable(self) -> bool:
        return self.write_token is not None

    @classmethod
    def from_options(cls, **options: Any) -> "ServeConfig":
        """A config from keyword options; ``write_token`` defaults to $GRAPHRET_WRITE_TOKEN."""
        if options.get("write_token") is None and os.environ.get(TOKEN_ENV):
            options["write_token"] = os.environ[TOKEN_ENV]
        return nested_update(cls(), options)
