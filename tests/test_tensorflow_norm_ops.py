"""The tensorflow backend's batch_norm (training, inference, running statistics), local_response_norm, dropout and
concat: through the engine (quick profile: pass, a declared deviation, or unsupported for the reasons TensorFlow
gives), checks against hand-computed numbers and convspec.reference, the mappings of the spec's parameters onto
TensorFlow's (LRN's depth_radius and undivided alpha, the fused kernel's running statistics, dropout's mask as
general_dropout's sampler), TensorFlow's own behaviour where it differs (probes: Keras' momentum, the fused
kernel's Bessel correction, LRN's dtypes and rank, dropout's select), and errors identical to the NumPy
backend's."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest
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
    check_batch_norm_exact,
    check_batch_norm_inference_exact,
)

from convspec import SpecError
from convspec import reference as R
from convspec.api import Unsupported

tf = pytest.importorskip("tensorflow")

from convspec.backends.tensorflow_backend import TensorflowBackend  # noqa: E402  (after the importorskip)

B = TensorflowBackend()
NP = NumpyBackend()
t, n, exact = array_helpers(B)


def _args(args):
    return backend_args(B, args)


NEW_OPS = ("batch_norm", "batch_norm_inference", "batch_norm_running_stats", "local_response_norm", "dropout", "concat")
# what TensorFlow cannot express (the backend's Unsupported messages)
UNSUPPORTED = (
    "symmetric window of 2 * depth_radius + 1 channels",  # LRN, even size
    "Value for attr 'T' of double is not in the list of allowed values",  # LRN, float64 (TF's message)
    "keeps every element at rate 0",  # dropout, p = 0 with a dropped element
)


# ---------------------------------------------------------------- the conformance suite
def test_new_ops_pass_declare_or_are_unsupported_for_tensorflows_reasons_through_the_engine():
    reg = plugins.load(("convspec.backends.tensorflow_backend",), autoload=False)
    plan = Plan(profile="quick", seed=0, ops=NEW_OPS, sources=reg.case_sources)
    cases = [c for c in plan_cases(plan) if applies(c, B)]
    seen = {}
    for case in cases:
        r = evaluate(B, case)
        assert r["status"] in ("pass", "deviation", "invalid", "unsupported"), (r["case_id"], r.get("message"))
        if r["status"] == "unsupported":
            assert any(why in r["message"] for why in UNSUPPORTED), (r["case_id"], r["message"])
        if r["status"] == "deviation":
            assert r["deviation"]
        seen.setdefault(case.op, set()).add(r["status"])
    assert set(seen) == set(NEW_OPS) and all("pass" in s for s in seen.values()), seen


# ---------------------------------------------------------------- batch norm
def test_batch_norm_exact():
    check_batch_norm_exact(B)


def test_batch_norm_with_one_value_per_channel_gives_beta_and_zero_dx():
    x, gamma, beta = np.array([[3.0, -1.0]]), np.array([2.0, 5.0]), np.array([0.5, -1.0])
    exact(B.batch_norm(t(x), t(gamma), t(beta)), [[0.5, -1.0]])
    dx, dgamma, dbeta = B.batch_norm_backward(t(np.array([[1.0, 2.0]])), t(x), t(gamma), t(beta))
    exact(dx, [[0.0, 0.0]])
    exact(dgamma, [0.0, 0.0])
    exact(dbeta, [1.0, 2.0])


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (2, 3, 2, 3), (1, 3, 2, 2, 2)])
def test_batch_norm_every_rank_against_the_reference(shape):
    rng = np.random.default_rng(len(shape))
    x, gamma, beta = rng.standard_normal(shape), rng.standard_normal(3), rng.standard_normal(3)
    np.testing.assert_allclose(n(B.batch_norm(t(x), t(gamma), t(beta))), R.batch_norm(x, gamma, beta), atol=1e-13)
    g = rng.standard_normal(shape)
    for a, b in zip(B.batch_norm_backward(t(g), t(x), t(gamma), t(beta)), R.batch_norm_backward(g, x, gamma, beta)):
        np.testing.assert_allclose(n(a), b, atol=1e-12)


def test_batch_norm_inference_exact():
    check_batch_norm_inference_exact(B)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_batch_norm_with_an_infinite_gamma_or_mean_is_declared():
    x = [[3.0, 1.0], [1.0, 2.0]]  # (N=2, C=2)
    inference = {"x": x, "gamma": ["inf", 1.0], "beta": [0.0, 0.0], "mean": [2.0, 0.0], "var": [1.0, 1.0]}
    r = evaluate(B, _explicit("batch_norm_inference", inference, {"eps": 1e-5}))
    assert r["status"] == "deviation" and "folds the affine map" in r["deviation"], r
    assert [c["what"] for c in r["checks"] if c["status"] == "fail"] == ["forward"]
    got = n(B.batch_norm_inference(t(x), t([np.inf, 1.0]), t([0.0, 0.0]), t([2.0, 0.0]), t([1.0, 1.0]), eps=1e-300))
    assert np.isnan(got[:, 0]).all()  # x * inf + (0 - 2 * inf); the spec: inf * (x - 2) = [inf, -inf]
    # grad gamma with mean = inf: the tape's sum(g x) - sum(g) * inf is inf, the spec's sum(g (x - inf)) NaN
    args = (t(x), t([2.0, 1.0]), t([0.0, 0.0]), t([np.inf, 0.0]), t([1.0, 1.0]))
    g = np.array([[1.0, 0.0], [-2.0, 0.0]])
    assert n(B.batch_norm_inference_backward(t(g), *args, eps=1e-300)[1])[0] == np.inf
    assert np.isnan(R.batch_norm_inference_backward(g, x, [2.0, 1.0], [0.0, 0.0], [np.inf, 0.0], [1.0, 1.0])[1][0])
    case = _explicit("batch_norm_inference", {**inference, "gamma": [2.0, 1.0], "mean": ["inf", 0.0]}, {})
    statuses = {evaluate(B, replace(case, seed=seed))["status"] for seed in range(8)}  # grad_out drawn by seed
    assert statuses == {"pass", "deviation"}, statuses
    r = evaluate(B, _explicit("batch_norm", {"x": x, "gamma": ["inf", 1.0], "beta": [0.0, 0.0]}, {"eps": 1e-5}))
    assert r["status"] == "deviation", r
    finite = _explicit("batch_norm_inference", {**inference, "gamma": [2.0, 1.0]}, {"eps": 1e-5})
    assert B.deviation(finite) is None and evaluate(B, finite)["status"] == "pass"


def test_probe_batch_normalization_folds_the_affine_map():
    x = tf.constant([[3.0], [1.0]], tf.float64)
    c = functools.partial(tf.constant, dtype=tf.float64)
    y = tf.nn.batch_normalization(x, c([2.0]), c([1.0]), c([0.0]), c([np.inf]), 0.0)
    assert np.isnan(y.numpy()).all()  # inv = inf: 3 * inf + (0 - 2 * inf)


# ---------------------------------------------------------------- running statistics
# m = 5 per channel: channel 0 has mean 5, biased variance 8, unbiased 10; channel 1 mean 2, 16 and 20
RS_X = np.array([[1, 3, 5, 7, 9], [0, 0, 10, 0, 0]], dtype=np.float64).T  # (N=5, C=2)
RS_MEAN, RS_VAR = np.array([1.0, -2.0]), np.array([2.0, 4.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # float32: the fused kernel; float64: tf.nn.moments
def test_running_stats_unbiased_and_momentum_weighs_the_new_batch(dtype):
    mean, var = B.batch_norm_running_stats(t(RS_MEAN, dtype), t(RS_VAR, dtype), t(RS_X, dtype), momentum=0.25)
    # 0.75 * old + 0.25 * new; the variance is the unbiased one (10, 20), not the biased (8, 16)
    exact(mean, np.array([0.75 * 1 + 0.25 * 5, 0.75 * -2 + 0.25 * 2], dtype))
    exact(var, np.array([0.75 * 2 + 0.25 * 10, 0.75 * 4 + 0.25 * 20], dtype))
    assert n(var).tolist() == [4.0, 8.0]
    want = R.batch_norm_running_stats(RS_MEAN, RS_VAR, RS_X, momentum=0.25)
    exact(mean, want[0].astype(dtype))
    exact(var, want[1].astype(dtype))
    assert not hasattr(B, "batch_norm_running_stats_backward")  # a state update: no gradient, as in the spec


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [0.0, 1.0])
def test_running_stats_momentum_bounds(dtype, momentum):
    mean, var = B.batch_norm_running_stats(t(RS_MEAN, dtype), t(RS_VAR, dtype), t(RS_X, dtype), momentum=momentum)
    if momentum == 0.0:
        exact(mean, RS_MEAN.astype(dtype))
        exact(var, RS_VAR.astype(dtype))
    else:  # the batch's mean and unbiased variance alone
        exact(mean, np.array([5.0, 2.0], dtype))
        exact(var, np.array([10.0, 20.0], dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 2, 4), (2, 2, 3, 2), (2, 2, 1, 2, 3)])
def test_running_stats_every_rank_against_the_reference(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x, rm, rv = rng.standard_normal(shape), rng.standard_normal(2), 1 + rng.random(2)
    got = B.batch_norm_running_stats(t(rm, dtype), t(rv, dtype), t(x, dtype), momentum=0.1)
    want = R.batch_norm_running_stats(rm, rv, x, momentum=0.1)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    for a, b in zip(got, want):
        assert n(a).dtype == dtype
        np.testing.assert_allclose(n(a), b, rtol=tol, atol=tol)


def test_running_stats_need_two_values_per_channel():
    with pytest.raises(SpecError, match="needs m = N \\* prod\\(spatial\\) >= 2"):
        B.batch_norm_running_stats(t([0.0, 0.0]), t([1.0, 1.0]), t([[1.0, 2.0]]))


def _explicit(op, values, params, dtype="float64"):
    """A conformance case with the given values ("inf", "-inf", "nan" as strings)."""
    shapes = {k: list(np.shape(np.array(v, dtype=object))) for k, v in values.items()}
    return Case(op=op, shapes=shapes, params=params, dtype=dtype, data="explicit", values=values, source="test")


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_running_stats_momentum_one_ignores_a_non_finite_running_statistic_in_float32_declared():
    values = {"running_mean": ["inf", 1.0], "running_var": [1.0, "nan"], "x": [[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]]}
    r = evaluate(B, _explicit("batch_norm_running_stats", values, {"momentum": 1.0}, "float32"))
    assert r["status"] == "deviation" and "exponential_avg_factor = 1" in r["deviation"], r
    # the spec: 0 * inf = NaN in new_mean[0], 0 * NaN in new_var[1]; the fused kernel: the batch's alone
    mean, var = B.batch_norm_running_stats(
        t([np.inf, 1.0], np.float32), t([1.0, np.nan], np.float32), t(values["x"], np.float32), momentum=1.0
    )
    exact(mean, np.array([3.0, 5.0], np.float32))
    exact(var, np.array([4.0, 13.0], np.float32))
    # float64 (moments and the spec's update in TF arithmetic) and a momentum below 1 follow the spec
    assert evaluate(B, _explicit("batch_norm_running_stats", values, {"momentum": 1.0}))["status"] == "pass"
    assert evaluate(B, _explicit("batch_norm_running_stats", values, {"momentum": 0.5}, "float32"))["status"] == "pass"


# TensorFlow's own behaviour behind the mapping (probes: they fail if a TensorFlow release changes it)
def test_probe_fused_kernel_running_variance_is_bessel_corrected_and_moments_is_biased():
    rows = tf.constant(RS_X.astype(np.float32).reshape(5, 1, 1, 2))
    _, batch_mean, batch_var = tf.compat.v1.nn.fused_batch_norm(rows, tf.ones([2]), tf.zeros([2]), is_training=True)
    assert batch_mean.numpy().tolist() == [5.0, 2.0]
    assert batch_var.numpy().tolist() == [10.0, 20.0]  # m/(m-1) * [8, 16]
    _, var = tf.nn.moments(rows, axes=[0, 1, 2])
    assert var.numpy().tolist() == [8.0, 16.0]
    # exponential_avg_factor weighs the new batch: 0.75 * old + 0.25 * unbiased
    _, mean, var = tf.compat.v1.nn.fused_batch_norm(
        rows, tf.ones([2]), tf.zeros([2]), mean=RS_MEAN.astype(np.float32), variance=RS_VAR.astype(np.float32),
        is_training=True, exponential_avg_factor=0.25,
    )  # fmt: skip
    assert mean.numpy().tolist() == [2.0, -1.0] and var.numpy().tolist() == [4.0, 8.0]


def test_probe_fused_kernel_at_factor_one_returns_the_batch_statistics_alone():
    rows = tf.constant(RS_X.astype(np.float32).reshape(5, 1, 1, 2))
    out = tf.raw_ops.FusedBatchNormV3(
        x=rows, scale=tf.ones([2]), offset=tf.zeros([2]), mean=tf.constant([np.inf, np.nan]),
        variance=tf.constant([np.inf, np.nan]), epsilon=1e-3, exponential_avg_factor=1.0, is_training=True,
    )  # fmt: skip
    assert out.batch_mean.numpy().tolist() == [5.0, 2.0] and out.batch_variance.numpy().tolist() == [10.0, 20.0]


def test_probe_fused_kernel_has_no_float64():
    rows = tf.constant(RS_X.reshape(5, 1, 1, 2))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Value for attr '[TU]' of double is not in the list"):
        tf.compat.v1.nn.fused_batch_norm(rows, tf.ones([2], tf.float64), tf.zeros([2], tf.float64), is_training=True)


def test_probe_keras_momentum_weighs_the_old_value_and_keeps_the_biased_variance():
    keras = pytest.importorskip("keras")
    bn = keras.layers.BatchNormalization(axis=1, momentum=0.25, epsilon=1e-3)
    bn.build((5, 2))
    bn.moving_mean.assign(RS_MEAN.astype(np.float32))
    bn.moving_variance.assign(RS_VAR.astype(np.float32))
    bn(tf.constant(RS_X.astype(np.float32)), training=True)
    # moving = 0.25 * old + 0.75 * batch, with the biased variance [8, 16]
    assert bn.moving_mean.numpy().tolist() == [0.25 * 1 + 0.75 * 5, 0.25 * -2 + 0.75 * 2]
    assert bn.moving_variance.numpy().tolist() == [0.25 * 2 + 0.75 * 8, 0.25 * 4 + 0.75 * 16]
    # Keras with momentum = 1 - 0.25 is the spec's update but for the variance: 3.5 where the spec has 4
    bn.moving_mean.assign(RS_MEAN.astype(np.float32))
    bn.moving_variance.assign(RS_VAR.astype(np.float32))
    bn.momentum = 0.75
    bn(tf.constant(RS_X.astype(np.float32)), training=True)
    assert bn.moving_mean.numpy().tolist() == [2.0, -1.0]  # = the spec's (and the backend's) new_mean
    assert bn.moving_variance.numpy().tolist() == [3.5, 7.0]  # the spec's new_var is [4, 8]


# ---------------------------------------------------------------- local response norm
def test_local_response_norm_hand_computed_window_clipped_alpha_not_divided():
    # channels [1, 2, 3, 4, 5], size 3 (c-1 .. c+1, clipped), k = 1, alpha = 1, beta = 1:
    # y[c] = x[c] / (1 + sum of the window's squares) = 1/6, 2/15, 3/30, 4/51, 5/42
    x = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    want = np.array([[1 / 6, 2 / 15, 3 / 30, 4 / 51, 5 / 42]])
    got = n(B.local_response_norm(t(x, np.float32), 3, alpha=1.0, beta=1.0, k=1.0))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=2e-7)
    np.testing.assert_allclose(want, R.local_response_norm(x, 3, alpha=1.0, beta=1.0, k=1.0), rtol=1e-15)
    # size 5 > the 2 channels of [[2, 4]]: every window is both channels, S = 20; alpha 0.75: D = 16, beta 0.5: 4
    got = n(B.local_response_norm(t([[2.0, 4.0]], np.float32), 5, alpha=0.75, beta=0.5, k=1.0))
    np.testing.assert_allclose(got, [[0.5, 1.0]], rtol=2e-7)  # alpha / size would give 2/sqrt(4) = 1, 4/2 = 2


@pytest.mark.parametrize("shape", [(2, 7), (2, 7, 3), (2, 7, 3, 2), (1, 7, 2, 2, 2)])
@pytest.mark.parametrize("size", [1, 3, 5, 9])
def test_local_response_norm_every_rank_and_odd_size_against_the_reference(shape, size):
    x = np.random.default_rng(size).standard_normal(shape)
    kw = {"alpha": 0.5, "beta": 0.75, "k": 2.0}
    got = n(B.local_response_norm(t(x, np.float32), size, **kw))
    assert got.shape == shape and got.dtype == np.float32
    np.testing.assert_allclose(got, R.local_response_norm(x, size, **kw), rtol=2e-6, atol=1e-7)
    g = np.random.default_rng(size + 1).standard_normal(shape)
    (dx,) = B.local_response_norm_backward(t(g, np.float32), t(x, np.float32), size, **kw)
    np.testing.assert_allclose(n(dx), R.local_response_norm_backward(g, x, size, **kw)[0], rtol=1e-5, atol=1e-5)


def test_local_response_norm_even_size_and_float64_are_unsupported():
    x = np.ones((1, 4, 2))
    with pytest.raises(Unsupported, match="symmetric window"):
        B.local_response_norm(t(x, np.float32), 4)
    with pytest.raises(Unsupported, match="symmetric window"):
        B.local_response_norm_backward(t(x, np.float32), t(x, np.float32), 2)
    with pytest.raises(Unsupported, match="of double is not in the list of allowed values"):
        B.local_response_norm(t(x), 3)


@pytest.mark.filterwarnings("ignore:invalid value encountered", "ignore:overflow encountered")
def test_local_response_norm_with_a_non_finite_square_is_declared():
    values = {"x": [[1.0, 2.0, 3.0, 4.0, "nan"]]}  # channel 4 is in the windows of channels 3 and 4 only
    r = evaluate(
        B, _explicit("local_response_norm", values, {"size": 3, "alpha": 1.0, "beta": 1.0, "k": 1.0}, "float32")
    )
    assert r["status"] == "deviation" and "band matrix" in r["deviation"], r
    got = n(B.local_response_norm(t([[1.0, 2.0, 3.0, 4.0, np.nan]], np.float32), 3, alpha=1.0, beta=1.0, k=1.0))
    assert np.isnan(got).all()  # the spec: [1/6, 2/15, 3/30, nan, nan]
    big = {"x": [[1.0, 2.0, 3.0, 4.0, 2e19]]}  # float32: the square overflows
    r = evaluate(B, _explicit("local_response_norm", big, {"size": 3, "alpha": 1.0, "beta": 1.0, "k": 1.0}, "float32"))
    assert r["status"] == "deviation", r
    finite = _explicit("local_response_norm", {"x": [[1.0, 2.0, 3.0, 4.0, 5.0]]}, {"size": 3}, "float32")
    assert B.deviation(finite) is None and evaluate(B, finite)["status"] == "pass"


def test_probe_tf_lrn_band_matrix_spreads_a_nan_to_every_channel():
    x = tf.constant([np.nan, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], shape=(1, 1, 1, 7))
    y = tf.nn.local_response_normalization(x, depth_radius=1, bias=1.0, alpha=1.0, beta=1.0)
    assert np.isnan(y.numpy()).all()  # channels 2..6 have channel 0 outside their window


def test_probe_tf_lrn_window_alpha_dtypes_and_rank():
    x = tf.constant([1.0, 2.0, 3.0, 4.0, 5.0], shape=(1, 1, 1, 5))
    y = tf.nn.local_response_normalization(x, depth_radius=1, bias=1.0, alpha=1.0, beta=1.0)
    np.testing.assert_allclose(y.numpy().ravel(), [1 / 6, 2 / 15, 3 / 30, 4 / 51, 5 / 42], rtol=2e-7)
    with pytest.raises(tf.errors.InvalidArgumentError, match="of double is not in the list of allowed values"):
        tf.nn.local_response_normalization(tf.cast(x, tf.float64), depth_radius=1)
    for shape in [(1, 5), (1, 1, 5), (1, 1, 1, 1, 5)]:
        with pytest.raises(tf.errors.InvalidArgumentError, match="must be 4-dimensional"):
            tf.nn.local_response_normalization(tf.reshape(x, shape), depth_radius=1)


# ---------------------------------------------------------------- dropout
def test_dropout_with_the_given_mask():
    x = np.array([[1.0, -2.0, 3.0], [4.0, 0.5, -8.0]])
    keep = np.array([[1, 0, 0], [1, 1, 0]], dtype=np.float64)
    want = [[4.0, 0.0, 0.0], [16.0, 2.0, 0.0]]  # kept x / (1 - 0.75)
    exact(B.dropout(t(x), t(keep), p=0.75), want)
    exact(B.dropout(t(x), B.from_numpy(keep.astype(bool)), p=0.75), want)  # a bool mask
    exact(B.dropout(t(x, np.float32), t(keep, np.float32), p=0.75), np.array(want, np.float32))
    np.testing.assert_array_equal(want, R.dropout(x, keep, p=0.75))
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    (dx,) = B.dropout_backward(t(g), t(x), t(keep), p=0.75)
    exact(dx, [[4.0, 0.0, 0.0], [16.0, 20.0, 0.0]])
    exact(dx, R.dropout_backward(g, x, keep, p=0.75)[0])


def test_dropout_rate_zero_keeps_everything():
    x = np.array([[1.0, -2.0]])
    exact(B.dropout(t(x), t([[1.0, 1.0]]), p=0.0), x)
    with pytest.raises(Unsupported, match="keeps every element at rate 0"):
        B.dropout(t(x), t([[1.0, 0.0]]), p=0.0)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_dropout_of_a_dropped_inf_or_nan_is_zero_and_declared():
    x = np.array([[np.inf, np.nan, -np.inf, 1.0]])
    keep = np.array([[0.0, 0.0, 1.0, 1.0]])
    exact(B.dropout(t(x), t(keep), p=0.5), [[0.0, 0.0, -np.inf, 2.0]])
    assert np.isnan(R.dropout(x, keep, p=0.5)[0, :2]).all()  # the spec: 0 * inf, 0 * NaN
    case = Case(
        op="dropout",
        shapes={"x": [1, 4], "keep": [1, 4]},
        params={"p": 0.5},
        data="explicit",
        values={"x": [["inf", "nan", "-inf", 1.0]], "keep": keep.tolist()},
        source="test",
    )
    r = evaluate(B, case)
    assert r["status"] == "deviation" and "where(keep_mask" in r["deviation"], r
    finite = replace(case, values={"x": [[1.0, 2.0, 3.0, 4.0]], "keep": keep.tolist()})
    assert B.deviation(finite) is None and evaluate(B, finite)["status"] == "pass"


def test_probe_tf_dropout_selects_and_rate_zero_is_the_identity():
    x = tf.constant([np.inf, np.nan, 3.0], tf.float64)

    def sampler(shape, dtype):  # a "uniform" draw: 0 drops, 0.5 keeps at rate 0.5
        return tf.constant([0.0, 0.0, 0.5], dtype)

    y = tf.nn.experimental.general_dropout(x, 0.5, sampler)
    assert y.numpy().tolist() == [0.0, 0.0, 6.0]
    y = tf.nn.experimental.general_dropout(x, 0.0, sampler)
    np.testing.assert_array_equal(y.numpy(), [np.inf, np.nan, 3.0])


# ---------------------------------------------------------------- concat
def test_concat_one_gradient_per_array():
    xs = [np.arange(6.0).reshape(2, 1, 3), np.zeros((2, 0, 3)), -np.arange(12.0).reshape(2, 2, 3)]
    exact(B.concat([t(a) for a in xs], axis=1), R.concat(xs, axis=1))
    exact(B.concat([t(a) for a in xs], axis=-2), R.concat(xs, axis=-2))
    g = np.arange(18.0).reshape(2, 3, 3)
    got = B.concat_backward(t(g), [t(a) for a in xs])
    assert len(got) == 3
    exact(got[0], [[[0.0, 1.0, 2.0]], [[9.0, 10.0, 11.0]]])  # channel 0 of grad_out
    exact(got[1], np.zeros((2, 0, 3)))
    exact(got[2], [[[3.0, 4.0, 5.0], [6.0, 7.0, 8.0]], [[12.0, 13.0, 14.0], [15.0, 16.0, 17.0]]])
    for a, b in zip(got, R.concat_backward(g, xs)):
        exact(a, b)
    assert n(B.concat([t(xs[0], np.float32), t(xs[2])])).dtype == np.float64  # the common dtype
    assert n(B.concat([t(xs[0], np.float32)])).dtype == np.float32


def test_float32_stays_float32():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    c = np.ones(3, np.float32)
    f = np.float32
    assert n(B.batch_norm(t(x, f), t(c, f), t(c, f))).dtype == np.float32
    assert n(B.batch_norm_inference(t(x, f), t(c, f), t(c, f), t(c, f), t(c, f))).dtype == np.float32
    assert all(n(a).dtype == np.float32 for a in B.batch_norm_running_stats(t(c, f), t(c, f), t(x, f)))
    assert n(B.local_response_norm(t(x, f), 3)).dtype == np.float32
    assert n(B.dropout(t(x, f), t(np.ones_like(x), f), p=0.5)).dtype == np.float32


# ---------------------------------------------------------------- errors: the NumPy backend's


@pytest.mark.parametrize("op, args, params", BAD, ids=IDS)
def test_errors_are_the_numpy_backends(op, args, params):
    assert_same_error(NP, B, op, args, params, backend_args=_args, array_type="EagerTensor")


def test_backward_checks_the_gradient_shape():
    check_backward_checks_the_gradient_shape(B)
