"""The HTTP API's request and response shapes (pydantic), published in ``/openapi.json``.

A search answers in the shape ``graphret query --format json`` prints
(:meth:`~graphret.query.result.SearchResult.to_dict`), plus ``version`` (the store version it
read) and ``seconds`` (the search's own time on the server).
"""

from __future__ import annotations

from typing import Any, Literal, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from graphret.params import base_type, default_of, fields_of
from graphret.query.config import SearchConfig

__all__ = [
    "SearchOptions", "SearchRequest", "SEARCH_FIELDS", "search_config", "SearchResponse", "Hit", "QueryInfo", "QueryResult",
    "ItemSummary", "ItemList", "ItemDetail", "Health", "StoreSummary", "AddFolderRequest", "AddResponse", "Records",
]

Label = str | list[str] | None
#: SearchConfig fields a request does not set: the server's worker shape decides the batching
SERVER_FIXED = ("batch_size",)


def _request_type(name: str) -> Any:
    """A SearchConfig field's type as JSON carries it: lists for tuples (``where`` also as one string)."""
    if name == "where":
        return list[str] | str | None
    if get_origin(base_type(SearchConfig, name)[0]) is tuple:
        return list[str] | None
    return get_type_hints(SearchConfig)[name]


#: (name, request type, default, help) of each search option a request takes, from SearchConfig
#: (a list option's default is None: not given)
SEARCH_FIELDS = tuple((f.name, _request_type(f.name), None if f.name == "where" else default_of(f), f.metadata["help"])
                      for f in fields_of(SearchConfig) if f.name not in SERVER_FIXED)

SearchOptions = create_model(
    "SearchOptions", __config__=ConfigDict(extra="forbid"),
    __doc__="What every search takes besides its queries: SearchConfig's options (those of ``graphret query``).",
    **{name: (kind, Field(default, description=text)) for name, kind, default, text in SEARCH_FIELDS})


def search_config(options: BaseModel) -> SearchConfig:
    """The request's options as a :class:`SearchConfig` (checked there: a mode-specific option
    with another mode is a ParameterError, HTTP 400)."""
    given = options.model_dump(exclude={"ids", "codes"})
    # lists as tuples (as SearchConfig keeps them): the same options then give the same cached,
    # already validated config (SearchConfig.from_options), not a validation per request
    return SearchConfig.from_options(**{name: tuple(v) if isinstance(v, list) else v for name, v in given.items()})


class SearchRequest(SearchOptions):  # type: ignore[valid-type, misc]
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
