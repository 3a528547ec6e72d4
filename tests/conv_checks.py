"""Checks of the NumPy backend's conv paths shared by the NumPy conv test files (test_bench.py, test_conv_shifted.py,
test_numpy_*.py): geometry, bit views, the reference comparison, float32 runs."""

from __future__ import annotations

import threading

import numpy as np
from convspec.backends.numpy_backend import NumpyBackend

from convspec import reference as R


def geometry(x_shape, w_shape, params):
    """The backend's conv geometry (geometry.Conv, with a bias) of conv(x, w, b, **params)."""
    from convspec.backends._xp.geometry import Conv

    return Conv(
        x_shape,
        w_shape,
        (w_shape[0],),
        stride=params.get("stride", 1),
        padding=params.get("padding", 0),
        dilation=params.get("dilation", 1),
        groups=params.get("groups", 1),
    )


def bits(a):
    """The array's bit patterns as unsigned integers (bit-for-bit comparisons)."""
    a = np.asarray(a)
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def inputs(rng, x_shape, w_shape):
    """x, w, b (float64) and an output gradient g for conv(x, w, b, **params)."""
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])


def assert_matches_reference(x, w, b, g, params, *, atol_forward, atol_backward):
    """Forward and every gradient of the backend against the reference in float64."""
    B = NumpyBackend()
    np.testing.assert_allclose(B.conv(x, w, b, **params), R.conv(x, w, b, **params), rtol=1e-12, atol=atol_forward)
    for got, want in zip(B.conv_backward(g, x, w, b, **params), R.conv_backward(g, x, w, b, **params)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=atol_backward)


def float32_runs(x, w, b, g, params, backend=None):
    """(dx, dw, db, y) in float32 from `backend` (default: a fresh one), for determinism checks."""
    B = backend or NumpyBackend()
    f = [a.astype(np.float32) for a in (g, x, w, b)]
    return B.conv_backward(*f, **params) + (B.conv(*f[1:], **params),)


def chunked_backend() -> NumpyBackend:
    small = NumpyBackend()
    small.col_limit = 1  # one sample per chunk
    return small


class ThreadPool:
    """A pool for conv._map with real helper threads (one per submitted job); join() checks they ended."""

    def __init__(self):
        self.threads = []

    def submit(self, fn):
        t = threading.Thread(target=fn)
        t.start()
        self.threads.append(t)

    def join(self):
        for t in self.threads:
            t.join(10)
            assert not t.is_alive()
