"""avg_pool: y[n, c, i] = (1 / D(i)) * sum_j x_pad[n, c, i*s + j*d].

Divisor D(i), the spec's border rule:
- count_include_pad=False (default): the number of window elements that lie on real inputs, i.e. the
  average of what is there (ONNX's and TensorFlow's 'SAME' choice).
- count_include_pad=True: also counts elements in the explicit padding; never the ceil_mode overhang
  beyond the padded input (PyTorch's rule).
Padding and overhang contribute 0 to the sum. Exact on Fraction object arrays.
"""
from __future__ import annotations

import numpy as np

from ._params import zero_like
from ._pool import PoolGeometry, pool_input
from .conv import check_grad
from .errors import ParameterError


def _geometry(x, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad):
    x = pool_input(x)
    geo = PoolGeometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    pos = geo.window_positions()
    real = geo.inside(pos).sum(axis=-1)
    if (real == 0).any():
        raise ParameterError("padding", "a pooling window lies entirely in the padding (padding must leave every window at least one input element)")
    counted = geo.in_padded(pos).sum(axis=-1) if count_include_pad else real
    return x, geo, counted  # divisor per output position, (*out,)


def _divide(total, divisor):
    if total.dtype == object:
        from fractions import Fraction

        return total * np.vectorize(lambda d: Fraction(1, int(d)), otypes=[object])(divisor)
    return total / divisor.astype(total.dtype)


def avg_pool(x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
    x, geo, divisor = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad)
    total = geo.window_view(x, zero_like(x)).sum(axis=-1)
    return _divide(total, divisor)


def avg_pool_backward(grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
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
