"""The NumPy conv's channels-first paths (backends/_xp/conv.py: _cm_passes, _cf_passes): forward-only
calls in batch chunks of CM_FWD_CHUNK / CF_FWD_CHUNK bytes, _cm_passes writing y in place (one stacked
product, or per sample through mm's blocks when a sample's product is large, or per chunk of `few` samples on
grids of fewer than CM_MIN_COLS positions), and _cf_passes' per-kernel-row
backward in chunks of CF_ROWS_BWD_CHUNK. Against the reference in float64, bit-for-bit repeatable in
float32 and within rounding of one chunk."""

from __future__ import annotations

import conv_checks as C
import numpy as np
import pytest
from convspec.backends._xp import conv as K
from convspec.backends.numpy_backend import NumpyBackend

from convspec import reference as R

B = NumpyBackend()


_bits = C.bits


_geo = C.geometry


def _spy_chunks(monkeypatch):
    """The chunk lists of the conv calls that follow, in order."""
    seen, real = [], K._chunks

    def spy(n, per_sample, limit):
        seen.append(real(n, per_sample, limit))
        return seen[-1]

    monkeypatch.setattr(K, "_chunks", spy)
    return seen


CASES = [  # (x_shape, w_shape, params, sample-major forward)
    ((7, 1, 16, 15), (6, 1, 5, 5), {}, True),  # LeNet's C1
    ((5, 3, 20, 19), (8, 3, 7, 7), {"stride": 2, "padding": 3}, True),  # ResNet's stem
    ((5, 3, 12, 12), (16, 3, 3, 3), {"padding": 1}, True),  # VGG's first layer
    ((9, 6, 14, 14), (16, 6, 5, 5), {}, False),  # LeNet's C3: batch-last, per kernel row
    ((6, 2, 13, 11), (5, 2, 3, 2), {"stride": (2, 3), "dilation": (2, 1), "padding": ((1, 0), (2, 1))}, True),
    ((5, 3, 40), (9, 3, 5), {"stride": 3, "padding": 2}, True),  # 1-d
    ((4, 4, 9, 9), (3, 4, 3, 3), {"padding": 1}, False),  # batch-last, the full column matrix
]


@pytest.mark.parametrize("x_shape, w_shape, params, sample_major", CASES)
def test_forward_in_chunks_matches_the_reference(monkeypatch, x_shape, w_shape, params, sample_major):
    geo = _geo(x_shape, w_shape, params)
    assert K.prefer_channels_first(geo) and K.channel_major(geo, want_dx=False) == sample_major
    rng = np.random.default_rng(sum(x_shape))
    x, w, b = C.inputs(rng, x_shape, w_shape)
    want = R.conv(x, w, b, **params)
    x32, w32, b32 = (a.astype(np.float32) for a in (x, w, b))
    chunks = _spy_chunks(monkeypatch)
    whole = B.conv(x32, w32, b32, **params)
    assert chunks[-1] == [(0, x_shape[0])]  # these layers fit one chunk of CF_FWD_CHUNK
    limit = 1
    while True:  # the smallest power of 2 that takes 2 or more float32 samples per chunk
        monkeypatch.setattr(K, "CM_FWD_CHUNK", limit)
        monkeypatch.setattr(K, "CF_FWD_CHUNK", limit)
        chunks.clear()
        B.conv(x32, w32, b32, **params)
        assert chunks, "the forward no longer runs in batch chunks"
        if chunks[-1][0][1] >= 2:
            break
        limit *= 2
    assert 2 <= len(chunks[-1]) < x_shape[0]
    np.testing.assert_allclose(B.conv(x, w, b, **params), want, rtol=1e-12, atol=1e-11)
    one, again = B.conv(x32, w32, b32, **params), B.conv(x32, w32, b32, **params)
    monkeypatch.setattr(K, "SPLIT_MIN_FLOPS", 0)  # sample-major: per-sample products through mm's blocks
    monkeypatch.setattr(K, "TOGGLE_MIN_FLOPS", 0)
    np.testing.assert_allclose(B.conv(x, w, b, **params), want, rtol=1e-12, atol=1e-11)
    split = B.conv(x32, w32, b32, **params)
    assert one.dtype == np.float32
    np.testing.assert_array_equal(_bits(one), _bits(again))
    np.testing.assert_allclose(whole, one, rtol=2e-5, atol=2e-4)
    np.testing.assert_allclose(split, one, rtol=2e-5, atol=2e-4)


def test_forward_chunks_cover_the_batch(monkeypatch):
    """One sample per chunk when a sample's buffers pass CM_FWD_CHUNK; the backward keeps its chunks."""
    x_shape, w_shape = (4, 1, 16, 15), (6, 1, 5, 5)
    rng = np.random.default_rng(4)
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b).shape)
    monkeypatch.setattr(K, "CM_FWD_CHUNK", 30000)  # one float64 sample: 26400 bytes of columns, 1920 of X
    chunks = _spy_chunks(monkeypatch)
    C.assert_matches_reference(x, w, b, g, {}, atol_forward=1e-11, atol_backward=1e-10)
    assert chunks[0] == [(i, i + 1) for i in range(4)]  # the forward
    assert chunks[1] == [(0, 4)]  # the backward (one call: input and weight gradients)


@pytest.mark.parametrize("x_shape, w_shape, params", [c[:3] for c in CASES if c[3] and len(c[0]) > 3])
@pytest.mark.parametrize("min_cols", [1, 7])
def test_forward_in_bands_of_rows_matches_the_reference(monkeypatch, x_shape, w_shape, params, min_cols):
    """With `bands` (as _heavy_passes asks), a sample whose columns pass it runs in bands of output rows, each
    band's product written into its columns of y: against the reference in float64, every row covered once,
    bit-for-bit repeatable in float32 and within rounding of the whole-sample product."""
    rng = np.random.default_rng(sum(x_shape) + min_cols)
    x, w, b = C.inputs(rng, x_shape, w_shape)
    want = R.conv(x, w, b, **params)
    x32, w32, b32 = (a.astype(np.float32) for a in (x, w, b))
    whole = B.conv(x32, w32, b32, **params)
    monkeypatch.setattr(K, "CM_BAND_MIN_COLS", min_cols)
    real_passes = K._cm_passes
    monkeypatch.setattr(K, "_cm_passes", lambda *a, **k: real_passes(*a, **dict(k, bands=1)))
    bands, real = [], K.im2col_cm
    monkeypatch.setattr(K, "im2col_cm", lambda xp, X, geo: bands.append(geo.out_sizes) or real(xp, X, geo))
    np.testing.assert_allclose(B.conv(x, w, b, **params), want, rtol=1e-12, atol=1e-11)
    out = want.shape[2:]
    rows = max(1, -(-min_cols // int(np.prod(out[1:]))))
    assert len(bands) == x_shape[0] * -(-out[0] // rows) and all(bd[1:] == out[1:] for bd in bands)
    assert sum(bd[0] for bd in bands) == x_shape[0] * out[0]  # every output row once per sample
    one, again = B.conv(x32, w32, b32, **params), B.conv(x32, w32, b32, **params)
    np.testing.assert_array_equal(_bits(one), _bits(again))
    np.testing.assert_allclose(one, whole, rtol=2e-5, atol=2e-4)


# per sample, float64: x_t and dx_t 6*14*14, R and dR 30*14*10, g^T 16*10*10, dR's GEMM buffer 30*10*10
PER_SAMPLE = 8 * (2 * 6 * 14 * 14 + 2 * 30 * 14 * 10 + 16 * 10 * 10 + 30 * 10 * 10)


@pytest.mark.parametrize(
    "limit, chunks", [(1, [(i, i + 1) for i in range(5)]), (2 * PER_SAMPLE, [(0, 2), (2, 4), (4, 5)])]
)
def test_kernel_row_backward_in_chunks(monkeypatch, limit, chunks):
    """_cf_passes' backward with row_shift in chunks of CF_ROWS_BWD_CHUNK (LeNet's C3 shape, 5 samples)."""
    x_shape, w_shape = (5, 6, 14, 14), (16, 6, 5, 5)
    geo = _geo(x_shape, w_shape, {})
    assert K.prefer_channels_first(geo) and K.row_shift(geo) and not K.channel_major(geo, want_dx=True)
    rng = np.random.default_rng(6)
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b).shape)
    whole = C.float32_runs(x, w, b, g, {})
    monkeypatch.setattr(K, "CF_ROWS_BWD_CHUNK", limit)
    seen = _spy_chunks(monkeypatch)
    C.assert_matches_reference(x, w, b, g, {}, atol_forward=1e-11, atol_backward=1e-10)
    assert seen[1] == chunks  # the backward call
    one, again = C.float32_runs(x, w, b, g, {}), C.float32_runs(x, w, b, g, {})
    for a, a2, h in zip(one, again, whole):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(_bits(a), _bits(a2))
        np.testing.assert_allclose(h, a, rtol=2e-5, atol=2e-4)


SMALL_GRIDS = [  # (x_shape, w_shape, params): sample-major convs whose samples have few output positions
    ((3, 3, 20, 19), (8, 3, 7, 7), {"stride": 2, "padding": 3}),  # ResNet's stem
    ((2, 3, 12, 12), (16, 3, 3, 3), {"padding": 1}),  # VGG's first layer
]


@pytest.mark.parametrize("x_shape, w_shape, params", SMALL_GRIDS)
def test_sample_major_backward_a_sample_per_chunk(monkeypatch, x_shape, w_shape, params):
    """Products above SPLIT_MIN_FLOPS per sample: the backward runs a sample per chunk, with g[i] as g^T."""
    geo = _geo(x_shape, w_shape, params)
    assert K.prefer_channels_first(geo) and K.channel_major(geo, want_dx=True)
    rng = np.random.default_rng(8)
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    whole = C.float32_runs(x, w, b, g, params)
    monkeypatch.setattr(K, "SPLIT_MIN_FLOPS", 1)
    monkeypatch.setattr(K, "CM_MIN_COLS", 1)  # (grids this small take `few` samples: the next test)
    seen = _spy_chunks(monkeypatch)
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-11, atol_backward=1e-10)
    assert seen[1] == [(i, i + 1) for i in range(x_shape[0])]  # the backward call
    one, again = C.float32_runs(x, w, b, g, params), C.float32_runs(x, w, b, g, params)
    for a, a2, h in zip(one, again, whole):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(_bits(a), _bits(a2))
        np.testing.assert_allclose(h, a, rtol=2e-5, atol=2e-4)


def _spy_products(monkeypatch):
    """The (rows, columns) of every mm() product that follows."""
    seen, real = [], K.mm

    def spy(xp, a, b, out=None):
        seen.append((a.shape[0], b.shape[1]))
        return real(xp, a, b, out=out)

    monkeypatch.setattr(K, "mm", spy)
    return seen


@pytest.mark.parametrize("x_shape, w_shape, params", SMALL_GRIDS + [((7, 40, 7, 7), (24, 40, 3, 3), {"padding": 1})])
def test_small_grids_take_products_over_several_samples(monkeypatch, x_shape, w_shape, params):
    """Products above SPLIT_MIN_FLOPS on samples of fewer than CM_MIN_COLS output positions (ResNet's s5 3x3
    layers at 7x7): the forward and the gradients run chunks of `few` samples, towards CM_MIN_COLS positions
    and within CM_FEW_BUDGET bytes of the call's column matrices and the caller's limit; the forward's product
    spans the whole chunk and is then reordered into y."""
    geo = _geo(x_shape, w_shape, params)
    n, F, P = x_shape[0], w_shape[0], int(np.prod(geo.out_sizes))
    col64 = P * geo.taps * geo.c_in * 8  # one sample's float64 column matrix
    rng = np.random.default_rng(9)
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    for name, value in [("SPLIT_MIN_FLOPS", 1), ("CM_FWD_CHUNK", 1), ("CM_FEW_BUDGET", 1 << 40)]:
        monkeypatch.setattr(K, name, value)
    monkeypatch.setattr(K, "channel_major", lambda geo, want_dx: True)
    monkeypatch.setattr(K, "prefer_channels_first", lambda geo: True)
    monkeypatch.setattr(K, "dx_as_conv", lambda geo, shift=False: False)  # (the gradients in one call)
    chunks = _spy_chunks(monkeypatch)
    products = _spy_products(monkeypatch)
    # three samples' positions
    monkeypatch.setattr(K, "CM_MIN_COLS", 2 * P + 1)
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-11, atol_backward=1e-10)
    three = [(lo, min(lo + 3, n)) for lo in range(0, n, 3)]
    assert chunks[:2] == [three, three]  # the forward; the backward
    chunks.clear()
    products.clear()
    B.conv(x, w, b, **params)
    assert products[0] == (F, min(3, n) * P) and (F, P) not in products[: n // 3]  # one product per chunk
    one, again = C.float32_runs(x, w, b, g, params), C.float32_runs(x, w, b, g, params)
    # within the budget: two samples' float64 column matrix for the forward, not for the backward's two
    monkeypatch.setattr(K, "CM_FEW_BUDGET", 2 * col64)
    chunks.clear()
    B.conv(x, w, b, **params)
    B.conv_backward(g, x, w, b, **params)
    assert chunks == [[(lo, min(lo + 2, n)) for lo in range(0, n, 2)], [(i, i + 1) for i in range(n)]]
    # within the caller's limit (a sample per chunk)
    monkeypatch.setattr(K, "CM_FEW_BUDGET", 1 << 40)
    chunks.clear()
    C.chunked_backend().conv_backward(g, x, w, b, **params)
    assert chunks == [[(i, i + 1) for i in range(n)]]
    monkeypatch.setattr(K, "CM_MIN_COLS", 1)  # a sample per product, as before
    chunks.clear()
    single = C.float32_runs(x, w, b, g, params)
    assert chunks[:2] == [[(i, i + 1) for i in range(n)]] * 2
    for a, a2, s in zip(one, again, single):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(_bits(a), _bits(a2))
        np.testing.assert_allclose(s, a, rtol=2e-5, atol=2e-4)
