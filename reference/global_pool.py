"""global_max_pool / global_avg_pool: reduce every spatial axis, (N, C, *spatial) -> (N, C).

global_max_pool follows max_pool's rules (ties to the smaller flat index, the first NaN propagates).

The literal definitions (loops over the spatial positions) come first; global_max_pool, global_avg_pool
and their backwards are the vectorised forms, proven equal by tests/test_reference_literal.py."""

from __future__ import annotations

from itertools import product

import numpy as np

from ._params import grid, zero_like
from ._pool import first_max, pool_input
from .avg_pool import over
from .conv import check_grad
from .errors import ShapeError
from .max_pool import _argmax_first


def _input(x):
    """x, (N, C, *spatial), with at least one spatial position: the max and the mean of nothing are undefined."""
    x = pool_input(x)
    if 0 in x.shape[2:]:
        raise ShapeError(
            "x",
            "global pooling needs every spatial dim >= 1 (the max or mean of no value is "
            f"undefined), got shape {x.shape}",
        )
    return x


# --- the literal definitions -----------------------------------------------------------------------


def _chosen_literal(x):
    """{(n, c): the spatial position the max chooses}: the first NaN, else the first maximum, in row-major
    order."""
    chosen = {}
    for n, c in product(range(x.shape[0]), range(x.shape[1])):
        positions = list(grid(x.shape[2:]))
        chosen[n, c] = positions[first_max([x[(n, c) + p] for p in positions])]
    return chosen


def global_max_pool_literal(x):
    """y[n, c] = max_p x[n, c, p] over every spatial position p."""
    x = _input(x)
    y = np.empty(x.shape[:2], dtype=x.dtype)
    for (n, c), p in _chosen_literal(x).items():
        y[n, c] = x[(n, c) + p]
    return y


def global_max_pool_backward_literal(grad_out, x):
    """dx[n, c, chosen(n, c)] = g[n, c], 0 elsewhere. -> (dx,)."""
    x = _input(x)
    g = check_grad("grad_out", grad_out, x.shape[:2])
    dx = np.full(x.shape, zero_like(g), dtype=g.dtype)
    for (n, c), p in _chosen_literal(x).items():
        dx[(n, c) + p] = g[n, c]
    return (dx,)


def global_avg_pool_literal(x):
    """y[n, c] = (1 / P) * sum_p x[n, c, p], P the number of spatial positions."""
    x = _input(x)
    count = int(np.prod(x.shape[2:]))
    y = np.empty(x.shape[:2], dtype=x.dtype)
    for n, c in product(range(x.shape[0]), range(x.shape[1])):
        total = zero_like(x)
        for p in grid(x.shape[2:]):
            total += x[(n, c) + p]
        y[n, c] = over(total, count, x.dtype)
    return y


def global_avg_pool_backward_literal(grad_out, x):
    """dx[n, c, p] = g[n, c] / P at every spatial position p. -> (dx,)."""
    x = _input(x)
    g = check_grad("grad_out", grad_out, x.shape[:2])
    count = int(np.prod(x.shape[2:]))
    dx = np.empty(x.shape, dtype=g.dtype)
    for n, c in product(range(x.shape[0]), range(x.shape[1])):
        for p in grid(x.shape[2:]):
            dx[(n, c) + p] = over(g[n, c], count, g.dtype)
    return (dx,)


# --- the vectorised forms --------------------------------------------------------------------------


def _flat(x):
    x = _input(x)
    return x, x.reshape(x.shape[:2] + (int(np.prod(x.shape[2:])),))


# The vectorised form of global_max_pool_literal; tests/test_reference_literal.py proves the two equal.
def global_max_pool(x):
    x, f = _flat(x)
    return np.take_along_axis(f, _argmax_first(f)[..., None], axis=-1)[..., 0]


# The vectorised form of global_max_pool_backward_literal; tests/test_reference_literal.py proves the two equal.
def global_max_pool_backward(grad_out, x):
    """-> (dx,): the gradient goes to the chosen element of each plane."""
    x, f = _flat(x)
    g = check_grad("grad_out", grad_out, x.shape[:2])
    dx = np.full(f.shape, zero_like(g), dtype=g.dtype)
    np.put_along_axis(dx, _argmax_first(f)[..., None], g[..., None], axis=-1)
    return (dx.reshape(x.shape),)


# The vectorised form of global_avg_pool_literal; tests/test_reference_literal.py proves the two equal.
def global_avg_pool(x):
    x, f = _flat(x)
    return f.sum(axis=-1) / f.shape[-1] if x.dtype != object else f.sum(axis=-1) * _inv(f.shape[-1])


# The vectorised form of global_avg_pool_backward_literal; tests/test_reference_literal.py proves the two equal.
def global_avg_pool_backward(grad_out, x):
    """-> (dx,): g / (number of spatial positions), everywhere."""
    x, f = _flat(x)
    g = check_grad("grad_out", grad_out, x.shape[:2])
    share = g / f.shape[-1] if g.dtype != object else g * _inv(f.shape[-1])
    return (np.broadcast_to(share[..., None], f.shape).reshape(x.shape).copy(),)


def _inv(n):
    from fractions import Fraction

    return Fraction(1, n)
