"""The reference API on hostile input (issue 13, "The reference API"): flags that are not bools, sizes that
would allocate hundreds of GiB, empty dimensions, float16 data, and wrong types anywhere. Each raises a
SpecError naming the parameter, or gives the result SPEC.md defines, in the fast and the literal forms alike."""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import pytest
from convspec.reference import _params, literal

from convspec import ParameterError, ShapeError, SpecError
from convspec import reference as R

FORMS = {"fast": R, "literal": literal}


def spec_error(call, cls, param, rule=""):
    with pytest.raises(SpecError) as info:
        call()
    err = info.value
    assert type(err) is cls, f"raised {type(err).__name__}: {err}, expected {cls.__name__}"
    assert err.param == param and str(err).startswith(f"{param}: "), err
    assert rule in str(err), err
    return err


def z(*shape):
    return np.zeros(shape)


def o(*shape):
    return np.ones(shape)


# ------------------------------------------------------------------------------------------ bool parameters

X = np.arange(25.0).reshape(1, 1, 5, 5)
W = o(1, 1, 3, 3)
X6 = np.arange(36.0).reshape(1, 1, 6, 6)  # pooled by 2, ceil_mode or not: (1, 1, 3, 3)
G_POOL = o(1, 1, 3, 3)
G_CONV = o(1, 1, 3, 3)  # conv(X, W) output

#: Every bool parameter of every op (forward, backward, index op, helper): (call taking the flag, its name).
FLAGS = [
    ("max_pool", lambda ns, v: ns.max_pool(X, 2, ceil_mode=v), "ceil_mode"),
    ("max_pool_indices", lambda ns, v: ns.max_pool_indices(X, 2, ceil_mode=v), "ceil_mode"),
    ("max_pool_backward", lambda ns, v: ns.max_pool_backward(G_POOL, X6, 2, ceil_mode=v), "ceil_mode"),
    ("avg_pool", lambda ns, v: ns.avg_pool(X, 2, ceil_mode=v), "ceil_mode"),
    ("avg_pool_backward", lambda ns, v: ns.avg_pool_backward(G_POOL, X6, 2, ceil_mode=v), "ceil_mode"),
    ("avg_pool count", lambda ns, v: ns.avg_pool(X, 2, count_include_pad=v), "count_include_pad"),
    (
        "avg_pool_backward count",
        lambda ns, v: ns.avg_pool_backward(G_POOL, X6, 2, count_include_pad=v),
        "count_include_pad",
    ),
    ("conv", lambda ns, v: ns.conv(X, W, strict=v), "strict"),
    ("conv_backward", lambda ns, v: ns.conv_backward(G_CONV, X, W, strict=v), "strict"),
    ("convolve", lambda ns, v: ns.convolve(X, W, strict=v), "strict"),
    ("convolve_backward", lambda ns, v: ns.convolve_backward(G_CONV, X, W, strict=v), "strict"),
]
HELPER_FLAGS = [
    ("output_size ceil_mode", lambda v: R.output_size(5, 2, stride=2, ceil_mode=v), "ceil_mode"),
    ("output_size strict", lambda v: R.output_size(5, 2, stride=2, strict=v), "strict"),
    ("param_count bias", lambda v: R.param_count(3, 4, (3, 3), bias=v), "bias"),
    ("batch_norm_stats unbiased", lambda v: R.batch_norm_stats(o(2, 3), unbiased=v), "unbiased"),
]
NOT_BOOLS = ["False", "no", "", 0, 1, 1.0, None, [True]]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("value", NOT_BOOLS, ids=repr)
@pytest.mark.parametrize("name, call, param", FLAGS, ids=[f[0] for f in FLAGS])
def test_flags_must_be_bools(name, call, param, value, form):
    """ceil_mode="False" used to mean True (a non-empty string is truthy)."""
    spec_error(
        lambda: call(FORMS[form], value),
        ParameterError,
        param,
        f"must be a bool, got {value!r} ({type(value).__name__})",
    )


@pytest.mark.parametrize("value", NOT_BOOLS, ids=repr)
@pytest.mark.parametrize("name, call, param", HELPER_FLAGS, ids=[f[0] for f in HELPER_FLAGS])
def test_helper_flags_must_be_bools(name, call, param, value):
    spec_error(lambda: call(value), ParameterError, param, "must be a bool")


def test_issue_examples_name_the_parameter():
    spec_error(
        lambda: R.avg_pool(X, 2, ceil_mode="False"), ParameterError, "ceil_mode", "must be a bool, got 'False' (str)"
    )
    spec_error(
        lambda: R.avg_pool(X, 2, count_include_pad="no"),
        ParameterError,
        "count_include_pad",
        "must be a bool, got 'no' (str)",
    )


@pytest.mark.parametrize("name, call, param", FLAGS, ids=[f[0] for f in FLAGS])
def test_real_bools_are_flags(name, call, param):
    for form in FORMS.values():
        for v in (True, False, np.bool_(True), np.bool_(False)):
            if param == "strict" and v:
                continue  # 5 - 3 fits stride 1 exactly anyway; strict=True is exercised in test_reference_errors
            call(form, v)
    assert np.array_equal(
        R.avg_pool(X, 3, stride=2, ceil_mode=np.bool_(True)), R.avg_pool(X, 3, stride=2, ceil_mode=True)
    )


# --------------------------------------------------------------------------------- sizes checked before allocating

HUGE = [
    ("conv padding 10**5", lambda: R.conv(o(1, 1, 5, 5), W, padding=10**5), ParameterError, "padding"),
    (
        "conv_backward padding 10**5",
        lambda: R.conv_backward(o(1, 1, 3, 3), o(1, 1, 5, 5), W, padding=10**5),
        ParameterError,
        "padding",
    ),
    (
        "conv dilation 10**6 full",
        lambda: R.conv(o(1, 1, 5, 5), W, dilation=10**6, padding="full"),
        ParameterError,
        "dilation",
    ),
    (
        "conv dilation 10**6 same",
        lambda: R.conv(o(1, 1, 5, 5), W, dilation=10**6, padding="same"),
        ParameterError,
        "dilation",
    ),
    ("convolve padding", lambda: R.convolve(o(1, 1, 5, 5), W, padding=(10**5, 10**5)), ParameterError, "padding"),
    ("conv 3-d padding", lambda: R.conv(o(1, 1, 2, 2, 2), o(1, 1, 1, 1, 1), padding=2000), ParameterError, "padding"),
    ("conv_transpose stride 10**6", lambda: R.conv_transpose(o(1, 1, 5, 5), W, stride=10**6), ParameterError, "stride"),
    (
        "conv_transpose dilation 10**6",
        lambda: R.conv_transpose(o(1, 1, 5, 5), W, dilation=10**6),
        ParameterError,
        "dilation",
    ),
    (
        "max_pool padding 10**5",
        lambda: R.max_pool(o(1, 1, 5, 5), (2 * 10**5 + 1, 1), stride=1, padding=10**5),
        ParameterError,
        "padding",
    ),
    (
        "avg_pool padding 10**5",
        lambda: R.avg_pool(o(1, 1, 5, 5), (2 * 10**5, 2 * 10**5), stride=1, padding=10**5),
        ParameterError,
        "padding",
    ),
    (
        "max_pool dilation",
        lambda: R.max_pool_indices(o(1, 1, 5, 5), 2, stride=1, dilation=(10**5, 10**5), padding=10**5),
        ParameterError,
        "padding",
    ),
    ("stride 10**30", lambda: R.max_pool(X, 2, stride=10**30), ParameterError, "stride"),
    ("dilation 2**40", lambda: R.conv(X, W, dilation=2**40), ParameterError, "dilation"),
    ("linear output", lambda: R.linear(o(2**16, 1), o(2**16, 1)), ShapeError, "w"),
]


@pytest.mark.parametrize("call, cls, param", [h[1:] for h in HUGE], ids=[h[0] for h in HUGE])
def test_huge_sizes_are_refused_before_allocating(call, cls, param):
    """Each of these asked NumPy for tens of GiB to TiB (or overflowed int64); now a SpecError, at once."""
    start = time.perf_counter()
    spec_error(call, cls, param)
    assert time.perf_counter() - start < 1.0


def test_the_limit_is_stated_in_the_message():
    err = spec_error(lambda: R.conv(o(1, 1, 5, 5), W, padding=10**5), ParameterError, "padding")
    assert "2**31" in str(err) and "elements" in str(err)
    assert _params.MAX_ELEMENTS == 2**31


def test_literal_forms_check_sizes_too():
    spec_error(lambda: literal.conv(o(1, 1, 5, 5), W, padding=10**5), ParameterError, "padding")
    spec_error(
        lambda: literal.max_pool(o(1, 1, 5, 5), (2 * 10**5 + 1, 1), stride=1, padding=10**5), ParameterError, "padding"
    )


def test_memory_estimate_against_available_memory(monkeypatch):
    """Under the element limit, the arrays together must still fit in the memory available."""
    monkeypatch.setattr(_params, "available_memory", lambda: 2**20)
    monkeypatch.setattr(_params, "_MEMORY_CHECK_BYTES", 0)
    err = spec_error(lambda: R.conv(o(1, 1, 5, 5), W, padding=300), ParameterError, "padding", "GiB")
    assert "memory available" in str(err)
    R.conv(o(1, 1, 5, 5), W, padding=1)  # a few hundred bytes: fine


def test_lrn_window_wider_than_the_channels_allocates_nothing_more():
    """size may exceed C (SPEC.md): the window is clipped, so size=10**9 is size=2C-1, not a 10**9-channel copy."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    g = np.random.default_rng(1).standard_normal((2, 3, 4))
    for ns in FORMS.values():
        assert np.array_equal(ns.local_response_norm(x, 10**9), ns.local_response_norm(x, 5))
        assert np.array_equal(
            ns.local_response_norm_backward(g, x, 10**9)[0], ns.local_response_norm_backward(g, x, 5)[0]
        )


# ------------------------------------------------------------------------------------------ empty dimensions


def _grad_like(out):
    return tuple(np.ones(np.shape(a)) for a in out) if isinstance(out, tuple) else np.ones(np.shape(out))


#: Every op of OPS with a size-0 dimension: (id, op, args, params, the output shape or (SpecError class, param)).
EMPTY = [
    ("conv N=0", "conv", (z(0, 3, 5, 5), o(4, 3, 3, 3)), {}, (0, 4, 3, 3)),
    ("conv C_out=0", "conv", (o(1, 3, 5, 5), z(0, 3, 3, 3)), {}, (1, 0, 3, 3)),
    ("conv C_out=0 groups", "conv", (o(1, 4, 5), z(0, 2, 3)), {"groups": 2}, (1, 0, 3)),
    ("conv C_in=0 (y = b)", "conv", (z(1, 0, 5, 5), z(4, 0, 3, 3), np.arange(4.0)), {}, (1, 4, 3, 3)),
    ("conv spatial 0", "conv", (z(1, 3, 0, 5), o(4, 3, 1, 1)), {}, (ShapeError, "w")),
    ("convolve C_out=0", "convolve", (o(1, 3, 5), z(0, 3, 2)), {}, (1, 0, 4)),
    ("convolve N=0", "convolve", (z(0, 3, 5), o(2, 3, 2)), {}, (0, 2, 4)),
    ("conv_transpose N=0", "conv_transpose", (z(0, 4, 3, 3), o(4, 3, 3, 3)), {}, (0, 3, 5, 5)),
    ("conv_transpose C_y=0", "conv_transpose", (z(1, 0, 3, 3), z(0, 3, 3, 3), np.arange(3.0)), {}, (1, 3, 5, 5)),
    ("conv_transpose C_x=0", "conv_transpose", (o(1, 4, 3), z(4, 0, 3)), {}, (1, 0, 5)),
    ("conv_transpose spatial 0", "conv_transpose", (z(1, 4, 0, 3), o(4, 3, 3, 3)), {}, (ShapeError, "y")),
    ("max_pool N=0", "max_pool", (z(0, 3, 4, 4), 2), {}, (0, 3, 2, 2)),
    ("max_pool C=0", "max_pool", (z(2, 0, 4), 2), {}, (2, 0, 2)),
    ("max_pool spatial 0", "max_pool", (z(1, 1, 0), 1), {}, (ShapeError, "kernel_size")),
    (
        "max_pool spatial 0 padded",
        "max_pool",
        (z(1, 1, 0), 1),
        {"padding": 1, "stride": 1},
        (ParameterError, "padding"),
    ),
    ("avg_pool N=0", "avg_pool", (z(0, 3, 4, 4), 2), {}, (0, 3, 2, 2)),
    ("avg_pool C=0", "avg_pool", (z(2, 0, 4), 2), {"count_include_pad": True}, (2, 0, 2)),
    ("avg_pool spatial 0", "avg_pool", (z(1, 1, 0, 3), 1), {}, (ShapeError, "kernel_size")),
    ("global_max_pool N=0", "global_max_pool", (z(0, 3, 4),), {}, (0, 3)),
    ("global_max_pool C=0", "global_max_pool", (z(2, 0, 4, 4),), {}, (2, 0)),
    ("global_max_pool spatial 0", "global_max_pool", (z(1, 3, 0),), {}, (ShapeError, "x")),
    ("global_max_pool spatial 0 of 2", "global_max_pool", (z(1, 3, 4, 0),), {}, (ShapeError, "x")),
    ("global_avg_pool N=0", "global_avg_pool", (z(0, 3, 4),), {}, (0, 3)),
    ("global_avg_pool spatial 0", "global_avg_pool", (z(1, 3, 0),), {}, (ShapeError, "x")),
    ("kmax_pool rows 0", "kmax_pool", (z(0, 5), 2), {}, (0, 2)),
    ("kmax_pool length 0", "kmax_pool", (z(3, 0), 1), {}, (ParameterError, "k")),
    ("relu", "relu", (z(0, 3),), {}, (0, 3)),
    ("sigmoid", "sigmoid", (z(2, 0),), {}, (2, 0)),
    ("tanh", "tanh", (z(0),), {}, (0,)),
    ("linear N=0", "linear", (z(0, 3), o(4, 3)), {}, (0, 4)),
    ("linear in=0 (y = b)", "linear", (z(2, 0), z(4, 0), np.arange(4.0)), {}, (2, 4)),
    ("linear out=0", "linear", (o(2, 3), z(0, 3)), {}, (2, 0)),
    ("flatten N=0", "flatten", (z(0, 3, 4),), {}, (0, 12)),
    ("flatten rest 0", "flatten", (z(2, 0, 4),), {}, (2, 0)),
    ("add", "add", (z(0, 3), z(0, 3)), {}, (0, 3)),
    ("softmax K=0", "softmax", (z(2, 0),), {}, (2, 0)),
    ("softmax rows 0", "softmax", (z(0, 3),), {}, (0, 3)),
    ("softmax 1-d K=0", "softmax", (z(0),), {}, (0,)),
    ("cross_entropy N=0", "cross_entropy", (z(0, 3), np.zeros(0, int)), {}, (ShapeError, "logits")),
    ("cross_entropy K=0", "cross_entropy", (z(2, 0), np.zeros(2, int)), {}, (ShapeError, "logits")),
    ("batch_norm N=0", "batch_norm", (z(0, 3), o(3), z(3)), {}, (ShapeError, "x")),
    ("batch_norm spatial 0", "batch_norm", (z(2, 3, 0), o(3), z(3)), {}, (ShapeError, "x")),
    ("batch_norm_inference N=0", "batch_norm_inference", (z(0, 3), o(3), z(3), z(3), o(3)), {}, (ShapeError, "x")),
    ("local_response_norm N=0", "local_response_norm", (z(0, 3, 4), 3), {}, (0, 3, 4)),
    ("local_response_norm C=0", "local_response_norm", (z(1, 0, 4), 3), {}, (1, 0, 4)),
    ("dropout", "dropout", (z(0, 3), z(0, 3)), {"p": 0.5}, (0, 3)),
    ("concat axis 0-size", "concat", ([z(1, 0, 3), z(1, 0, 3)],), {}, (1, 0, 3)),
    ("concat N=0", "concat", ([z(0, 2, 3), z(0, 1, 3)],), {}, (0, 3, 3)),
]


def test_every_op_has_an_empty_case():
    assert {e[1] for e in EMPTY} == set(R.OPS)


@pytest.mark.parametrize("op, args, params, expect", [e[1:] for e in EMPTY], ids=[e[0] for e in EMPTY])
def test_empty_dimensions(op, args, params, expect):
    """SPEC.md, "Empty dimensions": an empty batch or channel axis gives an empty result (and empty sums are 0,
    plus the bias); a reduction over nothing (global pooling, the loss) is a ShapeError; softmax over no class
    is the empty array. Never a raw NumPy error; literal and fast agree, forward and backward."""
    results = {}
    for form, ns in FORMS.items():
        if isinstance(expect[0], type):
            cls, param = expect
            spec_error(lambda: getattr(ns, op)(*args, **params), cls, param)
            g = np.ones(1)
            spec_error(lambda: getattr(ns, op + "_backward")(g, *args, **params), cls, param)
            continue
        with np.errstate(all="raise"):  # no 0/0 hiding behind a warning
            y = getattr(ns, op)(*args, **params)
            assert y.shape == expect, (form, y.shape)
            grads = getattr(ns, op + "_backward")(_grad_like(y), *args, **params)
        results[form] = (y, grads)
    if results:
        (y_fast, g_fast), (y_lit, g_lit) = results["fast"], results["literal"]
        np.testing.assert_array_equal(y_lit, y_fast)
        assert y_lit.dtype == y_fast.dtype
        for a, b in zip(g_lit, g_fast):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)
                assert a.shape == b.shape


def test_empty_sums_are_zero_plus_bias():
    b = np.arange(4.0)
    y = R.conv(z(2, 0, 5), z(4, 0, 3), b)
    assert np.array_equal(y, np.broadcast_to(b[None, :, None], (2, 4, 3)))
    dx, dw, db = R.conv_backward(np.ones((2, 4, 3)), z(2, 0, 5), z(4, 0, 3), b)
    assert dx.shape == (2, 0, 5) and dw.shape == (4, 0, 3) and np.array_equal(db, [6.0] * 4)
    dx, dw, db = R.conv_backward(np.ones((0, 4, 3)), z(0, 3, 5), o(4, 3, 3), b)
    assert np.array_equal(dw, z(4, 3, 3)) and np.array_equal(db, z(4))
    x = R.conv_transpose(z(1, 0, 3), z(0, 2, 2), np.array([1.0, 2.0]))
    assert np.array_equal(x, [[[1.0] * 4, [2.0] * 4]])


def test_empty_dimensions_on_fractions():
    """The exact path (object arrays of Fraction) takes the same definitions."""
    frac = np.vectorize(Fraction, otypes=[object])
    b = frac(np.arange(3))
    for ns in FORMS.values():
        y = ns.conv(np.empty((1, 0, 4), dtype=object), np.empty((3, 0, 2), dtype=object), b)
        assert y.dtype == object and y.shape == (1, 3, 3) and all(isinstance(v, Fraction) for v in y.flat)
        assert [v for v in y[0, :, 0]] == [0, 1, 2]
        assert ns.conv(frac(o(1, 2, 4)), np.empty((0, 2, 2), dtype=object)).shape == (1, 0, 3)


# -------------------------------------------------------------------- float16 and float32: float64 inside


def _rng_inputs():
    rng = np.random.default_rng(7)
    r = rng.standard_normal
    x4 = r((2, 4, 5, 5))
    return {
        "conv": ((x4, r((3, 4, 3, 3)), r(3)), {"padding": 1}),
        "convolve": ((x4, r((4, 2, 2, 2)), r(4)), {"groups": 2, "stride": 2}),
        "conv_transpose": ((r((2, 3, 3, 3)), r((3, 2, 3, 3)), r(2)), {"stride": 2}),
        "max_pool": ((x4, 2), {"ceil_mode": True, "padding": 1}),
        "avg_pool": ((x4, 3), {"stride": 2, "padding": 1}),
        "global_max_pool": ((x4,), {}),
        "global_avg_pool": ((x4,), {}),
        "kmax_pool": ((r((3, 7)), 3), {}),
        "relu": ((r((3, 7)),), {}),
        "sigmoid": ((4 * r((3, 7)),), {}),
        "tanh": ((r((3, 7)),), {}),
        "linear": ((r((3, 7)), r((4, 7)), r(4)), {}),
        "flatten": ((x4,), {}),
        "add": ((x4, r(x4.shape)), {}),
        "softmax": ((3 * r((3, 7)),), {}),
        "cross_entropy": ((3 * r((3, 7)), np.array([0, 6, 2])), {}),
        "batch_norm": ((x4, 1 + rng.random(4), r(4)), {}),
        "batch_norm_inference": ((x4, 1 + rng.random(4), r(4), r(4), rng.random(4)), {}),
        "local_response_norm": ((x4, 3), {"alpha": 0.1}),
        "dropout": ((x4, rng.random(x4.shape) < 0.5), {"p": 0.25}),
        "concat": (([x4, r((2, 1, 5, 5))],), {}),
    }


NOT_DATA = {"cross_entropy": (1,), "dropout": (1,)}  # labels, keep: passed as they are


def _cast(args, dtype, op):
    def one(a):
        if isinstance(a, list):
            return [one(v) for v in a]
        return a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a

    return [a if i in NOT_DATA.get(op, ()) else one(a) for i, a in enumerate(args)]


def _same(got, want, what):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), what
        for k, (a, b) in enumerate(zip(got, want)):
            _same(a, b, f"{what}[{k}]")
        return
    if want is None:
        assert got is None, what
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, want.dtype)
    assert got.tobytes() == want.tobytes(), f"{what}: {got} != {want}"


def _rounded(out, dtype):
    if isinstance(out, tuple):
        return tuple(_rounded(a, dtype) for a in out)
    if out is None or np.asarray(out).dtype.kind != "f":
        return out
    return np.asarray(out).astype(dtype)[()]


CALLS = list(R.OPS) + list(R.INDEX_OPS)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("op", CALLS)
def test_narrow_floats_are_computed_in_float64_and_rounded_once(op, dtype, form):
    """op(x in float16/float32) == op(the same values in float64), rounded once to float16/float32, bit for bit:
    forward, every gradient, the index ops."""
    ns = FORMS[form]
    if form == "literal" and not hasattr(ns, op):
        pytest.skip(f"no literal {op}")
    base = op[: -len("_indices")] if op.endswith("_indices") else op
    args, params = _rng_inputs()[base]
    narrow = _cast(args, dtype, op)
    wide = _cast(narrow, np.float64, op)  # the same values, exactly, in float64
    got = getattr(ns, op)(*narrow, **params)
    want = getattr(ns, op)(*wide, **params)
    _same(got, _rounded(want, dtype), f"{op} forward")
    if op.endswith("_indices"):
        return
    g = _grad_like(want)
    g = np.asarray(g, dtype=dtype) if not isinstance(g, tuple) else g
    got_grads = getattr(ns, op + "_backward")(g, *narrow, **params)
    want_grads = getattr(ns, op + "_backward")(np.asarray(g, dtype=np.float64), *wide, **params)
    _same(got_grads, _rounded(want_grads, dtype), f"{op} backward")


def test_avg_pool_of_float16_60000s_is_60000():
    """Issue 13: 60000 + 60000 overflows float16 (max 65504), so a float16 sum gave inf."""
    x = np.full((1, 1, 4, 4), 60000, dtype=np.float16)
    for ns in FORMS.values():
        y = ns.avg_pool(x, 2)
        assert y.dtype == np.float16 and np.all(y == np.float16(60000)), y
        assert np.all(ns.global_avg_pool(x) == np.float16(60000))
        (dx,) = ns.avg_pool_backward(np.full((1, 1, 2, 2), 60000, dtype=np.float16), x, 2)
        assert dx.dtype == np.float16 and np.all(dx == np.float16(15000))
    y = R.conv(x, np.full((1, 1, 2, 2), 0.25, dtype=np.float16))
    assert y.dtype == np.float16 and np.all(y == np.float16(60000))


def test_float32_sums_round_once():
    """float32 data: sums are taken in float64 and rounded once, so a mean of 3e38s is 3e38 (a float32 sum
    overflows: its largest value is 3.4e38), and 1 + 2**-24 + 2**-24 rounds to 1 + 2**-23 in any order."""
    x = np.full((1, 1, 2, 2), 3e38, dtype=np.float32)
    for ns in FORMS.values():
        assert ns.avg_pool(x, 2)[0, 0, 0, 0] == np.float32(3e38)
        assert ns.conv(x, np.full((1, 1, 2, 2), 0.25, np.float32))[0, 0, 0, 0] == np.float32(3e38)
        assert ns.linear(x.reshape(1, 4), np.full((1, 4), 0.25, np.float32))[0, 0] == np.float32(3e38)
    t = np.array([[[1.0, 2.0**-24, 2.0**-24]]], dtype=np.float32)
    assert R.conv(t, np.ones((1, 1, 3), np.float32))[0, 0, 0] == np.float32(1 + 2.0**-23)


def test_dtypes_of_results_are_unchanged():
    """float64 stays float64; mixed float32 and float64 data give float64 (NumPy's promotion); integer data is
    read as float64; labels and masks do not set the dtype; Fractions stay exact."""
    x32, w64 = np.ones((1, 1, 4), np.float32), np.ones((1, 1, 2))
    assert R.conv(x32, w64).dtype == np.float64
    assert R.conv(np.ones((1, 1, 4), int), np.ones((1, 1, 2), np.float32)).dtype == np.float64
    assert R.cross_entropy(np.ones((2, 3), np.float16), np.array([0, 1])).dtype == np.float16
    assert R.dropout(np.ones(3, np.float32), np.array([1, 0, 1]), p=0.5).dtype == np.float32
    assert R.max_pool_indices(np.ones((1, 1, 4), np.float16), 2).dtype == np.intp
    frac = np.array([[[Fraction(1, 3), Fraction(2, 3)]]], dtype=object)
    assert R.avg_pool(frac, 2)[0, 0, 0] == Fraction(1, 2)


def test_pickling_the_ops_still_works():
    """The ops are replaced in their modules too, so they pickle by reference (the engine's workers)."""
    import pickle

    for name in ("conv", "avg_pool_backward", "max_pool_indices", "batch_norm_running_stats"):
        assert pickle.loads(pickle.dumps(getattr(R, name))) is getattr(R, name)
    assert pickle.loads(pickle.dumps(literal.conv)) is literal.conv


# ------------------------------------------------------------------------------------------ no raw NumPy tracebacks

_BASE = {
    "conv": ((X, W), ["stride", "padding", "dilation", "groups", "strict"]),
    "convolve": ((X, W), ["stride", "padding", "dilation", "groups", "strict"]),
    "conv_transpose": ((o(1, 1, 3, 3), W), ["stride", "padding", "dilation", "groups", "output_padding"]),
    "max_pool": ((X, 2), ["stride", "padding", "dilation", "ceil_mode"]),
    "avg_pool": ((X, 2), ["stride", "padding", "dilation", "ceil_mode", "count_include_pad"]),
    "global_max_pool": ((X,), []),
    "global_avg_pool": ((X,), []),
    "kmax_pool": ((o(2, 5), 2), []),
    "relu": ((X,), []),
    "sigmoid": ((X,), []),
    "tanh": ((X,), []),
    "linear": ((o(2, 3), o(4, 3)), []),
    "flatten": ((X,), []),
    "add": ((X, X), []),
    "softmax": ((o(2, 3),), []),
    "cross_entropy": ((o(2, 3), np.array([0, 1])), []),
    "batch_norm": ((X, o(1), z(1)), ["eps"]),
    "batch_norm_inference": ((X, o(1), z(1), z(1), o(1)), ["eps"]),
    "local_response_norm": ((X, 3), ["alpha", "beta", "k"]),
    "dropout": ((X, o(*X.shape)), ["p"]),
    "concat": (([X, X],), ["axis"]),
}
_BAD = ["2", 2.5, None, [1, "a"], (1,), (1, 2, 3), -1, 10**30, float("nan"), [[1, 2], [3]], {}, True, "False", object()]
_BAD_ARRAYS = _BAD + [np.array("s"), [[1.0], [2.0, 3.0]], [[[1.0, 2.0]]], 3.0, np.float32(1)]


def test_base_calls_are_valid():
    assert set(_BASE) == set(R.OPS)
    for op, (args, _) in _BASE.items():
        getattr(R, op)(*args, **({"p": 0.5} if op == "dropout" else {}))


@pytest.mark.parametrize("op", R.OPS)
def test_bad_arguments_raise_spec_errors_only(op):
    """Every parameter and every positional argument of every op, replaced by junk (strings, None, ragged lists,
    NaN, 10**30, objects): a SpecError or a result, never a raw NumPy or Python error."""
    args, names = _BASE[op]
    kw = {"p": 0.5} if op == "dropout" else {}
    calls = [(args, {**kw, name: v}) for name in names for v in _BAD]
    for i in range(len(args)):
        for v in _BAD_ARRAYS:
            calls.append((args[:i] + (v,) + args[i + 1 :], kw))
    for ns in FORMS.values():
        for a, k in calls:
            try:
                getattr(ns, op)(*a, **k)
            except SpecError:
                pass


def test_ragged_labels_are_a_spec_error():
    spec_error(lambda: R.cross_entropy(o(2, 3), [[0], [1, 2]]), ShapeError, "labels", "ragged")


@pytest.mark.parametrize("value", _BAD, ids=[f"{i}-{type(v).__name__}" for i, v in enumerate(_BAD)])
def test_size_helpers_raise_spec_errors_only(value):
    """param_count's kernel_size and receptive_field's lists used to raise TypeError/UFuncTypeError on junk."""
    calls = [
        lambda: R.param_count(3, 4, value),
        lambda: R.param_count(value, 4, 3),
        lambda: R.receptive_field(value),
        lambda: R.receptive_field([3, value]),
        lambda: R.receptive_field([3, 3], strides=value),
        lambda: R.receptive_field([3, 3], dilations=value),
        lambda: R.output_size(value, 3),
        lambda: R.output_size(5, 3, padding=value),
        lambda: R.dynamic_k(value, 3, 10, 2),
        lambda: R.kmax_pool_indices(o(2, 5), value),
    ]
    for call in calls:
        try:
            call()
        except SpecError:
            pass


def test_size_helpers_name_the_parameter():
    spec_error(lambda: R.param_count(3, 4, "3"), ParameterError, "kernel_size", "sequence of ints, got '3'")
    spec_error(lambda: R.receptive_field(3), ParameterError, "kernel_sizes", "a sequence of ints, got 3")
    spec_error(lambda: R.receptive_field([3, None]), ParameterError, "kernel_sizes", "got [3, None]")
    spec_error(lambda: R.receptive_field([3, 3], strides=[1, "a"]), ParameterError, "strides", "got [1, 'a']")
    assert (R.param_count(3, 10, (5, 5)), R.receptive_field([3, 3]), R.receptive_field([3, 3], strides=[2, 1])) == (
        760,
        5,
        7,
    )
