"""Precision@K and precision-recall curves on a small example worked by hand."""

import numpy as np
import pytest

from graphret.metrics import precision_curve, precision_recall_curve

REL = np.array([[1, 0, 1], [0, 1, 1]])


def test_precision_curve_by_hand():
    # P@1 = (1 + 0)/2, P@2 = (1/2 + 1/2)/2, P@3 = (2/3 + 2/3)/2
    np.testing.assert_allclose(precision_curve(REL), [0.5, 0.5, 2 / 3])
    np.testing.assert_allclose(precision_curve(REL, 2), [0.5, 0.5])


def test_precision_recall_curve_by_hand():
    # R = 2 and 4 relevant items: recall@1 = (1/2 + 0/4)/2, @2 = (1/2 + 1/4)/2, @3 = (2/2 + 2/4)/2
    recall, precision = precision_recall_curve(REL, np.array([2, 4]))
    np.testing.assert_allclose(recall, [0.25, 0.375, 0.75])
    np.testing.assert_allclose(precision, [0.5, 0.5, 2 / 3])
    # a query with no relevant item is left out
    recall, precision = precision_recall_curve(REL, np.array([2, 0]))
    np.testing.assert_allclose(recall, [0.5, 0.5, 1.0])
    with pytest.raises(ValueError):
        precision_curve(REL, 4)
