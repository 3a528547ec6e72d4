"""Every `<op>_backward` of the reference against central finite differences of its forward, float64.

The check is a directional derivative: with L(inputs) = <op(inputs), G> for a random G, and a random
direction v for one input,

    (L(x + h v) - L(x - h v)) / 2h   must equal   <dL/dx, v>   (dL/dx = the op's backward of G).

Tolerance, h = 1e-6: the truncation error of the central difference is h^2/6 * |L'''| ~ 1e-13 for the
smooth ops (zero for the piecewise-linear ones, whose kinks and ties the data keeps more than h away),
and the rounding error is about eps * sum|G * op(x)| / h ~ 2.2e-10 * sum|G * op(x)|. So we allow
1e-6 * |dL/dx| |v| (Cauchy-Schwarz bound of <dL/dx, v>: a relative error of 1e-6 that cannot vanish by
an accidental cancellation) plus 1e-9 * sum|G * op(x)| for rounding. A wrong gradient (a misplaced
index, a missing term) is off by O(1) relative and fails by orders of magnitude.

A full elementwise check (every input element perturbed alone) runs on a few tiny configurations.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    FAST,
    QUICK,
    SEEDS,
    conv_cases,
    distinct_data,
    make_conv_case,
    make_pool_case,
    make_transpose_case,
    pool_cases,
    transpose_cases,
)
from hypothesis import given
from hypothesis import strategies as st

from convspec import reference as R

H = 1e-6
RTOL = 1e-6
ROUNDING = 1e-9


def _loss(fwd, inputs, kwargs, G):
    return float(np.sum(fwd(*inputs, **kwargs) * G))


def _tolerances(fwd, inputs, kwargs, G, grad, v, magnitude=None):
    """magnitude: the size of the terms the forward cancels (default |output * G|); the rounding
    error of a central difference is about eps * magnitude / H."""
    mag = float(np.sum(np.abs(fwd(*inputs, **kwargs) * G))) if magnitude is None else magnitude
    return RTOL * float(np.linalg.norm(grad) * np.linalg.norm(v)) + ROUNDING * mag


def _xent_magnitude(z, labels, G):
    """cross_entropy = mean(lse - z[label]) cancels terms of size |lse| + |z[label]|."""
    lse = np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1)) + z.max(axis=1)
    return float(abs(G) * np.mean(np.abs(lse) + np.abs(z[np.arange(len(labels)), labels])))


def check_backward(fwd, bwd, inputs, kwargs=None, *, diff, rng, G=None, what="", magnitude=None):
    """Directional check of every differentiable input (positions `diff` in `inputs`)."""
    kwargs = kwargs or {}
    out = np.asarray(fwd(*inputs, **kwargs))
    G = rng.standard_normal(out.shape) if G is None else G
    grads = bwd(G, *inputs, **kwargs)
    assert isinstance(grads, tuple) and len(grads) == len(diff), (
        f"{what}: backward returned {type(grads).__name__} of length {len(grads)}, expected {len(diff)} gradients"
    )
    for pos, grad in zip(diff, grads):
        x = inputs[pos]
        if x is None:
            assert grad is None, f"{what}: gradient of an absent input (position {pos}) must be None"
            continue
        grad = np.asarray(grad)
        assert grad.shape == np.shape(x) and grad.dtype == np.float64, (
            f"{what}: gradient {pos} has shape {grad.shape} dtype {grad.dtype}, input {np.shape(x)}"
        )
        v = rng.standard_normal(np.shape(x))
        plus, minus = list(inputs), list(inputs)
        plus[pos], minus[pos] = x + H * v, x - H * v
        fd = (_loss(fwd, plus, kwargs, G) - _loss(fwd, minus, kwargs, G)) / (2 * H)
        an = float(np.sum(grad * v))
        tol = _tolerances(fwd, inputs, kwargs, G, grad, v, magnitude)
        assert abs(fd - an) <= tol, (
            f"{what}: input {pos}: finite difference {fd!r} vs <grad, v> {an!r} "
            f"(|diff| {abs(fd - an):.3e} > tol {tol:.3e})"
        )


def check_backward_elementwise(fwd, bwd, inputs, kwargs=None, *, diff, rng, what=""):
    """Every element of every differentiable input perturbed alone: the whole gradient, element by element."""
    kwargs = kwargs or {}
    out = np.asarray(fwd(*inputs, **kwargs))
    G = rng.standard_normal(out.shape)
    grads = bwd(G, *inputs, **kwargs)
    scale = ROUNDING * float(np.sum(np.abs(out * G)))
    for pos, grad in zip(diff, grads):
        x = inputs[pos]
        if x is None:
            continue
        num = np.zeros(np.shape(x))
        for idx in np.ndindex(*np.shape(x)):
            plus, minus = list(inputs), list(inputs)
            plus[pos], minus[pos] = x.copy(), x.copy()
            plus[pos][idx] += H
            minus[pos][idx] -= H
            num[idx] = (_loss(fwd, plus, kwargs, G) - _loss(fwd, minus, kwargs, G)) / (2 * H)
        np.testing.assert_allclose(
            grad,
            num,
            rtol=RTOL,
            atol=RTOL * float(np.max(np.abs(grad), initial=0)) + scale,
            err_msg=f"{what}: gradient of input {pos}",
        )


def _conv_inputs(case, rng):
    x = rng.standard_normal(case.x_shape)
    w = rng.standard_normal(case.w_shape)
    b = rng.standard_normal(case.w_shape[0]) if case.bias else None
    return [x, w, b]


# ------------------------------------------------------------------------------------- conv family

# Named configurations: every padding form x 1/2/3-D, stride, dilation, groups (hypothesis adds random ones).
CONV_CONFIGS = [
    make_conv_case((2, 3, 9), (4, 3, 3), bias=True, stride=2, padding=1),
    make_conv_case((1, 4, 8), (2, 2, 3), stride=1, padding="same", dilation=2, groups=2),
    make_conv_case((1, 2, 7), (2, 2, 4), bias=True, stride=3, padding="same"),
    make_conv_case((1, 2, 5), (3, 2, 3), bias=True, padding="full", dilation=2),
    make_conv_case(
        (2, 2, 6, 5), (4, 1, 3, 2), bias=True, stride=(2, 1), padding=((1, 0), (0, 2)), dilation=(1, 2), groups=2
    ),
    make_conv_case((1, 3, 5, 6), (3, 3, 2, 3), padding=(1, 2), stride=(1, 2)),
    make_conv_case((1, 2, 6, 6), (2, 2, 3, 3), bias=True, padding="valid", stride=2, dilation=(2, 1)),
    make_conv_case((1, 2, 5, 4), (2, 1, 3, 3), padding="same", stride=2, groups=2),
    make_conv_case((1, 2, 4, 5, 4), (2, 2, 2, 3, 2), bias=True, stride=(1, 2, 1), padding="full"),
    make_conv_case((2, 3, 4, 4, 5), (3, 1, 2, 2, 2), padding=((0, 1), (1, 0), (1, 1)), dilation=(1, 2, 2), groups=3),
]


@pytest.mark.parametrize("op", ["conv", "convolve"])
@pytest.mark.parametrize("case", CONV_CONFIGS, ids=repr)
def test_conv_family_backward_named(op, case):
    rng = np.random.default_rng(0)
    check_backward(
        getattr(R, op),
        getattr(R, op + "_backward"),
        _conv_inputs(case, rng),
        case.kwargs(),
        diff=(0, 1, 2),
        rng=rng,
        what=f"{op} {case}",
    )


@pytest.mark.parametrize("op", ["conv", "convolve"])
@FAST
@given(case=conv_cases(), seed=SEEDS)
def test_conv_family_backward_random(op, case, seed):
    rng = np.random.default_rng(seed)
    check_backward(
        getattr(R, op),
        getattr(R, op + "_backward"),
        _conv_inputs(case, rng),
        case.kwargs(),
        diff=(0, 1, 2),
        rng=rng,
        what=f"{op} {case}",
    )


TRANSPOSE_CONFIGS = [
    make_transpose_case((2, 2, 4), (2, 3, 3), bias=True, stride=2, padding=1, output_padding=1),
    make_transpose_case((1, 2, 4), (2, 1, 3), stride=1, padding=0, output_padding=1, dilation=2),  # dilation > stride
    make_transpose_case(
        (1, 2, 3), (2, 2, 2), stride=2, padding=((1, 0),), output_padding=2, dilation=3
    ),  # n_y-limited adjoint
    make_transpose_case((1, 4, 3), (4, 1, 3), bias=True, stride=2, padding="same", groups=2),
    make_transpose_case((1, 2, 5), (2, 2, 2), padding="full"),
    make_transpose_case(
        (1, 2, 3, 2), (2, 2, 3, 2), bias=True, stride=(2, 3), padding=((1, 0), (0, 1)), output_padding=(1, 2)
    ),
    make_transpose_case(
        (2, 2, 2, 3), (2, 1, 2, 2), stride=2, padding="valid", dilation=(1, 3), output_padding=(0, 2), groups=2
    ),
    make_transpose_case(
        (1, 2, 2, 2, 2), (2, 2, 2, 1, 2), bias=True, stride=(2, 1, 2), padding=(0, 0, 1), output_padding=(1, 0, 0)
    ),
]


@pytest.mark.parametrize("case", TRANSPOSE_CONFIGS, ids=repr)
def test_conv_transpose_backward_named(case):
    rng = np.random.default_rng(1)
    inputs = [
        rng.standard_normal(case.y_shape),
        rng.standard_normal(case.w_shape),
        rng.standard_normal(case.x_shape[1]) if case.bias else None,
    ]
    check_backward(
        R.conv_transpose, R.conv_transpose_backward, inputs, case.kwargs(), diff=(0, 1, 2), rng=rng, what=repr(case)
    )


@FAST
@given(case=transpose_cases(), seed=SEEDS)
def test_conv_transpose_backward_random(case, seed):
    rng = np.random.default_rng(seed)
    inputs = [
        rng.standard_normal(case.y_shape),
        rng.standard_normal(case.w_shape),
        rng.standard_normal(case.x_shape[1]) if case.bias else None,
    ]
    check_backward(
        R.conv_transpose, R.conv_transpose_backward, inputs, case.kwargs(), diff=(0, 1, 2), rng=rng, what=repr(case)
    )


# ------------------------------------------------------------------------------------- pooling

POOL_CONFIGS = [
    make_pool_case((2, 2, 9), 3, stride=2, padding=1),
    make_pool_case((1, 2, 8), 2, stride=3, padding=(1,), ceil_mode=True),
    make_pool_case((1, 1, 7), 3, stride=2, padding=((2, 1),), dilation=2, ceil_mode=True),
    make_pool_case((1, 2, 5, 6), (2, 3), stride=(2, 1), padding=((1, 0), (0, 1)), ceil_mode=True),
    make_pool_case((2, 1, 6, 6), 3, stride=2, padding=1, dilation=(1, 2)),
    make_pool_case((1, 2, 4, 5, 4), 2, stride=(2, 2, 1), padding=(1, 0, 1), ceil_mode=True),
]


@pytest.mark.parametrize("case", POOL_CONFIGS, ids=repr)
def test_max_pool_backward_named(case):
    rng = np.random.default_rng(2)
    check_backward(
        R.max_pool,
        R.max_pool_backward,
        [distinct_data(rng, case.x_shape), case.kernel_size],
        case.kwargs(),
        diff=(0,),
        rng=rng,
        what=repr(case),
    )


@QUICK
@given(case=pool_cases(), seed=SEEDS)
def test_max_pool_backward_random(case, seed):
    rng = np.random.default_rng(seed)
    check_backward(
        R.max_pool,
        R.max_pool_backward,
        [distinct_data(rng, case.x_shape), case.kernel_size],
        case.kwargs(),
        diff=(0,),
        rng=rng,
        what=repr(case),
    )


@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize("case", POOL_CONFIGS, ids=repr)
def test_avg_pool_backward_named(case, count_include_pad):
    rng = np.random.default_rng(3)
    kw = dict(case.kwargs(), count_include_pad=count_include_pad)
    check_backward(
        R.avg_pool,
        R.avg_pool_backward,
        [rng.standard_normal(case.x_shape), case.kernel_size],
        kw,
        diff=(0,),
        rng=rng,
        what=repr(case),
    )


@QUICK
@given(case=pool_cases(), count_include_pad=st.booleans(), seed=SEEDS)
def test_avg_pool_backward_random(case, count_include_pad, seed):
    rng = np.random.default_rng(seed)
    kw = dict(case.kwargs(), count_include_pad=count_include_pad)
    check_backward(
        R.avg_pool,
        R.avg_pool_backward,
        [rng.standard_normal(case.x_shape), case.kernel_size],
        kw,
        diff=(0,),
        rng=rng,
        what=repr(case),
    )


SPATIAL_SHAPES = [(2, 3, 5), (1, 2, 3, 4), (2, 1, 2, 3, 2)]


@pytest.mark.parametrize("shape", SPATIAL_SHAPES)
def test_global_max_pool_backward(shape):
    rng = np.random.default_rng(4)
    check_backward(
        R.global_max_pool, R.global_max_pool_backward, [distinct_data(rng, shape)], diff=(0,), rng=rng, what=str(shape)
    )


@pytest.mark.parametrize("shape", SPATIAL_SHAPES)
def test_global_avg_pool_backward(shape):
    rng = np.random.default_rng(5)
    check_backward(
        R.global_avg_pool, R.global_avg_pool_backward, [rng.standard_normal(shape)], diff=(0,), rng=rng, what=str(shape)
    )


@pytest.mark.parametrize("shape, k", [((7,), 3), ((2, 6), 1), ((2, 3, 8), 5), ((1, 2, 3, 4), 4)])
def test_kmax_pool_backward(shape, k):
    rng = np.random.default_rng(6)
    check_backward(
        R.kmax_pool, R.kmax_pool_backward, [distinct_data(rng, shape), k], diff=(0,), rng=rng, what=f"{shape} k={k}"
    )


# ------------------------------------------------------------------------------------- pointwise, dense, losses


def _away_from_zero(rng, shape):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 2, 3, 2)])
@pytest.mark.parametrize("op", ["relu", "sigmoid", "tanh"])
def test_pointwise_backward(op, shape):
    rng = np.random.default_rng(7)
    x = _away_from_zero(rng, shape) if op == "relu" else 3 * rng.standard_normal(shape)
    check_backward(getattr(R, op), getattr(R, op + "_backward"), [x], diff=(0,), rng=rng, what=f"{op} {shape}")


def test_sigmoid_backward_large_inputs():
    """Both branches of the overflow-safe sigmoid, far out where exp(-x) would overflow in the naive form."""
    rng = np.random.default_rng(8)
    x = np.array([-30.0, -12.0, -1.5, 0.5, 9.0, 25.0])
    check_backward(R.sigmoid, R.sigmoid_backward, [x], diff=(0,), rng=rng, what="sigmoid tails")


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("n, d_in, d_out", [(1, 1, 1), (3, 5, 2), (4, 2, 6)])
def test_linear_backward(n, d_in, d_out, bias):
    rng = np.random.default_rng(9)
    inputs = [
        rng.standard_normal((n, d_in)),
        rng.standard_normal((d_out, d_in)),
        rng.standard_normal(d_out) if bias else None,
    ]
    check_backward(R.linear, R.linear_backward, inputs, diff=(0, 1, 2), rng=rng, what=f"linear {n}x{d_in}->{d_out}")


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), (1, 2, 2, 2, 3)])
def test_flatten_backward(shape):
    rng = np.random.default_rng(10)
    check_backward(R.flatten, R.flatten_backward, [rng.standard_normal(shape)], diff=(0,), rng=rng, what=str(shape))


@pytest.mark.parametrize("shape", [(4,), (2, 3, 5)])
def test_add_backward(shape):
    rng = np.random.default_rng(11)
    check_backward(
        R.add,
        R.add_backward,
        [rng.standard_normal(shape), rng.standard_normal(shape)],
        diff=(0, 1),
        rng=rng,
        what=str(shape),
    )


@pytest.mark.parametrize("shape", [(4,), (3, 5), (2, 3, 4)])
def test_softmax_backward(shape):
    rng = np.random.default_rng(12)
    check_backward(R.softmax, R.softmax_backward, [2 * rng.standard_normal(shape)], diff=(0,), rng=rng, what=str(shape))


@pytest.mark.parametrize("n, k", [(1, 2), (4, 3), (6, 10)])
def test_cross_entropy_backward(n, k):
    rng = np.random.default_rng(13)
    labels = rng.integers(0, k, size=n)
    z, G = 2 * rng.standard_normal((n, k)), rng.standard_normal(())
    check_backward(
        R.cross_entropy,
        R.cross_entropy_backward,
        [z, labels],
        diff=(0,),
        rng=rng,
        G=G,
        what=f"N={n} K={k}",
        magnitude=_xent_magnitude(z, labels, G),
    )


@FAST
@given(
    op=st.sampled_from(["relu", "sigmoid", "tanh", "softmax", "flatten", "global_avg_pool", "global_max_pool"]),
    shape=st.lists(st.integers(1, 4), min_size=3, max_size=5).map(tuple),
    seed=SEEDS,
)
def test_unary_backward_random(op, shape, seed):
    rng = np.random.default_rng(seed)
    x = distinct_data(rng, shape) if op in ("relu", "global_max_pool") else 2 * rng.standard_normal(shape)
    if op == "relu":
        x = x + np.where(x >= 0, 0.1, -0.1)  # at least 0.1 away from the kink
    check_backward(getattr(R, op), getattr(R, op + "_backward"), [x], diff=(0,), rng=rng, what=f"{op} {shape}")


@FAST
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), data=st.data(), seed=SEEDS)
def test_kmax_pool_backward_random(shape, data, seed):
    rng = np.random.default_rng(seed)
    k = data.draw(st.integers(1, shape[-1]), label="k")
    check_backward(
        R.kmax_pool, R.kmax_pool_backward, [distinct_data(rng, shape), k], diff=(0,), rng=rng, what=f"{shape} k={k}"
    )


@FAST
@given(n=st.integers(1, 5), k=st.integers(1, 6), bias=st.booleans(), d_out=st.integers(1, 4), seed=SEEDS)
def test_dense_and_loss_backward_random(n, k, bias, d_out, seed):
    rng = np.random.default_rng(seed)
    inputs = [
        rng.standard_normal((n, k)),
        rng.standard_normal((d_out, k)),
        rng.standard_normal(d_out) if bias else None,
    ]
    check_backward(R.linear, R.linear_backward, inputs, diff=(0, 1, 2), rng=rng, what="linear")
    check_backward(R.add, R.add_backward, [inputs[0], rng.standard_normal((n, k))], diff=(0, 1), rng=rng, what="add")
    z, labels = 3 * inputs[0], rng.integers(0, k, size=n)
    G = rng.standard_normal(())
    check_backward(
        R.cross_entropy,
        R.cross_entropy_backward,
        [z, labels],
        diff=(0,),
        rng=rng,
        G=G,
        what="cross_entropy",
        magnitude=_xent_magnitude(z, labels, G),
    )


def test_cross_entropy_backward_scales_with_grad_out():
    """The incoming scalar gradient multiplies the whole gradient (0-d and 1-element grad_out alike)."""
    rng = np.random.default_rng(14)
    z, y = rng.standard_normal((3, 4)), np.array([0, 3, 1])
    (g1,) = R.cross_entropy_backward(np.float64(1.0), z, y)
    (g3,) = R.cross_entropy_backward(np.array([-2.5]), z, y)
    np.testing.assert_allclose(g3, -2.5 * g1, rtol=1e-15)
    check_backward(
        R.cross_entropy,
        R.cross_entropy_backward,
        [z, y],
        diff=(0,),
        rng=rng,
        G=np.float64(-2.5),
        what="scaled",
        magnitude=_xent_magnitude(z, y, -2.5),
    )


# ------------------------------------------------------------------------------------- elementwise, tiny configs


@pytest.mark.parametrize(
    "op, inputs_fn, kwargs, diff",
    [
        (
            "conv",
            lambda r: [r.standard_normal((1, 2, 5, 4)), r.standard_normal((2, 1, 2, 3)), r.standard_normal(2)],
            dict(stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(2, 1), groups=2),
            (0, 1, 2),
        ),
        (
            "convolve",
            lambda r: [r.standard_normal((2, 1, 6)), r.standard_normal((2, 1, 3)), None],
            dict(padding="same", stride=2),
            (0, 1, 2),
        ),
        (
            "conv_transpose",
            lambda r: [r.standard_normal((1, 2, 3)), r.standard_normal((2, 2, 2)), r.standard_normal(2)],
            dict(stride=1, padding=(1,), output_padding=1, dilation=2),
            (0, 1, 2),
        ),
        (
            "conv_transpose",
            lambda r: [r.standard_normal((1, 2, 2, 2)), r.standard_normal((2, 1, 2, 2)), None],
            dict(stride=2, padding="same", groups=2),
            (0, 1, 2),
        ),
        ("max_pool", lambda r: [distinct_data(r, (1, 2, 5, 5)), 3], dict(stride=2, padding=1, ceil_mode=True), (0,)),
        (
            "avg_pool",
            lambda r: [r.standard_normal((1, 1, 5, 6)), (2, 3)],
            dict(stride=2, padding=(1, 1), ceil_mode=True, count_include_pad=True),
            (0,),
        ),
        (
            "avg_pool",
            lambda r: [r.standard_normal((1, 2, 7)), 3],
            dict(stride=2, padding=((2, 0),), dilation=2, ceil_mode=True),
            (0,),
        ),
        ("softmax", lambda r: [r.standard_normal((2, 4))], {}, (0,)),
        ("cross_entropy", lambda r: [r.standard_normal((3, 4)), np.array([1, 0, 3])], {}, (0,)),
        ("kmax_pool", lambda r: [distinct_data(r, (2, 6)), 3], {}, (0,)),
    ],
)
def test_backward_elementwise_tiny(op, inputs_fn, kwargs, diff):
    rng = np.random.default_rng(15)
    check_backward_elementwise(
        getattr(R, op), getattr(R, op + "_backward"), inputs_fn(rng), kwargs, diff=diff, rng=rng, what=op
    )


def test_every_op_is_covered():
    """Each op in reference.OPS has a gradient test in this module."""
    import inspect
    import sys
    from pathlib import Path

    # the normalization layers' gradients are tested with their other properties
    source = inspect.getsource(sys.modules[__name__])
    norm = (Path(__file__).parent / "test_reference_norm_ops.py").read_text()
    missing = [
        op
        for op in R.OPS
        if f"R.{op}_backward" not in source
        and f'"{op}"' not in source
        and f"check_backward({op}," not in norm
        and f"{op}_backward" not in norm
    ]
    assert not missing, f"ops without a gradient test: {missing}"
