"""The jax backend's batch_norm (training, inference, running statistics), local_response_norm, dropout and concat:
through the engine (quick profile: pass, or a declared deviation), values computed by hand (AlexNet's LRN formula
on small integers, the running statistics with the unbiased variance, batch statistics that are exact, concat's
backward split), the two JAX behaviours the backend works around or declares (jax.nn.standardize's default
one-pass variance; stax/Flax dropout selecting instead of multiplying), and errors identical to the NumPy
backend's. Skipped when jax is not installed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from convspec.backends.jax_backend import JAX_DROPOUT_SELECT, JaxBackend
from convspec.backends.numpy_backend import NumpyBackend
from convspec.conformance import plugins
from convspec.conformance.cases import Case
from convspec.conformance.evaluate import evaluate
from convspec.conformance.run import Plan, applies, plan_cases
from norm_checks import (
    BAD,
    IDS,
    array_helpers,
    assert_same_error,
    backend_args,
    check_backward_checks_the_gradient_shape,
)

from convspec import SpecError
from convspec import reference as R

pytest.importorskip("jax")

B = JaxBackend()
NP = NumpyBackend()
t, n, exact = array_helpers(B)


def _args(args):
    return backend_args(B, args)


NEW_OPS = ("batch_norm", "batch_norm_inference", "batch_norm_running_stats", "local_response_norm", "dropout", "concat")


# ---------------------------------------------------------------- the conformance suite
def test_new_ops_pass_or_declare_through_the_engine():
    """The quick profile in-process (the full one: `convspec run -b jax --profile full --op ...`)."""
    reg = plugins.load(("convspec.backends.jax_backend",), autoload=False)
    plan = Plan(profile="quick", seed=0, ops=NEW_OPS, sources=reg.case_sources)
    seen = {}
    for case in plan_cases(plan):
        if not applies(case, B):
            continue
        r = evaluate(B, case)
        assert r["status"] in ("pass", "deviation", "invalid"), (r["case_id"], r.get("message"), r["checks"])
        if r["status"] == "deviation":
            assert r["deviation"]
        seen.setdefault(case.op, set()).add(r["status"])
    assert set(seen) == set(NEW_OPS) and all("pass" in s for s in seen.values()), seen


# ---------------------------------------------------------------- local response norm: hand-computed
def test_local_response_norm_alexnet_formula_on_integers():
    # channels 1..5, size 3: the window is c - 1 .. c + 1, clipped; squares 1, 4, 9, 16, 25 give the sums
    # S = [1+4, 1+4+9, 4+9+16, 9+16+25, 16+25] = [5, 14, 29, 50, 41]; alpha = 1 (not divided by size), k = 1,
    # beta = 1: y = x / (1 + S) = [1/6, 2/15, 3/30, 4/51, 5/42]
    x = np.arange(1.0, 6.0).reshape(1, 5)
    want = np.array([[1 / 6, 2 / 15, 3 / 30, 4 / 51, 5 / 42]])
    got = n(B.local_response_norm(t(x), 3, alpha=1.0, beta=1.0, k=1.0))
    np.testing.assert_allclose(got, want, rtol=4e-16, atol=0)
    # with alpha / size (PyTorch's convention), the numbers differ: the backend passes alpha as the paper's
    divided = x / (1 + np.array([5, 14, 29, 50, 41]) / 3)
    assert np.abs(got - divided).max() > 0.05


def test_local_response_norm_alexnet_constants():
    # AlexNet: size 5, alpha 1e-4, beta 0.75, k 2; channels 1..7 of a 1x1 image
    x = np.arange(1.0, 8.0).reshape(1, 7, 1, 1)
    sq = [v * v for v in range(1, 8)]
    s = [sum(sq[max(0, c - 2) : c + 3]) for c in range(7)]  # c - 2 .. c + 2
    assert s == [1 + 4 + 9, 1 + 4 + 9 + 16, 55, 4 + 9 + 16 + 25 + 36, 135, 16 + 25 + 36 + 49, 25 + 36 + 49]
    want = np.array([(c + 1) * (2 + 1e-4 * s[c]) ** -0.75 for c in range(7)]).reshape(x.shape)
    np.testing.assert_allclose(n(B.local_response_norm(t(x), 5)), want, rtol=1e-15, atol=0)


def test_local_response_norm_even_window_has_one_more_channel_before():
    # size 2: the window is c - 1 .. c: S = [4, 4 + 16] = [4, 20]; D = 1 + 0.75 S = [4, 16]: y = [0.5, 0.25]
    x = np.array([[2.0, 4.0]])
    exact(B.local_response_norm(t(x), 2, alpha=0.75, beta=1.0, k=1.0), np.array([[0.5, 0.25]]))
    # size 4: c - 2 .. c + 1 (channel 0 sums 0..1, channel 4 sums 2..4)
    x = np.arange(1.0, 6.0).reshape(1, 5, 1)
    s = np.array([1 + 4, 1 + 4 + 9, 1 + 4 + 9 + 16, 4 + 9 + 16 + 25, 9 + 16 + 25])
    np.testing.assert_allclose(
        n(B.local_response_norm(t(x), 4, alpha=1.0, beta=1.0, k=1.0)).ravel(), np.arange(1, 6) / (1 + s), rtol=4e-16
    )


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 9])
def test_local_response_norm_matches_the_reference_for_every_size(size):
    x = np.random.default_rng(size).standard_normal((2, 7, 3, 2))
    kw = {"alpha": 0.5, "beta": 0.75, "k": 2.0}
    np.testing.assert_allclose(
        n(B.local_response_norm(t(x), size, **kw)), R.local_response_norm(x, size, **kw), rtol=1e-14, atol=0
    )
    g = np.random.default_rng(size + 1).standard_normal(x.shape)
    (dx,) = B.local_response_norm_backward(t(g), t(x), size, **kw)
    np.testing.assert_allclose(n(dx), R.local_response_norm_backward(g, x, size, **kw)[0], rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- batch norm
def test_batch_norm_exact():
    # per channel: mean 5 (c = 0) and -1 (c = 1), biased variance 3; eps = 1: 1 / sqrt(var + eps) = 1 / 2, and
    # xhat in {1.5, -1.5, 0}: every step is exact
    x = np.array([[8, 2, 5], [5, 5, 5]], dtype=np.float64)
    x = np.stack([x, x - 6], axis=1)  # (2, 2, 3)
    gamma, beta = np.array([2.0, -4.0]), np.array([1.0, 3.0])
    y = B.batch_norm(t(x), t(gamma), t(beta), eps=1.0)
    exact(y, np.stack([[[4.0, -2.0, 1.0], [1.0, 1.0, 1.0]], [[-3.0, 9.0, 3.0], [3.0, 3.0, 3.0]]], axis=1))
    g = np.arange(12.0).reshape(x.shape) - 5
    dx, dgamma, dbeta = B.batch_norm_backward(t(g), t(x), t(gamma), t(beta), eps=1.0)
    # dbeta = sum of g per channel; dgamma = sum of g * xhat
    exact(dbeta, np.array([(-5 - 4 - 3 + 1 + 2 + 3), (-2 - 1 + 0 + 4 + 5 + 6)], dtype=np.float64))
    exact(dgamma, np.array([1.5 * (-5) - 1.5 * (-4), 1.5 * (-2) - 1.5 * (-1)]))
    rdx = R.batch_norm_backward(g, x, gamma, beta, eps=1.0)[0]
    np.testing.assert_allclose(n(dx), rdx, rtol=0, atol=1e-14)  # divides by m = 6


def test_batch_norm_with_one_value_per_channel():
    """m = 1: var = 0, y = beta, dx = 0 (the spec allows it)."""
    x, gamma, beta = np.array([[3.0, -1.0]]), np.array([2.0, 5.0]), np.array([0.5, -1.0])
    exact(B.batch_norm(t(x), t(gamma), t(beta)), np.array([[0.5, -1.0]]))
    dx, dgamma, dbeta = B.batch_norm_backward(t(np.array([[1.0, 2.0]])), t(x), t(gamma), t(beta))
    exact(dx, np.zeros((1, 2)))
    exact(dgamma, np.zeros(2))
    exact(dbeta, np.array([1.0, 2.0]))


def test_batch_norm_statistics_are_two_pass_not_jax_nn_standardize_default():
    """jax.nn.standardize's default variance is mean(x^2) - mean(x)^2 (clipped at 0): on [4096, 4097] in float32
    it cancels to 0 and x - mean = -+0.5 is divided by sqrt(eps); the backend passes jnp.mean/jnp.var instead."""
    jax = pytest.importorskip("jax")
    x = np.array([[4096.0], [4097.0]], dtype=np.float32)
    fast = np.asarray(jax.nn.standardize(x, axis=0)).ravel()
    assert abs(fast[1] - 0.5 / math.sqrt(1e-5)) < 1e-2  # 158.11: the variance cancelled
    got = n(B.batch_norm(t(x, np.float32), t([1.0], np.float32), t([0.0], np.float32))).ravel()
    want = R.batch_norm(x.astype(np.float64), np.ones(1), np.zeros(1)).ravel()  # +-0.5 / sqrt(0.25 + 1e-5)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_batch_norm_inference_exact():
    x = np.arange(24.0).reshape(2, 3, 4) - 10
    gamma, beta, mean, var = (
        np.array([2.0, -1.0, 0.5]),
        np.array([1.0, 0.0, -3.0]),
        np.array([1.0, -2.0, 0.0]),
        np.array([3.0, 15.0, 0.0]),
    )
    # eps = 1: sqrt(var + eps) = 2, 4, 1
    y = (x - mean[:, None]) * (gamma / np.array([2.0, 4.0, 1.0]))[:, None] + beta[:, None]
    exact(B.batch_norm_inference(t(x), t(gamma), t(beta), t(mean), t(var), eps=1.0), y)
    g = np.ones_like(x)
    got = B.batch_norm_inference_backward(t(g), t(x), t(gamma), t(beta), t(mean), t(var), eps=1.0)
    assert len(got) == 3  # mean and var are not differentiable
    for a, b in zip(got, R.batch_norm_inference_backward(g, x, gamma, beta, mean, var, eps=1.0)):
        exact(a, b)


def test_batch_norm_running_stats_unbiased():
    # m = 5 per channel: channel 0 is [1, 3, 5, 7, 9] (mean 5, biased var 8, unbiased 10), channel 1 is
    # [0, 0, 10, 0, 0] (mean 2, biased var 16, unbiased 20); momentum 0.5 weighs the batch
    x = np.array([[1, 3, 5, 7, 9], [0, 0, 10, 0, 0]], dtype=np.float64).T  # (N=5, C=2)
    rm, rv = np.array([1.0, -2.0]), np.array([2.0, 4.0])
    mean, var = B.batch_norm_running_stats(t(rm), t(rv), t(x), momentum=0.5)
    exact(mean, np.array([0.5 * 1 + 0.5 * 5, 0.5 * -2 + 0.5 * 2]))
    exact(var, np.array([0.5 * 2 + 0.5 * 10, 0.5 * 4 + 0.5 * 20]))  # not 0.5 * 8, 0.5 * 16: unbiased
    # momentum 0 keeps the running statistics, 1 takes the batch's
    exact(B.batch_norm_running_stats(t(rm), t(rv), t(x), momentum=0.0)[1], rv)
    exact(B.batch_norm_running_stats(t(rm), t(rv), t(x), momentum=1.0)[1], np.array([10.0, 20.0]))
    assert not hasattr(B, "batch_norm_running_stats_backward")  # a state update: no gradient, as in the spec
    with pytest.raises(SpecError, match="needs m = N"):  # m = 1: the unbiased variance divides by zero
        B.batch_norm_running_stats(t([0.0]), t([1.0]), t([[3.0]]))


# ---------------------------------------------------------------- dropout
def test_dropout_with_the_given_mask():
    x = np.array([[1.0, -2.0, 3.0], [3.0, 5.0, 0.5]])
    keep = np.array([[1, 0, 0], [1, 1, 0]], dtype=np.float64)
    want = np.array([[4.0, 0.0, 0.0], [12.0, 20.0, 0.0]])  # x * keep / (1 - 0.75)
    exact(B.dropout(t(x), t(keep), p=0.75), want)
    exact(B.dropout(t(x), B.from_numpy(keep.astype(bool)), p=0.75), want)  # a bool mask
    exact(B.dropout(t(x), keep.astype(np.int64), p=0.75), want)  # an integer NumPy mask
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    (dx,) = B.dropout_backward(t(g), t(x), t(keep), p=0.75)
    exact(dx, np.array([[4.0, 0.0, 0.0], [16.0, 20.0, 0.0]]))


def test_dropout_drops_inf_to_zero_as_jax_does_declared():
    """Claim: JAX's dropouts select (stax.Dropout: jnp.where(keep, x / rate, 0)), so a dropped inf or NaN is 0; the
    spec's x * keep / (1 - p) is NaN there. The backend does what JAX does and declares it (forward only)."""
    jax = pytest.importorskip("jax")
    from jax.example_libraries import stax

    key = jax.random.key(0)
    mask = np.asarray(jax.random.bernoulli(key, 0.5, (8,)))  # what stax.Dropout(0.5) draws with this key
    assert mask.any() and not mask.all()
    # every dropped element of x is inf, -inf or NaN
    x = np.where(mask, np.arange(1.0, 9.0), np.array([np.inf, np.nan, -np.inf, np.inf] * 2)).astype(np.float32)
    _, apply = stax.Dropout(0.5)  # stax's rate is the keep probability
    want = np.where(mask, 2 * x, 0.0).astype(np.float32)  # 0 wherever the mask drops
    np.testing.assert_array_equal(np.asarray(apply((), x, rng=key)), want)
    exact(B.dropout(t(x, np.float32), mask, p=0.5), want)
    with np.errstate(invalid="ignore"):
        spec = R.dropout(x, mask.astype(np.float32), p=0.5)
    assert np.isnan(spec[~mask]).all()  # 0 * inf, 0 * NaN

    def case(values):
        return Case(
            op="dropout",
            shapes={"x": [1, 4], "keep": [1, 4]},
            params={"p": 0.5},
            dtype="float64",
            data="explicit",
            values={"x": [values], "keep": [[0, 0, 1, 1]]},
            source="corner",
            name="dropout-nonfinite",
        )

    with np.errstate(invalid="ignore"):
        r = evaluate(B, case([np.inf, np.nan, 1.0, -np.inf]))
        assert r["status"] == "deviation" and r["deviation"] == JAX_DROPOUT_SELECT
        assert [c["status"] for c in r["checks"]] == ["fail", "pass"]  # forward declared, grad x passes
        r = evaluate(B, case([1.0, 2.0, 3.0, -np.inf]))  # the inf is kept: no deviation
        assert r["status"] == "pass" and not r.get("deviation")


# ---------------------------------------------------------------- concat
def test_concat_and_its_backward_split():
    xs = [np.arange(6.0).reshape(2, 1, 3), np.zeros((2, 0, 3)), -np.arange(12.0).reshape(2, 2, 3)]
    y = B.concat([t(a) for a in xs], axis=1)
    exact(y, np.concatenate(xs, axis=1))
    exact(B.concat([t(a) for a in xs], axis=-2), np.concatenate(xs, axis=1))
    g = np.arange(18.0).reshape(2, 3, 3)
    got = B.concat_backward(t(g), [t(a) for a in xs])
    assert len(got) == 3
    exact(got[0], [[[0.0, 1.0, 2.0]], [[9.0, 10.0, 11.0]]])
    exact(got[1], np.zeros((2, 0, 3)))
    exact(got[2], [[[3.0, 4.0, 5.0], [6.0, 7.0, 8.0]], [[12.0, 13.0, 14.0], [15.0, 16.0, 17.0]]])
    assert n(B.concat([t(xs[0], np.float32), t(xs[2])])).dtype == np.float64  # the common dtype
    (only,) = B.concat_backward(t([1.0, 2.0]), [t([1.0, 2.0])], axis=0)
    exact(only, np.array([1.0, 2.0]))


def test_float32_stays_float32():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    c = np.ones(3, np.float32)
    f = np.float32
    assert n(B.batch_norm(t(x, f), t(c, f), t(c, f))).dtype == np.float32
    assert all(n(a).dtype == np.float32 for a in B.batch_norm_backward(t(x, f), t(x, f), t(c, f), t(c, f)))
    assert n(B.batch_norm_inference(t(x, f), t(c, f), t(c, f), t(c, f), t(c, f))).dtype == np.float32
    assert all(n(a).dtype == np.float32 for a in B.batch_norm_running_stats(t(c, f), t(c, f), t(x, f)))
    assert n(B.local_response_norm(t(x, f), 3)).dtype == np.float32
    assert n(B.local_response_norm_backward(t(x, f), t(x, f), 3)[0]).dtype == np.float32
    assert n(B.dropout(t(x, f), t(np.ones_like(x), f), p=0.5)).dtype == np.float32
    assert n(B.concat([t(x, f), t(x, f)])).dtype == np.float32


# ---------------------------------------------------------------- errors: the NumPy backend's


@pytest.mark.parametrize("op, args, params", BAD, ids=IDS)
def test_errors_are_the_numpy_backends(op, args, params):
    assert_same_error(NP, B, op, args, params, backend_args=_args, array_type=type(B.from_numpy(np.zeros(1))).__name__)


def test_backward_checks_the_gradient_shape():
    check_backward_checks_the_gradient_shape(B)
