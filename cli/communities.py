"""`graphret communities`: summaries, label agreement, comparisons, pictures and exports of a
store's communities."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from graphret.errors import InputError

FORMATS = ("table", "json", "csv")


def _fmt_value(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.3g}"
        if abs(value) >= 100:
            return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def _table_text(frame, *, index: bool = False) -> str:
    """A DataFrame as an aligned plain-text table (numbers right-aligned)."""
    import pandas as pd

    frame = frame.copy()
    headers = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    body = []
    for idx, row in frame.iterrows():
        cells = ([str(idx)] if index else []) + [_fmt_value(v.item() if hasattr(v, "item") else v) for v in row.tolist()]
        body.append(cells)
    numeric = ([False] if index else []) + [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in body])


def _summary_for_table(summary):
    """Partitions as columns, metrics as rows: easier to read than a wide table."""
    frame = summary.set_index("partition").T
    frame.index.name = "metric"
    return frame


@click.command("communities")
@click.argument("store", type=click.Path())
@click.option("--method", "methods", default="all", show_default=True,
              help="Stored partition(s) to analyse: cnm, leiden, a comma list, or all.")
@click.option("--cut", type=int, default=None, help="Also analyse the CNM dendrogram cut at N communities.")
@click.option("--labels", "with_labels", is_flag=True, help="Communities against the labels: NMI/ARI per label and the most mixed communities.")
@click.option("--compare", "with_compare", is_flag=True, help="Partitions against each other: NMI/ARI and a contingency table of the largest communities.")
@click.option("--community", "community", type=int, default=None,
              help="One community of the first partition: its stats, most central images and neighbouring communities.")
@click.option("--top", type=int, default=10, show_default=True, help="Rows in lists (mixed communities, contingency, central images).")
@click.option("--plots", "plots_dir", type=click.Path(), default=None,
              help="Write PNG pictures into this folder (sizes, code map, community graph, montages).")
@click.option("--map", "maps", default=None,
              help="2-D maps for --plots, comma list of pca, tsne, umap (default: pca and t-SNE where installed).")
@click.option("--sample", type=int, default=5000, show_default=True, help="Codes drawn (seeded) for the 2-D map.")
@click.option("--no-montage", is_flag=True, help="With --plots: skip the exemplar montages (they read images from the source).")
@click.option("--export", "export_dir", type=click.Path(), default=None,
              help="Write graph.graphml, nodes/edges.parquet, summary.json/csv, communities.csv into this folder.")
@click.option("--version", "version", type=int, default=None, help="Read this version of the store [the newest].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output on stdout.")
def communities_command(store, methods, cut, with_labels, with_compare, community, top, plots_dir, maps, sample,
                        no_montage, export_dir, version, fmt) -> None:
    """Analyse the communities of STORE: summary of every partition (sizes, Newman and Haq
    modularity, coverage, conductance, and purity/NMI/ARI against the labels); add --labels,
    --compare or --community ID for more, --plots DIR for pictures, --export DIR for files.

    \b
    graphret communities mednist-store
    graphret communities mednist-store --labels --compare --top 8
    graphret communities mednist-store --method cnm --community 3
    graphret communities mednist-store --cut 12 --plots pictures/ --export exports/
    """
    from graphret.analysis import analyse
    from graphret.store import open_store

    embeddings = _check_options(top=top, sample=sample, maps=maps, cut=cut, folders=(plots_dir, export_dir))
    analysis = analyse(open_store(store, version=version), methods, cut)
    if with_labels and not analysis.has_labels:
        raise InputError(f"{store} has no labels (task {analysis.store.task}); drop --labels")
    if with_compare and len(analysis.names) < 2:
        raise InputError("--compare needs two partitions; use --method all or add --cut N")
    sections = _sections(analysis, with_labels=with_labels, with_compare=with_compare, community=community, top=top)
    written = []
    if plots_dir:
        written += _write_plots(analysis, plots_dir, embeddings=embeddings, sample=sample, montage=not no_montage,
                                community=community, top=top)
    if export_dir:
        written += analysis.export(export_dir, top=top)
    for path in written:
        click.echo(f"wrote {path}", err=True)
    click.echo(_render(analysis, sections, fmt=fmt, community=community))


def _check_options(*, top: int, sample: int, maps: str | None, cut: int | None, folders) -> list[str] | None:
    """The options' values checked before any work; returns the 2-D maps asked for."""
    if top < 1:
        raise InputError(f"--top must be at least 1, got {top}")
    if sample < 3:
        raise InputError(f"--sample must be at least 3 codes, got {sample}")
    embeddings = None
    if maps is not None:
        from graphret.analysis.plots import available_embeddings

        embeddings = [m.strip().lower() for m in maps.split(",") if m.strip()]
        unknown = [m for m in embeddings if m not in ("pca", "tsne", "umap")]
        if unknown or not embeddings:
            raise InputError(f"unknown map {unknown[0] if unknown else maps!r}; use pca, tsne or umap (comma list)")
        missing = [m for m in embeddings if m not in available_embeddings()]
        if missing:
            raise InputError(f"the {missing[0]} map is not installed here; use {', '.join(available_embeddings())}")
    if cut is not None and cut < 1:
        raise InputError(f"--cut must be a number of communities >= 1, got {cut}")
    from graphret.analysis.export import ensure_folder

    for folder in folders:  # fail on an unwritable folder before the work
        if folder:
            ensure_folder(folder)
    return embeddings


def _sections(analysis, *, with_labels: bool, with_compare: bool, community: int | None, top: int) -> dict[str, object]:
    """Title -> DataFrame of every section asked for."""
    sections: dict[str, object] = {"summary": analysis.summary()}
    if with_labels:
        for name in analysis.names:
            sections[f"label agreement: {name}"] = analysis.label_agreement(name)
            sections[f"most mixed communities: {name}"] = analysis.most_mixed(name, top=top)
    if with_compare:
        sections["comparison"] = analysis.comparisons()
        a, b = analysis.names[0], analysis.names[1]
        sections[f"contingency: {a} x {b} (largest {top})"] = analysis.contingency(a, b, top=top).reset_index(names="community")
    if community is not None:
        import pandas as pd

        first = analysis.names[0]
        report = analysis.community_report(first, community, top=top)
        sections[f"{first} community {community}"] = pd.DataFrame([report["stats"]])
        sections[f"{first} community {community}: most central images"] = report["central"]
        sections[f"{first} community {community}: neighbouring communities"] = report["neighbours"]
    return sections


def _write_plots(analysis, folder, *, embeddings, sample: int, montage: bool, community: int | None, top: int) -> list[Path]:
    written = analysis.save_plots(folder, embeddings=embeddings, sample=sample, montage=montage)
    if community is not None and montage:
        from graphret.analysis.export import writable_target

        first = analysis.names[0]
        path = Path(folder) / f"montage-{first}-{community}.png"
        fig = analysis.plot_montage(first, community, per_community=min(max(top, 8), 24))
        with writable_target(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        written.append(path)
    return written


def _render(analysis, sections: dict[str, object], *, fmt: str, community: int | None) -> str:
    """The sections as JSON, CSV or readable tables."""
    from graphret.analysis.export import jsonable

    if fmt == "json":
        header = analysis.report(summary=False, labels=False, compare=False)
        return json.dumps(jsonable({**header, "sections": dict(sections)}), indent=2)
    if fmt == "csv":
        return "\n\n".join(f"# {title}\n" + frame.to_csv(index=False).rstrip("\n") for title, frame in sections.items())
    store = analysis.store
    lines = [f"{store.path}: {analysis.archive.n} archive items, {analysis.archive.graph.nnz // 2} edges, "
             f"task {store.task}" + (f", {len(store.class_names)} classes" if store.class_names else "")]
    for title, frame in sections.items():
        lines += ["", f"== {title}"]
        if title == "summary":
            lines.append(_table_text(_summary_for_table(frame), index=True))
        elif community is not None and title.endswith(f"community {community}"):
            lines.append(_table_text(frame.T.rename(columns={0: "value"}).rename_axis("metric"), index=True))
        else:
            lines.append(_table_text(frame))
    return "\n".join(lines)
