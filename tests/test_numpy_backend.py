"""The NumPy backend against the reference: every op, forward and every gradient, float64 on random
configurations (1-D/2-D/3-D, every padding form, stride, dilation, groups, ceil_mode,
count_include_pad, output_padding), ties and NaN exactly, errors by class and parameter, float32
staying float32, batch chunking, and the plugin registration."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest
from convspec.backends import numpy_backend
from convspec.backends.numpy_backend import NumpyBackend

from convspec import ParameterError, ShapeError, SpecError
from convspec import reference as R

B = NumpyBackend()
RTOL = 1e-12


def assert_close(got, want, *, scale=None, rtol=RTOL):
    """float64 agreement to rtol relative to the magnitude of the data (`scale`, default max |want|)."""
    if want is None:
        assert got is None
        return
    got, want = np.asarray(got), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == np.float64
    if scale is None:
        scale = float(np.nanmax(np.abs(want))) if want.size and not np.isnan(want).all() else 1.0
    tol = rtol * max(scale, 1.0)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    err = np.abs(got[ok] - want[ok])
    assert err.size == 0 or err.max() <= tol, f"max error {err.max()} > {tol}"


def assert_same(got, want):
    """Exact equality (NaN == NaN), shape and values."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(got, want)


def both(op, *args, **kw):
    """Run `op` on the reference and the backend; when the reference rejects the call the backend must
    raise the same error class naming the same parameter. -> (ref, backend) or None."""
    try:
        want = getattr(R, op)(*args, **kw)
    except SpecError as exc:
        with pytest.raises(type(exc)) as info:
            getattr(B, op)(*args, **kw)
        assert info.value.param == exc.param, (op, kw, info.value, exc)
        return None
    return want, getattr(B, op)(*args, **kw)


def check_op(op, args, kw, rng, *, scale=None, n_inputs=None):
    """Forward and every gradient of `op` vs the reference (float64)."""
    res = both(op, *args, **kw)
    if res is None:
        return False
    want, got = res
    assert_close(got, want, scale=scale)
    g = rng.standard_normal(np.shape(want))
    rb, gb = getattr(R, op + "_backward")(g, *args, **kw), getattr(B, op + "_backward")(g, *args, **kw)
    assert isinstance(gb, tuple) and len(gb) == len(rb)
    for a, b in zip(gb, rb):
        assert_close(a, b, scale=scale)
    return True


# ----------------------------------------------------------------------------- random configurations
def _padding(rng, nd, kernel, modes):
    form = rng.integers(0, 4)
    if form == 0:
        return int(rng.integers(0, 3))
    if form == 1:
        return tuple(int(rng.integers(0, 3)) for _ in range(nd))
    if form == 2:
        return tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(nd))
    return modes[rng.integers(0, len(modes))]


def _per_dim(rng, nd, lo, hi):
    return (
        int(rng.integers(lo, hi + 1)) if rng.random() < 0.5 else tuple(int(rng.integers(lo, hi + 1)) for _ in range(nd))
    )


def conv_configs(seed, count):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        nd = int(rng.integers(1, 4))
        groups = int(rng.choice([1, 1, 2, 3]))
        cg, fg = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        kernel = tuple(int(rng.integers(1, 4 if nd < 3 else 3)) for _ in range(nd))
        sizes = tuple(int(rng.integers(3, 9 if nd < 3 else 6)) for _ in range(nd))
        n = int(rng.integers(1, 3))
        x = rng.standard_normal((n, cg * groups) + sizes)
        w = rng.standard_normal((fg * groups, cg) + kernel)
        b = rng.standard_normal(fg * groups) if rng.random() < 0.6 else None
        kw = dict(
            stride=_per_dim(rng, nd, 1, 3),
            dilation=_per_dim(rng, nd, 1, 2),
            groups=groups,
            padding=_padding(rng, nd, kernel, ("valid", "same", "full")),
        )
        out.append((x, w, b, kw))
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("op", ["conv", "convolve"])
def test_conv_random(op, seed):
    rng = np.random.default_rng(100 + seed)
    checked = 0
    for x, w, b, kw in conv_configs(seed, 25):
        checked += check_op(op, (x, w, b), kw, rng)
    assert checked >= 10


@pytest.mark.parametrize("seed", range(4))
def test_conv_transpose_random(seed):
    rng = np.random.default_rng(200 + seed)
    checked = 0
    for _ in range(25):
        nd = int(rng.integers(1, 4))
        groups = int(rng.choice([1, 1, 2, 3]))
        cy, cx = int(rng.integers(1, 3)) * groups, int(rng.integers(1, 3))
        kernel = tuple(int(rng.integers(1, 4 if nd < 3 else 3)) for _ in range(nd))
        y = rng.standard_normal(
            (int(rng.integers(1, 3)), cy) + tuple(int(rng.integers(2, 7 if nd < 3 else 5)) for _ in range(nd))
        )
        w = rng.standard_normal((cy, cx) + kernel)
        b = rng.standard_normal(cx * groups) if rng.random() < 0.6 else None
        stride, dilation = _per_dim(rng, nd, 1, 3), _per_dim(rng, nd, 1, 2)
        s = (stride,) * nd if isinstance(stride, int) else stride
        d = (dilation,) * nd if isinstance(dilation, int) else dilation
        padding = _padding(rng, nd, kernel, ("valid", "same", "full"))
        op = (
            0
            if padding == "same" or rng.random() < 0.4
            else tuple(int(rng.integers(0, max(a, c))) for a, c in zip(s, d))
        )
        kw = dict(stride=stride, dilation=dilation, groups=groups, padding=padding, output_padding=op)
        checked += check_op("conv_transpose", (y, w, b), kw, rng)
    assert checked >= 10


def test_conv_strict_and_special_shapes():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 9, 9))
    w = rng.standard_normal((6, 4, 3, 3))
    assert check_op("conv", (x, w, None), dict(stride=2, strict=True), rng)  # (9-3) % 2 == 0
    assert not check_op("conv", (x, w, None), dict(stride=4, strict=True), rng)  # ParameterError: stride
    # 1x1 (the im2col is a view), depthwise, and a kernel as large as the padded input
    check_op("conv", (x, rng.standard_normal((8, 4, 1, 1)), rng.standard_normal(8)), dict(stride=2), rng)
    check_op("conv", (x, rng.standard_normal((8, 1, 3, 3)), None), dict(groups=4, padding="same"), rng)
    check_op("conv", (x, rng.standard_normal((3, 4, 9, 11)), None), dict(padding=((0, 0), (1, 1))), rng)
    # stride 1 with padding beyond the kernel extent (the input gradient crops g), dilation, groups
    assert check_op(
        "conv",
        (x, rng.standard_normal((6, 2, 3, 2)), None),
        dict(padding=((5, 0), (0, 4)), dilation=(1, 2), groups=2),
        rng,
    )
    assert check_op(
        "conv_transpose",
        (x, rng.standard_normal((4, 3, 3, 2)), None),
        dict(padding=((1, 3), (0, 0)), dilation=2, output_padding=1),
        rng,
    )


def pool_configs(seed, count, with_ceil=True):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        nd = int(rng.integers(1, 4))
        sizes = tuple(int(rng.integers(3, 10 if nd < 3 else 6)) for _ in range(nd))
        x = rng.standard_normal((int(rng.integers(1, 3)), int(rng.integers(1, 4))) + sizes)
        kernel = _per_dim(rng, nd, 1, 3)
        kw = dict(
            stride=None if rng.random() < 0.3 else _per_dim(rng, nd, 1, 3),
            padding=_padding(rng, nd, kernel, (0,)),
            dilation=_per_dim(rng, nd, 1, 2),
            ceil_mode=bool(with_ceil and rng.random() < 0.5),
        )
        out.append((x, kernel, kw, rng))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_max_pool_random(seed):
    checked = 0
    for x, kernel, kw, rng in pool_configs(300 + seed, 30):
        if check_op("max_pool", (x, kernel), kw, rng):
            checked += 1
            assert_same(B.max_pool_indices(x, kernel, **kw), R.max_pool_indices(x, kernel, **kw))
    assert checked >= 10


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("include_pad", [False, True])
def test_avg_pool_random(seed, include_pad):
    checked = 0
    for x, kernel, kw, rng in pool_configs(400 + seed, 30):
        kw["count_include_pad"] = include_pad
        with np.errstate(all="ignore"):
            checked += check_op("avg_pool", (x, kernel), kw, rng)
    assert checked >= 10


def test_global_and_kmax_random():
    rng = np.random.default_rng(6)
    for shape in [(2, 3, 7), (1, 4, 5, 6), (2, 2, 3, 4, 5)]:
        x = rng.standard_normal(shape)
        assert check_op("global_max_pool", (x,), {}, rng)
        assert check_op("global_avg_pool", (x,), {}, rng)
    for shape in [(9,), (3, 8), (2, 3, 10), (2, 2, 3, 6)]:
        x = rng.standard_normal(shape)
        for k in (1, 3, shape[-1]):
            assert check_op("kmax_pool", (x, k), {}, rng)
            assert_same(B.kmax_pool_indices(x, k), R.kmax_pool_indices(x, k))


def test_elementwise_dense_losses():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 5)) * 4
    x.flat[:4] = [0.0, -0.0, 40.0, -40.0]
    for op in ("relu", "sigmoid", "tanh", "flatten"):
        assert check_op(op, (x,), {}, rng)
    assert check_op("softmax", (x,), {}, rng)
    assert check_op("softmax", (rng.standard_normal(6) * 30,), {}, rng)
    assert check_op("add", (x, rng.standard_normal(x.shape)), {}, rng)
    xi, w = rng.standard_normal((5, 7)), rng.standard_normal((3, 7))
    assert check_op("linear", (xi, w, rng.standard_normal(3)), {}, rng)
    assert check_op("linear", (xi, w, None), {}, rng)
    z, labels = rng.standard_normal((6, 4)) * 5, rng.integers(0, 4, 6)
    want, got = both("cross_entropy", z, labels)
    assert_close(got, want)
    for g in (1.0, np.float64(-2.5), np.array([0.5])):
        assert_close(B.cross_entropy_backward(g, z, labels)[0], R.cross_entropy_backward(g, z, labels)[0])


# ----------------------------------------------------------------------------- ties, NaN, exact cases
def _tie_input(rng, shape, nan_frac=0.0, ninf_frac=0.0):
    x = rng.integers(-2, 3, shape).astype(np.float64)  # many ties
    if nan_frac:
        x[rng.random(shape) < nan_frac] = np.nan
    if ninf_frac:
        x[rng.random(shape) < ninf_frac] = -np.inf
    return x


@pytest.mark.parametrize("nan_frac", [0.0, 0.15])
def test_max_pool_ties_and_nan_exact(nan_frac):
    rng = np.random.default_rng(8)
    checked = 0
    for _, kernel, kw, _ in pool_configs(500, 40):
        x = _tie_input(rng, (2, 3, 6, 7) if isinstance(kernel, int) else (2, 3) + (6, 7, 5)[: len(kernel)], nan_frac)
        res = both("max_pool_indices", x, kernel, **kw)
        if res is None:
            continue
        checked += 1
        assert_same(res[1], res[0])
        assert_same(B.max_pool(x, kernel, **kw), R.max_pool(x, kernel, **kw))
        g = rng.integers(-3, 4, np.shape(res[0])).astype(np.float64)
        assert_same(B.max_pool_backward(g, x, kernel, **kw)[0], R.max_pool_backward(g, x, kernel, **kw)[0])
    assert checked >= 5


def test_max_pool_nan_payload_and_first_nan():
    x = np.array([[[1.0, np.nan, 5.0, -np.nan, 2.0, 2.0]]])
    x[0, 0, 3] = np.frombuffer(np.uint64(0x7FF8000000000123).tobytes(), np.float64)[0]
    for kw in (dict(kernel_size=3, stride=1), dict(kernel_size=2, stride=2), dict(kernel_size=4, stride=1, padding=1)):
        assert_same(B.max_pool_indices(x, **kw), R.max_pool_indices(x, **kw))
        got, want = B.max_pool(x, **kw), R.max_pool(x, **kw)
        assert got.view(np.uint64).tolist() == want.view(np.uint64).tolist()  # the NaN payload is kept


def test_max_pool_neg_inf_and_all_padding_window():
    x = np.array([[[-np.inf, -np.inf, 3.0]]])
    assert_same(B.max_pool_indices(x, 2, stride=1), R.max_pool_indices(x, 2, stride=1))
    # padding is -inf but never chosen over a real input, even a real -inf
    for f in ("max_pool", "max_pool_indices"):
        assert_same(getattr(B, f)(x, 2, stride=1, padding=1), getattr(R, f)(x, 2, stride=1, padding=1))
    assert_same(R.max_pool_indices(x, 2, stride=1, padding=1), np.array([[[0, 0, 2, 2]]]))
    with pytest.raises(ParameterError):  # a window made of padding only
        B.max_pool(np.ones((1, 1, 2)), 1, stride=1, padding=1)


def test_global_max_and_kmax_ties_nan_exact():
    rng = np.random.default_rng(9)
    for frac in (0.0, 0.2, 0.6):
        x = _tie_input(rng, (3, 4, 5, 4), frac, 0.1)
        assert_same(B.global_max_pool(x), R.global_max_pool(x))
        g = rng.standard_normal(x.shape[:2])
        assert_same(B.global_max_pool_backward(g, x)[0], R.global_max_pool_backward(g, x)[0])
        x2 = _tie_input(rng, (4, 3, 9), frac, 0.1)
        x2[0, 0] = np.inf
        for k in (1, 2, 5, 9):
            assert_same(B.kmax_pool_indices(x2, k), R.kmax_pool_indices(x2, k))
            assert_same(B.kmax_pool(x2, k), R.kmax_pool(x2, k))
            g = rng.standard_normal(x2.shape[:-1] + (k,))
            assert_same(B.kmax_pool_backward(g, x2, k)[0], R.kmax_pool_backward(g, x2, k)[0])


def test_relu_derivative_at_zero_and_nan():
    x = np.array([-1.0, -0.0, 0.0, 1e-300, np.nan, np.inf])
    g = np.arange(1.0, 7.0)
    assert_same(B.relu_backward(g, x)[0], [0, 0, 0, 4, 0, 6])
    assert_same(B.relu(x), R.relu(x))
    # max(-inf, 0) = 0 (the reference's where(x > 0, x, x * 0) gives -inf * 0 = NaN here)
    assert_same(B.relu(np.array([-np.inf])), [0.0])


def test_avg_pool_divisors_exact():
    x = np.ones((1, 1, 5, 4))
    for kw in (
        dict(padding=1, ceil_mode=True, stride=2),
        dict(padding=((2, 0), (1, 1)), stride=(2, 3), ceil_mode=True),
    ):
        for inc in (False, True):
            assert_same(B.avg_pool(x, 3, count_include_pad=inc, **kw), R.avg_pool(x, 3, count_include_pad=inc, **kw))


# ----------------------------------------------------------------------------- errors
BAD_CALLS = [
    ("conv", (np.ones((1, 3, 5, 5)), np.ones((4, 2, 3, 3))), {}),  # channel mismatch
    ("conv", (np.ones((1, 4, 5, 5)), np.ones((4, 2, 3, 3))), dict(groups=3)),
    ("conv", (np.ones((1, 4, 5, 5)), np.ones((4, 2, 3, 3))), dict(groups=0)),
    ("conv", (np.ones((1, 4, 5, 5)), np.ones((4, 4, 3))), {}),
    ("conv", (np.ones((1, 4, 2, 2)), np.ones((4, 4, 3, 3))), {}),  # kernel larger than input
    ("conv", (np.ones((1, 4, 5, 5)), np.ones((4, 4, 3, 3))), dict(padding="half")),
    ("conv", (np.ones((1, 4, 5, 5)), np.ones((4, 4, 3, 3))), dict(padding=-1)),
    ("conv", (np.ones((1, 4, 5, 5)), np.ones((4, 4, 3, 3))), dict(stride=(1, 2, 3))),
    ("conv", (np.ones((1, 4, 5, 5)), np.ones((4, 4, 3, 3))), dict(stride=0)),
    ("conv", (np.ones((1, 4, 5, 5)), np.ones((4, 4, 3, 3))), dict(dilation=True)),
    ("conv", (np.ones((1, 4, 5, 5)), np.ones((4, 4, 3, 3)), np.ones(3)), {}),
    ("conv", (np.ones((4, 5)), np.ones((4, 4, 3))), {}),
    ("conv", (np.ones((1, 4, 5)).astype(bool), np.ones((4, 4, 3))), {}),
    ("conv_transpose", (np.ones((1, 4, 5)), np.ones((3, 2, 3))), {}),
    ("conv_transpose", (np.ones((1, 4, 5)), np.ones((4, 2, 3))), dict(output_padding=1)),
    ("conv_transpose", (np.ones((1, 4, 5)), np.ones((4, 2, 3))), dict(padding="same", stride=2, output_padding=1)),
    ("conv_transpose", (np.ones((1, 4, 2)), np.ones((4, 2, 3))), dict(padding=3)),
    ("max_pool", (np.ones((1, 1, 5)), 2), dict(padding="same")),
    ("max_pool", (np.ones((1, 1, 5)), 6), {}),
    ("max_pool", (np.ones((1, 1, 5)), 0), {}),
    ("max_pool", (np.ones((1, 1, 5)), 1), dict(padding=1)),  # windows of padding only
    ("avg_pool", (np.ones((1, 1, 5, 5)), (2, 2, 2)), {}),
    ("kmax_pool", (np.ones((2, 5)), 6), {}),
    ("kmax_pool", (np.ones((2, 5)), 2.0), {}),
    ("linear", (np.ones((2, 5)), np.ones((3, 4))), {}),
    ("linear", (np.ones((2, 5)), np.ones((3, 5)), np.ones(2)), {}),
    ("add", (np.ones((2, 5)), np.ones((5,))), {}),
    ("cross_entropy", (np.ones((2, 5)), np.array([0, 5])), {}),
    ("cross_entropy", (np.ones((2, 5)), np.array([0.0, 1.0])), {}),
    ("cross_entropy", (np.ones((2, 5)), np.array([0, 1, 2])), {}),
    ("softmax", (np.array(1.0),), {}),
    ("global_avg_pool", (np.ones((2, 5)),), {}),
]


@pytest.mark.parametrize("op, args, kw", BAD_CALLS)
def test_errors_match_reference(op, args, kw):
    assert both(op, *args, **kw) is None


def test_grad_shape_errors():
    x, w = np.ones((1, 2, 5)), np.ones((3, 2, 3))
    with pytest.raises(ShapeError) as info:
        B.conv_backward(np.ones((1, 3, 4)), x, w)
    assert info.value.param == "grad_out"
    with pytest.raises(ShapeError):
        B.cross_entropy_backward(np.ones(2), np.ones((2, 3)), np.array([0, 1]))


# ----------------------------------------------------------------------------- dtypes, chunking, plugin
def test_float32_stays_float32():
    rng = np.random.default_rng(10)
    f = np.float32
    x, w, b = (
        rng.standard_normal((2, 4, 6, 6)).astype(f),
        rng.standard_normal((6, 2, 3, 3)).astype(f),
        rng.standard_normal(6).astype(f),
    )
    calls = [
        ("conv", (x, w, b), dict(groups=2, padding="same")),
        ("convolve", (x, w, b), dict(groups=2, stride=2)),
        (
            "conv_transpose",
            (rng.standard_normal((2, 6, 4, 4)).astype(f), w, rng.standard_normal(4).astype(f)),
            dict(groups=2, stride=2, output_padding=1),
        ),
        ("max_pool", (x, 3), dict(stride=2, padding=1, ceil_mode=True)),
        ("avg_pool", (x, 3), dict(stride=2, padding=1, ceil_mode=True)),
        ("global_max_pool", (x,), {}),
        ("global_avg_pool", (x,), {}),
        ("kmax_pool", (x, 3), {}),
        ("relu", (x,), {}),
        ("sigmoid", (x,), {}),
        ("tanh", (x,), {}),
        ("flatten", (x,), {}),
        ("add", (x, x), {}),
        ("softmax", (x,), {}),
        ("linear", (x[:, :, 0, 0], w[:, :, 0, 0].reshape(3, 4)), {}),
        ("cross_entropy", (x[:, :, 0, 0], np.array([1, 3])), {}),
    ]
    for op, args, kw in calls:  # the values in float32 are checked against Higham bounds below
        y = getattr(B, op)(*args, **kw)
        assert y.dtype == np.float32, op
        g = np.ones(np.shape(y), dtype=f)
        for d in getattr(B, op + "_backward")(g, *args, **kw):
            assert d is None or d.dtype == np.float32, op


def test_conformance_quick_profile_passes_with_error_bounds():
    """The backend through the engine: every op, forward and every gradient, float32 and float64,
    within the Higham bounds (exact where the spec requires it)."""
    from convspec.conformance import plugins
    from convspec.conformance.evaluate import evaluate
    from convspec.conformance.run import Plan, applies, plan_cases

    reg = plugins.load(autoload=False)
    cases = [c for c in plan_cases(Plan(profile="quick", seed=3, sources=reg.case_sources)) if applies(c, B)]
    bad = [(r["case_id"], r["checks"]) for r in (evaluate(B, c) for c in cases) if r["status"] != "pass"]
    assert len(cases) > 250 and not bad, bad[:3]


def test_batch_chunking_matches():
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((5, 4, 7, 7)), rng.standard_normal((6, 2, 3, 3))
    small = NumpyBackend()
    small.col_limit = 1  # one sample per chunk
    kw = dict(groups=2, padding=1, stride=2)
    y = B.conv(x, w, **kw)
    assert_close(small.conv(x, w, **kw), y)
    g = rng.standard_normal(y.shape)
    for a, b in zip(small.conv_backward(g, x, w, **kw), B.conv_backward(g, x, w, **kw)):
        assert_close(a, b)
    for a, b in zip(small.conv_transpose_backward(x, g, w, **kw), B.conv_transpose_backward(x, g, w, **kw)):
        assert_close(a, b)


def test_plugin_registration():
    got = []
    numpy_backend.register_backends(register=got.append)
    (be,) = got
    assert be.name == "numpy" and be.version == np.__version__ and be.availability() is None
    assert all(be.supports(op) for op in R.OPS) and be.supports("max_pool_indices") and be.supports("kmax_pool_indices")


def test_independent_of_reference():
    """No module of the backend imports the reference (the error classes come from `convspec`)."""
    root = pathlib.Path(numpy_backend.__file__).parent
    for path in [root / "numpy_backend.py", *sorted((root / "_xp").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert "reference" not in name and name not in ("torch", "cupy"), (path.name, name)
