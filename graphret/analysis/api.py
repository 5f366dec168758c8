"""The notebook entry point: :func:`analyse` opens a store's communities once and answers the
questions data scientists ask, as pandas DataFrames and matplotlib Figures.

>>> from graphret.analysis import analyse
>>> a = analyse("mednist-store", cut=20)         # every stored method + the CNM cut at 20
>>> a.summary()                                   # one row per partition
>>> a.label_agreement("cnm"); a.most_mixed("leiden")
>>> a.compare("cnm", "leiden"); a.contingency("cnm", "leiden")
>>> a.central("cnm", community=3); a.neighbours("cnm", 3)
>>> a.plot_map().savefig("map.png")
>>> a.export("exports/")                          # GraphML, Parquet, JSON, CSV
"""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from graphret.analysis import central as _central
from graphret.analysis import compare as _compare
from graphret.analysis import labels as _labels
from graphret.analysis import plots as _plots
from graphret.analysis.partitions import (
    ArchivePartition,
    archive_graph,
    resolve_partitions,
)
from graphret.analysis.summary import community_stats, partition_summary
from graphret.errors import InputError
from graphret.store.read import label_text

__all__ = ["CommunityAnalysis", "analyse"]


def analyse(store, methods="all", cut: int | None = None, *, images=None) -> "CommunityAnalysis":
    """Open ``store`` (a path or an open Snapshot) for community analysis of ``methods``
    (``"all"``, ``"cnm"``, ``"leiden"`` or a list) plus, with ``cut``, the CNM dendrogram cut at
    that many communities.  ``images``: the ImageSet the store was built from, for montages
    (otherwise the source is re-opened)."""
    if isinstance(store, (str, Path)):
        from graphret.store import open_store

        store = open_store(store)
    return CommunityAnalysis(store, methods=methods, cut=cut, images=images)


class CommunityAnalysis:
    """Communities of one store (state: the archive graph, the partitions, cached tables)."""

    def __init__(self, store, methods="all", cut: int | None = None, *, images=None) -> None:
        self.store = store
        self.archive = archive_graph(store)
        self.partitions: dict[str, ArchivePartition] = resolve_partitions(store, methods, cut, rows=self.archive.rows)
        self.images = images
        self._stats: dict[str, pd.DataFrame] = {}
        self._C: dict[str, Any] = {}

    # -- basics --------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Names of the partitions analysed (``cnm``, ``leiden``, ``cnm_cut<N>``)."""
        return list(self.partitions)

    def partition(self, name: str | None = None) -> ArchivePartition:
        """One partition by name (default: the first)."""
        if name is None:
            return next(iter(self.partitions.values()))
        if name not in self.partitions:
            raise InputError(f"no partition {name!r} in this analysis; choose one of {', '.join(self.partitions)}")
        return self.partitions[name]

    def membership(self, name: str | None = None) -> np.ndarray:
        return self.partition(name).membership

    @property
    def rows(self) -> np.ndarray:
        """Item rows of the archive positions."""
        return self.archive.rows

    @cached_property
    def ids(self) -> np.ndarray:
        return self.store.ids[self.archive.rows]

    @cached_property
    def has_labels(self) -> bool:
        return self.store.task in ("multiclass", "multilabel") and self.store.labels is not None

    @cached_property
    def label_data(self) -> _labels.LabelData:
        """The archive's labels (InputError for an unlabelled store)."""
        return _labels.label_data(self.store, self.archive.rows)

    # -- summary -------------------------------------------------------------------------
    def communities(self, name: str | None = None, *, with_labels: bool | None = None) -> pd.DataFrame:
        """One row per community of ``name`` (largest first): size, internal weight, volume, cut,
        conductance, mean similarity, density, and (for labelled stores) dominant label, purity,
        entropy and the top label shares."""
        part = self.partition(name)
        if part.name not in self._stats:
            self._stats[part.name] = community_stats(self.archive.graph, part.membership)
        table = self._stats[part.name].copy()
        if with_labels is None:
            with_labels = self.has_labels
        if with_labels:
            comp = self.composition(part.name)[["community", "dominant", "purity", "entropy", "top_labels"]]
            table = table.merge(comp, on="community", how="left")
        return table

    def summary(self) -> pd.DataFrame:
        """One row per partition: communities, size distribution, Newman and Haq modularity,
        coverage, conductance (and, for labelled stores, purity / NMI / ARI against the labels)."""
        rows = []
        for name, part in self.partitions.items():
            stats = self.communities(name, with_labels=False)
            row = {"partition": name, **partition_summary(self.archive.graph, part.membership,
                                                          resolution=part.resolution, stats=stats)}
            if self.has_labels:
                first = self.label_agreement(name).iloc[0]
                row.update(label_purity=float(first["purity"]), label_nmi=float(first["nmi"]), label_ari=float(first["ari"]))
            rows.append(row)
        return pd.DataFrame(rows)

    # -- labels --------------------------------------------------------------------------
    def composition(self, name: str | None = None) -> pd.DataFrame:
        """Each community's label composition and purity (see :func:`labels.label_composition`)."""
        return _labels.label_composition(self.membership(name), self.label_data)

    def label_agreement(self, name: str | None = None) -> pd.DataFrame:
        """NMI / ARI / purity of the partition against the labels (each label too, multi-label)."""
        return _labels.label_agreement(self.membership(name), self.label_data)

    def most_mixed(self, name: str | None = None, *, top: int = 10, min_size: int = 5) -> pd.DataFrame:
        """The least pure communities with at least ``min_size`` members."""
        return _labels.most_mixed(self.composition(name), top=top, min_size=min_size)

    # -- comparison ----------------------------------------------------------------------
    def _pair(self, a: str | None, b: str | None) -> tuple[str, str]:
        names = self.names
        if a is None or b is None:
            if len(names) < 2:
                raise InputError("comparing needs two partitions; use {methods=all} (CNM and Leiden) or add {cut=N}", param="methods")
            a, b = (a or names[0]), (b or (names[1] if names[1] != a else names[0]))
        return self.partition(a).name, self.partition(b).name

    def compare(self, a: str | None = None, b: str | None = None) -> dict:
        """Agreement of two partitions (default: the first two): NMI, ARI, purity both ways."""
        a, b = self._pair(a, b)
        return _compare.compare_partitions(self.membership(a), self.membership(b), names=(a, b))

    def comparisons(self) -> pd.DataFrame:
        """Agreement of every pair of partitions, one row per pair."""
        names = self.names
        rows = [self.compare(x, y) for i, x in enumerate(names) for y in names[i + 1:]]
        return pd.DataFrame(rows, columns=["a", "b", "communities_a", "communities_b", "nmi", "ari", "purity", "inverse_purity"])

    def contingency(self, a: str | None = None, b: str | None = None, *, top: int = 10) -> pd.DataFrame:
        """Items shared by the ``top`` largest communities of ``a`` (rows) and ``b`` (columns)."""
        a, b = self._pair(a, b)
        return _compare.contingency_table(self.membership(a), self.membership(b), top=top, names=(a, b))

    # -- one community -------------------------------------------------------------------
    def _items(self, frame: pd.DataFrame) -> pd.DataFrame:
        nodes = frame["node"].to_numpy()
        rows = self.archive.rows[nodes]
        out = frame.drop(columns=["node"]).copy()
        out.insert(2, "row", rows)
        out.insert(3, "id", self.store.ids[rows])
        paths = self.store.paths
        out.insert(4, "path", [paths[r] for r in rows])
        if self.has_labels:
            out.insert(5, "label", [label_text(self.store.label_of(int(r)), empty=None) for r in rows])
        return out

    def central(self, name: str | None = None, community: int | None = None, *, top: int = 10) -> pd.DataFrame:
        """The ``top`` most central images (by weighted degree inside their community) of every
        community, or of ``community``: community, rank, row, id, path, label, internal degree."""
        frame = _central.central_items(self.archive.graph, self.membership(name), community=community, top=top)
        return self._items(frame)

    def community_matrix(self, name: str | None = None):
        """K x K sparse inter-community weights (diagonal: inside weight)."""
        part = self.partition(name)
        if part.name not in self._C:
            self._C[part.name] = _central.community_graph(self.archive.graph, part.membership)
        return self._C[part.name]

    def community_edges(self, name: str | None = None) -> pd.DataFrame:
        """The community graph as an edge table (source, target, weight), heaviest first."""
        return _central.community_edges(self.archive.graph, self.membership(name))

    def neighbours(self, name: str | None = None, community: int = 0, *, top: int = 5) -> pd.DataFrame:
        """``community``'s nearest communities by inter-community weight (weight, share of its cut)."""
        frame = _central.neighbouring_communities(self.archive.graph, self.membership(name), community, top=top,
                                                   C=self.community_matrix(name))
        if self.has_labels:
            comp = self.composition(name).set_index("community")
            frame["neighbour_dominant"] = comp.loc[frame["neighbour"], "dominant"].to_numpy()
        return frame

    def community_report(self, name: str | None = None, community: int = 0, *, top: int = 10) -> dict:
        """Everything about one community: its row of :meth:`communities`, central images and
        neighbouring communities."""
        part = self.partition(name)
        table = self.communities(part.name)
        row = table[table["community"] == int(community)]
        if row.empty:
            ids = table["community"]
            raise InputError(f"no community {community} in {part.name}; ids run {ids.min()}..{ids.max()}")
        return {"partition": part.name, "community": int(community), "stats": row.iloc[0].to_dict(),
                "central": self.central(part.name, community, top=top),
                "neighbours": self.neighbours(part.name, community, top=min(top, 10))}

    # -- pictures ------------------------------------------------------------------------
    def plot_sizes(self) -> Figure:
        """Community size histogram of every partition."""
        return _plots.size_histogram({name: p.membership for name, p in self.partitions.items()})

    def embedding(self, method: str = "pca", *, sample: int | None = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(archive positions, (m, 2) coordinates) of a seeded sample of at most ``sample`` codes."""
        codes = self.store.codes()[self.archive.rows]
        positions = np.arange(codes.shape[0])
        if sample is not None and codes.shape[0] > sample:
            positions = np.sort(np.random.default_rng(seed).choice(codes.shape[0], size=sample, replace=False))
        return positions, _plots.embed_codes(codes[positions], method, seed=seed)

    def plot_map(self, embeddings: list[str] | str | None = None, *, sample: int | None = 5000, seed: int = 0,
                 max_groups: int = 15) -> Figure:
        """2-D maps of the codes (rows: PCA and t-SNE / UMAP where installed, or ``embeddings``),
        coloured by each partition's communities and, beside them, by label."""
        if embeddings is None:
            embeddings = _plots.available_embeddings()[:2]
        elif isinstance(embeddings, str):
            embeddings = [embeddings]
        maps = {}
        positions = None
        for method in embeddings:
            positions, maps[method] = self.embedding(method, sample=sample, seed=seed)
        colourings: dict[str, tuple[np.ndarray, list[str] | None]] = {}
        for name, part in self.partitions.items():
            colourings[f"{name} community"] = (part.membership[positions], None)
        if self.has_labels:
            data = self.label_data
            colourings["label"] = (data.key[positions], data.key_names)
        n = len(positions)
        title = f"{self.store.path.name}: codes of {n} archive images" + (
            f" (seeded sample of {self.archive.n})" if n < self.archive.n else "")
        return _plots.code_map(maps, colourings, max_groups=max_groups, title=title)

    def _dominant(self, name: str) -> dict[int, str]:
        if not self.has_labels:
            return {}
        comp = self.composition(name)
        return dict(zip(comp["community"].tolist(), comp["dominant"].tolist()))

    def plot_community_graph(self, name: str | None = None, *, top: int = 40, seed: int = 0) -> Figure:
        """The community graph of ``name``: the ``top`` largest communities as nodes sized by
        members, edges by inter-community weight, coloured by dominant label."""
        part = self.partition(name)
        sizes = part.sizes()
        shown = min(top, int((sizes > 0).sum()))
        title = (f"{part.name}: community graph of the {shown} largest of {part.n_communities} communities "
                 "(area = members, width = inter-community weight)")
        return _plots.community_graph_figure(self.community_matrix(part.name), sizes, node_labels=self._dominant(part.name),
                                             top=top, seed=seed, title=title)

    def source_images(self):
        """The ImageSet the montages read pixels from: the one given to :func:`analyse`, or the
        store's source re-opened once (one InputError when it is gone)."""
        if self.images is None:
            from graphret.store.pixels import open_store_source

            self.images = open_store_source(self.store)
        return self.images

    def plot_montage(self, name: str | None = None, communities: list[int] | int | None = None, *,
                     per_community: int = 8, top: int = 12) -> Figure:
        """Exemplars (the most central images) of ``communities`` (default: the ``top``
        largest), one row per community.  Reads pixels from the store's source."""
        from graphret.store.pixels import item_images

        part = self.partition(name)
        source = self.source_images()
        if communities is None:
            sizes = part.sizes()
            present = np.flatnonzero(sizes > 0)
            communities = present[np.lexsort((present, -sizes[present]))][:top].tolist()
        elif isinstance(communities, (int, np.integer)):
            communities = [int(communities)]
        frames = [self.central(part.name, int(c), top=per_community) for c in communities]
        rows_flat = np.concatenate([f["row"].to_numpy() for f in frames])
        pixels = item_images(self.store, rows_flat, images=source)
        grid, titles, k = [], [], 0
        sizes = part.sizes()
        dominant = self._dominant(part.name)
        purity = {}
        if self.has_labels:
            comp = self.composition(part.name)
            purity = dict(zip(comp["community"].tolist(), comp["purity"].tolist()))
        for c, f in zip(communities, frames):
            grid.append(pixels[k:k + len(f)])
            k += len(f)
            text = f"{part.name} {c}\n{sizes[c]} images"
            if c in dominant:
                text += f"\n{dominant[c]} {purity.get(c, float('nan')):.0%}"
            titles.append(text)
        return _plots.montage(grid, row_titles=titles,
                              title=f"{self.store.path.name}: most central images of {part.name} communities (by weighted degree inside)")

    # -- exports -------------------------------------------------------------------------
    def node_table(self):
        from graphret.analysis.export import node_table

        internal = {name: _central.internal_degree(self.archive.graph, p.membership) for name, p in self.partitions.items()}
        return node_table(self.store, self.archive.rows, self.partitions, degree=self.archive.degree, internal=internal)

    def edge_table(self):
        from graphret.analysis.export import edge_table

        return edge_table(self.store, self.archive.rows, self.archive.graph, self.partitions)

    def report(self, *, summary: bool = True, labels: bool = True, compare: bool = True, top: int = 10) -> dict:
        """A JSON-able summary: store, machine and date, per-partition summary, label agreement
        and most mixed communities, comparisons."""
        out: dict[str, Any] = {
            "store": str(self.store.path),
            "source": self.store.manifest.get("source", {}).get("spec"),
            "encoder": self.store.manifest.get("encoder", {}).get("description"),
            "task": self.store.task,
            "archive_items": self.archive.n,
            "archive_edges": int(self.archive.graph.nnz // 2),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version()},
        }
        if summary:
            out["summary"] = self.summary()
        if labels and self.has_labels:
            out["labels"] = {name: {"agreement": self.label_agreement(name), "most_mixed": self.most_mixed(name, top=top)}
                             for name in self.names}
        if compare and len(self.names) > 1:
            out["comparisons"] = self.comparisons()
            a, b = self._pair(None, None)
            out["contingency"] = {"a": a, "b": b, "table": self.contingency(a, b, top=top).reset_index(names="row")}
        return out

    def export(self, folder: str | Path, *, graphml: bool = True, parquet: bool = True, tables: bool = True,
               top: int = 10) -> list[Path]:
        """Write into ``folder``: ``graph.graphml``, ``nodes.parquet``, ``edges.parquet``,
        ``summary.json``, ``summary.csv``, ``communities.csv`` (every community of every
        partition) and ``community_edges.csv``.  Returns the paths written."""
        from graphret.analysis import export as ex

        folder = ex.ensure_folder(folder)
        written: list[Path] = []
        nodes = self.node_table()
        edges = self.edge_table()
        if parquet:
            written.append(ex.write_parquet(folder / "nodes.parquet", nodes))
            written.append(ex.write_parquet(folder / "edges.parquet", edges))
        if graphml:
            written.append(ex.write_graphml(folder / "graph.graphml", nodes, edges))
        if tables:
            written.append(ex.write_json(folder / "summary.json", self.report(top=top)))
            written.append(ex.write_csv(folder / "summary.csv", self.summary()))
            per = pd.concat([self.communities(n).assign(partition=n) for n in self.names], ignore_index=True)
            per = per[["partition"] + [c for c in per.columns if c != "partition"]]
            written.append(ex.write_csv(folder / "communities.csv", per))
            ce = pd.concat([self.community_edges(n).assign(partition=n) for n in self.names], ignore_index=True)
            written.append(ex.write_csv(folder / "community_edges.csv", ce[["partition", "source", "target", "weight"]]))
        return written

    def save_plots(self, folder: str | Path, *, embeddings: list[str] | None = None, sample: int | None = 5000,
                   montage: bool = True, communities: list[int] | None = None, top: int = 40, dpi: int = 120) -> list[Path]:
        """Write the pictures as PNG into ``folder``: ``sizes.png``, ``map.png``,
        ``community-graph-<name>.png`` and ``montage-<name>.png`` per partition."""
        from graphret.analysis.export import ensure_folder, writable_target

        folder = ensure_folder(folder)
        written: list[Path] = []
        if montage:
            self.source_images()  # fail before drawing anything when the source is gone

        def save(fig: Figure, filename: str) -> None:
            path = folder / filename
            with writable_target(path) as tmp:
                fig.savefig(tmp, format="png", dpi=dpi)
            written.append(path)

        save(self.plot_sizes(), "sizes.png")
        save(self.plot_map(embeddings, sample=sample), "map.png")
        for name in self.names:
            save(self.plot_community_graph(name, top=top), f"community-graph-{name}.png")
            if montage:
                save(self.plot_montage(name, communities), f"montage-{name}.png")
        return written
