"""Region mode (Haq's Algorithm 1): the chosen community first, gains from the quality terms."""

import numpy as np
import pytest
import scipy.sparse as sp

from graphret.communities.kernels import QUALITY_CODES
from graphret.communities.quality import (
    community_totals,
    haq_modularity,
    newman_modularity,
)
from graphret.errors import InputError
from graphret.graph.search_graph import build_search_graph
from graphret.query import Searcher, as_queries, search
from graphret.query.graph_region import RegionGraph, attach_gain, graph_region_search
from graphret.store import open_store


@pytest.fixture(scope="module")
def store(blob_stores):
    return open_store(blob_stores(n_per_class=50, seed=3))


def test_region_is_the_default_and_starts_in_the_chosen_community(store):
    queries = as_queries(store, "test", kind="split")
    result = search(store, queries, k=5)
    assert result.mode == "region" and result.community_method == "cnm"
    membership = store.membership("cnm")
    chosen = result.details["chosen_community"]
    sizes = np.bincount(membership[membership >= 0])
    for q in range(len(queries)):
        first = membership[result.rows[q]]
        take = min(5, sizes[chosen[q]])
        assert np.all(first[:take] == chosen[q])
        assert np.all(np.diff(np.flatnonzero(first != chosen[q])) >= 0)
    assert np.all(result.scanned_fraction < 1.0) and np.all(result.scanned_fraction > 0)
    precision = np.mean(store.labels[result.rows] == store.labels[queries.rows][:, None])
    assert precision > 0.9


def test_region_goes_on_to_the_next_community_and_never_returns_the_query(store):
    archive = store.archive_rows()
    row = int(archive[0])
    result = search(store, as_queries(store, store.codes()[[row]], kind="codes"), k=60)
    assert len(set(result.rows[0].tolist())) == 60
    membership = store.membership("cnm")
    chosen = result.details["chosen_community"][0]
    size = int(np.sum(membership == chosen))
    comm = membership[result.rows[0]]
    assert np.all(comm[: min(size, 60)] == chosen)
    assert len(set(comm.tolist())) > 1 or size >= 60
    own = search(store, as_queries(store, "train", kind="split"), k=10)
    assert not np.any(own.rows == own.queries.rows[:, None])


def test_leiden_communities_can_be_chosen(store):
    result = search(store, as_queries(store, "test", kind="split"), k=5, communities="leiden")
    assert result.community_method == "leiden"
    membership = store.membership("leiden")
    assert np.all(membership[result.rows[:, 0]] == np.asarray(result.details["chosen_community"]))


def _graph_with_query():
    """A 7-node graph: communities {0,1,2} and {3,4,5}; node 6 is the query."""
    edges = [(0, 1, 0.9), (1, 2, 0.8), (0, 2, 0.7), (3, 4, 0.9), (4, 5, 0.6), (2, 3, 0.2), (6, 0, 0.5), (6, 1, 0.4), (6, 4, 0.3)]
    n = 7
    rows = [a for a, b, _ in edges] + [b for a, b, _ in edges]
    cols = [b for a, b, _ in edges] + [a for a, b, _ in edges]
    weights = [w for *_, w in edges] * 2
    return sp.csr_matrix((weights, (rows, cols)), shape=(n, n))


@pytest.mark.parametrize("quality", ["newman", "haq"])
def test_attach_gain_is_the_quality_difference(quality):
    full = _graph_with_query()
    base = full[:6][:, :6]
    membership = np.array([0, 0, 0, 1, 1, 1])
    e, a, n, W = community_totals(base, membership)
    q_edges = full[6].toarray().ravel()[:6]
    k_q = q_edges.sum()
    measure = newman_modularity if quality == "newman" else haq_modularity
    alone = measure(full, np.array([0, 0, 0, 1, 1, 1, 2]))
    for c in (0, 1):
        w_qc = q_edges[membership == c].sum()
        joined = measure(full, np.array([0, 0, 0, 1, 1, 1, c]))
        gain = attach_gain(QUALITY_CODES[quality], e[c], a[c], n[c], w_qc, k_q, W + k_q, 1.0, 1.0)
        assert gain == pytest.approx(joined - alone, abs=1e-12)


def test_newman_attach_gain_matches_the_guide_formula():
    full = _graph_with_query()
    e, a, n, W = community_totals(full[:6][:, :6], np.array([0, 0, 0, 1, 1, 1]))
    w_qc, k_q = 0.9, 1.2
    W2, a2 = W + k_q, a[0] + w_qc
    gain = attach_gain(QUALITY_CODES["newman"], e[0], a[0], n[0], w_qc, k_q, W2, 1.0, 1.0)
    assert gain == pytest.approx(w_qc / W2 - k_q * a2 / (2 * W2**2))


def test_region_grows_along_edges_by_gain():
    """A chain 0-1-2-4 inside one community: the region follows the chain from the query's
    edge even where a farther member is more similar."""
    codes = np.array([[1, 0], [0.9, 0.44], [0.6, 0.8], [0.99, 0.14], [0, 1]], np.float32)
    codes /= np.linalg.norm(codes, axis=1, keepdims=True)
    edges = [(0, 1, 0.9), (1, 2, 0.9), (2, 4, 0.8)]
    rows = [a for a, b, _ in edges] + [b for a, b, _ in edges]
    cols = [b for a, b, _ in edges] + [a for a, b, _ in edges]
    graph = sp.csr_matrix(([w for *_, w in edges] * 2, (rows, cols)), shape=(5, 5))
    region = RegionGraph.from_graph(graph, np.zeros(5, np.int64), knn_k=1)
    indptr, indices = build_search_graph(codes, graph)
    q = np.array([[1.0, 0.0]], np.float32)
    found, scores, compared = graph_region_search(codes, q, 4, walk=(indptr, indices, np.array([0])), region=region, ef=5)
    # the query's one edge goes to item 0 (similarity 1); growth then follows 1, 2, 4
    assert found[0].tolist() == [0, 1, 2, 4]
    assert compared[0] <= 5
    np.testing.assert_allclose(scores[0], codes[[0, 1, 2, 4]] @ np.array([1.0, 0.0]), rtol=1e-6)


def test_region_with_a_filter_returns_k_matching(store):
    queries = as_queries(store, "test", kind="split")
    result = search(store, queries, k=8, where=["label=class1"])
    assert result.rows.shape == (len(queries), 8)
    assert np.all(store.labels[result.rows] == 1)


def test_region_refuses_bad_k(store):
    queries = as_queries(store, "test", kind="split")
    with pytest.raises(InputError, match="K must be at least 1"):
        search(store, queries, k=0)
    with pytest.raises(InputError, match="larger than"):
        search(store, queries, k=10_000)


def test_searcher_builds_its_index_once(store):
    searcher = Searcher(store, communities="cnm")
    searcher.search("test", k=3, mode="region")
    region, walk = searcher.index.region, searcher.index.walk
    searcher.search("test", k=3, mode="region")
    assert searcher.index.region is region and searcher.index.walk is walk
    assert "_graphret_query_cache" not in vars(store)  # nothing hung on the opened store
