"""Parameter normalisation shared by every op: spatial tuples, padding forms, output sizes.

This is where the sizing rules of the spec live, once:

    out = floor((n + p_begin + p_end - d*(k-1) - 1) / s) + 1          (floor mode)
    out = ceil(...) + 1, minus a last window that starts in the end padding   (ceil mode, pooling)
"""
from __future__ import annotations

import itertools
import numbers
from fractions import Fraction

import numpy as np

from .errors import DTypeError, ParameterError, ShapeError

PADDING_MODES = ("valid", "same", "full")


def as_array(name: str, a, *, min_ndim: int | None = None, ndim: int | tuple | None = None) -> np.ndarray:
    """Validate an array argument: numeric dtype (object arrays must hold numbers), ndim rule."""
    try:
        a = np.asarray(a)
    except ValueError as exc:  # a ragged nested list
        raise ShapeError(name, f"must be a rectangular array; got a ragged nested sequence ({exc})") from None
    if a.dtype == object:
        for v in a.flat:
            if not isinstance(v, numbers.Number) or isinstance(v, (bool, np.bool_)) or isinstance(v, complex):
                raise DTypeError(name, f"object arrays must hold real numbers (e.g. Fraction); found {type(v).__name__}")
    elif a.dtype.kind in "iu":
        a = a.astype(np.float64)
    elif a.dtype.kind != "f":
        raise DTypeError(name, f"dtype must be a real floating, integer or Fraction-object dtype, got {a.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            raise ShapeError(name, f"must have ndim in {allowed}, got shape {a.shape}")
    if min_ndim is not None and a.ndim < min_ndim:
        raise ShapeError(name, f"must have at least {min_ndim} dimensions, got shape {a.shape}")
    return a


def spatial_array(name: str, a) -> np.ndarray:
    """An (N, C, *spatial) array with 1, 2 or 3 spatial dims."""
    return as_array(name, a, ndim=(3, 4, 5))


def tuple_param(name: str, value, nd: int, *, minimum: int) -> tuple[int, ...]:
    """An int or a per-dim tuple of ints, each >= minimum."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value),) * nd
    elif isinstance(value, (tuple, list)) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        if len(value) != nd:
            raise ParameterError(name, f"needs one value per spatial dim ({nd}), got {tuple(value)}")
        out = tuple(int(v) for v in value)
    else:
        raise ParameterError(name, f"must be an int or a tuple of {nd} ints, got {value!r}")
    for v in out:
        if v < minimum:
            raise ParameterError(name, f"must be >= {minimum}, got {value!r}")
    return out


def explicit_padding(name: str, padding, nd: int) -> tuple[tuple[int, int], ...] | None:
    """Int, per-dim ints or per-dim (begin, end) pairs -> ((b, e), ...); a mode string -> None."""
    if isinstance(padding, str):
        if padding not in PADDING_MODES:
            raise ParameterError(name, f"unknown padding mode {padding!r}; expected one of {PADDING_MODES}, an int, a tuple of ints or a tuple of (begin, end) pairs")
        return None
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        pairs = ((int(padding), int(padding)),) * nd
    elif isinstance(padding, (tuple, list)) and len(padding) == nd and all(
        isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding
    ):
        pairs = tuple((int(p), int(p)) for p in padding)
    elif isinstance(padding, (tuple, list)) and len(padding) == nd and all(
        isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(q, (int, np.integer)) and not isinstance(q, bool) for q in p)
        for p in padding
    ):
        pairs = tuple((int(b), int(e)) for b, e in padding)
    else:
        raise ParameterError(name, f"must be an int, a tuple of {nd} ints, a tuple of {nd} (begin, end) pairs or one of {PADDING_MODES}; got {padding!r}")
    for b, e in pairs:
        if b < 0 or e < 0:
            raise ParameterError(name, f"must be non-negative, got {padding!r}")
    return pairs


def same_pads(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """'same': out = ceil(n/s); total = max((out-1)*s + d*(k-1) + 1 - n, 0); odd extra at the end."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def resolve_padding(name: str, padding, sizes, kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
    """Every padding form -> explicit ((begin, end), ...) for the given input sizes."""
    nd = len(sizes)
    pairs = explicit_padding(name, padding, nd)
    if pairs is not None:
        return pairs
    if padding == "valid":
        return ((0, 0),) * nd
    if padding == "full":
        return tuple((d * (k - 1), d * (k - 1)) for k, d in zip(kernel, dilation))
    return tuple(same_pads(n, k, s, d) for n, k, s, d in zip(sizes, kernel, stride, dilation))


def floor_size(n: int, k: int, s: int, d: int, pb: int, pe: int) -> int:
    return (n + pb + pe - d * (k - 1) - 1) // s + 1


def ceil_size(n: int, k: int, s: int, d: int, pb: int, pe: int) -> int:
    out = -(-(n + pb + pe - d * (k - 1) - 1) // s) + 1
    if (out - 1) * s >= n + pb:  # the last window would start in the end padding: drop it
        out -= 1
    return out


def output_sizes(sizes, kernel, stride, dilation, pads, *, ceil_mode=False, strict=False, kernel_name="w") -> tuple[int, ...]:
    """Output size per spatial dim; checks kernel <= padded input and (strict) exact stride fit."""
    out = []
    for axis, (n, k, s, d, (pb, pe)) in enumerate(zip(sizes, kernel, stride, dilation, pads)):
        extent = d * (k - 1) + 1
        if extent > n + pb + pe:
            raise ShapeError(
                kernel_name,
                f"kernel extent {extent} (d*(k-1)+1 with k={k}, d={d}) is larger than the padded input "
                f"{n + pb + pe} (n={n} + padding {pb}+{pe}) in spatial dim {axis}",
            )
        if strict and (n + pb + pe - extent) % s:
            raise ParameterError(
                "stride",
                f"stride {s} does not fit exactly in spatial dim {axis}: (n + p_begin + p_end - d*(k-1) - 1) / s = "
                f"({n} + {pb} + {pe} - {extent - 1} - 1) / {s} = {Fraction(n + pb + pe - extent, s)} is not an integer",
            )
        size = ceil_size(n, k, s, d, pb, pe) if ceil_mode else floor_size(n, k, s, d, pb, pe)
        if size < 1:
            raise ShapeError("x", f"output size {size} < 1 in spatial dim {axis}")
        out.append(size)
    return tuple(out)


def pad_array(x: np.ndarray, pads, fill) -> np.ndarray:
    """Pad the spatial axes (all but the first two) with `fill`; works for object arrays too."""
    widths = [(0, 0), (0, 0)] + [tuple(p) for p in pads]
    if x.dtype == object:
        out = np.full(tuple(n + b + e for n, (b, e) in zip(x.shape, widths)), fill, dtype=object)
        out[tuple(slice(b, b + n) for n, (b, _) in zip(x.shape, widths))] = x
        return out
    return np.pad(x, widths, constant_values=fill)


def zero_like(x: np.ndarray):
    """The additive identity in x's number system (Fraction(0) for object arrays)."""
    return Fraction(0) if x.dtype == object else x.dtype.type(0)


def windows(xp: np.ndarray, kernel, stride, dilation, out) -> np.ndarray:
    """A view (N, C, *out, *kernel) of the (already padded) xp: window element j of output o is
    xp[o*s + j*d]."""
    nd = len(kernel)
    extents = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    v = np.lib.stride_tricks.sliding_window_view(xp, extents, axis=tuple(range(2, 2 + nd)))
    sl = (slice(None), slice(None))
    sl += tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, stride))
    sl += tuple(slice(None, None, d) for d in dilation)
    return v[sl]


# --- index helpers of the literal definitions (the <op>_literal functions) -------------------------

def grid(sizes):
    """Every multi-index of an array of the given sizes, in row-major order: product(range(n0), range(n1), ...)."""
    return itertools.product(*(range(n) for n in sizes))


def row_major(index, sizes) -> int:
    """The flat row-major (C-order) position of a multi-index: ((i0*n1 + i1)*n2 + i2)..."""
    flat = 0
    for i, n in zip(index, sizes):
        flat = flat * n + i
    return flat
