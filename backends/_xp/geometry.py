"""Parameter validation and window geometry, in plain Python integers (no array module needed).

Written independently of convspec.reference: the rules are re-derived from the spec text so that a
disagreement between the two shows up in the conformance suite.

Sizes along one spatial dim with input n, kernel k, stride s, dilation d, padding (b, e):

    extent = d*(k-1) + 1
    floor mode: out = (n + b + e - extent) // s + 1
    ceil mode:  out = ceil((n + b + e - extent) / s) + 1, minus one if that last window would start
                at or after n + b (entirely in the end padding)
"""

from __future__ import annotations

from fractions import Fraction
from math import prod
from numbers import Integral

from .errors import ParameterError, ShapeError

MODES = ("valid", "same", "full")


def _is_int(v) -> bool:
    """Python and NumPy integers (numbers.Integral), never bools."""
    return isinstance(v, Integral) and not isinstance(v, bool)


def check_groups(groups) -> int:
    if not _is_int(groups) or groups < 1:
        raise ParameterError("groups", f"must be an int >= 1, got {groups!r}")
    return int(groups)


def per_dim(name: str, value, nd: int, minimum: int) -> tuple[int, ...]:
    """An int (same for every dim) or a tuple/list with one int per spatial dim, each >= minimum."""
    if _is_int(value):
        vals = (int(value),) * nd
    elif isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        if len(value) != nd:
            raise ParameterError(name, f"needs one value per spatial dim ({nd}), got {tuple(value)}")
        vals = tuple(int(v) for v in value)
    else:
        raise ParameterError(name, f"must be an int or a tuple of {nd} ints, got {value!r}")
    if any(v < minimum for v in vals):
        raise ParameterError(name, f"must be >= {minimum}, got {value!r}")
    return vals


def padding_pairs(name: str, padding, nd: int):
    """int | per-dim ints | per-dim (begin, end) pairs -> ((b, e), ...); a mode string -> the string."""
    if isinstance(padding, str):
        if padding not in MODES:
            raise ParameterError(
                name,
                f"unknown padding mode {padding!r}; expected one of {MODES}, "
                "an int, a tuple of ints or a tuple of (begin, end) pairs",
            )
        return padding
    pairs = None
    if _is_int(padding):
        pairs = ((int(padding), int(padding)),) * nd
    elif isinstance(padding, (tuple, list)) and len(padding) == nd:
        if all(_is_int(p) for p in padding):
            pairs = tuple((int(p), int(p)) for p in padding)
        elif all(isinstance(p, (tuple, list)) and len(p) == 2 and _is_int(p[0]) and _is_int(p[1]) for p in padding):
            pairs = tuple((int(p[0]), int(p[1])) for p in padding)
    if pairs is None:
        raise ParameterError(
            name,
            f"must be an int, a tuple of {nd} ints, a tuple of {nd} (begin, end) pairs "
            f"or one of {MODES}; got {padding!r}",
        )
    if any(b < 0 or e < 0 for b, e in pairs):
        raise ParameterError(name, f"must be non-negative, got {padding!r}")
    return pairs


def same_split(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """'same': the output is ceil(n / s) long; the total padding needed, odd unit at the end."""
    n_out = (n + s - 1) // s
    need = (n_out - 1) * s + d * (k - 1) + 1 - n
    need = need if need > 0 else 0
    return need // 2, need - need // 2


def out_len(n, k, s, d, b, e, ceil_mode=False) -> int:
    span = n + b + e - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1
    out = -((-span) // s) + 1
    if (out - 1) * s >= n + b:
        out -= 1
    return out


def out_sizes(sizes, kernel, stride, dilation, pads, *, ceil_mode=False, strict=False, kernel_name="w"):
    res = []
    for axis, (n, k, s, d, (b, e)) in enumerate(zip(sizes, kernel, stride, dilation, pads)):
        extent = d * (k - 1) + 1
        if extent > n + b + e:
            what = "input" if kernel_name == "w" else "pool"
            raise ShapeError(
                kernel_name,
                f"kernel extent {extent} (d*(k-1)+1 with k={k}, d={d}) "
                f"is larger than the padded {what} {n + b + e} (n={n} + padding {b}+{e}) in spatial dim {axis}",
            )
        if strict and (n + b + e - extent) % s:
            raise ParameterError(
                "stride",
                f"stride {s} does not fit exactly in spatial dim {axis}: (n + p_begin + p_end - d*(k-1) - 1) / s = "
                f"({n} + {b} + {e} - {extent - 1} - 1) / {s} = {Fraction(n + b + e - extent, s)} is not an integer",
            )
        o = out_len(n, k, s, d, b, e, ceil_mode)
        if o < 1:
            raise ShapeError("x", f"output size {o} < 1 in spatial dim {axis}")
        res.append(o)
    return tuple(res)


class Conv:
    """Geometry of y = conv(x, w): x (N, C_in, *n), w (C_out, C_in/G, *k), y (N, C_out, *o)."""

    def __init__(self, x_shape, w_shape, b_shape, *, stride, padding, dilation, groups, strict=False, x_name="x"):
        nd = len(x_shape) - 2
        if len(w_shape) != nd + 2:
            raise ShapeError(
                "w",
                f"must have ndim {nd + 2} (C_out, C_in/groups, *kernel) "
                f"to match {x_name} of shape {tuple(x_shape)}, got shape {tuple(w_shape)}",
            )
        groups = check_groups(groups)
        n, c_in = int(x_shape[0]), int(x_shape[1])
        c_out, cg = int(w_shape[0]), int(w_shape[1])
        if c_in % groups:
            raise ParameterError("groups", f"groups={groups} must divide the input channels C_in={c_in}")
        if c_out % groups:
            raise ParameterError(
                "groups", f"groups={groups} must divide the output channels C_out={c_out} (w.shape[0])"
            )
        if cg * groups != c_in:
            raise ShapeError(
                x_name,
                f"channel mismatch: {x_name} has {c_in} input channels but w expects {cg * groups} "
                f"(w.shape[1]={cg} * groups={groups})",
            )
        if b_shape is not None and tuple(b_shape) != (c_out,):
            raise ShapeError("b", f"must have shape (C_out,) = ({c_out},), got {tuple(b_shape)}")
        kernel = tuple(int(k) for k in w_shape[2:])
        if any(k < 1 for k in kernel):
            raise ShapeError("w", f"kernel sizes must be >= 1, got {kernel}")
        self.nd, self.n, self.c_in, self.c_out, self.groups = nd, n, c_in, c_out, groups
        self.kernel = kernel
        self.stride = per_dim("stride", stride, nd, 1)
        self.dilation = per_dim("dilation", dilation, nd, 1)
        self.in_sizes = tuple(int(v) for v in x_shape[2:])
        pads = padding_pairs("padding", padding, nd)
        if pads == "valid":
            pads = ((0, 0),) * nd
        elif pads == "full":
            pads = tuple((d * (k - 1), d * (k - 1)) for k, d in zip(kernel, self.dilation))
        elif pads == "same":
            pads = tuple(
                same_split(n_, k, s, d) for n_, k, s, d in zip(self.in_sizes, kernel, self.stride, self.dilation)
            )
        self.pads = pads
        self.out_sizes = out_sizes(self.in_sizes, kernel, self.stride, self.dilation, pads, strict=strict)

    @property
    def taps(self) -> int:
        return prod(self.kernel)

    @property
    def x_shape(self):
        return (self.n, self.c_in) + self.in_sizes

    @property
    def y_shape(self):
        return (self.n, self.c_out) + self.out_sizes


def conv_transpose(y_shape, w_shape, b_shape, *, stride, padding, output_padding, dilation, groups) -> Conv:
    """The Conv whose input-adjoint conv_transpose is: y is that conv's output, our result its input."""
    nd = len(y_shape) - 2
    if len(w_shape) != nd + 2:
        raise ShapeError(
            "w",
            f"must have ndim {nd + 2} (C_y, C_x/groups, *kernel) "
            f"to match y of shape {tuple(y_shape)}, got shape {tuple(w_shape)}",
        )
    groups = check_groups(groups)
    if y_shape[1] != w_shape[0]:
        raise ShapeError("y", f"channel mismatch: y has {y_shape[1]} channels but w.shape[0] is {w_shape[0]}")
    if y_shape[1] % groups:
        raise ParameterError("groups", f"groups={groups} must divide the channels of y ({y_shape[1]})")
    c_x = int(w_shape[1]) * groups
    if b_shape is not None and tuple(b_shape) != (c_x,):
        raise ShapeError("b", f"must have shape (C_x,) = ({c_x},) = (w.shape[1] * groups,), got {tuple(b_shape)}")
    kernel = tuple(int(k) for k in w_shape[2:])
    s = per_dim("stride", stride, nd, 1)
    d = per_dim("dilation", dilation, nd, 1)
    op = per_dim("output_padding", output_padding, nd, 0)
    if any(o >= max(ss, dd) for o, ss, dd in zip(op, s, d)):
        raise ParameterError(
            "output_padding",
            "must satisfy 0 <= output_padding < max(stride, dilation); "
            f"got {output_padding!r} with stride {stride!r}, dilation {dilation!r}",
        )
    n_y = tuple(int(v) for v in y_shape[2:])
    pads = padding_pairs("padding", padding, nd)
    if pads == "same":
        if any(op):
            raise ParameterError("output_padding", "must be 0 with padding='same' (the size is n_y * stride)")
        n_x = tuple(n * ss for n, ss in zip(n_y, s))
        pads = tuple(same_split(n, k, ss, dd) for n, k, ss, dd in zip(n_x, kernel, s, d))
    else:
        if pads == "valid":
            pads = ((0, 0),) * nd
        elif pads == "full":
            pads = tuple((dd * (k - 1),) * 2 for k, dd in zip(kernel, d))
        n_x = tuple(
            (n - 1) * ss - b - e + dd * (k - 1) + o + 1 for n, ss, (b, e), dd, k, o in zip(n_y, s, pads, d, kernel, op)
        )
    for axis, n in enumerate(n_x):
        if n < 1:
            raise ShapeError(
                "y",
                f"output size {n} < 1 in spatial dim {axis} "
                f"(padding {pads[axis]} removes more than the transposed conv produces)",
            )
    geo = Conv((y_shape[0], c_x) + n_x, w_shape, None, stride=s, padding=pads, dilation=d, groups=groups)
    # conv maps n_x onto at least n_y outputs (more when dilation > stride and output_padding > 0):
    # conv_transpose is the adjoint of the conv's first n_y outputs
    geo.out_sizes = n_y
    return geo


class Pool:
    """Geometry of a pooling window over x (N, C, *n). With ceil_mode the last window may overhang the
    padded input by `overhang` per dim."""

    def __init__(self, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
        nd = len(x_shape) - 2
        self.nd = nd
        self.kernel = per_dim("kernel_size", kernel_size, nd, 1)
        self.stride = self.kernel if stride is None else per_dim("stride", stride, nd, 1)
        self.dilation = per_dim("dilation", dilation, nd, 1)
        if isinstance(padding, str):
            raise ParameterError(
                "padding", f"pooling takes an int, a per-dim tuple or (begin, end) pairs, not the mode {padding!r}"
            )
        self.pads = padding_pairs("padding", padding, nd)
        self.in_sizes = tuple(int(v) for v in x_shape[2:])
        self.ceil_mode = bool(ceil_mode)
        self.out_sizes = out_sizes(
            self.in_sizes,
            self.kernel,
            self.stride,
            self.dilation,
            self.pads,
            ceil_mode=self.ceil_mode,
            kernel_name="kernel_size",
        )
        self.overhang = tuple(
            max((o - 1) * s + d * (k - 1) + 1 - (n + b + e), 0)
            for o, s, d, k, n, (b, e) in zip(
                self.out_sizes, self.stride, self.dilation, self.kernel, self.in_sizes, self.pads
            )
        )

    @property
    def taps(self) -> int:
        return prod(self.kernel)

    def overlapping(self) -> bool:
        """Whether two windows can share an input element in some dim."""
        return any(s < d * (k - 1) + 1 for s, d, k in zip(self.stride, self.dilation, self.kernel))

    def dim_counts(self, axis: int, include_pad: bool) -> list[int]:
        """Per output position along `axis`: how many window elements lie on real inputs (or, with
        include_pad, inside the explicitly padded input; never the ceil_mode overhang)."""
        n, k, s, d, (b, e) = (
            self.in_sizes[axis],
            self.kernel[axis],
            self.stride[axis],
            self.dilation[axis],
            self.pads[axis],
        )
        lo, hi = (-b, n + e) if include_pad else (0, n)
        return [sum(1 for j in range(k) if lo <= o * s + j * d - b < hi) for o in range(self.out_sizes[axis])]
