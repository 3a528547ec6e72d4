"""The PyTorch backends: conformance of torch-cpu on the quick profile (every failure must be a declared
deviation), each adaptation of a spec feature PyTorch lacks checked against the reference, the declared
deviations (PyTorch really differs there), errors, lazy import, availability and registration."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from convspec.backends import torch_backend
from convspec.conformance import plugins
from convspec.conformance.cases import Case
from convspec.conformance.evaluate import evaluate
from convspec.conformance.run import Plan, applies, plan_cases

from convspec import ParameterError, ShapeError
from convspec import reference as R

torch = pytest.importorskip("torch")

B = torch_backend.TorchBackend()
CUDA = torch_backend.TorchBackend("torch-cuda", "cuda")


def t(a, dtype=np.float64):
    return B.from_numpy(np.asarray(a, dtype=dtype))


def n(a):
    return B.to_numpy(a)


def close(got, want, rtol=1e-12):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(
        got, want, rtol=rtol, atol=rtol * max(1.0, float(np.nanmax(np.abs(want))) if want.size else 1.0)
    )


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- import, availability, registration
def test_module_imports_without_importing_torch():
    code = "import sys; import convspec.backends.torch_backend as m; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_reports_torch_not_installed_when_torch_is_absent():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from convspec.backends import torch_backend as m\n"
        "print(*[b.name + '=' + str(b.availability()) for b in m.backends()], sep='|')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (
        out.stdout.strip()
        == "torch-cpu=torch not installed|torch-cuda=torch not installed|torch-cuda-tf32=torch not installed"
    )


def test_registered_through_the_plugin_hook():
    reg = plugins.load(("convspec.backends.torch_backend",), autoload=False)
    assert {"torch-cpu", "torch-cuda", "torch-cuda-tf32"} <= set(reg.backends)
    assert reg.backends["torch-cpu"].availability() is None
    assert reg.backends["torch-cpu"].version == torch.__version__
    assert reg.backends["torch-cuda-tf32"].dtypes == ("float32",)
    assert "float16" in reg.backends["torch-cuda"].dtypes and "bfloat16" in reg.backends["torch-cuda"].dtypes


def test_cuda_availability_reason():
    reason = CUDA.availability()
    if torch.cuda.is_available():
        assert reason is None
    else:
        assert reason == "no CUDA device"


def test_cuda_conv_matches_reference_with_tf32_off():
    reason = CUDA.availability()
    if reason is not None:
        pytest.skip(f"torch-cuda unavailable: {reason}")
    x, w = (
        rng().standard_normal((2, 3, 9, 9)).astype(np.float32),
        rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32),
    )
    y = CUDA.to_numpy(CUDA.conv(CUDA.from_numpy(x), CUDA.from_numpy(w), padding="same", stride=2))
    close(y, R.conv(x.astype(np.float64), w.astype(np.float64), padding="same", stride=2), rtol=1e-5)
    assert torch.backends.cudnn.allow_tf32 is True  # restored after the op: PyTorch's default


# ---------------------------------------------------------------- the conformance suite
def test_quick_profile_passes_or_declares_deviations():
    reg = plugins.load(("convspec.backends.torch_backend",), autoload=False)
    cases = [c for c in plan_cases(Plan(profile="quick", seed=0, sources=reg.case_sources)) if applies(c, B)]
    assert len(cases) > 200
    statuses = {}
    for case in cases:
        r = evaluate(B, case)
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        assert r["status"] in ("pass", "deviation", "invalid"), (r["case_id"], r.get("message"), r["checks"])
        if r["status"] == "deviation":
            assert r["deviation"]
    assert statuses["pass"] > 200 and statuses.get("deviation", 0) >= 1


# ---------------------------------------------------------------- adaptations
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_conv_same_with_stride(stride, k):
    x, w, b = rng(k).standard_normal((2, 2, 7, 8)), rng(stride).standard_normal((3, 2, k, k)), rng(9).standard_normal(3)
    close(n(B.conv(t(x), t(w), t(b), stride=stride, padding="same")), R.conv(x, w, b, stride=stride, padding="same"))
    g = rng(5).standard_normal(R.conv(x, w, b, stride=stride, padding="same").shape)
    for got, want in zip(
        B.conv_backward(t(g), t(x), t(w), t(b), stride=stride, padding="same"),
        R.conv_backward(g, x, w, b, stride=stride, padding="same"),
    ):
        close(n(got), want)


@pytest.mark.parametrize("padding", [((0, 2), (1, 0)), "same", "full", 1])
def test_conv_transpose_padding_forms(padding):
    y, w, b = rng(1).standard_normal((1, 4, 4, 3)), rng(2).standard_normal((4, 2, 3, 2)), rng(3).standard_normal(2)
    want = R.conv_transpose(y, w, b, stride=2, padding=padding)
    close(n(B.conv_transpose(t(y), t(w), t(b), stride=2, padding=padding)), want)
    g = rng(4).standard_normal(want.shape)
    for got, ref in zip(
        B.conv_transpose_backward(t(g), t(y), t(w), t(b), stride=2, padding=padding),
        R.conv_transpose_backward(g, y, w, b, stride=2, padding=padding),
    ):
        close(n(got), ref)


@pytest.mark.parametrize(
    "params",
    [
        {"kernel_size": 3, "stride": 2, "padding": ((0, 2),), "ceil_mode": True},
        {"kernel_size": 3, "stride": 1, "padding": 2},  # pad > kernel_size // 2
        {"kernel_size": 3, "stride": 1, "padding": 2, "dilation": 2},
        {"kernel_size": 1, "stride": 2, "padding": ((0, 1),), "ceil_mode": True},  # the spec drops the last window
    ],
)
def test_max_pool_pads_pytorch_refuses(params):
    x = rng(7).integers(0, 3, (2, 2, 9)).astype(np.float64)  # ties
    close(n(B.max_pool(t(x), **params)), R.max_pool(x, **params))
    np.testing.assert_array_equal(n(B.max_pool_indices(t(x), **params)), R.max_pool_indices(x, **params))
    g = rng(8).integers(-3, 4, R.max_pool(x, **params).shape).astype(np.float64)
    close(n(B.max_pool_backward(t(g), t(x), **params)[0]), R.max_pool_backward(g, x, **params)[0])


@pytest.mark.parametrize("cip", [False, True])
@pytest.mark.parametrize(
    "params",
    [
        {"kernel_size": (2, 3), "stride": 1, "padding": 1, "dilation": (2, 1)},
        {"kernel_size": 2, "stride": 2, "padding": ((1, 0), (0, 1)), "ceil_mode": True},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},  # native
    ],
)
def test_avg_pool_dilation_and_padding(params, cip):
    x = rng(3).standard_normal((1, 2, 7, 6))
    want = R.avg_pool(x, count_include_pad=cip, **params)
    close(n(B.avg_pool(t(x), count_include_pad=cip, **params)), want)
    g = rng(4).standard_normal(want.shape)
    close(
        n(B.avg_pool_backward(t(g), t(x), count_include_pad=cip, **params)[0]),
        R.avg_pool_backward(g, x, count_include_pad=cip, **params)[0],
    )


@pytest.mark.parametrize(
    "params",
    [
        {"kernel_size": 3, "stride": 1, "padding": ((2, 0),)},
        {"kernel_size": 2, "stride": 1, "padding": ((2, 0),), "dilation": 2},
    ],
)
def test_max_pool_all_minus_inf_window_never_picks_the_padding(params):
    """PyTorch's kernel keeps a window's first tap unless a greater value (or NaN) comes: over F.pad's -inf
    padding, a window of -inf inputs would name a padding element; the spec names its first real element,
    and the gradient goes there."""
    x = np.array([[[-np.inf, -np.inf, 1.0, -np.inf]]])
    want = R.max_pool_indices(x, **params)
    np.testing.assert_array_equal(n(B.max_pool_indices(t(x), **params)), want)
    close(n(B.max_pool(t(x), **params)), R.max_pool(x, **params))
    g = np.arange(1.0, 1.0 + want.size).reshape(want.shape)
    close(n(B.max_pool_backward(t(g), t(x), **params)[0]), R.max_pool_backward(g, x, **params)[0])


def test_kmax_pool_ties_keep_the_smaller_index():
    x = np.array([[1, 3, 3, 2, 3, 0], [0, 0, 0, 0, 0, 0]], dtype=np.float64)
    np.testing.assert_array_equal(n(B.kmax_pool_indices(t(x), 2)), [[1, 2], [0, 1]])
    big = rng(2).integers(0, 3, (3, 500)).astype(np.float64)
    np.testing.assert_array_equal(n(B.kmax_pool_indices(t(big), 40)), R.kmax_pool_indices(big, 40))
    x_nan = np.array([[1.0, np.nan, 5.0, np.nan]])
    np.testing.assert_array_equal(n(B.kmax_pool_indices(t(x_nan), 3)), [[1, 2, 3]])


def test_float32_stays_float32():
    x, w = (
        rng().standard_normal((1, 1, 5, 5)).astype(np.float32),
        rng(1).standard_normal((2, 1, 3, 3)).astype(np.float32),
    )
    assert n(B.conv(t(x, np.float32), t(w, np.float32))).dtype == np.float32
    dx, dw, db = B.conv_backward(t(np.ones((1, 2, 3, 3)), np.float32), t(x, np.float32), t(w, np.float32), None)
    assert n(dx).dtype == np.float32 and n(dw).dtype == np.float32 and db is None


# ---------------------------------------------------------------- declared deviations are real
def test_max_pool_nan_index_is_the_last_nan_and_declared():
    x = np.array([[[np.nan, 1.0, np.nan, 2.0]]])
    assert n(B.max_pool_indices(t(x), 4)).tolist() == [[[2]]]  # PyTorch: last NaN
    assert R.max_pool_indices(x, 4).tolist() == [[[0]]]  # spec: first NaN
    case = Case(
        op="max_pool",
        shapes={"x": [1, 1, 4]},
        params={"kernel_size": 4},
        data="explicit",
        values={"x": x.tolist()},
        source="corner",
        name="nan2",
    )
    r = evaluate(B, case)
    assert r["status"] == "deviation" and "LAST NaN" in r["deviation"]
    one_nan = Case(
        op="max_pool",
        shapes={"x": [1, 1, 4]},
        params={"kernel_size": 2},
        data="explicit",
        values={"x": [[[np.nan, 1.0, np.nan, 2.0]]]},
        source="corner",
        name="nan1",
    )
    assert B.deviation(one_nan) is None  # one NaN per window: no deviation declared
    assert evaluate(B, one_nan)["status"] == "pass"


def test_relu_gradient_at_nan_is_declared():
    x = np.array([np.nan, -1.0, 0.0, 2.0])
    assert n(B.relu_backward(t(np.ones(4)), t(x))[0]).tolist() == [1.0, 0.0, 0.0, 1.0]
    assert R.relu_backward(np.ones(4), x)[0].tolist() == [0.0, 0.0, 0.0, 1.0]
    case = Case(
        op="relu",
        shapes={"x": [4]},
        params={},
        data="explicit",
        values={"x": x.tolist()},
        source="corner",
        name="relu-nan",
    )
    r = evaluate(B, case)
    assert r["status"] == "deviation" and "NaN" in r["deviation"]
    assert {c["what"] for c in r["checks"] if c["status"] == "fail"} == {"grad x"}  # the forward still matches


def test_tf32_tier_is_a_precision_tier_with_its_own_bound_not_a_deviation():
    tier = torch_backend.TorchBackend("torch-cuda-tf32", "cuda", tf32=True)
    case = Case(op="conv", shapes={"x": [1, 1, 4, 4], "w": [1, 1, 2, 2], "b": None}, params={}, dtype="float32")
    assert tier.dtypes == ("float32",) and tier.product_roundoff == 2.0**-11
    assert tier.deviation(case) is None and B.deviation(case) is None and B.product_roundoff == 0.0


# ---------------------------------------------------------------- errors
def test_errors_name_the_parameter():
    with pytest.raises(ShapeError, match="^x: channel mismatch"):
        B.conv(t(np.zeros((1, 3, 5, 5))), t(np.zeros((2, 2, 3, 3))))
    with pytest.raises(ParameterError, match="^padding: .*entirely in the padding"):
        B.max_pool(t(np.zeros((1, 1, 1))), 1, padding=((3, 0),), stride=1)
    with pytest.raises(ShapeError, match="^grad_out: must have the forward output's shape"):
        B.relu_backward(t(np.zeros(3)), t(np.zeros(4)))
    with pytest.raises(ShapeError, match="^x: must have at least 1 dimensions, got shape \\(\\)"):
        B.flatten(B.from_numpy(np.zeros(())))  # a 0-d array stays 0-d on its way to a tensor
    assert B.from_numpy(np.float32(2.0)).shape == ()
    with pytest.raises(ParameterError, match="^labels: must lie in"):
        B.cross_entropy(t(np.zeros((2, 3))), B.from_numpy(np.array([0, 3])))
