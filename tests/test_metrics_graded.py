"""Graded relevance and nDCG@K on small examples worked by hand."""

import numpy as np
import pytest

from graphret.metrics import (
    dcg_at_k,
    graded_relevance,
    ideal_graded_relevance,
    ndcg_at_k,
)


def test_graded_relevance_by_hand():
    # G = 5 grades, query grade 2: results of grade 2, 0, 4, 3 -> 1, 1 - 2/4, 1 - 2/4, 1 - 1/4
    rel = graded_relevance(np.array([2]), np.array([[2, 0, 4, 3]]), 5)
    np.testing.assert_allclose(rel, [[1.0, 0.5, 0.5, 0.75]])
    with pytest.raises(ValueError):
        graded_relevance(np.array([0]), np.array([[0]]), 1)


def test_dcg_and_ndcg_by_hand():
    rel = np.array([[1.0, 0.0, 0.5]])
    # DCG@3 = 1/log2(2) + 0/log2(3) + 0.5/log2(4) = 1 + 0 + 0.25
    assert dcg_at_k(rel, 3)[0] == pytest.approx(1.25)
    # ideal = the retrieved list sorted: 1 + 0.5/log2(3) = 1.315465
    assert ndcg_at_k(rel, 3) == pytest.approx(1.25 / (1 + 0.5 / np.log2(3)))
    # ideal given: three fully relevant items: 1 + 1/log2(3) + 1/2 = 2.130930
    assert ndcg_at_k(rel, 3, ideal=np.array([[1.0, 1.0, 1.0]])) == pytest.approx(1.25 / 2.1309297535714578)
    # a perfect list scores 1, an empty ideal scores 0
    assert ndcg_at_k(np.array([[1.0, 1.0]]), 2) == pytest.approx(1.0)
    assert ndcg_at_k(np.array([[0.0, 0.0]]), 2) == 0.0


def test_ideal_graded_relevance_by_hand():
    # G = 3, query grade 0, archive grades 0, 1, 1, 2 (and one unlabelled -1):
    # relevance per grade 1, 0.5, 0 -> the best 3: 1, 0.5, 0.5
    ideal = ideal_graded_relevance(np.array([0, 1]), np.array([0, 1, 1, 2, -1]), 3, 3)
    np.testing.assert_allclose(ideal[0], [1.0, 0.5, 0.5])
    # query grade 1: grade 1 twice (1, 1), then grade 0 or 2 (0.5)
    np.testing.assert_allclose(ideal[1], [1.0, 1.0, 0.5])
