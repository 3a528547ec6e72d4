"""global_max_pool / global_avg_pool: reduce every spatial axis, (N, C, *spatial) -> (N, C).

global_max_pool follows max_pool's rules (ties to the smaller flat index, the first NaN propagates)."""
from __future__ import annotations

import numpy as np

from ._params import zero_like
from ._pool import pool_input
from .conv import check_grad
from .max_pool import _argmax_first


def _flat(x):
    x = pool_input(x)
    return x, x.reshape(x.shape[:2] + (int(np.prod(x.shape[2:])),))


def global_max_pool(x):
    x, f = _flat(x)
    return np.take_along_axis(f, _argmax_first(f)[..., None], axis=-1)[..., 0]


def global_max_pool_backward(grad_out, x):
    """-> (dx,): the gradient goes to the chosen element of each plane."""
    x, f = _flat(x)
    g = check_grad("grad_out", grad_out, x.shape[:2])
    dx = np.full(f.shape, zero_like(g), dtype=g.dtype)
    np.put_along_axis(dx, _argmax_first(f)[..., None], g[..., None], axis=-1)
    return (dx.reshape(x.shape),)


def global_avg_pool(x):
    x, f = _flat(x)
    return f.sum(axis=-1) / f.shape[-1] if x.dtype != object else f.sum(axis=-1) * _inv(f.shape[-1])


def global_avg_pool_backward(grad_out, x):
    """-> (dx,): g / (number of spatial positions), everywhere."""
    x, f = _flat(x)
    g = check_grad("grad_out", grad_out, x.shape[:2])
    share = g / f.shape[-1] if g.dtype != object else g * _inv(f.shape[-1])
    return (np.broadcast_to(share[..., None], f.shape).reshape(x.shape).copy(),)


def _inv(n):
    from fractions import Fraction

    return Fraction(1, n)
