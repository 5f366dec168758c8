"""Retrieval metrics on hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from graphret.metrics.retrieval import (
    accuracy_at_k,
    average_precision_at_k,
    mean_average_precision,
    mean_reciprocal_rank,
    precision_at_k,
    relevance,
)

# Two queries, five results each.
REL = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 1, 1]], dtype=np.float32)


def test_precision_at_k_by_hand():
    # q0: P@2 = 1/2, q1: 0/2 -> mean 0.25;  P@5: 2/5 and 2/5 -> 0.4
    assert precision_at_k(REL, 2) == pytest.approx(0.25)
    assert precision_at_k(REL, 5) == pytest.approx(0.4)
    graded = np.array([[1.0, 0.75, 0.5]])
    assert precision_at_k(graded, 3) == pytest.approx(0.75)


def test_average_precision_by_hand():
    # q0: relevant at ranks 1 and 3: (1/1 + 2/3) / 2 = 0.8333
    # q1: relevant at ranks 4 and 5: (1/4 + 2/5) / 2 = 0.325
    ap = average_precision_at_k(REL, 5)
    assert ap == pytest.approx([5 / 6, 0.325])
    assert mean_average_precision(REL, 5) == pytest.approx((5 / 6 + 0.325) / 2)
    # top 2 only: q0 (1/1)/1 = 1, q1 no relevant -> 0
    assert average_precision_at_k(REL, 2) == pytest.approx([1.0, 0.0])
    # normalised by min(k, relevant in the archive): q0 has 4 relevant in all -> (1 + 2/3) / 4
    assert average_precision_at_k(REL, 5, n_relevant=np.array([4, 2]))[0] == pytest.approx((1 + 2 / 3) / 4)


def test_mrr_by_hand():
    assert mean_reciprocal_rank(REL) == pytest.approx((1 / 1 + 1 / 4) / 2)
    assert mean_reciprocal_rank(REL, 3) == pytest.approx((1 + 0) / 2)


def test_accuracy_at_k_by_hand():
    queries = np.array([0, 1, 2])
    results = np.array([[0, 1, 1], [0, 1, 1], [1, 2, 0]])
    # Acc@1: only query 0's first result matches -> 1/3
    assert accuracy_at_k(queries, results, 1) == pytest.approx(1 / 3)
    # Acc@3 majority: q0 -> 1 (wrong), q1 -> 1 (right), q2 -> three-way tie, first-ranked 1 (wrong)
    assert accuracy_at_k(queries, results, 3) == pytest.approx(1 / 3)
    # Acc@2: q0 tie 0/1 -> 0 ranked first (right); q1 tie -> 0 (wrong); q2 tie -> 1 (wrong)
    assert accuracy_at_k(queries, results, 2) == pytest.approx(1 / 3)


def test_relevance_modes():
    q = np.array([0, 2])
    r = np.array([[0, 1], [2, 2]])
    assert relevance(q, r).tolist() == [[1, 0], [1, 1]]
    graded = relevance(np.array([0]), np.array([[0, 2, 4]]), mode="graded", n_grades=5)
    assert graded.tolist() == [[1.0, 0.5, 0.0]]
    ql = np.array([[1, 0, 1]])
    rl = np.array([[[1, 0, 1], [1, 0, 0], [0, 1, 0]]])
    assert relevance(ql, rl, mode="same").tolist() == [[1, 0, 0]]
    assert relevance(ql, rl, mode="shared").tolist() == [[1, 1, 0]]


def test_bad_k():
    with pytest.raises(ValueError):
        precision_at_k(REL, 6)
