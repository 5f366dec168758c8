"""The one heap of the kernels (graphret.kernels.heap): both orientations give the order of
ranks_before -- higher score first, ties by the smaller key -- whatever the push order."""

import numpy as np

from graphret.kernels.heap import heap_drain, heap_push, queue_heapify, queue_pop, queue_push, queue_reserve


def _entries(seed=0, n=300):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, n).astype(np.float64)  # many ties, decided by the key
    keys = rng.permutation(n).astype(np.int64)
    ranked = sorted(range(n), key=lambda i: (-scores[i], keys[i]))
    return scores, keys, ranked


def test_the_queue_pops_best_first_with_ties_by_smaller_key_growing_as_needed():
    scores, keys, ranked = _entries()
    hs, ht, hi = np.empty(4), np.empty(4, np.int64), np.empty(4, np.int64)
    size = 0
    for i in range(len(scores)):
        hs, ht, hi = queue_reserve(hs, ht, hi, size)
        size = queue_push(hs, ht, hi, size, scores[i], keys[i], i)
    assert hs.size >= len(scores)
    popped = []
    while size:
        popped.append(int(hi[0]))
        size = queue_pop(hs, ht, hi, size)
    assert popped == ranked


def test_heapify_orders_entries_as_pushing_them_would():
    scores, keys, ranked = _entries(seed=1)
    hs, ht, hi = scores.copy(), keys.copy(), np.arange(len(scores), dtype=np.int64)
    queue_heapify(hs, ht, hi, len(hs))
    size, popped = len(hs), []
    while size:
        popped.append(int(hi[0]))
        size = queue_pop(hs, ht, hi, size)
    assert popped == ranked


def test_the_bounded_heap_keeps_the_best_k_and_drains_them_best_first():
    scores, keys, ranked = _entries(seed=2)
    k = 17
    hs, ht, hi = np.empty(k), np.empty(k, np.int64), np.empty(k, np.int64)
    size = 0
    for i in range(len(scores)):
        size = heap_push(hs, ht, hi, size, k, scores[i], keys[i], i)
    out_i, out_s = np.empty(k, np.int64), np.empty(k)
    heap_drain(hs, ht, hi, size, out_i, out_s)
    assert out_i.tolist() == ranked[:k]
    assert np.array_equal(out_s, scores[ranked[:k]])


def test_a_queue_whose_key_is_its_payload_may_share_one_array():
    scores, _, _ = _entries(seed=3, n=50)
    ranked = sorted(range(50), key=lambda i: (-scores[i], i))
    hs, hk = np.empty(50), np.empty(50, np.int64)
    size = 0
    for i in range(50):
        size = queue_push(hs, hk, hk, size, scores[i], i, i)
    popped = []
    while size:
        popped.append(int(hk[0]))
        size = queue_pop(hs, hk, hk, size)
    assert popped == ranked
