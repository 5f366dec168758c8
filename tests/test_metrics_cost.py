"""Cost metrics on small examples worked by hand."""

import numpy as np
import pytest

from graphret.metrics import (
    fraction_scanned,
    latency_percentile,
    queries_per_second,
    recall_at_k,
)


def test_recall_against_flat_by_hand():
    found = np.array([[1, 2, 3], [5, 6, 7]])
    truth = np.array([[3, 4, 1], [7, 6, 5]])
    # query 0 finds 2 of flat's 3 (1 and 3), query 1 all 3 (order does not matter): (2/3 + 1) / 2
    assert recall_at_k(found, truth) == pytest.approx(5 / 6)
    # K = 1: query 0's 1 is not flat's 3; query 1's 5 is not flat's 7
    assert recall_at_k(found, truth, 1) == 0.0
    with pytest.raises(ValueError):
        recall_at_k(found, truth, 4)


def test_throughput_latency_scanned_by_hand():
    assert queries_per_second(10, 0.5) == 20.0
    lat = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    assert latency_percentile(lat, 50) == 3.0
    # h = (5 - 1) * 0.95 = 3.8 -> 4 + 0.8 * (10 - 4) = 8.8
    assert latency_percentile(lat, 95) == pytest.approx(8.8)
    assert np.isnan(latency_percentile(np.array([]), 50))
    assert fraction_scanned(np.array([0.1, 0.3])) == pytest.approx(0.2)
