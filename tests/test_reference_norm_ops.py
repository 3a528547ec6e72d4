"""batch_norm (training, inference, running statistics), local_response_norm, dropout and concat: the
reference against the papers' numbers, finite differences, its own literal forms, PyTorch, its error rules,
and the NumPy backend against the reference.

Finite differences (as tests/test_reference_gradients.py): L = <op(inputs), G> for a random G and a random
direction v of one input; (L(x + h v) - L(x - h v)) / 2h must equal <dL/dx, v>. With h = 1e-6 the
truncation error is h^2/6 |L'''| ~ 1e-13 (the data keeps every op smooth: eps > 0, k > 0) and the rounding
error is about eps_64 * M / h ~ 2.2e-10 * M, with M the size of the terms the loss sums (M = sum |G| * the
op's magnitude term below). We allow RTOL * |dL/dx| |v| + ROUNDING * M with RTOL = 1e-6, ROUNDING = 1e-9.

Backend (and PyTorch) vs reference: the Higham-style bound stated in `_bn_bounds`, `_lrn_bounds` and
`_dropout_bound`, charged for both sides: (c gamma_K(u_backend) + c gamma_K(u_64)) * M, where M is the
op's formula evaluated on absolute values (the standard first-order error bound of each summation,
Higham, "Accuracy and Stability of Numerical Algorithms", 2002, section 3.1) and K counts the rounded
operations along the longest path. concat is a selection: exact (bound 0).
"""

from __future__ import annotations

import importlib
import inspect
import math
from fractions import Fraction

import numpy as np
import pytest
from convspec.backends.numpy_backend import NumpyBackend

from convspec.api.errors import DTypeError, ParameterError, ShapeError, SpecError

# the op modules (convspec.reference re-exports functions of the same names)
BN = importlib.import_module("convspec.reference.batch_norm")
CC = importlib.import_module("convspec.reference.concat")
DO = importlib.import_module("convspec.reference.dropout")
LRN = importlib.import_module("convspec.reference.local_response_norm")

H = 1e-6
RTOL = 1e-6
ROUNDING = 1e-9
U64 = 2.0**-53
U32 = 2.0**-24
B = NumpyBackend()
F = Fraction


def gamma_n(n, u):
    return n * u / (1 - n * u)


def frac(a):
    """An object array of Fractions with a's values."""
    return np.vectorize(Fraction, otypes=[object])(np.asarray(a))


# ------------------------------------------------------------------------------------------ error bounds


def _bn_terms(x, gamma, eps):
    """Per-element pieces of the batch-norm bounds, computed in float64 from the inputs:
    s = sqrt(var + eps), X = |x - mu| + mean|x| (the centred value plus the error the mean may carry)."""
    x = np.asarray(x, dtype=np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    s = np.sqrt(var + eps)
    X = np.abs(x - mu) + np.abs(x).mean(axis=axes, keepdims=True)
    return axes, shape, s, X, x.size // x.shape[1]


def _bn_bounds(x, gamma, beta, g, eps, u):
    """Training batch norm, one side's bound per output, for unit roundoff u (m values per channel):
    mu carries gamma_m * mean|x|, the centred value and var a relative gamma_{m+3}, s and xhat a few more:
        |dy|      <= 2 gamma_{m+8} * (|gamma| X/s + |beta|)
        |ddx|     <= 4 gamma_{m+8} * |gamma|/s * (|g| + mean|g| + X/s * mean(|g| X/s))
        |ddgamma| <= 2 gamma_{m+8} * sum |g| X/s,      |ddbeta| <= gamma_m * sum |g|
    """
    axes, shape, s, X, m = _bn_terms(x, gamma, eps)
    ga = np.abs(np.asarray(gamma, dtype=np.float64)).reshape(shape)
    ba = np.abs(np.asarray(beta, dtype=np.float64)).reshape(shape)
    gk = gamma_n(m + 8, u)
    y = 2 * gk * (ga * X / s + ba)
    if g is None:
        return y
    g = np.abs(np.asarray(g, dtype=np.float64))
    mg = g.mean(axis=axes, keepdims=True)
    mgx = (g * X / s).mean(axis=axes, keepdims=True)
    dx = 4 * gk * ga / s * (g + mg + X / s * mgx)
    dgamma = 2 * gk * (g * X / s).sum(axis=axes)
    dbeta = gamma_n(m, u) * g.sum(axis=axes)
    return y, (dx, dgamma, dbeta)


def _bn_inference_bounds(x, gamma, beta, mean, var, g, eps, u):
    """y = gamma (x - mean) / sqrt(var + eps) + beta: |dy| <= gamma_6 (|gamma| (|x| + |mean|)/s + |beta|);
    dx: gamma_4 |g gamma|/s; dgamma: gamma_{m+4} sum |g| (|x| + |mean|)/s; dbeta: gamma_m sum |g|."""
    x = np.asarray(x, dtype=np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m = x.size // x.shape[1]
    s = np.sqrt(np.asarray(var, np.float64) + eps).reshape(shape)
    ga, ba, ma = (np.abs(np.asarray(a, np.float64)).reshape(shape) for a in (gamma, beta, mean))
    y = gamma_n(6, u) * (ga * (np.abs(x) + ma) / s + ba)
    g = np.abs(np.asarray(g, dtype=np.float64))
    return y, (
        gamma_n(4, u) * g * ga / s,
        gamma_n(m + 4, u) * (g * (np.abs(x) + ma) / s).sum(axis=axes),
        gamma_n(m, u) * g.sum(axis=axes),
    )


def _running_bounds(rm, rv, x, momentum, u):
    """new_mean: gamma_{m+4} ((1-mom)|rm| + mom mean|x|); new_var: gamma_{m+6} ((1-mom) rv + mom sum X^2/(m-1))."""
    axes, shape, _, X, m = _bn_terms(x, np.ones(np.shape(x)[1]), 0.0)
    mean_b = gamma_n(m + 4, u) * ((1 - momentum) * np.abs(rm) + momentum * np.abs(np.asarray(x, float)).mean(axis=axes))
    var_b = gamma_n(m + 6, u) * ((1 - momentum) * np.abs(rv) + momentum * (X**2).sum(axis=axes) / (m - 1))
    return mean_b, var_b


def _lrn_bounds(x, g, size, alpha, beta, k, u):
    """D = k + alpha S (S: a sum of `size` non-negative squares) has relative error gamma_{size+2}; D^beta adds
    beta times that plus the pow's rounding (charged 8u, like the spec's transcendental ops):
        |dy|  <= ((|beta| + 2) gamma_{size+6} + 16u) |y|
        |ddx| <= ((|beta| + 2) gamma_{2 size+8} + 32u) (|g| D^-beta + 2 alpha |beta| |x| sum_c |g_c x_c| D_c^-(beta+1))
    """
    x = np.asarray(x, dtype=np.float64)
    D = LRN._denominators(x, size, alpha, k)
    y = ((abs(beta) + 2) * gamma_n(size + 6, u) + 16 * u) * np.abs(x) / D**beta
    if g is None:
        return y
    g = np.abs(np.asarray(g, dtype=np.float64))
    t = LRN._window_sums(g * np.abs(x) / D ** (beta + 1), (size - 1) // 2, size // 2)
    mag = g / D**beta + 2 * alpha * abs(beta) * np.abs(x) * t
    return y, ((abs(beta) + 2) * gamma_n(2 * size + 8, u) + 32 * u) * mag


def _dropout_bound(x, keep, p, u):
    """x * keep / (1 - p): at most three roundings (1 - p, or 1/(1 - p), and the products): gamma_3 |y|."""
    return gamma_n(3, u) * np.abs(np.asarray(x, np.float64)) * np.asarray(keep, np.float64) / (1 - p)


def assert_within(got, want, bound, what):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = np.abs(got - want)
    bad = ~(err <= bound)
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - bound, -np.inf)), err.shape)
        pytest.fail(f"{what}: at {i}: got {got[i]!r}, want {want[i]!r}, |err| {err[i]:.3e} > bound {bound[i]:.3e}")


# ------------------------------------------------------------------------------------------ finite differences


def _loss(fwd, inputs, kwargs, G):
    return float(np.sum(np.asarray(fwd(*inputs, **kwargs), dtype=np.float64) * G))


def check_backward(fwd, bwd, inputs, kwargs, *, diff, rng, magnitude=None, what=""):
    """Directional check of every differentiable input (positions `diff`); magnitude(G) -> M (default
    sum |G * op(x)|), the size of the terms the loss sums, for the rounding allowance."""
    out = np.asarray(fwd(*inputs, **kwargs))
    G = rng.standard_normal(out.shape)
    grads = bwd(G, *inputs, **kwargs)
    assert isinstance(grads, tuple) and len(grads) == len(diff), f"{what}: {len(grads)} gradients, want {len(diff)}"
    M = float(np.sum(np.abs(G * out))) if magnitude is None else magnitude(G)
    for pos, grad in zip(diff, grads):
        x = inputs[pos]
        grad = np.asarray(grad)
        assert grad.shape == np.shape(x) and grad.dtype == np.float64, (
            f"{what}: gradient {pos}: {grad.shape} {grad.dtype}"
        )
        v = rng.standard_normal(np.shape(x))
        plus, minus = list(inputs), list(inputs)
        plus[pos], minus[pos] = x + H * v, x - H * v
        fd = (_loss(fwd, plus, kwargs, G) - _loss(fwd, minus, kwargs, G)) / (2 * H)
        an = float(np.sum(grad * v))
        tol = RTOL * float(np.linalg.norm(grad) * np.linalg.norm(v)) + ROUNDING * M
        assert abs(fd - an) <= tol, f"{what}: input {pos}: finite difference {fd!r} vs <grad, v> {an!r} (tol {tol:.3e})"


def check_backward_elementwise(fwd, bwd, inputs, kwargs, *, diff, rng, what=""):
    """Every element of every differentiable input perturbed alone."""
    out = np.asarray(fwd(*inputs, **kwargs))
    G = rng.standard_normal(out.shape)
    grads = bwd(G, *inputs, **kwargs)
    scale = ROUNDING * float(np.sum(np.abs(out * G)) + np.sum(np.abs(G)))
    for pos, grad in zip(diff, grads):
        x = inputs[pos]
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


BN_SHAPES = [(6, 3), (2, 3, 5), (2, 2, 3, 4), (1, 2, 2, 3, 2), (4, 1, 1, 1)]
LRN_SHAPES = [(2, 6), (2, 6, 3), (1, 5, 2, 3), (1, 4, 2, 2, 2)]
LRN_SIZES = [1, 2, 3, 4, 5, 7]


def _bn_data(rng, shape, offset=2.0):
    x = offset + rng.standard_normal(shape)
    c = shape[1]
    return x, 0.5 + rng.random(c), rng.standard_normal(c)


# ------------------------------------------------------------------------------------------ papers' numbers


def test_lrn_defaults_are_alexnets():
    """Krizhevsky, Sutskever & Hinton 2012, section 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75."""
    assert (LRN.ALEXNET_SIZE, LRN.ALEXNET_K, LRN.ALEXNET_ALPHA, LRN.ALEXNET_BETA) == (5, 2.0, 1e-4, 0.75)
    for fn in (LRN.local_response_norm, LRN.local_response_norm_literal, B.local_response_norm):
        params = inspect.signature(fn).parameters
        assert (params["k"].default, params["alpha"].default, params["beta"].default) == (2.0, 1e-4, 0.75)


def test_lrn_alexnet_worked_values():
    """Channels a = 1..7 at one position, AlexNet's constants: b_c = a_c / (2 + 1e-4 * S_c)^0.75 with S_c the
    sum of squares of channels max(0, c-2) .. min(6, c+2), alpha not divided by n (the paper's formula)."""
    a = np.arange(1.0, 8.0).reshape(1, 7)
    S = [
        1 + 4 + 9,
        1 + 4 + 9 + 16,
        1 + 4 + 9 + 16 + 25,
        4 + 9 + 16 + 25 + 36,
        9 + 16 + 25 + 36 + 49,
        16 + 25 + 36 + 49,
        25 + 36 + 49,
    ]
    want = [(c + 1) / (2 + 1e-4 * s) ** 0.75 for c, s in enumerate(S)]
    y = LRN.local_response_norm(a, 5)
    np.testing.assert_allclose(y[0], want, rtol=4 * U64 * 8)
    # exactly, with beta = 1: b_3 = 4 / (2 + 90/10^4)
    y1 = LRN.local_response_norm(frac(a), 5, alpha=F(1, 10**4), beta=1)
    assert y1[0, 3] == F(4) / (2 + F(90, 10**4))


def test_lrn_even_window_has_one_more_channel_before():
    """size = 4: channel c sums c-2 .. c+1 (PyTorch's padding size//2 before, (size-1)//2 after)."""
    x = frac(np.array([[1, 10, 100, 1000, 10000]]))
    y = LRN.local_response_norm(x, 4, alpha=1, beta=1, k=1)
    sq = [v * v for v in (1, 10, 100, 1000, 10000)]
    for c in range(5):
        s = sum(sq[max(0, c - 2) : min(4, c + 1) + 1])
        assert y[0, c] == F(int(x[0, c])) / (1 + s), c
    assert [list(LRN.window(c, 4, 5)) for c in range(5)] == [[0, 1], [0, 1, 2], [0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4]]


def test_dropout_alexnet_half():
    """AlexNet's dropout (Krizhevsky et al. 2012, section 4.2; lecture seed 001 "AlexNet (2012)": ReLU, dropout):
    p = 0.5, so a kept value doubles (inverted dropout) and a dropped one is 0."""
    x = frac(np.array([[1, -2, 3, 5]]))
    keep = np.array([[1, 0, 1, 1]])
    assert list(DO.dropout(x, keep, p=F(1, 2))[0]) == [2, 0, 6, 10]
    assert list(DO.dropout_backward(frac(np.ones((1, 4))), x, keep, p=0.5)[0][0]) == [2, 0, 2, 2]


def test_concat_googlenet_inception_3a():
    """GoogLeNet's inception (3a) (Szegedy et al. 2015, Table 1; the paper linked from lecture seed 001,
    "GoogLeNet (2014)"): 1x1 (64), 3x3 (128), 5x5 (32) and pool-proj (32) branches concatenate to 256 channels
    at 28x28."""
    rng = np.random.default_rng(0)
    branches = [rng.standard_normal((1, c, 28, 28)) for c in (64, 128, 32, 32)]
    y = CC.concat(branches)
    assert y.shape == (1, 256, 28, 28)
    assert np.array_equal(y[:, 192:224], branches[2])


def test_batch_norm_paper_statistics_exact():
    """Ioffe & Szegedy 2015, Algorithm 1 (biased batch variance) and Algorithm 2 (running variance takes
    m/(m-1) of it). One channel holding 1, 2, 3, 4 (m = 4): mu = 5/2, var = 5/4, unbiased 5/3. Running stats
    (0, 1) with momentum 1/10: mean 1/4, var 9/10 + 1/6 = 16/15."""
    x = frac(np.array([[[1, 2]], [[3, 4]]]))  # (N=2, C=1, L=2)
    for stats in (BN.batch_norm_stats, BN.batch_norm_stats_literal):
        assert stats(x) == (F(5, 2), F(5, 4))
        assert stats(x, unbiased=True) == (F(5, 2), F(5, 3))
    for run in (BN.batch_norm_running_stats, BN.batch_norm_running_stats_literal):
        mean, var = run(frac([0]), frac([1]), x, momentum=F(1, 10))
        assert (mean[0], var[0]) == (F(1, 4), F(16, 15)) and mean.dtype == object
    # the normalised output: xhat = (x - 5/2) / sqrt(5/4 + eps)
    y = BN.batch_norm(np.array([[[1.0, 2.0]], [[3.0, 4.0]]]), [1.0], [0.0], eps=1e-5)
    np.testing.assert_allclose(y.ravel(), (np.arange(1, 5) - 2.5) / math.sqrt(1.25 + 1e-5), rtol=8 * U64)


def test_batch_norm_normalises():
    rng = np.random.default_rng(1)
    x, _, _ = _bn_data(rng, (8, 3, 4, 4), offset=5.0)
    y = BN.batch_norm(x, np.ones(3), np.zeros(3), eps=1e-5)
    var = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-13)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), var / (var + 1e-5), rtol=1e-12)


def test_batch_norm_single_value_per_channel():
    """m = 1: the biased variance is 0 and y = beta (defined; PyTorch rejects it in training mode because its
    running update needs m >= 2, which batch_norm_running_stats enforces as a ShapeError)."""
    y = BN.batch_norm(np.array([[3.0, -1.0]]), [2.0, 2.0], [0.5, -0.5])
    assert np.array_equal(y, [[0.5, -0.5]])
    dx, dgamma, dbeta = BN.batch_norm_backward(np.array([[1.0, 2.0]]), np.array([[3.0, -1.0]]), [2.0, 2.0], [0.5, 0.5])
    assert np.array_equal(dx, [[0.0, 0.0]]) and np.array_equal(dgamma, [0.0, 0.0]) and np.array_equal(dbeta, [1.0, 2.0])


# ------------------------------------------------------------------------------------------ finite differences


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("eps", [1e-5, 0.5])
def test_batch_norm_gradients(shape, eps):
    rng = np.random.default_rng(abs(hash((shape, eps))) % 2**32)
    x, gamma, beta = _bn_data(rng, shape)
    _, shp, s, X, _ = _bn_terms(x, gamma, eps)

    def mag(G):
        return float(np.sum(np.abs(G) * (np.abs(gamma).reshape(shp) * X / s + np.abs(beta).reshape(shp))))

    check_backward(
        BN.batch_norm,
        BN.batch_norm_backward,
        [x, gamma, beta],
        {"eps": eps},
        diff=(0, 1, 2),
        rng=rng,
        magnitude=mag,
        what=f"batch_norm {shape}",
    )


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_inference_gradients(shape):
    rng = np.random.default_rng(len(shape) * 7 + shape[0])
    x, gamma, beta = _bn_data(rng, shape)
    mean, var = rng.standard_normal(shape[1]), 0.2 + rng.random(shape[1])

    def fwd(x, gamma, beta, **kw):
        return BN.batch_norm_inference(x, gamma, beta, mean, var, **kw)

    def bwd(g, x, gamma, beta, **kw):
        return BN.batch_norm_inference_backward(g, x, gamma, beta, mean, var, **kw)

    check_backward(fwd, bwd, [x, gamma, beta], {"eps": 1e-3}, diff=(0, 1, 2), rng=rng, what=f"bn inference {shape}")


@pytest.mark.parametrize("shape", LRN_SHAPES)
@pytest.mark.parametrize("size", LRN_SIZES)
def test_lrn_gradients(shape, size):
    rng = np.random.default_rng(size * 31 + len(shape))
    x = rng.standard_normal(shape)
    for kw in ({"alpha": 0.4, "beta": 0.75, "k": 1.3}, {"alpha": 2.0, "beta": -0.6, "k": 0.5}, {}):
        check_backward(
            LRN.local_response_norm,
            LRN.local_response_norm_backward,
            [x, size],
            kw,
            diff=(0,),
            rng=rng,
            what=f"lrn {shape} size={size} {kw}",
        )


def test_dropout_and_concat_gradients():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 5))
    keep = rng.integers(0, 2, x.shape)

    def fwd(x, p):
        return DO.dropout(x, keep, p=p)

    def bwd(g, x, p):
        return DO.dropout_backward(g, x, keep, p=p)

    check_backward(fwd, bwd, [x, 0.3], {}, diff=(0,), rng=rng, what="dropout")
    xs = [rng.standard_normal((2, c, 3)) for c in (1, 4, 2)]
    for axis in (1, 0, 2, -1):
        ys = [np.moveaxis(a, 1, axis) for a in xs]
        check_backward(
            lambda *a: CC.concat(list(a), axis=axis),
            lambda g, *a: CC.concat_backward(g, list(a), axis=axis),
            ys,
            {},
            diff=(0, 1, 2),
            rng=rng,
            what=f"concat axis={axis}",
        )


def test_gradients_elementwise_tiny():
    rng = np.random.default_rng(9)
    x, gamma, beta = _bn_data(rng, (2, 2, 3), offset=0.5)
    check_backward_elementwise(
        BN.batch_norm,
        BN.batch_norm_backward,
        [x, gamma, beta],
        {"eps": 1e-3},
        diff=(0, 1, 2),
        rng=rng,
        what="batch_norm",
    )
    for size in (2, 3, 4):
        check_backward_elementwise(
            LRN.local_response_norm,
            LRN.local_response_norm_backward,
            [rng.standard_normal((1, 5, 2)), size],
            {"alpha": 0.7, "k": 1.0},
            diff=(0,),
            rng=rng,
            what=f"lrn size={size}",
        )
    keep = np.array([[1, 0, 1], [0, 1, 1]])
    check_backward_elementwise(
        lambda x: DO.dropout(x, keep, p=0.25),
        lambda g, x: DO.dropout_backward(g, x, keep, p=0.25),
        [rng.standard_normal((2, 3))],
        {},
        diff=(0,),
        rng=rng,
        what="dropout",
    )
    check_backward_elementwise(
        lambda a, b: CC.concat([a, b]),
        lambda g, a, b: CC.concat_backward(g, [a, b]),
        [rng.standard_normal((1, 2, 2)), rng.standard_normal((1, 1, 2))],
        {},
        diff=(0, 1),
        rng=rng,
        what="concat",
    )


# ------------------------------------------------------------------------------------------ literal == fast


def _eq_exact(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype == object and (a == b).all(), what


def test_literal_equals_fast_exactly_on_fractions():
    rng = np.random.default_rng(2)
    for shape in [(3, 2), (2, 3, 2), (1, 2, 2, 2), (2, 1, 1, 2, 2)]:
        x = frac(rng.integers(-5, 6, shape)) / 3
        for unbiased in (False, True):
            for a, b in zip(
                BN.batch_norm_stats(x, unbiased=unbiased), BN.batch_norm_stats_literal(x, unbiased=unbiased)
            ):
                _eq_exact(a, b, f"stats {shape} unbiased={unbiased}")
        rm, rv = frac(rng.integers(-3, 4, shape[1])), frac(rng.integers(0, 4, shape[1]))
        for a, b in zip(
            BN.batch_norm_running_stats(rm, rv, x, momentum=F(1, 3)),
            BN.batch_norm_running_stats_literal(rm, rv, x, momentum=F(1, 3)),
        ):
            _eq_exact(a, b, f"running stats {shape}")
    for shape in LRN_SHAPES:
        x = frac(rng.integers(-4, 5, shape)) / 2
        g = frac(rng.integers(-3, 4, shape))
        for size in LRN_SIZES:
            for beta in (1, 2, 0, -1):
                kw = {"alpha": F(1, 7), "beta": beta, "k": F(3, 2)}
                _eq_exact(
                    LRN.local_response_norm(x, size, **kw),
                    LRN.local_response_norm_literal(x, size, **kw),
                    f"lrn {shape} {size} {beta}",
                )
                _eq_exact(
                    LRN.local_response_norm_backward(g, x, size, **kw)[0],
                    LRN.local_response_norm_backward_literal(g, x, size, **kw)[0],
                    f"lrn bwd {shape} {size} {beta}",
                )
    x = frac(rng.integers(-9, 10, (2, 3, 4)))
    keep = rng.integers(0, 2, x.shape).astype(bool)
    _eq_exact(DO.dropout(x, keep, p=F(2, 5)), DO.dropout_literal(x, keep, p=F(2, 5)), "dropout")
    assert DO.dropout(x, keep, p=F(2, 5))[keep][0] == x[keep][0] * F(5, 3)
    _eq_exact(
        DO.dropout_backward(x, x, keep, p=0.5)[0], DO.dropout_backward_literal(x, x, keep, p=0.5)[0], "dropout bwd"
    )
    xs = [frac(rng.integers(-9, 10, (2, c, 3))) for c in (2, 0, 3)]
    for axis in (1, -2, 0, 2):
        ys = [np.moveaxis(a, 1, axis) for a in xs]
        _eq_exact(CC.concat(ys, axis=axis), CC.concat_literal(ys, axis=axis), f"concat {axis}")
    g = frac(rng.integers(-9, 10, (2, 5, 3)))
    for a, b in zip(CC.concat_backward(g, xs), CC.concat_backward_literal(g, xs)):
        _eq_exact(a, b, "concat bwd")


def test_literal_equals_fast_float64():
    rng = np.random.default_rng(3)
    for shape in BN_SHAPES:
        x, gamma, beta = _bn_data(rng, shape)
        g = rng.standard_normal(shape)
        y_b, grad_b = _bn_bounds(x, gamma, beta, g, 1e-5, U64)
        assert_within(BN.batch_norm_literal(x, gamma, beta), BN.batch_norm(x, gamma, beta), 2 * y_b, "bn literal")
        for a, b, bd in zip(
            BN.batch_norm_backward_literal(g, x, gamma, beta), BN.batch_norm_backward(g, x, gamma, beta), grad_b
        ):
            assert_within(a, b, 2 * bd, f"bn backward literal {shape}")
        mean, var = rng.standard_normal(shape[1]), rng.random(shape[1])
        args = (x, gamma, beta, mean, var)
        np.testing.assert_allclose(
            BN.batch_norm_inference_literal(*args), BN.batch_norm_inference(*args), rtol=1e-14, atol=1e-14
        )
        for a, b in zip(BN.batch_norm_inference_backward_literal(g, *args), BN.batch_norm_inference_backward(g, *args)):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
        if shape[0] * int(np.prod(shape[2:])) > 1:
            for a, b in zip(
                BN.batch_norm_running_stats_literal(mean, var, x), BN.batch_norm_running_stats(mean, var, x)
            ):
                np.testing.assert_allclose(a, b, rtol=1e-14)
    for shape in LRN_SHAPES:
        x, g = rng.standard_normal(shape), rng.standard_normal(shape)
        for size in LRN_SIZES:
            kw = {"alpha": 0.3, "beta": 0.75, "k": 2.0}
            # the same sums in the same order: only the pow may differ (by an ulp)
            np.testing.assert_allclose(
                LRN.local_response_norm_literal(x, size, **kw),
                LRN.local_response_norm(x, size, **kw),
                rtol=4 * U64,
                atol=0,
            )
            np.testing.assert_allclose(
                LRN.local_response_norm_backward_literal(g, x, size, **kw)[0],
                LRN.local_response_norm_backward(g, x, size, **kw)[0],
                rtol=1e-14,
                atol=1e-15,
            )
    x = rng.standard_normal((2, 3, 4))
    keep = rng.integers(0, 2, x.shape)
    assert np.array_equal(DO.dropout_literal(x, keep, p=0.1), DO.dropout(x, keep, p=0.1))
    assert np.array_equal(CC.concat_literal([x, x[:, :1]]), CC.concat([x, x[:, :1]]))


# ------------------------------------------------------------------------------------------ PyTorch


def _torch():
    t = pytest.importorskip("torch")
    return t, t.nn.functional


def _leaf(t, a):
    return t.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


@pytest.mark.parametrize("shape", [s for s in BN_SHAPES if s[0] * int(np.prod(s[2:])) > 1])
def test_batch_norm_against_torch(shape):
    t, Fn = _torch()
    rng = np.random.default_rng(11)
    x, gamma, beta = _bn_data(rng, shape, offset=3.0)
    g = rng.standard_normal(shape)
    eps = 1e-5
    xt, wt, bt = _leaf(t, x), _leaf(t, gamma), _leaf(t, beta)
    yt = Fn.batch_norm(xt, None, None, wt, bt, training=True, eps=eps)
    yt.backward(t.tensor(g))
    y_b, grad_b = _bn_bounds(x, gamma, beta, g, eps, U64)
    assert_within(yt.detach().numpy(), BN.batch_norm(x, gamma, beta, eps=eps), 2 * y_b, "torch batch_norm")
    for got, want, bd, n in zip(
        (xt.grad, wt.grad, bt.grad),
        BN.batch_norm_backward(g, x, gamma, beta, eps=eps),
        grad_b,
        ("dx", "dgamma", "dbeta"),
    ):
        assert_within(got.numpy(), want, 2 * bd, f"torch batch_norm {n}")
    # running statistics: torch updates running_mean/var in place with the unbiased variance, momentum 0.1
    rm, rv = rng.standard_normal(shape[1]), rng.random(shape[1])
    rmt, rvt = t.tensor(rm), t.tensor(rv)
    Fn.batch_norm(t.tensor(x), rmt, rvt, None, None, training=True, momentum=0.1, eps=eps)
    mb, vb = _running_bounds(rm, rv, x, 0.1, U64)
    new_mean, new_var = BN.batch_norm_running_stats(rm, rv, x, momentum=0.1)
    assert_within(rmt.numpy(), new_mean, 2 * mb, "torch running_mean")
    assert_within(rvt.numpy(), new_var, 2 * vb, "torch running_var")
    # inference mode: the given statistics
    xt, wt, bt = _leaf(t, x), _leaf(t, gamma), _leaf(t, beta)
    yt = Fn.batch_norm(xt, t.tensor(rm), t.tensor(rv), wt, bt, training=False, eps=eps)
    yt.backward(t.tensor(g))
    y_b, grad_b = _bn_inference_bounds(x, gamma, beta, rm, rv, g, eps, U64)
    assert_within(
        yt.detach().numpy(), BN.batch_norm_inference(x, gamma, beta, rm, rv, eps=eps), 2 * y_b, "torch bn eval"
    )
    for got, want, bd in zip(
        (xt.grad, wt.grad, bt.grad), BN.batch_norm_inference_backward(g, x, gamma, beta, rm, rv, eps=eps), grad_b
    ):
        assert_within(got.numpy(), want, 2 * bd, "torch bn eval backward")


def test_torch_rejects_single_value_running_stats_and_so_do_we():
    t, Fn = _torch()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        Fn.batch_norm(t.zeros(1, 3), t.zeros(3), t.ones(3), training=True)
    with pytest.raises(ShapeError) as e:
        BN.batch_norm_running_stats(np.zeros(3), np.ones(3), np.zeros((1, 3)))
    assert e.value.param == "x" and "m - 1" in e.value.rule


@pytest.mark.parametrize("shape", [s for s in LRN_SHAPES if len(s) >= 3])
@pytest.mark.parametrize("size", LRN_SIZES)
def test_lrn_against_torch(shape, size):
    """F.local_response_norm divides alpha by size (an average of the squares): pass alpha * size to undo it.
    Its window pads size//2 before and (size-1)//2 after: the spec's, also for even sizes."""
    t, Fn = _torch()
    rng = np.random.default_rng(size)
    x, g = 2 * rng.standard_normal(shape), rng.standard_normal(shape)
    alpha, beta, k = 0.3, 0.75, 1.5
    xt = _leaf(t, x)
    yt = Fn.local_response_norm(xt, size, alpha=alpha * size, beta=beta, k=k)
    yt.backward(t.tensor(g))
    # torch's extra roundings (the average, alpha*size) are charged as 4 more operations on D
    y_b, dx_b = _lrn_bounds(x, g, size + 4, alpha, beta, k, U64)
    assert_within(
        yt.detach().numpy(), LRN.local_response_norm(x, size, alpha=alpha, beta=beta, k=k), 2 * y_b, "torch lrn"
    )
    assert_within(
        xt.grad.numpy(),
        LRN.local_response_norm_backward(g, x, size, alpha=alpha, beta=beta, k=k)[0],
        2 * dx_b,
        "torch lrn backward",
    )


def test_dropout_and_concat_against_torch():
    """F.dropout draws its own mask; the spec's semantics y = x * keep / (1 - p) are checked through torch
    autograd of that expression (PyTorch's documented scaling 1/(1 - p))."""
    t, _ = _torch()
    rng = np.random.default_rng(4)
    x, g = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    keep = rng.integers(0, 2, x.shape)
    for p in (0.0, 0.1, 0.5, 0.9):
        xt = _leaf(t, x)
        yt = xt * t.tensor(keep, dtype=t.float64) / (1 - p)
        yt.backward(t.tensor(g))
        bd = _dropout_bound(x, keep, p, U64)
        assert_within(yt.detach().numpy(), DO.dropout(x, keep, p=p), 2 * bd, f"torch dropout p={p}")
        assert_within(
            xt.grad.numpy(),
            DO.dropout_backward(g, x, keep, p=p)[0],
            2 * _dropout_bound(g, keep, p, U64),
            f"torch dropout backward p={p}",
        )
    xs = [rng.standard_normal((2, c, 3)) for c in (1, 3, 2)]
    for axis in (1, 0, 2, -1):
        ys = [np.moveaxis(a, 1, axis) for a in xs]
        ts = [_leaf(t, a) for a in ys]
        out = t.cat(ts, dim=axis)
        go = rng.standard_normal(tuple(out.shape))
        out.backward(t.tensor(go))
        assert np.array_equal(out.detach().numpy(), CC.concat(ys, axis=axis))
        for tt, d in zip(ts, CC.concat_backward(go, ys, axis=axis)):
            assert np.array_equal(tt.grad.numpy(), d)


# ------------------------------------------------------------------------------------------ errors


def _x4():
    return np.ones((2, 3, 2, 2))


ERRORS = [
    # (what, call(ops), error class, parameter named)
    ("bn x 1-d", lambda o: o.batch_norm(np.ones(3), np.ones(3), np.zeros(3)), ShapeError, "x"),
    ("bn x 6-d", lambda o: o.batch_norm(np.ones((1, 1, 1, 1, 1, 1)), [1.0], [0.0]), ShapeError, "x"),
    ("bn empty batch", lambda o: o.batch_norm(np.ones((0, 3)), np.ones(3), np.zeros(3)), ShapeError, "x"),
    ("bn gamma shape", lambda o: o.batch_norm(_x4(), np.ones(4), np.zeros(3)), ShapeError, "gamma"),
    ("bn beta 2-d", lambda o: o.batch_norm(_x4(), np.ones(3), np.zeros((3, 1))), ShapeError, "beta"),
    ("bn eps 0", lambda o: o.batch_norm(_x4(), np.ones(3), np.zeros(3), eps=0), ParameterError, "eps"),
    ("bn eps bool", lambda o: o.batch_norm(_x4(), np.ones(3), np.zeros(3), eps=True), ParameterError, "eps"),
    ("bn eps nan", lambda o: o.batch_norm(_x4(), np.ones(3), np.zeros(3), eps=float("nan")), ParameterError, "eps"),
    ("bn eps str", lambda o: o.batch_norm(_x4(), np.ones(3), np.zeros(3), eps="1e-5"), ParameterError, "eps"),
    ("bn x strings", lambda o: o.batch_norm(np.array([["a", "b"]]), np.ones(2), np.zeros(2)), DTypeError, "x"),
    (
        "bn grad shape",
        lambda o: o.batch_norm_backward(np.ones((2, 3)), _x4(), np.ones(3), np.zeros(3)),
        ShapeError,
        "grad_out",
    ),
    (
        "bn eval var < 0",
        lambda o: o.batch_norm_inference(_x4(), np.ones(3), np.zeros(3), np.zeros(3), -np.ones(3)),
        ParameterError,
        "var",
    ),
    (
        "bn eval mean shape",
        lambda o: o.batch_norm_inference(_x4(), np.ones(3), np.zeros(3), np.zeros(2), np.ones(3)),
        ShapeError,
        "mean",
    ),
    ("running m = 1", lambda o: o.batch_norm_running_stats(np.zeros(3), np.ones(3), np.ones((1, 3))), ShapeError, "x"),
    (
        "running m = 1, 2-d spatial",
        lambda o: o.batch_norm_running_stats(np.zeros(3), np.ones(3), np.ones((1, 3, 1, 1))),
        ShapeError,
        "x",
    ),
    (
        "running momentum > 1",
        lambda o: o.batch_norm_running_stats(np.zeros(3), np.ones(3), _x4(), momentum=1.5),
        ParameterError,
        "momentum",
    ),
    (
        "running momentum None",
        lambda o: o.batch_norm_running_stats(np.zeros(3), np.ones(3), _x4(), momentum=None),
        ParameterError,
        "momentum",
    ),
    (
        "running var < 0",
        lambda o: o.batch_norm_running_stats(np.zeros(3), -np.ones(3), _x4()),
        ParameterError,
        "running_var",
    ),
    (
        "running mean shape",
        lambda o: o.batch_norm_running_stats(np.zeros(2), np.ones(3), _x4()),
        ShapeError,
        "running_mean",
    ),
    ("lrn size 0", lambda o: o.local_response_norm(_x4(), 0), ParameterError, "size"),
    ("lrn size float", lambda o: o.local_response_norm(_x4(), 3.0), ParameterError, "size"),
    ("lrn size bool", lambda o: o.local_response_norm(_x4(), True), ParameterError, "size"),
    ("lrn k 0", lambda o: o.local_response_norm(_x4(), 3, k=0), ParameterError, "k"),
    ("lrn alpha < 0", lambda o: o.local_response_norm(_x4(), 3, alpha=-1e-4), ParameterError, "alpha"),
    ("lrn beta inf", lambda o: o.local_response_norm(_x4(), 3, beta=float("inf")), ParameterError, "beta"),
    ("lrn x 1-d", lambda o: o.local_response_norm(np.ones(4), 3), ShapeError, "x"),
    ("lrn grad shape", lambda o: o.local_response_norm_backward(np.ones(3), _x4(), 3), ShapeError, "grad_out"),
    ("dropout p = 1", lambda o: o.dropout(_x4(), np.ones((2, 3, 2, 2)), p=1), ParameterError, "p"),
    ("dropout p < 0", lambda o: o.dropout(_x4(), np.ones((2, 3, 2, 2)), p=-0.1), ParameterError, "p"),
    ("dropout p bool", lambda o: o.dropout(_x4(), np.ones((2, 3, 2, 2)), p=False), ParameterError, "p"),
    ("dropout keep shape", lambda o: o.dropout(_x4(), np.ones((2, 3, 2)), p=0.5), ShapeError, "keep"),
    ("dropout keep 0.5", lambda o: o.dropout(_x4(), np.full((2, 3, 2, 2), 0.5), p=0.5), ParameterError, "keep"),
    ("dropout keep 2", lambda o: o.dropout(_x4(), np.full((2, 3, 2, 2), 2), p=0.5), ParameterError, "keep"),
    ("dropout keep str", lambda o: o.dropout(np.ones(2), np.array(["1", "0"]), p=0.5), DTypeError, "keep"),
    (
        "dropout grad shape",
        lambda o: o.dropout_backward(np.ones(3), np.ones(2), np.ones(2), p=0.5),
        ShapeError,
        "grad_out",
    ),
    ("concat not a list", lambda o: o.concat(np.ones((2, 3))), ParameterError, "xs"),
    ("concat empty", lambda o: o.concat([]), ParameterError, "xs"),
    ("concat dims", lambda o: o.concat([np.ones((2, 3, 4)), np.ones((2, 3, 5))]), ShapeError, "xs[1]"),
    ("concat ndim", lambda o: o.concat([np.ones((2, 3, 4)), np.ones((2, 3))]), ShapeError, "xs[1]"),
    ("concat 0-d", lambda o: o.concat([np.float64(1.0)], axis=0), ShapeError, "xs[0]"),
    ("concat axis", lambda o: o.concat([np.ones((2, 3))], axis=2), ParameterError, "axis"),
    ("concat axis bool", lambda o: o.concat([np.ones((2, 3))], axis=True), ParameterError, "axis"),
    (
        "concat grad shape",
        lambda o: o.concat_backward(np.ones((2, 3)), [np.ones((2, 1)), np.ones((2, 1))]),
        ShapeError,
        "grad_out",
    ),
]

# Fraction-specific rules: the reference only (the backend reports object arrays unsupported)
REFERENCE_ERRORS = [
    ("bn on Fractions", lambda o: o.batch_norm(frac(_x4()), np.ones(3), np.zeros(3)), DTypeError, "x"),
    (
        "bn backward on Fractions",
        lambda o: o.batch_norm_backward(_x4(), _x4(), frac(np.ones(3)), np.zeros(3)),
        DTypeError,
        "gamma",
    ),
    ("lrn Fractions, beta 0.75", lambda o: o.local_response_norm(frac(_x4()), 3), DTypeError, "x"),
    ("stats unbiased not bool", lambda o: o.batch_norm_stats(_x4(), unbiased=1), ParameterError, "unbiased"),
]


class _Ref:
    """The reference modules' functions under one roof (the ops are not exported from convspec.reference yet)."""

    def __getattr__(self, name):
        for mod in (BN, LRN, DO, CC):
            if hasattr(mod, name):
                return getattr(mod, name)
        raise AttributeError(name)


class _Literal(_Ref):
    def __getattr__(self, name):
        base, _, rest = name.partition("_backward")
        lit = f"{base}{'_backward' if _ else ''}_literal"
        return super().__getattr__(lit if any(hasattr(m, lit) for m in (BN, LRN, DO, CC)) else name)


@pytest.mark.parametrize("impl", ["reference", "literal", "numpy"])
@pytest.mark.parametrize("what,call,cls,param", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(impl, what, call, cls, param):
    ops = {"reference": _Ref(), "literal": _Literal(), "numpy": B}[impl]
    with pytest.raises(cls) as e:
        call(ops)
    assert isinstance(e.value, SpecError) and e.value.param == param, f"{what}: {e.value!r}"


@pytest.mark.parametrize("what,call,cls,param", REFERENCE_ERRORS, ids=[e[0] for e in REFERENCE_ERRORS])
def test_reference_only_errors(what, call, cls, param):
    for ops in (_Ref(), _Literal()):
        with pytest.raises(cls) as e:
            call(ops)
        assert e.value.param == param, f"{what}: {e.value!r}"


def test_error_messages_state_the_rule():
    with pytest.raises(ParameterError, match=r"p: must lie in \[0, 1\)"):
        DO.dropout(np.ones(2), np.ones(2), p=1.0)
    with pytest.raises(ShapeError, match="would divide by zero"):
        BN.batch_norm_stats(np.ones((1, 2)), unbiased=True)
    with pytest.raises(ShapeError, match=r"xs\[1\]: must match xs\[0\] \(2, 3, 4\) in every dim but axis 1"):
        CC.concat([np.ones((2, 3, 4)), np.ones((3, 3, 4))])


# ------------------------------------------------------------------------------------------ NumPy backend


@pytest.mark.parametrize("dtype,u", [(np.float64, U64), (np.float32, U32)])
@pytest.mark.parametrize("shape", BN_SHAPES + [(8, 3, 6, 6)])
def test_numpy_backend_batch_norm(dtype, u, shape):
    rng = np.random.default_rng(21)
    x, gamma, beta = (a.astype(dtype) for a in _bn_data(rng, shape, offset=4.0))
    g = rng.standard_normal(shape).astype(dtype)
    x64, gamma64, beta64, g64 = (a.astype(np.float64) for a in (x, gamma, beta, g))
    eps = 1e-5
    y = B.batch_norm(x, gamma, beta, eps=eps)
    assert y.dtype == dtype
    yb, gb = _bn_bounds(x64, gamma64, beta64, g64, eps, u)
    y64b, g64b = _bn_bounds(x64, gamma64, beta64, g64, eps, U64)
    assert_within(y, BN.batch_norm(x64, gamma64, beta64, eps=eps), yb + y64b, f"numpy batch_norm {dtype.__name__}")
    for got, want, b1, b2, n in zip(
        B.batch_norm_backward(g, x, gamma, beta, eps=eps),
        BN.batch_norm_backward(g64, x64, gamma64, beta64, eps=eps),
        gb,
        g64b,
        ("dx", "dgamma", "dbeta"),
    ):
        assert got.dtype == dtype
        assert_within(got, want, b1 + b2, f"numpy batch_norm {n} {dtype.__name__}")
    mean, var = rng.standard_normal(shape[1]).astype(dtype), rng.random(shape[1]).astype(dtype)
    mean64, var64 = mean.astype(np.float64), var.astype(np.float64)
    yb, gb = _bn_inference_bounds(x64, gamma64, beta64, mean64, var64, g64, eps, u)
    y64b, g64b = _bn_inference_bounds(x64, gamma64, beta64, mean64, var64, g64, eps, U64)
    assert_within(
        B.batch_norm_inference(x, gamma, beta, mean, var, eps=eps),
        BN.batch_norm_inference(x64, gamma64, beta64, mean64, var64, eps=eps),
        yb + y64b,
        "numpy bn eval",
    )
    for got, want, b1, b2 in zip(
        B.batch_norm_inference_backward(g, x, gamma, beta, mean, var, eps=eps),
        BN.batch_norm_inference_backward(g64, x64, gamma64, beta64, mean64, var64, eps=eps),
        gb,
        g64b,
    ):
        assert_within(got, want, b1 + b2, "numpy bn eval backward")
    if shape[0] * int(np.prod(shape[2:])) > 1:
        b1, b2 = _running_bounds(mean64, var64, x64, 0.1, u), _running_bounds(mean64, var64, x64, 0.1, U64)
        for got, want, c1, c2 in zip(
            B.batch_norm_running_stats(mean, var, x), BN.batch_norm_running_stats(mean64, var64, x64), b1, b2
        ):
            assert_within(got, want, c1 + c2, "numpy running stats")


@pytest.mark.parametrize("dtype,u", [(np.float64, U64), (np.float32, U32)])
@pytest.mark.parametrize("shape", LRN_SHAPES)
def test_numpy_backend_lrn(dtype, u, shape):
    rng = np.random.default_rng(22)
    x, g = (3 * rng.standard_normal(shape)).astype(dtype), rng.standard_normal(shape).astype(dtype)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    for size in LRN_SIZES:
        for alpha, beta, k in ((1e-4, 0.75, 2.0), (0.5, 0.75, 1.0), (0.2, -0.5, 0.7)):
            kw = {"alpha": alpha, "beta": beta, "k": k}
            yb, db = _lrn_bounds(x64, g64, size, alpha, beta, k, u)
            y64b, d64b = _lrn_bounds(x64, g64, size, alpha, beta, k, U64)
            y = B.local_response_norm(x, size, **kw)
            assert y.dtype == dtype
            assert_within(y, LRN.local_response_norm(x64, size, **kw), yb + y64b, f"numpy lrn {size} {kw}")
            (dx,) = B.local_response_norm_backward(g, x, size, **kw)
            assert_within(
                dx,
                LRN.local_response_norm_backward(g64, x64, size, **kw)[0],
                db + d64b,
                f"numpy lrn backward {size} {kw}",
            )


@pytest.mark.parametrize("dtype,u", [(np.float64, U64), (np.float32, U32)])
def test_numpy_backend_dropout_concat(dtype, u):
    rng = np.random.default_rng(23)
    x, g = rng.standard_normal((2, 3, 4)).astype(dtype), rng.standard_normal((2, 3, 4)).astype(dtype)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    keep = rng.integers(0, 2, x.shape)
    for p in (0.0, 0.1, 0.5, 0.7):
        for mask in (keep, keep.astype(bool), keep.astype(np.float32)):
            y = B.dropout(x, mask, p=p)
            assert y.dtype == dtype
            assert_within(
                y,
                DO.dropout(x64, keep, p=p),
                _dropout_bound(x64, keep, p, u) + _dropout_bound(x64, keep, p, U64),
                f"numpy dropout p={p}",
            )
            assert_within(
                B.dropout_backward(g, x, mask, p=p)[0],
                DO.dropout_backward(g64, x64, keep, p=p)[0],
                _dropout_bound(g64, keep, p, u) + _dropout_bound(g64, keep, p, U64),
                "numpy dropout backward",
            )
    xs = [rng.standard_normal((2, c, 3)).astype(dtype) for c in (2, 0, 3)]
    for axis in (1, -2):
        y = B.concat(xs, axis=axis)
        assert y.dtype == dtype and np.array_equal(y, CC.concat(xs, axis=axis))
    go = rng.standard_normal((2, 5, 3)).astype(dtype)
    got = B.concat_backward(go, xs)
    assert isinstance(got, tuple) and len(got) == 3
    for a, b in zip(got, CC.concat_backward(go, xs)):
        assert a.dtype == dtype and np.array_equal(a, b)
    got[0][...] = 7  # the gradients are copies, not views of grad_out
    assert not (go == 7).any()
