"""max_pool: y[n, c, i] = max_j x_pad[n, c, i*s + j*d], padding and ceil_mode overhang count as -inf.

Ties go to the smaller index (the first in row-major window order, which is also the smaller flat
input index). NaN propagates: a window holding NaN yields NaN, and the chosen element is the first NaN
in row-major window order (its payload is returned unchanged). A window made only of padding is an
error. max_pool_indices returns the flat per-plane (row-major, unpadded) index of each chosen input;
the backward routes each window's gradient to that index, overlapping windows accumulate.

The module opens with the literal definition (`max_pool_literal`, `max_pool_indices_literal`,
`max_pool_backward_literal`: a loop over the windows and their taps); `max_pool` and friends are its
vectorised form (a -inf fill, argmax and an at_padding fix-up), proven equal by tests/test_reference_literal.py.
"""
from __future__ import annotations

from itertools import product

import numpy as np

from ._params import row_major, zero_like
from ._pool import PoolGeometry, first_max, is_input, pool_input, windows_literal
from .conv import check_grad
from .errors import ParameterError


# --- the literal definition ------------------------------------------------------------------------

def _chosen_literal(x, kernel_size, stride, padding, dilation, ceil_mode):
    """{(n, c, *i): the input position window i chooses}. Padding and ceil_mode overhang count as -inf
    and are never chosen over an input, so the choice is among the window's inputs, in row-major tap
    order: the first NaN if any, else the first maximum."""
    x = pool_input(x)
    geo = PoolGeometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    chosen = {}
    for i, taps in windows_literal(geo).items():
        inputs = [p for p in taps if is_input(geo, p)]
        for n, c in product(range(x.shape[0]), range(x.shape[1])):
            chosen[(n, c) + i] = inputs[first_max([x[(n, c) + p] for p in inputs])]
    return x, geo, chosen


def max_pool_literal(x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
    """y[n, c, i] = max_j x_pad[n, c, i*s + j*d], padding and overhang counting as -inf."""
    x, geo, chosen = _chosen_literal(x, kernel_size, stride, padding, dilation, ceil_mode)
    y = np.empty(x.shape[:2] + geo.out_sizes, dtype=x.dtype)
    for (n, c, *i), p in chosen.items():
        y[(n, c, *i)] = x[(n, c) + p]
    return y


def max_pool_indices_literal(x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
    """The flat row-major per-plane index of the input each window chooses."""
    x, geo, chosen = _chosen_literal(x, kernel_size, stride, padding, dilation, ceil_mode)
    index = np.empty(x.shape[:2] + geo.out_sizes, dtype=np.intp)
    for key, p in chosen.items():
        index[key] = row_major(p, geo.in_sizes)
    return index


def max_pool_backward_literal(grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
    """dx[n, c, chosen(i)] += g[n, c, i]: the max passes each window's gradient to the input it chose,
    overlapping windows accumulate. -> (dx,)."""
    x, geo, chosen = _chosen_literal(x, kernel_size, stride, padding, dilation, ceil_mode)
    g = check_grad("grad_out", grad_out, x.shape[:2] + geo.out_sizes)
    dx = np.full(x.shape, zero_like(g), dtype=g.dtype)
    for (n, c, *i), p in chosen.items():
        dx[(n, c) + p] += g[(n, c, *i)]
    return (dx,)


# --- the vectorised form ---------------------------------------------------------------------------


def _argmax_first(win: np.ndarray) -> np.ndarray:
    """Index of the maximum along the last axis: the first NaN if any, else the first maximum."""
    if win.dtype == object:
        nan = np.vectorize(lambda v: v != v, otypes=[bool])(win)
        best = np.argmax(win, axis=-1)  # object argmax: first maximum (no NaN in Fractions)
    else:
        nan = np.isnan(win)
        if not nan.any():
            return np.argmax(win, axis=-1)  # np.argmax returns the first maximum
        best = np.argmax(np.where(nan, -np.inf, win), axis=-1)
    return np.where(nan.any(axis=-1), np.argmax(nan, axis=-1), best)


def _choose(x, kernel_size, stride, padding, dilation, ceil_mode):
    x = pool_input(x)
    geo = PoolGeometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    win = geo.window_view(x, -np.inf if x.dtype != object else float("-inf"))
    arg = _argmax_first(win)  # (N, C, *out)
    pos = geo.window_positions()  # (*out, K, nd) input coordinates of every window element
    inside = geo.inside(pos)  # (*out, K)
    if not inside.any(axis=-1).all():
        raise ParameterError("padding", "a pooling window lies entirely in the padding (padding must leave every window at least one input element)")
    # padding is -inf but never chosen over a real input: where the maximum is -inf, the first real
    # input of the window (also -inf) is the first maximum among the inputs
    if not inside.all():
        at_padding = ~np.take_along_axis(np.broadcast_to(inside, win.shape), arg[..., None], axis=-1)[..., 0]
        if at_padding.any():
            arg = np.where(at_padding, np.argmax(inside, axis=-1), arg)
    flat = np.broadcast_to(geo.flat_index(pos), win.shape)  # flat per-plane index of each element
    values = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
    return x, geo, values, np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]


# The vectorised form of max_pool_literal; tests/test_reference_literal.py proves the two equal.
def max_pool(x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
    return _choose(x, kernel_size, stride, padding, dilation, ceil_mode)[2]


# The vectorised form of max_pool_indices_literal; tests/test_reference_literal.py proves the two equal.
def max_pool_indices(x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
    return _choose(x, kernel_size, stride, padding, dilation, ceil_mode)[3]


# The vectorised form of max_pool_backward_literal; tests/test_reference_literal.py proves the two equal.
def max_pool_backward(grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
    """-> (dx,): each window's gradient added at its chosen input."""
    x, geo, values, idx = _choose(x, kernel_size, stride, padding, dilation, ceil_mode)
    g = check_grad("grad_out", grad_out, values.shape)
    return (scatter_add(g, idx, x.shape),)


def scatter_add(g: np.ndarray, idx: np.ndarray, shape) -> np.ndarray:
    """dx[n, c, idx[n, c, i]] += g[n, c, i] over every output i (flat per-plane indices)."""
    n, c = shape[:2]
    plane = int(np.prod(shape[2:]))
    flat = (np.arange(n * c).reshape(n, c, *([1] * (idx.ndim - 2))) * plane + idx).reshape(-1)
    if g.dtype == object:
        dx = np.full(n * c * plane, zero_like(g), dtype=object)
        np.add.at(dx, flat, g.reshape(-1))
    else:  # bincount sums the weights that land on the same index, like np.add.at but fast
        dx = np.bincount(flat, weights=g.reshape(-1).astype(np.float64), minlength=n * c * plane).astype(g.dtype)
    return dx.reshape(shape)
