"""Write a :class:`~graphret.evaluation.bench.BenchResult`: JSON, Markdown table, PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from graphret.errors import InputError


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return ""
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}"
    return str(v)


def columns(result) -> list[str]:
    keys: list[str] = []
    for row in result.rows:
        for key in row:
            if key not in keys and key not in ("communities", "class_source"):
                keys.append(key)
    return keys


def markdown_table(result) -> str:
    keys = columns(result)
    lines = ["| " + " | ".join(keys) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(keys))) + "|"]
    for row in result.rows:
        lines.append("| " + " | ".join(_fmt(row.get(key)) for key in keys) + " |")
    for x in result.skipped:
        lines.append(f"| {x['mode']} | unavailable: {x['reason']} |" + " |" * max(len(keys) - 2, 0))
    return "\n".join(lines)


def text_table(result) -> str:
    keys = columns(result)
    cells = [keys] + [[_fmt(row.get(key)) for key in keys] for row in result.rows]
    cells += [[x["mode"]] + ["unavailable"] + [""] * (len(keys) - 2) for x in result.skipped if len(keys) >= 2]
    widths = [max(len(c[i]) for c in cells) for i in range(len(keys))]
    out = []
    for j, line in enumerate(cells):
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def header_lines(result) -> list[str]:
    s, m, d = result.settings, result.machine, result.duplicates
    lines = [
        f"store {s['store']} ({result.store_info.get('source')}), encoder: {s['encoder']}",
        f"queries: {s['queries']} of split {s['split']!r}" + (f" (seeded sample of {s['queries_in_split']}, seed {s['seed']})" if s["sampled"] else "")
        + f"; archive: {s['archive']} ({s['archive_items']} items); K = {s['k']}; relevance: {s['relevance']}"
        + (f"; graded: {s['graded_relevance']}" if s.get("graded_relevance") else ""),
        f"exact duplicates ({d['criterion']}): policy {d['policy']}; {d['queries_with_duplicates']} queries have "
        f"{d['duplicate_items']} in the archive" + (" (excluded from results)" if d["policy"] == "drop" else " (left retrievable)"),
        f"cost: q/s batched = all queries in one call (best of {s['batched_reps']}); q/s single, p50/p95 = "
        f"{s['one_at_a_time_queries']} queries one call each; probe P = {s['n_probe']}; {m['date_utc']}, {m['cpu']}, "
        f"{m['cores']} cores, load {m['load_average']}",
    ]
    groups = s.get("groups")
    if groups:
        lines.append(f"groups ({groups.get('group_by') or 'from the source'}): {groups['queries_sharing']} of {groups['queries']} "
                     f"queries share a group with the archive ({groups['groups_shared']} groups on both sides)")
    lines += [f"note: {n}" for n in result.notes]
    lines += [f"skipped {x['mode']}: {x['reason']}" for x in result.skipped]
    return lines


def to_json(result) -> str:
    return json.dumps(_clean(result.to_dict()), indent=1) + "\n"


def _clean(x):
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    return x


def check_out_dir(out: str | Path) -> Path:
    """Create ``out`` and check it can be written, or raise one line."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".graphret-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise InputError(f"cannot write to {{out}} {out}: {error.strerror or error}; choose a writable folder", param="out") from None
    return path


def write_report(result, out: str | Path, *, title: str | None = None) -> list[Path]:
    """Write ``bench.json`` (every figure, settings, machine, the store's manifest),
    ``bench.md`` and the plots ``precision_recall.png``, ``recall_vs_qps.png``,
    ``precision_at_k.png`` into ``out``; returns the paths."""
    path = check_out_dir(out)
    written = []
    (path / "bench.json").write_text(to_json(result))
    written.append(path / "bench.json")
    md = [f"# {title or 'graphret bench'}", ""] + [f"- {line}" for line in header_lines(result)] + ["", markdown_table(result), ""]
    md += ["Plots: `precision_recall.png`, `recall_vs_qps.png`, `precision_at_k.png`; every figure in `bench.json`.", ""]
    (path / "bench.md").write_text("\n".join(md))
    written.append(path / "bench.md")
    written += write_plots(result, path)
    return written


def write_plots(result, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = result.settings["k"]
    name = result.store_info.get("source") or result.settings["store"]
    paths = []

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for mode, c in result.curves.items():
        ax.plot(c["pr_recall"], c["pr_precision"], label=mode, marker=".", markersize=3)
    ax.set_xlabel(f"recall (of min({result.settings['curve_k']}, relevant items))")
    ax.set_ylabel("precision")
    ax.set_title(f"precision-recall, K = 1..{result.settings['curve_k']}\n{name}", fontsize=9)
    paths.append(_finish(fig, ax, out / "precision_recall.png", legend_size=8))

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, row in enumerate(result.rows):
        r = row.get(f"recall@{k} vs flat")
        if r is None:
            continue
        color = f"C{i % 10}"
        ax.scatter(row["q/s batched"], r, label=f"{row['mode']} (batched)", marker="o", color=color)
        if row.get("q/s single"):
            ax.scatter(row["q/s single"], r, label=f"{row['mode']} (one at a time)", marker="x", color=color)
    ax.set_xscale("log")
    ax.set_xlabel("queries / s")
    ax.set_ylabel(f"recall@{k} against flat")
    ax.set_title(f"recall@{k} against queries/s\n{name}", fontsize=9)
    paths.append(_finish(fig, ax, out / "recall_vs_qps.png", legend_size=7))

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for mode, c in result.curves.items():
        p = c["precision_at_k"]
        ax.plot(np.arange(1, len(p) + 1), p, label=mode)
    ax.set_xlabel("K")
    ax.set_ylabel("precision@K")
    ax.set_title(f"precision@K, K = 1..{result.settings['curve_k']}\n{name}", fontsize=9)
    paths.append(_finish(fig, ax, out / "precision_at_k.png", legend_size=8))
    return paths


def _finish(fig, ax, path: Path, *, legend_size: int) -> Path:
    """Grid, legend, tight layout; save the figure to ``path`` and close it."""
    import matplotlib.pyplot as plt

    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
