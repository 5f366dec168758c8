"""``POST /search`` (stored ids or code vectors) and ``POST /search/image`` (uploaded images):
the same results, in the same JSON shape, as ``graphret query --format json``."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from graphret.errors import InputError
from graphret.serve.config import ServeConfig
from graphret.serve.deps import current_view, server_config
from graphret.serve.holder import View
from graphret.serve.models import SEARCH_FIELDS, SearchOptions, SearchRequest, SearchResponse, search_config
from graphret.serve.search import code_matrix, run_search
from graphret.serve.uploads import Upload, query_images

router = APIRouter(tags=["search"])


@router.post("/search", response_model=SearchResponse, summary="Search by stored ids or by code vectors")
async def search(body: SearchRequest, request: Request, view: View = Depends(current_view),
                 config: ServeConfig = Depends(server_config)) -> JSONResponse:
    """The top-k archive items for each query: ``ids`` (stored items, never in their own
    results) or ``codes`` (vectors in the chosen code space).  The search runs in one of the
    process's search threads (``search_threads``), never on the event loop."""
    return await anyio.to_thread.run_sync(search_body, body, view, config, limiter=search_limiter(request.app, config))


def search_limiter(app, config: ServeConfig) -> anyio.CapacityLimiter:
    """The process's search threads (made on first use, inside the event loop)."""
    limiter = getattr(app.state, "search_limiter", None)
    if limiter is None:
        limiter = app.state.search_limiter = anyio.CapacityLimiter(config.search_threads)
    return limiter


def search_body(body: SearchRequest, view: View, config: ServeConfig) -> JSONResponse:
    if (body.ids is None) == (body.codes is None):
        raise InputError("give exactly one of {ids} (stored item ids) or {codes} (code vectors)", param="ids")
    options = search_config(body)
    if body.ids is not None:
        if not body.ids:
            raise InputError("{ids} is empty; give at least one stored item id", param="ids")
        return answer(run_search(view, [str(i) for i in body.ids], "ids", options, config, n_queries=len(body.ids)))
    codes = code_matrix(body.codes or [])
    return answer(run_search(view, codes, "codes", options, config, n_queries=len(codes)))


class FastJSON(JSONResponse):
    """JSON written by orjson (several times faster than the standard library's encoder)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def answer(payload: dict[str, Any]) -> JSONResponse:
    """The search's JSON as it is: already in the documented shape (``SearchResponse``), so it
    skips a second validation on the hot path."""
    return FastJSON(payload)


def read_uploads(files: list[UploadFile], config: ServeConfig) -> list[Upload]:
    """The uploaded files' names and bytes (the body limit has bounded their size already)."""
    if not files:
        raise InputError("upload at least one image as {files}", param="files")
    if len(files) > config.max_files:
        raise InputError(f"{len(files)} files in one request is over this server's limit of {config.max_files}", param="files")
    return [Upload(name=f.filename or f"upload-{i}", data=f.file.read()) for i, f in enumerate(files)]


def search_image(files: list[UploadFile], view: View, config: ServeConfig, **options: Any) -> JSONResponse:
    """Encode the uploaded images with the store's encoder and search with them (a multi-frame
    DICOM file is one query per frame); the search options are form fields, SearchConfig's."""
    uploads = read_uploads(files, config)
    images = query_images(uploads, max_pixels=config.max_pixels)
    optional = {name for name, _, default, _ in SEARCH_FIELDS if default is None}
    given = {name: value for name, value in options.items() if not (value == "" and name in optional)}  # an empty form field: not given
    return answer(run_search(view, images, "images", search_config(SearchOptions(**given)), config, n_queries=len(images)))


def _form_signature() -> inspect.Signature:
    """search_image's parameters as FastAPI reads them: the files, a form field per search
    option (from SearchConfig, as the JSON route's), the store view and the server's config."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    listed = ("where", "archive")  # repeated form fields
    form = [inspect.Parameter(name, keyword, default=default,
                              annotation=Annotated[list[str] | None if name in listed else kind, Form(description=text)])
            for name, kind, default, text in SEARCH_FIELDS]
    return inspect.Signature([
        inspect.Parameter("files", keyword, annotation=Annotated[list[UploadFile], File(
            description="Query images: PNG, JPEG, TIFF, BMP, GIF, WebP or DICOM.")]),
        *form,
        inspect.Parameter("view", keyword, default=Depends(current_view), annotation=View),
        inspect.Parameter("config", keyword, default=Depends(server_config), annotation=ServeConfig),
    ], return_annotation=JSONResponse)


search_image.__signature__ = _form_signature()  # type: ignore[attr-defined]
router.post("/search/image", response_model=SearchResponse, summary="Search by uploaded images (PNG, JPEG, DICOM...)")(search_image)
