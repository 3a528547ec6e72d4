"""Peak memory of the NumPy conv paths (issue #15: peak extra memory of a conv call at most torch-cpu's):
the weight-heavy im2col route (backends/_xp/conv.py: weight_heavy, _heavy_passes) against the reference,
and deterministic bounds on the extra memory of a call, from the layer's own array sizes, under
tracemalloc (which sees every NumPy allocation; the scratch cache is dropped first so that the call's
work arrays are allocated, and counted, inside it). No timing."""

from __future__ import annotations

import tracemalloc

import conv_checks as C
import numpy as np
import pytest
from convspec.backends._xp import conv as K
from convspec.backends.numpy_backend import NumpyBackend

from convspec import reference as R

SMALL = 128 << 10  # Python objects of a call (views, index tuples, the BLAS thread limiter): below any work array


_geo = C.geometry


def _peak(fn):
    """(result, peak bytes NumPy allocated during fn()), after one warm-up call (a process's first conv call
    also builds the BLAS thread controller, the helper pool and cached tap slices: about 0.3 MB, which made
    these bounds fail when such a test ran first in its process) and with the scratch cache dropped."""
    fn()
    K.release_scratch()
    tracemalloc.start()
    try:
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return out, peak


HEAVY = [  # (x_shape, w_shape, params): single-group convs that take the im2col loop or the tap shifts
    ((2, 40, 9, 9), (24, 40, 3, 3), {"padding": 1}),  # 9x9 'same': too small a grid for the tap shifts
    ((3, 40, 11, 10), (24, 40, 3, 3), {"padding": 1, "stride": 2}),  # ResNet's 3x3/2
    ((1, 33, 8, 9), (7, 33, 3, 2), {"padding": ((1, 0), (0, 1)), "dilation": (2, 1)}),  # batch 1, odd
    ((2, 32, 6, 5, 4), (9, 32, 2, 3, 2), {"padding": 1}),  # 3-d
    ((2, 36, 20, 20), (40, 36, 3, 3), {"padding": 1}),  # a grid the tap shifts would take (VGG's 256-512 @28)
]


@pytest.mark.parametrize("x_shape, w_shape, params", HEAVY)
def test_weight_heavy_route_matches_the_reference(monkeypatch, x_shape, w_shape, params):
    geo = _geo(x_shape, w_shape, params)
    assert not K.weight_heavy(geo, 8)  # small weights keep the im2col loop
    monkeypatch.setattr(K, "HEAVY_WEIGHT", 1)
    assert K.weight_heavy(geo, 8) and K.weight_heavy(geo, 4)
    taken = []
    real = K._heavy_passes
    monkeypatch.setattr(K, "_heavy_passes", lambda *a: taken.append(a[5:8]) or real(*a))
    rng = np.random.default_rng(sum(x_shape))
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-11, atol_backward=1e-10)
    assert (True, False, False) in taken and (False, True, True) in taken  # forward; dx and dw in one call
    with monkeypatch.context() as m:  # the forward and dx in chunks of `few` samples (ResNet's s5 3x3 at 7x7)
        m.setattr(K, "SPLIT_MIN_FLOPS", 1)
        m.setattr(K, "CM_MIN_COLS", 1 << 30)
        m.setattr(K, "CM_FEW_BUDGET", 1 << 30)
        chunks, real_chunks = [], K._chunks
        m.setattr(K, "_chunks", lambda *a: chunks.append(real_chunks(*a)) or chunks[-1])
        C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-11, atol_backward=1e-10)
        if x_shape[0] > 1:
            assert [(0, x_shape[0])] in chunks  # (the whole small batch: within the caller's limit)
    with monkeypatch.context() as m:  # the float32 forward in bands of one output row (HEAVY_BAND)
        m.setattr(K, "HEAVY_BAND", 1)
        m.setattr(K, "HEAVY_BWD_BAND", 1)
        m.setattr(K, "CM_BAND_MIN_COLS", 1)
        banded = []
        real_bands = K._cm_forward_bands
        m.setattr(K, "_cm_forward_bands", lambda *a: banded.append(1) or real_bands(*a))
        got = NumpyBackend().conv(x, w, b, **params)
        assert not banded  # float64 runs whole samples
        x32, w32, b32 = (a.astype(np.float32) for a in (x, w, b))
        got = NumpyBackend().conv(x32, w32, b32, **params)
        np.testing.assert_allclose(got, R.conv(x, w, b, **params), rtol=2e-5, atol=2e-4)
        assert len(banded) == x_shape[0]  # per sample
        back = []  # the float32 backward in the same bands (_heavy_backward_bands)
        real_back = K._heavy_backward_bands
        m.setattr(K, "_heavy_backward_bands", lambda *a: back.append(a[5:7]) or real_back(*a))
        NumpyBackend().conv_backward(g, x, w, b, **params)
        assert not back  # float64 runs whole samples
        g32 = g.astype(np.float32)
        got = NumpyBackend().conv_backward(g32, x32, w32, b32, **params)
        want = R.conv_backward(g, x, w, b, **params)
        for a, e in zip(got, want):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, e, rtol=2e-5, atol=2e-4 * max(1.0, float(np.abs(e).max())))
        assert back == [(True, True)]
        again = NumpyBackend().conv_backward(g32, x32, w32, b32, **params)
        for a, a2 in zip(got, again):
            np.testing.assert_array_equal(a.view(np.uint32), a2.view(np.uint32))
        # bands of three output rows (of two and one on some shapes: a shorter last band)
        m.setattr(K, "CM_BAND_MIN_COLS", 2 * int(np.prod(g.shape[3:])) + 1)
        np.testing.assert_allclose(
            NumpyBackend().conv(x32, w32, b32, **params), R.conv(x, w, b, **params), rtol=2e-5, atol=2e-4
        )
        for a, e in zip(NumpyBackend().conv_backward(g32, x32, w32, b32, **params), want):
            np.testing.assert_allclose(a, e, rtol=2e-5, atol=2e-4 * max(1.0, float(np.abs(e).max())))
        assert len(back) == 3  # (the repeat above, and this one)
    B = NumpyBackend()
    one, again = C.float32_runs(x, w, b, g, params, B), C.float32_runs(x, w, b, g, params, B)
    chunked = C.float32_runs(x, w, b, g, params, C.chunked_backend())
    monkeypatch.setattr(K, "HEAVY_WEIGHT", 1 << 62)  # the im2col loop (and dx as a conv of g) again
    loop = C.float32_runs(x, w, b, g, params, B)
    for a, a2, c, i in zip(one, again, chunked, loop):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, a2)
        np.testing.assert_allclose(c, a, rtol=2e-5, atol=2e-4)
        np.testing.assert_allclose(i, a, rtol=2e-5, atol=2e-4)


def test_weight_heavy_selection():
    big = (512, 512, 3, 3)  # 9 MiB in float32
    assert K.weight_heavy(_geo((2, 512, 14, 14), big, {"padding": 1}), 4)  # VGG's 512-512 @14
    assert K.weight_heavy(_geo((16, 512, 14, 14), big, {"padding": 1, "stride": 2}), 4)  # ResNet's s5 3x3/2
    assert K.weight_heavy(_geo((2, 512, 28, 28), big, {"padding": 1}), 4)  # before the tap shifts
    assert K.shifted(_geo((2, 512, 28, 28), big, {"padding": 1}))  # (which would take it otherwise)
    assert not K.weight_heavy(_geo((2, 512, 7, 7), (512, 512, 1, 1), {}), 8)  # pointwise
    assert not K.weight_heavy(_geo((2, 512, 14, 14), (512, 256, 3, 3), {"padding": 1, "groups": 2}), 8)
    assert not K.weight_heavy(_geo((2, 128, 14, 14), (128, 128, 3, 3), {"padding": 1}), 8)  # 1.1 MiB


def test_weight_heavy_passes_hold_no_weight_sized_array():
    """A 512-512 3x3 float64 weight (18.9 MB) on a 10x10 input, batch 2. A sample has 100 output positions,
    fewer than CM_MIN_COLS, but its column matrix (100*9*512 elements) is over half of CM_FEW_BUDGET, so the
    forward and the input gradient still run a sample per chunk (see _cm_passes). The backward's work arrays
    are one sample's column matrix (below COL_BUDGET, above two samples' worth; the input gradient's dcol and
    then the weight gradient's col in one scratch array), its padded input (12*12*512), g and padded input
    gradient, and a 1/HEAVY_BLOCKS block of the weight gradient: 10 MB in all, about half the weight. The
    im2col loop held the weight gradient's per-chunk and running sums (two weights), and copied the weight
    for its input gradient's conv of g. The forward copies no weight: a chunk's padded input, column matrix
    and channel-major output, and the partial products of mm's four inner-dimension blocks (its inner
    dimension 9*512 is over four times its outputs' 512)."""
    rng = np.random.default_rng(0)
    n, c, s, item = 2, 512, 10, 8
    x, w, b = C.inputs(rng, (n, c, s, s), (c, c, 3, 3))
    assert K.weight_heavy(_geo(x.shape, w.shape, {"padding": 1}), item)
    col = s * s * 9 * c * item  # one sample's
    assert col <= K.COL_BUDGET < 2 * col
    assert s * s < K.CM_MIN_COLS and K.CM_FEW_BUDGET < 2 * col  # a sample per chunk all the same
    padded, plane = (s + 2) ** 2 * c * item, s * s * c * item
    block = -(-c // K.HEAVY_BLOCKS) * 9 * c * item
    g = rng.standard_normal((n, c, s, s))
    B = NumpyBackend()
    (dx, dw, db), peak = _peak(lambda: B.conv_backward(g, x, w, b, padding=1))
    bound = col + padded + plane + padded + block + SMALL
    assert peak - dx.nbytes - dw.nbytes - db.nbytes <= bound < w.nbytes
    y, peak = _peak(lambda: B.conv(x, w, b, padding=1))
    assert peak - y.nbytes <= padded + col + plane + 4 * plane + SMALL < w.nbytes // 2


def test_shifted_forward_work_arrays_stay_within_the_budget():
    """The tap-shift forward of a 96x96 image with 64 channels: one whole padded sample's R, Y and tmp
    would be 98*98*(3*64 + 2*64)*4 = 12.3 MB; row bands keep them within SHIFT_BUDGET, plus one outer
    tap's block of the weight (the Wi scratch array), plus the returned y."""
    rng = np.random.default_rng(1)
    x, w, b = (a.astype(np.float32) for a in C.inputs(rng, (1, 64, 96, 96), (64, 64, 3, 3)))
    geo = _geo(x.shape, w.shape, {"padding": 1})
    assert K.shifted(geo)
    per_sample = 98 * 98 * (3 * 64 + 2 * 64) * 4
    assert per_sample > K.SHIFT_BUDGET  # the bands are what keeps it within
    B = NumpyBackend()
    y, peak = _peak(lambda: B.conv(x, w, b, padding=1))
    assert peak - y.nbytes <= K.SHIFT_BUDGET + w.nbytes // 3 + SMALL
    np.testing.assert_allclose(y, R.conv(x, w, b, padding=1), rtol=1e-4, atol=1e-3)


def test_shift_items_cover_every_output_row_once():
    for n, out0, halo, row_cols, per_col, budget in [
        (2, 224, 2, 226, 1280, 8 << 20),  # VGG's 64-64 @224: bands
        (16, 19, 2, 21, 3072, 8 << 20),  # AlphaGo's 192-192: groups of whole samples
        (3, 7, 4, 11, 100, 1),  # a budget below one row: bands of one row
        (1, 5, 0, 5, 10, 10**9),
    ]:
        items = K._shift_items(n, out0, halo, row_cols, per_col, budget)
        rows = [(i, r) for lo, hi, r0, r1 in items for i in range(lo, hi) for r in range(r0, r1)]
        assert sorted(rows) == [(i, r) for i in range(n) for r in range(out0)]
        for lo, hi, r0, r1 in items:
            size = (hi - lo) * (r1 - r0 + halo) * row_cols * per_col
            assert size <= budget or (hi - lo == 1 and r1 - r0 == 1)
    assert K._shift_items(0, 5, 2, 7, 10, 1 << 20) == []


@pytest.mark.parametrize("n", [1, 3, 10])
def test_pointwise_weight_gradient_in_blocks_matches_the_reference(monkeypatch, n):
    """Per-sample 1x1 convs whose weight reaches PW_TMP_MIN add each later sample's weight-gradient
    product in PW_TMP_BLOCKS blocks of output channels (F = 10: blocks of 3, 3, 3 and 1)."""
    monkeypatch.setattr(K, "PW_TMP_MIN", 1)
    x_shape, w_shape = (n, 7, 12, 11), (10, 7, 1, 1)
    assert K.pointwise(_geo(x_shape, w_shape, {})) and K.sample_pointwise(_geo(x_shape, w_shape, {}))
    rng = np.random.default_rng(n)
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal((n, 10, 12, 11))
    C.assert_matches_reference(x, w, b, g, {}, atol_forward=1e-12, atol_backward=1e-11)
    one, again = C.float32_runs(x, w, b, g, {}), C.float32_runs(x, w, b, g, {})
    monkeypatch.setattr(K, "PW_TMP_MIN", 1 << 62)
    whole = C.float32_runs(x, w, b, g, {})
    for a, a2, c in zip(one, again, whole):
        np.testing.assert_array_equal(a, a2)
        np.testing.assert_allclose(c, a, rtol=2e-5, atol=2e-4)


def test_pointwise_backward_puts_dx_in_the_inputs_slot():
    """A 1x1 backward on a small grid (ResNet's s5 shape, scaled down: 7x7, batch 16, float64): one chunk's
    channel-major x_t and g_t, and the input gradient's product written into x_t's slot once the weight
    gradient has used it. A third chunk-sized array (its own dcol slot) was ResNet's s5 1x1 2048-512's
    float64 backward peak 8.9 MiB against torch-cpu's 4.6 (5.8 now)."""
    rng = np.random.default_rng(8)
    n, c, f, s = 16, 256, 64, 7
    x, w, b = C.inputs(rng, (n, c, s, s), (f, c, 1, 1))
    geo = _geo(x.shape, w.shape, {})
    assert K.pointwise(geo) and not K.sample_pointwise(geo)
    g = rng.standard_normal((n, f, s, s))
    x_t, g_t = c * n * s * s * 8, f * n * s * s * 8
    assert x_t + g_t <= K.COL_BUDGET  # one chunk
    B = NumpyBackend()
    (dx, dw, db), peak = _peak(lambda: B.conv_backward(g, x, w, b))
    assert peak - dx.nbytes - dw.nbytes - db.nbytes <= x_t + g_t + SMALL < x_t + g_t + x_t
    want = R.conv_backward(g, x, w, b)
    np.testing.assert_allclose(dx, want[0], rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(dw, want[1], rtol=1e-11, atol=1e-10)


def test_strided_pointwise_forward_chunks_within_the_column_budget():
    """A 1x1/2 downsample's forward: channel-major copies of the strided input and of the output, x_t and
    y_t, for as many samples as fit COL_BUDGET (io_limit alone would take the whole batch here)."""
    rng = np.random.default_rng(2)
    n, c, f, s = 16, 128, 256, 32
    x, w, b = C.inputs(rng, (n, c, s, s), (f, c, 1, 1))
    geo = _geo(x.shape, w.shape, {"stride": 2})
    assert K.pointwise(geo) and not K.sample_pointwise(geo)
    per_sample = (c + f) * (s // 2) ** 2 * 8
    m = K.COL_BUDGET // per_sample
    assert 1 <= m < n and K.io_limit(geo, 8, K.DEFAULT_LIMIT) >= n * per_sample
    y, peak = _peak(lambda: NumpyBackend().conv(x, w, b, stride=2))
    assert peak - y.nbytes <= m * per_sample + SMALL
    np.testing.assert_allclose(y, R.conv(x, w, b, stride=2), rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("params", [{}, {"stride": 2}])
def test_channel_major_pointwise_chunks_match_the_reference(params):
    """The channel-major 1x1 path (7x7 grid: below PW_SAMPLE_MIN_P) in one chunk and in one chunk per
    sample: the first chunk's weight gradient written into the returned array, the later ones added in
    blocks of output channels (F = 9: blocks of 3)."""
    rng = np.random.default_rng(5)
    x, w, b = C.inputs(rng, (3, 6, 7, 7), (9, 6, 1, 1))
    geo = _geo(x.shape, w.shape, params)
    assert K.pointwise(geo) and not K.sample_pointwise(geo)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    small = C.chunked_backend()
    for got, want in zip(small.conv_backward(g, x, w, b, **params), R.conv_backward(g, x, w, b, **params)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-11)
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-12, atol_backward=1e-11)
    one, again = C.float32_runs(x, w, b, g, params, small), C.float32_runs(x, w, b, g, params, small)
    for a, a2 in zip(one, again):
        np.testing.assert_array_equal(a, a2)


def test_small_grid_pointwise_forward_runs_per_sample(monkeypatch):
    """A stride-1 1x1 forward below PW_SAMPLE_MIN_P positions runs per sample on the NCHW arrays (no
    channel-major copies); its backward keeps the channel-major path."""
    taken = []
    real = K._pointwise_sample_passes
    monkeypatch.setattr(K, "_pointwise_sample_passes", lambda *a: taken.append(a[5:8]) or real(*a))
    rng = np.random.default_rng(6)
    x, w, b = C.inputs(rng, (3, 40, 7, 7), (24, 40, 1, 1))
    assert not K.sample_pointwise(_geo(x.shape, w.shape, {}))
    B = NumpyBackend()
    np.testing.assert_allclose(B.conv(x, w, b), R.conv(x, w, b), rtol=1e-12, atol=1e-11)
    assert taken == [(True, False, False)]
    B.conv_backward(rng.standard_normal((3, 24, 7, 7)), x, w, b)
    assert taken == [(True, False, False)]
    y32 = [B.conv(*(a.astype(np.float32) for a in (x, w, b))) for _ in range(2)]
    np.testing.assert_array_equal(y32[0], y32[1])
