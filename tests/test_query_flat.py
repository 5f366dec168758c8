import numpy as np
import pytest

from graphret.errors import InputError
from graphret.graph.knn import exact_search as flat_search
from graphret.graph.topk import topk_rows


def unit(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_search_matches_brute_force_order():
    rng = np.random.default_rng(1)
    archive, queries = unit(rng, 500, 16), unit(rng, 30, 16)
    indices, scores = flat_search(archive, queries, 7, block_size=8)
    full = queries @ archive.T
    expected = np.argsort(-full, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, axis=1), rtol=1e-6)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_exclude_removes_only_the_query_itself():
    rng = np.random.default_rng(2)
    archive = unit(rng, 50, 8)
    archive[10] = archive[3]  # an exact duplicate of item 3 stays retrievable
    indices, scores = flat_search(archive, archive[[3, 4]], 3, exclude=np.array([3, -1]))
    assert 3 not in indices[0]
    assert indices[0, 0] == 10 and scores[0, 0] == pytest.approx(1.0)
    assert indices[1, 0] == 4


def test_ties_break_by_smaller_index():
    scores = np.array([[0.5, 0.9, 0.5, 0.9, 0.1]], np.float32)
    indices, values = topk_rows(scores, 3)
    assert indices.tolist() == [[1, 3, 0]]
    assert values[0].tolist() == pytest.approx([0.9, 0.9, 0.5])


@pytest.mark.parametrize("k", [0, -3, 51])
def test_bad_k_is_refused(k):
    rng = np.random.default_rng(3)
    archive = unit(rng, 50, 4)
    with pytest.raises(InputError, match="K"):
        flat_search(archive, archive[:1], k)


def test_k_equal_to_archive_minus_self():
    rng = np.random.default_rng(4)
    archive = unit(rng, 10, 4)
    indices, _ = flat_search(archive, archive[:1], 9, exclude=np.array([0]))
    assert sorted(indices[0].tolist()) == list(range(1, 10))
    with pytest.raises(InputError, match="use k=9"):
        flat_search(archive, archive[:1], 10, exclude=np.array([0]))


def test_wrong_dimension_is_refused():
    rng = np.random.default_rng(5)
    with pytest.raises(InputError, match="dimension"):
        flat_search(unit(rng, 10, 4), unit(rng, 2, 5), 3)


def test_heap_topk_matches_a_full_sort_with_ties():
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 6, size=(40, 300)).astype(np.float32)  # many ties
    scores[3, 10] = -np.inf
    for k in (1, 5, 50, 300):
        indices, values = topk_rows(scores, k)
        expected = np.lexsort((np.broadcast_to(np.arange(300), scores.shape), -scores), axis=1)[:, :k]
        np.testing.assert_array_equal(indices, expected)
        np.testing.assert_array_equal(values, np.take_along_axis(scores, expected, axis=1))


def test_large_batches_are_blocked():
    rng = np.random.default_rng(8)
    archive, queries = unit(rng, 2000, 8), unit(rng, 300, 8)
    small, small_scores = flat_search(archive, queries, 5, max_scores=5000)  # 2 queries per block
    full, full_scores = flat_search(archive, queries, 5)
    np.testing.assert_array_equal(small, full)
    # BLAS may round a 2-row product differently from a 300-row one (last bit)
    np.testing.assert_allclose(small_scores, full_scores, rtol=1e-6)
