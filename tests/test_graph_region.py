"""Region growing on the graph (graphret.query.graph_region): Haq's Algorithm 1 gain order on
hand-made graphs and against a plain-Python reference, filters, compared counts, real data."""

import numpy as np
import pytest
import scipy.sparse as sp

from graphret.communities.quality import community_totals, haq_term, newman_term
from graphret.errors import InputError
from graphret.graph.build import graph_from_knn
from graphret.graph.knn import exact_knn, exact_search
from graphret.graph.search_graph import build_search_graph, entry_points
from graphret.query.graph_region import RegionGraph, graph_region_search

TERMS = {"newman": newman_term, "haq": haq_term}


def complete_lists(n):
    """Walk lists joining every pair: the walk then touches every node, so q's edges are its
    exact top cosines."""
    indptr = np.arange(0, n * (n - 1) + 1, n - 1, dtype=np.int64)
    indices = np.array([j for i in range(n) for j in range(n) if j != i], np.int32)
    return indptr, indices


def query_edges(codes, q, knn_k, ex=-1, allowed=None):
    """(the allowed nodes by similarity to q, q's edges [(node, weight)], the allowed mask)."""
    ok = np.ones(len(codes), bool) if allowed is None else allowed.copy()
    if ex >= 0:
        ok[ex] = False
    sims = (codes @ q).astype(np.float32)
    order = sorted(np.flatnonzero(ok), key=lambda j: (-sims[j], j))
    return order, [(j, min(float(sims[j]), 1.0)) for j in order[:knn_k] if sims[j] > 0], ok


def attach_gains(edges, graph, labels, quality, g):
    """Each community q has edges to -> (the quality gain of q joining it, q's edge weight to it)."""
    term = TERMS[quality]
    e_tot, a_tot, n_tot, W = community_totals(graph, labels)
    k_q = sum(w for _, w in edges)
    W2 = W + k_q
    comms = {}
    for j, w in edges:
        comms[labels[j]] = comms.get(labels[j], 0.0) + w

    def attach(c, w):
        ac = a_tot[c] + w
        return term(e_tot[c] + w, ac + k_q, n_tot[c] + 1, W2, g, 1.0) - term(e_tot[c], ac, n_tot[c], W2, g, 1.0) - term(0.0, k_q, 1.0, W2, g, 1.0)

    return {c: (attach(c, w), w) for c, w in comms.items()}


def reference(codes, q, k, graph, labels, quality, g, knn_k, ex=-1, allowed=None):
    """Algorithm 1 as the module docstring states it, in plain Python, every node touched."""
    term = TERMS[quality]
    order, edges, ok = query_edges(codes, q, knn_k, ex, allowed)
    k_q = sum(w for _, w in edges)
    W2 = community_totals(graph, labels)[3] + k_q
    deg = np.asarray(graph.sum(axis=1)).ravel()
    gains = attach_gains(edges, graph, labels, quality, g)
    first = sorted(gains, key=lambda c: (-gains[c][0], -gains[c][1], c))
    taken, visited = [], set()

    def grow(c):
        front = {j: [w, deg[j] + w] for j, w in edges if labels[j] == c and j not in taken}
        eR, aR, nR = 0.0, k_q, 1.0
        while len(taken) < k:
            if not front:
                rest = [j for j in order if labels[j] == c and j not in taken]
                if not rest:
                    return
                best, wj, kj = rest[0], 0.0, deg[rest[0]]
            else:
                gains = {j: term(eR + v[0], aR + v[1], nR + 1, W2, g, 1.0) - term(0.0, v[1], 1.0, W2, g, 1.0) for j, v in front.items()}
                best = min(gains, key=lambda j: (-gains[j], j))
                wj, kj = front.pop(best)
            taken.append(best)
            eR, aR, nR = eR + wj, aR + kj, nR + 1
            row = graph.getrow(best)
            for nb, w in zip(row.indices, row.data):
                if labels[nb] != c or nb in taken or not ok[nb]:
                    continue
                if nb in front:
                    front[nb][0] += w
                else:
                    front[nb] = [w, deg[nb]]

    for c in first:
        if len(taken) >= k:
            break
        visited.add(c)
        grow(c)
    while len(taken) < k:
        rest = [j for j in order if j not in taken and labels[j] not in visited]
        if not rest:
            break
        c = labels[rest[0]]
        visited.add(c)
        grow(c)
    return taken


def small_world(seed, n=40, d=6, communities=4, quality="newman"):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    graph = graph_from_knn(*exact_knn(x, 4))
    labels = rng.integers(0, communities, n)
    labels[:communities] = np.arange(communities)
    return x, graph, labels


@pytest.mark.parametrize("quality", ["newman", "haq"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gain_order_matches_the_reference(quality, seed):
    x, graph, labels = small_world(seed, quality=quality)
    rg = RegionGraph.from_graph(graph, labels, quality=quality, resolution=1.0, knn_k=4)
    lists = complete_lists(len(x))
    rng = np.random.default_rng(100 + seed)
    q = rng.standard_normal((6, x.shape[1])).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    k = 15
    found, scores, compared = graph_region_search(x, q, k, walk=(*lists, np.array([0])), region=rg, ef=len(x), threads=1)
    for i in range(len(q)):
        assert found[i].tolist() == reference(x, q[i], k, graph.tocsr(), labels, quality, 1.0, 4)
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", q, x[found]), atol=1e-5)
    assert np.all(compared == len(x))  # every node touched by the complete walk, none twice


def test_growth_follows_gain_not_similarity():
    # c0 = {0, 1, 2}, c1 = {3, 4}; q is most similar to 2, then 0, then 1
    ang = np.array([0.25, 0.5, 0.0, 1.4, 1.5])
    x = np.stack([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32)
    q = np.array([[1.0, 0.0]], np.float32)
    edges = {(0, 1): 0.9, (1, 2): 0.9, (0, 2): 0.1, (3, 4): 0.9, (2, 3): 0.2}
    rows, cols, w = zip(*[(a, b, v) for (a, b), v in edges.items()])
    A = sp.csr_matrix((w, (rows, cols)), shape=(5, 5))
    graph = (A + A.T).tocsr()
    labels = np.array([0, 0, 0, 1, 1])
    rg = RegionGraph.from_graph(graph, labels, knn_k=1)
    found, scores, _, chosen = graph_region_search(x, q, 5, walk=(*complete_lists(5), np.array([0])), region=rg, ef=5,
                                                   threads=1, return_chosen=True)
    assert chosen[0] == 0
    # q's one edge goes to 2; 1 (weight 0.9 to the region) joins before 0 (0.1), though 0 is
    # more similar; then c1 from its most similar member
    assert found[0].tolist() == [2, 1, 0, 3, 4]
    assert found[0].tolist() != np.argsort(-(x @ q[0])).tolist()
    assert found[0].tolist() == reference(x, q[0], 5, graph, labels, "newman", 1.0, 1)


def test_the_community_of_largest_attach_gain_comes_first():
    x, graph, labels = small_world(5, n=60, communities=3)
    rg = RegionGraph.from_graph(graph, labels, knn_k=6)
    q = x[:10] + 0.01
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    found, _, _, chosen = graph_region_search(x, q, 8, walk=(*complete_lists(60), np.array([0])), region=rg, ef=60,
                                              threads=1, return_chosen=True)
    sizes = np.bincount(labels)
    for i in range(len(q)):
        gains = attach_gains(query_edges(x, q[i], 6)[1], graph.tocsr(), labels, "newman", 1.0)
        largest = max(gain for gain, _ in gains.values())
        assert gains[chosen[i]][0] == pytest.approx(largest, abs=1e-6)  # the chosen community has the largest gain
        assert sorted(gains, key=lambda c: (-gains[c][0], -gains[c][1], c))[0] == chosen[i]  # ties: more edge weight, then id
        take = min(8, sizes[chosen[i]])
        assert np.all(labels[found[i, :take]] == chosen[i])
    assert len(set(chosen.tolist())) > 1  # the queries sit in different communities: the choice is tested, not fixed


def test_the_nearest_item_is_held_even_outside_the_chosen_community():
    """Step 5: with ``hold_nearest`` the query's nearest item heads the results, then Haq's
    region in join order (its last member dropped when the nearest was not in it)."""
    x, graph, labels = small_world(5, n=60, communities=3)
    rg = RegionGraph.from_graph(graph, labels, knn_k=6)
    rng = np.random.default_rng(9)
    q = rng.standard_normal((40, x.shape[1])).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    walk = (*complete_lists(60), np.array([0]))
    haq, _, _, chosen = graph_region_search(x, q, 8, walk=walk, region=rg, ef=60, threads=1, return_chosen=True)
    held, scores, _ = graph_region_search(x, q, 8, walk=walk, region=rg, ef=60, threads=1, hold_nearest=True)
    nearest = np.argmax(q @ x.T, axis=1)
    outside = 0
    for i in range(len(q)):
        assert held[i, 0] == nearest[i]
        rest = [j for j in haq[i] if j != nearest[i]][:7]
        assert held[i, 1:].tolist() == rest
        outside += labels[nearest[i]] != chosen[i]
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", q, x[held]), atol=1e-5)
    assert outside > 0  # some queries' nearest item is outside the chosen community: the rule is tested


def test_exclude_and_filters_are_never_taken():
    x, graph, labels = small_world(3, n=50)
    rg = RegionGraph.from_graph(graph, labels, knn_k=4)
    lists = complete_lists(50)
    allowed = np.arange(50) % 3 != 0
    q = x[[1, 2, 4]]
    found, _, _ = graph_region_search(x, q, 20, walk=(*lists, np.array([0])), region=rg, ef=50,
                                      exclude=np.array([1, 2, 4]), allowed=allowed, threads=1)
    assert np.all(allowed[found]) and not np.any(found == np.array([[1], [2], [4]]))
    assert all(len(set(r)) == 20 for r in found)
    for i, row in enumerate((1, 2, 4)):
        assert found[i].tolist() == reference(x, q[i], 20, graph.tocsr(), labels, "newman", 1.0, 4, ex=row, allowed=allowed)


def test_k_beyond_what_the_walk_touched_is_completed_exactly():
    x, graph, labels = small_world(7, n=80)
    lists = build_search_graph(x, graph, max_degree=6, threads=1)
    rg = RegionGraph.from_graph(graph, labels, knn_k=4)
    q = x[:4]
    found, scores, compared = graph_region_search(x, q, 79, walk=(*lists, entry_points(x, None, graph=lists)), region=rg,
                                                  ef=2, exclude=np.arange(4), threads=1)
    for i in range(4):
        assert sorted(found[i].tolist()) == [j for j in range(80) if j != i]
    assert np.all(compared <= 80)


def test_region_is_deterministic_across_threads():
    x, graph, labels = small_world(8, n=300, d=8, communities=6)
    lists = build_search_graph(x, graph, max_degree=8, threads=1)
    ent = entry_points(x, labels, graph=lists)
    rg = RegionGraph.from_graph(graph, labels, knn_k=5)
    rng = np.random.default_rng(0)
    q = rng.standard_normal((30, 8)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    a = graph_region_search(x, q, 12, walk=(*lists, ent), region=rg, threads=1)
    b = graph_region_search(x, q, 12, walk=(*lists, ent), region=rg, threads=2)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_bad_region_input():
    x, graph, labels = small_world(1)
    with pytest.raises(InputError) as err:
        RegionGraph.from_graph(graph, labels, quality="louvain")
    assert err.value.param == "quality"
    with pytest.raises(InputError):
        RegionGraph.from_graph(graph, labels, resolution=0)
    rg = RegionGraph.from_graph(graph, labels)
    with pytest.raises(InputError):
        graph_region_search(x[:10], x[:2], 5, walk=(*complete_lists(10), np.array([0])), region=rg)
    with pytest.raises(InputError):
        RegionGraph(graph.indptr, graph.indices, graph.data, labels[:5], community_totals(graph, labels))


@pytest.mark.slow  # a graph and communities over real MedNIST codes
def test_region_on_mednist_pixel_codes(shared_data):
    from graphret.communities.cnm import cnm
    from graphret.data import open_source
    from graphret.encoders.pixels import PixelPCAEncoder

    path = shared_data / "mednist" / "mednist_64.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    images = open_source(str(path), seed=0)
    rows = np.random.default_rng(1).choice(len(images), 3000, replace=False)
    encoder = PixelPCAEncoder(dim=64).fit(images, rows[:2000])
    codes = encoder.encode(images, rows).spaces["default"]
    labels = np.asarray(images.labels)[rows]
    archive, queries = codes[:2600], codes[2600:]
    graph = graph_from_knn(*exact_knn(archive, 10))
    membership = cnm(graph, heuristic="size", refine="multilevel").membership
    lists = build_search_graph(archive, graph, threads=1)
    rg = RegionGraph.from_graph(graph, membership, knn_k=10)
    found, _, compared = graph_region_search(archive, queries, 50, walk=(*lists, entry_points(archive, membership, graph=lists)),
                                             region=rg, threads=1)
    flat, _ = exact_search(archive, queries, 50)
    p_region = np.mean(labels[:2600][found] == labels[2600:, None])
    p_flat = np.mean(labels[:2600][flat] == labels[2600:, None])
    assert p_region >= p_flat - 0.02 and p_region > 0.9
    assert compared.mean() < 0.25 * len(archive)
