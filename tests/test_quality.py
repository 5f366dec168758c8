"""Quality functions: hand-computed examples and agreement with igraph / networkx."""

import igraph as ig
import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from graphret.communities.quality import (
    haq_modularity,
    haq_term,
    newman_modularity,
    newman_term,
    partition_quality,
    quality_function,
    renumber_membership,
)
from graphret.errors import InputError


def hand_graph():
    # 0 -1- 1 -0.5- 2 -1- 3
    rows = [0, 1, 1, 2, 2, 3]
    cols = [1, 0, 2, 1, 3, 2]
    w = [1.0, 1.0, 0.5, 0.5, 1.0, 1.0]
    return sp.csr_matrix((w, (rows, cols)), shape=(4, 4))


def test_newman_hand_example():
    G = hand_graph()
    # W = 2.5; e = [1, 1]; a = [2.5, 2.5]; term = 1/2.5 - (2.5/5)^2 = 0.15
    assert newman_modularity(G, np.array([0, 0, 1, 1])) == pytest.approx(0.3, abs=1e-12)
    # resolution 2: 0.4 - 2 * 0.25 = -0.1 per community
    assert newman_modularity(G, np.array([0, 0, 1, 1]), resolution=2.0) == pytest.approx(-0.2, abs=1e-12)
    # singletons: -(1 + 2.25 + 2.25 + 1) / 25
    assert newman_modularity(G, np.arange(4)) == pytest.approx(-0.26, abs=1e-12)
    # one community: 2.5/2.5 - 1 = 0
    assert newman_modularity(G, np.zeros(4, int)) == pytest.approx(0.0, abs=1e-12)


def test_haq_hand_example():
    G = hand_graph()
    # L_c = 1 + 2 * 1 / (2 * 1 * 1) = 2 -> 2 * 0.15 per community
    assert haq_modularity(G, np.array([0, 0, 1, 1])) == pytest.approx(0.6, abs=1e-12)
    # w_max = 2: L_c = 1.5
    assert haq_modularity(G, np.array([0, 0, 1, 1]), w_max=2.0) == pytest.approx(0.45, abs=1e-12)
    # singletons: L = 1, same as Newman
    assert haq_modularity(G, np.arange(4)) == pytest.approx(-0.26, abs=1e-12)
    # one community of 4: e = 2.5, L = 1 + 5 / 12, base term 0
    assert haq_modularity(G, np.zeros(4, int)) == pytest.approx(0.0, abs=1e-12)
    # {0,1,2} and {3}: e = 1.5, a = 4, n = 3 -> L = 1 + 3/6 = 1.5; base 1.5/2.5 - (4/5)^2 = -0.04
    # {3}: -(1/5)^2 = -0.04
    assert haq_modularity(G, np.array([0, 0, 0, 1])) == pytest.approx(1.5 * -0.04 - 0.04, abs=1e-12)


def test_terms_are_the_single_definition():
    assert quality_function("newman") is newman_term
    assert quality_function("haq") is haq_term
    # merge gain from terms equals the closed-form Newman gain w/W - g a_i a_j / (2 W^2)
    W, g = 7.0, 1.3
    gain = newman_term(0.5 + 0.2 + 0.9, 3.0 + 4.0, 5, W, g, 1.0) - newman_term(0.5, 3.0, 2, W, g, 1.0) \
        - newman_term(0.2, 4.0, 3, W, g, 1.0)
    assert gain == pytest.approx(0.9 / W - g * 3.0 * 4.0 / (2 * W * W), abs=1e-14)
    with pytest.raises(InputError):
        quality_function("louvain")


@pytest.mark.parametrize("resolution", [0.5, 1.0, 2.0])
def test_newman_matches_igraph_and_networkx(resolution):
    rng = np.random.default_rng(3)
    n = 60
    A = sp.random(n, n, density=0.1, random_state=4, data_rvs=lambda s: rng.random(s) + 0.05)
    A = sp.triu(A, k=1)
    A = (A + A.T).tocsr()
    membership = rng.integers(0, 5, n)
    coo = sp.triu(A, k=1).tocoo()
    g = ig.Graph(n=n, edges=list(zip(coo.row.tolist(), coo.col.tolist())))
    g.es["weight"] = coo.data.tolist()
    expected = g.modularity(membership.tolist(), weights="weight", resolution=resolution)
    assert newman_modularity(A, membership, resolution=resolution) == pytest.approx(expected, abs=1e-12)
    H = nx.Graph()
    H.add_nodes_from(range(n))
    H.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist()))
    comms = [set(np.nonzero(membership == c)[0].tolist()) for c in np.unique(membership)]
    assert newman_modularity(A, membership, resolution=resolution) == pytest.approx(
        nx.community.modularity(H, comms, weight="weight", resolution=resolution), abs=1e-12)


def test_labels_need_not_be_dense():
    G = hand_graph()
    assert newman_modularity(G, np.array([7, 7, -3, -3])) == pytest.approx(0.3)
    assert partition_quality(G, np.array([7, 7, -3, -3]), quality="haq") == pytest.approx(0.6)


def test_renumber_membership():
    labels = np.array([5, 5, 2, 9, 9, 9, 2, 7])
    # sizes: 9 -> 3, 5 -> 2 (first at 0), 2 -> 2 (first at 2), 7 -> 1
    assert renumber_membership(labels).tolist() == [1, 1, 2, 0, 0, 0, 2, 3]


def test_bad_input():
    G = hand_graph()
    with pytest.raises(InputError, match="resolution"):
        newman_modularity(G, np.zeros(4, int), resolution=0)
    with pytest.raises(InputError, match="resolution"):
        newman_modularity(G, np.zeros(4, int), resolution=-1.0)
    with pytest.raises(InputError, match="one label per node"):
        newman_modularity(G, np.zeros(3, int))
    with pytest.raises(InputError, match="w_max"):
        haq_modularity(G, np.zeros(4, int), w_max=0)
    neg = G.copy()
    neg.data[:] = -1
    with pytest.raises(InputError, match="negative"):
        newman_modularity(neg, np.zeros(4, int))
    with pytest.raises(InputError, match="no edges"):
        newman_modularity(sp.csr_matrix((4, 4)), np.zeros(4, int))
    asym = sp.csr_matrix(([1.0], ([0], [1])), shape=(2, 2))
    with pytest.raises(InputError, match="not symmetric"):
        newman_modularity(asym, np.zeros(2, int))
    loop = sp.csr_matrix(np.array([[1.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(InputError, match="self-loops"):
        newman_modularity(loop, np.zeros(2, int))
    nan = G.copy()
    nan.data[0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        newman_modularity(nan, np.zeros(4, int))


@pytest.mark.parametrize("top", [40, 10**9])
def test_dense_labels_renumber_as_np_unique_does(top):
    """graphret.communities.partition.dense_labels (counting for small ids, np.unique for large
    ones) numbers the communities in the order of their ids, -1 kept."""
    from graphret.communities.partition import dense_labels

    rng = np.random.default_rng(0)
    labels = rng.choice(np.r_[-1, rng.integers(0, top, 7)], 100)
    dense, ids = dense_labels(labels)
    expected_ids, inverse = np.unique(labels[labels >= 0], return_inverse=True)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(dense[labels >= 0], inverse)
    assert np.all(dense[labels < 0] == -1)
    assert dense_labels(np.full(3, -1))[1].size == 0
