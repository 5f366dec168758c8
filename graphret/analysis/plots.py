"""Pictures of a partition, as matplotlib Figures (no pyplot state, no display needed: figures
are built on the Agg canvas and shown by notebooks or saved with ``fig.savefig``).

* :func:`size_histogram` -- community sizes (log bins) and the share of the archive held by the
  largest communities;
* :func:`embed_codes` / :func:`code_map` -- 2-D maps of the codes (PCA always; t-SNE with
  scikit-learn and UMAP with umap-learn where installed, as Chung & Weng show their codes),
  one panel per colouring (each partition's communities, the labels);
* :func:`community_graph_figure` -- communities as nodes sized by members, edges by
  inter-community weight, nodes coloured by their dominant label;
* :func:`montage` -- a grid of exemplar images, one row per community.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import scipy.sparse as sp
from matplotlib.figure import Figure

from graphret.errors import InputError

__all__ = [
    "available_embeddings",
    "embed_codes",
    "size_histogram",
    "code_map",
    "community_graph_figure",
    "montage",
]

OTHER_COLOUR = (0.82, 0.82, 0.82, 1.0)


def _palette(n: int) -> list:
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba

    # saturated qualitative colours only (tab20's pale halves are hard to see on white)
    base = list(colormaps["tab10"].colors) + list(colormaps["Dark2"].colors) + list(colormaps["Set1"].colors)
    return [to_rgba(base[i % len(base)]) for i in range(n)]


def size_histogram(partitions: dict[str, np.ndarray]) -> Figure:
    """Left: histogram of community sizes (log-spaced bins) per partition; right: the share of
    the archive covered by the r largest communities against r."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    sizes = {name: np.bincount(np.asarray(m, np.int64)) for name, m in partitions.items()}
    sizes = {name: s[s > 0] for name, s in sizes.items()}
    top = max(int(s.max()) for s in sizes.values())
    bins = np.unique(np.round(np.logspace(0, np.log10(top + 1), 30)).astype(int))
    if bins.size < 2:
        bins = np.array([1, 2])
    colours = _palette(len(sizes))
    for (name, s), colour in zip(sizes.items(), colours):
        ax.hist(s, bins=bins, histtype="step", linewidth=2, color=colour, label=f"{name} ({s.size} communities)")
        ranked = np.sort(s)[::-1]
        ax2.plot(np.arange(1, ranked.size + 1), np.cumsum(ranked) / ranked.sum(), marker=".", color=colour, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("community size (images, log scale)")
    ax.set_ylabel("number of communities")
    ax.set_title("Community size distribution")
    ax.legend()
    ax2.set_xscale("log")
    ax2.set_xlabel("rank of community by size (log scale)")
    ax2.set_ylabel("share of the archive in the largest communities")
    ax2.set_ylim(0, 1.02)
    ax2.grid(alpha=0.3)
    ax2.set_title("Cumulative share of archive items")
    ax2.legend()
    return fig


def available_embeddings() -> list[str]:
    """The 2-D embeddings this installation offers: ``pca`` always, ``tsne`` with
    scikit-learn, ``umap`` with umap-learn."""
    out = ["pca"]
    if importlib.util.find_spec("sklearn") is not None:
        out.append("tsne")
    if importlib.util.find_spec("umap") is not None:
        out.append("umap")
    return out


def _pca(codes: np.ndarray, dims: int) -> np.ndarray:
    x = np.asarray(codes, dtype=np.float64)
    x = x - x.mean(axis=0)
    # principal axes from the d x d covariance (cheap for n >> d), largest variance first
    values, vectors = np.linalg.eigh(x.T @ x)
    axes = vectors[:, np.argsort(values)[::-1][:dims]]
    proj = x @ axes
    # fix the sign of each axis so pictures are stable across runs
    signs = np.sign(proj[np.argmax(np.abs(proj), axis=0), np.arange(proj.shape[1])])
    return proj * np.where(signs == 0, 1.0, signs)


def embed_codes(codes: np.ndarray, method: str = "pca", *, seed: int = 0) -> np.ndarray:
    """(n, 2) coordinates of ``codes``: ``pca``; ``tsne`` (scikit-learn, on the first 50
    principal components, PCA initialisation); ``umap`` (umap-learn, cosine metric)."""
    codes = np.asarray(codes, dtype=np.float32)
    if codes.ndim != 2 or codes.shape[0] < 3:
        raise InputError("a 2-D map needs at least 3 codes")
    if method == "pca":
        out = _pca(codes, 2)
        if out.shape[1] < 2:
            out = np.column_stack([out, np.zeros(len(out))])
        return out
    if method not in available_embeddings():
        raise InputError(f"the {method!r} map is not available here; install {'scikit-learn' if method == 'tsne' else 'umap-learn'} or use one of {', '.join(available_embeddings())}")
    if method == "tsne":
        from sklearn.manifold import TSNE

        x = _pca(codes, min(50, codes.shape[1]))
        perplexity = float(min(30.0, max(2.0, (codes.shape[0] - 1) / 3.0)))
        return TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(x)
    import umap  # type: ignore

    return umap.UMAP(n_components=2, metric="cosine", random_state=seed).fit_transform(codes)


def _colour_values(values: np.ndarray, names: list[str] | None, max_groups: int):
    """Colours for categorical ``values``: the ``max_groups`` largest groups get their own colour,
    the rest grey.  Returns (colour per point, legend entries [(text, colour)])."""
    values = np.asarray(values)
    groups, counts = np.unique(values, return_counts=True)
    order = np.lexsort((groups, -counts))
    keep = groups[order[:max_groups]]
    palette = _palette(len(keep))
    lookup = {g: palette[i] for i, g in enumerate(keep)}
    colours = np.array([lookup.get(v, OTHER_COLOUR) for v in values.tolist()], dtype=float).reshape(len(values), -1)
    legend = [((names[int(g)] if names is not None and 0 <= int(g) < len(names) else str(g)), lookup[g]) for g in keep]
    if len(groups) > len(keep):
        legend.append((f"{len(groups) - len(keep)} others", OTHER_COLOUR))
    return colours, legend


def code_map(maps: dict[str, np.ndarray], colourings: dict[str, tuple[np.ndarray, list[str] | None]], *,
             max_groups: int = 15, title: str | None = None, point_size: float | None = None) -> Figure:
    """A grid of scatter plots: one row per 2-D map in ``maps`` (name -> (n, 2) coordinates),
    one column per colouring in ``colourings`` (name -> (categorical values, value names or
    None)); the ``max_groups`` largest groups of each colouring get a colour, the rest grey."""
    if not maps or not colourings:
        raise InputError("code_map needs at least one map and one colouring")
    nrow, ncol = len(maps), len(colourings)
    fig = Figure(figsize=(4.8 * ncol + 0.5, 4.4 * nrow + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrow, ncol, squeeze=False))
    n = len(next(iter(maps.values())))
    s = point_size if point_size is not None else float(np.clip(12000.0 / max(n, 1), 1.5, 15.0))
    prepared = {name: _colour_values(values, names, max_groups) for name, (values, names) in colourings.items()}
    for i, (map_name, xy) in enumerate(maps.items()):
        for j, (col_name, (colours, legend)) in enumerate(prepared.items()):
            ax = axes[i, j]
            grey = np.all(colours == np.asarray(OTHER_COLOUR), axis=1)
            ax.scatter(xy[grey, 0], xy[grey, 1], c=colours[grey], s=s, linewidths=0, rasterized=True)
            ax.scatter(xy[~grey, 0], xy[~grey, 1], c=colours[~grey], s=s, linewidths=0, rasterized=True)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{map_name.upper() if map_name != 'tsne' else 't-SNE'}: coloured by {col_name}", fontsize=10)
            if i == 0:
                handles = [ax.scatter([], [], color=c, s=30, label=text) for text, c in legend]
                ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.02),
                          ncol=3 if len(legend) > 8 else 2, frameon=False, markerscale=1.0)
    if title:
        fig.suptitle(title)
    return fig


def community_graph_figure(C: sp.csr_matrix, sizes: np.ndarray, *, communities: np.ndarray | None = None,
                           node_labels: dict[int, str] | None = None, title: str | None = None,
                           top: int = 40, seed: int = 0) -> Figure:
    """The community graph: the ``top`` largest communities (or ``communities``) as nodes with
    area proportional to their members, edges with width proportional to the inter-community
    weight (off-diagonal of ``C``), nodes coloured by ``node_labels`` (e.g. dominant class)."""
    import networkx as nx

    sizes = np.asarray(sizes)
    if communities is None:
        present = np.flatnonzero(sizes > 0)
        communities = present[np.lexsort((present, -sizes[present]))][:top]
    communities = [int(c) for c in communities]
    sub = C[communities][:, communities].tocoo()
    G = nx.Graph()
    for c in communities:
        G.add_node(c)
    for i, j, w in zip(sub.row, sub.col, sub.data):
        if i < j and w > 0:
            G.add_edge(communities[i], communities[j], weight=float(w))
    weights = np.array([d["weight"] for _, _, d in G.edges(data=True)]) if G.number_of_edges() else np.zeros(0)
    # lay out on damped weights (sqrt of the share of the heaviest edge) so that the heavy
    # edges between big communities do not pull them on top of each other
    H = nx.Graph()
    H.add_nodes_from(G.nodes)
    if weights.size:
        H.add_weighted_edges_from((u, v, float(np.sqrt(d["weight"] / weights.max()))) for u, v, d in G.edges(data=True))
    pos = nx.spring_layout(H, weight="weight", seed=seed, k=2.5 / np.sqrt(max(len(communities), 1)), iterations=300)
    fig = Figure(figsize=(10, 8.5), layout="constrained")
    ax = fig.subplots()
    if weights.size:
        widths = 0.3 + 6.0 * np.sqrt(weights / weights.max())
        for (u, v), width in zip(G.edges(), widths):
            ax.plot([pos[u][0], pos[v][0]], [pos[u][1], pos[v][1]], color="0.55", linewidth=width, alpha=0.6, zorder=1)
    labels_of = node_labels or {}
    kinds = sorted({labels_of.get(c, "") for c in communities})
    palette = dict(zip(kinds, _palette(len(kinds))))
    area = 2200.0 * sizes[communities] / max(int(sizes[communities].max()), 1) + 20.0
    xy = np.array([pos[c] for c in communities])
    ax.scatter(xy[:, 0], xy[:, 1], s=area, c=[palette[labels_of.get(c, "")] for c in communities],
               edgecolors="black", linewidths=0.6, zorder=2)
    for c, (x, y), a in zip(communities, xy, area):
        if a >= 300:  # inside a big node, beside a small one
            ax.annotate(str(c), (x, y), ha="center", va="center", fontsize=8, zorder=3)
        else:
            ax.annotate(str(c), (x, y), xytext=(0, 4 + np.sqrt(a) / 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7, zorder=3)
    if node_labels:
        handles = [ax.scatter([], [], color=palette[k], s=60, label=k or "(none)") for k in kinds]
        ax.legend(handles=handles, title="dominant label", fontsize=8, loc="best")
    ax.margins(0.08)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"Community graph: {len(communities)} largest communities (area = members, width = inter-community weight)",
                 fontsize=10)
    return fig


def montage(images: list[list[np.ndarray]], *, row_titles: list[str] | None = None, title: str | None = None,
            tile: float = 1.1) -> Figure:
    """A grid of images: ``images[r]`` is row r (e.g. one community's exemplars, most central
    first); grey images are drawn in grey."""
    if not images or not any(images):
        raise InputError("the montage has no images")
    nrow = len(images)
    ncol = max(len(r) for r in images)
    label_width = 1.5 if row_titles else 0.0
    fig = Figure(figsize=(tile * ncol + label_width, tile * nrow + (0.5 if title else 0.1)))
    grid = fig.add_gridspec(nrow, ncol, left=label_width / (tile * ncol + label_width), right=0.99,
                            top=1 - (0.45 if title else 0.05) / (tile * nrow + 0.5), bottom=0.01, wspace=0.04, hspace=0.08)
    for r, row in enumerate(images):
        for c in range(ncol):
            ax = fig.add_subplot(grid[r, c])
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(row):
                img = np.asarray(row[c])
                if img.ndim == 3 and img.shape[2] == 1:
                    img = img[:, :, 0]
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            if c == 0 and row_titles:
                ax.set_ylabel(row_titles[r], rotation=0, ha="right", va="center", fontsize=8, labelpad=6)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
