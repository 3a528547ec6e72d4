"""Array-module-generic kernels shared by the NumPy and CuPy backends (pass `xp` = numpy or cupy).

- geometry:    parameter validation and window geometry (plain Python ints)
- arrays:      array validation, padding, per-tap strided slices
- conv:        channels-last im2col + GEMM, col2im by strided adds, batch chunking
- pool:        max / avg / global / k-max pooling and their gradients
- elementwise: activations, softmax, cross-entropy, linear
- ops:         `ArrayOps`, every spec op with the reference's signature, bound to `self.xp`
"""

from .ops import ArrayOps

__all__ = ["ArrayOps"]
