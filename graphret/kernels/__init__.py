"""Numba building blocks every compiled kernel of graphret shares, below the graph and the
communities layers: numba's ``njit`` applied on first use (:mod:`~graphret.kernels.jit`, so
that importing graphret never imports numba, and one query can run its kernels as Python), the
one heap (:mod:`~graphret.kernels.heap`) and the SIMD vector primitives with the one fast-math
setting (:mod:`~graphret.kernels.vector`)."""
