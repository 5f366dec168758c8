"""``GET /items`` (a page of items, filtered), ``GET /items/{id}`` (one item's details) and its
pictures: ``/items/{id}/thumbnail`` (the stored thumbnail, or one made from the item's pixels
for stores without them) and ``/items/{id}/image`` (the item's pixels as PNG).

Pictures are found by item id only and read from the store or the item's recorded path or
source; no route takes a file path, so none can serve a file outside the store and its sources.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Response

from graphret.query.filters import filter_mask
from graphret.serve.deps import current_view
from graphret.serve.errors import NotFound
from graphret.serve.holder import View
from graphret.serve.models import ItemDetail, ItemList
from graphret.serve.search import where_list
from graphret.serve.tables import item_detail, item_summary, row_of
from graphret.store.thumbnails import thumbnail_png

router = APIRouter(tags=["items"])

#: the largest side of ``/items/{id}/image``
IMAGE_SIZE = 1024
PNG = "image/png"
CACHE = {"Cache-Control": "private, max-age=300"}


@router.get("/items", response_model=ItemList, summary="A page of stored items, filtered and in row or seeded random order")
def list_items(
    where: Annotated[list[str] | None, Query(description="Metadata filters, e.g. label=CXR (repeatable).")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    order: Annotated[Literal["row", "random"], Query()] = "row",
    seed: Annotated[int, Query(ge=0)] = 0,
    view: View = Depends(current_view),
) -> dict[str, Any]:
    snapshot = view.snapshot
    mask = filter_mask(snapshot, where_list(where))
    rows = np.arange(len(snapshot)) if mask is None else np.flatnonzero(mask)
    if order == "random":
        rows = np.random.default_rng(seed).permutation(rows)
    page = rows[offset: offset + limit]
    return {"total": int(len(rows)), "offset": offset, "limit": limit, "version": view.version,
            "items": [item_summary(snapshot, int(r)) for r in page]}


def _thumbnail(view: View, row: int) -> bytes:
    data = view.thumbnail(row)
    if data is None:
        raise NotFound(f"no picture of item {view.snapshot.ids[row]!r}: the store keeps no thumbnail of it and its "
                       "source cannot be read", param="id")
    return data


@router.get("/items/{item_id:path}/thumbnail", response_class=Response, summary="A stored item's thumbnail (PNG)",
            responses={200: {"content": {PNG: {}}}})
def thumbnail(item_id: str, view: View = Depends(current_view)) -> Response:
    return Response(_thumbnail(view, row_of(view.snapshot, item_id)), media_type=PNG, headers=CACHE)


@router.get("/items/{item_id:path}/image", response_class=Response, summary="A stored item's image (PNG, at most 1024 px)",
            responses={200: {"content": {PNG: {}}}})
def image(item_id: str, view: View = Depends(current_view)) -> Response:
    row = row_of(view.snapshot, item_id)
    pixels = view.item_pixels(row)
    data = thumbnail_png(pixels, IMAGE_SIZE) if pixels is not None else _thumbnail(view, row)
    return Response(data, media_type=PNG, headers=CACHE)


@router.get("/items/{item_id:path}", response_model=ItemDetail, summary="One stored item: label, split, metadata, communities")
def item(item_id: str, view: View = Depends(current_view)) -> dict[str, Any]:
    return item_detail(view, row_of(view.snapshot, item_id))
