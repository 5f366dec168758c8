"""The build path at scale: a faiss build's manifest (method, recall, peak memory per step),
no needless copies of the codes, and walk lists from the kNN graph's own lists."""

import json

import numpy as np

import graphret


def clustered(n, d=16, centres=20, spread=0.6, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = c[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, d)) / np.sqrt(d)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_a_build_with_faiss_records_method_recall_and_memory_per_step(tmp_path):
    codes = clustered(1200, d=12)
    store = graphret.build_from_codes(codes, tmp_path / "s", knn="faiss", knn_threads=1, communities=["cnm"], walk=False)
    manifest = json.loads(json.dumps(store.manifest))
    graph = manifest["graph"]
    assert graph["method"] == "faiss" and 0.9 <= graph["recall"] <= 1.0 and graph["recall_sample"] == 1000
    peaks = manifest["build"]["peak_rss_mib_by_step"]
    assert set(peaks) == {"knn", "cnm"} and all(p > 10 for p in peaks.values())
    assert manifest["build"]["peak_rss_mib"] >= max(peaks.values())
    # the stored codes are the given ones, normalised (in place on the float32 copy, not on the caller's array)
    given = codes.astype(np.float64) * 3.0
    store2 = graphret.build_from_codes(given, tmp_path / "t", knn="exact", communities=["cnm"], walk=False)
    np.testing.assert_allclose(store2.codes(), codes, atol=1e-6)
    np.testing.assert_array_equal(given, codes.astype(np.float64) * 3.0)
    given32 = codes * np.float32(3.0)
    store3 = graphret.build_from_codes(given32, tmp_path / "u", knn="exact", communities=["cnm"], walk=False)
    np.testing.assert_allclose(store3.codes(), codes, atol=1e-6)
    np.testing.assert_array_equal(given32, codes * np.float32(3.0))
    store4 = graphret.build_from_codes(codes, tmp_path / "v", knn="exact", communities=["cnm"], walk=False)
    np.testing.assert_array_equal(store4.codes(), codes)  # unit already: stored as given
    # no stored walk lists: graph mode builds them as a build would (from the kNN graph: no search candidates here)
    hits, flat = (store4.search(codes[:20], k=10, mode=mode).rows for mode in ("graph", "flat"))
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hits, flat)]) > 0.9


def test_walk_lists_without_expansion_come_from_the_knn_graph_only(tmp_path):
    codes = clustered(1500, d=12, seed=4)
    full = graphret.build_from_codes(codes, tmp_path / "a", communities=["cnm"], walk_passes=0)
    own = graphret.build_from_codes(codes, tmp_path / "b", communities=["cnm"], walk_passes=0, walk_expand=False)
    assert full.manifest["walk"]["expand"] is True and own.manifest["walk"]["expand"] is False
    edges = own.snapshot.edges.to_pandas()
    graph = set(zip(edges.src, edges.dst)) | set(zip(edges.dst, edges.src))
    src, dst = own.snapshot.walk_lists
    assert set(zip(src.tolist(), dst.tolist())) <= graph  # every walk edge is a kNN graph edge
    src, dst = full.snapshot.walk_lists
    assert not set(zip(src.tolist(), dst.tolist())) <= graph  # expansion finds others
    assert own.manifest["walk"]["edges"] != full.manifest["walk"]["edges"]
    hits = own.search(codes[:20], k=10, mode="graph")
    flat = own.search(codes[:20], k=10, mode="flat")
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hits.rows, flat.rows)]) > 0.8


def test_walk_effort_is_full_for_small_archives_cheap_for_large_ones_and_follows_what_is_given(tmp_path):
    from graphret.graph.search_graph import CHEAP_WALK_ABOVE, DEFAULT_PASSES, SEARCH_CANDIDATES, walk_effort

    assert walk_effort(CHEAP_WALK_ABOVE) == (DEFAULT_PASSES, True, 0, 0)
    assert walk_effort(CHEAP_WALK_ABOVE + 1) == (0, False, 0, SEARCH_CANDIDATES)
    assert walk_effort(CHEAP_WALK_ABOVE + 1, searched=False) == (0, False, 1, 0)  # a kNN method that keeps none
    assert walk_effort(CHEAP_WALK_ABOVE + 1, passes=3, expand=True, local_passes=0, candidates=0) == (3, True, 0, 0)
    assert walk_effort(10, passes=0, candidates=32) == (0, True, 0, 32)
    store = graphret.build_from_codes(clustered(600, d=12, seed=5), tmp_path / "s", communities=["cnm"])
    walk = store.manifest["walk"]
    assert (walk["passes"], walk["expand"], walk["local_passes"]) == (DEFAULT_PASSES, True, 0)  # what was used
    local = graphret.build_from_codes(clustered(600, d=12, seed=5), tmp_path / "l", communities=["cnm"], walk_passes=0,
                                      walk_expand=False, walk_local=1)
    assert local.manifest["walk"]["local_passes"] == 1


def test_large_archives_build_their_walk_lists_in_community_order(tmp_path, monkeypatch):
    """Above LAYOUT_ABOVE items the build makes the walk lists over the archive renumbered by
    community (graphret.graph.search_graph, 6): the manifest says so, and the lists are the ones
    the archive's order gives."""
    from graphret.graph import layout

    codes = clustered(600, d=12, seed=5)
    plain = graphret.build_from_codes(codes, tmp_path / "p", communities=["cnm"])
    assert plain.manifest["walk"]["built_in"] == "archive order"
    monkeypatch.setattr(layout, "LAYOUT_ABOVE", 100)  # as a large archive would
    grouped = graphret.build_from_codes(codes, tmp_path / "g", communities=["cnm"])
    assert grouped.manifest["walk"]["built_in"] == "community order"
    assert not np.all(np.diff(grouped.snapshot.membership()) >= 0)  # not already in community order: the renumbering is tested
    for a, b in zip(plain.snapshot.walk_lists, grouped.snapshot.walk_lists):
        np.testing.assert_array_equal(a, b)


def test_large_archives_start_their_walk_lists_from_the_knn_searchs_own_candidates(tmp_path, monkeypatch):
    """Above CHEAP_WALK_ABOVE items the FAISS kNN search keeps each code's SEARCH_CANDIDATES most
    similar codes it compared, and the walk lists are diversified from them (no expansion, no
    local pass): the kNN graph is the one the search gives without them, and the lists are
    build_search_graph's from them."""
    from graphret.graph import search_graph
    from graphret.graph.faiss_knn import faiss_knn
    from graphret.graph.search_graph import build_search_graph

    codes = clustered(3000, d=12, seed=6)
    plain = graphret.build_from_codes(codes, tmp_path / "p", knn="faiss", knn_threads=1, communities=["cnm"],
                                      walk_passes=0, walk_expand=False, walk_local=1)
    monkeypatch.setattr(search_graph, "CHEAP_WALK_ABOVE", 1000)  # as a large archive would
    large = graphret.build_from_codes(codes, tmp_path / "l", knn="faiss", knn_threads=1, communities=["cnm"])
    walk = large.manifest["walk"]
    assert (walk["passes"], walk["expand"], walk["local_passes"], walk["candidates"]) == (0, False, 0, 64)
    assert plain.manifest["walk"]["candidates"] == 0
    assert large.manifest["graph"]["edges"] == plain.manifest["graph"]["edges"]
    np.testing.assert_array_equal(large.snapshot.edges.column("dst").to_numpy(), plain.snapshot.edges.column("dst").to_numpy())
    candidates, _ = faiss_knn(codes, 10, keep=64, threads=1)
    assert candidates.shape == (3000, 64)
    indptr, indices = build_search_graph(codes, candidates, passes=0, expand=False, local_passes=0)
    src, dst = large.snapshot.walk_lists
    assert np.array_equal(np.diff(indptr), np.bincount(src, minlength=3000))
    assert set(zip(src.tolist(), dst.tolist())) == set(zip(np.repeat(np.arange(3000), np.diff(indptr)).tolist(), indices.tolist()))
    assert set(zip(src.tolist(), dst.tolist())) != set(zip(*[a.tolist() for a in plain.snapshot.walk_lists]))
    flat = large.search(codes[:50], k=10, mode="flat")
    hits = large.search(codes[:50], k=10, mode="graph")
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hits.rows, flat.rows)]) > 0.9
