"""The Arrow graph store: round trip, validation, atomic writes."""

import json
import os
import shutil

import numpy as np
import pytest

import graphret
from graphret.errors import StoreError
from graphret.store import open_store
from graphret.store.schema import FORMAT_VERSION
from tests.stores import arrow_table, fragment_paths, newest_manifest
from tests.synthetic import blob_images


@pytest.fixture(scope="module")
def blob_store(blob_stores):
    """The session's 120-image Leiden blob store (test_query_store's), its images and manifest;
    tests that write copy it first (copy_store)."""
    path = blob_stores(n_per_class=40, seed=1, communities=("leiden",))
    return path, blob_images(n_per_class=40, n_classes=3, seed=1), graphret.open(path).manifest


def test_store_round_trip(blob_store):
    path, images, manifest = blob_store
    store = open_store(path)
    assert len(store) == len(images) == 120
    assert list(store.ids) == images.ids
    assert store.manifest["format_version"] == FORMAT_VERSION
    assert store.manifest["encoder"]["name"] == "pixels"
    assert store.manifest["archive"] == ["train", "val"]
    codes = store.codes()
    assert codes.dtype == np.float32 and codes.shape == (120, 12)
    np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(store.labels, images.labels)
    assert store.label_of(0) == images.class_names[images.labels[0]]


def test_edges_cover_only_the_archive_once_each(blob_store):
    path, images, _ = blob_store
    store = open_store(path)
    src = store.edges.column("src").to_numpy()
    dst = store.edges.column("dst").to_numpy()
    weight = store.edges.column("weight").to_numpy()
    assert np.all(src < dst) and np.all(weight > 0) and np.all(weight <= 1.0 + 1e-5)
    assert len(set(zip(src.tolist(), dst.tolist()))) == len(src)
    archive = set(np.flatnonzero(images.splits != "test").tolist())
    assert set(src.tolist()) | set(dst.tolist()) <= archive
    graph = store.graph()
    assert (graph != graph.T).nnz == 0
    # every archive item keeps its k = 5 strongest neighbours, so has degree >= 5
    degrees = np.diff(graph.indptr)
    assert degrees[sorted(archive)].min() >= 5


def test_communities_cover_archive_and_mark_test_items(blob_store):
    path, images, manifest = blob_store
    store = open_store(path)
    leiden = store.membership("leiden")
    is_test = images.splits == "test"
    assert np.all(leiden[is_test] == -1)
    assert np.all(leiden[~is_test] >= 0)
    # three well-separated classes: Leiden finds at least three communities, each mostly pure
    labels = images.labels[~is_test]
    found = leiden[~is_test]
    purity = sum(np.bincount(labels[found == c]).max() for c in np.unique(found)) / len(found)
    assert purity > 0.9
    assert manifest["communities"]["leiden"]["n_communities"] == len(np.unique(found))
    assert manifest["communities"]["leiden"]["newman_modularity"] > 0.3


def test_arrow_files_read_without_graphret(blob_store):
    path, _, _ = blob_store
    table = arrow_table(path, "edges")
    assert table.schema.names == ["src", "dst", "weight"]
    communities = arrow_table(path, "communities")
    assert communities.schema.names == ["leiden"] and communities.num_rows == 120
    manifest = newest_manifest(path)
    assert set(manifest["tables"]) >= {"items", "edges", "communities"}
    assert manifest["encoder"]["file"]["file"].startswith("data/encoder-")
    assert all(len(e["sha256"]) == 64 and e["bytes"] > 0 for entries in manifest["tables"].values() for e in entries)


def copy_store(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_truncated_arrow_file_is_named(blob_store, tmp_path):
    path, _, _ = blob_store
    broken = copy_store(path, tmp_path / "broken")
    items = fragment_paths(broken, "items")[0]
    data = items.read_bytes()
    items.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="items-.*truncated"):
        open_store(broken)


def test_checksums_cannot_be_switched_off(blob_store, tmp_path):
    path, _, _ = blob_store
    broken = copy_store(path, tmp_path / "unlisted")
    newest = sorted((broken / "_versions").glob("*.json"))[-1]
    manifest = json.loads(newest.read_text())
    del manifest["tables"]["items"][0]["sha256"]
    newest.write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="lacks its file, size or checksum"):
        open_store(broken)


def test_modified_file_fails_its_checksum(blob_store, tmp_path):
    path, _, _ = blob_store
    broken = copy_store(path, tmp_path / "modified")
    edges = fragment_paths(broken, "edges")[0]
    data = bytearray(edges.read_bytes())
    data[-100] ^= 0xFF
    edges.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="edges-.* does not match its checksum"):
        open_store(broken).graph()


def test_newer_format_version_is_refused(blob_store, tmp_path):
    path, _, _ = blob_store
    newer = copy_store(path, tmp_path / "newer")
    newest = sorted((newer / "_versions").glob("*.json"))[-1]
    manifest = json.loads(newest.read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    newest.write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="newer than this graphret reads.*upgrade graphret"):
        open_store(newer)


def test_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="no such store"):
        open_store(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match="not a graphret store"):
        open_store(tmp_path / "plain")


def test_existing_store_is_kept_without_overwrite_and_on_failure(blob_store, tmp_path, monkeypatch):
    path, images, _ = blob_store
    target = copy_store(path, tmp_path / "existing")
    before = {str(f.relative_to(target)): f.read_bytes() for f in target.rglob("*") if f.is_file()}
    options = dict(k=5, communities=("leiden",), encoder="pixels", image_size=16, dim=12)
    with pytest.raises(StoreError, match="overwrite=True"):
        graphret.build(images, target, **options)

    from graphret.encoders.pixels import PixelPCAEncoder

    def fail(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(PixelPCAEncoder, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        graphret.build(images, target, overwrite=True, **options)
    assert {str(f.relative_to(target)): f.read_bytes() for f in target.rglob("*") if f.is_file()} == before
    assert sorted(os.listdir(tmp_path)) == ["existing"]  # no temporary folder left behind


def test_overwrite_replaces_a_store(blob_store, tmp_path):
    path, images, _ = blob_store
    target = copy_store(path, tmp_path / "replace")
    graphret.build(images, target, k=3, communities=("leiden",), overwrite=True, encoder="pixels", image_size=16, dim=8)
    store = open_store(target)
    assert store.manifest["graph"]["k"] == 3 and store.codes().shape[1] == 8


def test_store_without_communities_serves_flat_queries(tmp_path):
    from graphret.query import as_queries, search

    path = tmp_path / "plain"
    graphret.build(blob_images(n_per_class=20, n_classes=2, seed=3), str(path), k=4, communities=(), encoder='pixels', image_size=16, dim=8)
    store = open_store(path)
    assert store.community_methods == []
    result = search(store, as_queries(store, "test", kind="split"), k=3)
    assert result.mode == "flat" and result.rows.shape == (8, 3)


@pytest.mark.parametrize("bad", [2**31 - 1, -5, 120])
def test_a_membership_outside_the_items_is_refused_when_read_and_named_by_verify(blob_store_copy, bad):
    """A communities column whose labels leave -1..n-1 (damage no checksum sees) is one
    StoreError when read, before a search's arithmetic can overflow on it, and a line of
    `graphret verify`."""
    import pyarrow as pa
    from click.testing import CliRunner

    from graphret.cli.main import main
    from graphret.store.maintain import verify
    from tests.stores import rewrite_fragment

    path = blob_store_copy(n_per_class=40, seed=1, communities=("leiden",))
    table = arrow_table(path, "communities")
    labels = table.column("leiden").to_numpy().copy()
    labels[7] = bad
    rewrite_fragment(path, "communities", table.set_column(0, "leiden", pa.array(labels, pa.int32())))
    with pytest.raises(StoreError, match=f"leiden communities column holds labels .*{bad}.* outside -1..119") as refused:
        graphret.open(path).search("test", k=3, mode="probe")
    assert "\n" not in str(refused.value)
    problems = verify(path)
    assert len(problems) == 1 and "leiden communities column" in problems[0]
    checked = CliRunner().invoke(main, ["verify", str(path)])
    assert checked.exit_code == 1 and "outside -1..119" in checked.output and "Traceback" not in checked.output
    searched = CliRunner().invoke(main, ["query", str(path), "--split", "test", "--k", "3"])
    assert searched.exit_code != 0 and "outside -1..119" in searched.output and "Traceback" not in searched.output


def test_ids_and_splits_are_read_from_the_columns_bytes_as_from_their_strings(blob_store):
    """A single id's row and the split rows come from the Arrow buffers without a Python string
    per item (issue 25.5); they are those the strings give: the last row of a repeated id, None
    for an unknown one, and a second look-up goes through the dict of every id."""
    path, images, _ = blob_store
    store = open_store(path)
    assert store.rows_of_ids([images.ids[7], "no-such-id", images.ids[0]]) == [7, None, 0]
    assert store.rows_of_ids([images.ids[3]]) == [3] and "row_of_id" not in store.__dict__  # scans, no dict of every id
    assert store.rows_of_ids(list(images.ids[:5])) == [0, 1, 2, 3, 4] and "row_of_id" in store.__dict__  # past FEW_IDS: the dict
    fresh = open_store(path)  # a command showing a query and its results reads their ids value by value
    assert fresh.item_text("id", list(range(60))) == list(images.ids[:60]) and "ids" not in fresh.__dict__
    assert fresh.item_text("id", [61, 62, 63, 64, 65]) == list(images.ids[61:66]) and "ids" in fresh.__dict__  # past 64: decoded once
    assert store.split_names == frozenset(images.splits.astype(str))
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(store.split_rows([split]), np.flatnonzero(images.splits == split))
    np.testing.assert_array_equal(store.archive_rows(), np.flatnonzero(images.splits != "test"))
    import pyarrow as pa

    from graphret.store.read import string_buffers

    column = pa.chunked_array([pa.array(["a", "bé"]), pa.array(["", "a", None])])  # chunks, UTF-8, empty, null
    offsets, data = string_buffers(column)
    assert [bytes(data[a:b]).decode() for a, b in zip(offsets[:-1], offsets[1:])] == ["a", "bé", "", "a", ""]
    from graphret.store.read import string_codes

    for values in (["test", "train", "test", "val"], ["test", "validation-holdout", "tést", "test", "train"]):  # 8-byte keys, longer
        names, codes = string_codes(pa.array(values))
        assert sorted(names) == sorted(set(values)) and [names[c] for c in codes] == values


def test_the_last_row_of_an_id_is_found_in_the_columns_bytes():
    """The byte search behind a first id look-up: a hit inside another value, across two values
    or at the start of a longer one is not a match; a repeated value gives its last row; an
    empty value is found; past the tries, every row of the key's length is compared."""
    import pyarrow as pa

    from graphret.store.read import _last_row_of, string_buffers

    offsets, data = string_buffers(pa.array(["ab", "c", "abc", "", "xabc", "ab", "b", ""]))
    assert _last_row_of(offsets, data, b"ab") == 5
    assert _last_row_of(offsets, data, b"abc") == 2
    assert _last_row_of(offsets, data, b"bc") is None  # inside "abc", across "ab" + "c"
    assert _last_row_of(offsets, data, b"") == 7
    assert _last_row_of(offsets, data, b"zz") is None
    assert _last_row_of(offsets, data, b"b", tries=1) == 6 and _last_row_of(offsets, data, b"ab", tries=0) == 5
