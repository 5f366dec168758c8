"""``GET /health``, ``GET /store`` (the manifest's summary) and ``GET /versions``."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Depends

from graphret.query.classfilter import has_classifier
from graphret.query.filters import filterable_columns
from graphret.query.config import MODES
from graphret.query.searcher import default_mode
from graphret.serve.config import ServeConfig
from graphret.serve.deps import current_view, server_config
from graphret.serve.holder import View
from graphret.serve.models import Health, StoreSummary
from graphret.serve.tables import METADATA_SKIP

router = APIRouter(tags=["store"])

#: a filterable column lists its values when it has at most this many distinct ones
FEW_VALUES = 40


@router.get("/health", response_model=Health, summary="Is the server up, and which store version does it serve")
def health(view: View = Depends(current_view)) -> dict[str, Any]:
    return {"status": "ok", "version": view.version, "items": len(view.store)}


def _filters(view: View) -> dict[str, list[Any] | None]:
    snapshot = view.snapshot
    out: dict[str, list[Any] | None] = {}
    if snapshot.class_names:
        out["label"] = list(snapshot.class_names)
    for name in filterable_columns(snapshot):
        if name in ("id", "path", "label", "label_name") or (name in METADATA_SKIP and name not in ("split", "added")):
            continue
        values = snapshot.items.column(name).unique()
        if len(values) <= FEW_VALUES:
            plain = [v for v in values.to_pylist() if v is not None]
            out[name] = sorted(plain, key=lambda v: (str(type(v)), v))
        else:
            out[name] = None
    return out


@router.get("/store", response_model=StoreSummary, summary="The store: version, items, classes, spaces, communities, filters")
def store_summary(view: View = Depends(current_view), config: ServeConfig = Depends(server_config)) -> dict[str, Any]:
    snapshot = view.snapshot
    manifest = snapshot.manifest
    splits, counts = np.unique(snapshot.splits.astype(str), return_counts=True)
    return {
        "name": snapshot.path.name,
        "version": view.version,
        "items": len(snapshot),
        "task": snapshot.task,
        "class_names": snapshot.class_names,
        "spaces": snapshot.spaces,
        "community_methods": snapshot.community_methods,
        "modes": list(MODES),
        "default_mode": default_mode(snapshot),
        "splits": {str(s): int(c) for s, c in zip(splits, counts)},
        "filters": view.cached("filters", lambda: _filters(view)),
        "encoder": manifest.get("encoder", {}).get("name"),
        "classifier": has_classifier(snapshot),
        "source": manifest.get("source", {}).get("spec"),
        "thumbnails": snapshot.has_thumbnails,
        "writable": config.writable,
        "counts": manifest.get("counts", {}),
        "limits": {"max_upload_mb": config.max_upload_mb, "max_pixels": config.max_pixels, "max_k": config.max_k,
                   "max_files": config.max_files, "max_queries": config.max_queries},
        "communities": {m: {k: v for k, v in info.items() if isinstance(v, (int, float, str))}
                        for m, info in manifest.get("communities", {}).items()},
    }


@router.get("/versions", summary="The store's committed versions")
def versions(view: View = Depends(current_view)) -> dict[str, Any]:
    return {"version": view.version, "versions": view.store.versions()}
