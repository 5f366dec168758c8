"""Numba building blocks every compiled kernel of graphret shares, below the graph and the
communities layers: the one heap (:mod:`~graphret.kernels.heap`) and the SIMD vector
primitives with the one fast-math setting (:mod:`~graphret.kernels.vector`)."""
