"""The one heap of the kernels (graphret.kernels.heap): both orientations give the order of
ranks_before -- higher score first, ties by the smaller key -- whatever the push order."""

import numpy as np

from graphret.kernels.heap import (first_ranked, heap_drain, heap_push, key_bits, key_tie, kth_push, min_pop, min_push,
                                   queue_heapify, queue_pop, queue_push, queue_reserve, rank_key)


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


def test_rank_keys_sort_as_ranks_before_and_give_back_score_and_key():
    rng = np.random.default_rng(4)
    n = 400
    # ties, negatives, both zeros, infinities and tiny values: the order of floats, then the smaller key
    pool = np.array([-np.inf, -1.0, -0.5, -1e-30, -0.0, 0.0, 1e-30, 0.25, 0.9999999, 1.0, np.inf], np.float32)
    scores = np.concatenate([pool, rng.choice(pool, n - len(pool)), ]).astype(np.float32)
    scores[::7] = rng.standard_normal(len(scores[::7])).astype(np.float32)
    ties = rng.permutation(n).astype(np.int64) * 1_000_003  # keys up to ~4e8: both halves of the word used
    ranked = sorted(range(n), key=lambda i: (-float(scores[i]), ties[i]))
    bits = scores.view(np.uint32)
    keys = np.array([rank_key(bits[i], ties[i]) for i in range(n)], np.uint64)
    assert [int(np.flatnonzero(keys == key)[0]) for key in np.sort(keys)] == ranked
    back = np.array([key_bits(key) for key in keys], np.uint32).view(np.float32)
    assert np.array_equal(back, scores)  # (-0.0 comes back as 0.0, equal as floats)
    assert [key_tie(key) for key in keys] == ties.tolist()
    first = first_ranked(keys, n, 17)
    assert [int(np.flatnonzero(keys == key)[0]) for key in first] == ranked[:17]
    assert len(first_ranked(keys, 9, 17)) == 9  # fewer than k: all of them, ranked
    assert [int(np.flatnonzero(keys == key)[0]) for key in first_ranked(keys, 9, 17)] == sorted(
        range(9), key=lambda i: (-float(scores[i]), ties[i]))


def test_one_array_heaps_pop_smallest_first_and_keep_the_kth_largest_at_the_root():
    rng = np.random.default_rng(5)
    values = rng.integers(0, 40, 300).astype(np.uint64)  # rank keys are uint64; many equal values
    h, size = np.empty(300, np.uint64), 0
    for x in values:
        size = min_push(h, size, x)
    popped = []
    while size:
        popped.append(int(h[0]))
        size = min_pop(h, size)
    assert popped == sorted(values.tolist())
    scores = rng.standard_normal(300).astype(np.float32)
    best, size = np.empty(12, np.float32), 0
    for a, x in enumerate(scores):
        size = kth_push(best, size, 12, x)
        assert best[0] == np.sort(scores[:a + 1])[::-1][min(a, 11)]  # the 12th best so far (the worst kept before)
    assert sorted(best.tolist()) == sorted(np.sort(scores)[-12:].tolist())
