"""The HTTP API's request and response shapes (pydantic), published in ``/openapi.json``.

A search answers in the shape ``graphret query --format json`` prints
(:meth:`~graphret.query.result.SearchResult.to_dict`), plus ``version`` (the store version it
read) and ``seconds`` (the search's own time on the server).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graphret.query.classfilter import CLASS_SOURCES
from graphret.query.searcher import DEFAULT_PROBE, MODES, RANKS

__all__ = [
    "SearchOptions", "SearchRequest", "SearchResponse", "Hit", "QueryInfo", "QueryResult", "ItemSummary", "ItemList",
    "ItemDetail", "Health", "StoreSummary", "AddFolderRequest", "AddResponse", "Records",
]

Mode = Literal[MODES]  # type: ignore[valid-type]
ClassSource = Literal[CLASS_SOURCES]  # type: ignore[valid-type]
Rank = Literal[RANKS]  # type: ignore[valid-type]
Label = str | list[str] | None


class SearchOptions(BaseModel):
    """What every search takes besides its queries (the options of ``graphret query``)."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(10, description="Results per query.")
    mode: Mode | None = Field(None, description="region (default with communities), graph, flat, class or probe.")
    where: list[str] | str | None = Field(None, description="Metadata filters applied before ranking, e.g. label=CXR.")
    space: str = Field("default", description="Code space to search.")
    communities: str | None = Field(None, description="Community method region and probe use [cnm, else leiden].")
    n_probe: int = Field(DEFAULT_PROBE, description="Lists probe mode searches (P).")
    ef: int | None = Field(None, description="The walk's result heap, graph and region modes [48; region 16].")
    rank: Rank | None = Field(None, description="Re-order the results by the graph: smoothed or manifold [the mode's own order].")
    archive: list[str] | None = Field(None, description="Splits searched [the store's archive].")
    class_source: ClassSource = Field("classifier", description="Class mode: the encoder's classifier, or a kNN vote.")


class SearchRequest(SearchOptions):
    """A search by stored ids or by code vectors (exactly one of them)."""

    ids: list[str] | None = Field(None, description="Stored item ids as queries.")
    codes: list[list[float]] | None = Field(None, description="Code vectors as queries, (q, d); normalised by the server.")


class QueryInfo(BaseModel):
    id: str | None
    label: Label
    path: str | None


class Hit(BaseModel):
    rank: int
    id: str
    score: float
    label: Label
    community: int | None
    path: str | None


class QueryResult(BaseModel):
    """One query's results (plus per-mode extras such as ``chosen_community``)."""

    model_config = ConfigDict(extra="allow")

    query: QueryInfo
    results: list[Hit]
    scanned_fraction: float


class SearchResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    mode: str
    k: int
    community_method: str | None
    queries: list[QueryResult]
    version: int = Field(description="The store version this search read.")
    seconds: float = Field(description="Seconds the search took on the server (encoding not included).")
    encode_seconds: float | None = Field(None, description="Seconds spent encoding uploaded images.")


class ItemSummary(BaseModel):
    id: str
    row: int
    label: Label
    split: str
    communities: dict[str, int]


class ItemList(BaseModel):
    total: int = Field(description="Items that match the filters.")
    offset: int
    limit: int
    items: list[ItemSummary]
    version: int


class ItemDetail(ItemSummary):
    path: str | None
    added: bool
    group: str | None = None
    predicted: str | None = None
    metadata: dict[str, Any]
    has_thumbnail: bool = Field(description="The store keeps a thumbnail of this item.")
    version: int


class Health(BaseModel):
    status: Literal["ok"]
    version: int
    items: int


class StoreSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    version: int
    items: int
    task: str
    class_names: list[str]
    spaces: list[str]
    community_methods: list[str]
    modes: list[str]
    default_mode: str
    splits: dict[str, int]
    filters: dict[str, list[Any] | None] = Field(description="Filterable columns, with their values where there are few.")
    encoder: str | None
    classifier: bool = Field(description="The encoder has a classifier (class mode can use it; otherwise class_source=knn).")
    source: str | None
    thumbnails: bool
    writable: bool
    counts: dict[str, Any]
    limits: dict[str, Any]


class AddFolderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="A folder, file or source spec on the server, as `graphret add STORE SOURCE` takes.")
    k: int | None = Field(None, description="Edges per new image [the store's k].")
    split: bool = Field(True, description="Give sources without splits a seeded 70/30 split (False: split 'all').")


class AddResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    added: int
    items: int
    version: int
    ids: list[str] | None = None


class Records(BaseModel):
    """A table as records (one dict per row)."""

    model_config = ConfigDict(extra="allow")

    version: int
    rows: list[dict[str, Any]]
