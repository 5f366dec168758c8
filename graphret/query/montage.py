"""Retrieval montages: each query beside its top results, with labels and scores, as a PNG.

One row per query (at most ``max_queries``), the query first, then its top ``max_results``
results (a composite query, :mod:`graphret.query.compose`, shows its pair -- A, whose normal
code it uses, and B, whose abnormal code it uses -- and A's normal-appearing reconstruction
first), the results titled with rank, label and cosine score; when the query's label is known a result
whose label matches gets a green frame and one that does not a red frame.

Stored items' pixels are found from their path: an image file that exists, an
``file.npz#key[i]`` reference, or else the store's source reopened from the manifest (the demo
set, an npz with file names, a folder) and looked up by id.  An item whose pixels cannot be
found is drawn as a grey tile saying so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphret.errors import InputError
from graphret.store.pixels import ItemImages
from graphret.store.read import label_text


def _show(ax, pixels: np.ndarray | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if pixels is None:
        ax.imshow(np.full((8, 8), 0.6), cmap="gray", vmin=0, vmax=1)
        ax.text(0.5, 0.5, "no pixels", ha="center", va="center", transform=ax.transAxes, fontsize=7)
        return
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2:
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255 if pixels.dtype == np.uint8 else None)
    else:
        ax.imshow(pixels)


def _frame(ax, colour: str, width: float = 2.5) -> None:
    for side in ax.spines.values():
        side.set_edgecolor(colour)
        side.set_linewidth(width)


def _composite_tiles(store, queries, axes) -> None:
    """A composite query's three lead tiles: A (normal part), B (abnormal part), and A's
    normal-appearing reconstruction."""
    from graphret.query.compose import normal_appearing, part_pixels

    parts = queries.composite
    for ax, name in zip(axes[:2], ("normal", "abnormal")):
        part = parts[name]
        _show(ax, part_pixels(store, part))
        who = part.ids[0] or Path(str(part.paths[0] or "?")).name
        ax.set_title(f"{name} of {who}\n{label_text(part.labels[0], empty='?')}", fontsize=7, fontweight="bold")
        _frame(ax, "blue")
    _show(axes[2], normal_appearing(store, parts["normal"]))
    axes[2].set_title("normal-appearing\nof the normal part", fontsize=7)
    _frame(axes[2], "purple")


def write_montage(result, path: str | Path, *, max_queries: int = 8, max_results: int = 10) -> Path:
    """Write the montage of a :class:`~graphret.query.result.SearchResult` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from graphret.atomic import atomic_path

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"a montage is written as a PNG; give a file name ending in .png, not {path.name}")
    store = result.store
    items = ItemImages(store)
    queries = result.queries
    nq = min(len(queries), max_queries)
    nr = min(result.k, max_results)
    lead = 3 if queries.composite is not None else 1
    fig, axes = plt.subplots(nq, nr + lead, figsize=(1.6 * (nr + lead), 1.9 * nq), squeeze=False)
    for i in range(nq):
        if queries.composite is not None:
            _composite_tiles(store, queries, axes[i, :lead])
        elif queries.rows[i] >= 0:
            pixels = items.image(int(queries.rows[i]))
        elif queries.images is not None:
            try:
                pixels = queries.images.image(i)
            except Exception:  # noqa: BLE001
                pixels = None
        else:
            pixels = None
        if queries.composite is None:
            ax = axes[i, 0]
            _show(ax, pixels)
            who = queries.ids[i] or Path(str(queries.paths[i] or "?")).name
            ax.set_title(f"query {who}\n{label_text(queries.labels[i], empty='?')}", fontsize=7, fontweight="bold")
            _frame(ax, "blue")
        for r in range(nr):
            row = int(result.rows[i, r])
            ax = axes[i, r + lead]
            _show(ax, items.image(row))
            label = store.label_of(row)
            ax.set_title(f"#{r + 1} {label_text(label, empty='?')}\n{float(result.scores[i, r]):.3f}", fontsize=7)
            if queries.composite is None and queries.labels[i] is not None and label is not None:
                same = label == queries.labels[i] if not isinstance(label, list) else bool(set(label) & set(queries.labels[i] or []))
                for side in ax.spines.values():
                    side.set_edgecolor("green" if same else "red")
                    side.set_linewidth(2)
    fig.suptitle(f"graphret {result.mode} search, top {nr} of K={result.k}", fontsize=9)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    except OSError as error:
        raise InputError(f"cannot write the montage {path}: {error.strerror}; choose a writable path") from None
    finally:
        plt.close(fig)
    return path
