"""Query results as JSON, CSV or a text table.

JSON: ``{"mode", "k", "queries": [{"query": {"id", "label", "path"}, "results": [{"rank",
"id", "score", "label", "community", "path"}, ...], "scanned_fraction"}, ...]}``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from graphret.query.search import SearchResult
from graphret.store.read import GraphStore

FORMATS = ("table", "json", "csv")


def result_dict(result: SearchResult, store: GraphStore, *, community_method: str | None = None) -> dict[str, Any]:
    """The JSON-able form of a search result."""
    method = community_method or result.community_method or store.default_community_method()
    membership = store.membership(method) if method else None
    queries = []
    for q in range(len(result.queries)):
        hits = []
        for rank, (row, score) in enumerate(zip(result.rows[q], result.scores[q]), start=1):
            row = int(row)
            hits.append(
                {
                    "rank": rank,
                    "id": str(store.ids[row]),
                    "score": round(float(score), 6),
                    "label": store.label_of(row),
                    "community": int(membership[row]) if membership is not None else None,
                    "path": store.paths[row],
                }
            )
        entry = {
            "query": {"id": result.queries.ids[q], "label": result.queries.labels[q], "path": result.queries.paths[q]},
            "results": hits,
            "scanned_fraction": round(float(result.scanned_fraction[q]), 6),
        }
        for key, values in result.details.items():
            if isinstance(values, list) and len(values) == len(result.queries):
                entry[key] = values[q]
        queries.append(entry)
    payload = {"mode": result.mode, "k": result.k, "community_method": method, "queries": queries}
    if "n_probe" in result.details:
        payload["n_probe"] = result.details["n_probe"]
    return payload


def _label_text(label: Any) -> str:
    if label is None:
        return ""
    if isinstance(label, list):
        return "|".join(label) if label else "(none)"
    return str(label)


def to_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2)


def to_csv(payload: dict[str, Any]) -> str:
    """One row per (query, result)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["query_id", "query_label", "query_path", "rank", "id", "score", "label", "community", "path", "scanned_fraction"])
    for entry in payload["queries"]:
        query = entry["query"]
        for hit in entry["results"]:
            writer.writerow(
                [
                    query["id"] or "",
                    _label_text(query["label"]),
                    query["path"] or "",
                    hit["rank"],
                    hit["id"],
                    f"{hit['score']:.6f}",
                    _label_text(hit["label"]),
                    "" if hit["community"] is None else hit["community"],
                    hit["path"] or "",
                    f"{entry['scanned_fraction']:.6f}",
                ]
            )
    return out.getvalue()


def to_table(payload: dict[str, Any]) -> str:
    """A readable text table per query."""
    lines = []
    for entry in payload["queries"]:
        query = entry["query"]
        who = query["id"] if query["id"] is not None else query["path"]
        extra = ""
        if "chosen_community" in entry:
            extra = f"  community: {entry['chosen_community']}"
        if "predicted_class" in entry:
            extra = f"  predicted class: {entry['predicted_class']}"
        lines.append(
            f"query {who}  label: {_label_text(query['label']) or '-'}  mode: {payload['mode']}{extra}  "
            f"scanned: {100 * entry['scanned_fraction']:.1f}% of the archive"
        )
        rows = [("rank", "id", "score", "label", "community", "path")]
        for hit in entry["results"]:
            community = "" if hit["community"] is None else str(hit["community"])
            rows.append((str(hit["rank"]), hit["id"], f"{hit['score']:.4f}", _label_text(hit["label"]), community, hit["path"] or ""))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        for r in rows:
            lines.append("  " + "  ".join(r[c].ljust(widths[c]) for c in range(5)) + "  " + r[5])
        lines.append("")
    return "\n".join(lines)


def render(result: SearchResult, store: GraphStore, *, fmt: str = "table", community_method: str | None = None) -> str:
    payload = result_dict(result, store, community_method=community_method)
    return {"table": to_table, "json": to_json, "csv": to_csv}[fmt](payload)
