"""Graph walk (graphret.graph.walk) over walk lists (graphret.graph.search_graph): recall against
exact search, filters, exclusion, K always returned, determinism, errors."""

import numpy as np
import pytest
import scipy.sparse as sp

from graphret.errors import InputError, KTooLarge
from graphret.graph.build import graph_from_knn
from graphret.graph.knn import exact_knn, exact_search
from graphret.graph.search_graph import build_search_graph, entry_points, neighbor_lists
from graphret.graph.walk import graph_walk


def clustered(n, d=16, clusters=20, spread=0.6, seed=0, n_queries=0):
    """Unit codes around ``clusters`` random centres (Gaussian noise), and fresh queries."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(m):
        lab = rng.integers(0, clusters, m)
        x = centres[lab] + spread * rng.standard_normal((m, d)) / np.sqrt(d)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), lab

    x, lab = draw(n)
    q, _ = draw(n_queries)
    return x, lab, q


def recall(found, truth):
    return float(np.mean([len(np.intersect1d(a, b)) for a, b in zip(found, truth)]) / truth.shape[1])


@pytest.fixture(scope="module")
def data():
    x, lab, q = clustered(3000, n_queries=200)
    idx, sims = exact_knn(x, 10)
    graph = graph_from_knn(idx, sims)
    lists = build_search_graph(x, graph, max_degree=16, passes=2, threads=1)
    entries = entry_points(x, lab, graph=lists)
    return x, lab, q, graph, lists, entries


def test_walk_lists_are_bounded_sorted_and_valid(data):
    x, _, _, _, (indptr, indices), _ = data
    n = len(x)
    deg = np.diff(indptr)
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    assert indptr[0] == 0 and indptr[-1] == len(indices) and deg.max() <= 16 and deg.min() >= 1
    rows = np.repeat(np.arange(n), deg)
    assert not np.any(indices == rows)  # no self loops
    pairs = rows * n + indices
    assert len(np.unique(pairs)) == len(pairs)  # no repeated neighbour
    sims = np.einsum("ij,ij->i", x[rows], x[indices])
    for i in range(0, n, 97):  # each list by decreasing cosine
        s = sims[indptr[i]:indptr[i + 1]]
        assert np.all(np.diff(s) <= 1e-6)


def test_diversified_lists_keep_the_nearest_and_prune_redundant_ones():
    # node 0 at angle 0; 1 and 2 almost on top of each other on one side, 3 on the other side
    ang = np.array([0.0, 0.30, 0.32, -0.35, 1.2])
    x = np.stack([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32)
    knn = np.array([[1, 2, 3, 4], [2, 0, 3, 4], [1, 0, 3, 4], [0, 1, 2, 4], [2, 1, 0, 3]])
    indptr, indices = build_search_graph(x, knn, max_degree=4, passes=0, expand=False, threads=1)
    first = indices[indptr[0]:indptr[1]].tolist()
    # 1 is kept (nearest); 2 is pruned (closer to 1 than to 0); 3 is kept (other side)
    assert 1 in first and 3 in first and 2 not in first


def test_walk_recall_against_exact_search(data):
    x, _, q, _, lists, entries = data
    truth, _ = exact_search(x, q, 20)
    found, scores, compared = graph_walk(x, *lists, q, 20, entries=entries, ef=64, threads=1)
    assert recall(found, truth) >= 0.97
    # scores are the exact cosines, best first
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", q, x[found]), atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    # compared: the entry points plus what the walk touched, far below the archive
    assert np.all(compared >= len(entries)) and compared.mean() < 0.5 * len(x)
    # a larger ef finds at least as much
    wide, _, more = graph_walk(x, *lists, q, 20, entries=entries, ef=200, threads=1)
    assert recall(wide, truth) >= recall(found, truth) and more.mean() > compared.mean()
    assert recall(wide, truth) >= 0.99


def test_ef_below_k_returns_the_best_k_of_everything_scored(data):
    x, _, q, _, lists, entries = data
    found, scores, _ = graph_walk(x, *lists, q[:20], 30, entries=entries, ef=10, threads=1)
    assert found.shape == (20, 30) and np.all(found >= 0)
    assert all(len(set(r)) == 30 for r in found)


def test_walk_built_from_a_random_start_without_knn_lists():
    x, lab, q = clustered(2000, n_queries=100, seed=1)
    lists = build_search_graph(x, None, max_degree=16, passes=2, seed=3, threads=1)
    entries = entry_points(x, None, graph=lists)
    truth, _ = exact_search(x, q, 10)
    found, _, _ = graph_walk(x, *lists, q, 10, entries=entries, ef=48, threads=1)
    assert recall(found, truth) >= 0.95


def test_a_local_pass_lifts_the_recall_of_the_knn_lists(data):
    x, lab, q, graph, _, _ = data
    truth, _ = exact_search(x, q, 20)
    cheap = build_search_graph(x, graph, max_degree=16, passes=0, expand=False, threads=1)
    local = build_search_graph(x, graph, max_degree=16, passes=0, expand=False, local_passes=1, threads=1)
    assert not np.array_equal(cheap[1], local[1])
    got = {}
    for name, lists in (("cheap", cheap), ("local", local)):
        entries = entry_points(x, lab, graph=lists)
        found, scores, _ = graph_walk(x, *lists, q, 20, entries=entries, ef=20, threads=1)
        np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", q, x[found]), atol=1e-5)
        got[name] = recall(found, truth)
    assert 1 - got["local"] <= 0.6 * (1 - got["cheap"]), got  # 0.979 -> 0.991 when written: misses cut by half
    two = build_search_graph(x, graph, max_degree=16, passes=0, expand=False, local_passes=1, threads=2)
    for a, b in zip(local, two):  # independent of the threads
        np.testing.assert_array_equal(a, b)


def test_lists_built_in_community_order_are_the_archive_orders_lists(data):
    """``groups``: built over the archive renumbered by community and mapped back, the lists
    are the same (no exact ties in these codes), from kNN lists or a graph, every step."""
    x, lab, _, graph, _, _ = data
    for neighbors, steps in ((graph, {"passes": 1, "local_passes": 1}), (exact_knn(x, 8)[0], {"passes": 0, "expand": False})):
        plain = build_search_graph(x, neighbors, max_degree=12, threads=1, **steps)
        grouped = build_search_graph(x, neighbors, max_degree=12, threads=1, groups=lab, **steps)
        assert not np.all(np.diff(lab) >= 0)  # the archive's order is not the community order: the renumbering is tested
        for a, b in zip(plain, grouped):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="one integer label per code"):
        build_search_graph(x, graph, groups=lab[:-1])


def test_a_walk_over_the_community_layout_answers_as_the_plain_walk(data):
    from graphret.graph.layout import walk_layout

    x, lab, q, _, lists, entries = data
    layout = walk_layout(x, *lists, entries, lab)
    assert np.all(np.diff(lab[layout.order]) >= 0)  # each community contiguous
    np.testing.assert_array_equal(layout.order[layout.rank], np.arange(len(x)))
    np.testing.assert_array_equal(layout.codes, x[layout.order])
    p = 123  # list of layout position p = the list of its row, renumbered, in the same order
    row = layout.order[p]
    np.testing.assert_array_equal(layout.order[layout.indices[layout.indptr[p]:layout.indptr[p + 1]]],
                                  lists[1][lists[0][row]:lists[0][row + 1]])
    exclude = np.arange(len(q)) * 7  # some rows each query must not return
    plain = graph_walk(x, *lists, q, 15, entries=entries, ef=32, exclude=exclude, threads=1)
    laid = graph_walk(x, *lists, q, 15, entries=entries, ef=32, exclude=exclude, threads=1, layout=layout)
    for a, b in zip(plain, laid):  # same rows, cosines and codes compared (no exactly equal cosines here)
        np.testing.assert_array_equal(a, b)
    assert not np.any(laid[0] == exclude[:, None])
    with pytest.raises(InputError, match="layout"):
        graph_walk(x[:100], lists[0][:101], lists[1][:lists[0][100]] % 100, q, 5, entries=entries % 100, layout=layout)
    with pytest.raises(InputError, match="groups"):
        walk_layout(x, *lists, entries, lab[:10])


def test_compact_codes_stand_for_the_codes_within_half_a_step():
    from graphret.graph.compact import LEVELS, compact_codes

    x, _, _ = clustered(500, seed=4)
    x[:, 3] = 0.25  # a dimension with one value
    small = compact_codes(x, np.array([7, 0, 42]), block=64)  # blocks of 64 rows: the last one short
    assert small.codes.dtype == np.uint8 and small.codes.shape == x.shape
    assert small.step[3] == 1.0 and np.all(small.codes[:, 3] == 0)
    assert np.all(small.codes.max(axis=0)[small.step != 1.0] == LEVELS)  # each dimension spans its range
    error = np.abs(small.decoded(np.arange(500)) - x)
    assert np.all(error <= small.step / 2 * (1 + 1e-5))
    assert error.max() > 0  # (not a copy)
    np.testing.assert_array_equal(small.entry_codes, small.codes[[7, 0, 42]])


def test_a_walk_scoring_compact_codes_returns_exact_cosines_at_the_float_walks_recall(data, monkeypatch):
    from graphret.graph import walk as walks
    from graphret.graph.compact import compact_codes
    from graphret.graph.layout import walk_layout
    from graphret.kernels.jit import interpreted

    x, lab, q, _, lists, entries = data
    layout = walk_layout(x, *lists, entries, lab)
    small = walk_layout(x, *lists, entries, lab, compact=True)
    np.testing.assert_array_equal(small.compact.codes, compact_codes(layout.codes, layout.entries).codes)
    exclude = np.arange(len(q)) * 7
    truth, _ = exact_search(x, q, 15, exclude=exclude)
    plain = graph_walk(x, *lists, q, 15, entries=entries, ef=24, exclude=exclude, threads=1, layout=layout)
    rows, cos, compared = graph_walk(x, *lists, q, 15, entries=entries, ef=24, exclude=exclude, threads=1, layout=small)
    np.testing.assert_allclose(cos, np.einsum("qd,qkd->qk", q, x[rows]), atol=1e-6)  # exact cosines of the rows
    assert np.all(np.diff(cos, axis=1) <= 0) and not np.any(rows == exclude[:, None])
    assert all(len(set(r)) == 15 for r in rows)
    assert abs(recall(rows, truth) - recall(plain[0], truth)) < 0.01 and recall(rows, truth) > 0.9
    blind = small._replace(compact=small.compact._replace(codes=np.zeros_like(small.compact.codes),
                                                           entry_codes=np.zeros_like(small.compact.entry_codes)))
    steered = graph_walk(x, *lists, q, 15, entries=entries, ef=24, exclude=exclude, threads=1, layout=blind)
    assert recall(steered[0], truth) < 0.5  # the walk is steered by the one-byte codes (all equal here: it stops at once)
    two = graph_walk(x, *lists, q, 15, entries=entries, ef=24, exclude=exclude, threads=2, layout=small)
    for a, b in zip((rows, cos, compared), two):
        np.testing.assert_array_equal(a, b)
    ordered = lab[small.order]  # each group's first position, then n: the blocks a walk prefetches
    np.testing.assert_array_equal(small.starts, np.r_[0, np.flatnonzero(np.diff(ordered)) + 1, len(x)])
    monkeypatch.setattr(walks, "PREFETCH_GROUP_ROWS", 0)  # no group prefetched: the same answers (a hint to the caches)
    for a, b in zip((rows, cos, compared), graph_walk(x, *lists, q, 15, entries=entries, ef=24, exclude=exclude, layout=small)):
        np.testing.assert_array_equal(a, b)
    with interpreted():  # one query as Python (graphret.kernels.jit), as the compiled walk
        python = graph_walk(x, *lists, q[:2], 15, entries=entries, ef=24, exclude=exclude[:2], layout=small)
    np.testing.assert_array_equal(python[0], rows[:2])
    np.testing.assert_allclose(python[1], cos[:2], atol=1e-6)


def test_exclude_never_returns_the_query_row(data):
    x, _, _, _, lists, entries = data
    rows = np.arange(0, 3000, 50)
    found, _, _ = graph_walk(x, *lists, x[rows], 10, entries=entries, ef=32, exclude=rows, threads=1)
    assert not np.any(found == rows[:, None])
    truth, _ = exact_search(x, x[rows], 10, exclude=rows)
    assert recall(found, truth) >= 0.95


def test_allowed_filter_returns_only_allowed_and_always_k(data):
    x, lab, q, _, lists, entries = data
    allowed = lab % 4 == 0  # about a quarter of the archive
    found, scores, _ = graph_walk(x, *lists, q, 25, entries=entries, ef=64, allowed=allowed, threads=1)
    assert found.shape == (len(q), 25) and np.all(allowed[found])
    assert all(len(set(r)) == 25 for r in found)
    rows = np.flatnonzero(allowed)
    truth = rows[exact_search(x[rows], q, 25)[0]]
    assert recall(found, truth) >= 0.9


def test_a_tiny_filter_is_scanned_exactly(data):
    x, _, q, _, lists, entries = data
    allowed = np.zeros(len(x), bool)
    allowed[[5, 17, 400, 1999, 2500]] = True
    found, scores, compared = graph_walk(x, *lists, q[:3], 5, entries=entries, allowed=allowed, threads=1)
    assert set(found[0]) == {5, 17, 400, 1999, 2500}
    assert np.all(compared == 5)
    with pytest.raises(KTooLarge):
        graph_walk(x, *lists, q[:3], 6, entries=entries, allowed=allowed)


def test_k_results_even_when_the_graph_falls_apart():
    # two far clusters with no edge between them; the only entry point sits in the first
    x, _, _ = clustered(400, clusters=2, spread=0.05, seed=4)
    lab = (x @ x[0] > 0.5).astype(int)
    a, b = np.flatnonzero(lab == 1), np.flatnonzero(lab == 0)
    knn = np.full((400, 5), -1)
    for group in (a, b):
        idx, _ = exact_search(x[group], x[group], 5, exclude=np.arange(len(group)))
        knn[group] = group[idx]
    lists = build_search_graph(x, knn, max_degree=8, passes=0, threads=1)
    q = x[b[:3]]
    found, _, compared = graph_walk(x, *lists, q, 5, entries=np.array([a[0]]), ef=8,
                                    allowed=np.isin(np.arange(400), b), threads=1)
    assert np.all(np.isin(found, b)) and found.shape == (3, 5)
    truth, _ = exact_search(x[b], q, 5)
    assert recall(found, b[truth]) == 1.0
    # entry_points adds a medoid for the component that had none
    ent = entry_points(x, None, graph=lists)
    assert len(ent) == 2 and lab[ent[0]] != lab[ent[1]]


def test_walk_is_deterministic_and_independent_of_threads(data):
    x, _, q, _, lists, entries = data
    one = graph_walk(x, *lists, q, 15, entries=entries, ef=40, threads=1)
    again = graph_walk(x, *lists, q, 15, entries=entries, ef=40, threads=1)
    two = graph_walk(x, *lists, q, 15, entries=entries, ef=40, threads=2)
    for a, b, c in zip(one, again, two):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    x2, _, _ = clustered(800, seed=9)
    g = graph_from_knn(*exact_knn(x2, 6))
    l1 = build_search_graph(x2, g, max_degree=8, threads=1)
    l2 = build_search_graph(x2, g, max_degree=8, threads=2)
    for a, b in zip(l1, l2):
        np.testing.assert_array_equal(a, b)


def test_entry_points_are_the_community_medoids():
    x, lab, _ = clustered(500, clusters=5, seed=2)
    ent = entry_points(x, lab)
    assert len(ent) == 5
    for c, e in enumerate(ent):
        members = np.flatnonzero(lab == c)
        total = x[members].sum(axis=0)
        assert lab[e] == c and e == members[np.argmax(x[members] @ total)]


def test_bad_input_is_one_line_naming_the_parameter(data):
    x, _, q, graph, (indptr, indices), entries = data
    with pytest.raises(InputError) as err:
        graph_walk(x, indptr[:-1], indices, q, 5, entries=entries)
    assert "build_search_graph" in str(err.value)
    with pytest.raises(InputError) as err:
        graph_walk(x, indptr, indices, q, 5, entries=entries, ef=0)
    assert err.value.param == "ef"
    with pytest.raises(InputError) as err:
        graph_walk(x, indptr, indices, q, 5, entries=np.array([len(x)]))
    assert err.value.param == "entries"
    with pytest.raises(InputError):
        graph_walk(x, indptr, indices, q[:, :3], 5, entries=entries)
    with pytest.raises(InputError) as err:
        graph_walk(x, indptr, indices, q, 5, entries=entries, allowed=np.ones(7, bool))
    assert err.value.param == "allowed"
    with pytest.raises(InputError) as err:
        build_search_graph(x, graph, max_degree=0)
    assert err.value.param == "max_degree"
    with pytest.raises(InputError) as err:
        build_search_graph(x, graph, alpha=0.5)
    assert err.value.param == "alpha"
    with pytest.raises(InputError):
        neighbor_lists(np.array([[1, 5000]]), 1)
    with pytest.raises(InputError):
        neighbor_lists(sp.eye(3, format="csr"), 4)


@pytest.mark.slow  # walk lists over 59k real MedNIST codes
def test_walk_on_mednist_pixel_codes(shared_data):
    from graphret.data import open_source
    from graphret.encoders.pixels import PixelPCAEncoder

    path = shared_data / "mednist" / "mednist_64.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    images = open_source(str(path), seed=0)
    rows = np.random.default_rng(0).choice(len(images), 3000, replace=False)
    encoder = PixelPCAEncoder(dim=64).fit(images, rows[:2000])
    codes = encoder.encode(images, rows).spaces["default"]
    archive, queries = codes[:2600], codes[2600:]
    graph = graph_from_knn(*exact_knn(archive, 10))
    lists = build_search_graph(archive, graph, threads=1)
    entries = entry_points(archive, None, graph=lists)
    truth, _ = exact_search(archive, queries, 50)
    found, _, compared = graph_walk(archive, *lists, queries, 50, entries=entries, ef=64, threads=1)
    assert recall(found, truth) >= 0.95
    assert compared.mean() < 0.4 * len(archive)
