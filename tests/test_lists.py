"""Bounded probe lists (graphret.communities.lists): sizes, nesting in communities, the dendrogram
cut, merging, determinism and probing with them."""

import numpy as np
import pytest

from graphret.communities.cnm import cnm
from graphret.communities.lists import bounded_lists, default_max_size, dendrogram_cut, list_sizes
from graphret.errors import InputError
from graphret.graph.build import graph_from_knn
from graphret.graph.knn import exact_knn, exact_search


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((8, 12))
    lab = rng.integers(0, 8, 1500)
    x = centres[lab] / np.linalg.norm(centres[lab], axis=1, keepdims=True) + 0.5 * rng.standard_normal((1500, 12)) / np.sqrt(12)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    graph = graph_from_knn(*exact_knn(x, 8))
    return x, graph


def test_dendrogram_cut_by_hand():
    # 5 items: (0,1)->5 [2], (2,5)->6 [3], (3,4)->7 [2], (6,7)->8 [5]
    a = np.array([0, 2, 3, 6])
    b = np.array([1, 5, 4, 7])
    cut = dendrogram_cut(5, a, b, max_size=3)
    assert cut[0] == cut[1] == cut[2] and cut[3] == cut[4] and cut[0] != cut[3]
    cut2 = dendrogram_cut(5, a, b, max_size=2)
    assert cut2[0] == cut2[1] and cut2[3] == cut2[4] and len(set(cut2.tolist())) == 3
    assert len(set(dendrogram_cut(5, a, b, max_size=5).tolist())) == 1
    assert len(set(dendrogram_cut(5, a, b, max_size=1).tolist())) == 5


@pytest.mark.parametrize("use_dendrogram", [False, True])
def test_lists_are_bounded_and_nested_in_communities(world, use_dendrogram):
    x, graph = world
    res = cnm(graph)
    dendro = (res.dendrogram["a"], res.dendrogram["b"]) if use_dendrogram else None
    lists = bounded_lists(res.membership, max_size=100, graph=graph, codes=x, dendrogram=dendro)
    sizes = list_sizes(lists)
    assert sizes.max() <= 100 and sizes.sum() == len(x)
    assert sizes.max() < np.bincount(res.membership).max()
    for l in range(len(sizes)):  # every list inside one community
        assert len(np.unique(res.membership[lists == l])) == 1
    # merging: few lists below the merge threshold remain
    assert np.mean(sizes < 25) < 0.5
    again = bounded_lists(res.membership, max_size=100, graph=graph, codes=x, dendrogram=dendro)
    np.testing.assert_array_equal(lists, again)


def test_without_a_graph_codes_split_the_communities(world):
    x, _ = world
    lists = bounded_lists(np.zeros(len(x), np.int64), max_size=200, codes=x)
    sizes = list_sizes(lists)
    assert sizes.max() <= 200 and len(sizes) == int(np.ceil(len(x) / 200))
    # k-means cells: items share a list with their nearest neighbour more often than chance
    idx, _ = exact_search(x, x[:200], 1, exclude=np.arange(200))
    assert np.mean(lists[:200] == lists[idx[:, 0]]) > 0.5
    chunks = bounded_lists(np.zeros(10, np.int64), max_size=3)
    assert list_sizes(chunks).max() <= 3 and list_sizes(chunks).sum() == 10


def test_probe_on_bounded_lists_scans_less_for_the_same_recall(world):
    from graphret.query.index import RetrievalIndex
    from graphret.query.probe import probe_search

    x, graph = world
    # an uneven partition, as plain CNM gives on real codes: half the clusters in one community
    membership = cnm(graph).membership
    membership = np.where(membership < 4, 0, membership)
    q = x[:100]
    truth, _ = exact_search(x, q, 10, exclude=np.arange(100))
    lists = bounded_lists(membership, graph=graph, codes=x)
    assert list_sizes(lists).max() <= default_max_size(len(x))
    out = {}
    for name, m in (("communities", membership), ("lists", lists)):
        index = RetrievalIndex(x, membership=m)
        for P in (1, 2, 4, 8, 16, 32):
            found, _, frac = probe_search(index, q, 10, n_probe=P, exclude=np.arange(100))
            rec = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(found, truth)])
            if rec >= 0.95:
                out[name] = float(frac.mean())
                break
    assert out["lists"] < out["communities"]


def test_bad_list_input(world):
    x, graph = world
    with pytest.raises(InputError) as err:
        bounded_lists(np.zeros(len(x), np.int64), max_size=0)
    assert err.value.param == "max_size"
    with pytest.raises(InputError) as err:
        bounded_lists(np.zeros(5, np.int64), graph=graph)
    assert err.value.param == "graph"
    with pytest.raises(InputError):
        bounded_lists(np.zeros(len(x)))
    with pytest.raises(InputError):
        dendrogram_cut(3, np.array([0, 1, 2]), np.array([1, 2, 3]), max_size=2)
