"""The size arithmetic the lectures do by hand: output sizes, parameter counts, receptive fields."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._params import bool_param, output_sizes, resolve_padding, tuple_param
from .errors import ParameterError


def output_size(n, k, *, stride=1, padding=0, dilation=1, ceil_mode=False, strict=False):
    """Output length of a conv/pool along one dim: floor((n + p_b + p_e - d*(k-1) - 1)/s) + 1.

    n, k, stride, dilation: ints; padding: an int, a (begin, end) pair or 'valid'/'same'/'full'.
    Raises ParameterError for a stride that does not fit when strict=True."""
    for name, v in (("n", n), ("k", k)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ParameterError(name, f"must be an int >= 1, got {v!r}")
    s = tuple_param("stride", stride, 1, minimum=1)
    d = tuple_param("dilation", dilation, 1, minimum=1)
    if isinstance(padding, tuple) and len(padding) == 2:
        padding = (padding,)
    pads = resolve_padding("padding", padding, (n,), (k,), s, d)
    return output_sizes((n,), (k,), s, d, pads, ceil_mode=ceil_mode, strict=strict, kernel_name="k")[0]


def _is_int(v) -> bool:
    """An integer, or a real number equal to one (Fraction(3), 3.0: the lectures' examples pass arrays)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        return False
    return isinstance(v, numbers.Integral) or (math.isfinite(v) and v == int(v))


def _ints(name: str, value, *, minimum=None, scalar=True) -> tuple[int, ...]:
    """An int (when scalar) or a sequence of ints, as a tuple; anything else is a ParameterError naming `name`."""
    if scalar and _is_int(value):
        value = (value,)
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = list(value)
    if not isinstance(value, (tuple, list)) or not all(_is_int(v) for v in value):
        raise ParameterError(name, f"must be {'an int or ' if scalar else ''}a sequence of ints, got {value!r}")
    if minimum is not None and any(v < minimum for v in value):
        raise ParameterError(name, f"must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in value)


def param_count(c_in, c_out, kernel_size, *, groups=1, bias=True):
    """Learnable parameters of a conv layer: c_out * (c_in/groups) * prod(kernel) (+ c_out biases).
    kernel_size is a tuple (one entry per spatial dim, e.g. (5, 5)); an int means a 1-D kernel.
    A fully connected layer is kernel_size=1 with c_in the flattened input size."""
    kernel = _ints("kernel_size", kernel_size, minimum=1)
    for name, v in (("c_in", c_in), ("c_out", c_out), ("groups", groups)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ParameterError(name, f"must be an int >= 1, got {v!r}")
    if c_in % groups or c_out % groups:
        raise ParameterError("groups", f"groups={groups} must divide c_in={c_in} and c_out={c_out}")
    bias = bool_param("bias", bias)
    return c_out * (c_in // groups) * int(np.prod(kernel)) + (c_out if bias else 0)


def receptive_field(kernel_sizes, strides=1, dilations=1):
    """Side length, in input pixels, seen by one unit after the listed layers:
    r = 1 + sum_l (k_l - 1) * d_l * prod_{i<l} s_i."""
    ks = list(_ints("kernel_sizes", kernel_sizes, scalar=False))
    n = len(ks)
    ss = [strides] * n if _is_int(strides) else list(_ints("strides", strides))
    ds = [dilations] * n if _is_int(dilations) else list(_ints("dilations", dilations))
    if not (len(ss) == len(ds) == n):
        raise ParameterError("strides", f"strides and dilations need one value per layer ({n})")
    r, jump = 1, 1
    for k, s, d in zip(ks, ss, ds):
        if min(k, s, d) < 1:
            raise ParameterError(
                "kernel_sizes", f"kernel sizes, strides and dilations must be >= 1, got k={k}, s={s}, d={d}"
            )
        r += (k - 1) * d * jump
        jump *= s
    return r
