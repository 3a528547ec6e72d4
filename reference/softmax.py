"""softmax over the class axis (the last): p_i = exp(z_i - max z) / sum_j exp(z_j - max z).
Backward: dz = p * (g - sum_j g_j p_j). Float only."""
from __future__ import annotations

import numpy as np

from .conv import check_grad
from .sigmoid import _float


def softmax(z):
    z = _float("z", z)
    if z.ndim < 1:
        from .errors import ShapeError

        raise ShapeError("z", "must have at least one axis (classes last)")
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(grad_out, z):
    """-> (dz,)."""
    p = softmax(z)
    g = check_grad("grad_out", grad_out, p.shape)
    return (p * (g - (g * p).sum(axis=-1, keepdims=True)),)
