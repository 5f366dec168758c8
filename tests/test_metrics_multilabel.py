"""ACG@K, ACG_p@K and multi-label relevance on small examples worked by hand."""

import numpy as np
import pytest

from graphret.metrics import acg_at_k, acg_p_at_k, multilabel_relevance

# two queries, L = 4 labels, K = 2 results each
Q = np.array([[1, 0, 1, 0], [0, 0, 0, 0]])
R = np.array([
    [[1, 0, 1, 0], [0, 1, 1, 1]],  # query 0: agrees on 4/4, then on 1/4 (label 2 only)
    [[0, 0, 0, 0], [1, 0, 0, 0]],  # query 1: agrees on 4/4, then on 3/4
])


def test_acg_by_hand():
    # query 0: (1 + 0.25) / 2 = 0.625; query 1: (1 + 0.75) / 2 = 0.875; mean 0.75
    assert acg_at_k(Q, R, 2) == pytest.approx(0.75)
    # K = 1: both first results agree everywhere
    assert acg_at_k(Q, R, 1) == pytest.approx(1.0)


def test_acg_p_by_hand():
    # query 0 positives {0, 2}: result 1 has both (1), result 2 has {2} (0.5) -> 0.75;
    # query 1 has no positive label and is left out
    assert acg_p_at_k(Q, R, 2) == pytest.approx(0.75)
    assert np.isnan(acg_p_at_k(Q[1:], R[1:], 2))


def test_relevance_rules_by_hand():
    exact = multilabel_relevance(Q, R, rule="exact")
    shared = multilabel_relevance(Q, R, rule="any")
    np.testing.assert_array_equal(exact, [[1, 0], [1, 0]])
    # query 0's second result shares label 2; query 1 has no positives, so shares nothing
    np.testing.assert_array_equal(shared, [[1, 1], [0, 0]])


def test_bad_inputs():
    with pytest.raises(ValueError, match="rule"):
        multilabel_relevance(Q, R, rule="some")
    with pytest.raises(ValueError):
        acg_at_k(Q, R, 3)
    with pytest.raises(ValueError):
        acg_at_k(Q[0], R, 1)
