"""Incremental add: encode new images, append them to a store, link them into the graph and
assign each to a community, without a rebuild.

* **Encoding**: with the store's own encoder (``store.encoder()``), every code space.
* **Archive rule**: added items keep the split their source gives them (its own splits, a
  seeded 70/30 split, or "all" with ``split=False``) and are marked ``added = True`` in a new
  boolean item column; they always join the default archive whatever their split
  (:func:`graphret.query.search.archive_rows`), so queries find them at once.  An explicit
  ``--archive SPLITS`` means exactly those splits.
* **Graph**: each new item gets edges to its ``k`` most similar items among the archive and the
  other new items (exact, cosine > 0), symmetrised by union like the build (a pair found from
  both sides is one edge).
* **Communities**: for every stored method, new items are assigned one by one to the community
  of largest quality gain -- CNM's merge gain ``term(c + i) - term(c) - term({i})`` with the
  store's quality term (:mod:`graphret.communities.quality`), in the graph with the new edges
  (the same gain region mode uses to pick a community).  An item whose best gain is not
  positive becomes a community of its own; an item with no edge at all joins the community of
  the nearest centroid.
* **Class labels**: mapped into the store's classes by name; unknown names become -1 (no label)
  and metadata columns the store does not have are dropped (named in the summary).
* **Atomicity**: the whole store is written into a temporary folder beside it and swapped in
  with one rename (:func:`graphret.store.write.write_store_folder`), manifest included, so a
  failure at any point leaves the old store as it was.  The manifest counts the items that
  arrived since the last full clustering in ``counts.added_since_clustering`` and lists every
  add under ``added``; rebuild with ``graphret build-graph`` when that count grows large
  (the communities then no longer reflect a full clustering).
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from graphret.errors import InputError
from graphret.store import schema
from graphret.store.read import GraphStore, open_store
from graphret.store.write import edges_table, file_entries, fixed_size_list, write_arrow, write_manifest, write_store_folder

ADDED_COLUMN = "added"


def _new_items_table(store: GraphStore, images, encoded, n_old: int) -> tuple[pa.Table, list[str]]:
    """The new items in the store's item schema (plus ``added``), and dropped metadata names."""
    n = len(images)
    old_schema = store.items.schema
    names = store.class_names
    dropped = sorted(set(images.metadata) - set(old_schema.names))
    columns: dict[str, pa.Array] = {}
    label = np.full(n, -1, np.int32)
    label_name: list[str | None] = [None] * n
    labels_ml = None
    if store.task == "multiclass" and images.task == "multiclass" and images.labels is not None:
        for i, c in enumerate(np.asarray(images.labels)):
            name = images.class_names[c] if c >= 0 else None
            label_name[i] = name
            if name in names:
                label[i] = names.index(name)
    elif store.task == "multilabel":
        labels_ml = np.full((n, len(names)), -1, np.int8)
        if images.task == "multilabel" and images.labels is not None:
            for j, name in enumerate(images.class_names):
                if name in names:
                    labels_ml[:, names.index(name)] = np.asarray(images.labels)[:, j]
            label_name = ["|".join(images.label_names(i) or []) for i in range(n)]
    elif images.labels is not None:
        label_name = [None if images.label_names(i) is None else str(images.label_names(i)) for i in range(n)]
    for field in old_schema:
        name = field.name
        if name == "id":
            columns[name] = pa.array(list(images.ids), pa.string())
        elif name == "path":
            columns[name] = pa.array(list(images.paths), pa.string())
        elif name == "split":
            columns[name] = pa.array([str(s) for s in images.splits], pa.string())
        elif name == "label":
            columns[name] = pa.array(label, pa.int32())
        elif name == "label_name":
            columns[name] = pa.array(label_name, pa.string())
        elif name == "labels" and labels_ml is not None:
            columns[name] = fixed_size_list(labels_ml, pa.int8())
        elif schema.is_code_field(field):
            space = "default" if name == schema.CODE_COLUMN else name[len(schema.CODE_COLUMN) + 1 :]
            if space not in encoded.spaces:
                raise InputError(f"the store's encoder no longer gives code space {space!r}; rebuild the store")
            codes = np.asarray(encoded.spaces[space], np.float32)
            if codes.shape[1] != field.type.list_size:
                raise InputError(f"new codes of space {space!r} have dimension {codes.shape[1]}, the store's {field.type.list_size}; rebuild the store")
            columns[name] = fixed_size_list(codes, pa.float32())
        elif name == "predicted" and encoded.predicted is not None:
            columns[name] = pa.array(np.asarray(encoded.predicted, np.int32), pa.int32())
        elif name == "probabilities" and encoded.probabilities is not None and pa.types.is_fixed_size_list(field.type):
            columns[name] = fixed_size_list(np.asarray(encoded.probabilities, np.float32), pa.float32())
        elif name == ADDED_COLUMN:
            columns[name] = pa.array(np.ones(n, bool), pa.bool_())
        elif name in images.metadata:
            try:
                columns[name] = pa.array(list(images.metadata[name])).cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise InputError(f"metadata column {name!r} of the new images does not fit the store's type {field.type}") from None
        else:
            if not field.nullable:
                raise InputError(f"the new images lack the store's required column {name!r}")
            columns[name] = pa.nulls(n, field.type)
    if ADDED_COLUMN not in old_schema.names:
        columns[ADDED_COLUMN] = pa.array(np.ones(n, bool), pa.bool_())
    return pa.table(columns), dropped


def _link(archive_codes: np.ndarray, archive_rows: np.ndarray, new_codes: np.ndarray, n_old: int, k: int):
    """Undirected new edges (src < dst store rows, weight) from each new item to its k most
    similar archive or other new items."""
    from graphret.graph.knn import exact_search

    m = len(new_codes)
    pool = np.vstack([archive_codes, new_codes]).astype(np.float32, copy=False)
    pool_rows = np.concatenate([archive_rows, n_old + np.arange(m)])
    kk = min(k, len(pool) - 1)
    if kk < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    found, sims = exact_search(pool, new_codes, kk, exclude=len(archive_codes) + np.arange(m))
    src = np.repeat(n_old + np.arange(m), kk)
    dst = pool_rows[found.ravel()]
    w = sims.ravel()
    keep = w > 0
    a, b, w = np.minimum(src, dst)[keep], np.maximum(src, dst)[keep], w[keep]
    key = a * (n_old + m) + b
    order = np.lexsort((-w, key))
    key, a, b, w = key[order], a[order], b[order], w[order]
    first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
    return a[first], b[first], w[first].astype(np.float32)


def assign_communities(graph_old, membership: np.ndarray, new_src: np.ndarray, new_dst: np.ndarray, new_w: np.ndarray,
                       n_old: int, m: int, codes_new: np.ndarray, centroids: np.ndarray, *, quality: str,
                       resolution: float, w_max: float = 1.0) -> tuple[np.ndarray, int]:
    """Membership of the m new items (rows n_old..n_old+m-1) by largest quality gain (see the
    module docstring); returns (labels of the new items, number of new singleton communities)."""
    from graphret.communities.quality import quality_function

    term = quality_function(quality)
    g = float(resolution)
    n = n_old + m
    deg = np.zeros(n, np.float64)
    deg[:n_old] = np.asarray(graph_old.sum(axis=1), np.float64).ravel()
    np.add.at(deg, new_src, new_w)
    np.add.at(deg, new_dst, new_w)
    coo = graph_old.tocoo()
    W = float(coo.data.astype(np.float64).sum()) / 2.0 + float(np.asarray(new_w, np.float64).sum())
    member = np.full(n, -1, np.int64)
    member[:n_old] = membership
    C = int(membership.max()) + 1 if len(membership) and membership.max() >= 0 else 0
    inside = (member[coo.row] >= 0) & (member[coo.row] == member[coo.col])
    e = np.bincount(member[coo.row[inside]], weights=coo.data[inside].astype(np.float64), minlength=C) / 2.0
    clustered = member[:n_old] >= 0
    a = np.bincount(member[:n_old][clustered], weights=deg[:n_old][clustered], minlength=C)
    cnt = np.bincount(member[:n_old][clustered], minlength=C).astype(np.float64)
    e, a, cnt = list(e), list(a), list(cnt)
    # adjacency of the new items (both directions)
    ends = np.concatenate([new_src, new_dst])
    others = np.concatenate([new_dst, new_src])
    weights = np.concatenate([new_w, new_w]).astype(np.float64)
    mine = ends >= n_old
    ends, others, weights = ends[mine], others[mine], weights[mine]
    order = np.argsort(ends, kind="stable")
    ends, others, weights = ends[order], others[order], weights[order]
    starts = np.searchsorted(ends, n_old + np.arange(m + 1))
    singletons = 0
    for i in range(m):
        row = n_old + i
        nb, w = others[starts[i] : starts[i + 1]], weights[starts[i] : starts[i + 1]]
        comm = member[nb]
        ok = comm >= 0
        k_i = float(deg[row])
        best, best_gain = -1, 0.0
        if ok.any():
            totals: dict[int, float] = {}
            for c, wi in zip(comm[ok], w[ok]):
                totals[int(c)] = totals.get(int(c), 0.0) + float(wi)
            for c, w_ic in sorted(totals.items()):
                gain = term(e[c] + w_ic, a[c] + k_i, cnt[c] + 1.0, W, g, w_max) - term(e[c], a[c], cnt[c], W, g, w_max) - term(0.0, k_i, 1.0, W, g, w_max)
                if gain > best_gain:
                    best, best_gain = c, gain
            if best < 0:  # no positive gain: a community of its own
                best = len(e)
                e.append(0.0)
                a.append(0.0)
                cnt.append(0.0)
                singletons += 1
                w_ic = 0.0
            else:
                w_ic = totals[best]
        elif len(centroids):
            best = int(np.argmax(centroids @ codes_new[i]))
            w_ic = 0.0
        else:
            best = len(e)
            e.append(0.0)
            a.append(0.0)
            cnt.append(0.0)
            singletons += 1
            w_ic = 0.0
        member[row] = best
        e[best] += w_ic
        a[best] += k_i
        cnt[best] += 1.0
    return member[n_old:], singletons


def add_to_store(
    store_path: str | Path,
    source: Any,
    *,
    k: int | None = None,
    seed: int = 0,
    split: bool = True,
    on_corrupt: str = "skip",
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Append the images of ``source`` (a source spec for :func:`graphret.data.open_source`, or
    an :class:`~graphret.data.imageset.ImageSet`) to the store at ``store_path``; returns a
    summary.  See the module docstring for every rule."""
    from graphret.data import open_source
    from graphret.data.imageset import ImageSet
    from graphret.query.centroids import community_centroids
    from graphret.query.search import archive_rows, community_settings

    store = open_store(store_path)
    if isinstance(source, ImageSet):
        images = source
    else:
        images = open_source(source, seed=seed, split=split, on_corrupt=on_corrupt)
    m = len(images)
    if m == 0:
        raise InputError("the source has no images to add")
    clash = [i for i in images.ids if i in store.row_of_id]
    if clash:
        raise InputError(f"{len(clash)} of the new images have ids already in the store (e.g. {clash[0]!r}); add each image once")
    if len(set(images.ids)) != m:
        raise InputError("the new images' ids are not unique; give each image a distinct name")
    k = int(store.manifest.get("params", {}).get("k", 10) if k is None else k)
    if k < 1:
        raise InputError(f"k must be at least 1, got {k} (use e.g. --k 10)")
    log(f"encoding {m} images with the store's encoder")
    encoded = store.encoder().encode(images)
    n_old = len(store)
    new_items, dropped = _new_items_table(store, images, encoded, n_old)
    old_items = store.items
    if ADDED_COLUMN not in old_items.schema.names:
        old_items = old_items.append_column(pa.field(ADDED_COLUMN, pa.bool_()), pa.array(np.zeros(n_old, bool)))
    items = pa.concat_tables([old_items, new_items.select(old_items.schema.names).cast(old_items.schema)])

    rows = archive_rows(store)
    codes = np.asarray(store.codes("default"))
    new_codes = np.asarray(encoded.spaces["default"], np.float32)
    log(f"linking {m} new items to their {k} most similar archive items")
    src, dst, w = _link(codes[rows], rows, new_codes, n_old, k)
    old_edges = store.edges
    edges = edges_table(
        np.concatenate([old_edges.column("src").to_numpy(), src]),
        np.concatenate([old_edges.column("dst").to_numpy(), dst]),
        np.concatenate([old_edges.column("weight").to_numpy(), w]),
    )
    graph = store.graph()
    communities: dict[str, pa.Array] = {}
    info = dict(store.manifest.get("communities", {}))
    for method in store.community_methods:
        membership = store.membership(method)
        quality, resolution = community_settings(store, method)
        centroids = community_centroids(codes, membership) if membership.max() >= 0 else np.zeros((0, codes.shape[1]), np.float32)
        labels, singletons = assign_communities(
            graph, membership, src, dst, w, n_old, m, new_codes, centroids, quality=quality, resolution=resolution
        )
        full = np.concatenate([membership.astype(np.int32), labels.astype(np.int32)])
        communities[method] = pa.array(full, pa.int32())
        entry = dict(info.get(method, {}))
        entry["n_communities"] = int(full.max()) + 1
        entry["added_items"] = int(entry.get("added_items", 0)) + m
        entry["added_singletons"] = int(entry.get("added_singletons", 0)) + singletons
        info[method] = entry

    manifest = {key: value for key, value in store.manifest.items() if key not in ("format", "format_version", "files")}
    counts = dict(manifest.get("counts", {}))
    counts["items"] = n_old + m
    counts["archive"] = int(counts.get("archive", len(rows))) + m
    counts["edges"] = edges.num_rows
    by_split = dict(counts.get("by_split", {}))
    for s in images.splits.astype(str):
        by_split[s] = by_split.get(s, 0) + 1
    counts["by_split"] = by_split
    counts["added_since_clustering"] = int(counts.get("added_since_clustering", 0)) + m
    manifest["counts"] = counts
    manifest["communities"] = info
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = {
        "source": images.source if isinstance(source, ImageSet) else str(source),
        "items": m,
        "k": k,
        "seed": seed,
        "edges": int(len(src)),
        "when": now,
        "splits": {s: int(c) for s, c in zip(*np.unique(images.splits.astype(str), return_counts=True))},
        "dropped_metadata": dropped,
    }
    manifest["added"] = list(manifest.get("added", [])) + [record]
    manifest["updated"] = now
    old_folder = Path(store.path)

    def fill(folder: Path) -> None:
        write_arrow(folder / schema.ITEMS_FILE, items)
        write_arrow(folder / schema.EDGES_FILE, edges)
        write_arrow(folder / schema.COMMUNITIES_FILE, pa.table(communities) if communities else pa.table({}))
        names = [schema.ITEMS_FILE, schema.EDGES_FILE, schema.COMMUNITIES_FILE]
        for extra in (schema.DENDROGRAM_FILE, schema.ENCODER_FILE):
            if (old_folder / extra).is_file():
                shutil.copy2(old_folder / extra, folder / extra)
                names.append(extra)
        manifest["files"] = file_entries(folder, names)
        write_manifest(folder, manifest)

    log(f"writing {old_folder}")
    write_store_folder(old_folder, fill, overwrite=True)
    return {
        "added": m,
        "items": n_old + m,
        "edges_added": int(len(src)),
        "added_since_clustering": counts["added_since_clustering"],
        "communities": {method: info[method]["n_communities"] for method in communities},
        "dropped_metadata": dropped,
    }
