"""Array-level helpers shared by the kernels, generic over the array module `xp` (numpy or cupy):
argument validation, padding, and the strided slices that address one kernel tap of every window."""

from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache
from itertools import product

import numpy as np

from convspec.api import Unsupported  # the engine reports it "unsupported", not "failed"

from .errors import DTypeError, ShapeError


def to_array(xp, a):
    """xp.asarray(a), except that an object (Fraction) array stays a NumPy array: a device array
    module (cupy) cannot hold one, and the callers turn it into Unsupported or DTypeError."""
    if xp is np or hasattr(a, "__cuda_array_interface__"):
        return xp.asarray(a)
    host = np.asarray(a)
    return host if host.dtype.kind == "O" else xp.asarray(host)


def as_float(xp, name: str, a, *, ndim=None, min_ndim=None):
    """The backend's form of an array argument: integers become float64, real floats pass through,
    anything else is a DTypeError; object (Fraction) arrays are the reference's business only."""
    a = to_array(xp, a)
    kind = a.dtype.kind
    if kind in "iu":
        a = a.astype(xp.float64)
    elif kind == "O":
        raise Unsupported(f"{name}: object (exact rational) arrays are evaluated by the reference only")
    elif kind != "f":
        raise DTypeError(name, f"dtype must be a real floating, integer or Fraction-object dtype, got {a.dtype}")
    return check_ndim(name, a, ndim=ndim, min_ndim=min_ndim)


def check_ndim(name: str, a, *, ndim=None, min_ndim=None):
    """a, if its number of dimensions is in `ndim` (an int or a tuple) and at least `min_ndim`."""
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            raise ShapeError(name, f"must have ndim in {allowed}, got shape {tuple(a.shape)}")
    if min_ndim is not None and a.ndim < min_ndim:
        raise ShapeError(name, f"must have at least {min_ndim} dimensions, got shape {tuple(a.shape)}")
    return a


def transcendental(xp, name: str, a):
    """as_float for the ops evaluated in floating point only (exp, log, tanh)."""
    a0 = to_array(xp, a)
    if a0.dtype.kind == "O":
        raise DTypeError(name, "transcendental ops are evaluated in floating point; Fraction arrays are not supported")
    return as_float(xp, name, a0)


def spatial(xp, name: str, a):
    """An (N, C, *spatial) array with 1, 2 or 3 spatial dims."""
    return as_float(xp, name, a, ndim=(3, 4, 5))


def grad(xp, g, shape, name: str = "grad_out"):
    g = as_float(xp, name, g)
    if tuple(g.shape) != tuple(shape):
        raise ShapeError(name, f"must have the forward output's shape {tuple(shape)}, got {tuple(g.shape)}")
    return g


def common_dtype(xp, *arrays):
    """The dtype every input is computed in: the promotion of the (float) inputs; float32 stays float32."""
    return xp.result_type(*[a for a in arrays if a is not None])


def cast(a, dtype):
    return a if a is None or a.dtype == dtype else a.astype(dtype)


def errstate(xp):
    """Silence NumPy's divide/invalid warnings where the spec wants the IEEE result (NaN, inf)."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore") if xp is np else nullcontext()


def padded(xp, x, pads, fill, *, first: int = 2, channels_last: bool = False):
    """x with `pads` ((b, e) per spatial dim) added around spatial axes first..first+nd-1, filled with
    `fill`; with channels_last, x is (N, C, *s) and the result is (N, *s_padded, C) (one copy either way)."""
    nd = len(pads)
    if channels_last:
        src = xp.moveaxis(x, 1, -1)
        first = 1
    else:
        src = x
    if not any(b or e for b, e in pads):
        return xp.ascontiguousarray(src)
    shape = list(src.shape)
    for a, (b, e) in enumerate(pads):
        shape[first + a] += b + e
    if fill == 0:
        out = xp.zeros(tuple(shape), dtype=x.dtype)
    else:
        out = xp.empty(tuple(shape), dtype=x.dtype)
        for a, (b, e) in enumerate(pads):  # fill only the border slabs
            lead = (slice(None),) * (first + a)
            if b:
                out[lead + (slice(0, b),)] = fill
            if e:
                out[lead + (slice(shape[first + a] - e, None),)] = fill
    inner = (slice(None),) * first + tuple(slice(b, b + n) for (b, _), n in zip(pads, src.shape[first : first + nd]))
    out[inner] = src
    return out


def where_zero(xp, mask, a, *, out=None):
    """xp.where(mask, a, 0) with +0.0 where the mask is false (a's NaNs and infinities pass where it is true).
    On NumPy, where() and masked copies branch per element and ran ~15x slower than a streaming pass on
    an unpredictable (random-sign) mask (1.1 ms for 300k elements): the mask becomes 0/1 integers that
    multiply a's bits viewed as integers instead (exact: the same bits as where). `mask` may also be a
    callable filling an integer array with 0/1, mask(o), to skip the boolean temporary."""
    if xp is not np or a.dtype.kind != "f":
        m = mask if not callable(mask) else None
        if m is None:
            m = xp.empty(a.shape, dtype=bool)
            mask(m)
        res = xp.where(m, a, xp.zeros((), dtype=a.dtype))
        if out is None:
            return res
        out[...] = res
        return out
    it = np.dtype(f"i{a.dtype.itemsize}")
    if out is None:
        out = np.empty(a.shape, dtype=a.dtype)
    o = out.view(it)  # same item size: a view whatever the strides
    if callable(mask):
        mask(o)
    else:
        np.copyto(o, mask)
    np.multiply(o, a.view(it), out=o)  # 0 or 1 times a's bits (as integers): +0.0 or a, exactly
    return out


def crop(a, pads, sizes, *, first: int = 2):
    """The interior view of a padded array (inverse of `padded` without the copy)."""
    return a[(slice(None),) * first + tuple(slice(b, b + n) for (b, _), n in zip(pads, sizes))]


def tap_slices(kernel, stride, dilation, out_sizes):
    """For each kernel tap j (row-major), the per-dim slices of the padded input that window i reads
    at that tap: element i*s + j*d, for every output i. A tuple, cached by geometry (building it cost
    ~15 us for 25 taps, a few percent of a LeNet layer's call)."""
    return _tap_slices(*(tuple(int(v) for v in a) for a in (kernel, stride, dilation, out_sizes)))


@lru_cache(maxsize=512)
def _tap_slices(kernel, stride, dilation, out_sizes):
    return tuple(
        tuple(slice(j * d, j * d + (o - 1) * s + 1, s) for j, d, o, s in zip(js, dilation, out_sizes, stride))
        for js in product(*(range(k) for k in kernel))
    )
