"""Bad inputs for batch norm, LRN, dropout and concat, shared by the framework backends' tests: each backend
must raise the NumPy backend's error, class and message (tests/test_<backend>_norm_ops.py)."""

from __future__ import annotations

import numpy as np
import pytest

from convspec import reference as R
from convspec.api.errors import SpecError

X = np.zeros((2, 3, 4))
C3 = np.ones(3)
BAD = [
    ("batch_norm", (X, np.ones(2), C3), {}),
    ("batch_norm", (X, C3, np.ones((3, 1))), {}),
    ("batch_norm", (X, C3, C3), {"eps": 0.0}),
    ("batch_norm", (X, C3, C3), {"eps": float("nan")}),
    ("batch_norm", (np.zeros((0, 3)), C3, C3), {}),
    ("batch_norm", (np.zeros(3), C3, C3), {}),
    ("batch_norm", (np.zeros((1, 1, 1, 1, 1, 1)), np.ones(1), np.ones(1)), {}),
    ("batch_norm", (np.array([[1, 2]], dtype=object), np.ones(2), np.ones(2)), {}),
    ("batch_norm_inference", (X, C3, C3, np.ones(2), C3), {}),
    ("batch_norm_inference", (X, C3, C3, C3, -C3), {}),
    ("batch_norm_inference", (X, C3, C3, C3, -C3), {"eps": -1.0}),  # eps is checked before var's values
    ("batch_norm_running_stats", (C3, C3, np.zeros((1, 3))), {}),
    ("batch_norm_running_stats", (C3, -C3, X), {}),
    ("batch_norm_running_stats", (C3, C3, X), {"momentum": 1.5}),
    ("batch_norm_running_stats", (np.ones(2), C3, X), {}),
    ("batch_norm_running_stats", (C3, C3, np.zeros((3, 0))), {}),
    ("local_response_norm", (X, 0), {}),
    ("local_response_norm", (X, 2.0), {}),
    ("local_response_norm", (X, True), {}),
    ("local_response_norm", (X, 3), {"alpha": -1.0}),
    ("local_response_norm", (X, 3), {"k": 0.0}),
    ("local_response_norm", (X, 3), {"beta": float("inf")}),
    ("local_response_norm", (np.zeros(4), 3), {}),
    ("local_response_norm", (np.zeros((1, 2), dtype=object), 3), {}),
    ("dropout", (X, np.ones((3, 2, 4))), {"p": 0.5}),
    ("dropout", (X, np.full(X.shape, 2.0)), {"p": 0.5}),
    ("dropout", (X, np.full(X.shape, np.nan)), {"p": 0.5}),
    ("dropout", (X, np.ones(X.shape)), {"p": 1.0}),
    ("dropout", (X, np.ones(X.shape)), {"p": -0.1}),
    ("dropout", (X, np.ones(X.shape, dtype=object)), {"p": 0.5}),
    ("dropout", (X, np.ones(X.shape, dtype=complex)), {"p": 0.5}),
    ("concat", ([],), {}),
    ("concat", (np.zeros((2, 3)),), {}),
    ("concat", ([np.zeros((2, 3)), np.zeros((3, 3))],), {"axis": 1}),
    ("concat", ([np.zeros((2, 3)), np.zeros((2, 3))],), {"axis": 2}),
    ("concat", ([np.zeros((2, 3)), np.zeros((2, 3))],), {"axis": True}),
    ("concat", ([np.zeros((2, 3)), np.zeros((2, 3, 1))],), {"axis": 0}),
    ("concat", ([np.zeros((2, 3)), np.zeros(0)],), {"axis": 0}),  # torch.cat skips a legacy (0,): the spec not
    ("concat", ([np.zeros(())],), {"axis": 0}),
]

IDS = [f"{b[0]}-{i}" for i, b in enumerate(BAD)]


def assert_same_error(reference_backend, backend, op, args, params, backend_args=lambda a: a, array_type=None):
    """`backend` refuses op(*args, **params) with `reference_backend`'s error class and message ("got ndarray"
    read as "got <array_type>" when the backend names its own array type)."""
    with pytest.raises(SpecError) as want:
        getattr(reference_backend, op)(*args, **params)
    with pytest.raises(type(want.value)) as got:
        getattr(backend, op)(*backend_args(args), **params)
    expected = str(want.value)
    if array_type:
        expected = expected.replace("got ndarray", f"got {array_type}")
    assert str(got.value) == expected


def array_helpers(B):
    """t(a): a NumPy array on backend B (float64 unless told); n(a): back to NumPy; exact(got, want): equal as
    numbers, in shape and dtype (NaN meets NaN)."""

    def t(a, dtype=np.float64):
        return B.from_numpy(np.asarray(a, dtype=dtype))

    def n(a):
        return B.to_numpy(a)

    def exact(got, want):
        got, want = n(got), np.asarray(want)
        assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
        np.testing.assert_array_equal(got, want)

    return t, n, exact


def backend_args(B, args):
    """args with every float array (and every array of a sequence argument) moved to backend B."""
    t = array_helpers(B)[0]
    out = []
    for a in args:
        if isinstance(a, list):
            out.append([t(v) for v in a])
        elif isinstance(a, np.ndarray) and a.dtype != object:
            out.append(B.from_numpy(a))
        else:
            out.append(a)
    return out


# ---------------------------------------------------------------- checks shared by the backends' tests
def check_batch_norm_exact(B):
    t, n, exact = array_helpers(B)
    # per channel: mean 5 (c = 0) and -1 (c = 1), biased variance 3; eps = 1: sqrt(var + eps) = 2, xhat in
    # {1.5, -1.5, 0}: every step is exact
    x = np.array([[8, 2, 5], [5, 5, 5]], dtype=np.float64)
    x = np.stack([x, x - 6], axis=1)  # (2, 2, 3)
    gamma, beta = np.array([2.0, -4.0]), np.array([1.0, 3.0])
    want = R.batch_norm(x, gamma, beta, eps=1.0)
    assert set(np.unique(want[:, 0])) == {-2.0, 1.0, 4.0}
    exact(B.batch_norm(t(x), t(gamma), t(beta), eps=1.0), want)
    g = np.arange(12.0).reshape(x.shape) - 5
    dx, dgamma, dbeta = B.batch_norm_backward(t(g), t(x), t(gamma), t(beta), eps=1.0)
    rdx, rdgamma, rdbeta = R.batch_norm_backward(g, x, gamma, beta, eps=1.0)
    exact(dgamma, rdgamma)
    exact(dbeta, rdbeta)
    np.testing.assert_allclose(n(dx), rdx, rtol=0, atol=1e-14)  # divides by m = 6


def check_batch_norm_inference_exact(B):
    t, n, exact = array_helpers(B)
    x = np.arange(24.0).reshape(2, 3, 4) - 10
    gamma, beta, mean, var = (
        np.array([2.0, -1.0, 0.5]),
        np.array([1.0, 0.0, -3.0]),
        np.array([1.0, -2.0, 0.0]),
        np.array([3.0, 15.0, 0.0]),
    )
    # eps = 1: sqrt(var + eps) = 2, 4, 1
    exact(
        B.batch_norm_inference(t(x), t(gamma), t(beta), t(mean), t(var), eps=1.0),
        R.batch_norm_inference(x, gamma, beta, mean, var, eps=1.0),
    )
    g = np.ones_like(x)
    got = B.batch_norm_inference_backward(t(g), t(x), t(gamma), t(beta), t(mean), t(var), eps=1.0)
    assert len(got) == 3  # mean and var are not differentiable
    for a, b in zip(got, R.batch_norm_inference_backward(g, x, gamma, beta, mean, var, eps=1.0)):
        exact(a, b)


def check_backward_checks_the_gradient_shape(B):
    t, n, exact = array_helpers(B)
    with pytest.raises(SpecError, match="^grad_out: must have the forward output's shape"):
        B.concat_backward(t(np.zeros((2, 5))), [t(np.zeros((2, 3))), t(np.zeros((2, 3)))])
    with pytest.raises(SpecError, match="^grad_out: must have the forward output's shape"):
        B.batch_norm_backward(t(np.zeros((2, 3))), t(X), t(C3), t(C3))
    with pytest.raises(SpecError, match="^grad_out: must have the forward output's shape"):
        B.dropout_backward(t(np.zeros((2, 3))), t(X), t(np.ones(X.shape)), p=0.5)
