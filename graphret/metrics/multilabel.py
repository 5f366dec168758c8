"""Multi-label retrieval metrics (Haq, Moradi & Wang on CheXpert).

Labels are 0/1 matrices: the queries' ``query_labels`` (n, L) and the ranked results'
``result_labels`` (n, K, L), best first.  Uncertain labels should be mapped to 0 or 1 before
(Haq et al. count them positive in retrieval).
"""

from __future__ import annotations

import numpy as np

from graphret.metrics.retrieval import relevance

MULTILABEL_RULES = ("exact", "any")


def multilabel_relevance(query_labels: np.ndarray, result_labels: np.ndarray, *, rule: str = "exact") -> np.ndarray:
    """Binary relevance (n, K) of multi-label results, by a stated rule:

    * ``"exact"``: ``rel = 1[P(r) == P(q)]``, the result's set of positive labels equals the
      query's (Haq et al.'s precision);
    * ``"any"``: ``rel = 1[|P(r) ∩ P(q)| >= 1]``, they share at least one positive label.

    P(x) is the set of x's positive labels.  (A thin, named wrapper of
    :func:`graphret.metrics.retrieval.relevance` modes ``same`` / ``shared``.)
    """
    if rule not in MULTILABEL_RULES:
        raise ValueError(f"unknown multi-label relevance rule {rule!r}; use exact or any")
    q = np.asarray(query_labels)
    r = np.asarray(result_labels)
    if q.ndim != 2 or r.ndim != 3:
        raise ValueError("multi-label relevance needs query labels (n, L) and result labels (n, K, L)")
    return relevance(q, r, mode="same" if rule == "exact" else "shared")


def _check(q: np.ndarray, r: np.ndarray, k: int) -> None:
    if q.ndim != 2 or r.ndim != 3 or r.shape[0] != q.shape[0] or r.shape[2] != q.shape[1]:
        raise ValueError("expected query labels (n, L) and result labels (n, K, L)")
    if not 1 <= k <= r.shape[1]:
        raise ValueError(f"k={k} must be between 1 and the number of results ({r.shape[1]})")


def acg_at_k(query_labels: np.ndarray, result_labels: np.ndarray, k: int) -> float:
    """Average cumulative gain ``ACG@K`` (Haq et al.): the mean over queries of

    ``ACG@K(q) = (1/K) * sum_{i<=K} (1/L) * sum_{l<=L} 1[y_{r_i, l} == y_{q, l}]``,

    the fraction of the L labels (positive and negative alike) on which the i-th result agrees
    with the query, averaged over the top K.
    """
    q = np.asarray(query_labels) == 1
    r = np.asarray(result_labels) == 1
    _check(q, r, k)
    if len(q) == 0:
        return float("nan")
    agree = (r[:, :k, :] == q[:, None, :]).mean(axis=2)  # (n, k)
    return float(agree.mean())


def acg_p_at_k(query_labels: np.ndarray, result_labels: np.ndarray, k: int) -> float:
    """Positive-label average cumulative gain ``ACG_p@K`` (Haq et al.): the mean, over the
    queries with at least one positive label, of

    ``ACG_p@K(q) = (1/K) * sum_{i<=K} |P(r_i) ∩ P(q)| / |P(q)|``,

    the fraction of the query's positive labels that the i-th result also has.  Queries with no
    positive label are left out (NaN when none has one).
    """
    q = np.asarray(query_labels) == 1
    r = np.asarray(result_labels) == 1
    _check(q, r, k)
    n_pos = q.sum(axis=1)
    keep = n_pos > 0
    if not keep.any():
        return float("nan")
    shared = (r[keep, :k, :] & q[keep, None, :]).sum(axis=2)  # (n', k)
    return float((shared / n_pos[keep, None]).mean())
