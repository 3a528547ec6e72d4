"""The reference's convolutions and pools against independent formulations of the same maps.

- adjoint: <conv(x, w), y> == <x, conv_transpose(y, w)> exactly (integer data in float64, and Fractions);
- the parameter-sharing (Toeplitz) matrix built by loops from the definition
  y[o, i] = sum_{c in group(o), j} w[o, c, j] x[c, i*s + j*d - p_begin]: conv is M x, its input gradient
  is M^T g, conv_transpose is M^T y; the weight gradients are the same sums taken over the weights;
- convolve is conv with the kernel flipped, and equals numpy.convolve / FFT convolution;
- cross-checks against scipy.signal.correlate and torch.nn.functional (optional, independent libraries).

Integer data keeps every sum exact, so these comparisons are equalities, not tolerances.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from conftest import (
    FAST,
    QUICK,
    SEEDS,
    as_fractions,
    conv_cases,
    distinct_data,
    int_data,
    make_conv_case,
    make_transpose_case,
    pool_cases,
    transpose_cases,
)
from hypothesis import assume, given
from hypothesis import strategies as st

from convspec import reference as R

# ------------------------------------------------------------------------------------------ definition-built maps


def conv_entries(case):
    """(rows, cols, widx): output element `rows` receives w.flat[widx] * x[n].flat[cols], straight from the
    definition. Rows index (C_out, *out_sizes), cols (C_in, *in_sizes), widx the weight (C_out, C_in/G, *kernel)."""
    c_out, cg = case.w_shape[:2]
    per_group = c_out // case.groups
    sizes = case.x_shape[2:]
    rows, cols, widx = [], [], []
    for o in range(c_out):
        g = o // per_group
        for cl in range(cg):
            c = g * cg + cl
            for i in np.ndindex(*case.out_sizes):
                for j in np.ndindex(*case.kernel):
                    pos = tuple(
                        ii * s + jj * d - b
                        for ii, jj, s, d, (b, _) in zip(i, j, case.strides, case.dilations, case.pairs)
                    )
                    if all(0 <= p < n for p, n in zip(pos, sizes)):
                        rows.append(np.ravel_multi_index((o,) + i, (c_out,) + case.out_sizes))
                        cols.append(np.ravel_multi_index((c,) + pos, (case.x_shape[1],) + tuple(sizes)))
                        widx.append(np.ravel_multi_index((o, cl) + j, case.w_shape))
    return np.array(rows, dtype=int), np.array(cols, dtype=int), np.array(widx, dtype=int)


def toeplitz(case, w):
    """The explicit (C_out * prod(out), C_in * prod(in)) matrix of the conv x -> conv(x, w) of one sample."""
    rows, cols, widx = conv_entries(case)
    m = np.zeros(
        (case.w_shape[0] * int(np.prod(case.out_sizes)), case.x_shape[1] * int(np.prod(case.x_shape[2:]))),
        dtype=w.dtype,
    )
    if w.dtype == object:
        m[...] = Fraction(0)
    np.add.at(m, (rows, cols), w.reshape(-1)[widx])
    return m


def weight_grad_by_definition(case, g, x):
    """dL/dw[widx] = sum_n sum over the entries e that use w[widx] of g[n, row(e)] * x[n, col(e)]."""
    rows, cols, widx = conv_entries(case)
    dw = np.zeros(int(np.prod(case.w_shape)))
    for n in range(case.x_shape[0]):
        np.add.at(dw, widx, g[n].reshape(-1)[rows] * x[n].reshape(-1)[cols])
    return dw.reshape(case.w_shape)


def per_sample(m, a):
    """Apply the per-sample matrix m to every sample of a (N, ...) -> (N, m.shape[0])."""
    return np.stack([m @ a[n].reshape(-1) for n in range(a.shape[0])])


def bias_b(shape):
    return (1, -1) + (1,) * (len(shape) - 2)


# ------------------------------------------------------------------------------------------ Toeplitz


@FAST
@given(case=conv_cases(), seed=SEEDS)
def test_conv_is_the_parameter_sharing_matrix(case, seed):
    rng = np.random.default_rng(seed)
    x, w = int_data(rng, case.x_shape), int_data(rng, case.w_shape)
    b = int_data(rng, case.w_shape[0]) if case.bias else None
    m = toeplitz(case, w)
    y = R.conv(x, w, b, **case.kwargs())
    want = per_sample(m, x).reshape(case.y_shape)
    if b is not None:
        want = want + b.reshape(bias_b(case.y_shape))
    np.testing.assert_array_equal(y, want, err_msg=repr(case))

    g = int_data(rng, case.y_shape)
    dx, dw, db = R.conv_backward(g, x, w, b, **case.kwargs())
    np.testing.assert_array_equal(dx, per_sample(m.T, g).reshape(case.x_shape), err_msg=f"dx {case!r}")
    np.testing.assert_array_equal(dw, weight_grad_by_definition(case, g, x), err_msg=f"dw {case!r}")
    if b is None:
        assert db is None
    else:
        np.testing.assert_array_equal(db, g.sum(axis=tuple(i for i in range(g.ndim) if i != 1)), err_msg=f"db {case!r}")


@FAST
@given(case=transpose_cases(), seed=SEEDS)
def test_conv_transpose_is_the_transposed_matrix(case, seed):
    rng = np.random.default_rng(seed)
    y, w = int_data(rng, case.y_shape), int_data(rng, case.w_shape)
    b = int_data(rng, case.x_shape[1]) if case.bias else None
    conv = case.conv_case()
    m = toeplitz(conv, w)
    x = R.conv_transpose(y, w, b, **case.kwargs())
    want = per_sample(m.T, y).reshape(case.x_shape)
    if b is not None:
        want = want + b.reshape(bias_b(case.x_shape))
    np.testing.assert_array_equal(x, want, err_msg=repr(case))

    g = int_data(rng, case.x_shape)
    dy, dw, db = R.conv_transpose_backward(g, y, w, b, **case.kwargs())
    np.testing.assert_array_equal(dy, per_sample(m, g).reshape(case.y_shape), err_msg=f"dy {case!r}")
    # <g, M(w)^T y> = <M(w) g, y>: the weight gradient is conv's with x := g and the output gradient := y
    np.testing.assert_array_equal(dw, weight_grad_by_definition(conv, y, g), err_msg=f"dw {case!r}")
    if b is None:
        assert db is None
    else:
        np.testing.assert_array_equal(db, g.sum(axis=tuple(i for i in range(g.ndim) if i != 1)), err_msg=f"db {case!r}")


def test_toeplitz_small_example_by_hand():
    """The builder itself, on a case small enough to write down: x of length 4, w = [1, 2], stride 2, pad (1, 0)."""
    case = make_conv_case((1, 1, 4), (1, 1, 2), stride=2, padding=((1, 0),))
    m = toeplitz(case, np.array([[[1.0, 2.0]]]))
    np.testing.assert_array_equal(m, [[2, 0, 0, 0], [0, 1, 2, 0]])
    np.testing.assert_array_equal(
        R.conv(np.array([[[1.0, 10, 100, 1000]]]), np.array([[[1.0, 2.0]]]), stride=2, padding=((1, 0),)),
        [[[2.0, 210.0]]],
    )


# ------------------------------------------------------------------------------------------ adjoint


def _inner(a, b):
    return np.sum(a * b) if a.dtype != object else sum((a * b).reshape(-1).tolist(), Fraction(0))


@FAST
@given(case=transpose_cases(), seed=SEEDS)
def test_adjoint_identity_exact(case, seed):
    """<conv(x, w)[first n_y outputs], y> == <x, conv_transpose(y, w)>, bit for bit on integers."""
    rng = np.random.default_rng(seed)
    x, y, w = int_data(rng, case.x_shape), int_data(rng, case.y_shape), int_data(rng, case.w_shape)
    cx = R.conv(x, w, **case.conv_kwargs())
    if all(o < s for o, s in zip(case.out_pads, case.strides)):  # then conv maps n_x onto exactly n_y
        assert cx.shape == case.y_shape, (
            f"{case!r}: conv of the transposed output has shape {cx.shape}, expected {case.y_shape}"
        )
    cx = cx[(Ellipsis,) + tuple(slice(0, n) for n in case.y_shape[2:])]
    tx = R.conv_transpose(y, w, **case.kwargs())
    assert tx.shape == case.x_shape
    assert _inner(cx, y) == _inner(x, tx), repr(case)


@FAST
@given(case=conv_cases(forms=("int", "per_dim", "pairs", "valid", "full")), seed=SEEDS)
def test_adjoint_identity_from_the_conv_side(case, seed):
    """Any conv: the transpose with output_padding = the stride remainder recovers x's shape, and is the adjoint."""
    rng = np.random.default_rng(seed)
    op = tuple(
        (n + b + e - d * (k - 1) - 1) % s
        for n, (b, e), d, k, s in zip(case.x_shape[2:], case.pairs, case.dilations, case.kernel, case.strides)
    )
    x, w = int_data(rng, case.x_shape), int_data(rng, case.w_shape)
    y = int_data(rng, case.y_shape)
    cx = R.conv(x, w, **case.kwargs())
    tx = R.conv_transpose(y, w, output_padding=op, **case.kwargs())
    assert cx.shape == case.y_shape and tx.shape == case.x_shape
    assert np.sum(cx * y) == np.sum(x * tx), repr(case)


@pytest.mark.parametrize(
    "case",
    [
        make_transpose_case((1, 2, 3), (2, 1, 3), stride=2, padding=1, output_padding=1),
        make_transpose_case(
            (2, 2, 3), (2, 2, 2), stride=1, padding=0, output_padding=2, dilation=3
        ),  # dilation > stride
        make_transpose_case(
            (1, 2, 2, 3),
            (2, 1, 2, 2),
            stride=(1, 2),
            padding=((1, 0), (0, 1)),
            output_padding=(1, 1),
            dilation=(2, 1),
            groups=2,
        ),
        make_transpose_case((1, 1, 2, 2, 2), (1, 2, 2, 2, 1), stride=2, padding="same"),
        make_transpose_case((1, 3, 3), (3, 1, 2), padding="full", groups=3),
    ],
    ids=repr,
)
def test_adjoint_identity_fractions(case):
    """The same identity in exact rational arithmetic, with non-integer entries."""
    rng = np.random.default_rng(21)

    def rationals(shape):
        return as_fractions(rng.integers(-9, 10, size=shape)) / as_fractions(rng.integers(1, 7, size=shape))

    x, y, w = rationals(case.x_shape), rationals(case.y_shape), rationals(case.w_shape)
    cx = R.conv(x, w, **case.conv_kwargs())[(Ellipsis,) + tuple(slice(0, n) for n in case.y_shape[2:])]
    tx = R.conv_transpose(y, w, **case.kwargs())
    assert cx.dtype == object and tx.dtype == object
    assert all(isinstance(v, Fraction) for v in list(cx.flat) + list(tx.flat))
    assert _inner(cx, y) == _inner(x, tx)


# ------------------------------------------------------------------------------------------ convolve


def _flip(w):
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


@FAST
@given(case=conv_cases(), seed=SEEDS)
def test_convolve_is_conv_with_the_kernel_flipped(case, seed):
    rng = np.random.default_rng(seed)
    x, w = int_data(rng, case.x_shape), int_data(rng, case.w_shape)
    b = int_data(rng, case.w_shape[0]) if case.bias else None
    np.testing.assert_array_equal(
        R.convolve(x, w, b, **case.kwargs()), R.conv(x, _flip(w), b, **case.kwargs()), err_msg=repr(case)
    )
    g = int_data(rng, case.y_shape)
    dx, dw, db = R.convolve_backward(g, x, w, b, **case.kwargs())
    cdx, cdw, cdb = R.conv_backward(g, x, _flip(w), b, **case.kwargs())
    np.testing.assert_array_equal(dx, cdx)
    np.testing.assert_array_equal(dw, _flip(cdw))
    assert (db is None) == (b is None) and (db is None or np.array_equal(db, cdb))


@pytest.mark.parametrize("n, k", [(1, 1), (5, 3), (4, 4), (3, 6), (9, 2)])
def test_convolve_full_1d_is_numpy_convolve(n, k):
    """y[t] = sum_m x[m] w[t - m]: numpy.convolve's definition, per channel, summed over input channels."""
    rng = np.random.default_rng(n * 10 + k)
    x, w = int_data(rng, (2, 3, n)), int_data(rng, (2, 3, k))
    got = R.convolve(x, w, padding="full")
    want = np.array([[sum(np.convolve(x[b, c], w[o, c]) for c in range(3)) for o in range(2)] for b in range(2)])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n, k", [(1, 1), (8, 3), (5, 5), (16, 7), (3, 9)])
def test_conv_full_1d_is_fft_correlation(n, k):
    """Correlation is convolution with the flipped kernel; the FFT computes the circular version, exact
    for a transform length >= n + k - 1. Floating data: agreement to the FFT's rounding."""
    rng = np.random.default_rng(n * 100 + k)
    x, w = rng.standard_normal((2, 3, n)), rng.standard_normal((4, 3, k))
    length = n + k - 1
    spectrum = np.fft.rfft(x, length)[:, None] * np.fft.rfft(w[..., ::-1], length)[None]  # (N, C_out, C_in, f)
    want = np.fft.irfft(spectrum.sum(axis=2), length)
    got = R.conv(x, w, padding="full")
    scale = np.abs(x).sum() * np.abs(w).sum()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14 * scale)


def test_convolve_2d_full_is_scipy_convolve():
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(22)
    x, w = int_data(rng, (1, 1, 5, 6)), int_data(rng, (1, 1, 3, 2))
    np.testing.assert_array_equal(
        R.convolve(x, w, padding="full")[0, 0], signal.convolve(x[0, 0], w[0, 0], mode="full", method="direct")
    )


# ------------------------------------------------------------------------------------------ scipy and torch


def _dilate(w, dilations):
    """Insert d-1 zeros between kernel taps."""
    out = np.zeros(w.shape[:2] + tuple(d * (k - 1) + 1 for k, d in zip(w.shape[2:], dilations)))
    out[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dilations)] = w
    return out


@FAST
@given(case=conv_cases(), seed=SEEDS)
def test_conv_matches_scipy_correlate(case, seed):
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(seed)
    x, w = int_data(rng, case.x_shape), int_data(rng, case.w_shape)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(case.pairs))
    wd = _dilate(w, case.dilations)
    cg, per_group = case.w_shape[1], case.w_shape[0] // case.groups
    sub = tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(case.out_sizes, case.strides))
    want = np.empty(case.y_shape)
    for n in range(case.x_shape[0]):
        for o in range(case.w_shape[0]):
            chans = slice((o // per_group) * cg, (o // per_group + 1) * cg)
            full = signal.correlate(xp[n, chans], wd[o], mode="valid", method="direct")  # (1, *stride-1 outputs)
            want[(n, o)] = full[(0,) + sub]
    np.testing.assert_array_equal(R.conv(x, w, **case.kwargs()), want, err_msg=repr(case))


def _torch():
    torch = pytest.importorskip("torch")
    return torch, torch.nn.functional


def _torch_pad(F, t, pairs):
    flat = []
    for b, e in reversed(pairs):  # F.pad takes the last dim first
        flat += [b, e]
    return F.pad(t, flat)


@FAST
@given(case=conv_cases(), seed=SEEDS)
def test_conv_matches_torch(case, seed):
    torch, F = _torch()
    rng = np.random.default_rng(seed)
    x, w = int_data(rng, case.x_shape), int_data(rng, case.w_shape)
    b = int_data(rng, case.w_shape[0]) if case.bias else None
    fn = getattr(F, f"conv{case.nd}d")
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b)
    kw = dict(stride=case.strides, dilation=case.dilations, groups=case.groups)
    # torch's own padding where it has the form (symmetric ints, 'valid', 'same' at stride 1); explicit pads otherwise
    symmetric = all(b_ == e for b_, e in case.pairs)
    if case.padding in ("valid", "same") and (case.padding == "valid" or all(s == 1 for s in case.strides)):
        want = fn(tx, tw, tb, padding=case.padding, **kw)
    elif symmetric:
        want = fn(tx, tw, tb, padding=tuple(b_ for b_, _ in case.pairs), **kw)
    else:
        want = fn(_torch_pad(F, tx, case.pairs), tw, tb, padding=0, **kw)
    np.testing.assert_array_equal(R.conv(x, w, b, **case.kwargs()), want.numpy(), err_msg=repr(case))


@FAST
@given(case=transpose_cases(), seed=SEEDS)
def test_conv_transpose_matches_torch(case, seed):
    """torch pads symmetrically only: compute with padding 0 and cut [p_begin, p_begin + n_x) out of the
    result (zeros past its end: the rows output_padding or 'same' add that no window reads)."""
    torch, F = _torch()
    rng = np.random.default_rng(seed)
    y, w = int_data(rng, case.y_shape), int_data(rng, case.w_shape)
    b = int_data(rng, case.x_shape[1]) if case.bias else None
    fn = getattr(F, f"conv_transpose{case.nd}d")
    full = fn(
        torch.from_numpy(y),
        torch.from_numpy(w),
        None,
        stride=case.strides,
        padding=0,
        output_padding=case.out_pads,
        groups=case.groups,
        dilation=case.dilations,
    ).numpy()
    want = np.zeros(case.x_shape)
    src = tuple(
        slice(bb, min(bb + n, L)) for bb, n, L in zip((p[0] for p in case.pairs), case.x_shape[2:], full.shape[2:])
    )
    dst = tuple(slice(0, s.stop - s.start) for s in src)
    want[(Ellipsis,) + dst] = full[(Ellipsis,) + src]
    if b is not None:
        want += b.reshape(bias_b(case.x_shape))
    np.testing.assert_array_equal(R.conv_transpose(y, w, b, **case.kwargs()), want, err_msg=repr(case))


@QUICK
@given(case=pool_cases(symmetric=True, max_pad_half_kernel=True), seed=SEEDS)
def test_max_pool_matches_torch(case, seed):
    torch, F = _torch()
    rng = np.random.default_rng(seed)
    x = distinct_data(rng, case.x_shape)
    fn = getattr(F, f"max_pool{case.nd}d")
    values, idx = fn(
        torch.from_numpy(x),
        case.kernel,
        stride=case.strides,
        padding=tuple(b for b, _ in case.pairs),
        dilation=case.dilations,
        ceil_mode=case.ceil_mode,
        return_indices=True,
    )
    np.testing.assert_array_equal(R.max_pool(x, case.kernel_size, **case.kwargs()), values.numpy(), err_msg=repr(case))
    np.testing.assert_array_equal(
        R.max_pool_indices(x, case.kernel_size, **case.kwargs()), idx.numpy(), err_msg=repr(case)
    )


@QUICK
@given(
    case=pool_cases(max_dilation=1, symmetric=True, max_pad_half_kernel=True),
    count_include_pad=st.booleans(),
    seed=SEEDS,
)
def test_avg_pool_matches_torch(case, count_include_pad, seed):
    """PyTorch's divisor rules are the spec's: real elements only, or with count_include_pad the explicit
    padding too but never the ceil_mode overhang. Integer sums are exact; one division, correctly rounded."""
    torch, F = _torch()
    assume(
        all(n >= k for n, k in zip(case.x_shape[2:], case.kernel))
    )  # torch checks the kernel against the unpadded input
    rng = np.random.default_rng(seed)
    x = int_data(rng, case.x_shape, -20, 20)
    fn = getattr(F, f"avg_pool{case.nd}d")
    want = fn(
        torch.from_numpy(x),
        case.kernel,
        stride=case.strides,
        padding=tuple(b for b, _ in case.pairs),
        ceil_mode=case.ceil_mode,
        count_include_pad=count_include_pad,
    ).numpy()
    got = R.avg_pool(x, case.kernel_size, count_include_pad=count_include_pad, **case.kwargs())
    np.testing.assert_allclose(got, want, rtol=4e-16, atol=0, err_msg=repr(case))
