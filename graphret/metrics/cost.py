"""Cost metrics of a retrieval mode: recall against flat, throughput, latency, scanned fraction."""

from __future__ import annotations

import numpy as np


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int | None = None) -> float:
    """``recall@K`` of a mode against flat (exact) search: the mean over queries of
    ``|top-K(mode) ∩ top-K(flat)| / K``, with ``found`` and ``truth`` the (n, >=K) item ids of
    the mode's and flat's results."""
    found = np.asarray(found)
    truth = np.asarray(truth)
    k = truth.shape[1] if k is None else k
    if found.ndim != 2 or truth.ndim != 2 or len(found) != len(truth):
        raise ValueError("expected two (n, K) result matrices for the same queries")
    if not 1 <= k <= min(found.shape[1], truth.shape[1]):
        raise ValueError(f"k={k} must be between 1 and the number of results")
    if len(found) == 0:
        return float("nan")
    hits = [len(np.intersect1d(a[:k], b[:k])) for a, b in zip(found, truth)]
    return float(np.mean(hits) / k)


def queries_per_second(n_queries: int, seconds: float) -> float:
    """Throughput ``n_queries / seconds`` (wall-clock seconds for all of them)."""
    if seconds <= 0:
        return float("inf")
    return float(n_queries) / float(seconds)


def latency_percentile(latencies: np.ndarray, percentile: float) -> float:
    """The ``percentile``-th percentile (e.g. 50, 95) of per-query latencies, in the latencies'
    unit, by linear interpolation between order statistics (numpy's default): with the sorted
    latencies x_0..x_{n-1}, position ``h = (n - 1) * p / 100`` gives
    ``x_floor(h) + (h - floor(h)) * (x_{floor(h)+1} - x_floor(h))``."""
    a = np.asarray(latencies, np.float64)
    if a.size == 0:
        return float("nan")
    return float(np.percentile(a, percentile))


def fraction_scanned(scanned: np.ndarray) -> float:
    """Mean over queries of the fraction of the archive whose codes each query compared:
    ``(1/n) * sum_q |compared(q)| / |archive|``."""
    a = np.asarray(scanned, np.float64)
    return float(a.mean()) if a.size else float("nan")
