"""convolve: true convolution, y[n] = sum_k x[k] w[n-k] -- cross-correlation with the kernel flipped
in every spatial axis. Same parameters as conv.

The literal definition (`convolve_literal`, `convolve_backward_literal`) comes first; `convolve` and
`convolve_backward` are its fast form (conv on the flipped kernel), proven equal by
tests/test_reference_literal.py."""

from __future__ import annotations

from itertools import product

import numpy as np

from ._params import as_array, grid, zero_like
from .conv import _geometry, _zero, check_grad, conv, conv_backward, inside, tap, x_pad

# --- the literal definition ------------------------------------------------------------------------


def flipped(j, kernel) -> tuple[int, ...]:
    """Tap j of the kernel read backwards in every spatial axis: k - 1 - j."""
    return tuple(k - 1 - jj for jj, k in zip(j, kernel))


def convolve_literal(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
    """y[n, o, i] = b[o] + sum_{c in group(o)} sum_j  x_pad[n, c, i*s + j*d] * w[o, c - g(o)*C_in/G, k-1-j]:
    conv's sum with the kernel taps taken in reverse, so that along each axis the input index rises as
    the kernel index falls (y[n] = sum_k x[k] w[n-k])."""
    as_array("w", w, min_ndim=3)
    x, w, b, geo = _geometry(x, w, b, stride, padding, dilation, groups, strict)
    cg, og = geo.c_in // geo.groups, geo.c_out // geo.groups
    zero = zero_like(x)
    y = np.empty((geo.n, geo.c_out) + geo.out_sizes, dtype=np.result_type(*[a for a in (x, w, b) if a is not None]))
    for n, o, i in product(range(geo.n), range(geo.c_out), grid(geo.out_sizes)):
        first = (o // og) * cg
        total = _zero(x, w)
        for j in grid(geo.kernel):
            p, jf = tap(i, j, geo), flipped(j, geo.kernel)
            for c in range(cg):
                total += x_pad(x, n, first + c, p, zero) * w[(o, c) + jf]
        y[(n, o) + i] = total if b is None else total + b[o]
    return y


def convolve_backward_literal(grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
    """The gradient of convolve_literal, product by product (conv's, with the kernel index flipped):

        dx[n, c, i*s + j*d - p_begin] += g[n, o, i] * w[o, c', k-1-j]
        dw[o, c', k-1-j]               += g[n, o, i] * x_pad[n, c, i*s + j*d]
        db[o]                          += g[n, o, i]

    -> (dx, dw, db); db is None when b is None."""
    as_array("w", w, min_ndim=3)
    x, w, b, geo = _geometry(x, w, b, stride, padding, dilation, groups, strict)
    g = check_grad("grad_out", grad_out, (geo.n, geo.c_out) + geo.out_sizes)
    cg, og = geo.c_in // geo.groups, geo.c_out // geo.groups
    zero = zero_like(x)
    dx = np.full(x.shape, _zero(g, w), dtype=np.result_type(g, w))
    dw = np.full(w.shape, _zero(g, x), dtype=np.result_type(g, x))
    db = None if b is None else np.full(b.shape, zero_like(g), dtype=g.dtype)
    for n, o, i in product(range(geo.n), range(geo.c_out), grid(geo.out_sizes)):
        first = (o // og) * cg
        g_i = g[(n, o) + i]
        for j in grid(geo.kernel):
            p, jf = tap(i, j, geo), flipped(j, geo.kernel)
            for c in range(cg):
                if inside(p, geo.in_sizes):
                    dx[(n, first + c) + p] += g_i * w[(o, c) + jf]
                dw[(o, c) + jf] += g_i * x_pad(x, n, first + c, p, zero)
        if db is not None:
            db[o] += g_i
    return dx, dw, db


# --- the fast form ---------------------------------------------------------------------------------


def _flip(w):
    w = as_array("w", w, min_ndim=3)
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


# The fast form of convolve_literal; tests/test_reference_literal.py proves the two equal.
def convolve(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
    return conv(x, _flip(w), b, stride=stride, padding=padding, dilation=dilation, groups=groups, strict=strict)


# The fast form of convolve_backward_literal; tests/test_reference_literal.py proves the two equal.
def convolve_backward(grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
    """-> (dx, dw, db): the conv gradients, with dw flipped back to convolve's kernel orientation."""
    dx, dw, db = conv_backward(
        grad_out, x, _flip(w), b, stride=stride, padding=padding, dilation=dilation, groups=groups, strict=strict
    )
    return dx, _flip(dw), db
