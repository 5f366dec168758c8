"""graphret add: append, link, assign communities, atomically; queries see new items at once."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from graphret.cli.main import main
from PIL import Image

from graphret.api.add import add_to_store, assign_communities
from graphret.api.config import AddConfig
from graphret.communities import Quality
from graphret.errors import InputError
from graphret.query import as_queries, search
from graphret.store import open_store
from tests.synthetic import blob_images


def new_blobs(n_per_class=2, seed=11, prefix="new"):
    images = blob_images(n_per_class=n_per_class, n_classes=3, seed=seed)
    images.ids = [f"{prefix}-{i}" for i in range(len(images))]
    return images


@pytest.fixture()
def store_path(blob_store_copy):
    return blob_store_copy(n_per_class=30)  # each test adds to its own copy


def test_add_then_query_finds_the_new_items(store_path):
    before = open_store(store_path)
    n_old, edges_old = len(before), before.manifest["counts"]["edges"]
    images = new_blobs()
    summary = add_to_store(store_path, images)
    assert summary["added"] == 6 and summary["items"] == n_old + 6
    store = open_store(store_path)  # checksums verified
    assert len(store) == n_old + 6
    assert store.manifest["counts"]["added_since_clustering"] == 6
    assert store.manifest["counts"]["edges"] > edges_old
    assert store.manifest["added"][0]["items"] == 6
    added = store.items.column("added").to_numpy(zero_copy_only=False)
    assert added.sum() == 6 and added[-6:].all()
    new_rows = np.arange(n_old, n_old + 6)
    assert list(store.splits[new_rows]) == [str(s) for s in images.splits]  # splits kept
    for method in ("cnm", "leiden"):
        membership = store.membership(method)
        assert np.all(membership[new_rows] >= 0)
        # the class of a new item is the majority class of its community
        old = membership[: n_old] >= 0
        for r in new_rows:
            same = (membership[:n_old] == membership[r]) & old
            assert np.bincount(store.labels[:n_old][same]).argmax() == store.labels[r]
    codes = store.codes()
    for mode in ("flat", "probe", "region"):
        result = search(store, as_queries(store, codes[new_rows], kind="codes"), k=3, mode=mode)
        assert np.array_equal(result.rows[:, 0], new_rows), mode  # each finds itself first
    # a new item in split "test" is searchable too, and never returns itself
    test_rows = new_rows[store.splits[new_rows] == "test"]
    other = search(store, as_queries(store, ["new-0"], kind="ids"), k=5, mode="flat")
    assert n_old + 0 not in other.rows[0]
    if len(test_rows):
        found = search(store, as_queries(store, codes[test_rows], kind="codes"), k=1, mode="flat")
        assert np.array_equal(found.rows[:, 0], test_rows)


def test_add_twice_and_duplicate_ids(store_path):
    add_to_store(store_path, new_blobs(prefix="a"))
    add_to_store(store_path, new_blobs(seed=12, prefix="b"))
    store = open_store(store_path)
    assert store.manifest["counts"]["added_since_clustering"] == 12
    assert len(store.manifest["added"]) == 2
    with pytest.raises(InputError, match="already in the store"):
        add_to_store(store_path, new_blobs(prefix="a"))


def test_failed_add_leaves_the_old_store(store_path, monkeypatch):
    files = lambda: {str(f.relative_to(store_path)): f.read_bytes() for f in store_path.rglob("*") if f.is_file()}  # noqa: E731
    before = files()
    import graphret.store.fragments as fragments

    calls = []

    def broken(path, table):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return write_arrow(path, table)

    write_arrow = fragments.write_arrow
    monkeypatch.setattr(fragments, "write_arrow", broken)
    with pytest.raises(OSError):
        add_to_store(store_path, new_blobs())
    assert files() == before  # the fragment written before the failure is gone again
    store = open_store(store_path)
    assert not store.items.column("added").to_numpy(zero_copy_only=False).any()
    assert [p.name for p in store_path.parent.iterdir()] == ["store"]  # nothing beside the store


def test_assignment_follows_the_largest_gain():
    import scipy.sparse as sp

    # two triangles 0-1-2 and 3-4-5; a new node 6 with edges to 0 (0.9) and 3 (0.2)
    edges = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]
    rows = [a for a, b in edges] + [b for a, b in edges]
    cols = [b for a, b in edges] + [a for a, b in edges]
    graph = sp.csr_matrix((np.ones(12), (rows, cols)), shape=(6, 6))
    membership = np.array([0, 0, 0, 1, 1, 1])
    labels, singletons = assign_communities(
        graph, membership, np.array([0, 3]), np.array([6, 6]), np.array([0.9, 0.2]), 6, 1,
        np.zeros((1, 2), np.float32), np.zeros((2, 2), np.float32), quality=Quality("newman", 1.0),
    )
    assert labels.tolist() == [0] and singletons == 0


def test_cli_add_folder(store_path, tmp_path):
    folder = tmp_path / "incoming"
    images = new_blobs(n_per_class=2, seed=13)
    for i in range(len(images)):
        sub = folder / images.class_names[images.labels[i]]
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images.image(i)).save(sub / f"x{i}.png")
    result = CliRunner().invoke(main, ["add", str(store_path), str(folder), "--quiet", "--no-split"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["added"] == 6
    store = open_store(store_path)
    added = np.flatnonzero(store.items.column("added").to_numpy(zero_copy_only=False))
    assert set(store.splits[added]) == {"all"}
    assert [store.label_of(int(r)) for r in added] == [images.class_names[c] for c in sorted(images.labels)]
    query = CliRunner().invoke(main, ["query", str(store_path), "--image", str(folder), "--k", "1", "--format", "json", "--mode", "flat"])
    assert query.exit_code == 0, query.output
    top = [q["results"][0]["id"] for q in json.loads(query.output)["queries"]]
    assert set(top) == {str(store.ids[r]) for r in added}
    again = CliRunner().invoke(main, ["add", str(store_path), str(folder), "--quiet"])
    lines = [line for line in again.output.splitlines() if line.strip()]
    assert again.exit_code != 0 and len(lines) == 1 and "already in the store" in lines[0]
    missing = CliRunner().invoke(main, ["add", str(tmp_path / "nowhere"), str(folder)])
    assert missing.exit_code != 0 and "no such store" in missing.output


def test_queries_never_write_to_the_store(store_path):
    """Opening and searching a store only reads it: a read-only store folder answers every mode,
    and an add is seen by a store opened afterwards."""
    before = sorted(p.name for p in store_path.iterdir())
    mode = store_path.stat().st_mode
    store_path.chmod(0o555)
    try:
        store = open_store(store_path)
        rows = store.archive_rows()[:2]
        for how in ("probe", "flat"):
            result = search(store, as_queries(store, store.codes()[rows], kind="codes"), k=3, mode=how)
            assert np.array_equal(result.rows[:, 0], rows), how
        region = search(store, as_queries(store, store.codes()[rows], kind="codes"), k=3, mode="region")
        membership = store.membership("cnm")
        assert np.array_equal(membership[region.rows[:, 0]], membership[rows])
    finally:
        store_path.chmod(mode)
    assert sorted(p.name for p in store_path.iterdir()) == before
    add_to_store(store_path, new_blobs())
    fresh = open_store(store_path)
    codes = fresh.codes()
    result = search(fresh, as_queries(fresh, codes[-2:], kind="codes"), k=1, mode="probe")
    assert np.array_equal(result.rows[:, 0], [len(fresh) - 2, len(fresh) - 1])


def test_a_k_larger_than_what_can_be_linked_is_refused_as_a_query_k_is(store_path, tmp_path):
    """add's K (edges per new image) follows query's rule (check_k): more than the archive and
    the other new images hold is one line naming the largest K, and nothing is written."""
    store = open_store(store_path)
    available = len(store.archive_rows()) + 6 - 1
    before = store.version
    with pytest.raises(InputError, match=f"K = 10000 is larger than the archive and the other new images \\({available} items"):
        add_to_store(store_path, new_blobs(), AddConfig(k=10000))
    folder = tmp_path / "incoming"
    images = new_blobs(n_per_class=2, seed=13)
    folder.mkdir()
    for i in range(len(images)):
        Image.fromarray(images.image(i)).save(folder / f"x{i}.png")
    result = CliRunner().invoke(main, ["add", str(store_path), str(folder), "--quiet", "--k", str(available + 1)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1 and f"--k {available}" in lines[0] and "Traceback" not in result.output
    assert open_store(store_path).version == before
    done = add_to_store(store_path, new_blobs(), AddConfig(k=available))  # the largest K links every item there is
    assert done["added"] == 6 and done["edges_added"] > 0
