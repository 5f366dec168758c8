"""Errors as JSON: every failure a client sees is ``{"error": message, "type": ..., "param":
..., "status": ...}`` with the right status, never a traceback page.

Library errors (:class:`~graphret.errors.GraphretError`) keep their one-line message, with
parameters in their Python spelling, which is also the API's field names (``use k=50 or
less``): 400 by default, 404 for what is not there, 413 for an oversized upload, 415 for an
upload that is not an image, 422 for a query mode that cannot answer on this store.  Request
validation (a field of the wrong type) is 422; anything unexpected is 500 with a short message,
its traceback going to the server's log only.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from graphret.errors import GraphretError, InputError, ModeUnavailable
from graphret.serve.uploads import TooLarge, UploadError

__all__ = ["NotFound", "Unauthorized", "Forbidden", "error_body", "install_error_handlers", "status_of"]

log = logging.getLogger("graphret.serve")


class NotFound(InputError):
    """An item, community or route that is not there (HTTP 404)."""


class Unauthorized(InputError):
    """A write request without the write token (HTTP 401)."""


class Forbidden(InputError):
    """A write request with a wrong token, or to a read-only server (HTTP 403)."""


_STATUS: tuple[tuple[type[GraphretError], int], ...] = (
    (NotFound, 404),
    (Unauthorized, 401),
    (Forbidden, 403),
    (TooLarge, 413),
    (UploadError, 415),
    (ModeUnavailable, 422),
)


def status_of(error: GraphretError) -> int:
    """The HTTP status of a library or server error."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 400


def error_body(message: str, status: int, *, kind: str = "error", param: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": message, "type": kind, "param": param, "status": status, **extra}


def _graphret(request: Request, error: GraphretError) -> JSONResponse:
    status = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(str(error), status, kind=type(error).__name__, param=error.param), status_code=status, headers=headers)


def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path", "form"))
        problems.append(f"{where or 'request'}: {item.get('msg', 'invalid')}")
    message = "; ".join(problems) or "the request is not valid"
    first = next((str(item["loc"][-1]) for item in error.errors() if item.get("loc")), None)
    return JSONResponse(error_body(message, 422, kind="ValidationError", param=first), status_code=422)


def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
    message = error.detail if isinstance(error.detail, str) else str(error.detail)
    if error.status_code == 404 and message == "Not Found":
        message = f"no route {request.url.path}; the routes are listed at /openapi.json"
    elif error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; see /openapi.json"
    return JSONResponse(error_body(message, error.status_code, kind="HTTPError"), status_code=error.status_code,
                        headers=getattr(error, "headers", None))


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    message = f"internal error ({type(error).__name__}); the server's log has the details"
    return JSONResponse(error_body(message, 500, kind="InternalError"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error of ``app`` through the JSON handlers above."""
    app.add_exception_handler(GraphretError, _graphret)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
