"""What a search returns: :class:`SearchResult`, with Arrow, pandas and JSON views.

JSON (``to_dict``): ``{"mode", "k", "community_method", "queries": [{"query": {"id", "label",
"path"}, "results": [{"rank", "id", "score", "label", "community", "path"}, ...],
"scanned_fraction", ...per-mode extras}, ...]}`` -- the shape `graphret query --format json`
prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from graphret.query.queries import QuerySet
from graphret.store.read import Snapshot

__all__ = ["SearchResult", "result_dict"]


@dataclass
class SearchResult:
    """Top-k results of each query: store rows, exact cosine scores, and the fraction of the
    archive whose codes were compared."""

    mode: str
    k: int
    queries: QuerySet
    rows: np.ndarray  # int64 (q, k) store rows
    scores: np.ndarray  # float32 (q, k)
    scanned_fraction: np.ndarray  # float64 (q,)
    store: Snapshot = field(repr=False)
    community_method: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # per-mode extras (chosen community, class, ...)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> np.ndarray:
        """object (q, k) ids of the results."""
        return self.store.ids[self.rows]

    def communities(self) -> np.ndarray | None:
        """int (q, k) community of each result under ``community_method`` (None without one)."""
        if not self.community_method:
            return None
        return self.store.membership(self.community_method)[self.rows]

    def to_arrow(self) -> pa.Table:
        """One row per (query, result): query_index, query_id, rank, id, row, score, label,
        community, path, scanned_fraction."""
        q, k = self.rows.shape
        store = self.store
        flat_rows = self.rows.ravel()
        communities = self.communities()
        labels = [store.label_of(int(r)) for r in flat_rows]
        label_type = pa.list_(pa.string()) if store.task == "multilabel" else pa.string()
        return pa.table(
            {
                "query_index": pa.array(np.repeat(np.arange(q), k), pa.int32()),
                "query_id": pa.array(np.repeat(np.asarray(self.queries.ids, dtype=object), k).tolist(), pa.string()),
                "rank": pa.array(np.tile(np.arange(1, k + 1), q), pa.int32()),
                "id": pa.array(store.ids[flat_rows].tolist(), pa.string()),
                "row": pa.array(flat_rows, pa.int64()),
                "score": pa.array(self.scores.ravel(), pa.float32()),
                "label": pa.array(labels, label_type),
                "community": pa.nulls(q * k, pa.int32()) if communities is None else pa.array(communities.ravel(), pa.int32()),
                "path": pa.array([store.paths[int(r)] for r in flat_rows], pa.string()),
                "scanned_fraction": pa.array(np.repeat(self.scanned_fraction, k), pa.float64()),
            }
        )

    def to_pandas(self):
        """:meth:`to_arrow` as a pandas DataFrame."""
        return self.to_arrow().to_pandas()

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form (see the module docstring)."""
        queries = self.queries
        return result_dict(self.store, self.mode, self.k, self.community_method, queries.ids, queries.labels, queries.paths,
                           self.rows, self.scores, self.scanned_fraction, self.details)


def result_dict(store: Snapshot, mode: str, k: int, community_method: str | None, query_ids: list, query_labels: list,
                query_paths: list, rows: np.ndarray, scores: np.ndarray, scanned_fraction: np.ndarray,
                details: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able form of a search's arrays (:meth:`SearchResult.to_dict`, and the server's
    answer to :meth:`~graphret.query.searcher.Searcher.search_arrays`)."""
    membership = store.membership(community_method) if community_method else None
    label_of, k_shown = store.label_of, rows.shape[1]
    flat = rows.ravel().tolist()
    ids, paths = store.item_text("id", flat), store.item_text("path", flat)
    queries = []
    for q in range(len(rows)):
        hits = []
        for rank, (row, score) in enumerate(zip(rows[q].tolist(), scores[q].tolist()), start=1):
            at = q * k_shown + rank - 1
            hits.append({"rank": rank, "id": str(ids[at]), "score": round(score, 6), "label": label_of(row),
                         "community": int(membership[row]) if membership is not None else None, "path": paths[at]})
        entry = {"query": {"id": query_ids[q], "label": query_labels[q], "path": query_paths[q]}, "results": hits,
                 "scanned_fraction": round(float(scanned_fraction[q]), 6)}
        for key, values in details.items():
            if isinstance(values, list) and len(values) == len(rows):
                entry[key] = values[q]
        queries.append(entry)
    payload: dict[str, Any] = {"mode": mode, "k": k, "community_method": community_method, "queries": queries}
    for key, value in details.items():
        if not isinstance(value, list):
            payload[key] = value
    return payload
