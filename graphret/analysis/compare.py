"""Two partitions of the same archive side by side (CNM against Leiden, or against a cut):
agreement scores and the contingency table of their largest communities."""

from __future__ import annotations

import numpy as np
import pandas as pd

from graphret.analysis.scores import agreement, contingency_matrix

__all__ = ["compare_partitions", "contingency_table"]


def compare_partitions(a: np.ndarray, b: np.ndarray, *, names: tuple[str, str] = ("a", "b")) -> dict:
    """``{"a", "b", "communities_a", "communities_b", "nmi", "ari", "purity", "inverse_purity"}``:
    purity is how far ``a``'s communities sit inside single ``b`` communities (the share of
    items in the best-matching ``b`` community of their ``a`` community), inverse purity the
    other way round."""
    a = np.asarray(a)
    b = np.asarray(b)
    return {
        "a": names[0],
        "b": names[1],
        "communities_a": int(np.unique(a).size),
        "communities_b": int(np.unique(b).size),
        **agreement(a, b),
    }


def contingency_table(a: np.ndarray, b: np.ndarray, *, top: int = 10, names: tuple[str, str] = ("a", "b"),
                      other: bool = True) -> pd.DataFrame:
    """Item counts of the ``top`` largest communities of ``a`` (rows, index ``"<name> <id>"``)
    against the ``top`` largest of ``b`` (columns); with ``other`` a last row and column gather
    the remaining communities, and a ``total`` column gives each row's size."""
    table, ua, ub = contingency_matrix(a, b)
    dense_rows = np.asarray(table.sum(axis=1)).ravel()
    dense_cols = np.asarray(table.sum(axis=0)).ravel()
    ra = np.lexsort((ua, -dense_rows))[:top]
    rb = np.lexsort((ub, -dense_cols))[:top]
    sub = table[ra][:, rb].toarray()
    frame = pd.DataFrame(sub, index=[f"{names[0]} {ua[i]}" for i in ra], columns=[f"{names[1]} {ub[j]}" for j in rb])
    if other:
        rest_cols = np.setdiff1d(np.arange(ub.size), rb)
        rest_rows = np.setdiff1d(np.arange(ua.size), ra)
        frame[f"{names[1]} other"] = np.asarray(table[ra][:, rest_cols].sum(axis=1)).ravel() if rest_cols.size else 0
        if rest_rows.size:
            last = np.concatenate([np.asarray(table[rest_rows][:, rb].sum(axis=0)).ravel(),
                                   [table[rest_rows][:, rest_cols].sum() if rest_cols.size else 0]])
            frame.loc[f"{names[0]} other"] = last
    frame["total"] = frame.sum(axis=1)
    return frame.astype(np.int64)
