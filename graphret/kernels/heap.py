"""The one binary heap of graphret's kernels (numba).

An entry is ``(score, tie key, payload)``, held in three parallel arrays ``(hs, ht, hi)``.
Entries rank by **higher score first, then smaller tie key** (:func:`ranks_before`): results
never depend on the order items were scanned in.  A heap is used in one of two orientations:

* **bounded top-k** (:func:`heap_push`, :func:`heap_drain`): at most k entries, the *worst*
  kept at the root, so an offered entry is decided with one comparison in the common case;
  drained best first.  kNN graph, flat and probe results, the walk-list candidate pools.
* **priority queue** (:func:`queue_push`, :func:`queue_pop`, :func:`queue_heapify`): the
  *best* entry at the root, popped first.  CNM's merge queue.

For a small k, or when the kept entries must be sorted all along, :func:`sorted_push` keeps
a bounded buffer sorted best first by insertion instead (the walk's entry points, the
walk-list candidate pools: faster there than a heap and its final drain).

Where the order is one value's, a heap is one array with the smallest value at the root
(:func:`min_push`, :func:`min_pop`, :func:`kth_push`): the walk's candidate queue of rank keys
(below), and its ef-th best score so far (the ef best scores, the worst at the root), one
comparison a step and one array moved instead of three (the walk 10-15 % faster on MedNIST
pixel codes).

For a one-off selection (the best k of a walk's few hundred scored nodes), :func:`rank_key`
packs an entry into one ``uint64`` whose ascending order is this order, and
:func:`first_ranked` selects and sorts the first k keys (a partition, then a sort of k): about
half the time of pushing every entry through a bounded heap.

A queue whose tie key is also its payload passes ``hi=None``:
numba compiles that case without the payload array (the ``is None`` branches are pruned).
"""

from __future__ import annotations

import numpy as np
from graphret.kernels.jit import njit

__all__ = ["ranks_before", "min_push", "min_pop", "kth_push", "rank_key", "key_bits", "key_tie", "first_ranked", "sorted_push", "heap_push", "heap_drain", "queue_push", "queue_pop", "queue_heapify", "queue_reserve"]


@njit(cache=True, inline="always")
def ranks_before(s1, t1, s2, t2):
    """(s1, t1) ranks before (s2, t2): higher score first, then smaller tie key."""
    return s1 > s2 or (s1 == s2 and t1 < t2)


@njit(cache=True, inline="always")
def _above(s1, t1, s2, t2, worst_root):
    """Entry 1 belongs above entry 2: it ranks after it in a worst-root heap, before it in a
    best-root one."""
    if worst_root:
        return ranks_before(s2, t2, s1, t1)
    return ranks_before(s1, t1, s2, t2)


@njit(cache=True, inline="always")
def _sift_up(hs, ht, hi, pos, s, t, idx, worst_root):
    """Place (s, t, idx) at the hole ``pos`` or above it."""
    while pos > 0:
        parent = (pos - 1) >> 1
        if _above(s, t, hs[parent], ht[parent], worst_root):
            hs[pos] = hs[parent]
            ht[pos] = ht[parent]
            if hi is not None:
                hi[pos] = hi[parent]
            pos = parent
        else:
            break
    hs[pos] = s
    ht[pos] = t
    if hi is not None:
        hi[pos] = idx


@njit(cache=True, inline="always")
def _sift_down(hs, ht, hi, size, pos, s, t, idx, worst_root):
    """Place (s, t, idx) at the hole ``pos`` or below it, in a heap of ``size`` entries."""
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        right = child + 1
        if right < size and _above(hs[right], ht[right], hs[child], ht[child], worst_root):
            child = right
        if _above(hs[child], ht[child], s, t, worst_root):
            hs[pos] = hs[child]
            ht[pos] = ht[child]
            if hi is not None:
                hi[pos] = hi[child]
            pos = child
        else:
            break
    hs[pos] = s
    ht[pos] = t
    if hi is not None:
        hi[pos] = idx


@njit(cache=True)
def heap_push(hs, ht, hi, size, k, s, t, idx):
    """Offer (score s, tie key t, payload idx) to the bounded top-k heap (hs, ht, hi) holding
    ``size`` entries, whose root is the worst kept; returns the new size."""
    if size < k:
        _sift_up(hs, ht, hi, size, s, t, idx, True)
        return size + 1
    if ranks_before(s, t, hs[0], ht[0]):
        _sift_down(hs, ht, hi, size, 0, s, t, idx, True)
    return size


@njit(cache=True)
def heap_drain(hs, ht, hi, size, out_i, out_s):
    """Empty the top-k heap into out_i / out_s (payloads, scores), best first (destroys the
    heap)."""
    for end in range(size - 1, -1, -1):
        out_i[end] = hi[0]
        out_s[end] = hs[0]
        _sift_down(hs, ht, hi, end, 0, hs[end], ht[end], hi[end], True)


@njit(cache=True)
def queue_push(hs, ht, hi, size, s, t, idx):
    """Push (s, t, idx) on the best-root queue of ``size`` entries (the arrays hold at least
    ``size + 1``); returns the new size."""
    _sift_up(hs, ht, hi, size, s, t, idx, False)
    return size + 1


@njit(cache=True)
def queue_pop(hs, ht, hi, size):
    """Remove the root (the best entry; read it before) of the queue; returns the new size."""
    size -= 1
    if size > 0:
        _sift_down(hs, ht, hi, size, 0, hs[size], ht[size], ht[size] if hi is None else hi[size], False)
    return size


@njit(cache=True)
def queue_heapify(hs, ht, hi, size):
    """Order the first ``size`` entries into a best-root queue (Floyd's bottom-up build)."""
    for pos in range((size >> 1) - 1, -1, -1):
        _sift_down(hs, ht, hi, size, pos, hs[pos], ht[pos], hi[pos], False)


@njit(cache=True)
def _grown(arr, cap):
    out = np.empty(cap, arr.dtype)
    out[: arr.size] = arr
    return out


@njit(cache=True)
def queue_reserve(hs, ht, hi, size):
    """The queue's arrays with room for one more entry: themselves, or copies of twice the
    capacity when full (three separate arrays)."""
    if size < hs.size:
        return hs, ht, hi
    cap = 2 * hs.size
    return _grown(hs, cap), _grown(ht, cap), _grown(hi, cap)


@njit(cache=True, inline="always")
def sorted_push(ss, sj, size, k, s, j):
    """Offer (score s, key j) to the buffer (ss, sj) of ``size`` entries sorted best first, at
    most k kept; returns the new size."""
    if size < k:
        pos = size
        size += 1
    elif ranks_before(s, j, ss[size - 1], sj[size - 1]):
        pos = size - 1
    else:
        return size
    while pos > 0 and ranks_before(s, j, ss[pos - 1], sj[pos - 1]):
        ss[pos] = ss[pos - 1]
        sj[pos] = sj[pos - 1]
        pos -= 1
    ss[pos] = s
    sj[pos] = j
    return size


_SIGN = np.uint64(0x80000000)
_LOW = np.uint64(0xFFFFFFFF)
_HALF = np.uint64(32)


@njit(cache=True, inline="always")
def rank_key(bits, t):
    """The entry (score, tie key t) as one ``uint64`` whose ascending order is
    :func:`ranks_before`'s: the float32 score, given as its bits (the ``uint32`` view), mapped to
    a 32-bit integer falling as the score rises, in the high half; t (0 <= t < 2**32) in the low
    half.  -0.0 counts as 0.0, as in a comparison of floats."""
    u = np.uint64(bits)
    if u == _SIGN:
        u = np.uint64(0)
    up = _LOW - u if u >= _SIGN else u + _SIGN  # rises with the score: negatives below positives
    return ((_LOW - up) << _HALF) | np.uint64(t)


@njit(cache=True, inline="always")
def key_bits(key):
    """The score's float32 bits (``uint32``) of a :func:`rank_key`."""
    up = _LOW - (key >> _HALF)
    return np.uint32(up - _SIGN if up >= _SIGN else _LOW - up)


@njit(cache=True, inline="always")
def key_tie(key):
    """The tie key (int64) of a :func:`rank_key`."""
    return np.int64(key & _LOW)


@njit(cache=True)
def first_ranked(keys, m, k):
    """The min(k, m) entries of ``keys[:m]`` (:func:`rank_key`) that rank first, in rank order,
    as a new array: a partition, then a sort of the k kept."""
    if m > k:
        return np.sort(np.partition(keys[:m], k - 1)[:k])
    return np.sort(keys[:m])


@njit(cache=True, inline="always")
def _min_up(h, pos, x):
    """Place x at the hole ``pos`` of the one-array min-heap h, or above it."""
    while pos > 0:
        parent = (pos - 1) >> 1
        if x < h[parent]:
            h[pos] = h[parent]
            pos = parent
        else:
            break
    h[pos] = x


@njit(cache=True, inline="always")
def _min_down(h, size, pos, x):
    """Place x at the hole ``pos`` of the one-array min-heap h of ``size`` values, or below it."""
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and h[child + 1] < h[child]:
            child += 1
        if h[child] < x:
            h[pos] = h[child]
            pos = child
        else:
            break
    h[pos] = x


@njit(cache=True, inline="always")
def min_push(h, size, x):
    """Push x on the one-array min-heap h of ``size`` values (room for one more); returns the
    new size."""
    _min_up(h, size, x)
    return size + 1


@njit(cache=True, inline="always")
def min_pop(h, size):
    """Remove the root (the smallest value; read it before) of the min-heap; returns the new size."""
    size -= 1
    if size > 0:
        _min_down(h, size, 0, h[size])
    return size


@njit(cache=True, inline="always")
def kth_push(h, size, k, x):
    """Offer x to the k largest values kept in the min-heap h (``h[0]``: the k-th largest once
    ``size == k``); returns the new size."""
    if size < k:
        _min_up(h, size, x)
        return size + 1
    if x > h[0]:
        _min_down(h, size, 0, x)
    return size
