"""Agreement between two labellings of the same items: contingency table, purity, NMI, ARI.

Both labellings are integer arrays of the same length (community ids, class indices, ...); the
values need not be dense.  Every score is computed from the contingency table
``n_ij = #{items with label i in U and label j in V}`` with row sums ``a_i``, column sums
``b_j`` and ``n`` items:

* purity of U against V: ``sum_i max_j n_ij / n`` (Manning, Raghavan & Schuetze,
  *Introduction to Information Retrieval*, 2008, sec. 16.3);
* NMI, the arithmetic-mean normalisation (Strehl & Ghosh 2002; scikit-learn's default)::

      I(U;V) = sum_ij (n_ij/n) log( n n_ij / (a_i b_j) ),   H(U) = -sum_i (a_i/n) log(a_i/n)
      NMI    = I(U;V) / ((H(U) + H(V)) / 2)                  (1 when both are one block)

* ARI (Hubert & Arabie 1985), with ``C(x) = x (x-1) / 2``::

      index    = sum_ij C(n_ij)
      expected = sum_i C(a_i) * sum_j C(b_j) / C(n)
      maximum  = (sum_i C(a_i) + sum_j C(b_j)) / 2
      ARI      = (index - expected) / (maximum - expected)      (1 when the denominator is 0)

They match ``sklearn.metrics.normalized_mutual_info_score`` and ``adjusted_rand_score``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphret.errors import InputError

__all__ = ["contingency_matrix", "purity", "nmi", "ari", "agreement"]


def _check_pair(u, v) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(u).ravel()
    v = np.asarray(v).ravel()
    if u.shape != v.shape:
        raise InputError(f"the two labellings differ in length ({u.size} and {v.size})")
    return u, v


def contingency_matrix(u, v) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Sparse contingency table ``n_ij`` (int64) and the distinct values of ``u`` (rows) and
    ``v`` (columns), sorted."""
    u, v = _check_pair(u, v)
    uu, iu = np.unique(u, return_inverse=True)
    vv, iv = np.unique(v, return_inverse=True)
    table = sp.csr_matrix((np.ones(u.size, np.int64), (iu.ravel(), iv.ravel())), shape=(uu.size, vv.size))
    table.sum_duplicates()
    return table, uu, vv


def purity(u, v) -> float:
    """Fraction of items whose U-block's most common V-label is their own: ``sum_i max_j n_ij / n``."""
    table, _, _ = contingency_matrix(u, v)
    n = table.sum()
    return float(table.max(axis=1).toarray().sum() / n) if n else float("nan")


def _entropy(counts: np.ndarray, n: float) -> float:
    p = counts[counts > 0] / n
    return float(-(p * np.log(p)).sum())


def nmi(u, v) -> float:
    """Normalised mutual information (arithmetic mean of the entropies), in [0, 1]."""
    table, _, _ = contingency_matrix(u, v)
    n = float(table.sum())
    if n == 0:
        return float("nan")
    a = np.asarray(table.sum(axis=1)).ravel().astype(np.float64)
    b = np.asarray(table.sum(axis=0)).ravel().astype(np.float64)
    hu, hv = _entropy(a, n), _entropy(b, n)
    if hu == 0.0 and hv == 0.0:
        return 1.0
    coo = table.tocoo()
    nij = coo.data.astype(np.float64)
    mi = float(np.sum(nij / n * np.log(n * nij / (a[coo.row] * b[coo.col]))))
    return float(min(max(mi / ((hu + hv) / 2.0), 0.0), 1.0))


def _pairs(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    return float(np.sum(x * (x - 1.0) / 2.0))


def ari(u, v) -> float:
    """Adjusted Rand index (Hubert & Arabie), 1 for identical partitions, about 0 for chance."""
    table, _, _ = contingency_matrix(u, v)
    n = float(table.sum())
    if n == 0:
        return float("nan")
    index = _pairs(table.data)
    sa = _pairs(np.asarray(table.sum(axis=1)).ravel())
    sb = _pairs(np.asarray(table.sum(axis=0)).ravel())
    expected = sa * sb / (n * (n - 1.0) / 2.0) if n > 1 else 0.0
    maximum = (sa + sb) / 2.0
    if maximum == expected:
        return 1.0
    return float((index - expected) / (maximum - expected))


def agreement(u, v) -> dict[str, float]:
    """``{"nmi", "ari", "purity", "inverse_purity"}`` of U against V (purity: U's blocks against
    V's labels; inverse purity: V's blocks against U's labels)."""
    return {"nmi": nmi(u, v), "ari": ari(u, v), "purity": purity(u, v), "inverse_purity": purity(v, u)}
