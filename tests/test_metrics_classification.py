"""AUROC per label and its mean (graphret.metrics.classification), checked against values worked
out by hand and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from graphret.metrics import auroc, label_aurocs, mean_auroc, mean_auroc_spread, pooled_auroc


def test_auroc_counts_the_pairs_a_score_orders_rightly_with_ties_as_half():
    # positives 0.9, 0.4; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) -> 3 of 4
    assert auroc(np.array([0.9, 0.5, 0.4, 0.1]), np.array([1, 0, 1, 0], bool)) == pytest.approx(0.75)
    assert auroc(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)  # a tie counts half
    assert auroc(np.array([0.2, 0.3]), np.array([True, True])) is None  # one class only


def test_mean_auroc_leaves_unknown_entries_and_one_class_labels_out():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    probs = rng.random((40, 3))
    labels = (rng.random((40, 3)) < 0.4).astype(np.int64)
    labels[:5, 0] = -1  # unknown: left out of label 0
    labels[:, 2] = 0  # no positive: label 2 is skipped
    expected = np.mean([sklearn_metrics.roc_auc_score(labels[5:, 0], probs[5:, 0]), sklearn_metrics.roc_auc_score(labels[:, 1], probs[:, 1])])
    assert mean_auroc(probs, labels) == pytest.approx(expected)
    assert mean_auroc(probs[:, 2:], labels[:, 2:]) is None


def test_pooled_auroc_ranks_every_known_entry_together():
    # known entries: label 0 (0.9 pos, 0.2 neg), label 1 (0.6 pos, 0.7 neg; 0.1 unknown):
    # positives 0.9, 0.6 against negatives 0.2, 0.7 -> 3 of 4 pairs; the mean per label would be 0.5
    probs = np.array([[0.9, 0.6], [0.2, 0.7], [0.5, 0.1]])
    labels = np.array([[1, 1], [0, 0], [-1, -1]])
    assert pooled_auroc(probs, labels) == pytest.approx(0.75)
    assert mean_auroc(probs, labels) == pytest.approx(0.5)
    assert pooled_auroc(probs, np.array([[1, 1], [1, -1], [-1, -1]])) is None  # no negative entry


def test_label_aurocs_give_each_label_its_own_figure_and_none_without_both_classes():
    # label 0: positive 0.9 over negatives 0.5, 0.1 -> 1.0; label 1: positive 0.2 under 0.8, over
    # 0.1 (unknown 0.9 left out) -> 0.5; label 2: no positive -> None
    probs = np.array([[0.9, 0.2, 0.3], [0.5, 0.8, 0.4], [0.1, 0.1, 0.5], [0.3, 0.9, 0.6]])
    labels = np.array([[1, 1, 0], [0, 0, 0], [0, 0, 0], [-1, -1, 0]])
    assert label_aurocs(probs, labels) == [pytest.approx(1.0), pytest.approx(0.5), None]
    assert mean_auroc(probs, labels) == pytest.approx(0.75)


def test_the_spread_of_the_mean_auroc_shrinks_with_the_test_set_and_vanishes_for_a_perfect_ranking():
    rng = np.random.default_rng(1)

    def noisy(n):  # scores that rank a positive above a negative about 3 times in 4
        labels = (rng.random((n, 2)) < 0.3).astype(np.int64)
        return labels + rng.normal(0, 0.7, (n, 2)), labels

    small, large = noisy(40), noisy(400)
    sd_small, low, high = mean_auroc_spread(*small, draws=300, seed=0)
    sd_large, _, _ = mean_auroc_spread(*large, draws=300, seed=0)
    assert low < mean_auroc(*small) < high
    assert 0 < sd_large < sd_small / 2  # ten times the items: about a third of the spread
    assert mean_auroc_spread(*small, draws=300, seed=0) == (sd_small, low, high)  # seeded
    labels = np.array([[1], [0], [1], [0], [0], [1]])
    assert mean_auroc_spread(labels.astype(float), labels, draws=200) == (0.0, 1.0, 1.0)
