"""conv: N-d cross-correlation ("2d filtering = cross correlation" in the lectures).

    y[n, o, i] = b[o] + sum_{c in group(o)} sum_j  x_pad[n, c, i*s + j*d] * w[o, c - g(o)*C_in/G, j]

x: (N, C_in, *spatial), w: (C_out, C_in/groups, *kernel), b: (C_out,) or None.
Output size per dim: floor((n + p_begin + p_end - d*(k-1) - 1) / s) + 1.

The module opens with the literal definition, `conv_literal` and `conv_backward_literal`: loops over the
output positions and the kernel taps, read off the formula. `conv` and `conv_backward` further down are
its vectorised form (im2col, one matrix product per group over the whole batch), the one the engine and LeNet run;
tests/test_reference_literal.py proves the two equal.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import product

import numpy as np

from ._params import (
    culprit,
    grid,
    output_sizes,
    pad_array,
    resolve_padding,
    spatial_array,
    tuple_param,
    window_work,
    windows,
    zero_like,
    zeros,
)
from .errors import ParameterError, ShapeError

# --- the literal definition ------------------------------------------------------------------------


def tap(i, j, geo) -> tuple[int, ...]:
    """Where kernel tap j of output i's window reads the input: i*s + j*d - p_begin, in unpadded
    coordinates (so it may lie in the padding)."""
    return tuple(ii * s + jj * d - b for ii, jj, s, d, (b, _) in zip(i, j, geo.stride, geo.dilation, geo.pads))


def inside(p, sizes) -> bool:
    """Does position p lie in the (unpadded) input of the given spatial sizes?"""
    return all(0 <= pp < n for pp, n in zip(p, sizes))


def x_pad(x, n, c, p, zero):
    """x zero-padded: x[n, c, p] at an input position, `zero` in the padding."""
    return x[(n, c) + p] if inside(p, x.shape[2:]) else zero


def _zero(*arrays):
    """The additive identity of the arrays' common dtype: where a sum of their products starts."""
    dtype = np.result_type(*arrays)
    return Fraction(0) if dtype == np.dtype(object) else dtype.type(0)


def _geometry(x, w, b, stride, padding, dilation, groups, strict):
    x, w, b = _inputs(x, w, b)
    b_shape = None if b is None else b.shape
    geo = ConvGeometry(
        x.shape, w.shape, b_shape, stride=stride, padding=padding, dilation=dilation, groups=groups, strict=strict
    )
    return x, w, b, geo


def conv_literal(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
    """y[n, o, i] = b[o] + sum_{c in group(o)} sum_j  x_pad[n, c, i*s + j*d] * w[o, c - g(o)*C_in/G, j]"""
    x, w, b, geo = _geometry(x, w, b, stride, padding, dilation, groups, strict)
    cg, og = geo.c_in // geo.groups, geo.c_out // geo.groups  # channels per group: C_in/G, C_out/G
    zero = zero_like(x)  # the padding
    y = np.empty((geo.n, geo.c_out) + geo.out_sizes, dtype=np.result_type(*[a for a in (x, w, b) if a is not None]))
    for n, o, i in product(range(geo.n), range(geo.c_out), grid(geo.out_sizes)):
        first = (o // og) * cg  # group(o) = input channels first .. first + C_in/G - 1
        total = _zero(x, w)
        for j in grid(geo.kernel):
            p = tap(i, j, geo)
            for c in range(cg):
                total += x_pad(x, n, first + c, p, zero) * w[(o, c) + j]
        y[(n, o) + i] = total if b is None else total + b[o]
    return y


def conv_backward_literal(grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
    """The gradient of conv_literal, product by product: g[n, o, i] flows back through every term
    x_pad[n, c, i*s + j*d] * w[o, c', j] of output i's sum (c' = c - g(o)*C_in/G):

        dx[n, c, i*s + j*d - p_begin] += g[n, o, i] * w[o, c', j]       (a tap in the padding reaches no input)
        dw[o, c', j]                   += g[n, o, i] * x_pad[n, c, i*s + j*d]
        db[o]                          += g[n, o, i]

    -> (dx, dw, db); db is None when b is None."""
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
            p = tap(i, j, geo)
            for c in range(cg):
                if inside(p, geo.in_sizes):
                    dx[(n, first + c) + p] += g_i * w[(o, c) + j]
                dw[(o, c) + j] += g_i * x_pad(x, n, first + c, p, zero)
        if db is not None:
            db[o] += g_i
    return dx, dw, db


# --- the vectorised form ---------------------------------------------------------------------------


class ConvGeometry:
    """Validated parameters of one convolution: everything conv, its backward and its adjoint share."""

    def __init__(self, x_shape, w_shape, b_shape, *, stride, padding, dilation, groups, strict=False):
        nd = len(x_shape) - 2
        if len(w_shape) != nd + 2:
            raise ShapeError(
                "w",
                f"must have ndim {nd + 2} (C_out, C_in/groups, *kernel) to match x of shape {tuple(x_shape)}, "
                f"got shape {tuple(w_shape)}",
            )
        if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
            raise ParameterError("groups", f"must be an int >= 1, got {groups!r}")
        n, c_in = x_shape[0], x_shape[1]
        c_out, cg = w_shape[0], w_shape[1]
        if c_in % groups:
            raise ParameterError("groups", f"groups={groups} must divide the input channels C_in={c_in}")
        if c_out % groups:
            raise ParameterError(
                "groups", f"groups={groups} must divide the output channels C_out={c_out} (w.shape[0])"
            )
        if cg * groups != c_in:
            raise ShapeError(
                "x",
                f"channel mismatch: x has {c_in} input channels but w expects {cg * groups} "
                f"(w.shape[1]={cg} * groups={groups})",
            )
        if b_shape is not None and tuple(b_shape) != (c_out,):
            raise ShapeError("b", f"must have shape (C_out,) = ({c_out},), got {tuple(b_shape)}")
        self.nd, self.groups, self.n, self.c_in, self.c_out = nd, int(groups), n, c_in, c_out
        self.kernel = tuple(w_shape[2:])
        for k in self.kernel:
            if k < 1:
                raise ShapeError("w", f"kernel sizes must be >= 1, got {self.kernel}")
        self.stride = tuple_param("stride", stride, nd, minimum=1)
        self.dilation = tuple_param("dilation", dilation, nd, minimum=1)
        self.in_sizes = tuple(x_shape[2:])
        self.pads = resolve_padding("padding", padding, self.in_sizes, self.kernel, self.stride, self.dilation)
        self.out_sizes = output_sizes(self.in_sizes, self.kernel, self.stride, self.dilation, self.pads, strict=strict)
        window_work(
            culprit(self.in_sizes, self.pads, self.kernel, self.dilation, mode=isinstance(padding, str)),
            n,
            c_in,
            c_out,
            self.in_sizes,
            self.pads,
            self.kernel,
            self.out_sizes,
        )

    def products_per_output(self) -> int:
        """How many products one output element sums (for the error bound)."""
        return (self.c_in // self.groups) * int(np.prod(self.kernel))


def im2col(x: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """The receptive fields as columns: (G, C_in/G * prod(kernel), N * prod(out)).

    Row (c, j) of group g holds x_pad[n, g*C_in/G + c, i*s + j*d] for every sample n and output i (in
    that order), so a convolution is one matrix product per group: y_g = w_g @ im2col(x)_g. Channels and
    taps first, batch and positions last: the copy moves whole output rows of the input."""
    xp = pad_array(x, geo.pads, zero_like(x))
    win = windows(xp, geo.kernel, geo.stride, geo.dilation, geo.out_sizes)  # (N, C, *out, *kernel)
    nd, G = geo.nd, geo.groups
    win = win.reshape((geo.n, G, geo.c_in // G) + win.shape[2:])  # (N, G, Cg, *out, *kernel)
    order = (1, 2) + tuple(range(3 + nd, 3 + 2 * nd)) + (0,) + tuple(range(3, 3 + nd))  # (G, Cg, *kernel, N, *out)
    cols = geo.c_in // G * int(np.prod(geo.kernel))
    return win.transpose(order).reshape(G, cols, geo.n * int(np.prod(geo.out_sizes)))


def _w_matrix(w: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """w as (G, C_out/G, C_in/G * prod(kernel)): one matrix per group."""
    return w.reshape(geo.groups, geo.c_out // geo.groups, geo.c_in // geo.groups * int(np.prod(geo.kernel)))


def _g_matrix(g: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """An output-shaped array (N, C_out, *out) as (G, C_out/G, N * prod(out))."""
    G = geo.groups
    P = int(np.prod(geo.out_sizes))
    g = g.reshape(geo.n, G, geo.c_out // G, P)
    return g.transpose(1, 2, 0, 3).reshape(G, geo.c_out // G, geo.n * P)


def conv_core(x: np.ndarray, w: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """The sum of products, without bias: y = w @ im2col(x), one matrix product per group."""
    y = _w_matrix(w, geo) @ im2col(x, geo)  # (G, Og, N * out)
    P = int(np.prod(geo.out_sizes))
    y = y.reshape(geo.groups, geo.c_out // geo.groups, geo.n, P).transpose(2, 0, 1, 3)  # (N, G, Og, out)
    return y.reshape((geo.n, geo.c_out) + geo.out_sizes)


def conv_weight_grad(g: np.ndarray, x: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """dL/dw[o, c, j] = sum_{n, i} g[n, o, i] * x_pad[n, c, i*s + j*d] = g @ im2col(x)^T, group by group."""
    dw = _g_matrix(g, geo) @ im2col(x, geo).transpose(0, 2, 1)  # (G, Og, Cg*K)
    return dw.reshape((geo.c_out, geo.c_in // geo.groups) + geo.kernel)


def conv_input_grad(g: np.ndarray, w: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """dL/dx: each output's gradient spread back over its window (col2im of w^T @ g), the adjoint of
    conv_core."""
    nd = geo.nd
    cols = _w_matrix(w, geo).transpose(0, 2, 1) @ _g_matrix(g, geo)  # (G, Cg*K, N * out)
    # (G, Cg, *kernel, N, *out) -> kernel taps first: each tap's (C_in, N, *out) slab is contiguous
    cols = cols.reshape((geo.groups, geo.c_in // geo.groups) + geo.kernel + (geo.n,) + geo.out_sizes)
    cols = np.moveaxis(cols.reshape((geo.c_in,) + cols.shape[2:]), 0, nd)  # (*kernel, C_in, N, *out)
    padded = tuple(n + b + e for n, (b, e) in zip(geo.in_sizes, geo.pads))
    dxp = np.full((geo.c_in, geo.n) + padded, zero_like(cols), dtype=cols.dtype)  # channel-major
    # One strided add per kernel tap: input position i*s + j*d receives cols[j][..., i].
    for j in np.ndindex(*geo.kernel):
        dst = tuple(
            slice(jj * d, jj * d + (oo - 1) * s + 1, s)
            for jj, d, oo, s in zip(j, geo.dilation, geo.out_sizes, geo.stride)
        )
        dxp[(Ellipsis,) + dst] += cols[j]
    crop = tuple(slice(b, b + n) for n, (b, _) in zip(geo.in_sizes, geo.pads))
    return np.ascontiguousarray(dxp[(slice(None), slice(None)) + crop].swapaxes(0, 1))


def bias_shape(nd: int, b: np.ndarray) -> np.ndarray:
    return b.reshape((1, -1) + (1,) * nd)


def _inputs(x, w, b):
    x = spatial_array("x", x)
    from ._params import as_array

    w = as_array("w", w)
    b = None if b is None else as_array("b", b, ndim=1)
    return x, w, b


# The vectorised form of conv_literal; tests/test_reference_literal.py proves the two equal.
def conv(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
    x, w, b = _inputs(x, w, b)
    geo = ConvGeometry(
        x.shape,
        w.shape,
        None if b is None else b.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        strict=strict,
    )
    if 0 in (geo.n, geo.c_in, geo.c_out):  # empty sums or an empty output: SPEC.md, "Empty dimensions"
        y = zeros((geo.n, geo.c_out) + geo.out_sizes, x, w, b)
    else:
        y = conv_core(x, w, geo)
    return y if b is None else y + bias_shape(geo.nd, b)


# The vectorised form of conv_backward_literal; tests/test_reference_literal.py proves the two equal.
def conv_backward(grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
    """-> (dx, dw, db); db is None when b is None."""
    x, w, b = _inputs(x, w, b)
    geo = ConvGeometry(
        x.shape,
        w.shape,
        None if b is None else b.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        strict=strict,
    )
    g = check_grad("grad_out", grad_out, (geo.n, geo.c_out) + geo.out_sizes)
    if 0 in (geo.n, geo.c_in, geo.c_out):  # empty sums: SPEC.md, "Empty dimensions"
        dx, dw = zeros(x.shape, g, w), zeros(w.shape, g, x)
    else:
        dx = conv_input_grad(g, w, geo)
        dw = conv_weight_grad(g, x, geo)
    db = None if b is None else g.sum(axis=(0,) + tuple(range(2, 2 + geo.nd)))
    return dx, dw, db


def check_grad(name: str, g, shape) -> np.ndarray:
    from ._params import as_array

    g = as_array(name, g)
    if tuple(g.shape) != tuple(shape):
        raise ShapeError(name, f"must have the forward output's shape {tuple(shape)}, got {tuple(g.shape)}")
    return g
