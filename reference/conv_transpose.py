"""conv_transpose: the adjoint of conv with respect to its input.

    <conv(x, w), y> == <x, conv_transpose(y, w)>     for every x, y (exactly, on integer data)

y: (N, C_y, *spatial), w: the weight of that conv, (C_y, C_x/groups, *kernel) -- PyTorch's and ONNX's
layout -- and b: (C_x,). `padding`/`dilation`/`stride` are the conv's. Output size per dim:

    n_x = (n_y - 1)*s - p_begin - p_end + d*(k-1) + output_padding + 1,   0 <= output_padding < max(s, d)

output_padding adds rows at the end that the first n_y windows of the conv do not read: they
receive zero (plus bias). Precisely, conv_transpose is the adjoint of x -> (the first n_y outputs of
conv(x)), which is conv itself whenever conv maps n_x to exactly n_y (always when dilation <= stride). Padding modes: 'valid' is 0; 'full' is d*(k-1) on both
sides; 'same' makes n_x = n_y * s (TensorFlow's SAME) with conv's 'same' split for that n_x.
"""
from __future__ import annotations

import numpy as np

from ._params import as_array, explicit_padding, same_pads, spatial_array, tuple_param
from .conv import ConvGeometry, bias_shape, check_grad, conv_core, conv_input_grad, conv_weight_grad
from .errors import ParameterError, ShapeError


def transpose_geometry(y_shape, w_shape, b_shape, *, stride, padding, output_padding, dilation, groups) -> ConvGeometry:
    """The geometry of the conv whose adjoint this is (its input is our output)."""
    nd = len(y_shape) - 2
    if len(w_shape) != nd + 2:
        raise ShapeError("w", f"must have ndim {nd + 2} (C_y, C_x/groups, *kernel) to match y of shape {tuple(y_shape)}, got shape {tuple(w_shape)}")
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
            raise ParameterError("output_padding", f"must satisfy 0 <= output_padding < max(stride, dilation); got {output_padding!r} with stride {stride!r}, dilation {dilation!r}")
    n_y = tuple(y_shape[2:])
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
        n_x = tuple((n - 1) * ss - b - e + dd * (k - 1) + o + 1 for n, ss, (b, e), dd, k, o in zip(n_y, s, pairs, d, kernel, op))
    for axis, n in enumerate(n_x):
        if n < 1:
            raise ShapeError("y", f"output size {n} < 1 in spatial dim {axis} (padding {pairs[axis]} removes more than the transposed conv produces)")
    geo = ConvGeometry((y_shape[0], c_x) + n_x, w_shape, None, stride=s, padding=pairs, dilation=d, groups=groups)
    # conv maps n_x onto at least n_y outputs; with dilation > stride an output_padding can make it
    # more. The transposed conv is the adjoint of the conv's first n_y outputs (as PyTorch computes it).
    geo.out_sizes = n_y
    return geo


def _inputs(y, w, b):
    y = spatial_array("y", y)
    w = as_array("w", w)
    b = None if b is None else as_array("b", b, ndim=1)
    return y, w, b


def conv_transpose(y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    y, w, b = _inputs(y, w, b)
    geo = transpose_geometry(y.shape, w.shape, None if b is None else b.shape, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    x = conv_input_grad(y, w, geo)
    return x if b is None else x + bias_shape(geo.nd, b)


def conv_transpose_backward(grad_out, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """-> (dy, dw, db). The adjoint of the adjoint is conv: dy = conv(g, w); dw is conv's weight
    gradient with the roles of input and output gradient swapped."""
    y, w, b = _inputs(y, w, b)
    geo = transpose_geometry(y.shape, w.shape, None if b is None else b.shape, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    g = check_grad("grad_out", grad_out, (geo.n, geo.c_in) + geo.in_sizes)
    dy = conv_core(g, w, geo)
    dw = conv_weight_grad(y, g, geo)
    db = None if b is None else g.sum(axis=(0,) + tuple(range(2, 2 + geo.nd)))
    return dy, dw, db
