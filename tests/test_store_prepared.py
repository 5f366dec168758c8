"""Prepared tables (graphret.store.prepared, graphret.query.prepared): what a search of the
default archive builds from the edges is written with each version and read back as the same
arrays; stale, missing or damaged ones never give a wrong answer or a crash."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from graphret.api.add import add_to_store
from graphret.errors import StoreError
from graphret.query.archive import ArchiveIndex
from graphret.query.searcher import Searcher
from graphret.store.maintain import compact
from graphret.query.archive import prepared_tables
from graphret.store.read import open_store
from graphret.store.schema import FORMAT_VERSION
from tests.stores import newest_manifest, rewrite_fragment
from tests.synthetic import blob_images


def indexes(store):
    """The default archive's index read from the prepared tables, and built without them."""
    snapshot = open_store(store)
    rows, codes = snapshot.archive_rows(), snapshot.codes()
    return (ArchiveIndex(snapshot, rows, codes, "cnm"), ArchiveIndex(snapshot, rows, codes, "cnm", prepared=False))


def assert_same_index(ready, built):
    assert ready.prepared is not None and built.prepared is None
    for x, y in zip(ready.graph_arrays, built.graph_arrays):
        assert np.array_equal(x, y) and x.dtype == y.dtype
    assert np.array_equal(ready.walk.indptr, built.walk.indptr) and np.array_equal(ready.walk.indices, built.walk.indices)
    assert np.array_equal(ready.walk.entries, built.walk.entries)
    for method in ("cnm", "leiden"):
        (a, ids_a), (b, ids_b) = ready.region_of(method), built.region_of(method)
        for name in ("indptr", "indices", "weights", "same", "degree", "labels", "e", "a", "n_c"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), (method, name)
        assert a.W == b.W and np.array_equal(ids_a, ids_b)


def test_a_build_writes_what_a_search_would_build(blob_stores):
    store = blob_stores(n_per_class=30)  # train/val/test: the archive is not every item
    manifest = newest_manifest(store)
    assert manifest["format_version"] == FORMAT_VERSION == 3
    assert {"adjacency", "regions"} <= set(manifest["tables"])
    ready, built = indexes(store)
    assert ready.n < len(ready.store)
    assert_same_index(ready, built)
    indices = ready.graph_arrays[1]  # a view of the file's private mapping: no copy, writable like a built array
    assert not indices.flags.owndata and indices.flags.writeable and indices.flags.aligned
    queries = ready.store.codes()[:6]
    for mode in ("region", "graph"):
        searchers = Searcher(open_store(store)), Searcher(open_store(store))
        searchers[1].index.use_prepared = False
        a, b = (searcher.search(queries, k=5, mode=mode) for searcher in searchers)
        assert searchers[0].index.prepared is not None and searchers[1].index.prepared is None
        assert np.array_equal(a.rows, b.rows) and np.allclose(a.scores, b.scores)


def test_an_add_and_a_compact_write_them_for_their_version(blob_store_copy):
    store = blob_store_copy(n_per_class=30)
    images = blob_images(n_per_class=2, n_classes=3, seed=11)
    images.ids = [f"new-{i}" for i in range(len(images))]
    add_to_store(store, images)
    ready, built = indexes(store)
    assert len(ready.store) == 96 and ready.store.added_rows.size == 6
    assert_same_index(ready, built)
    compact(store)  # merges the added fragments; the prepared tables are tied to the new version
    ready, built = indexes(store)
    assert len(newest_manifest(store)["tables"]["items"]) == 1
    assert_same_index(ready, built)


def test_prepared_tables_of_another_version_are_not_used(blob_store_copy):
    store = blob_store_copy(n_per_class=30)
    path = sorted(Path(store, "_versions").glob("*.json"))[-1]
    manifest = json.loads(path.read_text())
    manifest["tables"]["adjacency"][0]["of"] = "0" * 64  # as a writer that carried them over unchanged would leave them
    path.write_text(json.dumps(manifest))
    ready, built = indexes(store)
    assert ready.prepared is None and open_store(store).prepared_table("adjacency") is None
    assert np.array_equal(ready.graph_arrays[1], built.graph_arrays[1])


def test_a_format_2_store_is_built_in_memory_and_compact_prepares_it(blob_store_copy):
    store = blob_store_copy(n_per_class=30)
    path = sorted(Path(store, "_versions").glob("*.json"))[-1]
    manifest = json.loads(path.read_text())
    for name in ("adjacency", "regions"):
        del manifest["tables"][name]
    manifest["format_version"] = 2  # as graphret wrote it before the prepared tables
    path.write_text(json.dumps(manifest))
    old = open_store(store)
    assert ArchiveIndex(old, old.archive_rows(), old.codes(), "cnm").prepared is None
    found = Searcher(old).search(old.codes()[:3], k=4).rows
    compact(store, prepare=prepared_tables)
    ready, built = indexes(store)
    assert_same_index(ready, built)
    assert np.array_equal(Searcher(ready.store).search(old.codes()[:3], k=4).rows, found)


def test_damaged_prepared_tables_are_a_one_line_error(blob_store_copy):
    store = blob_store_copy(n_per_class=30)
    snapshot = open_store(store)
    table = snapshot.prepared_table("adjacency")
    indices = table.column("indices").combine_chunks()
    bad = pa.LargeListArray.from_arrays(indices.offsets, pa.array(np.full(len(indices.values), 10**6, np.int32)))
    rewrite_fragment(store, "adjacency", table.set_column(table.schema.get_field_index("indices"), "indices", bad))
    path = sorted(Path(store, "_versions").glob("*.json"))[-1]
    manifest = json.loads(path.read_text())
    from graphret.store.prepared import source_of

    manifest["tables"]["adjacency"][0]["of"] = source_of(manifest)  # damage no checksum nor source can see
    path.write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="name rows outside the archive") as error:
        Searcher(open_store(store)).search(snapshot.codes()[:2], k=3, mode="region")
    assert len(str(error.value).splitlines()) == 1


def test_a_searcher_lays_the_archive_out_only_once_it_pays(blob_stores, monkeypatch):
    """The community layout (a copy of the archive) is built after LAYOUT_AFTER graph or region
    queries, or when asked (a server warming a version), not for a process's first query."""
    import graphret.graph.layout as layout
    import graphret.query.searcher as searcher_module

    monkeypatch.setattr(layout, "LAYOUT_ABOVE", 10)
    monkeypatch.setattr(searcher_module, "LAYOUT_AFTER", 5)
    snapshot = open_store(blob_stores(n_per_class=30))
    searcher = Searcher(snapshot)
    codes = snapshot.codes()
    first = searcher.search(codes[:2], k=4, mode="graph").rows
    assert "graph_base" not in vars(searcher.index)  # two queries: the archive's own order
    searcher.search(codes[:3], k=4, mode="region")
    assert "graph_base" in vars(searcher.index) and searcher.index.graph_base.layout is not None  # the fifth: laid out
    np.testing.assert_array_equal(searcher.search(codes[:2], k=4, mode="graph").rows, first)  # the same answers
    warmed = Searcher(snapshot)
    warmed.lay_out()
    assert warmed.index.graph_base.layout is not None


def test_the_value_checks_run_once_per_content(blob_stores, monkeypatch, tmp_path):
    """The checks that read every prepared value are remembered under the files' digests
    (graphret.store.verified.learn): a later process touches only what its query reads; with
    remembering off they run every time."""
    import graphret.query.prepared as prepared
    from graphret.store import verified

    monkeypatch.setenv(verified.CACHE_ENV, str(tmp_path / "cache"))
    calls = []
    real = prepared._check_values
    monkeypatch.setattr(prepared, "_check_values", lambda *a: calls.append(1) or real(*a))
    store = blob_stores(n_per_class=30)
    for _ in range(2):
        snapshot = open_store(store)
        assert prepared.read_prepared(snapshot, len(snapshot.archive_rows())) is not None
    assert len(calls) == 1
    monkeypatch.setenv(verified.CACHE_ENV, "")
    prepared.read_prepared(open_store(store), len(snapshot.archive_rows()))
    assert len(calls) == 2
