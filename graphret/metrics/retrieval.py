"""Retrieval quality metrics, each one function on a ranked result list.

Inputs are the ranked results of n queries, best first:

* a **relevance matrix** ``rel`` of shape (n, K): ``rel[q, i]`` is the relevance of query q's
  i-th result, 1 / 0 (binary) or in [0, 1] (graded), see :func:`relevance`;
* or, for :func:`accuracy_at_k`, the class labels of the results (n, K) and of the queries (n,).

Ranks are 1-based in the formulas below.
"""

from __future__ import annotations

import numpy as np


def relevance(query_labels: np.ndarray, result_labels: np.ndarray, *, mode: str = "same", n_grades: int | None = None) -> np.ndarray:
    """Relevance matrix (n, K) float32 of results with labels ``result_labels`` (n, K) [or
    (n, K, C) multi-label] to queries with labels ``query_labels`` (n,) [(n, C)].

    * ``"same"``: 1 when the result's class equals the query's (multi-class), or its label
      set equals the query's (multi-label, exact match as Haq et al.'s precision), else 0.
    * ``"shared"`` (multi-label): 1 when they share at least one positive label.
    * ``"graded"`` (ordinal grades 0..G-1): ``1 - |g_q - g_r| / (G - 1)``, G = ``n_grades``.
    """
    q = np.asarray(query_labels)
    r = np.asarray(result_labels)
    if mode == "graded":
        if n_grades is None or n_grades < 2:
            raise ValueError("graded relevance needs n_grades >= 2")
        return (1.0 - np.abs(q[:, None].astype(np.float64) - r) / (n_grades - 1)).astype(np.float32)
    if r.ndim == q.ndim + 1 and q.ndim == 1:  # multi-class
        if mode != "same":
            raise ValueError(f"mode {mode!r} is for multi-label; use 'same' for classes")
        return (r == q[:, None]).astype(np.float32)
    qp, rp = q[:, None, :] == 1, r == 1
    if mode == "same":
        return np.all(qp == rp, axis=2).astype(np.float32)
    if mode == "shared":
        return np.any(qp & rp, axis=2).astype(np.float32)
    raise ValueError(f"unknown relevance mode {mode!r}; use same, shared or graded")


def precision_at_k(rel: np.ndarray, k: int) -> float:
    """Mean over queries of ``P@k = (1/k) * sum_{i<=k} rel_i`` (graded relevance gives the mean
    relevance of the top k)."""
    rel = np.asarray(rel, dtype=np.float64)
    _check_k(rel, k)
    return float(rel[:, :k].sum(axis=1).mean() / k) if len(rel) else float("nan")


def average_precision_at_k(rel: np.ndarray, k: int, *, n_relevant: np.ndarray | None = None) -> np.ndarray:
    """Per query, ``AP@k = (1/R) * sum_{i<=k} P@i * rel_i`` with binary relevance (rel >= 1
    counts; graded values below 1 do not).

    R is the number of relevant results in the top k (0 relevant -> AP 0), or, when
    ``n_relevant`` (the number of relevant items in the whole archive, per query) is given,
    ``min(k, n_relevant)``, so that missing relevant items are penalised.
    """
    rel = np.asarray(rel, dtype=np.float64)
    _check_k(rel, k)
    b = (rel[:, :k] >= 1.0).astype(np.float64)
    ranks = np.arange(1, k + 1, dtype=np.float64)
    precision_at_i = np.cumsum(b, axis=1) / ranks
    total = (precision_at_i * b).sum(axis=1)
    if n_relevant is None:
        denom = b.sum(axis=1)
    else:
        denom = np.minimum(k, np.asarray(n_relevant, dtype=np.float64))
    return np.divide(total, denom, out=np.zeros_like(total), where=denom > 0)


def mean_average_precision(rel: np.ndarray, k: int, *, n_relevant: np.ndarray | None = None) -> float:
    """``mAP@k``: the mean over queries of :func:`average_precision_at_k`."""
    ap = average_precision_at_k(rel, k, n_relevant=n_relevant)
    return float(ap.mean()) if len(ap) else float("nan")


def mean_reciprocal_rank(rel: np.ndarray, k: int | None = None) -> float:
    """``MRR = mean over queries of 1 / (rank of the first relevant result)`` (0 when none of
    the top k is relevant; rel >= 1 counts)."""
    rel = np.asarray(rel, dtype=np.float64)
    k = rel.shape[1] if k is None else k
    _check_k(rel, k)
    b = rel[:, :k] >= 1.0
    first = np.where(b.any(axis=1), b.argmax(axis=1) + 1, 0)
    rr = np.divide(1.0, first, out=np.zeros(len(first)), where=first > 0)
    return float(rr.mean()) if len(rr) else float("nan")


def accuracy_at_k(query_labels: np.ndarray, result_labels: np.ndarray, k: int) -> float:
    """``Acc@k``: the fraction of queries whose top-k results' majority class equals the
    query's class.  Acc@1 is the fraction whose first result has the query's class.

    A tie between classes is broken in favour of the class with the best-ranked result among
    the tied ones (the nearest-neighbour rule).
    """
    q = np.asarray(query_labels).reshape(-1)
    r = np.asarray(result_labels)
    _check_k(r, k)
    top = r[:, :k]
    if k == 1:
        return float((top[:, 0] == q).mean()) if len(q) else float("nan")
    correct = 0
    for labels, truth in zip(top, q):
        values, first, counts = np.unique(labels, return_index=True, return_counts=True)
        best = counts.max()
        tied = np.flatnonzero(counts == best)
        vote = values[tied[np.argmin(first[tied])]]
        correct += int(vote == truth)
    return correct / len(q) if len(q) else float("nan")


def _check_k(a: np.ndarray, k: int) -> None:
    if a.ndim < 2:
        raise ValueError("expected a (n_queries, K) matrix")
    if not 1 <= k <= a.shape[1]:
        raise ValueError(f"k={k} must be between 1 and the number of results ({a.shape[1]})")
