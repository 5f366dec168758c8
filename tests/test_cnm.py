"""graphret's CNM against networkx and igraph, dendrogram consistency, cuts, bad input."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from graphret.communities import (
    cnm,
    haq_modularity,
    newman_modularity,
    replay_membership,
)
from graphret.communities.leiden import to_igraph
from graphret.errors import InputError


def random_weighted_graph(n, m, seed):
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, m)
    j = rng.integers(0, n, m)
    keep = i != j
    w = rng.random(keep.sum()) + 0.01  # random float weights: no ties in the gains
    A = sp.coo_matrix((w, (i[keep], j[keep])), shape=(n, n)).tocsr()
    return A.maximum(A.T).tocsr()


def karate_weighted(seed=0):
    H = nx.karate_club_graph()
    rng = np.random.default_rng(seed)
    n = H.number_of_nodes()
    rows, cols, w = [], [], []
    for u, v in H.edges():
        x = float(rng.random() + 0.1)
        rows += [u, v]
        cols += [v, u]
        w += [x, x]
    return sp.csr_matrix((w, (rows, cols)), shape=(n, n))


def knn_graph_of_generated_codes(n=600, seed=0):
    from graphret.graph.build import knn_graph

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, 16))
    x = centres[rng.integers(0, 8, n)] + 0.9 * rng.standard_normal((n, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return knn_graph(x.astype(np.float32), 8)


def to_nx(A):
    coo = sp.triu(A, k=1).tocoo()
    H = nx.Graph()
    H.add_nodes_from(range(A.shape[0]))
    H.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.astype(float).tolist()))
    return H


def as_sets(membership):
    return {frozenset(np.nonzero(membership == c)[0].tolist()) for c in np.unique(membership)}


def merge_sets(a, b, n):
    comp = {}
    out = []
    for t, (x, y) in enumerate(zip(a, b)):
        sx = comp.get(x, frozenset([x]))
        sy = comp.get(y, frozenset([y]))
        comp[n + t] = sx | sy
        out.append((sx, sy))
    return out


def gain_of(A, X, Y, resolution=1.0):
    X, Y = sorted(X), sorted(Y)
    A = sp.csr_matrix(A, dtype=np.float64)
    deg = np.asarray(A.sum(axis=1)).ravel()
    W = A.sum() / 2
    return A[X][:, Y].sum() / W - resolution * deg[X].sum() * deg[Y].sum() / (2 * W * W)


# ------------------------------------------------------------------ networkx: the exact greedy path
GRAPHS = [("karate", lambda: karate_weighted(0)), ("karate-1", lambda: karate_weighted(1))] + [
    (f"random-{s}", (lambda s=s: random_weighted_graph(80, 300, s))) for s in range(4)]


@pytest.mark.parametrize("name,make", GRAPHS, ids=[g[0] for g in GRAPHS])
@pytest.mark.parametrize("resolution", [1.0, 0.5, 2.0])
def test_newman_cnm_agrees_with_networkx(name, make, resolution):
    A = make()
    res = cnm(A, resolution=resolution)
    H = to_nx(A)
    comms = nx.community.greedy_modularity_communities(H, weight="weight", resolution=resolution)
    q_nx = nx.community.modularity(H, comms, weight="weight", resolution=resolution)
    assert res.quality == pytest.approx(q_nx, abs=1e-9)
    assert as_sets(res.membership) == {frozenset(c) for c in comms}


def test_newman_cnm_agrees_with_networkx_on_knn_graph():
    A = knn_graph_of_generated_codes(300)
    res = cnm(A)
    H = to_nx(A)
    comms = nx.community.greedy_modularity_communities(H, weight="weight")
    assert res.quality == pytest.approx(nx.community.modularity(H, comms, weight="weight"), abs=1e-9)
    assert as_sets(res.membership) == {frozenset(c) for c in comms}


# ------------------------------------------------------------------ igraph community_fastgreedy
def igraph_check(A):
    """Compare with igraph's fastgreedy.  Returns True when the modularities agree to 1e-6.
    Where they do not, prove that igraph left the greedy path: at the first merge where the two
    dendrograms differ, graphret's merge has a strictly larger exact gain than igraph's."""
    n = A.shape[0]
    res = cnm(A)
    g = to_igraph(A)
    dend = g.community_fastgreedy(weights="weight")
    q_ig = g.modularity(dend.as_clustering().membership, weights="weight")
    if abs(res.quality - q_ig) < 1e-6:
        return True
    ours = merge_sets(res.dendrogram["a"], res.dendrogram["b"], n)
    theirs = merge_sets(dend.merges[:, 0] if isinstance(dend.merges, np.ndarray) else
                        [m[0] for m in dend.merges],
                        dend.merges[:, 1] if isinstance(dend.merges, np.ndarray) else
                        [m[1] for m in dend.merges], n)
    t = next(t for t, (p, q) in enumerate(zip(ours, theirs)) if {p[0], p[1]} != {q[0], q[1]})
    g_ours = gain_of(A, *ours[t])
    g_theirs = gain_of(A, *theirs[t])
    assert g_ours == pytest.approx(res.dendrogram["gain"][t], abs=1e-12)
    assert g_ours > g_theirs + 1e-9, (t, g_ours, g_theirs)
    return False


def test_newman_cnm_matches_igraph_fastgreedy_random_graphs():
    agree = [igraph_check(random_weighted_graph(150, 600, s)) for s in range(12)]
    # igraph's fastgreedy occasionally makes a merge that is not the largest gain available
    # (proved inside igraph_check); everywhere else the modularity is the same to 1e-6
    assert sum(agree) >= 9


def test_newman_cnm_matches_igraph_fastgreedy_karate_and_knn():
    assert igraph_check(karate_weighted(0))
    igraph_check(knn_graph_of_generated_codes(600))  # equal, or igraph proved off the greedy path


# ------------------------------------------------------------------ dendrogram
@pytest.mark.parametrize("quality", ["newman", "haq"])
def test_dendrogram_replay_and_recorded_qualities(quality):
    A = random_weighted_graph(120, 500, 7)
    n = A.shape[0]
    res = cnm(A, quality=quality, resolution=1.2)
    d = res.dendrogram
    assert set(d) == {"step", "a", "b", "gain", "quality_after", "size_after"}
    assert np.all(d["a"] < d["b"]) and np.all(d["b"] < n + d["step"])
    assert np.array_equal(d["step"], np.arange(res.n_merges))
    score = newman_modularity if quality == "newman" else haq_modularity
    for t in [0, 1, 5, res.best_step - 1, res.best_step, res.n_merges - 1, res.n_merges // 2]:
        m = replay_membership(n, d["a"], d["b"], t + 1)
        assert d["quality_after"][t] == pytest.approx(score(A, m, resolution=1.2), abs=1e-9)
        assert np.bincount(m).max() >= d["size_after"][t]
    assert res.initial_quality == pytest.approx(score(A, np.arange(n), resolution=1.2), abs=1e-12)
    np.testing.assert_allclose(np.diff(np.r_[res.initial_quality, d["quality_after"]]), d["gain"], atol=1e-12)
    # the returned partition is the best cut, and replaying reproduces it
    assert res.quality == pytest.approx(max(res.initial_quality, d["quality_after"].max()))
    np.testing.assert_array_equal(res.membership, replay_membership(n, d["a"], d["b"], res.best_step))
    assert res.quality == pytest.approx(score(A, res.membership, resolution=1.2), abs=1e-9)
    table = res.dendrogram_table()
    assert table.num_rows == res.n_merges and "quality_after" in table.column_names


def test_cut_gives_exactly_n_communities():
    A = random_weighted_graph(100, 400, 3)
    res = cnm(A)
    for k in [res.min_communities, 2, 5, 17, 60, 100]:
        m = res.cut(k)
        assert np.unique(m).size == k
        assert res.quality_at(k) == pytest.approx(newman_modularity(A, m), abs=1e-9)
    np.testing.assert_array_equal(res.cut(res.n_communities), res.membership)
    with pytest.raises(InputError, match="cannot cut"):
        res.cut(0)
    with pytest.raises(InputError, match="cannot cut"):
        res.cut(101)


def test_membership_renumbered_by_size_then_smallest_member():
    res = cnm(karate_weighted(0))
    m = res.membership
    sizes = np.bincount(m)
    assert np.all(np.diff(sizes) <= 0)
    firsts = [np.nonzero(m == c)[0][0] for c in range(sizes.size)]
    for c in range(sizes.size - 1):
        if sizes[c] == sizes[c + 1]:
            assert firsts[c] < firsts[c + 1]


def test_deterministic_including_ties():
    # unit weights on a ring of cliques: many exactly tied gains
    H = nx.ring_of_cliques(6, 4)
    A = nx.to_scipy_sparse_array(H, format="csr").astype(np.float64)
    A = sp.csr_matrix(A)
    r1, r2 = cnm(A), cnm(A)
    np.testing.assert_array_equal(r1.membership, r2.membership)
    for key in r1.dendrogram:
        np.testing.assert_array_equal(r1.dendrogram[key], r2.dendrogram[key])
    assert r1.n_communities == 6  # the cliques


def test_isolated_nodes_and_components():
    A = random_weighted_graph(30, 90, 1).tolil()
    big = sp.lil_matrix((40, 40))
    big[:30, :30] = A
    big[30, 31] = big[31, 30] = 0.5  # a separate pair; 32..39 isolated
    G = big.tocsr()
    from scipy.sparse.csgraph import connected_components

    ncomp = connected_components(G, directed=False)[0]
    res = cnm(G)
    assert res.min_communities == ncomp
    assert res.n_merges == 40 - ncomp
    m = res.membership
    for i in range(32, 40):
        assert np.sum(m == m[i]) == 1
    assert m[30] == m[31]
    assert np.unique(res.cut(ncomp)).size == ncomp


@pytest.mark.parametrize("heuristic", ["size", "degree"])
def test_heuristic_and_refinement(heuristic):
    A = knn_graph_of_generated_codes(600)
    plain = cnm(A)
    h = cnm(A, heuristic=heuristic)
    hr = cnm(A, heuristic=heuristic, refine=True)
    # gains and qualities stay the true Newman ones
    assert h.quality == pytest.approx(newman_modularity(A, h.membership), abs=1e-9)
    assert hr.quality == pytest.approx(newman_modularity(A, hr.membership), abs=1e-9)
    assert hr.quality >= h.quality - 1e-12
    assert hr.meta["dendrogram_quality"] == pytest.approx(h.quality)
    assert plain.heuristic is None and h.heuristic == heuristic
    # refinement works with the Haq quality as well
    hq = cnm(A, quality="haq", heuristic=heuristic, refine=True)
    assert hq.quality == pytest.approx(haq_modularity(A, hq.membership), abs=1e-9)
    assert hq.quality >= hq.meta["dendrogram_quality"] - 1e-12


@pytest.mark.parametrize("quality", ["newman", "haq"])
def test_multilevel_refinement(quality):
    A = knn_graph_of_generated_codes(800, seed=2)
    score = newman_modularity if quality == "newman" else haq_modularity
    plain = cnm(A, quality=quality, heuristic="size")
    ml = cnm(A, quality=quality, heuristic="size", refine="multilevel")
    assert ml.quality == pytest.approx(score(A, ml.membership), abs=1e-9)
    assert ml.quality >= ml.meta["refined_quality"] - 1e-12 >= plain.quality - 1e-12
    assert "multilevel_quality" in ml.meta
    # the dendrogram is still the agglomeration's
    np.testing.assert_array_equal(ml.dendrogram["a"], plain.dendrogram["a"])
    assert np.unique(ml.cut(10)).size == 10
    np.testing.assert_array_equal(ml.membership, cnm(A, quality=quality, heuristic="size",
                                                     refine="multilevel").membership)


def test_haq_cnm_quality_is_haq():
    A = knn_graph_of_generated_codes(400)
    res = cnm(A, quality="haq")
    assert res.quality == pytest.approx(haq_modularity(A, res.membership), abs=1e-9)
    # its merges are greedy for Haq's quality, so its best cut scores at least as well under Haq
    # as the Newman run's partition does in most cases; at minimum both are valid partitions
    newman_part = cnm(A).membership
    assert res.quality > haq_modularity(A, np.arange(A.shape[0]))
    assert haq_modularity(A, newman_part) > 0


def test_bad_input_refused():
    A = karate_weighted(0)
    with pytest.raises(InputError, match="resolution"):
        cnm(A, resolution=0)
    with pytest.raises(InputError, match="resolution"):
        cnm(A, resolution=-2)
    with pytest.raises(InputError, match="quality"):
        cnm(A, quality="louvain")
    with pytest.raises(InputError, match="heuristic"):
        cnm(A, heuristic="fast")
    with pytest.raises(InputError, match="refine"):
        cnm(A, refine="louvain")
    neg = A.copy()
    neg.data[0] = -0.5
    with pytest.raises(InputError):
        cnm(neg)
    nan = A.copy()
    nan.data[:] = np.nan
    with pytest.raises(InputError, match="NaN"):
        cnm(nan)
    with pytest.raises(InputError, match="negative"):
        cnm(sp.csr_matrix(-A.toarray()))
    with pytest.raises(InputError, match="symmetric"):
        cnm(sp.triu(A).tocsr())
    with pytest.raises(InputError, match="no edges"):
        cnm(sp.csr_matrix((5, 5)))
    with pytest.raises(InputError, match="self-loops"):
        cnm(A + sp.eye(A.shape[0]))
    with pytest.raises(InputError, match="sparse"):
        cnm([[0, 1], [1, 0]])
    with pytest.raises(InputError, match="square"):
        cnm(sp.csr_matrix((3, 4)))
