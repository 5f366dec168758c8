"""A compact scoring copy of the codes for the walk: one byte a dimension (scalar quantisation,
as FAISS's ``QT_8bit``), a quarter of the float32 codes' memory.

At a million codes a walk is bound by memory, not arithmetic: each node it scores is a random
512-byte row (d = 128 float32), eight cache lines, and the lines of one expansion's
neighbours queue behind the core's few outstanding misses.  Scored from a one-byte copy, a
node is two lines.  The walk steers by these approximate cosines; the best ``rescore`` nodes
it found are then scored exactly from the float32 codes, and the answer is the best k of those
by exact cosine -- so results are rows with their exact cosines, as ever, and recall is
measured against exact search as ever.

Per dimension t, code c_t in 0..255 stands for ``low_t + c_t * step_t`` (``low``/``step``
spanning the codes' range in that dimension, each value rounded to the nearest level), so
``<q, x> ~ sum_t q_t low_t + sum_t (q_t step_t) c_t``.  The first sum is the same for every
row of one query, so the walk compares ``<q * step, c>`` (:func:`scaled_query`), ordered as
the approximate cosines.  Which nodes are rescored: every one whose approximate cosine lies
within a few standard deviations of the rounding error (:func:`error_sd`) of the k-th best
approximate cosine -- few where the data's cosines are spread (generated clusters), many where
they crowd together (PCA codes of similar images), so recall holds either way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from graphret.kernels.jit import njit

__all__ = ["CompactCodes", "compact_codes", "scaled_query", "error_sd", "LEVELS"]

#: levels of one byte
LEVELS = 255


class CompactCodes(NamedTuple):
    """The codes (and the entry points' codes) at one byte a dimension: row j stands for
    ``low + codes[j] * step``."""

    codes: np.ndarray  # uint8 (n, d), contiguous
    low: np.ndarray  # float32 (d,)
    step: np.ndarray  # float32 (d,): > 0
    entry_codes: np.ndarray  # uint8 (e, d): codes[entries], contiguous

    def decoded(self, rows: np.ndarray) -> np.ndarray:
        """The float32 values rows ``rows`` stand for (tests, inspection)."""
        return self.low + self.codes[rows].astype(np.float32) * self.step


def compact_codes(codes: np.ndarray, entries: np.ndarray, *, block: int = 1 << 16) -> CompactCodes:
    """The one-byte copy of float32 ``codes`` (n, d), per dimension spanning its range in
    :data:`LEVELS` steps (a dimension with one value gets step 1, code 0); ``entries``: the
    walk's entry rows, whose codes are kept contiguous too.  ``block`` rows are quantised at a
    time (no n-sized float temporaries)."""
    codes = np.asarray(codes, dtype=np.float32)
    n, d = codes.shape
    if n == 0:
        low = np.zeros(d, np.float32)
        step = np.ones(d, np.float32)
    else:
        low = codes.min(axis=0)
        span = codes.max(axis=0) - low
        step = np.where(span > 0, span / LEVELS, 1.0).astype(np.float32)
    out = np.empty((n, d), np.uint8)
    for a in range(0, n, block):
        scaled = (codes[a:a + block] - low) / step
        np.rint(scaled, out=scaled)
        np.clip(scaled, 0, LEVELS, out=scaled)
        out[a:a + block] = scaled
    entries = np.asarray(entries, dtype=np.int64)
    return CompactCodes(out, low.astype(np.float32), step, np.ascontiguousarray(out[entries]))


@njit(cache=True, inline="always", python=lambda q, step, out: np.multiply(q, step, out=out))
def scaled_query(q, step, out):
    """``q * step`` into out: the query a walk over compact codes scores them with (ordered as
    the approximate cosines, less the query's constant ``<q, low>``)."""
    for t in range(q.shape[0]):
        out[t] = q[t] * step[t]
    return out


@njit(cache=True, inline="always", python=lambda q_scaled: np.float32(np.sqrt(np.sum(q_scaled.astype(np.float64) ** 2) / 12)))
def error_sd(q_scaled):
    """The standard deviation of an approximate cosine's rounding error, for the scaled query
    ``q * step``: each code is off by a uniform fraction of its step in (-1/2, 1/2), variance
    1/12, so ``sd = sqrt(sum_t (q_t step_t)^2 / 12)``."""
    total = 0.0
    for t in range(q_scaled.shape[0]):
        total += q_scaled[t] * q_scaled[t]
    return np.float32(np.sqrt(total / 12.0))
