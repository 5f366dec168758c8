"""Arrow arrays made from numpy arrays and Python strings through their buffers.

pyarrow's own conversions (``pa.array``, ``pa.scalar``, a compute function given a Python or
numpy value) ask pandas whether the value is one of its objects, importing pandas on first use:
about a third of a second that a command writing query results would pay for nothing.  These
build the same arrays from buffers (:func:`column_array` in :mod:`graphret.store.read` is the
way back).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

__all__ = ["numeric_array", "text_array", "text_scalar"]

#: Arrow's string type holds at most this many bytes (32-bit offsets); past it, large_string
_STRING_BYTES = 2**31 - 1


def _bits(values: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(values, bitorder="little"))


def numeric_array(values: np.ndarray) -> pa.Array:
    """A 1-D numeric or boolean numpy array as an Arrow array of its dtype (no nulls); a
    contiguous numeric array is not copied."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {values.shape}")
    if values.dtype == np.bool_:
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, _bits(values)])
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def text_array(values: Sequence[str | None]) -> pa.Array:
    """Python strings (None: null) as an Arrow string array (large_string past 2 GiB)."""
    n = len(values)
    encoded = [b"" if value is None else value.encode() for value in values]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, count=n), out=offsets[1:])
    large = offsets[-1] > _STRING_BYTES
    missing = np.fromiter((value is None for value in values), np.bool_, count=n)
    nulls = int(missing.sum())
    validity = _bits(~missing) if nulls else None
    return pa.Array.from_buffers(pa.large_string() if large else pa.string(), n,
                                 [validity, pa.py_buffer(offsets if large else offsets.astype(np.int32)),
                                  pa.py_buffer(b"".join(encoded))], null_count=nulls)


def text_scalar(value: str) -> pa.Scalar:
    """A string as an Arrow scalar (for compute functions' literal arguments)."""
    return text_array([value])[0]
