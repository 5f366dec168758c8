"""graphret.analysis.summary and central on a hand graph: two triangles joined by one edge."""

import numpy as np
import pytest
import scipy.sparse as sp

from graphret.analysis.central import (
    central_items,
    community_edges,
    community_graph,
    internal_degree,
    neighbouring_communities,
)
from graphret.analysis.summary import community_stats, partition_summary
from graphret.errors import InputError

# triangle A = {0, 1, 2} with weights 0-1: 1.0, 0-2: 0.8, 1-2: 0.6; triangle B = {3, 4, 5} all 1.0;
# the bridge 2-3 has weight 0.5.
EDGES = [(0, 1, 1.0), (0, 2, 0.8), (1, 2, 0.6), (3, 4, 1.0), (3, 5, 1.0), (4, 5, 1.0), (2, 3, 0.5)]
MEMBERSHIP = np.array([0, 0, 0, 1, 1, 1])


def hand_graph():
    i, j, w = zip(*EDGES)
    g = sp.coo_matrix((w + w, (i + j, j + i)), shape=(6, 6)).tocsr()
    return g


def test_community_stats_by_hand():
    stats = community_stats(hand_graph(), MEMBERSHIP).set_index("community")
    # A: e = 2.4, vol = 1.8 + 1.6 + 1.9 = 5.3; B: e = 3, vol = 2.5 + 2 + 2 = 6.5; 2W = 11.8
    assert stats.loc[0, "internal_weight"] == pytest.approx(2.4)
    assert stats.loc[0, "volume"] == pytest.approx(5.3)
    assert stats.loc[1, "volume"] == pytest.approx(6.5)
    assert stats.loc[0, "cut"] == pytest.approx(0.5)
    # conductance = cut / min(vol, 2W - vol) = 0.5 / min(5.3, 6.5) for both
    assert stats.loc[0, "conductance"] == pytest.approx(0.5 / 5.3)
    assert stats.loc[1, "conductance"] == pytest.approx(0.5 / 5.3)
    assert stats.loc[0, "mean_similarity"] == pytest.approx(2.4 / 3)
    assert stats.loc[1, "density"] == pytest.approx(1.0)


def test_partition_summary_by_hand():
    s = partition_summary(hand_graph(), MEMBERSHIP)
    W = 5.9
    newman = (2.4 / W - (5.3 / (2 * W)) ** 2) + (3 / W - (6.5 / (2 * W)) ** 2)
    # Haq's factor L_c = 1 + 2 e_c / (n_c (n_c - 1)): 1 + 4.8/6 = 1.8 for A, 2 for B
    haq = 1.8 * (2.4 / W - (5.3 / (2 * W)) ** 2) + 2.0 * (3 / W - (6.5 / (2 * W)) ** 2)
    assert s["newman_modularity"] == pytest.approx(newman)
    assert s["haq_modularity"] == pytest.approx(haq)
    assert s["coverage"] == pytest.approx(5.4 / 5.9)
    assert s["communities"] == 2 and s["singletons"] == 0 and s["size_max"] == 3
    assert s["conductance_mean"] == pytest.approx(0.5 / 5.3)


def test_one_community_has_zero_conductance_and_full_coverage():
    s = partition_summary(hand_graph(), np.zeros(6, int))
    assert s["conductance_mean"] == 0.0 and s["coverage"] == pytest.approx(1.0)


def test_central_items_rank_by_inside_degree():
    g = hand_graph()
    np.testing.assert_allclose(internal_degree(g, MEMBERSHIP), [1.8, 1.6, 1.4, 2.0, 2.0, 2.0])
    top = central_items(g, MEMBERSHIP, community=0, top=2)
    assert top["node"].tolist() == [0, 1] and top["rank"].tolist() == [1, 2]
    every = central_items(g, MEMBERSHIP, top=1)
    assert every["node"].tolist() == [0, 3]  # ties broken by the smaller node
    assert every["degree"].tolist() == pytest.approx([1.8, 2.5])


def test_community_graph_and_neighbours():
    g = hand_graph()
    C = community_graph(g, MEMBERSHIP).toarray()
    np.testing.assert_allclose(C, [[2.4, 0.5], [0.5, 3.0]])
    edges = community_edges(g, MEMBERSHIP)
    assert edges.to_dict(orient="records") == [{"source": 0, "target": 1, "weight": pytest.approx(0.5)}]
    nb = neighbouring_communities(g, MEMBERSHIP, 1)
    assert nb["neighbour"].tolist() == [0] and nb["share"].tolist() == [1.0] and nb["neighbour_size"].tolist() == [3]
    with pytest.raises(InputError, match="no community 7"):
        neighbouring_communities(g, MEMBERSHIP, 7)
