"""Parameter normalisation shared by every op: spatial tuples, padding forms, output sizes.

This is where the sizing rules of the spec live, once:

    out = floor((n + p_begin + p_end - d*(k-1) - 1) / s) + 1          (floor mode)
    out = ceil(...) + 1, minus a last window that starts in the end padding   (ceil mode, pooling)
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import numbers
import os
import sys
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
                raise DTypeError(
                    name, f"object arrays must hold real numbers (e.g. Fraction); found {type(v).__name__}"
                )
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


def bool_param(name: str, value) -> bool:
    """A flag: exactly a bool (or np.bool_). 'False', 'no', 0 or None are not flags: truthiness would read
    the string 'False' as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(name, f"must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


def spatial_array(name: str, a) -> np.ndarray:
    """An (N, C, *spatial) array with 1, 2 or 3 spatial dims."""
    return as_array(name, a, ndim=(3, 4, 5))


def tuple_param(name: str, value, nd: int, *, minimum: int) -> tuple[int, ...]:
    """An int or a per-dim tuple of ints, each >= minimum."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value),) * nd
    elif isinstance(value, (tuple, list)) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        if len(value) != nd:
            raise ParameterError(name, f"needs one value per spatial dim ({nd}), got {tuple(value)}")
        out = tuple(int(v) for v in value)
    else:
        raise ParameterError(name, f"must be an int or a tuple of {nd} ints, got {value!r}")
    for v in out:
        if v < minimum:
            raise ParameterError(name, f"must be >= {minimum}, got {value!r}")
        if v > MAX_ELEMENTS:  # index arithmetic stays in int64
            raise ParameterError(
                name, f"must be at most 2**31 = {MAX_ELEMENTS} (the reference's size limit), got {value!r}"
            )
    return out


def explicit_padding(name: str, padding, nd: int) -> tuple[tuple[int, int], ...] | None:
    """Int, per-dim ints or per-dim (begin, end) pairs -> ((b, e), ...); a mode string -> None."""
    if isinstance(padding, str):
        if padding not in PADDING_MODES:
            raise ParameterError(
                name,
                f"unknown padding mode {padding!r}; expected one of {PADDING_MODES}, an int, "
                "a tuple of ints or a tuple of (begin, end) pairs",
            )
        return None
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        pairs = ((int(padding), int(padding)),) * nd
    elif (
        isinstance(padding, (tuple, list))
        and len(padding) == nd
        and all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding)
    ):
        pairs = tuple((int(p), int(p)) for p in padding)
    elif (
        isinstance(padding, (tuple, list))
        and len(padding) == nd
        and all(
            isinstance(p, (tuple, list))
            and len(p) == 2
            and all(isinstance(q, (int, np.integer)) and not isinstance(q, bool) for q in p)
            for p in padding
        )
    ):
        pairs = tuple((int(b), int(e)) for b, e in padding)
    else:
        raise ParameterError(
            name,
            f"must be an int, a tuple of {nd} ints, a tuple of {nd} (begin, end) pairs or one "
            f"of {PADDING_MODES}; got {padding!r}",
        )
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


def output_sizes(
    sizes, kernel, stride, dilation, pads, *, ceil_mode=False, strict=False, kernel_name="w"
) -> tuple[int, ...]:
    """Output size per spatial dim; checks kernel <= padded input and (strict) exact stride fit."""
    ceil_mode = bool_param("ceil_mode", ceil_mode)
    strict = bool_param("strict", strict)
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


# --- how much an op may build: checked before anything is allocated ---------------------------------

#: The most elements any one array an op builds may hold (a padded input, a window matrix, an output):
#: 2**31, 16 GiB in float64. Beyond it the op raises a SpecError naming the parameter that asked for it
#: (usually padding or dilation) instead of trying to allocate.
MAX_ELEMENTS = 2**31
#: Below this many bytes in all, the available memory is not consulted (a call costs nothing then).
_MEMORY_CHECK_BYTES = 2**28


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable on Linux), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _error_for(name: str):
    """Arrays are blamed with a ShapeError, hyper-parameters with a ParameterError."""
    return ShapeError if name in ("x", "y", "w", "z", "logits") or name.startswith("xs[") else ParameterError


def check_work(blame: str, arrays: dict, *, itemsize: int = 8) -> None:
    """Refuse, before allocating, an op whose working arrays are too large.

    arrays: {description: number of elements} of the arrays the op builds. The largest must hold at most
    MAX_ELEMENTS elements, and all of them together (itemsize bytes each: the reference computes in float64)
    must fit in the memory available. Otherwise a SpecError naming `blame`, the parameter responsible."""
    what, biggest = max(arrays.items(), key=lambda kv: kv[1])
    if biggest > MAX_ELEMENTS:
        raise _error_for(blame)(
            blame,
            f"the {what} would hold {biggest:,} elements, more than the reference's limit of "
            f"2**31 = {MAX_ELEMENTS:,} elements per array (see SPEC.md, 'Sizes')",
        )
    need = sum(arrays.values()) * itemsize
    if need > _MEMORY_CHECK_BYTES:
        avail = available_memory()
        if avail is not None and need > avail:
            raise _error_for(blame)(
                blame,
                f"the op needs about {need / 2**30:.1f} GiB (the {what}: {biggest:,} elements), more than "
                f"the {avail / 2**30:.1f} GiB of memory available",
            )


def culprit(in_sizes, pads, kernel, dilation, *, mode: bool = False, kernel_name: str = "w") -> str:
    """Which parameter made a window op's arrays large: padding larger than the input, else a dilation > 1,
    else any padding, else the kernel (or, with a 1-tap kernel, the input itself)."""
    dilated = any(d > 1 for d in dilation)
    if any(b + e > n for n, (b, e) in zip(in_sizes, pads)) and not (mode and dilated):
        return "padding"
    if dilated:
        return "dilation"
    if any(b + e for b, e in pads):
        return "padding"
    return kernel_name if math.prod(kernel) > 1 else "x"


def window_work(blame: str, batch: int, c_in: int, c_out: int, in_sizes, pads, kernel, out_sizes) -> None:
    """check_work for a window op (conv family, pooling) of `batch` samples: the padded input
    (N, C_in, *padded), the window matrix (N, prod(out), C_in * prod(kernel)) and the output (N, C_out, *out)."""
    padded = math.prod(n + b + e for n, (b, e) in zip(in_sizes, pads))
    check_work(
        blame,
        {
            "padded input": batch * c_in * padded,
            "window matrix": batch * math.prod(out_sizes) * c_in * math.prod(kernel),
            "output": batch * c_out * math.prod(out_sizes),
        },
    )


# --- float64 inside: every op computes in float64 and rounds once to the inputs' dtype -----------------

#: Arguments that are not data (labels, masks): they never set the result's dtype and are passed unchanged.
NOT_DATA = ("labels", "keep")


def _data_dtype(a):
    """The dtype an argument contributes to the result (None: none; 'skip': leave the call alone)."""
    if isinstance(a, (np.ndarray, np.generic)):
        if a.dtype == object:
            return "skip"  # exact Fraction arithmetic: nothing to round
        if a.dtype.kind == "f":
            return a.dtype
        return np.dtype(np.float64) if a.dtype.kind in "iu" else None  # integers are read as float64
    if isinstance(a, (list, tuple)) and a and all(isinstance(v, np.ndarray) for v in a):  # concat's xs
        kinds = [_data_dtype(v) for v in a]
        if any(isinstance(k, str) for k in kinds):
            return "skip"
        kinds = [k for k in kinds if k is not None]
        return np.result_type(*kinds) if kinds else None
    if isinstance(a, (list, tuple)):
        return np.dtype(np.float64)  # nested Python numbers: read as float64
    return None


def _widen(a):
    if isinstance(a, (np.ndarray, np.generic)) and a.dtype.kind == "f" and a.dtype.itemsize < 8:
        return a.astype(np.float64)
    if isinstance(a, (list, tuple)) and a and all(isinstance(v, np.ndarray) for v in a):
        return type(a)(_widen(v) for v in a)
    return a


def _narrow(out, dtype):
    if isinstance(out, tuple):
        return tuple(_narrow(o, dtype) for o in out)
    if isinstance(out, np.ndarray) and out.dtype.kind == "f":
        return out.astype(dtype)
    if isinstance(out, np.floating):
        return dtype.type(out)
    return out


def float64_inside(fn):
    """fn, computing in float64 whatever the floating dtype of its data: float16 and float32 data are widened
    to float64, and every floating result is rounded once, at the end, to the data's common dtype. So
    avg_pool of float16 60000s is 60000 (in float16, 60000 + 60000 overflows to inf). Labels and masks
    (NOT_DATA) are passed as they are; Fraction (object) data is exact already and passes untouched."""
    if getattr(fn, "float64_inside", False):
        return fn
    params = list(inspect.signature(fn).parameters)
    skip = {i for i, p in enumerate(params) if p in NOT_DATA}

    @functools.wraps(fn)
    def op(*args, **kwargs):
        dtypes = []
        for i, a in enumerate(args):
            if i in skip:
                continue
            d = _data_dtype(a)
            if isinstance(d, str):
                return fn(*args, **kwargs)
            if d is not None:
                dtypes.append(d)
        if not dtypes:
            return fn(*args, **kwargs)
        target = np.result_type(*dtypes)
        if target.itemsize >= 8:
            return fn(*args, **kwargs)
        return _narrow(fn(*[a if i in skip else _widen(a) for i, a in enumerate(args)], **kwargs), target)

    op.float64_inside = True
    return op


def compute_in_float64(namespace: dict, names) -> None:
    """Replace each named op in `namespace` (and in the module that defines it, so that the two stay the same
    object) by float64_inside(op)."""
    for name in names:
        fn = namespace[name]
        wrapped = float64_inside(fn)
        namespace[name] = wrapped
        module = sys.modules.get(fn.__module__)
        if module is not None and getattr(module, fn.__name__, None) is fn:
            setattr(module, fn.__name__, wrapped)


def zeros(shape, *arrays) -> np.ndarray:
    """Zeros of the arrays' common dtype (Fraction(0) for object arrays): the value of an empty sum."""
    dtype = np.result_type(*[a for a in arrays if a is not None])
    return np.full(shape, Fraction(0) if dtype == np.dtype(object) else dtype.type(0), dtype=dtype)
