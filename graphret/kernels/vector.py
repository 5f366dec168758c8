"""SIMD vector primitives of the compiled kernels, and the one fast-math setting they use.

``FAST`` lets LLVM reassociate float sums (SIMD dot products) while keeping inf/NaN
semantics; every kernel that scores codes compiles with it.  Run as Python
(:func:`graphret.kernels.jit.interpreted`), a dot product is numpy's and a prefetch does
nothing.
"""

from __future__ import annotations

import numpy as np

from graphret.kernels.jit import njit

#: float reassociation for SIMD dot products, keeping inf/NaN semantics
FAST = {"reassoc", "contract", "nsz", "arcp"}

__all__ = ["FAST", "prefetch", "prefetch_at", "prefetch_row", "qdot", "qdot4", "row_dot"]


def _prefetch_codegen(context, builder, signature, args):
    """``llvm.prefetch`` (read, keep in all cache levels) of the element ``args[1:]`` index."""
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils

    aryty = signature.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    inds = [context.cast(builder, value, ty, types.intp) for value, ty in zip(args[1:], signature.args[1:])]
    ptr = cgutils.get_item_pointer2(context, builder, data=ary.data, shape=cgutils.unpack_tuple(builder, ary.shape),
                                    strides=cgutils.unpack_tuple(builder, ary.strides), layout=aryty.layout,
                                    inds=inds, wraparound=False, boundscheck=False)
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                        "llvm.prefetch.p0i8")
    builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
    return context.get_dummy_value()


def _prefetch_intrinsic(ndim: int):
    """The compiled prefetch of an element of an ``ndim``-D array (a numba intrinsic)."""
    from numba import types
    from numba.extending import intrinsic

    def prefetch(typingctx, arr, row, col):
        if not isinstance(arr, types.Array) or arr.ndim != 2:
            return None
        return types.void(arr, row, col), _prefetch_codegen

    def prefetch_at(typingctx, arr, i):
        if not isinstance(arr, types.Array) or arr.ndim != 1:
            return None
        return types.void(arr, i), _prefetch_codegen

    return intrinsic(prefetch if ndim == 2 else prefetch_at)


def _no_prefetch(*args) -> None:
    """A prefetch is a hint to the CPU's caches: nothing to do in Python."""


@njit(python=_no_prefetch, compiled=lambda: _prefetch_intrinsic(2))
def prefetch(arr, row, col):
    """Hint the CPU to fetch ``arr[row, col]``'s cache line (LLVM ``llvm.prefetch``, read, keep
    in all cache levels): a walk prefetches every unseen neighbour's code before scoring
    them, so the memory loads overlap instead of queueing one after another."""


@njit(python=_no_prefetch, compiled=lambda: _prefetch_intrinsic(1))
def prefetch_at(arr, i):
    """Hint the CPU to fetch ``arr[i]``'s cache line, for a 1-D array (a 'seen' stamp, a row
    pointer, the start of a neighbour list)."""


@njit(cache=True, inline="always", python=_no_prefetch)
def prefetch_row(X, j):
    """Prefetch row j of X, one call per 64-byte line."""
    step = max(1, 64 // X.itemsize)
    for t in range(0, X.shape[1], step):
        prefetch(X, j, t)


@njit(cache=True, fastmath=FAST, inline="always", python=lambda X, j, q: np.float32(X[j].astype(np.float32) @ q))
def qdot(X, j, q):
    """<x_j, q> in float32 (SIMD); X float32 codes, or one byte a dimension (uint8: a compact
    scoring copy, :mod:`graphret.graph.compact`), each element taken as a float32."""
    s = np.float32(0.0)
    for t in range(X.shape[1]):
        s += np.float32(X[j, t]) * q[t]
    return s


@njit(cache=True, fastmath=FAST, inline="always",
      python=lambda X, j0, j1, j2, j3, q: tuple(np.float32(v) for v in X[[j0, j1, j2, j3]].astype(np.float32) @ q))
def qdot4(X, j0, j1, j2, j3, q):
    """Four dot products in one pass over q (independent chains, q loaded once); X as :func:`qdot`'s."""
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    for t in range(X.shape[1]):
        v = q[t]
        s0 += np.float32(X[j0, t]) * v
        s1 += np.float32(X[j1, t]) * v
        s2 += np.float32(X[j2, t]) * v
        s3 += np.float32(X[j3, t]) * v
    return s0, s1, s2, s3


@njit(cache=True, fastmath=FAST, inline="always", python=lambda X, a, b: X[a] @ X[b])
def row_dot(X, a, b):
    """<x_a, x_b> of two rows of X in float32 (SIMD)."""
    s = np.float32(0.0)
    for t in range(X.shape[1]):
        s += X[a, t] * X[b, t]
    return s
