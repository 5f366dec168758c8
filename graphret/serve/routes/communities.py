"""The communities view: ``GET /communities`` (each partition's summary), ``/communities/map.png``
(the analysis's 2-D map of the codes), ``/communities/{method}`` (its communities, largest
first, with label composition), ``/communities/{method}/{community}`` (one community: stats,
label counts, exemplars, neighbours) and ``.../members`` (a page of its items)."""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Response

from graphret.serve.deps import current_view
from graphret.serve.errors import NotFound
from graphret.serve.holder import View
from graphret.serve.models import ItemList, Records
from graphret.serve.tables import item_summary, plain_dict, records
from graphret.store.read import label_text

router = APIRouter(tags=["communities"])


def _partition(view: View, method: str):
    analysis = view.analysis()
    if method not in analysis.names:
        raise NotFound(f"the store has no {method!r} communities; choose one of {', '.join(analysis.names) or '(none)'}",
                       param="method")
    return analysis, analysis.partition(method)


def _members(view: View, method: str, community: int) -> np.ndarray:
    analysis, part = _partition(view, method)
    rows = analysis.rows[np.asarray(part.membership) == int(community)]
    if len(rows) == 0:
        raise NotFound(f"no community {community} in {method}; ids run 0..{part.n_communities - 1}", param="community")
    return rows


@router.get("/communities", summary="Each stored partition's summary: sizes, modularity, coverage, label agreement")
def summary(view: View = Depends(current_view)) -> dict[str, Any]:
    if not view.snapshot.community_methods:
        return {"version": view.version, "methods": [], "summary": []}
    analysis = view.analysis()
    return {"version": view.version, "methods": analysis.names, "summary": records(analysis.summary())}


def _render_map(view: View, embedding: str, sample: int) -> bytes:
    figure = view.analysis().plot_map(embedding, sample=sample)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return buffer.getvalue()


@router.get("/communities/map.png", response_class=Response, summary="2-D map of the codes coloured by community and label",
            responses={200: {"content": {"image/png": {}}}})
def community_map(
    embedding: Annotated[Literal["pca", "tsne"], Query(description="pca (fast) or tsne (needs scikit-learn).")] = "pca",
    sample: Annotated[int, Query(ge=100, le=20000)] = 3000,
    view: View = Depends(current_view),
) -> Response:
    if not view.snapshot.community_methods:
        raise NotFound("the store has no communities to map", param="method")
    data = view.cached(f"map:{embedding}:{sample}", lambda: _render_map(view, embedding, sample))
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


@router.get("/communities/{method}", response_model=Records, summary="One partition's communities, largest first")
def communities(method: str, offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=5000)] = 200,
                view: View = Depends(current_view)) -> dict[str, Any]:
    analysis, part = _partition(view, method)
    table = analysis.communities(part.name)
    return {"version": view.version, "method": part.name, "total": int(len(table)),
            "rows": records(table.iloc[offset: offset + limit])}


def _label_counts(view: View, rows: np.ndarray) -> dict[str, int]:
    snapshot = view.snapshot
    counts: dict[str, int] = {}
    if snapshot.labels is None:
        return counts
    if snapshot.task == "multilabel":
        positive = (snapshot.labels[rows] == 1).sum(axis=0)
        counts = {name: int(c) for name, c in zip(snapshot.class_names, positive) if c}
        none = int((~(snapshot.labels[rows] == 1).any(axis=1)).sum())
        if none:
            counts["(none)"] = none
    else:
        for row in rows:
            name = label_text(snapshot.label_of(int(row)), empty="(none)")
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@router.get("/communities/{method}/{community}", summary="One community: stats, label counts, exemplars, neighbours")
def community(method: str, community: int, top: Annotated[int, Query(ge=1, le=100)] = 12,
              view: View = Depends(current_view)) -> dict[str, Any]:
    rows = _members(view, method, community)
    analysis, part = _partition(view, method)
    report = analysis.community_report(part.name, community, top=top)
    central = report["central"]
    return {
        "version": view.version,
        "method": part.name,
        "community": int(community),
        "size": int(len(rows)),
        "stats": plain_dict(report["stats"]),
        "labels": _label_counts(view, rows),
        "exemplars": [{**item_summary(view.snapshot, int(r)), "internal_degree": round(float(d), 6)}
                      for r, d in zip(central["row"], central["internal_degree"])],
        "neighbours": records(report["neighbours"]),
    }


@router.get("/communities/{method}/{community}/members", response_model=ItemList, summary="A page of one community's items")
def members(method: str, community: int, offset: Annotated[int, Query(ge=0)] = 0,
            limit: Annotated[int, Query(ge=1, le=500)] = 50, view: View = Depends(current_view)) -> dict[str, Any]:
    rows = _members(view, method, community)
    page = rows[offset: offset + limit]
    return {"total": int(len(rows)), "offset": offset, "limit": limit, "version": view.version,
            "items": [item_summary(view.snapshot, int(r)) for r in page]}
