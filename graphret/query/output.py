"""Query results as JSON, CSV or a text table, all made from :meth:`SearchResult.to_dict`."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from graphret.query.result import SearchResult
from graphret.store.read import label_text

FORMATS = ("table", "json", "csv")


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
                    label_text(query["label"]),
                    query["path"] or "",
                    hit["rank"],
                    hit["id"],
                    f"{hit['score']:.6f}",
                    label_text(hit["label"]),
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
            f"query {who}  label: {label_text(query['label'], empty='-')}  mode: {payload['mode']}{extra}  "
            f"scanned: {100 * entry['scanned_fraction']:.1f}% of the archive"
        )
        rows = [("rank", "id", "score", "label", "community", "path")]
        for hit in entry["results"]:
            community = "" if hit["community"] is None else str(hit["community"])
            rows.append((str(hit["rank"]), hit["id"], f"{hit['score']:.4f}", label_text(hit["label"]), community, hit["path"] or ""))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        for r in rows:
            lines.append("  " + "  ".join(r[c].ljust(widths[c]) for c in range(5)) + "  " + r[5])
        lines.append("")
    return "\n".join(lines)


def render(result: SearchResult, *, fmt: str = "table") -> str:
    """The result as ``fmt``: "table", "json" or "csv"."""
    return {"table": to_table, "json": to_json, "csv": to_csv}[fmt](result.to_dict())
