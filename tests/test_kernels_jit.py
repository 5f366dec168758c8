"""Kernels compiled on first use (graphret.kernels.jit): the same functions run compiled or, under
``interpreted()``, as Python, with the same answers; nothing else runs as Python."""

import threading
import time

import numpy as np
import pytest

from graphret.graph.build import graph_from_knn
from graphret.graph.knn import exact_knn
from graphret.graph.search_graph import build_search_graph, entry_points
from graphret.graph.walk import graph_walk
from graphret.kernels.jit import Kernel, interpreted, njit, prange
from graphret.query.graph_region import RegionGraph, graph_region_search

PYTHON_CALLS: list[int] = []


@njit(python=lambda x: PYTHON_CALLS.append(x) or 2.0 * x)
def _double(x):
    return 2.0 * x


@njit(parallel=True, interpretable=True)
def _doubled_sum(values):
    out = np.zeros(values.shape[0])
    for i in prange(values.shape[0]):
        out[i] = _double(values[i])
    return out.sum()


@njit
def _doubled_sum_compiled_always(values):
    s = 0.0
    for i in range(values.shape[0]):
        s += _double(values[i])
    return s


class _SlowToMake(Kernel):
    """A kernel whose compiled form is made only once ``release`` is set (``making`` tells
    that a caller asked for it)."""

    making = threading.Event()
    release = threading.Event()

    @property
    def dispatcher(self):
        type(self).making.set()
        assert type(self).release.wait(30)
        return super().dispatcher


def _halved(x):
    return 0.5 * x


_slow_callee = _SlowToMake(_halved, {})


def _plus_one(x):
    return _slow_callee(x) + 1.0


def test_a_call_from_another_thread_waits_until_the_kernels_globals_are_complete():
    """A kernel's dispatcher exists before the kernels it names are patched into its globals
    (so that a kernel naming itself finds it); a second thread calling it in between must wait,
    or numba would compile it over a half-made copy of its globals (a kernel object in them)."""
    kernel = njit(_plus_one)
    maker = threading.Thread(target=lambda: kernel.dispatcher)
    maker.start()
    assert _SlowToMake.making.wait(30)  # the maker is patching the globals: the callee is being made
    outcome: list = []

    def call() -> None:
        try:
            outcome.append(kernel(4.0))
        except Exception as error:  # noqa: BLE001 - what a half-made kernel raises
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    caller.join(3)  # a caller that does not wait compiles (and fails) meanwhile
    assert outcome == []
    _SlowToMake.release.set()
    maker.join(30)
    caller.join(60)
    assert outcome == [3.0]


def test_a_kernel_compiles_with_the_kernels_it_calls_or_runs_them_all_as_python():
    values = np.arange(5, dtype=np.float64)
    PYTHON_CALLS.clear()
    assert _doubled_sum(values) == 20.0 and PYTHON_CALLS == []  # compiled, its callee with it
    assert isinstance(_double, Kernel) and _double._dispatcher is not None
    with interpreted():
        assert _doubled_sum(values) == 20.0
        assert PYTHON_CALLS == [0.0, 1.0, 2.0, 3.0, 4.0]  # the callee's Python form, from the Python kernel
        PYTHON_CALLS.clear()
        assert _doubled_sum_compiled_always(values) == 20.0  # not declared interpretable: compiled
        assert PYTHON_CALLS == []
    assert _doubled_sum(values) == 20.0 and PYTHON_CALLS == []  # compiled again after the block


def _small_world(n=400, d=12, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    graph = graph_from_knn(*exact_knn(x, 6))
    labels = rng.integers(0, 8, n)
    lists = build_search_graph(x, graph, max_degree=8, threads=1)
    return x, graph, labels, lists, entry_points(x, labels, graph=lists)


@pytest.mark.parametrize("filtered", [False, True])
def test_interpreted_searches_answer_as_the_compiled_ones(filtered):
    """One query's walk and region search as Python (what `graphret query --id` runs) return the
    compiled kernels' rows, compared counts and chosen communities, cosines to float rounding."""
    x, graph, labels, lists, entries = _small_world()
    rg = RegionGraph.from_graph(graph, labels, knn_k=6)
    allowed = (np.arange(len(x)) % 3 != 0) if filtered else None
    for r in range(0, 40, 4):
        q, ex = x[r : r + 1], np.array([r])
        walk = dict(entries=entries, ef=12, exclude=ex, allowed=allowed, threads=1)
        region = dict(walk=(*lists, entries), region=rg, ef=12, exclude=ex, allowed=allowed, threads=1, return_chosen=True,
                      hold_nearest=r % 8 == 4)  # (the search's default order holds the nearest item)
        compiled = graph_walk(x, *lists, q, 10, **walk), graph_region_search(x, q, 10, **region)
        with interpreted():
            python = graph_walk(x, *lists, q, 10, **walk), graph_region_search(x, q, 10, **region)
        for c, p in zip(compiled, python):
            np.testing.assert_array_equal(c[0], p[0])  # rows
            np.testing.assert_allclose(c[1], p[1], atol=1e-6)  # cosines
            np.testing.assert_array_equal(c[2], p[2])  # compared
        np.testing.assert_array_equal(compiled[1][3], python[1][3])  # chosen community
        assert r not in python[1][0] and (allowed is None or allowed[python[1][0]].all())


def test_query_codes_are_made_unit_with_the_same_bits_compiled_and_as_python():
    """unit_rows, the one normalisation of query codes (a single query's compiled call runs it
    too): float64 sums of squares, so codes whose float32 squares overflow or underflow still
    come out unit; the first all-zero row and any NaN are named."""
    from graphret.kernels.unit import UNIT_NOT_FINITE, UNIT_OK, UNIT_ZERO, unit_rows
    from graphret.query.queries import unit_codes

    codes = np.random.default_rng(3).standard_normal((6, 16)).astype(np.float32)
    codes[1] *= np.float32(1e30)  # squares beyond float32
    codes[2] *= np.float32(1e-30)  # squares below it
    compiled, python = np.empty_like(codes), np.empty_like(codes)
    assert unit_rows(codes, compiled) == (UNIT_OK, -1)
    with interpreted():
        assert unit_rows(codes, python) == (UNIT_OK, -1)
    np.testing.assert_array_equal(compiled, python)
    np.testing.assert_allclose(np.linalg.norm(compiled, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(compiled, codes / np.linalg.norm(codes.astype(np.float64), axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_array_equal(unit_codes(codes), compiled)
    codes[4] = 0.0
    codes[5] = 0.0
    assert unit_rows(codes, compiled) == (UNIT_ZERO, 4)
    codes[5, 3] = np.nan
    assert unit_rows(codes, compiled)[0] == UNIT_NOT_FINITE  # before any zero row
