"""The ONNX Runtime backend's batch_norm (training, inference, running statistics), local_response_norm, dropout
and concat (forward only): through the engine (full profile: every forward passes; LRN is unsupported where ONNX
Runtime has no kernel), exact values on small inputs, the mappings of the spec's parameters onto ONNX's (LRN's
alpha * size and 4-D view, eps and momentum in x's dtype, the unbiased running variance), what ONNX Runtime's own
operators do instead (run on one-node models: the evidence of the adaptations), and errors identical to the NumPy
backend's."""

from __future__ import annotations

import numpy as np
import pytest
from convspec.backends.numpy_backend import NumpyBackend
from convspec.backends.onnxruntime_backend import OnnxRuntimeBackend
from convspec.conformance import plugins
from convspec.conformance.evaluate import evaluate
from convspec.conformance.run import Plan, applies, plan_cases
from norm_checks import BAD, IDS, assert_same_error

from convspec import SpecError
from convspec import reference as R
from convspec.api import Unsupported

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

B = OnnxRuntimeBackend()
NP = NumpyBackend()
NEW_OPS = ("batch_norm", "batch_norm_inference", "batch_norm_running_stats", "local_response_norm", "dropout", "concat")


def exact(got, want):
    """Equal as numbers, in shape and dtype (NaN meets NaN)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    np.testing.assert_array_equal(got, want)


def raw(op, inputs, n_out=1, out_types=None, **attrs):
    """One ONNX node run by ONNX Runtime as it is, without the backend's adaptations."""
    h = onnx.helper
    names = [f"i{k}" for k in range(len(inputs))]
    types = out_types or [h.np_dtype_to_tensor_dtype(inputs[0].dtype)] * n_out
    vin = [h.make_tensor_value_info(n, h.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in zip(names, inputs)]
    outs = [f"o{k}" for k in range(n_out)]
    vout = [h.make_tensor_value_info(o, t, None) for o, t in zip(outs, types)]
    graph = h.make_graph([h.make_node(op, names, outs, **attrs)], "g", vin, vout)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 22)])
    model.ir_version = 10
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip(names, inputs)))


# ---------------------------------------------------------------- the conformance suite
def test_new_ops_forward_passes_through_the_engine():
    reg = plugins.load(("convspec.backends.onnxruntime_backend",), autoload=False)
    plan = Plan(profile="full", seed=0, ops=NEW_OPS, sources=reg.case_sources)
    passed = {}
    for case in (c for c in plan_cases(plan) if applies(c, B)):
        r = evaluate(B, case)
        forward = [c for c in r["checks"] if c["what"] != "backward"]
        assert all(c["status"] == "pass" for c in forward), (r["case_id"], r.get("message"), r["checks"])
        if case.op == "local_response_norm" and not forward:  # no kernel: float64, or an even size
            assert r["status"] == "unsupported", (r["case_id"], r["status"], r.get("message"))
            assert case.dtype == "float64" or case.params["size"] % 2 == 0, r["case_id"]
            continue
        if r["status"] not in ("invalid",):
            assert r["status"] in ("pass", "unsupported"), (r["case_id"], r["status"], r.get("message"))
            assert r["status"] == "pass" or all(
                "_backward" in c.get("message", "") for c in r["checks"] if c["status"] == "unsupported"
            ), (r["case_id"], r["checks"])  # forward only: a passing forward leaves the backward unsupported
        if forward:
            passed[case.op] = passed.get(case.op, 0) + 1
    assert set(passed) == set(NEW_OPS), passed
    assert all(n >= 10 for n in passed.values()), passed


# ---------------------------------------------------------------- batch norm
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_norm_exact(dtype):
    # per channel: mean 5 (c = 0) and -1 (c = 1), biased variance 3; eps = 1: sqrt(var + eps) = 2, xhat in
    # {1.5, -1.5, 0}: every step is exact
    x = np.array([[8, 2, 5], [5, 5, 5]], dtype=dtype)
    x = np.stack([x, x - 6], axis=1)  # (2, 2, 3)
    gamma, beta = np.array([2.0, -4.0], dtype), np.array([1.0, 3.0], dtype)
    want = R.batch_norm(x, gamma, beta, eps=1.0)
    assert set(np.unique(want[:, 0])) == {-2.0, 1.0, 4.0}
    exact(B.batch_norm(x, gamma, beta, eps=1.0), want)


def test_batch_norm_inference_exact():
    x = np.arange(24.0).reshape(2, 3, 4) - 10
    gamma, beta, mean, var = (
        np.array([2.0, -1.0, 0.5]),
        np.array([1.0, 0.0, -3.0]),
        np.array([1.0, -2.0, 0.0]),
        np.array([3.0, 15.0, 0.0]),
    )
    # eps = 1: sqrt(var + eps) = 2, 4, 1
    exact(
        B.batch_norm_inference(x, gamma, beta, mean, var, eps=1.0),
        R.batch_norm_inference(x, gamma, beta, mean, var, eps=1.0),
    )


def test_batch_norm_with_one_value_per_channel():
    """m = 1 (allowed by the spec: var = 0, y = beta): ONNX Runtime's training mode computes it."""
    x, gamma, beta = np.array([[3.0, -1.0]]), np.array([2.0, 5.0]), np.array([0.5, -1.0])
    exact(B.batch_norm(x, gamma, beta), R.batch_norm(x, gamma, beta))
    exact(B.batch_norm(x, gamma, beta), beta[None, :])


def test_onnx_epsilon_is_a_float32_attribute_so_eps_is_added_in_x_dtype():
    """ADAPT evidence: a float64 eps given as BatchNormalization's epsilon is rounded to float32 (AttributeProto.f;
    ORT keeps `float epsilon_`): 1 / sqrt(0 + 0.1) is off by 7e-9 relative. The backend adds eps as a tensor."""
    one, zero = np.ones(1), np.zeros(1)
    (y,) = raw("BatchNormalization", [np.ones((1, 1, 1)), one, zero, zero, zero], epsilon=0.1)
    assert y.item() == 1 / np.sqrt(np.float64(np.float32(0.1))) != 1 / np.sqrt(0.1)
    assert abs(y.item() * np.sqrt(0.1) - 1) > 1e-9
    got = B.batch_norm_inference(np.ones((1, 1, 1)), one, zero, zero, zero, eps=0.1)
    exact(got, R.batch_norm_inference(np.ones((1, 1, 1)), one, zero, zero, zero, eps=0.1))
    x = np.random.default_rng(0).standard_normal((3, 2, 4))
    np.testing.assert_allclose(
        B.batch_norm(x, np.ones(2), np.zeros(2), eps=0.1), R.batch_norm(x, np.ones(2), np.zeros(2), eps=0.1), rtol=1e-14
    )


# ---------------------------------------------------------------- running statistics
X5 = np.array([[1, 3, 5, 7, 9], [0, 0, 10, 0, 0]], dtype=np.float64).T.reshape(5, 2)  # (N=5, C=2)


def test_batch_norm_running_stats_exact_unbiased_and_inputs_untouched():
    # m = 5 per channel: channel 0 has mean 5, biased variance 8, unbiased 10
    rm, rv = np.array([1.0, -2.0]), np.array([2.0, 4.0])
    rm0, rv0 = rm.copy(), rv.copy()
    mean, var = B.batch_norm_running_stats(rm, rv, X5, momentum=0.5)
    want = R.batch_norm_running_stats(rm, rv, X5, momentum=0.5)
    exact(mean, want[0])
    exact(var, want[1])
    assert var[0] == 0.5 * 2.0 + 0.5 * 10.0  # the unbiased variance, weighted by the spec's momentum
    exact(rm, rm0)  # the caller's arrays are not updated in place
    exact(rv, rv0)
    assert not hasattr(B, "batch_norm_running_stats_backward")


def test_onnx_runtime_running_variance_is_biased_and_its_momentum_weighs_the_old_value():
    """Evidence of the running-stats ADAPT: ORT's own update with momentum 0.5 gives 0.5 * 2 + 0.5 * 8 = 5 (the
    BIASED batch variance 8; ONNX: "ReduceVar refers to the population variance"), the spec 6 (unbiased 10).
    With ONNX momentum 0.9 (the spec's 0.1) the old value gets 0.9."""
    rm, rv = np.array([1.0, -2.0]), np.array([2.0, 4.0])
    _, mean, var = raw("BatchNormalization", [X5, np.ones(2), np.zeros(2), rm, rv], 3, training_mode=1, momentum=0.5)
    assert var[0] == 5.0 and mean[0] == 0.5 * 1.0 + 0.5 * 5.0
    assert B.batch_norm_running_stats(rm, rv, X5, momentum=0.5)[1][0] == 6.0
    _, mean, var = raw("BatchNormalization", [X5, np.ones(2), np.zeros(2), rm, rv], 3, training_mode=1, momentum=0.9)
    # ... and its momentum is a float32 attribute: 0.9 is 0.89999998, off by 2e-8 relative in float64
    assert mean[0] != 0.9 * 1.0 + 0.1 * 5.0 and abs(mean[0] / (0.9 * 1.0 + 0.1 * 5.0) - 1) < 1e-7
    want = R.batch_norm_running_stats(rm, rv, X5, momentum=0.1)
    got = B.batch_norm_running_stats(rm, rv, X5, momentum=0.1)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=4e-16, atol=0)


def test_running_stats_needs_two_values_per_channel_but_onnx_runtime_takes_one():
    x = np.array([[3.0, -1.0]])  # m = 1: the spec's ShapeError (the unbiased variance divides by m - 1 = 0)
    with pytest.raises(SpecError, match="^x: the unbiased variance"):
        B.batch_norm_running_stats(np.zeros(2), np.ones(2), x)
    _, _, var = raw("BatchNormalization", [x, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2)], 3, training_mode=1)
    np.testing.assert_allclose(var, 0.9 * 1.0 + 0.1 * 0.0)  # ORT: the biased variance 0 of one value


def test_float32_stays_float32():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    c = np.ones(3, np.float32)
    assert B.batch_norm(x, c, c).dtype == np.float32
    assert B.batch_norm_inference(x, c, c, c, c).dtype == np.float32
    assert all(a.dtype == np.float32 for a in B.batch_norm_running_stats(c, c, x))
    assert B.local_response_norm(x, 3).dtype == np.float32
    assert B.dropout(x, np.ones_like(x), p=0.5).dtype == np.float32
    assert B.concat([x, x]).dtype == np.float32


# ---------------------------------------------------------------- local response norm
def test_local_response_norm_hand_computed_alpha_not_divided():
    # channels 1, 2, 3, 4; size 3: S = [1+4, 1+4+9, 4+9+16, 9+16] = [5, 14, 29, 25]; alpha 1, k 1, beta 1:
    # D = 1 + S = [6, 15, 30, 26], y = x / D
    x = np.arange(1.0, 5.0, dtype=np.float32).reshape(1, 4, 1, 1)
    want = np.array([1 / 6, 2 / 15, 3 / 30, 4 / 26]).reshape(x.shape)
    got = B.local_response_norm(x, 3, alpha=1.0, beta=1.0, k=1.0)
    np.testing.assert_allclose(got, want, rtol=3e-7, atol=0)
    np.testing.assert_allclose(R.local_response_norm(x.astype(np.float64), 3, alpha=1.0, beta=1.0, k=1.0), want)
    # ONNX's own LRN divides alpha by size: D = 1 + S / 3
    (onnx_y,) = raw("LRN", [x], size=3, alpha=1.0, beta=1.0, bias=1.0)
    np.testing.assert_allclose(onnx_y.ravel(), [1 / (1 + 5 / 3), 2 / (1 + 14 / 3), 3 / (1 + 29 / 3), 4 / (1 + 25 / 3)])


@pytest.mark.parametrize("shape", [(2, 7), (2, 7, 3), (2, 7, 3, 2), (1, 7, 2, 3, 2)])
@pytest.mark.parametrize("size", [1, 3, 5, 9])
def test_local_response_norm_any_ndim_and_odd_size(shape, size):
    """ADAPT: ORT's LRN kernel takes 4-D only; (N, C, *spatial) runs as (N, C, prod(spatial), 1)."""
    x = np.random.default_rng(size).standard_normal(shape).astype(np.float32)
    kw = {"alpha": 0.5, "beta": 0.75, "k": 2.0}
    want = R.local_response_norm(x.astype(np.float64), size, **kw)
    np.testing.assert_allclose(B.local_response_norm(x, size, **kw), want, rtol=2e-6, atol=0)


def test_local_response_norm_unsupported_where_onnx_runtime_refuses():
    x = np.ones((1, 4, 1, 1), np.float32)
    for size in (2, 4):
        with pytest.raises(Unsupported, match="odd sizes only"):
            B.local_response_norm(x, size)
        with pytest.raises(Exception, match=r"size_ % 2 == 1"):  # ONNX Runtime's own refusal (lrn.h)
            raw("LRN", [x], size=size)
    for kw, enforced in (({"alpha": 0.0}, "alpha_ > 0"), ({"beta": 0.0}, "beta_ > 0"), ({"beta": -0.5}, "beta_ > 0")):
        assert np.isfinite(R.local_response_norm(x.astype(np.float64), 3, **kw)).all()  # the spec allows it
        with pytest.raises(Unsupported, match=enforced.replace(" ", r"\s*")):  # ORT's kernel refuses it (lrn.h)
            B.local_response_norm(x, 3, **kw)
    with pytest.raises(Unsupported, match="NOT_IMPLEMENTED"):  # no float64 LRN kernel in ONNX Runtime
        B.local_response_norm(x.astype(np.float64), 3)
    with pytest.raises(Exception, match="NumDimensions"):  # the 4-D-only kernel (the backend reshapes)
        raw("LRN", [np.ones((1, 4, 2), np.float32)], size=3)


def test_onnx_operator_places_an_even_window_one_channel_later_than_the_spec():
    """ONNX's LRN (the onnx.reference evaluator, which runs even sizes): the window of c is c - floor((size-1)/2)
    .. c + ceil((size-1)/2), so size 2 sums c .. c+1; the spec's is c - size//2 .. c + (size-1)//2 = c-1 .. c.
    (onnx 1.23's op_lrn.py loops `for c in range(x.shape[0])`, over the batch axis: with N = C = 4 every channel
    is computed, also once that loop is fixed.)"""
    from onnx.reference import ReferenceEvaluator

    h = onnx.helper
    x = np.tile(np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(1, 4, 1, 1), (4, 1, 1, 1))
    vi = h.make_tensor_value_info
    graph = h.make_graph(
        [h.make_node("LRN", ["x"], ["y"], size=2, alpha=2.0, beta=1.0, bias=1.0)],
        "g",
        [vi("x", onnx.TensorProto.FLOAT, x.shape)],
        [vi("y", onnx.TensorProto.FLOAT, None)],
    )
    (y,) = ReferenceEvaluator(h.make_model(graph, opset_imports=[h.make_opsetid("", 22)])).run(None, {"x": x})
    after = [1 + 4, 4 + 9, 9 + 16, 16]  # c .. c+1 (alpha / size = 1)
    before = [1, 1 + 4, 4 + 9, 9 + 16]  # c-1 .. c
    for n in range(4):
        np.testing.assert_allclose(y[n].ravel(), [v / (1 + s) for v, s in zip(range(1, 5), after)], rtol=1e-6)
    np.testing.assert_allclose(
        R.local_response_norm(x[:1].astype(np.float64), 2, alpha=1.0, beta=1.0, k=1.0).ravel(),
        [v / (1 + s) for v, s in zip(range(1, 5), before)],
    )


# ---------------------------------------------------------------- dropout, concat
@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_dropout_exact_with_the_given_mask():
    x = np.array([[1.0, -2.0, np.inf], [3.0, np.nan, 0.5]])
    keep = np.array([[1, 0, 0], [1, 1, 0]], dtype=np.float64)
    want = R.dropout(x, keep, p=0.75)
    exact(B.dropout(x, keep, p=0.75), want)  # a dropped inf gives NaN (0 * inf), as the spec
    assert np.isnan(want[0, 2]) and want[0, 0] == 4.0
    exact(B.dropout(x, keep.astype(bool), p=0.75), want)  # a bool mask
    exact(B.dropout(x, keep.astype(np.int64), p=0.75), want)  # an integer mask


def test_onnx_dropout_draws_its_own_mask_and_is_the_identity_in_inference():
    """Why the backend applies the spec's mask with Mul and Div: ONNX's Dropout takes no mask."""
    x = np.arange(1.0, 7.0, dtype=np.float32).reshape(2, 3)
    exact(raw("Dropout", [x, np.array(0.5, np.float32)])[0], x)  # training_mode absent: the identity
    types = [onnx.TensorProto.FLOAT, onnx.TensorProto.BOOL]
    y, mask = raw("Dropout", [x, np.array(0.5, np.float32), np.array(True)], 2, types, seed=0)
    exact(y, np.where(mask, x / np.float32(0.5), np.float32(0)))  # its own mask, scale 1 / (1 - ratio)


def test_concat_exact():
    xs = [np.arange(6.0).reshape(2, 1, 3), np.zeros((2, 0, 3)), -np.arange(12.0).reshape(2, 2, 3)]
    exact(B.concat(xs, axis=1), R.concat(xs, axis=1))
    exact(B.concat(xs, axis=-2), R.concat(xs, axis=-2))
    exact(B.concat([xs[0]], axis=0), xs[0])
    exact(B.concat([xs[0].astype(np.float32), xs[2]]), R.concat([xs[0].astype(np.float32), xs[2]]))
    assert B.concat([xs[0].astype(np.float32), xs[2]]).dtype == np.float64  # the common dtype


# ---------------------------------------------------------------- errors: the NumPy backend's


@pytest.mark.parametrize("op, args, params", BAD, ids=IDS)
def test_errors_are_the_numpy_backends(op, args, params):
    assert_same_error(NP, B, op, args, params)


def test_fraction_arrays_are_left_to_the_reference():
    """Running statistics, dropout and concat are exact on Fraction arrays in the spec: the reference evaluates
    them, the backend reports them unsupported (not a SpecError)."""
    from fractions import Fraction

    xf = np.array([[Fraction(1), Fraction(2)], [Fraction(3), Fraction(5)]], dtype=object)
    with pytest.raises(Unsupported):
        B.batch_norm_running_stats(np.zeros(2), np.ones(2), xf)
    with pytest.raises(Unsupported):
        B.dropout(xf, np.ones((2, 2)), p=0.5)
    with pytest.raises(Unsupported):
        B.concat([xf, xf])
