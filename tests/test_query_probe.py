"""Probe mode: exact top-K inside the P nearest communities."""

import numpy as np
import pytest

from graphret.errors import InputError
from graphret.graph.knn import exact_search as flat_search
from graphret.query import as_queries, search
from graphret.query.index import RetrievalIndex
from graphret.query.probe import probe_search
from graphret.store import open_store


def clustered(n=3000, d=16, clusters=30, seed=0, spread=0.6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    labels = rng.integers(0, clusters, n)
    x = centres[labels] + spread * rng.normal(size=(n, d))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return x, labels


def recall(found, truth):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)])


def test_probe_with_every_community_equals_flat():
    x, labels = clustered()
    q = x[:50] + 0.01
    index = RetrievalIndex(x, membership=labels)
    exclude = np.arange(50)
    flat_i, flat_s = flat_search(x, q, 20, exclude=exclude)
    probe_i, probe_s, scanned = probe_search(index, q, 20, n_probe=index.n_communities, exclude=exclude)
    np.testing.assert_array_equal(probe_i, flat_i)
    np.testing.assert_allclose(probe_s, flat_s, rtol=1e-5)
    assert np.allclose(scanned, (len(x) - 0) / len(x), atol=1e-9)


def test_recall_rises_with_p():
    x, labels = clustered(spread=1.2, seed=1)
    q = x[:100]
    index = RetrievalIndex(x, membership=labels)
    truth, _ = flat_search(x, q, 20, exclude=np.arange(100))
    recalls, fractions = [], []
    for P in (1, 2, 4, 8, 30):
        found, _, scanned = probe_search(index, q, 20, n_probe=P, exclude=np.arange(100))
        recalls.append(recall(found, truth))
        fractions.append(scanned.mean())
    assert all(b >= a - 1e-12 for a, b in zip(recalls, recalls[1:]))
    assert all(b > a for a, b in zip(fractions, fractions[1:]))
    assert recalls[0] < 1.0 and recalls[-1] == 1.0


def test_probe_reaches_k_beyond_p_communities():
    x, labels = clustered(n=300, clusters=30, seed=2)
    index = RetrievalIndex(x, membership=labels)
    found, scores, _ = probe_search(index, x[:5], 40, n_probe=1)
    assert found.shape == (5, 40)
    assert all(len(set(row)) == 40 for row in found)
    assert np.all(np.diff(scores, axis=1) <= 0)


@pytest.fixture(scope="module")
def store(blob_stores):
    return open_store(blob_stores(n_per_class=40, seed=1, communities=("leiden",)))  # test_query_store's too


def test_probe_on_a_store_matches_flat_at_full_p(store):
    queries = as_queries(store, "test", kind="split")
    flat = search(store, queries, k=10, mode="flat")
    C = int(store.membership("leiden").max()) + 1
    probe = search(store, queries, k=10, mode="probe", n_probe=C)
    np.testing.assert_allclose(np.sort(probe.scores, axis=1), np.sort(flat.scores, axis=1), rtol=1e-5)
    one = search(store, queries, k=10, mode="probe", n_probe=1)
    assert np.all(one.scanned_fraction < 1.0)
    assert one.community_method == "leiden"


def test_probe_with_filter_and_batches(store):
    queries = as_queries(store, "test", kind="split")
    whole = search(store, queries, k=6, mode="probe", n_probe=1, where=["label!=class0"])
    assert not np.any(store.labels[whole.rows] == 0)
    batched = search(store, queries, k=6, mode="probe", n_probe=1, where=["label!=class0"], batch_size=5)
    np.testing.assert_array_equal(whole.rows, batched.rows)


def test_bad_probe_is_refused(store):
    with pytest.raises(InputError, match="n_probe"):
        search(store, as_queries(store, "test", kind="split"), k=3, mode="probe", n_probe=0)


def test_one_query_path_equals_the_batched_path():
    x, labels = clustered(n=2000, clusters=20, seed=3, spread=1.0)
    index = RetrievalIndex(x, membership=labels)
    q = x[:12]
    allowed = np.ones(len(x), bool)
    allowed[::3] = False
    for P in (1, 3):
        batched = probe_search(index, q, 15, n_probe=P, exclude=np.arange(12), allowed=allowed)
        for i in range(12):
            one = probe_search(index, q[i : i + 1], 15, n_probe=P, exclude=np.array([i]), allowed=allowed)
            np.testing.assert_array_equal(one[0][0], batched[0][i])
            np.testing.assert_allclose(one[1][0], batched[1][i], rtol=1e-5)
            assert one[2][0] == batched[2][i]
