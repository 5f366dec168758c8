"""Incremental add: encode new images, append them to a store, link them into the graph and
assign each to a community, without a rebuild.

* **Encoding**: with the store's own encoder, every code space.
* **Archive rule**: added items keep the split their source gives them (its own splits, a
  seeded 70/30 split, or "all" with ``split=False``) and are marked ``added = True``; they
  always join the default archive whatever their split (:meth:`Snapshot.archive_rows`), so
  queries find them at once.
* **Graph**: each new item gets edges to its ``k`` most similar items among the archive and the
  other new items (exact, cosine > 0), symmetrised by union like the build (a pair found from
  both sides is one edge); where the store has walk lists, each new item's list is its
  ``max_degree`` most similar, each of them links back to it (as HNSW inserts a node).
* **Communities**: for every stored method, new items are assigned one by one to the community
  of largest quality gain, :func:`~graphret.communities.kernels.join_gain` with the store's
  quality (the same gain region mode uses to pick a community), with the totals of the graph
  that holds the new edges.  An item whose best gain is not positive becomes a community of its
  own; an item with no edge at all joins the community of the nearest centroid.
* **Class labels**: mapped into the store's classes by name; unknown names become -1 (no label)
  and metadata columns the store does not have are dropped (named in the summary).
* **Versions**: an add commits a new version of the store that lists the base version's
  fragments and three new ones (the new items, their edges, their community assignments), so
  it costs what it adds; it runs under the store's writer lock on the newest version, so
  concurrent adds all land, and a failure at any point leaves the store at its last version.
  The manifest counts the items that arrived since the last full clustering in
  ``counts.added_since_clustering`` and lists every add under ``added``; rebuild when that
  count grows large.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from graphret.api.config import AddConfig
from graphret.communities.centroids import community_centroids
from graphret.communities.kernels import Quality
from graphret.communities.quality import community_totals
from graphret.data.imageset import ImageSet
from graphret.encoders import DEFAULT_SPACE
from graphret.encoders.base import check_nonzero_codes
from graphret.errors import InputError, StoreError
from graphret.graph.build import edges_arrow
from graphret.graph.knn import exact_search
from graphret.graph.topk import check_k
from graphret.store.items import new_items_table
from graphret.store.read import Snapshot
from graphret.store.schema import LEGACY_FORMAT_VERSION
from graphret.store.thumbnails import DEFAULT_THUMBNAIL_SIZE, thumbnails_table
from graphret.store.versions import read_manifest
from graphret.query.archive import prepared_tables
from graphret.store.write import Appended, append_version

__all__ = ["add_to_store", "assign_communities", "link_new_items", "nearest_of_new", "walk_links"]

Log = Callable[[str], None]


def nearest_of_new(archive_codes: np.ndarray, archive_rows: np.ndarray, new_codes: np.ndarray, n_old: int,
                   depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Each new item's ``depth`` most similar archive or other new items: (store rows (m, d),
    cosines (m, d)), ``d = min(depth, pool - 1)``."""
    m = len(new_codes)
    pool = np.vstack([archive_codes, new_codes]).astype(np.float32, copy=False)
    pool_rows = np.concatenate([archive_rows, n_old + np.arange(m)])
    kk = min(depth, len(pool) - 1)
    if kk < 1:
        return np.zeros((m, 0), np.int64), np.zeros((m, 0), np.float32)
    found, sims = exact_search(pool, new_codes, kk, exclude=len(archive_codes) + np.arange(m))
    return pool_rows[found], sims


def link_new_items(nearest: np.ndarray, sims: np.ndarray, n_old: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected new edges (src < dst store rows, weight) from each new item to its k most
    similar (``nearest`` of :func:`nearest_of_new`), symmetrised by union."""
    m = len(nearest)
    kk = min(k, nearest.shape[1])
    src = np.repeat(n_old + np.arange(m), kk)
    dst = nearest[:, :kk].ravel()
    w = sims[:, :kk].ravel()
    keep = w > 0
    a, b, w = np.minimum(src, dst)[keep], np.maximum(src, dst)[keep], w[keep]
    key = a * (n_old + m) + b
    order = np.lexsort((-w, key))
    key, a, b, w = key[order], a[order], b[order], w[order]
    first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
    return a[first], b[first], w[first].astype(np.float32)


def walk_links(nearest: np.ndarray, n_old: int, degree: int) -> pa.Table:
    """Walk-list edges for the new items: each one's ``degree`` nearest, and the link back from
    each of them (as HNSW inserts a node; the lists are pruned again at the next build)."""
    m = len(nearest)
    near = nearest[:, :degree]
    new = np.repeat(n_old + np.arange(m), near.shape[1])
    src = np.concatenate([new, near.ravel()])
    dst = np.concatenate([near.ravel(), new])
    return pa.table({"src": pa.array(src, pa.int64()), "dst": pa.array(dst, pa.int64())})


def _new_adjacency(new_src, new_dst, new_w, n_old: int, m: int):
    """Per new item i (row n_old + i): its neighbours and edge weights (both directions)."""
    ends = np.concatenate([new_src, new_dst])
    others = np.concatenate([new_dst, new_src])
    weights = np.concatenate([new_w, new_w]).astype(np.float64)
    mine = ends >= n_old
    ends, others, weights = ends[mine], others[mine], weights[mine]
    order = np.argsort(ends, kind="stable")
    ends, others, weights = ends[order], others[order], weights[order]
    starts = np.searchsorted(ends, n_old + np.arange(m + 1))
    return others, weights, starts


def assign_communities(graph_old, membership: np.ndarray, new_src: np.ndarray, new_dst: np.ndarray, new_w: np.ndarray,
                       n_old: int, m: int, codes_new: np.ndarray, centroids: np.ndarray, *,
                       quality: Quality) -> tuple[np.ndarray, int]:
    """Membership of the m new items (rows n_old..n_old+m-1) by largest quality gain (see the
    module docstring); returns (labels of the new items, number of new singleton communities)."""
    import scipy.sparse as sp

    n = n_old + m
    new_edges = sp.coo_matrix((np.concatenate([new_w, new_w]).astype(np.float64),
                               (np.concatenate([new_src, new_dst]), np.concatenate([new_dst, new_src]))), shape=(n, n))
    old = sp.coo_matrix(graph_old)
    graph = sp.coo_matrix((np.concatenate([old.data.astype(np.float64), new_edges.data]),
                           (np.concatenate([old.row, new_edges.row]), np.concatenate([old.col, new_edges.col]))), shape=(n, n)).tocsr()
    deg = np.asarray(graph.sum(axis=1), np.float64).ravel()
    member = np.full(n, -1, np.int64)
    member[:n_old] = membership
    C = int(membership.max()) + 1 if len(membership) and membership.max() >= 0 else 0
    e, a, cnt, W = community_totals(graph, member, C)  # the graph with the new edges, new items outside
    e, a, cnt = list(e), list(a), list(cnt)
    others, weights, starts = _new_adjacency(new_src, new_dst, new_w, n_old, m)
    singletons = 0
    for i in range(m):
        row = n_old + i
        nb, w = others[starts[i]: starts[i + 1]], weights[starts[i]: starts[i + 1]]
        comm = member[nb]
        ok = comm >= 0
        k_i = float(deg[row])
        best, best_gain, w_ic = -1, 0.0, 0.0
        if ok.any():
            totals: dict[int, float] = {}
            for c, wi in zip(comm[ok], w[ok]):
                totals[int(c)] = totals.get(int(c), 0.0) + float(wi)
            for c, w_c in sorted(totals.items()):
                gain = quality.join_gain(e[c], a[c], cnt[c], w_c, k_i, W)
                if gain > best_gain:
                    best, best_gain = c, gain
            w_ic = totals.get(best, 0.0)
        elif len(centroids):
            best = int(np.argmax(centroids @ codes_new[i]))
        if best < 0:  # no positive gain, or nothing to join: a community of its own
            best = len(e)
            e.append(0.0)
            a.append(0.0)
            cnt.append(0.0)
            singletons += 1
        member[row] = best
        e[best] += w_ic
        a[best] += k_i
        cnt[best] += 1.0
    return member[n_old:], singletons


def _assign_all(store: Snapshot, src, dst, w, n_old: int, new_codes: np.ndarray) -> tuple[pa.Table, dict[str, Any]]:
    """The new items' community under each stored method (a table in the store's communities
    schema), and the methods' manifest entries after the add."""
    codes = np.asarray(store.codes(DEFAULT_SPACE))
    m = len(new_codes)
    graph = store.graph()
    columns: dict[str, pa.Array] = {}
    info = dict(store.manifest.get("communities", {}))
    for method in store.community_methods:
        membership = store.membership(method)
        centroids = community_centroids(codes, membership) if membership.max() >= 0 else np.zeros((0, codes.shape[1]), np.float32)
        labels, singletons = assign_communities(graph, membership, src, dst, w, n_old, m, new_codes, centroids,
                                                quality=store.quality(method))
        columns[method] = pa.array(labels.astype(np.int32), pa.int32())
        entry = dict(info.get(method, {}))
        entry["n_communities"] = max(int(membership.max()) + 1, int(labels.max()) + 1 if m else 0)
        entry["added_items"] = int(entry.get("added_items", 0)) + m
        entry["added_singletons"] = int(entry.get("added_singletons", 0)) + singletons
        info[method] = entry
    return (pa.table(columns) if columns else pa.table({})), info


def _manifest_after_add(store: Snapshot, images: ImageSet, source_text: str, config: AddConfig, k: int,
                        n_edges: int, edges_added: int, communities: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    """The store's manifest with the add's counts, communities and record."""
    m = len(images)
    manifest = {key: value for key, value in store.manifest.items() if key not in ("format", "format_version", "files", "tables")}
    counts = dict(manifest.get("counts", {}))
    counts["items"] = len(store) + m
    counts["archive"] = int(counts.get("archive", len(store.archive_rows()))) + m
    counts["edges"] = n_edges
    by_split = dict(counts.get("by_split", {}))
    for s in images.splits.astype(str):
        by_split[s] = by_split.get(s, 0) + 1
    counts["by_split"] = by_split
    counts["added_since_clustering"] = int(counts.get("added_since_clustering", 0)) + m
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = {
        "source": source_text,
        "items": m,
        "k": k,
        "seed": config.seed,
        "edges": edges_added,
        "when": now,
        "splits": {s: int(c) for s, c in zip(*np.unique(images.splits.astype(str), return_counts=True))},
        "dropped_metadata": dropped,
    }
    return {**manifest, "counts": counts, "communities": communities,
            "added": list(manifest.get("added", [])) + [record], "updated": now}


def _thumbnails(store: Snapshot, images: ImageSet, n_old: int) -> pa.Table | None:
    """Thumbnails of the new items at the size the store was built with (the default for a
    store that predates them); None when the store keeps none (``thumbnail_size=0``)."""
    size = int(store.manifest.get("params", {}).get("thumbnail_size", DEFAULT_THUMBNAIL_SIZE) or 0)
    if size <= 0:
        return None
    return thumbnails_table(len(images), images.image, first_row=n_old, size=size)


def _check_new_ids(store: Snapshot, images: ImageSet) -> None:
    clash = [i for i in images.ids if i in store.row_of_id]
    if clash:
        raise InputError(f"{len(clash)} of the new images have ids already in the store (e.g. {clash[0]!r}); add each image once")
    if len(set(images.ids)) != len(images):
        raise InputError("the new images' ids are not unique; give each image a distinct name")


def add_to_store(store_path: str | Path, source: Any, config: AddConfig | None = None, *,
                 log: Log = lambda _: None) -> dict[str, Any]:
    """Append the images of ``source`` (a source spec for :func:`graphret.data.open_source`, or
    an :class:`~graphret.data.imageset.ImageSet`) to the store at ``store_path`` as a new
    version that writes the new items, their edges and their communities (and the version's
    prepared tables: :mod:`graphret.store.prepared`); returns a
    summary.  See the module docstring for every rule."""
    config = config or AddConfig()
    manifest = read_manifest(Path(store_path))  # a clear error for a missing or damaged store, before reading images
    if manifest.get("encoder", {}).get("name") == "none":
        raise StoreError(f"{store_path} was built from codes and has no encoder to encode new images; rebuild it with the new codes")
    if manifest["format_version"] == LEGACY_FORMAT_VERSION:
        raise StoreError(f"{store_path} is a format 1 store (graphret 0.1), which this graphret reads but does not change; "
                         f"run `graphret upgrade {store_path}` first")
    images = source if isinstance(source, ImageSet) else config.source.open(source, seed=config.seed)
    m = len(images)
    if m == 0:
        raise InputError("the source has no images to add")
    source_text = images.source if isinstance(source, ImageSet) else str(source)
    summary: dict[str, Any] = {}

    def make(store: Snapshot) -> Appended:  # under the writer lock, on the newest version
        _check_new_ids(store, images)
        rows = store.archive_rows()
        # a new item links to its k most similar archive or other new items: K over what there
        # is, refused as a query's (check_k), before anything is encoded
        k = check_k(store.graph_k if config.k is None else config.k, len(rows) + m - 1,
                    what="the archive and the other new images")
        log(f"encoding {m} images with the store's encoder")
        encoded = store.encode(images)
        check_nonzero_codes(encoded, images.ids)
        n_old = len(store)
        new_items, dropped = new_items_table(store, images, encoded)
        new_codes = np.asarray(encoded.spaces[DEFAULT_SPACE], np.float32)
        log(f"linking {m} new items to their {k} most similar archive items")
        walk = store.manifest.get("walk") if store.tables.get("walk") else None
        degree = int(walk["max_degree"]) if walk else 0
        nearest, sims = nearest_of_new(np.asarray(store.codes(DEFAULT_SPACE))[rows], rows, new_codes, n_old, max(k, degree))
        src, dst, w = link_new_items(nearest, sims, n_old, k)
        communities, info = _assign_all(store, src, dst, w, n_old, new_codes)
        manifest = _manifest_after_add(store, images, source_text, config, k, store.edges.num_rows + len(src), int(len(src)),
                                       info, dropped)
        summary.update({
            "added": m,
            "items": n_old + m,
            "edges_added": int(len(src)),
            "added_since_clustering": manifest["counts"]["added_since_clustering"],
            "communities": {method: info[method]["n_communities"] for method in store.community_methods},
            "dropped_metadata": dropped,
        })
        return Appended(items=new_items, edges=edges_arrow(src, dst, w), communities=communities, manifest=manifest,
                        walk=walk_links(nearest, n_old, degree) if walk else None,
                        thumbnails=_thumbnails(store, images, n_old))

    log(f"writing a new version of {store_path}")
    summary["version"] = append_version(store_path, make, prepare=prepared_tables)
    return summary
