"""max_pool: y[n, c, i] = max_j x_pad[n, c, i*s + j*d], padding and ceil_mode overhang count as -inf.

Ties go to the smaller index (the first in row-major window order, which is also the smaller flat
input index). NaN propagates: a window holding NaN yields NaN, and the chosen element is the first NaN
in row-major window order (its payload is returned unchanged). A window made only of padding is an
error. max_pool_indices returns the flat per-plane (row-major, unpadded) index of each chosen input;
the backward routes each window's gradient to that index, overlapping windows accumulate.

The module opens with the literal definition (`max_pool_literal`, `max_pool_indices_literal`,
`max_pool_backward_literal`: a loop over the windows and their taps); `max_pool` and friends are its
vectorised form (on float data one pass per kernel tap over all windows at once; on Fractions a -inf fill,
argmax and an at_padding fix-up), proven equal by tests/test_reference_literal.py.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from ._params import pad_array, row_major, zero_like
from ._pool import EMPTY_WINDOW, PoolGeometry, first_max, is_input, pool_input, windows_literal
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


def _tap_slices(geo, j) -> tuple:
    """The (N, C, *out) view of the padded input that tap j of every window reads: i*s + j*d."""
    return (slice(None), slice(None)) + tuple(
        slice(jj * d, jj * d + (o - 1) * s + 1, s) for jj, d, o, s in zip(j, geo.dilation, geo.out_sizes, geo.stride)
    )


def _choose_taps(x, geo):
    """The same choice as _choose's argmax over the window view, tap by tap (float data): tap j replaces
    the window's choice so far where it is an input and the choice is padding, or where it is NaN and the
    choice is not, or where it is strictly greater; so the first NaN, else the first maximum among the
    inputs (ties keep the earlier tap). -> (values, flat input index, chosen tap number)."""
    pads = [(b, e + x_) for (b, e), x_ in zip(geo.pads, geo.extra)]
    padded = any(b or e for b, e in pads)
    xp = pad_array(x, pads, -np.inf) if padded else x
    nan = bool(np.isnan(x).any())
    taps = list(np.ndindex(*geo.kernel))
    best = np.array(xp[_tap_slices(geo, taps[0])], copy=True)
    best_tap = np.zeros(best.shape, dtype=np.intp if len(taps) > 255 else np.uint8)
    if padded:
        inside = []  # per tap: which windows' tap lies on the input, (*out)
        for j in taps:
            ins = np.ones(geo.out_sizes, dtype=bool)
            for a, (o, s, jj, d, (b, _), n) in enumerate(
                zip(geo.out_sizes, geo.stride, j, geo.dilation, geo.pads, geo.in_sizes)
            ):
                p = np.arange(o) * s + jj * d - b
                ins = ins & ((p >= 0) & (p < n)).reshape([-1 if i == a else 1 for i in range(geo.nd)])
            inside.append(ins)
        best_in = inside[0]
    for t in range(1, len(taps)):
        v = np.ascontiguousarray(xp[_tap_slices(geo, taps[t])])  # strided operands make the ufuncs 5x slower
        upd = v > best
        if nan:
            upd |= np.isnan(v) & ~np.isnan(best)
        if padded:
            upd &= inside[t]
            upd |= inside[t] & ~best_in
            best_in = best_in | inside[t]
        best = np.where(upd, v, best)
        best_tap = np.where(upd, best_tap.dtype.type(t), best_tap)
    if padded and not best_in.all():
        raise ParameterError("padding", EMPTY_WINDOW)
    # the chosen input's flat per-plane index: sum_d (i_d*s_d + j_d*d_d - p_d) * plane stride_d (linear,
    # and exact: the chosen tap is always on the input)
    plane = [int(np.prod(geo.in_sizes[a + 1 :])) for a in range(geo.nd)]
    start = np.zeros(geo.out_sizes, dtype=np.intp)
    for a, (o, s, (b, _)) in enumerate(zip(geo.out_sizes, geo.stride, geo.pads)):
        start = start + ((np.arange(o) * s - b) * plane[a]).reshape([-1 if i == a else 1 for i in range(geo.nd)])
    offset = np.array([sum(jj * d * st for jj, d, st in zip(j, geo.dilation, plane)) for j in taps], dtype=np.intp)
    return best, start + offset[best_tap], best_tap


def _choose(x, kernel_size, stride, padding, dilation, ceil_mode):
    x = pool_input(x)
    geo = PoolGeometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    if x.dtype.kind == "f":
        values, flat, _ = _choose_taps(x, geo)
        return x, geo, values, flat
    win = geo.window_view(x, -np.inf if x.dtype != object else float("-inf"))
    arg = _argmax_first(win)  # (N, C, *out)
    pos = geo.window_positions()  # (*out, K, nd) input coordinates of every window element
    inside = geo.inside(pos)  # (*out, K)
    if not inside.any(axis=-1).all():
        raise ParameterError(
            "padding",
            "a pooling window lies entirely in the padding "
            "(padding must leave every window at least one input element)",
        )
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
    x = pool_input(x)
    geo = PoolGeometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    disjoint = all(s >= d * (k - 1) + 1 for s, d, k in zip(geo.stride, geo.dilation, geo.kernel))
    if x.dtype.kind == "f" and disjoint:
        # windows that do not overlap: every input receives at most one window's gradient, so one masked
        # add per tap gives the literal's 0 + g exactly
        values, _, tap = _choose_taps(x, geo)
        g = check_grad("grad_out", grad_out, values.shape)
        if g.dtype != object:
            pads = [(b, e + x_) for (b, e), x_ in zip(geo.pads, geo.extra)]
            dxp = np.zeros(x.shape[:2] + tuple(n + b + e for n, (b, e) in zip(geo.in_sizes, pads)), dtype=g.dtype)
            g0 = g + g.dtype.type(0)  # 0 + g, as the literal's sum (-0.0 becomes 0.0)
            for t, j in enumerate(np.ndindex(*geo.kernel)):
                dxp[_tap_slices(geo, j)] = np.where(tap == t, g0, g.dtype.type(0))
            crop = tuple(slice(b, b + n) for n, (b, _) in zip(geo.in_sizes, pads))
            return (np.ascontiguousarray(dxp[(slice(None), slice(None)) + crop]),)
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
