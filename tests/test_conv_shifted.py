"""The NumPy conv's tap-shift path (backends/_xp/conv.py: _shifted_passes, stride 1, one group, C_in >=
32, 2-d/3-d): forward, input and weight gradients against the reference in float64, bit-for-bit
repeatable in float32, unchanged (within rounding) by batch chunking and equal to the im2col path."""

from __future__ import annotations

import conv_checks as C
import numpy as np
import pytest
from convspec.backends._xp import conv as K
from convspec.backends.numpy_backend import NumpyBackend

from convspec import reference as R

_geo = C.geometry


CASES = [  # (x_shape, w_shape, params, takes the path at the default waste limit)
    ((2, 32, 20, 20), (16, 32, 3, 3), {"padding": 1}, True),  # VGG-like 'same'
    ((3, 40, 21, 23), (48, 40, 3, 3), {"padding": 1}, True),  # dx runs as a shifted conv of g too
    ((2, 32, 12, 13), (16, 32, 3, 5), {"padding": ((1, 0), (2, 1))}, False),
    ((2, 32, 14, 12), (20, 32, 3, 3), {"dilation": 2, "padding": "same"}, False),
    ((2, 32, 16, 16), (17, 32, 3, 3), {}, False),  # 'valid': the input gradient pads g
    ((1, 32, 6, 7, 5), (16, 32, 3, 3, 2), {"padding": 1}, False),  # 3-d
]


@pytest.mark.parametrize("x_shape, w_shape, params, default", CASES)
def test_shifted_path_matches_the_reference(monkeypatch, x_shape, w_shape, params, default):
    geo = _geo(x_shape, w_shape, params)
    assert K.shifted(geo) == default
    monkeypatch.setattr(K, "SHIFT_MAX_WASTE", 100.0)  # every case takes the path
    assert K.shifted(geo)
    rng = np.random.default_rng(sum(x_shape))
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-11, atol_backward=1e-10)
    B = NumpyBackend()
    one, again = C.float32_runs(x, w, b, g, params, B), C.float32_runs(x, w, b, g, params, B)
    chunked = C.float32_runs(x, w, b, g, params, C.chunked_backend())
    monkeypatch.setattr(K, "SHIFT_ENABLED", False)
    im2col = C.float32_runs(x, w, b, g, params, B)
    for a, a2, c, i in zip(one, again, chunked, im2col):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, a2)
        np.testing.assert_allclose(c, a, rtol=2e-5, atol=2e-4)
        np.testing.assert_allclose(i, a, rtol=2e-5, atol=2e-4)


def test_conv_transpose_backward_through_the_shifted_path(monkeypatch):
    """conv_transpose_backward runs the forward and weight products with x = grad_out."""
    monkeypatch.setattr(K, "SHIFT_MAX_WASTE", 100.0)
    rng = np.random.default_rng(3)
    y, w, b = rng.standard_normal((2, 16, 9, 9)), rng.standard_normal((16, 32, 3, 3)), rng.standard_normal(32)
    want = R.conv_transpose(y, w, b, padding=1)
    B = NumpyBackend()
    np.testing.assert_allclose(B.conv_transpose(y, w, b, padding=1), want, rtol=1e-12, atol=1e-11)
    g = rng.standard_normal(want.shape)
    for got, ref in zip(
        B.conv_transpose_backward(g, y, w, b, padding=1), R.conv_transpose_backward(g, y, w, b, padding=1)
    ):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-10)


def test_path_selection():
    assert not K.shifted(_geo((2, 16, 20, 20), (32, 16, 3, 3), {"padding": 1}))  # few input channels
    assert not K.shifted(_geo((2, 32, 20, 20), (32, 32, 3, 3), {"padding": 1, "stride": 2}))
    assert not K.shifted(_geo((2, 32, 20, 20), (32, 16, 3, 3), {"padding": 1, "groups": 2}))
    assert not K.shifted(_geo((2, 32, 40), (32, 32, 3), {"padding": 1}))  # 1-d: im2col already
    assert not K.shifted(_geo((2, 32, 7, 7), (32, 32, 3, 3), {"padding": 1}))  # 81 grid positions for 49 outputs


@pytest.mark.parametrize(
    "x_shape, w_shape, params",
    [
        ((2, 32, 17, 13), (16, 32, 3, 3), {"padding": 1}),
        ((1, 33, 15, 9), (20, 33, 5, 3), {"padding": ((3, 1), (1, 1))}),  # uneven padding rows in the bands
        ((2, 32, 16, 12), (17, 32, 3, 3), {"dilation": 2, "padding": 2}),  # a halo of 4 rows
        ((1, 32, 9, 6, 5), (16, 32, 3, 3, 2), {"padding": 1}),  # 3-d: bands of planes
    ],
)
def test_row_bands_match_the_reference(monkeypatch, x_shape, w_shape, params):
    """A SHIFT_BUDGET below one sample's work arrays: the forward and weight gradient run in bands of a
    few output rows (asserted), each reading its rows plus the kernel's halo of the padded input."""
    monkeypatch.setattr(K, "SHIFT_MAX_WASTE", 100.0)
    monkeypatch.setattr(K, "SHIFT_DW_COLS", 1)
    geo = _geo(x_shape, w_shape, params)
    assert K.shifted(geo)
    psizes = [v + b + e for v, (b, e) in zip(geo.in_sizes, geo.pads)]
    row_cols = int(np.prod(psizes[1:]))
    per_col = (geo.kernel[-1] * geo.c_in + 2 * geo.c_out) * 8
    halo = (geo.kernel[0] - 1) * geo.dilation[0]
    monkeypatch.setattr(K, "SHIFT_BUDGET", (3 + halo) * row_cols * per_col)  # bands of 3 rows
    items = K._shift_items(geo.n, geo.out_sizes[0], halo, row_cols, per_col, K.SHIFT_BUDGET)
    assert {r1 - r0 for _, _, r0, r1 in items} <= {2, 3} and len(items) > geo.n
    rng = np.random.default_rng(sum(x_shape))
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-11, atol_backward=1e-10)
    B = NumpyBackend()
    one, again = C.float32_runs(x, w, b, g, params, B), C.float32_runs(x, w, b, g, params, B)
    for a, a2 in zip(one, again):
        np.testing.assert_array_equal(a, a2)
