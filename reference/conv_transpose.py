"""conv_transpose: the adjoint of conv with respect to its input.

    <conv(x, w), y> == <x, conv_transpose(y, w)>     for every x, y (exactly, on integer data)

y: (N, C_y, *spatial), w: the weight of that conv, (C_y, C_x/groups, *kernel) -- PyTorch's and ONNX's
layout -- and b: (C_x,). `padding`/`dilation`/`stride` are the conv's. Output size per dim:

    n_x = (n_y - 1)*s - p_begin - p_end + d*(k-1) + output_padding + 1,   0 <= output_padding < max(s, d)

output_padding adds rows at the end that the first n_y windows of the conv do not read: they
receive zero (plus bias). Precisely, conv_transpose is the adjoint of x -> (the first n_y outputs of
conv(x)), which is conv itself whenever conv maps n_x to exactly n_y (always when dilation <= stride).
Padding modes: 'valid' is 0; 'full' is d*(k-1) on both sides; 'same' makes n_x = n_y * s (TensorFlow's
SAME) with conv's 'same' split for that n_x.

The module opens with the literal definition (`conv_transpose_literal`, `conv_transpose_backward_literal`:
loops over output positions and kernel taps); `conv_transpose` and `conv_transpose_backward` are its
vectorised form (col2im and im2col), proven equal by tests/test_reference_literal.py.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from ._params import (
    as_array,
    check_work,
    explicit_padding,
    grid,
    same_pads,
    spatial_array,
    tuple_param,
    zero_like,
    zeros,
)
from .conv import (
    ConvGeometry,
    _zero,
    bias_shape,
    check_grad,
    conv_core,
    conv_input_grad,
    conv_weight_grad,
    tap,
    x_pad,
)
from .errors import ParameterError, ShapeError

# --- the literal definition ------------------------------------------------------------------------


def window_reading(p, j, geo):
    """The conv output i whose kernel tap j reads input position p (i*s + j*d - p_begin = p), or None:
    i = (p + p_begin - j*d) / s must be a whole number with 0 <= i < n_y in every dim."""
    i = []
    for pp, jj, s, d, (b, _), n_y in zip(p, j, geo.stride, geo.dilation, geo.pads, geo.out_sizes):
        q = pp + b - jj * d
        if q < 0 or q % s or q // s >= n_y:
            return None
        i.append(q // s)
    return tuple(i)


def conv_transpose_literal(y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """The adjoint of conv, read off conv's formula: output position p collects every y[n, o, i] whose
    window tap j reads p in the conv (i*s + j*d - p_begin = p), weighted as the conv weighted it:

        x[n, c, p] = b[c] + sum_{o in group(c)} sum_j  y[n, o, i(p, j)] * w[o, c - g(c)*C_x/G, j]

    summing over the taps j for which i(p, j) = (p + p_begin - j*d) / s is an output of the conv."""
    y, w, b, geo = _geometry(y, w, b, stride, padding, output_padding, dilation, groups)
    cg, og = geo.c_in // geo.groups, geo.c_out // geo.groups  # channels per group: C_x/G, C_y/G
    x = np.empty((geo.n, geo.c_in) + geo.in_sizes, dtype=np.result_type(*[a for a in (y, w, b) if a is not None]))
    for n, c, p in product(range(geo.n), range(geo.c_in), grid(geo.in_sizes)):
        group, c_w = divmod(c, cg)  # c's group and its channel within the group (w's second axis)
        total = _zero(y, w)
        for j in grid(geo.kernel):
            i = window_reading(p, j, geo)
            if i is None:
                continue
            for o in range(group * og, (group + 1) * og):
                total += y[(n, o) + i] * w[(o, c_w) + j]
        x[(n, c) + p] = total if b is None else total + b[c]
    return x


def conv_transpose_backward_literal(
    grad_out, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1
):
    """The gradient of conv_transpose_literal, product by product: g[n, c, p] flows back through every
    term y[n, o, i] * w[o, c', j] of x[n, c, p], where p = i*s + j*d - p_begin. Taken per conv window
    (the adjoint of the adjoint is conv):

        dy[n, o, i]  += g_pad[n, c, i*s + j*d] * w[o, c', j]
        dw[o, c', j] += y[n, o, i] * g_pad[n, c, i*s + j*d]
        db[c]        += g[n, c, p]

    -> (dy, dw, db); db is None when b is None."""
    y, w, b, geo = _geometry(y, w, b, stride, padding, output_padding, dilation, groups)
    g = check_grad("grad_out", grad_out, (geo.n, geo.c_in) + geo.in_sizes)
    cg, og = geo.c_in // geo.groups, geo.c_out // geo.groups
    zero = zero_like(g)
    dy = np.full(y.shape, _zero(g, w), dtype=np.result_type(g, w))
    dw = np.full(w.shape, _zero(y, g), dtype=np.result_type(y, g))
    for n, o, i in product(range(geo.n), range(geo.c_out), grid(geo.out_sizes)):
        first = (o // og) * cg
        for j in grid(geo.kernel):
            p = tap(i, j, geo)
            for c in range(cg):
                g_p = x_pad(g, n, first + c, p, zero)
                dy[(n, o) + i] += g_p * w[(o, c) + j]
                dw[(o, c) + j] += y[(n, o) + i] * g_p
    db = None
    if b is not None:
        db = np.full(b.shape, zero_like(g), dtype=g.dtype)
        for n, c, p in product(range(geo.n), range(geo.c_in), grid(geo.in_sizes)):
            db[c] += g[(n, c) + p]
    return dy, dw, db


# --- the vectorised form ---------------------------------------------------------------------------


def transpose_geometry(y_shape, w_shape, b_shape, *, stride, padding, output_padding, dilation, groups) -> ConvGeometry:
    """The geometry of the conv whose adjoint this is (its input is our output)."""
    nd = len(y_shape) - 2
    if len(w_shape) != nd + 2:
        raise ShapeError(
            "w",
            f"must have ndim {nd + 2} (C_y, C_x/groups, *kernel) "
            f"to match y of shape {tuple(y_shape)}, got shape {tuple(w_shape)}",
        )
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ParameterError("groups", f"must be an int >= 1, got {groups!r}")
    if y_shape[1] != w_shape[0]:
        raise ShapeError("y", f"channel mismatch: y has {y_shape[1]} channels but w.shape[0] is {w_shape[0]}")
    if y_shape[1] % groups:
        raise ParameterError("groups", f"groups={groups} must divide the channels of y ({y_shape[1]})")
    c_x = w_shape[1] * groups
    if b_shape is not None and tuple(b_shape) != (c_x,):
        raise ShapeError("b", f"must have shape (C_x,) = ({c_x},) = (w.shape[1] * groups,), got {tuple(b_shape)}")
    kernel = tuple(w_shape[2:])
    s = tuple_param("stride", stride, nd, minimum=1)
    d = tuple_param("dilation", dilation, nd, minimum=1)
    op = tuple_param("output_padding", output_padding, nd, minimum=0)
    for o, ss, dd in zip(op, s, d):
        if o >= max(ss, dd):
            raise ParameterError(
                "output_padding",
                "must satisfy 0 <= output_padding < max(stride, dilation); "
                f"got {output_padding!r} with stride {stride!r}, dilation {dilation!r}",
            )
    n_y = tuple(y_shape[2:])
    if min(n_y) < 1:
        raise ShapeError("y", f"every spatial dim must be >= 1 (the conv's output sizes), got shape {tuple(y_shape)}")
    pairs = explicit_padding("padding", padding, nd)
    if padding == "same":
        if any(op):
            raise ParameterError("output_padding", "must be 0 with padding='same' (the size is n_y * stride)")
        n_x = tuple(n * ss for n, ss in zip(n_y, s))
        pairs = tuple(same_pads(n, k, ss, dd) for n, k, ss, dd in zip(n_x, kernel, s, d))
    else:
        if padding == "valid":
            pairs = ((0, 0),) * nd
        elif padding == "full":
            pairs = tuple((dd * (k - 1), dd * (k - 1)) for k, dd in zip(kernel, d))
        n_x = tuple(
            (n - 1) * ss - b - e + dd * (k - 1) + o + 1 for n, ss, (b, e), dd, k, o in zip(n_y, s, pairs, d, kernel, op)
        )
    for axis, n in enumerate(n_x):
        if n < 1:
            raise ShapeError(
                "y",
                f"output size {n} < 1 in spatial dim {axis} "
                f"(padding {pairs[axis]} removes more than the transposed conv produces)",
            )
    big = "stride" if any(ss > 1 for ss in s) else "dilation" if any(dd > 1 for dd in d) else "w"
    check_work(big, {"output": y_shape[0] * c_x * int(np.prod(n_x, dtype=object))})
    geo = ConvGeometry((y_shape[0], c_x) + n_x, w_shape, None, stride=s, padding=pairs, dilation=d, groups=groups)
    # conv maps n_x onto at least n_y outputs; with dilation > stride an output_padding can make it
    # more. The transposed conv is the adjoint of the conv's first n_y outputs (as PyTorch computes it).
    geo.out_sizes = n_y
    return geo


def _geometry(y, w, b, stride, padding, output_padding, dilation, groups):
    """The arrays checked and the geometry, for both forms of the forward and of the backward."""
    y, w, b = _inputs(y, w, b)
    geo = transpose_geometry(
        y.shape,
        w.shape,
        None if b is None else b.shape,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    return y, w, b, geo


def _inputs(y, w, b):
    y = spatial_array("y", y)
    w = as_array("w", w)
    b = None if b is None else as_array("b", b, ndim=1)
    return y, w, b


# The vectorised form of conv_transpose_literal; tests/test_reference_literal.py proves the two equal.
def conv_transpose(y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    y, w, b, geo = _geometry(y, w, b, stride, padding, output_padding, dilation, groups)
    if 0 in (geo.n, geo.c_in, geo.c_out):  # empty sums or an empty output: SPEC.md, "Empty dimensions"
        x = zeros((geo.n, geo.c_in) + geo.in_sizes, y, w, b)
    else:
        x = conv_input_grad(y, w, geo)
    return x if b is None else x + bias_shape(geo.nd, b)


# The vectorised form of conv_transpose_backward_literal; tests/test_reference_literal.py proves the two equal.
def conv_transpose_backward(grad_out, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """-> (dy, dw, db). The adjoint of the adjoint is conv: dy = conv(g, w); dw is conv's weight
    gradient with the roles of input and output gradient swapped."""
    y, w, b, geo = _geometry(y, w, b, stride, padding, output_padding, dilation, groups)
    g = check_grad("grad_out", grad_out, (geo.n, geo.c_in) + geo.in_sizes)
    if 0 in (geo.n, geo.c_in, geo.c_out):  # empty sums: SPEC.md, "Empty dimensions"
        dy, dw = zeros(y.shape, g, w), zeros(w.shape, y, g)
    else:
        dy = conv_core(g, w, geo)
        dw = conv_weight_grad(y, g, geo)
    db = None if b is None else g.sum(axis=(0,) + tuple(range(2, 2 + geo.nd)))
    return dy, dw, db
