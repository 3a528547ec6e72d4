"""avg_pool: y[n, c, i] = (1 / D(i)) * sum_j x_pad[n, c, i*s + j*d].

Divisor D(i), the spec's border rule:
- count_include_pad=False (default): the number of window elements that lie on real inputs, i.e. the
  average of what is there (ONNX's and TensorFlow's 'SAME' choice).
- count_include_pad=True: also counts elements in the explicit padding; never the ceil_mode overhang
  beyond the padded input (PyTorch's rule).
Padding and overhang contribute 0 to the sum. Exact on Fraction object arrays.

The module opens with the literal definition (`avg_pool_literal`, `avg_pool_backward_literal`: a loop over
the windows and their taps); `avg_pool` and `avg_pool_backward` are its vectorised form, proven equal by
tests/test_reference_literal.py.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import product

import numpy as np

from ._params import bool_param, zero_like
from ._pool import PoolGeometry, is_input, is_padded_input, pool_input, windows_literal
from .conv import check_grad
from .errors import ParameterError

# --- the literal definition ------------------------------------------------------------------------


def divisor_literal(geo, taps, count_include_pad) -> int:
    """D(i): the window's taps on inputs; with count_include_pad, its taps inside the padded input."""
    counts = is_padded_input if count_include_pad else is_input
    return sum(1 for p in taps if counts(geo, p))


def over(v, d: int, dtype):
    """v / d; exactly, as v * Fraction(1, d), on object (Fraction) arrays."""
    return v * Fraction(1, d) if dtype == np.dtype(object) else v / d


def avg_pool_literal(x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
    """y[n, c, i] = (1 / D(i)) * sum_j x_pad[n, c, i*s + j*d]; padding and overhang contribute 0."""
    x = pool_input(x)
    geo = PoolGeometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    count_include_pad = bool_param("count_include_pad", count_include_pad)
    windows = windows_literal(geo)
    zero = zero_like(x)
    y = np.empty(x.shape[:2] + geo.out_sizes, dtype=x.dtype)
    for n, c in product(range(x.shape[0]), range(x.shape[1])):
        for i, taps in windows.items():
            total = zero
            for p in taps:
                total += x[(n, c) + p] if is_input(geo, p) else zero
            y[(n, c) + i] = over(total, divisor_literal(geo, taps, count_include_pad), x.dtype)
    return y


def avg_pool_backward_literal(
    grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False
):
    """dx[n, c, p] += g[n, c, i] / D(i) for every input p of window i. -> (dx,)."""
    x = pool_input(x)
    geo = PoolGeometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    count_include_pad = bool_param("count_include_pad", count_include_pad)
    windows = windows_literal(geo)
    g = check_grad("grad_out", grad_out, x.shape[:2] + geo.out_sizes)
    dx = np.full(x.shape, zero_like(g), dtype=g.dtype)
    for n, c in product(range(x.shape[0]), range(x.shape[1])):
        for i, taps in windows.items():
            share = over(g[(n, c) + i], divisor_literal(geo, taps, count_include_pad), g.dtype)
            for p in taps:
                if is_input(geo, p):
                    dx[(n, c) + p] += share
    return (dx,)


# --- the vectorised form ---------------------------------------------------------------------------


def _geometry(x, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad):
    x = pool_input(x)
    geo = PoolGeometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    count_include_pad = bool_param("count_include_pad", count_include_pad)
    pos = geo.window_positions()
    real = geo.inside(pos).sum(axis=-1)
    if (real == 0).any():
        raise ParameterError(
            "padding",
            "a pooling window lies entirely in the padding "
            "(padding must leave every window at least one input element)",
        )
    counted = geo.in_padded(pos).sum(axis=-1) if count_include_pad else real
    return x, geo, counted  # divisor per output position, (*out,)


def _divide(total, divisor):
    if total.dtype == object:
        from fractions import Fraction

        return total * np.vectorize(lambda d: Fraction(1, int(d)), otypes=[object])(divisor)
    return total / divisor.astype(total.dtype)


# The vectorised form of avg_pool_literal; tests/test_reference_literal.py proves the two equal.
def avg_pool(x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
    x, geo, divisor = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad)
    total = geo.window_view(x, zero_like(x)).sum(axis=-1)
    return _divide(total, divisor)


# The vectorised form of avg_pool_backward_literal; tests/test_reference_literal.py proves the two equal.
def avg_pool_backward(
    grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False
):
    """-> (dx,): each output's gradient / D(i) spread over the real inputs of its window."""
    x, geo, divisor = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad)
    g = check_grad("grad_out", grad_out, (x.shape[0], x.shape[1]) + geo.out_sizes)
    share = _divide(g, divisor)  # (N, C, *out)
    pos = geo.window_positions()  # (*out, K, nd)
    inside = geo.inside(pos)
    flat = geo.flat_index(pos)[inside]  # (M,) indices of real inputs, window by window
    contrib = np.broadcast_to(share[..., None], share.shape + (pos.shape[-2],))[..., inside]  # (N, C, M)
    n, c = x.shape[:2]
    dx = np.full((n * c, geo.plane), zero_like(g), dtype=g.dtype)
    np.add.at(dx, (slice(None), flat), contrib.reshape(n * c, flat.size))
    return (dx.reshape(x.shape),)
