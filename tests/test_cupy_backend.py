"""The CuPy backend without a GPU: availability gating (cupy missing, no device, a CUDA error at the
first use, a probe that crashes; the run goes on with the other backends), the backend's array-level
logic run over a NumPy stand-in through the conformance engine, the max-pool kernels' NumPy twins
against the shared kernels and the reference; and, on a machine with a CUDA device, the raw kernels
against their twins and the determinism of the backward passes (skipped elsewhere, with the reason)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from click.testing import CliRunner
from convspec.backends import cupy_backend
from convspec.backends._cupy import maxpool as MP
from convspec.backends._xp import pool as P
from convspec.backends._xp.geometry import Pool
from convspec.conformance import plugins
from convspec.conformance.cli import main
from convspec.conformance.evaluate import evaluate
from convspec.conformance.run import Plan, applies, plan_cases

from convspec import ParameterError
from convspec import reference as R


class NumpyStandIn(types.ModuleType):
    """NumPy under another name: `xp is numpy` is false in the shared kernels, so they take the
    branches they take under cupy, and the backend uses the twins of its raw kernels."""

    def __getattr__(self, name):
        return getattr(np, name)


XP = NumpyStandIn("numpy_stand_in")
HOST = cupy_backend.make_backend(XP)


# ---------------------------------------------------------------- fake cupy modules for the gating
class FakeCudaError(RuntimeError):
    """Shaped like cupy_backends.cuda.api.runtime.CUDARuntimeError (status + message)."""

    def __init__(self, status, msg):
        super().__init__(msg)
        self.status = status


def fake_cupy(*, count=1, count_error=None, first_use=None):
    """A module that looks enough like cupy for the probe. `first_use`: a callable run at the first
    allocation (raise, or kill the process); the tiny computation is done with NumPy otherwise."""
    cp = types.ModuleType("cupy")
    cp.__version__ = "0.0-fake"
    calls = []

    def get_device_count():
        calls.append(os.getpid())
        if count_error is not None:
            raise count_error
        return count

    def arange(*args, **kw):
        if first_use is not None:
            first_use()
        return np.arange(*args, **kw)

    cp.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_device_count))
    cp.arange, cp.float64, cp.asnumpy = arange, np.float64, np.asarray
    cp.calls = calls
    return cp


def test_module_imports_without_importing_cupy():
    code = "import sys; import convspec.backends.cupy_backend as m; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    b = cupy_backend.CupyBackend()
    assert b.availability() == "cupy not installed"
    assert b.version == ""


def test_no_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(count=0))
    assert cupy_backend.CupyBackend().availability() == "no CUDA device"
    monkeypatch.setitem(
        sys.modules,
        "cupy",
        fake_cupy(count_error=FakeCudaError(100, "cudaErrorNoDevice: no CUDA-capable device is detected")),
    )
    assert cupy_backend.CupyBackend().availability() == "no CUDA device"


def test_cuda_runtime_error_at_device_count(monkeypatch):
    err = FakeCudaError(35, "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version")
    fake = fake_cupy(count_error=err)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    b = cupy_backend.CupyBackend()
    assert (
        b.availability() == "CUDA runtime error: cudaErrorInsufficientDriver: "
        "CUDA driver version is insufficient for CUDA runtime version"
    )
    # the check ran in a forked child: this process never touched CUDA (its workers can still fork)
    assert fake.calls == []
    assert b.version == "0.0-fake"


def test_cuda_error_at_first_use(monkeypatch):
    def oom():
        raise FakeCudaError(2, "cudaErrorMemoryAllocation: out of memory")

    def no_nvrtc():
        raise OSError("libnvrtc.so.12: cannot open shared object file: No such file or directory")

    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(first_use=oom))
    assert cupy_backend.CupyBackend().availability() == "CUDA runtime error: cudaErrorMemoryAllocation: out of memory"
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(first_use=no_nvrtc))
    assert (
        cupy_backend.CupyBackend().availability()
        == "CUDA error at first use: OSError: libnvrtc.so.12: cannot open shared object file: No such file or directory"
    )


def test_probe_that_kills_its_process(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(first_use=lambda: os._exit(7)))
    assert cupy_backend.CupyBackend().availability() == "CUDA probe crashed (exit code 7)"


def test_working_device_and_cached_answer(monkeypatch):
    fake = fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    b = cupy_backend.CupyBackend()
    assert b.availability() is None
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert b.availability() is None  # answered once per backend object


def test_probe_in_process_reports_wrong_results():
    fake = fake_cupy()
    fake.asnumpy = lambda a: np.asarray(a) + 1
    assert cupy_backend.probe(fake) == "CUDA first use gave a wrong result (167.0 for 166)"
    assert fake.calls == [os.getpid()]


def test_run_completes_for_the_other_backends(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVSPEC_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setitem(
        sys.modules, "cupy", fake_cupy(count_error=FakeCudaError(35, "cudaErrorInsufficientDriver: no driver"))
    )
    out = tmp_path / "r.jsonl"
    res = CliRunner().invoke(main, ["run", "--op", "relu", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "backend cupy unavailable: CUDA runtime error: cudaErrorInsufficientDriver: no driver" in res.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    backends = {r["name"]: r for r in records if r["record"] == "backend"}
    assert backends["cupy"]["available"] is False and backends["numpy"]["available"] is True
    cases = [r for r in records if r["record"] == "case"]
    available = {n for n, r in backends.items() if r["available"]}
    assert "numpy" in available and {r["backend"] for r in cases} == available
    assert {r["status"] for r in cases if r["backend"] == "numpy"} == {"pass"}


def test_backends_listing_shows_the_reason(monkeypatch):
    monkeypatch.setenv("CONVSPEC_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setitem(sys.modules, "cupy", None)
    res = CliRunner().invoke(main, ["backends", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)["backends"]}
    assert rows["cupy"]["reason"] == "cupy not installed" and rows["cupy"]["plugin"] == "convspec.backends.cupy_backend"


# ---------------------------------------------------------------- the backend's logic over a NumPy stand-in
def test_quick_profile_passes_over_numpy_stand_in():
    assert HOST.availability() is None and not MP.on_gpu(HOST.xp)
    reg = plugins.load((), autoload=False)
    cases = [c for c in plan_cases(Plan(profile="quick", seed=0, sources=reg.case_sources)) if applies(c, HOST)]
    assert len(cases) > 200
    by_op: dict = {}
    with np.errstate(all="ignore"):
        for case in cases:
            r = evaluate(HOST, case)
            assert r["status"] == "pass", (r["case_id"], r.get("message"), r["checks"])
            by_op[case.op] = by_op.get(case.op, 0) + 1
    assert set(by_op) == set(R.OPS) | set(R.STATE_OPS) and by_op["max_pool"] >= 5


def test_object_arrays_stay_on_the_host_and_are_unsupported():
    from fractions import Fraction

    from convspec.conformance.backend import Unsupported

    x = np.array([[Fraction(1, 3), Fraction(-1, 2)]], dtype=object)
    assert HOST.from_numpy(x) is x
    with pytest.raises(Unsupported):
        HOST.relu(HOST.from_numpy(x))


def test_argmax_first_generic_branch_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.integers(-2, 3, size=(5, 7, 9)).astype(np.float64)
    a[0, 0, [3, 6]] = np.nan
    a[1, 2, :] = -np.inf
    a[2, 3, [1, 4]] = np.inf
    a[3, 1, 8] = np.nan
    for axis in (-1, 0, 1):
        np.testing.assert_array_equal(P.argmax_first(XP, a, axis=axis), np.argmax(a, axis=axis))


def test_kmax_orders_signed_zeros_by_position():
    x = np.array([[0.0, -0.0, 0.0, -0.0, np.nan, 1.0]])
    idx = np.asarray(HOST.kmax_pool_indices(x, 4))
    np.testing.assert_array_equal(idx, R.kmax_pool_indices(x, 4))
    np.testing.assert_array_equal(idx, [[0, 1, 4, 5]])


# ---------------------------------------------------------------- the max-pool kernels' twins
def _pool_configs():
    # (x shape, kernel, stride, padding, dilation, ceil_mode)
    return [
        ((2, 3, 9), 3, 2, 1, 1, False),
        ((2, 3, 9), 3, 1, ((2, 0),), 2, True),
        ((2, 2, 7, 8), 2, 2, 0, 1, False),
        ((2, 2, 7, 8), 3, (2, 1), 1, (1, 2), True),
        ((1, 2, 8, 7), (3, 2), 1, ((1, 0), (0, 1)), 1, False),
        ((1, 2, 5, 6, 4), 2, (1, 2, 1), 1, 1, True),
        ((1, 1, 5, 5, 5), (3, 1, 2), 2, 0, (1, 1, 2), False),
        ((0, 2, 6, 6), 2, 2, 1, 1, False),
    ]


def _pool_input(rng, shape):
    x = rng.integers(-2, 3, size=shape).astype(np.float64)  # many ties
    flat = x.reshape(-1)
    if flat.size:
        flat[rng.choice(flat.size, size=max(1, flat.size // 15), replace=False)] = np.nan
        flat[rng.choice(flat.size, size=max(1, flat.size // 10), replace=False)] = -np.inf
    return x


@pytest.mark.parametrize("cfg", _pool_configs())
def test_twins_match_the_shared_kernels_and_the_reference(cfg):
    shape, k, s, p, d, ceil = cfg
    rng = np.random.default_rng(len(shape) * 7 + k if isinstance(k, int) else 3)
    x = _pool_input(rng, shape)
    geo = Pool(x.shape, k, s, p, d, ceil)
    values, arg = MP.forward_host(x, geo)
    want_v, _, want_arg = P.max_pool(np, x, geo, want_arg=True)
    np.testing.assert_array_equal(values, want_v)
    np.testing.assert_array_equal(arg, want_arg)
    assert arg.dtype == np.int32
    kw = dict(stride=s, padding=p, dilation=d, ceil_mode=ceil)
    if x.size:  # (the reference cannot pool an empty batch)
        np.testing.assert_array_equal(HOST.max_pool_indices(x, k, **kw), R.max_pool_indices(x, k, **kw))
    g = rng.standard_normal(values.shape)
    dx = MP.backward_host(g, arg, x.shape, geo)
    want_dx = P.max_pool_backward(np, g, x.shape, want_arg, geo)
    if geo.overlapping():  # same additions in the same order: the same bits
        assert dx.tobytes() == want_dx.tobytes()
    np.testing.assert_array_equal(dx, want_dx)
    if x.size:
        np.testing.assert_allclose(dx, R.max_pool_backward(g, x, k, **kw)[0], rtol=0, atol=1e-12)
    else:
        assert dx.shape == x.shape and values.shape == (0,) + values.shape[1:]


def test_twin_backward_sums_in_tap_order():
    # overlapping windows (stride 1, kernel 3) all choosing the middle element: its gradient is the
    # sum of the windows' gradients in window order (1e16 + 1 - 1e16 = 0, not 1)
    x = np.array([[[0.0, 0.0, 5.0, 0.0, 0.0]]])
    geo = Pool(x.shape, 3, 1, 0, 1, False)
    values, arg = MP.forward_host(x, geo)
    np.testing.assert_array_equal(arg, [[[2, 1, 0]]])
    dx = MP.backward_host(np.array([[[1e16, 1.0, -1e16]]]), arg, x.shape, geo)
    np.testing.assert_array_equal(dx, [[[0.0, 0.0, 0.0, 0.0, 0.0]]])


def test_window_in_padding_is_an_error_like_the_shared_kernel():
    x = np.zeros((1, 1, 3))
    with pytest.raises(ParameterError) as info:
        HOST.max_pool(x, 2, stride=2, padding=((2, 0),))
    assert info.value.param == "padding"
    assert np.asarray(HOST.max_pool(np.zeros((0, 1, 3)), 2, stride=2, padding=((2, 0),))).shape == (0, 1, 2)


def test_geometry_is_padded_to_three_dims():
    geo = Pool((1, 1, 9, 8), (3, 2), (2, 1), ((1, 0), (0, 1)), (1, 2), True)
    assert MP.geometry3(geo) == ((1, 9, 8), (1, 5, 7), (1, 3, 2), (1, 2, 1), (1, 1, 2), (0, 1, 0))


# ---------------------------------------------------------------- on a CUDA device only
@pytest.fixture(scope="module")
def gpu():
    reason = cupy_backend.CupyBackend().availability()
    if reason is not None:
        pytest.skip(f"no CUDA device (cupy backend unavailable: {reason})")
    return cupy_backend.CupyBackend()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", _pool_configs())
def test_gpu_kernels_match_their_twins(gpu, cfg, dtype):
    cp = gpu.xp
    shape, k, s, p, d, ceil = cfg
    rng = np.random.default_rng(11)
    x = _pool_input(rng, shape).astype(dtype)
    geo = Pool(x.shape, k, s, p, d, ceil)
    v, a = MP.window_max(cp, cp.asarray(x), geo)
    hv, ha = MP.forward_host(x, geo)
    np.testing.assert_array_equal(cp.asnumpy(v), hv)
    np.testing.assert_array_equal(cp.asnumpy(a), ha)
    g = rng.standard_normal(hv.shape).astype(dtype)
    dx = cp.asnumpy(MP.gather_grad(cp, cp.asarray(g), a, x.shape, geo))
    assert dx.tobytes() == MP.backward_host(g, ha, x.shape, geo).tobytes()


def test_gpu_backward_passes_are_deterministic(gpu):
    cp = gpu.xp
    rng = np.random.default_rng(5)
    x = cp.asarray(rng.standard_normal((8, 16, 33, 33)).astype(np.float32))
    w = cp.asarray(rng.standard_normal((32, 16, 3, 3)).astype(np.float32))
    b = cp.asarray(rng.standard_normal(32).astype(np.float32))
    for kw in ({"stride": 1, "padding": 1}, {"stride": 2, "padding": 1}, {"stride": 2, "padding": 0, "dilation": 2}):
        g = cp.asarray(rng.standard_normal(gpu.conv(x, w, b, **kw).shape).astype(np.float32))
        runs = [[cp.asnumpy(a).tobytes() for a in gpu.conv_backward(g, x, w, b, **kw)] for _ in range(2)]
        assert runs[0] == runs[1], kw
    g = cp.asarray(rng.standard_normal(gpu.max_pool(x, 3, stride=1).shape).astype(np.float32))
    runs = [cp.asnumpy(gpu.max_pool_backward(g, x, 3, stride=1)[0]).tobytes() for _ in range(2)]
    assert runs[0] == runs[1]


def test_gpu_conv_matches_the_numpy_backend(gpu):
    from convspec.backends.numpy_backend import NumpyBackend

    cp, nb = gpu.xp, NumpyBackend()
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((3, 4, 11, 10)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
    kw = {"stride": 2, "padding": "same", "groups": 2, "dilation": 1}
    y = nb.conv(x, w, b, **kw)
    np.testing.assert_allclose(
        cp.asnumpy(gpu.conv(cp.asarray(x), cp.asarray(w), cp.asarray(b), **kw)), y, rtol=1e-12, atol=1e-12
    )
    g = rng.standard_normal(y.shape)
    for got, want in zip(
        gpu.conv_backward(cp.asarray(g), cp.asarray(x), cp.asarray(w), cp.asarray(b), **kw),
        nb.conv_backward(g, x, w, b, **kw),
    ):
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-12, atol=1e-12)


def test_gpu_quick_profile_passes(gpu):
    reg = plugins.load((), autoload=False)
    cases = plan_cases(Plan(profile="quick", seed=0, sources=reg.case_sources))
    for case in cases:
        r = evaluate(gpu, case)
        assert r["status"] == "pass", (r["case_id"], r.get("message"), r["checks"])
