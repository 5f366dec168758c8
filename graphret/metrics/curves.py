"""Curves over the rank: precision@K for K = 1..K_max and precision-recall."""

from __future__ import annotations

import numpy as np


def precision_curve(rel: np.ndarray, k_max: int | None = None) -> np.ndarray:
    """``P@K`` for K = 1..K_max: element K-1 is the mean over queries of
    ``(1/K) * sum_{i<=K} rel_i`` (binary: rel >= 1 counts)."""
    b = (np.asarray(rel, np.float64) >= 1.0).astype(np.float64)
    k_max = b.shape[1] if k_max is None else k_max
    if b.ndim != 2 or not 1 <= k_max <= b.shape[1]:
        raise ValueError("expected a (n, K) relevance matrix and 1 <= k_max <= K")
    if len(b) == 0:
        return np.full(k_max, np.nan)
    hits = np.cumsum(b[:, :k_max], axis=1)
    return (hits / np.arange(1, k_max + 1)).mean(axis=0)


def precision_recall_curve(rel: np.ndarray, n_relevant: np.ndarray, k_max: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean (recall, precision) after each rank K = 1..K_max:

    ``precision(K) = mean_q hits_q(K) / K``, ``recall(K) = mean_q hits_q(K) / R_q``,

    with ``hits_q(K)`` the relevant results (rel >= 1) in query q's top K and ``R_q =
    n_relevant[q]`` its number of relevant archive items (queries with R_q = 0 are left out).
    Pass ``R_q = min(K_max, relevant items)`` for the recall reachable within K_max results.
    """
    b = (np.asarray(rel, np.float64) >= 1.0).astype(np.float64)
    k_max = b.shape[1] if k_max is None else k_max
    if b.ndim != 2 or not 1 <= k_max <= b.shape[1]:
        raise ValueError("expected a (n, K) relevance matrix and 1 <= k_max <= K")
    R = np.asarray(n_relevant, np.float64).reshape(-1)
    keep = R > 0
    if not keep.any():
        return np.full(k_max, np.nan), np.full(k_max, np.nan)
    hits = np.cumsum(b[keep, :k_max], axis=1)
    precision = (hits / np.arange(1, k_max + 1)).mean(axis=0)
    recall = (hits / R[keep, None]).mean(axis=0)
    return recall, precision
