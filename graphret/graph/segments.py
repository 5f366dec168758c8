"""Per-row sums over a CSR layout (``indptr``): the one safe home for ``np.add.reduceat`` on
row pointers.

``np.add.reduceat(values, indptr[:-1])`` is wrong twice for a CSR with empty rows: an empty row
gets the next row's first value rather than 0, and when the last rows are empty their start
equals ``len(values)``, which reduceat refuses (``IndexError ... out-of-bounds``).  Reducing at
the starts of the non-empty rows only is exact for both."""

from __future__ import annotations

import numpy as np

__all__ = ["row_sums"]


def row_sums(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """``out[i] = values[indptr[i]:indptr[i + 1]].sum(axis=0)``, 0 for an empty row; keeps
    ``values``' dtype (as reduceat does)."""
    values = np.asarray(values)
    indptr = np.asarray(indptr)
    n = len(indptr) - 1
    out = np.zeros((n, *values.shape[1:]), values.dtype)
    filled = np.flatnonzero(np.diff(indptr) > 0)
    if len(filled):
        out[filled] = np.add.reduceat(values[: indptr[-1]], indptr[filled], axis=0)
    return out
