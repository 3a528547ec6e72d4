"""The torch backends' batch_norm (training, inference, running statistics), local_response_norm, dropout and
concat: through the engine (quick and full profile: pass, or a declared deviation), one exact check per op
against convspec.reference, the mappings of the spec's parameters onto PyTorch's (LRN's alpha * size, its
window for even sizes, the running variance's unbiased estimator, m = 1), and errors identical to the NumPy
backend's."""

from __future__ import annotations

import numpy as np
import pytest
from convspec.backends.numpy_backend import NumpyBackend
from convspec.backends.torch_backend import TorchBackend
from convspec.conformance import plugins
from convspec.conformance.evaluate import evaluate
from convspec.conformance.run import Plan, applies, plan_cases
from norm_checks import (
    BAD,
    C3,
    IDS,
    X,
    array_helpers,
    assert_same_error,
    backend_args,
    check_batch_norm_exact,
    check_batch_norm_inference_exact,
)

from convspec import SpecError
from convspec import reference as R

torch = pytest.importorskip("torch")

B = TorchBackend()
NP = NumpyBackend()
t, n, exact = array_helpers(B)


def _args(args):
    return backend_args(B, args)


NEW_OPS = ("batch_norm", "batch_norm_inference", "batch_norm_running_stats", "local_response_norm", "dropout", "concat")


# ---------------------------------------------------------------- the conformance suite
@pytest.mark.parametrize("profile", ["quick", "full"])
def test_new_ops_pass_or_declare_through_the_engine(profile):
    reg = plugins.load(("convspec.backends.torch_backend",), autoload=False)
    plan = Plan(profile=profile, seed=0, ops=NEW_OPS, sources=reg.case_sources)
    cases = [c for c in plan_cases(plan) if applies(c, B)]
    seen = {}
    for case in cases:
        r = evaluate(B, case)
        assert r["status"] in ("pass", "deviation", "invalid"), (r["case_id"], r.get("message"), r["checks"])
        if r["status"] == "deviation":
            assert r["deviation"]
        seen.setdefault(case.op, set()).add(r["status"])
    assert set(seen) == set(NEW_OPS) and all("pass" in s for s in seen.values()), seen


# ---------------------------------------------------------------- one exact check per op
def test_batch_norm_exact():
    check_batch_norm_exact(B)


def test_batch_norm_inference_exact():
    check_batch_norm_inference_exact(B)


def test_batch_norm_running_stats_exact_unbiased_and_inputs_untouched():
    # m = 5 per channel: sums of 5 divisible by 5; sum of squared deviations divisible by m - 1 = 4
    x = np.array([[1, 3, 5, 7, 9], [0, 0, 10, 0, 0]], dtype=np.float64).T.reshape(5, 2)  # (N=5, C=2)
    rm, rv = np.array([1.0, -2.0]), np.array([2.0, 4.0])
    rm_t, rv_t = t(rm), t(rv)
    mean, var = B.batch_norm_running_stats(rm_t, rv_t, t(x), momentum=0.5)
    want = R.batch_norm_running_stats(rm, rv, x, momentum=0.5)
    exact(mean, want[0])
    exact(var, want[1])
    # PyTorch's running_var takes the unbiased variance, as the spec: channel 0 has biased var 8, unbiased 10
    assert n(var)[0] == 0.5 * 2.0 + 0.5 * 10.0
    exact(rm_t, rm)  # the caller's tensors are not updated in place
    exact(rv_t, rv)
    assert not hasattr(B, "batch_norm_running_stats_backward")  # a state update: no gradient, as in the spec


def test_local_response_norm_exact_alpha_not_divided_and_even_window():
    # size 2 (even): the spec's window is c - 1 .. c (one more channel before): S = [4, 20];
    # D = 1 + 0.75 S = [4, 16], beta = 1: y = [0.5, 0.25]. PyTorch's own alpha would be divided by size.
    x = np.array([[2.0, 4.0]])
    want = R.local_response_norm(x, 2, alpha=0.75, beta=1.0, k=1.0)
    assert want.tolist() == [[0.5, 0.25]]
    exact(B.local_response_norm(t(x), 2, alpha=0.75, beta=1.0, k=1.0), want)  # (N, C): ADAPT to (N, C, 1)
    x3 = x[..., None, None]  # the same through F.local_response_norm's 4-D path
    exact(B.local_response_norm(t(x3), 2, alpha=0.75, beta=1.0, k=1.0), want[..., None, None])
    raw = torch.nn.functional.local_response_norm(t(x3), 2, alpha=0.75, beta=1.0, k=1.0)
    assert n(raw).ravel().tolist() != want.ravel().tolist()  # torch's alpha is alpha / size


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 9])
def test_local_response_norm_window_matches_the_spec_for_every_size(size):
    x = np.random.default_rng(size).standard_normal((2, 7, 3, 2))
    kw = {"alpha": 0.5, "beta": 0.75, "k": 2.0}
    np.testing.assert_allclose(
        n(B.local_response_norm(t(x), size, **kw)), R.local_response_norm(x, size, **kw), rtol=1e-14, atol=0
    )
    g = np.random.default_rng(size + 1).standard_normal(x.shape)
    np.testing.assert_allclose(
        n(B.local_response_norm_backward(t(g), t(x), size, **kw)[0]),
        R.local_response_norm_backward(g, x, size, **kw)[0],
        rtol=1e-12,
        atol=1e-14,
    )


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_dropout_exact_with_the_given_mask():
    x = np.array([[1.0, -2.0, np.inf], [3.0, np.nan, 0.5]])
    keep = np.array([[1, 0, 0], [1, 1, 0]], dtype=np.float64)
    want = R.dropout(x, keep, p=0.75)
    exact(B.dropout(t(x), t(keep), p=0.75), want)  # a dropped inf gives NaN (0 * inf), as the spec
    assert np.isnan(want[0, 2])
    exact(B.dropout(t(x), B.from_numpy(keep.astype(bool)), p=0.75), want)  # a bool mask
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    (dx,) = B.dropout_backward(t(g), t(x), t(keep), p=0.75)
    exact(dx, R.dropout_backward(g, x, keep, p=0.75)[0])


def test_concat_exact_one_gradient_per_array():
    xs = [np.arange(6.0).reshape(2, 1, 3), np.zeros((2, 0, 3)), -np.arange(12.0).reshape(2, 2, 3)]
    exact(B.concat([t(a) for a in xs], axis=1), R.concat(xs, axis=1))
    exact(B.concat([t(a) for a in xs], axis=-2), R.concat(xs, axis=-2))
    g = np.arange(18.0).reshape(2, 3, 3)
    got = B.concat_backward(t(g), [t(a) for a in xs])
    want = R.concat_backward(g, xs)
    assert len(got) == len(want) == 3
    for a, b in zip(got, want):
        exact(a, b)
    assert n(B.concat([t(xs[0], np.float32), t(xs[2])])).dtype == np.float64  # the common dtype


# ---------------------------------------------------------------- PyTorch specifics
def test_batch_norm_with_one_value_per_channel():
    """The spec allows m = 1 (y = beta, dx = 0); F.batch_norm refuses it in training mode, in Python, before the
    ATen operator it calls; the backend calls that operator (ADAPT)."""
    x, gamma, beta = np.array([[3.0, -1.0]]), np.array([2.0, 5.0]), np.array([0.5, -1.0])
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        torch.nn.functional.batch_norm(t(x), None, None, t(gamma), t(beta), training=True)
    exact(B.batch_norm(t(x), t(gamma), t(beta)), R.batch_norm(x, gamma, beta))
    got = B.batch_norm_backward(t(np.array([[1.0, 2.0]])), t(x), t(gamma), t(beta))
    for a, b in zip(got, R.batch_norm_backward(np.array([[1.0, 2.0]]), x, gamma, beta)):
        exact(a, b)


def test_float32_stays_float32():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    c = np.ones(3, np.float32)
    f = np.float32
    assert n(B.batch_norm(t(x, f), t(c, f), t(c, f))).dtype == np.float32
    assert all(n(a).dtype == np.float32 for a in B.batch_norm_running_stats(t(c, f), t(c, f), t(x, f)))
    assert n(B.local_response_norm(t(x, f), 3)).dtype == np.float32
    assert n(B.dropout(t(x, f), t(np.ones_like(x), f), p=0.5)).dtype == np.float32


# ---------------------------------------------------------------- errors: the NumPy backend's


@pytest.mark.parametrize("op, args, params", BAD, ids=IDS)
def test_errors_are_the_numpy_backends(op, args, params):
    assert_same_error(NP, B, op, args, params, backend_args=_args, array_type="Tensor")


def test_backward_checks_the_gradient_shape():
    with pytest.raises(SpecError, match="^grad_out: must have the forward output's shape"):
        B.concat_backward(t(np.zeros((2, 5))), [t(np.zeros((2, 3))), t(np.zeros((2, 3)))])
    with pytest.raises(SpecError, match="^grad_out: must have the forward output's shape"):
        B.batch_norm_backward(t(np.zeros((2, 3))), t(X), t(C3), t(C3))
