"""Who may write: a request that changes the store (an add) must carry the server's write token,
as ``Authorization: Bearer TOKEN`` or ``X-Graphret-Token: TOKEN``.  Without a configured token
the server is read-only and every write is refused (403); a missing token is 401, a wrong one
403.  Tokens are compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from graphret.serve.config import TOKEN_ENV, ServeConfig
from graphret.serve.errors import Forbidden, Unauthorized

__all__ = ["require_writer", "token_of", "TOKEN_HEADER"]

TOKEN_HEADER = "X-Graphret-Token"


def token_of(request: Request) -> str | None:
    """The token a request carries, or None."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    header = request.headers.get(TOKEN_HEADER.lower())
    return header.strip() if header and header.strip() else None


def check_writer(config: ServeConfig, token: str | None) -> None:
    """Refuse a write unless ``token`` is the configured write token."""
    if config.write_token is None:
        raise Forbidden(f"this server is read-only; start it with a write token ({{write_token}} or ${TOKEN_ENV}) to allow adds",
                        param="write_token")
    if token is None:
        raise Unauthorized(f"adding needs the write token: send 'Authorization: Bearer TOKEN' or '{TOKEN_HEADER}: TOKEN'")
    if not hmac.compare_digest(token.encode(), config.write_token.encode()):
        raise Forbidden("the write token is wrong")


def require_writer(request: Request) -> None:
    """FastAPI dependency of every write route."""
    check_writer(request.app.state.config, token_of(request))
