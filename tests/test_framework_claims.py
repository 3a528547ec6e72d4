"""Executable claims: every statement docs/framework-differences.md makes about JAX, ONNX (reference evaluator
and ONNX Runtime) and TensorFlow has a probe here, named by the claim id the document gives it ([J1], [O3],
[T5], ...). A probe runs the framework's public API on the smallest input that shows the claim and asserts
what the document says. It is skipped, with the reason, when the framework is not installed.

Claims that did not hold as first written are asserted in their corrected form (the document says what
changed); the probe shows both the part that holds and the part that does not.
"""

from __future__ import annotations

import numpy as np
import pytest

nan = np.nan


def _need(module):
    return pytest.importorskip(module, reason=f"{module} not installed: pip install '.[{_EXTRA[module]}]'")


_EXTRA = {"jax": "jax", "onnx": "onnxruntime", "onnxruntime": "onnxruntime", "tensorflow": "tensorflow"}


@pytest.fixture(scope="module")
def jx():
    jax = _need("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax

    return jax, jnp, lax


@pytest.fixture(scope="module")
def tf():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return _need("tensorflow")


def _onnx_model(op, inputs, n_out=1, out_types=None, **attrs):
    onnx = _need("onnx")
    h = onnx.helper
    names = [f"in{i}" for i in range(len(inputs))]
    vin = [h.make_tensor_value_info(n, h.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in zip(names, inputs)]
    outs = [f"out{i}" for i in range(n_out)]
    types = out_types or [h.np_dtype_to_tensor_dtype(inputs[0].dtype)] * n_out
    vout = [h.make_tensor_value_info(o, t, None) for o, t in zip(outs, types)]
    graph = h.make_graph([h.make_node(op, names, outs, **attrs)], "claim", vin, vout)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 22)])
    model.ir_version = min(model.ir_version, 10)
    return model, dict(zip(names, inputs))


def onnx_ref(op, *inputs, n_out=1, out_types=None, **attrs):
    from onnx.reference import ReferenceEvaluator

    model, feeds = _onnx_model(op, list(inputs), n_out, out_types, **attrs)
    return ReferenceEvaluator(model).run(None, feeds)


def ort_run(op, *inputs, n_out=1, out_types=None, **attrs):
    ort = _need("onnxruntime")
    model, feeds = _onnx_model(op, list(inputs), n_out, out_types, **attrs)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def row(*v, dtype=np.float32):
    """A (1, 1, n) array."""
    return np.array(v, dtype=dtype).reshape(1, 1, -1)


def first_tap(k):
    w = np.zeros((1, 1, k), np.float32)
    w[0, 0, 0] = 1
    return w


# ================================================================ JAX
def test_j1_same_padding_odd_pad_at_the_end(jx):
    _, _, lax = jx
    assert lax.padtype_to_pads((5,), (2,), (1,), "SAME") == [(0, 1)]
    assert lax.padtype_to_pads((5,), (4,), (1,), "SAME") == [(1, 2)]
    assert lax.padtype_to_pads((5,), (3,), (2,), "SAME") == [(1, 1)]


def test_j2_conv_transpose_same_is_n_times_s_and_does_not_flip(jx):
    _, jnp, lax = jx
    y = jnp.array([1.0, 10.0, 100.0, 1000.0]).reshape(1, 4, 1)
    w = jnp.array([1.0, 2.0, 3.0]).reshape(3, 1, 1)
    same = lax.conv_transpose(y, w, (2,), "SAME", dimension_numbers=("NWC", "WIO", "NWC"))
    assert same.shape == (1, 8, 1)
    assert np.asarray(same).ravel()[:2].tolist() == [3.0, 2.0]  # taps in reverse order: no flip


def test_j3_reduce_window_max_propagates_nan(jx):
    _, jnp, lax = jx
    for v in ([1.0, nan, 3.0, 2.0], [nan, 1.0, 3.0, 2.0], [1.0, 3.0, 2.0, nan]):
        assert np.isnan(lax.reduce_window(jnp.array(v), -jnp.inf, lax.max, (4,), (4,), "VALID")[0])


def test_j4_relu_gradient_at_zero(jx):
    jax, jnp, _ = jx
    assert float(jax.grad(jax.nn.relu)(0.0)) == 0.0
    assert float(jax.grad(lambda x: jnp.maximum(x, 0.0))(0.0)) == 0.5


def test_j5_top_k_ties_lower_index_first(jx):
    _, jnp, lax = jx
    assert lax.top_k(jnp.array([1.0, 3.0, 3.0, 2.0, 3.0, 0.0]), 2)[1].tolist() == [1, 2]


def test_j11_top_k_ranks_positive_zero_above_negative_zero(jx):
    _, jnp, lax = jx
    assert lax.top_k(jnp.array([-0.0, 0.0, -1.0]), 1)[1].tolist() == [1]  # equal values, yet not index 0
    assert lax.top_k(jnp.array([0.0, -0.0, -1.0]), 1)[1].tolist() == [0]


def test_j12_dropout_selects_so_a_dropped_inf_or_nan_is_zero(jx):
    jax, jnp, _ = jx
    from jax.example_libraries import stax

    key = jax.random.key(0)
    mask = np.asarray(jax.random.bernoulli(key, 0.5, (8,)))  # the mask stax.Dropout(0.5) draws with this key
    assert mask.any() and not mask.all()
    x = np.where(mask, 1.0, np.array([np.inf, np.nan] * 4)).astype(np.float32)  # every dropped value inf or NaN
    _, apply = stax.Dropout(0.5)  # stax's rate is the KEEP probability
    np.testing.assert_array_equal(np.asarray(apply((), x, rng=key)), np.where(mask, 2.0, 0.0))  # 0, not NaN
    # XLA rewrites x * convert(bool mask) to select(mask, x, 0) (openxla/xla#2438): 0 again, under jit
    bool_mask = jax.jit(lambda a, k: a * k.astype(a.dtype))(jnp.asarray(x), jnp.asarray(mask))
    np.testing.assert_array_equal(np.asarray(bool_mask), np.where(mask, 1.0, 0.0))
    # a float mask multiplies: 0 * inf and 0 * NaN are NaN (the spec's x * keep / (1 - p))
    float_mask = jax.jit(lambda a, k: a * k)(jnp.asarray(x), jnp.asarray(mask, jnp.float32))
    assert np.isnan(np.asarray(float_mask)[~mask]).all()


def test_j13_standardize_default_variance_cancels_and_stax_batch_norm_uses_it(jx):
    jax, jnp, _ = jx
    from jax.example_libraries import stax

    x = jnp.array([[4096.0], [4097.0]], jnp.float32)  # one channel, m = 2: mean 4096.5, variance 0.25
    cancelled = 0.5 / np.sqrt(1e-5)  # x - mean = -+0.5 over sqrt(0 + eps): 158.11
    np.testing.assert_allclose(np.asarray(jax.nn.standardize(x, axis=0)).ravel(), [-cancelled, cancelled], rtol=1e-6)
    _, apply = stax.BatchNorm(axis=(0,))
    y = apply((jnp.zeros(1, jnp.float32), jnp.ones(1, jnp.float32)), x)
    np.testing.assert_allclose(np.asarray(y).ravel(), [-cancelled, cancelled], rtol=1e-6)
    mean, var = jnp.mean(x, axis=0, keepdims=True), jnp.var(x, axis=0, keepdims=True)  # two passes
    assert float(var[0, 0]) == 0.25
    two_pass = jax.nn.standardize(x, axis=0, mean=mean, variance=var)
    np.testing.assert_allclose(np.asarray(two_pass).ravel(), [-0.5, 0.5] / np.sqrt(0.25 + 1e-5), rtol=1e-6)


def test_j6_max_reduction_gradient_splits_ties_and_is_nan_at_nan(jx):
    jax, jnp, _ = jx
    assert jax.grad(jnp.max)(jnp.array([1.0, 3.0, 3.0])).tolist() == [0.0, 0.5, 0.5]
    assert np.isnan(jax.grad(jnp.max)(jnp.array([1.0, nan, 3.0]))).all()


def test_j7_max_pool_gradient_is_not_routed_to_a_leading_nan(jx):
    jax, jnp, lax = jx

    def f(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (2,), (2,), "VALID").sum()

    assert jax.grad(f)(jnp.array([1.0, nan, 3.0, 2.0])).tolist() == [0.0, 1.0, 1.0, 0.0]  # NaN second: routed
    assert jax.grad(f)(jnp.array([nan, 1.0, 3.0, 2.0])).tolist() == [0.0, 1.0, 1.0, 0.0]  # NaN first: not


def test_j8_max_pool_gradient_with_window_dilation_is_not_implemented(jx):
    jax, jnp, lax = jx

    def f(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (2,), (1,), "VALID", window_dilation=(2,)).sum()

    with pytest.raises(NotImplementedError, match="window dilation"):
        jax.grad(f)(jnp.arange(4.0))


def test_j10_cpu_max_reduction_drops_nan_from_4096_elements_on(jx):
    _, jnp, _ = jx
    for dtype in (jnp.float32, jnp.float64):
        assert np.isnan(float(jnp.max(jnp.asarray(np.r_[nan, np.zeros(4094)], dtype))))
        assert float(jnp.max(jnp.asarray(np.r_[nan, np.zeros(4095)], dtype))) == 0.0
    x = np.zeros((33, 125), np.float32)  # 4125 elements, reduced per row: the NaNs vanish too
    x[:, 1] = nan
    assert not np.isnan(np.asarray(jnp.max(jnp.asarray(x), axis=-1))).any()


def test_j9_cpu_flushes_subnormal_results_to_zero(jx):
    _, jnp, _ = jx
    tiny = jnp.array([1e-40], jnp.float32)  # a float32 subnormal
    assert float(np.asarray(tiny)[0]) != 0.0  # stored as is
    assert float((tiny * 1.0)[0]) == 0.0  # any arithmetic result is flushed
    assert float(jnp.array([1e-310], jnp.float64)[0] * 1.0) == 0.0  # float64 too


# ================================================================ ONNX: reference evaluator (onnx.reference)
def test_o1_same_upper_is_convspec_same_lower_mirrors():
    x = row(1, 2, 3, 4, 5)
    upper = onnx_ref("Conv", x, first_tap(2), kernel_shape=[2], auto_pad="SAME_UPPER")[0]
    lower = onnx_ref("Conv", x, first_tap(2), kernel_shape=[2], auto_pad="SAME_LOWER")[0]
    assert upper.ravel().tolist() == [1, 2, 3, 4, 5] and lower.ravel().tolist() == [0, 1, 2, 3, 4]


def test_o2_average_pool_count_include_pad_defaults_to_zero():
    onnx = _need("onnx")
    for v in (7, 10, 11, 19, 22):
        assert onnx.defs.get_schema("AveragePool", v).attributes["count_include_pad"].default_value.i == 0


def test_o3_reference_ceil_mode_drops_a_window_starting_in_the_end_padding():
    lengths = [
        onnx_ref("MaxPool", row(*range(n)), kernel_shape=[k], strides=[s], pads=[p, p], ceil_mode=1)[0].size
        for n, k, s, p in [(4, 2, 2, 1), (5, 2, 2, 1), (5, 3, 2, 1), (6, 3, 3, 1), (2, 2, 2, 1), (5, 2, 3, 1)]
    ]
    assert lengths == [3, 3, 3, 3, 2, 2]  # PyTorch's lengths


def test_o4_ceil_mode_with_auto_pad_is_refused_by_the_reference_average_pool_only():
    x = row(1, 2, 3, 4, 5)
    with pytest.raises(AssertionError, match="ceil_mode is not supported with auto_pad"):
        onnx_ref("AveragePool", x, kernel_shape=[2], strides=[2], auto_pad="SAME_UPPER", ceil_mode=1)
    assert onnx_ref("MaxPool", x, kernel_shape=[2], strides=[2], auto_pad="SAME_UPPER", ceil_mode=1)[0].size == 3


@pytest.mark.parametrize(
    ("n", "k", "s", "p", "pytorch"),
    [
        (5, 2, 2, 0, [1.5, 3.5, 5.0]),  # ceil overhang 1: identical
        (6, 3, 2, 1, [1.0, 3.0, 5.0, 3.0]),  # overhang 1: identical
        (5, 4, 3, 0, [2.5, 4.5]),  # overhang 2: differs
        (6, 4, 3, 1, [1.5, 4.5, 3.0]),  # overhang 2: differs
    ],
)
def test_o5_reference_average_pool_ceil_overhang_matches_pytorch_only_up_to_one(n, k, s, p, pytorch):
    x = row(*range(1, n + 1))
    got = onnx_ref("AveragePool", x, kernel_shape=[k], strides=[s], pads=[p, p], ceil_mode=1, count_include_pad=1)
    overhang = (len(pytorch) - 1) * s + k - (n + 2 * p)
    assert (got[0].ravel().tolist() == pytorch) == (overhang <= 1)
    # ONNX Runtime's AveragePool matches PyTorch (and the spec) in all four
    assert np.allclose(
        ort_run("AveragePool", x, kernel_shape=[k], strides=[s], pads=[p, p], ceil_mode=1, count_include_pad=1)[
            0
        ].ravel(),
        pytorch,
    )


def test_o6_reference_max_pool_nan_is_path_dependent():
    onnx = _need("onnx")
    i64 = [onnx.TensorProto.FLOAT, onnx.TensorProto.INT64]
    common = onnx_ref("MaxPool", row(nan, 1, 3, 2, 0), n_out=2, out_types=i64, kernel_shape=[4], strides=[1])
    strided = onnx_ref("MaxPool", row(nan, 1, 3, 2, 0), n_out=2, out_types=i64, kernel_shape=[4], strides=[2])
    assert common[0].ravel().tolist() == [3.0, 3.0] and np.isnan(strided[0].ravel()[0])


def test_o7_reference_max_pool_same_lower_with_stride_has_the_wrong_length():
    assert onnx_ref("MaxPool", row(1, 2, 3, 4, 5), kernel_shape=[2], strides=[2], auto_pad="SAME_LOWER")[0].size == 2


def test_o8_conv_transpose_pads_crop_and_same_gives_n_times_s():
    y = row(1, 10, 100, 1000)
    w = np.array([1, 2, 3], np.float32).reshape(1, 1, 3)
    full = ort_run("ConvTranspose", y, w, kernel_shape=[3], strides=[2])[0].ravel()
    cropped = ort_run("ConvTranspose", y, w, kernel_shape=[3], strides=[2], pads=[1, 1])[0].ravel()
    upper = ort_run("ConvTranspose", y, w, kernel_shape=[3], strides=[2], auto_pad="SAME_UPPER")[0].ravel()
    assert full.size == 9 and cropped.tolist() == full[1:-1].tolist() and upper.tolist() == full[:8].tolist()


# ================================================================ ONNX Runtime (CPU provider)
def test_o9_onnxruntime_refuses_pads_not_smaller_than_the_kernel():
    x = row(1, 2, 3, 4, 5)
    assert ort_run("MaxPool", x, kernel_shape=[3], pads=[2, 2], strides=[1])[0].size == 7  # pad < kernel: fine
    with pytest.raises(Exception, match="Pad should be smaller than kernel"):
        ort_run("MaxPool", x, kernel_shape=[2], pads=[2, 0], strides=[1])


def test_o10_onnxruntime_max_pool_ignores_nan_unless_first_and_global_max_pool_ignores_nan():
    onnx = _need("onnx")
    i64 = [onnx.TensorProto.FLOAT, onnx.TensorProto.INT64]
    y, idx = ort_run("MaxPool", row(1, nan, 3, 2), n_out=2, out_types=i64, kernel_shape=[4])
    assert y.ravel().tolist() == [3.0] and idx.ravel().tolist() == [2]
    y, idx = ort_run("MaxPool", row(nan, 1, 3, 2), n_out=2, out_types=i64, kernel_shape=[4])
    assert np.isnan(y.ravel()[0]) and idx.ravel().tolist() == [0]
    assert ort_run("MaxPool", row(1, nan, 3, 2), kernel_shape=[4])[0].ravel().tolist() == [3.0]  # MLAS path
    assert ort_run("GlobalMaxPool", row(nan, 1, 3))[0].ravel().tolist() == [3.0]


def test_o11_onnxruntime_has_no_float64_convolution_or_pooling_kernels():
    x = row(1, 2, 3, dtype=np.float64)
    for op, extra in [("Conv", [np.ones((1, 1, 2))]), ("AveragePool", []), ("GlobalMaxPool", [])]:
        attrs = {"kernel_shape": [2]} if op == "AveragePool" else {}
        with pytest.raises(Exception, match="NOT_IMPLEMENTED"):
            ort_run(op, x, *extra, **attrs)
    assert ort_run("MaxPool", x, kernel_shape=[2])[0].dtype == np.float64  # MaxPool has one


def test_o12_onnxruntime_conv_transpose_output_padding_must_be_smaller_than_the_stride():
    y = np.ones((1, 1, 3), np.float32)
    w = np.ones((1, 1, 2), np.float32)
    with pytest.raises(Exception, match="output_padding"):
        ort_run("ConvTranspose", y, w, kernel_shape=[2], strides=[1], dilations=[2], output_padding=[1])


def test_o13_onnxruntime_sigmoid_saturates_early():
    x = np.array([-40.0, -20.0, -17.0], np.float32)
    got = ort_run("Sigmoid", x)[0]
    exact = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert got[0] == 0.0 and got[1] == 0.0  # exact: 4.2e-18, 2.1e-9 (normal float32 numbers)
    assert abs(got[2] / exact[2] - 1) > 0.5  # sigmoid(-17): 8.9e-8 for 4.1e-8
    assert ort_run("Sigmoid", x.astype(np.float64))[0][0] == 0.0  # float64 too, at -40


def test_o14_onnxruntime_top_k_ties_lower_index_first():
    onnx = _need("onnx")
    v = np.array([1, 3, 3, 2, 3, 0], np.float32)
    _, idx = ort_run(
        "TopK", v, np.array([2], np.int64), n_out=2, out_types=[onnx.TensorProto.FLOAT, onnx.TensorProto.INT64]
    )
    assert idx.tolist() == [1, 2]


# ================================================================ TensorFlow (CPU)
def _nhwc(v, depth=1, dtype=np.float32):
    return np.array(v, dtype).reshape(1, 1, -1, 1).repeat(depth, axis=3)


def test_t1_same_padding_is_convspecs_formula(tf):
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 5, 1)
    for k, s, want in [(2, 1, [1, 2, 3, 4, 5]), (4, 1, [0, 1, 2, 3, 4]), (4, 2, [0, 2, 4]), (3, 2, [0, 2, 4])]:
        w = np.zeros((k, 1, 1), np.float32)
        w[0] = 1
        assert tf.nn.conv1d(x, w, s, "SAME").numpy().ravel().tolist() == want


def test_t2_avg_pool_same_excludes_the_padding(tf):
    x = np.ones((1, 5, 5, 1), np.float32)
    assert np.allclose(tf.nn.avg_pool2d(x, 3, 1, "SAME").numpy(), 1.0)  # an include-pad corner would be 4/9


def test_t3_cpu_max_pool_drops_nan_for_every_channel_count(tf):
    # claimed: depends on the channel count (TF#125965, arm64). On x86-64 (this machine) it drops NaN for
    # every depth, vectorised or not.
    for depth in range(1, 10):
        for v in ([3.0, nan], [nan, 3.0]):
            got = tf.nn.max_pool2d(_nhwc(v, depth), (1, 2), 1, "VALID").numpy().ravel()
            assert got.tolist() == [3.0] * depth
    got = tf.nn.max_pool2d(_nhwc([3.0, nan], 4, np.float64), (1, 2), 1, "VALID").numpy().ravel()
    assert got.tolist() == [3.0] * 4


def test_t4_conv_transpose_padding_string_also_decides_the_crop(tf):
    y = np.array([1, 10, 100, 1000], np.float32).reshape(1, 4, 1)
    w = np.array([1, 2, 3], np.float32).reshape(3, 1, 1)
    full = tf.nn.conv_transpose(y, w, [1, 9, 1], 2, "VALID").numpy().ravel()  # VALID: nothing cropped
    assert full.tolist() == [1, 2, 13, 20, 130, 200, 1300, 2000, 3000]
    # SAME crops the full output by the SAME split of the requested size: n=8 -> (0, 1), n=7 -> (1, 1)
    assert tf.nn.conv_transpose(y, w, [1, 8, 1], 2, "SAME").numpy().ravel().tolist() == full[:8].tolist()
    assert tf.nn.conv_transpose(y, w, [1, 7, 1], 2, "SAME").numpy().ravel().tolist() == full[1:8].tolist()


def test_t5_max_pool_with_argmax_ties_go_to_the_first(tf):
    _, arg = tf.nn.max_pool_with_argmax(_nhwc([5.0, 5.0, 1.0, 5.0]), (1, 4), 1, "VALID")
    assert arg.numpy().ravel().tolist() == [0]
    _, arg = tf.nn.max_pool_with_argmax(_nhwc([1.0, 5.0, 5.0, 5.0, 1.0]), (1, 3), 1, "VALID")
    assert arg.numpy().ravel().tolist() == [1, 1, 2]


def test_t6_reduce_max_gradient_splits_ties_and_is_nan_at_nan(tf):
    for v, want in [([1.0, 3.0, 3.0], [0.0, 0.5, 0.5])]:
        x = tf.constant(v)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_max(x)
        assert tape.gradient(y, x).numpy().tolist() == want
    x = tf.constant([1.0, nan, 3.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_max(x)
    assert np.isnan(y.numpy()) and np.isnan(tape.gradient(y, x).numpy()).all()


def test_t7_top_k_with_nan_depends_on_the_position(tf):
    assert tf.math.top_k([nan, 1.0, 2.0, 3.0], 3).indices.numpy().tolist() == [0, 3, 2]  # NaN kept
    assert tf.math.top_k([1.0, 2.0, 3.0, nan], 3).indices.numpy().tolist() == [2, 1, 0]  # NaN dropped
    assert tf.math.top_k([1.0, 3.0, 3.0, 2.0, nan], 1).indices.numpy().tolist() == [0]  # not even the max


def test_t8_cpu_refuses_dilated_transposed_convolution_in_float64(tf):
    for dtype, refused in [(np.float32, False), (np.float64, True)]:  # float32 runs oneDNN's kernel
        y, w = np.ones((1, 4, 4, 1), dtype), np.ones((3, 3, 1, 1), dtype)
        if refused:
            with pytest.raises(tf.errors.InvalidArgumentError, match="dilation rates larger than 1"):
                tf.nn.conv2d_transpose(y, w, [1, 8, 8, 1], 1, "VALID", dilations=2)
        else:
            assert tf.nn.conv2d_transpose(y, w, [1, 8, 8, 1], 1, "VALID", dilations=2).shape == (1, 8, 8, 1)


def test_t9_pool_with_dilation_needs_unit_strides(tf):
    x = np.ones((1, 6, 6, 1), np.float32)
    assert tf.nn.pool(x, [2, 2], "MAX", strides=[1, 1], padding="VALID", dilations=[2, 2]).shape == (1, 4, 4, 1)
    with pytest.raises(ValueError, match="strides > 1"):
        tf.nn.pool(x, [2, 2], "MAX", strides=[2, 2], padding="VALID", dilations=[2, 2])


def test_t10_cpu_flushes_subnormal_results_to_zero(tf):
    tiny = tf.constant([1e-40], tf.float32)
    assert float(tiny.numpy()[0]) != 0.0 and float((tiny * 1.0).numpy()[0]) == 0.0
    assert float((tf.constant([1e-310], tf.float64) * 1.0).numpy()[0]) == 0.0
