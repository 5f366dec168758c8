"""Bounded request bodies: :class:`BodyLimit`, a plain ASGI middleware that answers 413 (as
JSON) before the application reads a body larger than the server's limit.

A body announced with ``Content-Length`` over the limit is refused without the application
seeing it; a chunked body without one is read, up to the limit, before the application sees
it, and refused when it runs over.  Nothing larger than the limit is ever held in memory or
spooled to disk.  A refused body is read and dropped, up to :data:`DRAIN_FACTOR` times the
limit, before the answer, so a client that sends its whole body before reading (most do) gets
the 413 rather than a reset connection; a body larger still is cut off.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from graphret.serve.errors import error_body

__all__ = ["BodyLimit", "DRAIN_FACTOR"]

#: a refused body is read and dropped up to this many times the limit before answering 413
DRAIN_FACTOR = 4

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 (state: the wrapped app and the limit)."""

    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await self._refuse(send, "the Content-Length header is not a number", 400)
                return
            if declared > self.max_bytes:
                if declared <= DRAIN_FACTOR * self.max_bytes:
                    await self._drain(receive, 0)
                await self._refuse(send, self._message(declared), 413)
                return
            await self.app(scope, receive, send)
            return
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await self._drain(receive, size)
                await self._refuse(send, self._message(size, more=True), 413)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _drain(self, receive: Receive, size: int) -> None:
        """Read and drop the rest of a refused body (up to the drain cap)."""
        while size <= DRAIN_FACTOR * self.max_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    def _message(self, size: int, *, more: bool = False) -> str:
        limit = self.max_bytes / (1024 * 1024)
        what = f"over {size} bytes" if more else f"{size} bytes"
        return f"the request body is {what}, over this server's limit of {limit:g} MiB (max_upload_mb); send smaller or fewer images"

    @staticmethod
    async def _refuse(send: Send, text: str, status: int) -> None:
        body = json.dumps(error_body(text, status, kind="TooLarge" if status == 413 else "BadRequest")).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
