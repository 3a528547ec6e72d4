"""The NumPy conv's 1-d path without a column matrix (backends/_xp/conv.py: conv1d, _conv1d_passes: one
group, stride 1, C_in >= CONV1D_MIN_C): forward, input and weight gradients against the reference in
float64, bit-for-bit repeatable in float32 (also with the pool's helper taking groups and lanes), within
rounding when the batch is cut into one-sample chunks and of the im2col path it replaces."""

from __future__ import annotations

import conv_checks as C
import numpy as np
import pytest
from convspec.backends._xp import conv as K
from convspec.backends.numpy_backend import NumpyBackend

from convspec import reference as R

_bits = C.bits


_geo = C.geometry


CASES = [  # (x_shape, w_shape, params, takes the path at the default CONV1D_MIN_L)
    ((3, 40, 37), (8, 40, 3), {}, True),  # 'valid': tap 0 covers every output
    ((1, 33, 5), (4, 33, 5), {"padding": "full"}, False),  # batch 1, no tap covers every output
    ((2, 32, 11), (5, 32, 3), {"dilation": 2, "padding": ((3, 1),)}, False),  # dilated, asymmetric padding
    ((4, 64, 32), (16, 64, 4), {"padding": "same"}, True),  # even kernel: 'same' pads (1, 2)
    ((2, 32, 2), (3, 32, 3), {"dilation": 5, "padding": ((10, 0),)}, False),  # taps 0, 1 read only padding
    ((5, 50, 33), (7, 50, 5), {"dilation": 3}, True),
    ((9, 36, 13), (1, 36, 2), {"padding": 1}, False),  # one output channel, odd batch and length
]


@pytest.mark.parametrize("x_shape, w_shape, params, default", CASES)
def test_conv1d_path_matches_the_reference(monkeypatch, x_shape, w_shape, params, default):
    assert K.conv1d(_geo(x_shape, w_shape, params)) == default
    monkeypatch.setattr(K, "CONV1D_MIN_L", 1)  # every case takes the path
    assert K.conv1d(_geo(x_shape, w_shape, params))
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-11, atol_backward=1e-10)
    B = NumpyBackend()
    one, again = C.float32_runs(x, w, b, g, params, B), C.float32_runs(x, w, b, g, params, B)
    chunked = C.float32_runs(x, w, b, g, params, C.chunked_backend())
    monkeypatch.setattr(K, "TOGGLE_MIN_FLOPS", 0)  # groups and lanes shared with the pool's helper
    monkeypatch.setattr(K, "SPLIT_MIN_FLOPS", 0)
    shared = C.float32_runs(x, w, b, g, params, B)
    monkeypatch.setattr(K, "_map", lambda pool, fn, items: [fn(i) for i in items])
    inline = C.float32_runs(x, w, b, g, params, B)
    monkeypatch.setattr(K, "conv1d", lambda geo: False)
    im2col = C.float32_runs(x, w, b, g, params, B)
    for a, a2, c, s, i, m in zip(one, again, chunked, shared, inline, im2col):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(_bits(a), _bits(a2))
        np.testing.assert_array_equal(_bits(s), _bits(i))  # whichever thread runs a group or lane
        np.testing.assert_allclose(c, a, rtol=2e-5, atol=2e-4)
        np.testing.assert_allclose(s, a, rtol=2e-5, atol=2e-4)
        np.testing.assert_allclose(m, a, rtol=2e-5, atol=2e-4)


def test_weight_gradient_in_several_chunks_and_lanes(monkeypatch):
    """Small chunks (CONV1D_CHUNK) dealt to the lanes, each summing its chunks, then the lanes in order."""
    x_shape, w_shape, params = (7, 32, 41), (6, 32, 4), {"padding": 2}
    rng = np.random.default_rng(7)
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    monkeypatch.setattr(K, "CONV1D_CHUNK", 1)  # one sample per chunk: 7 chunks in 2 lanes
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-11, atol_backward=1e-10)
    few, again = C.float32_runs(x, w, b, g, params), C.float32_runs(x, w, b, g, params)
    monkeypatch.setattr(K, "CONV1D_LANES", 3)
    three = C.float32_runs(x, w, b, g, params)
    for a, a2, t in zip(few, again, three):
        np.testing.assert_array_equal(_bits(a), _bits(a2))
        np.testing.assert_allclose(t, a, rtol=2e-5, atol=2e-4)


def test_conv_transpose_through_the_conv1d_path():
    """conv_transpose runs the input gradient alone, its backward the forward and the weight gradient
    with x = grad_out (C_in = 40 >= CONV1D_MIN_C)."""
    rng = np.random.default_rng(3)
    y, w, b = rng.standard_normal((2, 24, 33)), rng.standard_normal((24, 40, 3)), rng.standard_normal(40)
    geo = _geo((2, 40, 35), (24, 40, 3), {"padding": 1})
    assert K.conv1d(geo)
    want = R.conv_transpose(y, w, b, padding=1)
    B = NumpyBackend()
    np.testing.assert_allclose(B.conv_transpose(y, w, b, padding=1), want, rtol=1e-12, atol=1e-11)
    g = rng.standard_normal(want.shape)
    got_all = B.conv_transpose_backward(g, y, w, b, padding=1)
    for got, ref in zip(got_all, R.conv_transpose_backward(g, y, w, b, padding=1)):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-10)


def test_conv1d_path_selection():
    assert K.conv1d(_geo((50, 300, 64), (100, 300, 3), {}))  # the sentence CNN's layers
    assert K.conv1d(_geo((50, 300, 64), (100, 300, 5), {"padding": "full"}))
    assert not K.conv1d(_geo((2, 16, 40), (32, 16, 3), {}))  # few input channels: channels-first paths
    assert not K.conv1d(_geo((2, 32, 40), (32, 32, 3), {"stride": 2}))
    assert not K.conv1d(_geo((2, 32, 40), (32, 16, 3), {"groups": 2}))
    assert not K.conv1d(_geo((2, 32, 40), (32, 32, 1), {}))  # 1x1: the pointwise paths
    assert not K.conv1d(_geo((64, 64, 8), (64, 64, 3), {"padding": 1}))  # short: thin per-sample products
    assert not K.conv1d(_geo((2, 32, 20, 20), (32, 32, 3, 3), {"padding": 1}))  # 2-d


def test_empty_batch():
    x, w = np.zeros((0, 40, 50)), np.ones((8, 40, 3))
    assert K.conv1d(_geo(x.shape, w.shape, {}))
    B = NumpyBackend()
    assert B.conv(x, w).shape == (0, 8, 48)
    dx, dw, db = B.conv_backward(np.zeros((0, 8, 48)), x, w, np.zeros(8))
    assert dx.shape == (0, 40, 50)
    np.testing.assert_array_equal(dw, np.zeros_like(w))
    np.testing.assert_array_equal(db, np.zeros(8))
