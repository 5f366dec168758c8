"""Unit rows: the one normalisation of query codes, ``x / ||x||``, in a kernel so that a single
query's walk (:class:`graphret.graph.walk.SingleWalk`) normalises its code in the same compiled
call, and every batch (:func:`graphret.query.queries.unit_codes`) gets the very same bits.

The norm sums the float32 values' squares in float64, in row order (exact squares: no
overflow for any finite float32, and no underflow of a tiny non-zero code), and each value is
divided by it in float64, rounded once to float32.  No fast-math: the same operations in the
same order compiled and run as Python (:func:`graphret.kernels.jit.interpreted`).

numba's on-disk cache of a kernel that calls this one (``graph.walk._walk_code``) is keyed by the
caller's file: after editing this file, delete the ``__pycache__/*.nbi`` and ``*.nbc`` files.
"""

from __future__ import annotations

import numpy as np

from graphret.kernels.jit import njit

__all__ = ["unit_rows", "UNIT_OK", "UNIT_NOT_FINITE", "UNIT_ZERO"]

#: :func:`unit_rows` statuses: every row made unit; a NaN or infinite value; an all-zero row
UNIT_OK, UNIT_NOT_FINITE, UNIT_ZERO = 0, 1, 2


@njit(cache=True, interpretable=True)
def unit_rows(codes, out):
    """Each row of ``codes`` (float32 (q, d)) divided by its L2 norm into ``out`` (float32
    (q, d)).  Returns (status, row): ``UNIT_OK``; ``UNIT_NOT_FINITE`` when a value is NaN or
    infinite (before any zero row); ``UNIT_ZERO`` and the first all-zero row.  ``out`` is
    complete only with ``UNIT_OK``."""
    zero = -1
    for i in range(codes.shape[0]):
        s = 0.0
        for t in range(codes.shape[1]):
            v = np.float64(codes[i, t])
            s += v * v
        if not np.isfinite(s):
            return UNIT_NOT_FINITE, i
        if s == 0.0:
            if zero < 0:
                zero = i
            continue
        norm = np.sqrt(s)
        for t in range(codes.shape[1]):
            out[i, t] = np.float64(codes[i, t]) / norm
    if zero >= 0:
        return UNIT_ZERO, zero
    return UNIT_OK, -1
