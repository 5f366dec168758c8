"""Graded relevance for ordinal labels (diabetic-retinopathy grades) and nDCG@K."""

from __future__ import annotations

import numpy as np


def graded_relevance(query_grades: np.ndarray, result_grades: np.ndarray, n_grades: int) -> np.ndarray:
    """Relevance (n, K) in [0, 1] of results with ordinal grades ``result_grades`` (n, K) to
    queries with grades ``query_grades`` (n,), grades 0..G-1:

    ``rel(q, i) = 1 - |g_q - g_i| / (G - 1)``

    (1 for the same grade, 0 for the opposite end of the scale).
    """
    if n_grades < 2:
        raise ValueError("graded relevance needs n_grades >= 2")
    q = np.asarray(query_grades, np.float64).reshape(-1)
    r = np.asarray(result_grades, np.float64)
    if r.ndim != 2 or len(r) != len(q):
        raise ValueError("expected query grades (n,) and result grades (n, K)")
    return 1.0 - np.abs(q[:, None] - r) / (n_grades - 1)


def ideal_graded_relevance(query_grades: np.ndarray, archive_grades: np.ndarray, n_grades: int, k: int) -> np.ndarray:
    """The best possible relevance list (n, k) for each query: the k largest
    :func:`graded_relevance` values over the whole archive (grades ``archive_grades``; negative
    grades = unlabelled, ignored), sorted descending -- the ideal ranking nDCG divides by."""
    a = np.asarray(archive_grades).reshape(-1)
    a = a[a >= 0]
    counts = np.bincount(a.astype(np.int64), minlength=n_grades)[:n_grades]
    q = np.asarray(query_grades).reshape(-1)
    out = np.zeros((len(q), k))
    grades = np.arange(n_grades)
    for i, g in enumerate(q):
        rel = 1.0 - np.abs(g - grades) / (n_grades - 1)
        order = np.argsort(-rel, kind="stable")
        values = np.repeat(rel[order], counts[order])[:k]
        out[i, : len(values)] = values
    return out


def dcg_at_k(rel: np.ndarray, k: int) -> np.ndarray:
    """Per query, ``DCG@K = sum_{i<=K} rel_i / log2(i + 1)`` (ranks i from 1; linear gain)."""
    rel = np.asarray(rel, np.float64)
    if rel.ndim != 2 or not 1 <= k <= rel.shape[1]:
        raise ValueError(f"expected a (n, K) relevance matrix and 1 <= k <= K, got k={k}")
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    return (rel[:, :k] * discount).sum(axis=1)


def ndcg_at_k(rel: np.ndarray, k: int, *, ideal: np.ndarray | None = None) -> float:
    """``nDCG@K``: the mean over queries of ``DCG@K(rel) / DCG@K(ideal)``, with
    ``DCG@K = sum_{i<=K} rel_i / log2(i + 1)`` and graded (or binary) relevance ``rel`` (n, K).

    ``ideal`` (n, >=K): each query's best possible relevance list, sorted descending (e.g.
    :func:`ideal_graded_relevance` over the archive).  Without it the retrieved list sorted
    descending is used, which only measures the ordering of what was retrieved.  A query whose
    ideal DCG is 0 scores 0.
    """
    rel = np.asarray(rel, np.float64)
    dcg = dcg_at_k(rel, k)
    if ideal is None:
        ideal = -np.sort(-rel[:, :k], axis=1)
    ideal = np.asarray(ideal, np.float64)
    if ideal.shape[1] < k:
        ideal = np.pad(ideal, ((0, 0), (0, k - ideal.shape[1])))
    idcg = dcg_at_k(ideal, k)
    scores = np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)
    return float(scores.mean()) if len(scores) else float("nan")
