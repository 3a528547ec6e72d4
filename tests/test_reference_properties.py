"""Properties of the reference ops (hypothesis): output sizes, translation equivariance, linearity,
the tie/NaN rules of max-pooling and k-max pooling, and exact rational arithmetic on Fraction arrays.

The pooling rules are checked against loops over each window written from the spec's text:
- max_pool: padding and ceil_mode overhang are never chosen; the first NaN in row-major window order
  wins, else the first maximum (= the smaller flat input index); indices are flat per-plane row-major.
- avg_pool: sum of the real elements / D, D = the real elements, or with count_include_pad the elements
  inside the explicitly padded input (never the ceil_mode overhang).
- kmax_pool: the k largest in original order; NaN ranks above everything, ties to the smaller index.
"""

from __future__ import annotations

import math
import numbers
import struct
from fractions import Fraction

import numpy as np
import pytest
from conftest import (
    FAST,
    QUICK,
    SEEDS,
    as_fractions,
    ceil_out_len,
    conv_cases,
    int_data,
    make_pool_case,
    out_len,
    pool_cases,
    transpose_cases,
)
from hypothesis import assume, given
from hypothesis import strategies as st

from convspec import ParameterError
from convspec import reference as R


def _padding_of_dim(padding, a):
    """The one-dim spelling of a conv padding argument, as output_size takes it."""
    if isinstance(padding, (str, int)):
        return padding
    return padding[a]


def _per_dim(v, a):
    return v if isinstance(v, int) else v[a]


# ------------------------------------------------------------------------------------------ output sizes


@FAST
@given(case=conv_cases())
def test_conv_output_shape_is_the_output_size_formula(case):
    y = R.conv(np.zeros(case.x_shape), np.zeros(case.w_shape), **case.kwargs())
    assert y.shape == case.y_shape, repr(case)
    for a, (n, k) in enumerate(zip(case.x_shape[2:], case.kernel)):
        size = R.output_size(
            n,
            k,
            stride=_per_dim(case.stride, a),
            padding=_padding_of_dim(case.padding, a),
            dilation=_per_dim(case.dilation, a),
        )
        assert size == y.shape[2 + a], f"{case!r}: output_size says {size} in dim {a}, conv produced {y.shape}"


@FAST
@given(case=transpose_cases())
def test_conv_transpose_output_shape(case):
    """n_x = (n_y - 1)*s - p_begin - p_end + d*(k-1) + output_padding + 1, or n_y * s for 'same'."""
    x = R.conv_transpose(np.zeros(case.y_shape), np.zeros(case.w_shape), **case.kwargs())
    assert x.shape == case.x_shape, repr(case)


@FAST
@given(case=pool_cases(), op=st.sampled_from(["max_pool", "avg_pool"]))
def test_pool_output_shape_is_the_output_size_formula(case, op):
    y = getattr(R, op)(np.ones(case.x_shape), case.kernel_size, **case.kwargs())
    assert y.shape == case.x_shape[:2] + case.out_sizes, repr(case)
    for a, n in enumerate(case.x_shape[2:]):
        size = R.output_size(
            n,
            case.kernel[a],
            stride=case.strides[a],
            padding=case.pairs[a],
            dilation=case.dilations[a],
            ceil_mode=case.ceil_mode,
        )
        assert size == y.shape[2 + a], f"{case!r}: output_size says {size} in dim {a}, {op} produced {y.shape}"


@FAST
@given(
    n=st.integers(1, 30),
    k=st.integers(1, 6),
    s=st.integers(1, 5),
    d=st.integers(1, 3),
    b=st.integers(0, 4),
    e=st.integers(0, 4),
)
def test_output_size_formulas(n, k, s, d, b, e):
    """floor/ceil sizes; strict raises exactly when the stride does not fit."""
    assume(d * (k - 1) + 1 <= n + b + e)
    floor = out_len(n, k, s, d, b, e)
    assert R.output_size(n, k, stride=s, padding=(b, e), dilation=d) == floor
    ceil = ceil_out_len(n, k, s, d, b, e)
    assume(ceil >= 1)
    assert R.output_size(n, k, stride=s, padding=(b, e), dilation=d, ceil_mode=True) == ceil
    assert ceil <= floor + 1  # (and it can be floor - 1: a window starting in the end padding is dropped)
    if b == e:
        assert R.output_size(n, k, stride=s, padding=b, dilation=d) == floor
    fits = (n + b + e - d * (k - 1) - 1) % s == 0
    if fits:
        assert R.output_size(n, k, stride=s, padding=(b, e), dilation=d, strict=True) == floor
    else:
        with pytest.raises(ParameterError, match=r"^stride: stride \d+ does not fit exactly"):
            R.output_size(n, k, stride=s, padding=(b, e), dilation=d, strict=True)


@pytest.mark.parametrize(
    "n, k, s, d, mode, want",
    [
        (7, 3, 1, 1, "same", 7),
        (7, 3, 2, 1, "same", 4),
        (8, 4, 3, 1, "same", 3),
        (7, 3, 1, 2, "same", 7),
        (7, 3, 1, 1, "full", 9),
        (7, 3, 2, 2, "full", 6),
        (7, 3, 1, 1, "valid", 5),
        (7, 3, 3, 1, "valid", 2),
        (32, 5, 1, 1, "valid", 28),
    ],
)
def test_output_size_modes(n, k, s, d, mode, want):
    assert R.output_size(n, k, stride=s, padding=mode, dilation=d) == want


@FAST
@given(nd=st.integers(1, 2), data=st.data(), op=st.sampled_from(["max_pool", "avg_pool"]), ceil_mode=st.booleans())
def test_pool_rejects_exactly_the_windows_without_input(nd, data, op, ceil_mode):
    """Any explicit padding is accepted unless some window (ceil_mode included) holds no input element."""
    k = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
    pairs = tuple((data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))) for _ in range(nd))
    sizes = tuple(data.draw(st.integers(max(1, dd * (kk - 1) + 1 - b - e), 6)) for kk, dd, (b, e) in zip(k, d, pairs))
    case = make_pool_case((1, 1) + sizes, k, stride=s, padding=pairs, dilation=d, ceil_mode=ceil_mode)
    call = lambda: getattr(R, op)(np.ones((1, 1) + sizes), k, stride=s, padding=pairs, dilation=d, ceil_mode=ceil_mode)  # noqa: E731
    if case is None:
        with pytest.raises(ParameterError, match=r"^padding: a pooling window lies entirely in the padding"):
            call()
    else:
        assert call().shape == (1, 1) + case.out_sizes


# ------------------------------------------------------------------------------------------ translation equivariance


def _shifted(rng, shape, axis, shift):
    """x0 and x1 = x0 shifted left by `shift` along `axis` (x1[t] = x0[t + shift]), both cut from one longer signal."""
    long = list(shape)
    long[axis] += shift
    z = int_data(rng, long)
    n = shape[axis]
    take = lambda lo: z[(slice(None),) * axis + (slice(lo, lo + n),)]  # noqa: E731
    return take(0), take(shift)


def _interior(n, k, s, d, b, out):
    """Outputs i such that window i of x1 and window i+1 of x0 read no padding."""
    extent = d * (k - 1) + 1
    return [i for i in range(out - 1) if i * s - b >= 0 and (i + 1) * s - b + extent - 1 < n]


@FAST
@given(case=conv_cases(nds=(1, 2)), data=st.data(), seed=SEEDS)
def test_conv_translation_equivariance(case, data, seed):
    """Shifting the input by the stride shifts the output by one position, away from the borders."""
    a = data.draw(st.integers(0, case.nd - 1), label="axis")
    n, k, s, d, (b, _), out = (
        case.x_shape[2 + a],
        case.kernel[a],
        case.strides[a],
        case.dilations[a],
        case.pairs[a],
        case.out_sizes[a],
    )
    inner = _interior(n, k, s, d, b, out)
    assume(inner)
    rng = np.random.default_rng(seed)
    x0, x1 = _shifted(rng, case.x_shape, 2 + a, s)
    w = int_data(rng, case.w_shape)
    y0, y1 = R.conv(x0, w, **case.kwargs()), R.conv(x1, w, **case.kwargs())
    at = lambda y, idx: np.take(y, idx, axis=2 + a)  # noqa: E731
    np.testing.assert_array_equal(at(y1, inner), at(y0, [i + 1 for i in inner]), err_msg=repr(case))


@FAST
@given(case=pool_cases(nds=(1, 2)), op=st.sampled_from(["max_pool", "avg_pool"]), data=st.data(), seed=SEEDS)
def test_pool_translation_equivariance(case, op, data, seed):
    a = data.draw(st.integers(0, case.nd - 1), label="axis")
    n, k, s, d, (b, _), out = (
        case.x_shape[2 + a],
        case.kernel[a],
        case.strides[a],
        case.dilations[a],
        case.pairs[a],
        case.out_sizes[a],
    )
    inner = _interior(n, k, s, d, b, out)
    assume(inner)
    x0, x1 = _shifted(np.random.default_rng(seed), case.x_shape, 2 + a, s)
    f = getattr(R, op)
    y0, y1 = f(x0, case.kernel_size, **case.kwargs()), f(x1, case.kernel_size, **case.kwargs())
    at = lambda y, idx: np.take(y, idx, axis=2 + a)  # noqa: E731
    np.testing.assert_array_equal(at(y1, inner), at(y0, [i + 1 for i in inner]), err_msg=repr(case))


# ------------------------------------------------------------------------------------------ linearity

COEFFS = st.integers(-3, 3)


@FAST
@given(case=conv_cases(), alpha=COEFFS, beta=COEFFS, op=st.sampled_from(["conv", "convolve"]), seed=SEEDS)
def test_conv_is_linear_in_x_and_in_w(case, alpha, beta, op, seed):
    f = getattr(R, op)
    rng = np.random.default_rng(seed)
    x1, x2 = int_data(rng, case.x_shape), int_data(rng, case.x_shape)
    w1, w2 = int_data(rng, case.w_shape), int_data(rng, case.w_shape)
    kw = case.kwargs()
    np.testing.assert_array_equal(
        f(alpha * x1 + beta * x2, w1, **kw), alpha * f(x1, w1, **kw) + beta * f(x2, w1, **kw), err_msg=f"in x: {case!r}"
    )
    np.testing.assert_array_equal(
        f(x1, alpha * w1 + beta * w2, **kw), alpha * f(x1, w1, **kw) + beta * f(x1, w2, **kw), err_msg=f"in w: {case!r}"
    )
    b = int_data(rng, case.w_shape[0])
    np.testing.assert_array_equal(
        f(x1, w1, b, **kw) - f(x1, w1, **kw), np.broadcast_to(b.reshape((1, -1) + (1,) * case.nd), case.y_shape)
    )


@FAST
@given(case=transpose_cases(), alpha=COEFFS, beta=COEFFS, seed=SEEDS)
def test_conv_transpose_is_linear_in_y_and_in_w(case, alpha, beta, seed):
    rng = np.random.default_rng(seed)
    y1, y2 = int_data(rng, case.y_shape), int_data(rng, case.y_shape)
    w1, w2 = int_data(rng, case.w_shape), int_data(rng, case.w_shape)
    kw, f = case.kwargs(), R.conv_transpose
    np.testing.assert_array_equal(
        f(alpha * y1 + beta * y2, w1, **kw), alpha * f(y1, w1, **kw) + beta * f(y2, w1, **kw), err_msg=f"in y: {case!r}"
    )
    np.testing.assert_array_equal(
        f(y1, alpha * w1 + beta * w2, **kw), alpha * f(y1, w1, **kw) + beta * f(y1, w2, **kw), err_msg=f"in w: {case!r}"
    )


# ------------------------------------------------------------------------------------------ max-pool ties and NaN


def _nan(payload: int) -> float:
    """A quiet NaN with the given payload bits (to see that the chosen NaN comes back unchanged)."""
    return struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000 | payload))[0]


def _bits(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def _tie_nan_data(rng, shape, nan_rate):
    """Values in {-inf, 0, 1, 2} (ties everywhere, -inf ties the padding) and NaNs with distinct payloads."""
    x = rng.integers(-1, 3, size=shape).astype(np.float64)
    x[x < 0] = -np.inf
    mask = rng.random(shape) < nan_rate
    x[mask] = [_nan(p + 1) for p in range(int(mask.sum()))]
    return x


def max_pool_by_loops(case, x):
    """(values, flat indices) from the spec's text, window by window."""
    values = np.empty(case.x_shape[:2] + case.out_sizes)
    idx = np.empty(values.shape, dtype=np.int64)
    for nc in np.ndindex(*case.x_shape[:2]):
        for i in np.ndindex(*case.out_sizes):
            real = [p for p in case.window(i) if case.inside(p)]  # row-major; padding never chosen
            vals = [x[nc + p] for p in real]
            nans = [t for t, v in enumerate(vals) if v != v]
            t = nans[0] if nans else max(range(len(vals)), key=lambda t: (vals[t], -t))
            values[nc + i], idx[nc + i] = vals[t], np.ravel_multi_index(real[t], case.x_shape[2:])
    return values, idx


@FAST
@given(case=pool_cases(), nan_rate=st.sampled_from([0.0, 0.1, 0.4]), seed=SEEDS)
def test_max_pool_ties_and_nan(case, nan_rate, seed):
    rng = np.random.default_rng(seed)
    x = _tie_nan_data(rng, case.x_shape, nan_rate)
    want, want_idx = max_pool_by_loops(case, x)
    got = R.max_pool(x, case.kernel_size, **case.kwargs())
    np.testing.assert_array_equal(
        _bits(got), _bits(want), err_msg=f"values (bit patterns: NaN payloads included) {case!r}"
    )
    idx = R.max_pool_indices(x, case.kernel_size, **case.kwargs())
    assert idx.dtype.kind == "i"
    np.testing.assert_array_equal(idx, want_idx, err_msg=repr(case))
    g = rng.standard_normal(want.shape)
    (dx,) = R.max_pool_backward(g, x, case.kernel_size, **case.kwargs())
    want_dx = np.zeros(x.shape)
    for pos in np.ndindex(*g.shape):
        want_dx[pos[:2] + np.unravel_index(want_idx[pos], case.x_shape[2:])] += g[pos]
    np.testing.assert_allclose(dx, want_dx, rtol=1e-15, atol=0, err_msg=repr(case))


def test_max_pool_tie_examples():
    x = np.array([[[3.0, 3.0, 1.0, 1.0, 2.0]]])
    np.testing.assert_array_equal(R.max_pool(x, 2, stride=1), [[[3, 3, 1, 2]]])
    np.testing.assert_array_equal(R.max_pool_indices(x, 2, stride=1), [[[0, 1, 2, 4]]])
    x2 = np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(R.max_pool_indices(x2, 2), [[[[0]]]])
    (dx,) = R.max_pool_backward(np.array([[[1.0, 10.0, 100.0, 1000.0]]]), x, 2, stride=1)
    np.testing.assert_array_equal(dx, [[[1.0, 10.0, 100.0, 0.0, 1000.0]]])


def test_max_pool_nan_examples():
    first, second = _nan(5), _nan(9)
    x = np.array([[[1.0, second, 4.0, first, second]]])
    got = R.max_pool(x, 3, stride=1)
    np.testing.assert_array_equal(_bits(got), _bits([[[second, second, first]]]))
    np.testing.assert_array_equal(R.max_pool_indices(x, 3, stride=1), [[[1, 1, 3]]])


def test_max_pool_real_minus_inf_next_to_padding():
    """Padding counts as -inf but is never an input: a window [pad, -inf] yields -inf at the real element
    (PyTorch: -inf, index 0)."""
    x = np.array([[[-np.inf, 1.0, 2.0]]])
    np.testing.assert_array_equal(R.max_pool(x, 2, stride=1, padding=1), [[[-np.inf, 1.0, 2.0, 2.0]]])
    np.testing.assert_array_equal(R.max_pool_indices(x, 2, stride=1, padding=1), [[[0, 1, 2, 2]]])
    x = np.full((1, 1, 2, 2), -np.inf)
    np.testing.assert_array_equal(R.max_pool_indices(x, 2, stride=1, padding=1), [[[[0, 0, 1], [0, 0, 1], [2, 2, 3]]]])
    (dx,) = R.max_pool_backward(np.ones((1, 1, 3, 3)), x, 2, stride=1, padding=1)
    np.testing.assert_array_equal(dx, [[[[4.0, 2.0], [2.0, 1.0]]]])


@FAST
@given(
    shape=st.lists(st.integers(1, 4), min_size=3, max_size=5).map(tuple),
    nan_rate=st.sampled_from([0.0, 0.1, 0.5]),
    seed=SEEDS,
)
def test_global_max_pool_ties_and_nan(shape, nan_rate, seed):
    rng = np.random.default_rng(seed)
    x = _tie_nan_data(rng, shape, nan_rate)
    flat = x.reshape(shape[:2] + (-1,))
    want, want_idx = np.empty(shape[:2]), np.empty(shape[:2], dtype=int)
    for nc in np.ndindex(*shape[:2]):
        v = flat[nc]
        nans = np.flatnonzero(v != v)
        want_idx[nc] = nans[0] if nans.size else int(np.flatnonzero(v == v.max())[0])
        want[nc] = v[want_idx[nc]]
    np.testing.assert_array_equal(_bits(R.global_max_pool(x)), _bits(want))
    g = rng.standard_normal(shape[:2])
    (dx,) = R.global_max_pool_backward(g, x)
    want_dx = np.zeros(flat.shape)
    for nc in np.ndindex(*shape[:2]):
        want_dx[nc + (want_idx[nc],)] = g[nc]
    np.testing.assert_array_equal(dx, want_dx.reshape(shape))


# ------------------------------------------------------------------------------------------ k-max pooling


def kmax_by_sorting(x, k):
    idx = np.empty(x.shape[:-1] + (k,), dtype=np.int64)
    for lead in np.ndindex(*x.shape[:-1]):
        row = x[lead]
        rank = sorted(range(len(row)), key=lambda i: (row[i] == row[i], 0 if row[i] != row[i] else -row[i], i))
        idx[lead] = sorted(rank[:k])
    return idx


@FAST
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple),
    nan_rate=st.sampled_from([0.0, 0.15, 0.5]),
    data=st.data(),
    seed=SEEDS,
)
def test_kmax_pool_order_ties_and_nan(shape, nan_rate, data, seed):
    k = data.draw(st.integers(1, shape[-1]), label="k")
    rng = np.random.default_rng(seed)
    x = _tie_nan_data(rng, shape, nan_rate)
    want_idx = kmax_by_sorting(x, k)
    np.testing.assert_array_equal(R.kmax_pool_indices(x, k), want_idx)
    np.testing.assert_array_equal(_bits(R.kmax_pool(x, k)), _bits(np.take_along_axis(x, want_idx, axis=-1)))
    g = rng.standard_normal(want_idx.shape)
    (dx,) = R.kmax_pool_backward(g, x, k)
    want_dx = np.zeros(x.shape)
    np.put_along_axis(want_dx, want_idx, g, axis=-1)
    np.testing.assert_array_equal(dx, want_dx)


def test_kmax_pool_examples():
    x = np.array([1.0, 5.0, 3.0, 5.0, 2.0, np.nan, 4.0])
    np.testing.assert_array_equal(R.kmax_pool_indices(x, 3), [1, 3, 5])  # NaN, then the two 5s; original order
    np.testing.assert_array_equal(
        R.kmax_pool(np.array([[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]]), 4), [[4.0, 5.0, 9.0, 6.0]]
    )
    np.testing.assert_array_equal(R.kmax_pool_indices(np.array([2.0, 2.0, 2.0]), 2), [0, 1])
    xf = as_fractions([Fraction(1, 3), Fraction(1, 2), Fraction(1, 4), Fraction(1, 2)])
    got = R.kmax_pool(xf, 2)
    assert got.tolist() == [Fraction(1, 2), Fraction(1, 2)] and all(isinstance(v, Fraction) for v in got)


@FAST
@given(layer=st.integers(0, 6), extra=st.integers(0, 4), length=st.integers(1, 60), k_top=st.integers(1, 8))
def test_dynamic_k(layer, extra, length, k_top):
    n_layers = max(layer, 1) + extra
    want = max(k_top, -(-((n_layers - layer) * length) // n_layers))
    assert R.dynamic_k(layer, n_layers, length, k_top) == want


# ------------------------------------------------------------------------------------------ exact rational arithmetic


def _exact(a) -> bool:
    a = np.asarray(a)
    return a.dtype == object and all(isinstance(v, numbers.Rational) for v in a.flat)


def _rationals(rng, shape, denominator):
    """Random rationals with a common denominator: integer numerators / denominator."""
    ints = rng.integers(-9, 10, size=shape)
    return as_fractions(ints) / Fraction(denominator), ints.astype(np.float64)


def test_box_filter_is_exactly_ten_thirds():
    x = as_fractions([[[1, 4, 5, 2]]])
    box = np.full((1, 1, 3), Fraction(1, 3), dtype=object)
    got = R.conv(x, box)
    assert got.tolist() == [[[Fraction(10, 3), Fraction(11, 3)]]] and _exact(got)
    got = R.avg_pool(x, 3, stride=1)
    assert got.tolist() == [[[Fraction(10, 3), Fraction(11, 3)]]] and _exact(got)
    assert R.convolve(x, box).tolist() == [[[Fraction(10, 3), Fraction(11, 3)]]]


@FAST
@given(case=conv_cases(nds=(1, 2)), op=st.sampled_from(["conv", "convolve"]), seed=SEEDS)
def test_conv_fractions_are_exact(case, op, seed):
    """With x = X/3 and w = W/7, conv(x, w) * 21 == conv(X, W) exactly (X, W integers; the float sums are exact)."""
    rng = np.random.default_rng(seed)
    (x, xi), (w, wi) = _rationals(rng, case.x_shape, 3), _rationals(rng, case.w_shape, 7)
    b, bi = _rationals(rng, case.w_shape[0], 21)
    f = getattr(R, op)
    got = f(x, w, b, **case.kwargs())
    assert _exact(got), f"{op} returned a non-rational on Fraction input: {case!r}"
    np.testing.assert_array_equal((got * 21).astype(np.float64), f(xi, wi, bi, **case.kwargs()))
    g, gi = _rationals(rng, case.y_shape, 5)
    dx, dw, db = getattr(R, op + "_backward")(g, x, w, b, **case.kwargs())
    ix, iw, ib = getattr(R, op + "_backward")(gi, xi, wi, bi, **case.kwargs())
    assert _exact(dx) and _exact(dw) and _exact(db)
    np.testing.assert_array_equal((dx * 35).astype(np.float64), ix)
    np.testing.assert_array_equal((dw * 15).astype(np.float64), iw)
    np.testing.assert_array_equal((db * 5).astype(np.float64), ib)


@QUICK
@given(case=transpose_cases(nds=(1, 2)), seed=SEEDS)
def test_conv_transpose_fractions_are_exact(case, seed):
    rng = np.random.default_rng(seed)
    (y, yi), (w, wi) = _rationals(rng, case.y_shape, 3), _rationals(rng, case.w_shape, 7)
    got = R.conv_transpose(y, w, **case.kwargs())
    assert _exact(got)
    np.testing.assert_array_equal((got * 21).astype(np.float64), R.conv_transpose(yi, wi, **case.kwargs()))
    g, gi = _rationals(rng, case.x_shape, 5)
    dy, dw, _ = R.conv_transpose_backward(g, y, w, **case.kwargs())
    iy, iw, _ = R.conv_transpose_backward(gi, yi, wi, **case.kwargs())
    assert _exact(dy) and _exact(dw)
    np.testing.assert_array_equal((dy * 35).astype(np.float64), iy)
    np.testing.assert_array_equal((dw * 15).astype(np.float64), iw)


def avg_pool_by_loops(case, x, count_include_pad):
    out = np.empty(case.x_shape[:2] + case.out_sizes, dtype=object)
    for nc in np.ndindex(*case.x_shape[:2]):
        for i in np.ndindex(*case.out_sizes):
            win = case.window(i)
            total = sum((x[nc + p] for p in win if case.inside(p)), Fraction(0))
            count = sum(1 for p in win if (case.in_padded(p) if count_include_pad else case.inside(p)))
            out[nc + i] = total / count
    return out


@FAST
@given(case=pool_cases(nds=(1, 2)), count_include_pad=st.booleans(), seed=SEEDS)
def test_avg_pool_fractions_exact_divisor_rule(case, count_include_pad, seed):
    rng = np.random.default_rng(seed)
    x, _ = _rationals(rng, case.x_shape, 4)
    got = R.avg_pool(x, case.kernel_size, count_include_pad=count_include_pad, **case.kwargs())
    assert _exact(got)
    want = avg_pool_by_loops(case, x, count_include_pad)
    assert got.shape == want.shape and (got == want).all(), f"{case!r}: {got.tolist()} != {want.tolist()}"
    g, _ = _rationals(rng, got.shape, 3)
    (dx,) = R.avg_pool_backward(g, x, case.kernel_size, count_include_pad=count_include_pad, **case.kwargs())
    assert _exact(dx)
    # <avg_pool(x), g> is linear in x: its gradient is the exact adjoint, <avg_pool(x), g> == <x, dx>
    assert sum((got * g).flat, Fraction(0)) == sum((x * dx).flat, Fraction(0))


@pytest.mark.parametrize(
    "count_include_pad, want",
    [
        (False, [Fraction(5, 2), Fraction(10, 3), Fraction(11, 3), Fraction(7, 2)]),
        (True, [Fraction(5, 3), Fraction(10, 3), Fraction(11, 3), Fraction(7, 3)]),
    ],
)
def test_avg_pool_border_divisor_examples(count_include_pad, want):
    x = as_fractions([[[1, 4, 5, 2]]])
    assert R.avg_pool(x, 3, stride=1, padding=1, count_include_pad=count_include_pad).tolist() == [[want]]


@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avg_pool_ceil_mode_overhang_is_never_counted(count_include_pad):
    x = as_fractions([[[1, 4, 5, 2, 6]]])
    assert R.avg_pool(x, 2, ceil_mode=True, count_include_pad=count_include_pad).tolist() == [
        [[Fraction(5, 2), Fraction(7, 2), Fraction(6)]]
    ]
    # with padding 1: windows [pad, 1], [4, 5], [2, 6]; count_include_pad counts the pad
    first = Fraction(1, 2) if count_include_pad else Fraction(1)
    assert R.avg_pool(x, 2, padding=1, ceil_mode=True, count_include_pad=count_include_pad).tolist() == [
        [[first, Fraction(9, 2), Fraction(4)]]
    ]


@FAST
@given(case=pool_cases(nds=(1, 2)), seed=SEEDS)
def test_max_pool_fractions_are_exact(case, seed):
    rng = np.random.default_rng(seed)
    x, xi = _rationals(rng, case.x_shape, 6)
    got = R.max_pool(x, case.kernel_size, **case.kwargs())
    assert _exact(got)
    want, want_idx = max_pool_by_loops(case, xi)
    np.testing.assert_array_equal((got * 6).astype(np.float64), want)
    np.testing.assert_array_equal(R.max_pool_indices(x, case.kernel_size, **case.kwargs()), want_idx)
    (dx,) = R.max_pool_backward(as_fractions(np.ones(got.shape)) / 7, x, case.kernel_size, **case.kwargs())
    assert _exact(dx)


@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 2, 3, 3), (1, 1, 2, 2, 3)])
def test_global_pools_and_linear_fractions_are_exact(shape):
    rng = np.random.default_rng(31)
    x, xi = _rationals(rng, shape, 5)
    plane = math.prod(shape[2:])
    avg = R.global_avg_pool(x)
    assert _exact(avg)
    np.testing.assert_array_equal((avg * 5 * plane).astype(np.float64), xi.reshape(shape[:2] + (-1,)).sum(-1))
    mx = R.global_max_pool(x)
    assert _exact(mx)
    np.testing.assert_array_equal((mx * 5).astype(np.float64), xi.reshape(shape[:2] + (-1,)).max(-1))
    g, _ = _rationals(rng, shape[:2], 3)
    (da,) = R.global_avg_pool_backward(g, x)
    (dm,) = R.global_max_pool_backward(g, x)
    assert _exact(da) and _exact(dm)
    assert (da == np.broadcast_to((g / plane)[(...,) + (None,) * (len(shape) - 2)], shape)).all()

    flat = R.flatten(x)
    w, wi = _rationals(rng, (4, flat.shape[1]), 7)
    b, bi = _rationals(rng, 4, 35)
    y = R.linear(flat, w, b)
    assert _exact(y)
    np.testing.assert_array_equal((y * 35).astype(np.float64), R.linear(R.flatten(xi), wi, bi))
    dx, dw, db = R.linear_backward(as_fractions(np.ones(y.shape)), flat, w, b)
    assert _exact(dx) and _exact(dw) and _exact(db)


def test_pointwise_fractions_are_exact():
    x = as_fractions([[-2, 0, 3]]) / 4
    assert R.relu(x).tolist() == [[0, 0, Fraction(3, 4)]] and _exact(R.relu(x))
    (dx,) = R.relu_backward(as_fractions([[1, 1, 1]]) / 3, x)
    assert dx.tolist() == [[0, 0, Fraction(1, 3)]] and _exact(dx)
    s = R.add(x, x)
    assert s.tolist() == [[-1, 0, Fraction(3, 2)]] and _exact(s)


def test_relu_special_values():
    """relu(-inf) = 0, relu(-0.0) = +0.0, NaN passes through; the derivative is 0 at 0, at -0.0 and at NaN."""
    x = np.array([-np.inf, -2.0, -0.0, 0.0, 3.0, np.inf, _nan(7)])
    got = R.relu(x)
    np.testing.assert_array_equal(_bits(got), _bits([0.0, 0.0, 0.0, 0.0, 3.0, np.inf, _nan(7)]))
    (dx,) = R.relu_backward(np.full(7, 5.0), x)
    np.testing.assert_array_equal(_bits(dx), _bits([0.0, 0.0, 0.0, 0.0, 5.0, 5.0, 0.0]))


def test_sigmoid_tanh_softmax_saturate_without_overflow():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp would warn
        np.testing.assert_array_equal(R.sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0.0, 0.5, 1.0])
        np.testing.assert_array_equal(R.tanh(np.array([-1000.0, 0.0, 1000.0])), [-1.0, 0.0, 1.0])
        np.testing.assert_array_equal(R.softmax(np.array([[1000.0, 0.0, -1000.0]])), [[1.0, 0.0, 0.0]])
        np.testing.assert_allclose(R.cross_entropy(np.array([[1000.0, 0.0]]), np.array([1])), 1000.0, rtol=1e-15)


def test_flatten_empty_batch():
    x = np.zeros((0, 2, 3))
    assert R.flatten(x).shape == (0, 6)
    (dx,) = R.flatten_backward(np.zeros((0, 6)), x)
    assert dx.shape == (0, 2, 3)


def test_float_results_for_integer_inputs_are_float64():
    """Integer arrays are evaluated in float64 (the spec's default precision), never in integer arithmetic."""
    x = np.arange(12).reshape(1, 2, 6)
    w = np.ones((1, 2, 3), dtype=np.int32)
    y = R.conv(x, w)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [[[24.0, 30.0, 36.0, 42.0]]])
    assert R.avg_pool(x, 4).dtype == np.float64
    np.testing.assert_array_equal(R.avg_pool(x, 4), [[[1.5], [7.5]]])
