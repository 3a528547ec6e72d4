"""Bad inputs for batch norm, LRN, dropout and concat, shared by the framework backends' tests: each backend
must raise the NumPy backend's error, class and message (tests/test_<backend>_norm_ops.py)."""

from __future__ import annotations

import numpy as np
import pytest

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
