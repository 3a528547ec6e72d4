"""Shared helpers for the reference tests (tests/test_reference_*.py).

Everything here is written from the definitions, independently of convspec.reference: padding
resolution, output sizes, the set of configurations (hypothesis strategies) and data makers. The test
modules import it as `from conftest import ...` (pytest puts tests/ on sys.path for its rootdir
conftest). Helpers are grouped by concern:

- geometry: `resolve_pads`, `out_len`, `ceil_out_len`, `same_pads`
- configurations: `ConvCase` / `conv_cases`, `TransposeCase` / `transpose_cases`, `PoolCase` / `pool_cases`
- data: `int_data`, `distinct_data`, `as_fractions`
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st

#: Hypothesis settings shared by the reference tests: small example counts keep the four files
#: within a few tens of seconds on 2 cores; no deadline (object arrays are slow on a loaded CI box).
FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
QUICK = settings(FAST, max_examples=25)

PADDING_FORMS = ("int", "per_dim", "pairs", "valid", "same", "full")
EXPLICIT_FORMS = ("int", "per_dim", "pairs")
SEEDS = st.integers(0, 2**32 - 1)


# ---------------------------------------------------------------------------------------------- geometry


def same_pads(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's SAME: out = ceil(n / s), total padding as needed (never negative), odd extra at the end."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def resolve_pads(padding, sizes, kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
    """Any padding form -> ((begin, end), ...) per spatial dim."""
    nd = len(sizes)
    if padding == "valid":
        return ((0, 0),) * nd
    if padding == "full":
        return tuple((d * (k - 1), d * (k - 1)) for k, d in zip(kernel, dilation))
    if padding == "same":
        return tuple(same_pads(n, k, s, d) for n, k, s, d in zip(sizes, kernel, stride, dilation))
    if isinstance(padding, int):
        return ((padding, padding),) * nd
    if all(isinstance(p, int) for p in padding):
        return tuple((p, p) for p in padding)
    return tuple(tuple(p) for p in padding)


def out_len(n: int, k: int, s: int, d: int, b: int, e: int) -> int:
    """floor((n + p_begin + p_end - d*(k-1) - 1) / s) + 1."""
    return (n + b + e - d * (k - 1) - 1) // s + 1


def ceil_out_len(n: int, k: int, s: int, d: int, b: int, e: int) -> int:
    """ceil mode: ceil(...) + 1, dropping a last window that would start in the end padding."""
    out = math.ceil((n + b + e - d * (k - 1) - 1) / s) + 1
    if (out - 1) * s >= n + b:
        out -= 1
    return out


def _per_dim_form(draw, values: tuple):
    """An int when every dim agrees (sometimes), else the tuple: both spellings get exercised."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return tuple(values)


def _draw_padding(draw, form: str, nd: int, max_pad: int = 2):
    """-> (the padding argument, explicit pairs or None for the mode strings)."""
    if form == "int":
        p = draw(st.integers(0, max_pad))
        return p, ((p, p),) * nd
    if form == "per_dim":
        ps = tuple(draw(st.integers(0, max_pad)) for _ in range(nd))
        return ps, tuple((p, p) for p in ps)
    if form == "pairs":
        pairs = tuple((draw(st.integers(0, max_pad)), draw(st.integers(0, max_pad))) for _ in range(nd))
        return pairs, pairs
    return form, None


# ---------------------------------------------------------------------------------------------- conv

MAX_KERNEL = {1: 4, 2: 3, 3: 2}
MAX_DILATION = {1: 3, 2: 2, 3: 2}
EXTRA_SIZE = {1: 6, 2: 4, 3: 2}


@dataclass(frozen=True)
class ConvCase:
    """One conv configuration: shapes, the parameters as passed, and their resolved geometry."""

    x_shape: tuple
    w_shape: tuple
    bias: bool
    stride: object
    padding: object
    dilation: object
    groups: int
    strides: tuple = field(repr=False)
    dilations: tuple = field(repr=False)
    pairs: tuple = field(repr=False)
    out_sizes: tuple = field(repr=False)

    @property
    def nd(self) -> int:
        return len(self.x_shape) - 2

    @property
    def kernel(self) -> tuple:
        return tuple(self.w_shape[2:])

    @property
    def y_shape(self) -> tuple:
        return (self.x_shape[0], self.w_shape[0]) + self.out_sizes

    def kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)


def make_conv_case(x_shape, w_shape, *, bias=False, stride=1, padding=0, dilation=1, groups=1) -> ConvCase:
    nd = len(x_shape) - 2
    strides = (stride,) * nd if isinstance(stride, int) else tuple(stride)
    dilations = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    kernel = tuple(w_shape[2:])
    pairs = resolve_pads(padding, x_shape[2:], kernel, strides, dilations)
    outs = tuple(
        out_len(n, k, s, d, b, e) for n, k, s, d, (b, e) in zip(x_shape[2:], kernel, strides, dilations, pairs)
    )
    return ConvCase(
        tuple(x_shape), tuple(w_shape), bias, stride, padding, dilation, groups, strides, dilations, pairs, outs
    )


@st.composite
def conv_cases(draw, nds=(1, 2, 3), forms=PADDING_FORMS, max_groups=3, max_stride=3):
    """Small valid conv configurations: every padding form, stride, dilation, groups, 1/2/3-D."""
    nd = draw(st.sampled_from(nds))
    groups = draw(st.integers(1, max_groups))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    batch = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, MAX_KERNEL[nd])) for _ in range(nd))
    strides = tuple(draw(st.integers(1, max_stride)) for _ in range(nd))
    dilations = tuple(draw(st.integers(1, MAX_DILATION[nd])) for _ in range(nd))
    padding, pairs = _draw_padding(draw, draw(st.sampled_from(forms)), nd)
    sizes = []
    for a in range(nd):
        extent = dilations[a] * (kernel[a] - 1) + 1
        if pairs is not None:
            lo = max(1, extent - sum(pairs[a]))
        else:
            lo = extent if padding == "valid" else 1
        sizes.append(draw(st.integers(lo, lo + EXTRA_SIZE[nd])))
    return make_conv_case(
        (batch, c_in) + tuple(sizes),
        (c_out, c_in // groups) + kernel,
        bias=draw(st.booleans()),
        stride=_per_dim_form(draw, strides),
        padding=padding,
        dilation=_per_dim_form(draw, dilations),
        groups=groups,
    )


# ---------------------------------------------------------------------------------------------- conv_transpose


@dataclass(frozen=True)
class TransposeCase:
    """A conv_transpose configuration; x_shape is its output (= the input of the conv it is the adjoint of)."""

    y_shape: tuple
    w_shape: tuple
    x_shape: tuple
    bias: bool
    stride: object
    padding: object
    output_padding: object
    dilation: object
    groups: int
    strides: tuple = field(repr=False)
    dilations: tuple = field(repr=False)
    pairs: tuple = field(repr=False)
    out_pads: tuple = field(repr=False)

    @property
    def nd(self) -> int:
        return len(self.y_shape) - 2

    @property
    def kernel(self) -> tuple:
        return tuple(self.w_shape[2:])

    def kwargs(self) -> dict:
        return dict(
            stride=self.stride,
            padding=self.padding,
            output_padding=self.output_padding,
            dilation=self.dilation,
            groups=self.groups,
        )

    def conv_kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def conv_case(self) -> ConvCase:
        """The conv (x -> its first n_y outputs) whose adjoint this transpose is."""
        c = make_conv_case(self.x_shape, self.w_shape, **self.conv_kwargs())
        return ConvCase(
            c.x_shape,
            c.w_shape,
            False,
            c.stride,
            c.padding,
            c.dilation,
            c.groups,
            c.strides,
            c.dilations,
            c.pairs,
            tuple(self.y_shape[2:]),
        )


def make_transpose_case(y_shape, w_shape, *, bias=False, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """None when the transposed output would be empty."""
    nd = len(y_shape) - 2
    strides = (stride,) * nd if isinstance(stride, int) else tuple(stride)
    dilations = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    ops = (output_padding,) * nd if isinstance(output_padding, int) else tuple(output_padding)
    kernel = tuple(w_shape[2:])
    n_y = tuple(y_shape[2:])
    if padding == "same":
        n_x = tuple(n * s for n, s in zip(n_y, strides))
        pairs = resolve_pads("same", n_x, kernel, strides, dilations)
    else:
        pairs = resolve_pads(padding, n_y, kernel, strides, dilations)
        n_x = tuple(
            (n - 1) * s - b - e + d * (k - 1) + o + 1
            for n, s, (b, e), d, k, o in zip(n_y, strides, pairs, dilations, kernel, ops)
        )
    if min(n_x) < 1:
        return None
    x_shape = (y_shape[0], w_shape[1] * groups) + n_x
    return TransposeCase(
        tuple(y_shape),
        tuple(w_shape),
        x_shape,
        bias,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        strides,
        dilations,
        pairs,
        ops,
    )


@st.composite
def transpose_cases(draw, nds=(1, 2, 3), forms=PADDING_FORMS, max_groups=3):
    """Small valid conv_transpose configurations, output_padding in [0, max(s, d)) (0 with 'same')."""
    nd = draw(st.sampled_from(nds))
    groups = draw(st.integers(1, max_groups))
    c_y = groups * draw(st.integers(1, 2))
    cg_x = draw(st.integers(1, 2))
    batch = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, MAX_KERNEL[nd])) for _ in range(nd))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilations = tuple(draw(st.integers(1, MAX_DILATION[nd] + 1)) for _ in range(nd))
    form = draw(st.sampled_from(forms))
    padding, _ = _draw_padding(draw, form, nd)
    if form == "same":
        ops = (0,) * nd
    else:
        ops = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(strides, dilations))
    n_y = tuple(draw(st.integers(1, {1: 5, 2: 3, 3: 2}[nd])) for _ in range(nd))
    case = make_transpose_case(
        (batch, c_y) + n_y,
        (c_y, cg_x) + kernel,
        bias=draw(st.booleans()),
        stride=_per_dim_form(draw, strides),
        padding=padding,
        output_padding=_per_dim_form(draw, ops),
        dilation=_per_dim_form(draw, dilations),
        groups=groups,
    )
    assume(case is not None)
    return case


# ---------------------------------------------------------------------------------------------- pooling


@dataclass(frozen=True)
class PoolCase:
    x_shape: tuple
    kernel_size: object
    stride: object
    padding: object
    dilation: object
    ceil_mode: bool
    kernel: tuple = field(repr=False)
    strides: tuple = field(repr=False)
    dilations: tuple = field(repr=False)
    pairs: tuple = field(repr=False)
    out_sizes: tuple = field(repr=False)

    @property
    def nd(self) -> int:
        return len(self.x_shape) - 2

    def kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, ceil_mode=self.ceil_mode)

    def window(self, i: tuple):
        """Row-major list of the window's positions (unpadded coordinates; may lie outside the input)."""
        axes = [
            [ii * s + j * d - b for j in range(k)]
            for ii, s, d, k, (b, _) in zip(i, self.strides, self.dilations, self.kernel, self.pairs)
        ]
        return [tuple(p) for p in np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, self.nd)]

    def inside(self, pos) -> bool:
        return all(0 <= p < n for p, n in zip(pos, self.x_shape[2:]))

    def in_padded(self, pos) -> bool:
        return all(-b <= p < n + e for p, n, (b, e) in zip(pos, self.x_shape[2:], self.pairs))


def make_pool_case(x_shape, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False) -> PoolCase | None:
    """None when some window holds no input element (the spec rejects that)."""
    nd = len(x_shape) - 2
    kernel = (kernel_size,) * nd if isinstance(kernel_size, int) else tuple(kernel_size)
    strides = kernel if stride is None else ((stride,) * nd if isinstance(stride, int) else tuple(stride))
    dilations = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    pairs = resolve_pads(padding, x_shape[2:], kernel, strides, dilations)
    size = ceil_out_len if ceil_mode else out_len
    outs = tuple(size(n, k, s, d, b, e) for n, k, s, d, (b, e) in zip(x_shape[2:], kernel, strides, dilations, pairs))
    for n, k, s, d, (b, _), o in zip(x_shape[2:], kernel, strides, dilations, pairs, outs):
        if o < 1 or not all(any(0 <= i * s + j * d - b < n for j in range(k)) for i in range(o)):
            return None
    return PoolCase(
        tuple(x_shape), kernel_size, stride, padding, dilation, ceil_mode, kernel, strides, dilations, pairs, outs
    )


@st.composite
def pool_cases(draw, nds=(1, 2, 3), max_dilation=2, max_pad=2, symmetric=False, max_pad_half_kernel=False):
    """Small valid pooling configurations (explicit padding forms only; ceil_mode either way).

    symmetric/max_pad_half_kernel restrict to what PyTorch accepts (pad <= kernel // 2, same both sides)."""
    nd = draw(st.sampled_from(nds))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    strides = None if draw(st.booleans()) else tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilations = tuple(draw(st.integers(1, max_dilation)) for _ in range(nd))
    # a begin padding beyond d*(k-1) leaves the first window without input: never valid, so never drawn
    caps = [min(k // 2 if max_pad_half_kernel else max_pad, d * (k - 1)) for k, d in zip(kernel, dilations)]
    form = draw(st.sampled_from(("int", "per_dim") if symmetric else EXPLICIT_FORMS))
    if form == "int":
        p = draw(st.integers(0, min(caps)))
        padding, pairs = p, ((p, p),) * nd
    elif form == "per_dim":
        padding = tuple(draw(st.integers(0, c)) for c in caps)
        pairs = tuple((p, p) for p in padding)
    else:
        padding = pairs = tuple((draw(st.integers(0, c)), draw(st.integers(0, c))) for c in caps)
    sizes = []
    for a in range(nd):
        extent = dilations[a] * (kernel[a] - 1) + 1
        lo = max(1, extent - sum(pairs[a]))
        sizes.append(draw(st.integers(lo, lo + EXTRA_SIZE[nd])))
    case = make_pool_case(
        (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + tuple(sizes),
        _per_dim_form(draw, kernel),
        stride=None if strides is None else _per_dim_form(draw, strides),
        padding=padding,
        dilation=_per_dim_form(draw, dilations),
        ceil_mode=draw(st.booleans()),
    )
    assume(case is not None)
    return case


# ---------------------------------------------------------------------------------------------- data


def int_data(rng: np.random.Generator, shape, lo: int = -4, hi: int = 4) -> np.ndarray:
    """Small integers stored in float64: every sum the tests form is exact."""
    return rng.integers(lo, hi + 1, size=shape).astype(np.float64)


def distinct_data(rng: np.random.Generator, shape, spacing: float = 0.25) -> np.ndarray:
    """Pairwise distinct values at least `spacing` apart (no ties, no kinks within a finite-difference step)."""
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size / 2) * spacing + rng.uniform(0, spacing / 10, size)).reshape(shape)


def as_fractions(a) -> np.ndarray:
    """An object array of Fractions holding exactly the values of a (ints or floats)."""
    a = np.asarray(a)
    out = np.empty(a.shape, dtype=object)
    out.flat[:] = [Fraction(v) for v in a.reshape(-1).tolist()]
    return out
