"""The NumPy backend's speed paths (issue #15): the branch-free masked selection (arrays.where_zero) behind
relu_backward and max_pool_backward, dense layers through conv's one-thread blocked GEMM, the GEMM blocks
shared by the calling thread and the pool's helper (conv._map), the per-sample 1x1 conv
(conv._pointwise_sample_passes), sample-major column matrices (conv._cm_passes), per-kernel-row GEMMs
(conv.row_shift) and whole-input windows as dense products (conv.whole_window). Each against the reference
in float64, bit-for-bit repeatable in float32, and within rounding of the path it replaces."""

from __future__ import annotations

import conv_checks as C
import numpy as np
import pytest
from convspec.backends._xp import conv as K
from convspec.backends._xp import elementwise as E
from convspec.backends._xp.arrays import where_zero
from convspec.backends._xp.geometry import Conv
from convspec.backends.numpy_backend import NumpyBackend

from convspec import reference as R

B = NumpyBackend()


_bits = C.bits


# ----------------------------------------------------------------------------- where_zero
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_where_zero_has_the_bits_of_where(dtype):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 7, 9)).astype(dtype)
    special = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0]
    a.flat[: len(special)] = special
    payload = np.array(np.nan, dtype=dtype)
    _bits(payload)[...] |= 1  # a NaN payload must survive
    a.flat[len(special)] = payload
    mask = rng.random(a.shape) < 0.5
    mask.flat[: len(special) + 1] = [True, True, True, False, True, False, True]
    want = np.where(mask, a, dtype(0))
    np.testing.assert_array_equal(_bits(where_zero(np, mask, a)), _bits(want))
    # a callable mask filling an integer array, and an output that is a strided view
    out = np.full((5, 14, 9), 7, dtype=dtype)
    view = out[:, ::2]
    assert where_zero(np, lambda m: np.copyto(m, mask), a, out=view) is view
    np.testing.assert_array_equal(_bits(view), _bits(want))
    assert (out[:, 1::2] == 7).all()


def test_relu_backward_selects_exact_bits():
    x = np.array([-1.0, -0.0, 0.0, 2.0, np.nan, np.inf, -np.inf, 3.0])
    g = np.array([np.nan, np.inf, -5.0, -0.0, 4.0, np.nan, 1.0, -2.0])
    got = B.relu_backward(g, x)[0]
    np.testing.assert_array_equal(_bits(got), _bits(R.relu_backward(g, x)[0]))
    assert np.signbit(got[:3]).sum() == 0  # +0 where x <= 0, whatever g holds there
    rng = np.random.default_rng(2)
    x32, g32 = (
        rng.standard_normal((64, 6, 28, 28), dtype=np.float32),
        rng.standard_normal((64, 6, 28, 28), dtype=np.float32),
    )
    one = B.relu_backward(g32, x32)[0]
    assert one.dtype == np.float32
    np.testing.assert_array_equal(_bits(one), _bits(np.where(x32 > 0, g32, np.float32(0))))


@pytest.mark.parametrize(
    "shape, kw",
    [
        ((3, 4, 12, 10), dict(kernel_size=2, stride=2)),  # non-overlapping windows
        ((3, 4, 13, 11), dict(kernel_size=3, stride=2, padding=1)),  # overlapping, padded
        ((2, 3, 9), dict(kernel_size=3, stride=1, dilation=2)),
        ((2, 2, 5, 6, 7), dict(kernel_size=2, stride=(1, 2, 2), ceil_mode=True)),
    ],
)
def test_max_pool_backward_matches_the_reference(shape, kw):
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, shape).astype(np.float64)  # ties
    x[rng.random(shape) < 0.05] = np.nan
    y = R.max_pool(x, **kw)
    g = rng.integers(-3, 4, y.shape).astype(np.float64)  # exact sums where windows overlap
    g[rng.random(g.shape) < 0.05] = np.inf
    np.testing.assert_array_equal(B.max_pool_backward(g, x, **kw)[0], R.max_pool_backward(g, x, **kw)[0])
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    one, two = B.max_pool_backward(g32, x32, **kw)[0], B.max_pool_backward(g32, x32, **kw)[0]
    assert one.dtype == np.float32
    np.testing.assert_array_equal(_bits(one), _bits(two))


# ----------------------------------------------------------------------------- dense layers on one thread
def _blas_threads():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


@pytest.mark.parametrize("shape", [(64, 400, 120), (64, 120, 84), (300, 700, 90), (3, 5, 2)])
def test_linear_through_the_blocked_gemm(shape):
    n, i, o = shape
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((n, i)), rng.standard_normal((o, i)), rng.standard_normal(o)
    g = rng.standard_normal((n, o))
    before = _blas_threads()
    np.testing.assert_allclose(B.linear(x, w, b), R.linear(x, w, b), rtol=1e-12, atol=1e-11)
    for got, want in zip(B.linear_backward(g, x, w, b), R.linear_backward(g, x, w, b)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-10)
    assert _blas_threads() == before  # the BLAS gets its thread count back
    f = [a.astype(np.float32) for a in (g, x, w, b)]
    runs = [(B.linear(*f[1:]),) + B.linear_backward(*f) for _ in range(2)]
    for one, two in zip(*runs):
        assert one.dtype == np.float32
        np.testing.assert_array_equal(_bits(one), _bits(two))
    assert (n * i * o > E.BLAS_THREADED_MNK) == (shape != (3, 5, 2))


# ----------------------------------------------------------------------------- blocks shared with the helper
class _LazyPool:
    """A pool whose helper never starts (its core busy): the caller must do every block itself."""

    def __init__(self):
        self.submitted = []

    def submit(self, fn):
        self.submitted.append(fn)


_ThreadPool = C.ThreadPool


def test_map_shares_blocks_and_never_waits_for_an_idle_helper(monkeypatch):
    monkeypatch.setitem(K._split_state, "workers", 2)
    items = list(range(9))
    lazy = _LazyPool()
    assert K._map(lazy, lambda i: i * i, items) == [i * i for i in items]
    assert len(lazy.submitted) == 1
    lazy.submitted[0]()  # a helper that starts after the call has returned finds no work
    real = _ThreadPool()
    assert K._map(real, lambda i: i + 1, items) == [i + 1 for i in items]
    for t in real.threads:
        t.join()

    def boom(i):
        if i == 5:
            raise ValueError("block 5")
        return i

    with pytest.raises(ValueError, match="block 5"):
        K._map(_ThreadPool(), boom, items)


def test_mm_blocks_are_the_same_with_or_without_the_helper(monkeypatch):
    rng = np.random.default_rng(5)
    cases = [
        (
            rng.standard_normal((16, 5 * K.K_BLOCK), dtype=np.float32),
            rng.standard_normal((5 * K.K_BLOCK, 24), dtype=np.float32),
        ),
        (rng.standard_normal((40, 700), dtype=np.float32), rng.standard_normal((700, 3000), dtype=np.float32)),
        (rng.standard_normal((3000, 800), dtype=np.float32), rng.standard_normal((800, 64), dtype=np.float32)),
    ]
    monkeypatch.setattr(K, "SPLIT_MIN_FLOPS", 1 << 20)
    with K._blas_split(np):
        pooled = [K.mm(np, a, b) for a, b in cases]
    monkeypatch.setattr(K, "_map", lambda pool, fn, items: [fn(i) for i in items])
    with K._blas_split(np):
        inline = [K.mm(np, a, b) for a, b in cases]
    for (a, b), p, i in zip(cases, pooled, inline):
        np.testing.assert_array_equal(_bits(p), _bits(i))
        np.testing.assert_allclose(p, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


# ----------------------------------------------------------------------------- 1x1 convs per sample
PW_CASES = [  # (x_shape, w_shape, params, takes the per-sample path)
    ((3, 5, 12, 12), (7, 5, 1, 1), {}, True),
    ((2, 1, 16, 9), (4, 1, 1, 1), {}, True),  # one input channel: the broadcast product
    ((2, 6, 16, 9), (1, 6, 1, 1), {}, True),  # one output channel (AlphaGo's policy head)
    ((2, 6, 130), (3, 6, 1), {}, True),  # 1-d
    ((2, 4, 6, 6, 6), (3, 4, 1, 1, 1), {}, True),  # 3-d
    ((2, 8, 7, 7), (6, 8, 1, 1), {}, False),  # ResNet's 7x7 stage: channel-major copies instead
    ((2, 8, 24, 24), (6, 8, 1, 1), {"stride": 2}, False),  # strided: not every position is read
    ((11, 9, 12, 12), (10, 9, 1, 1), {}, True),  # 11 samples in 6 groups of 2 and one of 1
]


@pytest.mark.parametrize("x_shape, w_shape, params, per_sample", PW_CASES)
def test_pointwise_per_sample_matches_the_reference(monkeypatch, x_shape, w_shape, params, per_sample):
    geo = Conv(x_shape, w_shape, (w_shape[0],), stride=params.get("stride", 1), padding=0, dilation=1, groups=1)
    assert K.pointwise(geo) and K.sample_pointwise(geo) == per_sample
    rng = np.random.default_rng(sum(x_shape))
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-12, atol_backward=1e-11)
    bt = rng.standard_normal(w_shape[1])
    if not params:  # conv_transpose runs the same products with the roles of x and y swapped
        np.testing.assert_allclose(B.conv_transpose(g, w, bt), R.conv_transpose(g, w, bt), rtol=1e-12, atol=1e-11)
        for got, want in zip(B.conv_transpose_backward(x, g, w, bt), R.conv_transpose_backward(x, g, w, bt)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-10)
    one, again = C.float32_runs(x, w, b, g, params), C.float32_runs(x, w, b, g, params)
    monkeypatch.setattr(K, "TOGGLE_MIN_FLOPS", 0)  # the groups shared with the pool's helper
    monkeypatch.setattr(K, "SPLIT_MIN_FLOPS", 0)
    shared = C.float32_runs(x, w, b, g, params)
    monkeypatch.setattr(K, "PW_SAMPLE_MIN_P", 1 << 30)  # every 1x1 conv through the channel-major copies
    copies = C.float32_runs(x, w, b, g, params)
    for a, a2, s, c in zip(one, again, shared, copies):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(_bits(a), _bits(a2))
        if per_sample:  # the same per-sample products whichever thread runs a group
            np.testing.assert_array_equal(_bits(a), _bits(s))
        np.testing.assert_allclose(s, a, rtol=2e-5, atol=2e-4)
        np.testing.assert_allclose(c, a, rtol=2e-5, atol=2e-4)


def test_pointwise_weight_gradient_in_fewer_groups_when_its_parts_are_large(monkeypatch):
    """PW_PARTS caps the per-group partial weight gradients (all kept until summed): 2 groups here."""
    x_shape, w_shape = (11, 9, 12, 12), (10, 9, 1, 1)
    rng = np.random.default_rng(5)
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b).shape)
    monkeypatch.setattr(K, "PW_PARTS", 1)
    C.assert_matches_reference(x, w, b, g, {}, atol_forward=1e-12, atol_backward=1e-11)
    few, again = C.float32_runs(x, w, b, g, {}), C.float32_runs(x, w, b, g, {})
    monkeypatch.setattr(K, "PW_PARTS", 1 << 40)  # 8 groups
    many = C.float32_runs(x, w, b, g, {})
    for a, a2, m in zip(few, again, many):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(_bits(a), _bits(a2))
        np.testing.assert_allclose(a, m, rtol=2e-5, atol=2e-4)


# ----------------------------------------------------------------------------- sample-major column matrices
CM_CASES = [  # (x_shape, w_shape, params); every case prefers a channels-first column matrix
    ((3, 1, 16, 15), (6, 1, 5, 5), {}),  # LeNet's C1: forward sample-major, backward batch-last
    ((2, 3, 20, 19), (8, 3, 7, 7), {"stride": 2, "padding": 3}),  # ResNet's stem
    ((2, 3, 12, 12), (16, 3, 3, 3), {"padding": 1}),  # VGG's first layer
    ((2, 2, 13, 11), (5, 2, 3, 2), {"stride": (2, 3), "dilation": (2, 1), "padding": ((1, 0), (2, 1))}),
    ((2, 3, 40), (9, 3, 5), {"stride": 3, "padding": 2}),  # 1-d
    ((1, 2, 6, 7, 5), (4, 2, 3, 3, 2), {"padding": 1, "stride": (1, 2, 1)}),  # 3-d
    ((2, 2, 11, 11), (3, 2, 2, 2), {"stride": 3}),  # windows that skip inputs: zeros in dx
]


@pytest.mark.parametrize("x_shape, w_shape, params", CM_CASES)
def test_sample_major_columns_match_the_reference(monkeypatch, x_shape, w_shape, params):
    geo = C.geometry(x_shape, w_shape, params)
    assert K.prefer_channels_first(geo) and K.channel_major(geo, want_dx=False)
    rng = np.random.default_rng(sum(x_shape))
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-11, atol_backward=1e-10)
    one, again = C.float32_runs(x, w, b, g, params), C.float32_runs(x, w, b, g, params)
    chunked = C.float32_runs(x, w, b, g, params, C.chunked_backend())
    monkeypatch.setattr(K, "channel_major", lambda geo, want_dx: True)  # the backward sample-major too
    cm = C.float32_runs(x, w, b, g, params)
    np.testing.assert_allclose(
        B.conv_backward(g, x, w, b, **params)[0], R.conv_backward(g, x, w, b, **params)[0], atol=1e-10
    )
    monkeypatch.setattr(K, "channel_major", lambda geo, want_dx: False)  # batch-last columns
    cf = C.float32_runs(x, w, b, g, params)
    for a, a2, ch, m, f in zip(one, again, chunked, cm, cf):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(_bits(a), _bits(a2))
        for other in (ch, m, f):
            np.testing.assert_allclose(other, a, rtol=2e-5, atol=2e-4)


# ----------------------------------------------------------------------------- per-kernel-row GEMMs
ROW_CASES = [  # (x_shape, w_shape, params); C_in * k_w >= ROW_SHIFT_MIN_K, stride 1 along the rows
    ((3, 6, 14, 14), (16, 6, 5, 5), {}),  # LeNet's C3
    ((2, 6, 12, 13), (5, 6, 3, 4), {"padding": ((1, 2), (0, 1)), "dilation": (2, 1), "stride": (1, 2)}),
    ((2, 8, 9, 11), (4, 8, 2, 3), {"padding": 1, "stride": (1, 3), "dilation": (1, 2)}),
    ((2, 12, 7, 9), (3, 12, 3, 2), {"padding": "same"}),
]


@pytest.mark.parametrize("x_shape, w_shape, params", ROW_CASES)
def test_kernel_row_products_match_the_reference(monkeypatch, x_shape, w_shape, params):
    monkeypatch.setattr(K, "channel_major", lambda geo, want_dx: False)  # the batch-last layout
    geo = C.geometry(x_shape, w_shape, params)
    assert K.prefer_channels_first(geo) and K.row_shift(geo)
    rng = np.random.default_rng(sum(x_shape))
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-11, atol_backward=1e-10)
    if params.get("padding") != "same":  # conv_transpose: the input-gradient product with y as g
        tp = {k: v for k, v in params.items() if k in ("stride", "dilation", "padding")}
        bt = rng.standard_normal(w_shape[1])
        np.testing.assert_allclose(B.conv_transpose(g, w, bt, **tp), R.conv_transpose(g, w, bt, **tp), atol=1e-10)
        gt = rng.standard_normal(R.conv_transpose(g, w, bt, **tp).shape)
        for got, want in zip(
            B.conv_transpose_backward(gt, g, w, bt, **tp), R.conv_transpose_backward(gt, g, w, bt, **tp)
        ):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-10)
    one, again = C.float32_runs(x, w, b, g, params), C.float32_runs(x, w, b, g, params)
    chunked = C.float32_runs(x, w, b, g, params, C.chunked_backend())
    monkeypatch.setattr(K, "ROW_SHIFT_MIN_K", 1 << 30)  # the full column matrix
    full = C.float32_runs(x, w, b, g, params)
    for a, a2, ch, f in zip(one, again, chunked, full):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(_bits(a), _bits(a2))
        np.testing.assert_allclose(ch, a, rtol=2e-5, atol=2e-4)
        np.testing.assert_allclose(f, a, rtol=2e-5, atol=2e-4)


# ----------------------------------------------------------------------------- one window over the whole input
WHOLE_CASES = [  # (x_shape, w_shape, params)
    ((3, 16, 5, 5), (12, 16, 5, 5), {}),  # LeNet's C5
    ((2, 3, 7), (4, 3, 7), {"stride": 2}),  # 1-d, any stride
    ((2, 2, 3, 4, 2), (5, 2, 3, 4, 2), {}),  # 3-d
    ((2, 4, 1, 1), (3, 4, 1, 1), {}),  # 1x1 on 1x1
]


@pytest.mark.parametrize("x_shape, w_shape, params", WHOLE_CASES)
def test_whole_window_conv_matches_the_reference(x_shape, w_shape, params):
    geo = Conv(x_shape, w_shape, (w_shape[0],), stride=params.get("stride", 1), padding=0, dilation=1, groups=1)
    assert K.whole_window(geo)
    assert not K.whole_window(Conv(x_shape, w_shape, None, stride=1, padding=1, dilation=1, groups=1))
    rng = np.random.default_rng(sum(x_shape))
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-12, atol_backward=1e-12)
    bt = rng.standard_normal(w_shape[1])
    np.testing.assert_allclose(B.conv_transpose(g, w, bt, **params), R.conv_transpose(g, w, bt, **params), atol=1e-12)
    one, again = C.float32_runs(x, w, b, g, params), C.float32_runs(x, w, b, g, params)
    for a, a2 in zip(one, again):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(_bits(a), _bits(a2))


# ----------------------------------------------------------------------------- batch chunks sized by the layer's arrays
def test_io_limit_sizes_chunks_by_the_layers_arrays():
    text = Conv((50, 300, 64), (100, 300, 5), (100,), stride=1, padding=0, dilation=1, groups=1)  # text1d k5
    io = 50 * (300 * 64 + 100 * 60) * 4
    assert K.io_limit(text, 4, K.DEFAULT_LIMIT) == io  # ~5 MB, not 64 MiB: 4 chunks of the 18 MiB columns
    assert K.io_limit(text, 4, 1 << 20) == 1 << 20  # an explicit smaller limit still wins
    tiny = Conv((2, 3, 8, 8), (4, 3, 3, 3), (4,), stride=1, padding=1, dilation=1, groups=1)
    assert K.io_limit(tiny, 8, K.DEFAULT_LIMIT) == K.CHUNK_MIN
    big = Conv((64, 64, 224, 224), (64, 64, 3, 3), (64,), stride=1, padding=1, dilation=1, groups=1)
    assert K.io_limit(big, 4, K.DEFAULT_LIMIT) == K.DEFAULT_LIMIT


@pytest.mark.parametrize(
    "x_shape, w_shape, params",
    [
        ((5, 40, 16), (12, 40, 5), {}),  # the sentence CNN's shape, small
        ((5, 40, 16), (12, 40, 5), {"padding": 4}),  # its wide conv
        ((4, 32, 9, 9), (16, 32, 3, 3), {"padding": 1}),  # tap shifts
        ((4, 3, 12, 12), (8, 3, 3, 3), {"padding": 1}),  # channels-first columns
    ],
)
def test_chunks_of_the_layers_size_match_one_chunk(monkeypatch, x_shape, w_shape, params):
    rng = np.random.default_rng(sum(x_shape))
    x, w, b = C.inputs(rng, x_shape, w_shape)
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    monkeypatch.setattr(K, "CHUNK_MIN", 1)  # chunks of about the arrays' bytes: several here
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-11, atol_backward=1e-10)
    small, again = C.float32_runs(x, w, b, g, params), C.float32_runs(x, w, b, g, params)
    monkeypatch.setattr(K, "CHUNK_MIN", 1 << 40)  # one chunk (the 64 MiB limit)
    whole = C.float32_runs(x, w, b, g, params)
    for a, a2, one in zip(small, again, whole):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(_bits(a), _bits(a2))
        np.testing.assert_allclose(a, one, rtol=2e-5, atol=2e-4)
