"""Convolution kernels: channels-last im2col + one GEMM per group, col2im by strided adds per tap.

Layouts (G groups, Cg = C_in/G input and Fg = C_out/G output channels per group, K taps, M = n*prod(o)):

    x_cl   (n, *padded, C_in)          the padded input, channels last (one copy of x)
    col    (n, *o, G, K, Cg)           col[.., g, t, c] = x_cl[.., i*s + j_t*d, g*Cg + c]
    W      (G, K*Cg, Fg)               W[g, t*Cg + c, f] = w[g*Fg + f, c, j_t]
    y_cl   (M, C_out) = col @ W        per group: (M, K*Cg) @ (K*Cg, Fg)

Stride-1 single-group convs with C_in >= 32 on 2-d/3-d grids (VGG, ResNet's 3x3 layers) skip the full
column matrix instead: tap shifts of the channel-major padded input (see _shifted_passes), unless their
weight is 4 MiB or more. Other NumPy paths by shape (see _conv_passes): a window over the whole input as a
dense layer (whole_window), 1x1 convs per sample or over channel-major copies (sample_pointwise), 1-d
convs with many channels as per-tap products with no column matrix (conv1d: the sentence CNN), convs with
a weight of 4 MiB or more with no weight-sized temporary and, in float32, in bands of output rows
(weight_heavy: ResNet's and VGG's 256-512 and 512-512 layers; before the tap shifts), and convs with few
input channels with a channels-first column matrix, sample-major (channel_major) or batch-last, the
latter per kernel row when its rows are long enough (row_shift).

The backward passes are the same GEMMs transposed: dW = col^T @ g_cl and dcol = g_cl @ W^T, and dcol
goes back to the input by one strided add per kernel tap (a deterministic gather, never an atomic
scatter). Everything runs in the input dtype (float32 stays float32: the BLAS accumulates in it). The
batch is processed in chunks so that the column matrices stay below about the bytes of the layer's own
input and output (io_limit: at least CHUNK_MIN, at most `limit`), and below COL_BUDGET (im2col, 1x1) or
SHIFT_BUDGET (tap shifts, in bands of image rows) bytes: issue #15 asks for a peak extra memory at most
torch-cpu's on every layer.

Every function takes the array module `xp` (numpy or cupy) as its first argument.
"""

from __future__ import annotations

import itertools
import os
import threading
from itertools import product
from math import prod

from .arrays import crop, padded, tap_slices

DEFAULT_LIMIT = 64 << 20  # bytes of column matrix (col + dcol) per batch chunk, at most
CHUNK_MIN = 4 << 20  # ... and at least this much, else about the bytes of the layer's input + output (io_limit)
COL_BUDGET = 4 << 20  # bytes of column matrix per batch chunk in the general im2col loop, at most (see below)
HEAVY_WEIGHT = 4 << 20  # weights of at least this many bytes avoid weight-sized copies (see weight_heavy)
SCRATCH_CACHE = 64 << 20  # NumPy scratch buffers up to this size are kept for the next call


class _Scratch(threading.local):
    """Per-thread cache of flat NumPy buffers by (slot, dtype), reused across chunks and calls: a fresh
    large array costs a page fault per 4 KiB on first touch, which for small layers costs more than the
    arithmetic. Buffers above SCRATCH_CACHE serve the chunks of one call only (trim_scratch drops them
    when the call returns); other array modules (CuPy) allocate from their own memory pool instead."""

    def __init__(self):
        self.bufs = {}


_SCRATCH = _Scratch()


def release_scratch() -> int:
    """Drop this thread's cached scratch buffers (the next call allocates afresh); -> bytes released."""
    n = sum(b.nbytes for b in _SCRATCH.bufs.values())
    _SCRATCH.bufs.clear()
    return n


def trim_scratch() -> None:
    """Drop the cached buffers larger than SCRATCH_CACHE (called when a conv call returns)."""
    bufs = _SCRATCH.bufs
    for key in [k for k, b in bufs.items() if b.nbytes > SCRATCH_CACHE]:
        del bufs[key]


def scratch(xp, slot: str, shape, dtype, *, zero: bool = False):
    """A C-contiguous work array of `shape` (its contents undefined unless `zero`); never returned to
    the caller of conv_passes, and a slot is only reused once its previous contents are dead."""
    shape = tuple(int(v) for v in shape)
    n = prod(shape)
    dtype = xp.dtype(dtype)
    if getattr(xp, "__name__", "") != "numpy":
        return (xp.zeros if zero else xp.empty)(shape, dtype=dtype)
    key = (slot, dtype.str)
    buf = _SCRATCH.bufs.get(key)
    if buf is None or buf.size < n:
        buf = _SCRATCH.bufs[key] = xp.empty(max(n, 1), dtype=dtype)
    a = buf[:n].reshape(shape)
    if zero:
        a.fill(0)
    return a


def _padded_into(xp, a, pads, slot, *, batch_last: bool):
    """a (m, C, *s) -> a zero-padded copy in a scratch array: channels last (m, *s_padded, C), or
    channels first and batch last (C, *s_padded, m)."""
    m, c = a.shape[:2]
    src = xp.moveaxis(a, 0, -1) if batch_last else xp.moveaxis(a, 1, -1)
    sizes = tuple(n + b + e for n, (b, e) in zip(a.shape[2:], pads))
    shape = (c,) + sizes + (m,) if batch_last else (m,) + sizes + (c,)
    has_pad = any(b or e for b, e in pads)
    out = scratch(xp, slot, shape, a.dtype, zero=has_pad)
    out[crop_index(pads, a.shape[2:], 1)] = src
    return out


def crop_index(pads, sizes, first):
    """The index of the interior (unpadded part) of an array padded by `pads` from axis `first` on."""
    return (slice(None),) * first + tuple(slice(b, b + n) for (b, _), n in zip(pads, sizes))


def io_limit(geo, itemsize: int, limit: int) -> int:
    """The column-matrix budget of one batch chunk: about the bytes of the layer's own input and output
    (x and y of the whole batch), at least CHUNK_MIN (smaller GEMMs lose speed) and at most `limit`. A
    fixed 64 MiB let the column matrix of a layer with small arrays and a wide kernel dwarf them (the
    sentence CNN's k5 300-100 layer: a 18 MiB column matrix for 5 MiB of x and y). From shapes only,
    so chunk boundaries (and results) stay deterministic."""
    io = geo.n * (geo.c_in * prod(geo.in_sizes) + geo.c_out * prod(geo.out_sizes)) * itemsize
    return min(limit, max(CHUNK_MIN, io))


def _chunks(n: int, per_sample: int, limit: int):
    step = max(1, limit // max(per_sample, 1))
    return [(lo, min(lo + step, n)) for lo in range(0, n, step)] or [(0, 0)]


def weight_matrix(xp, w, geo):
    """(G, K*Cg, Fg) with row t*Cg + c holding tap t of input channel c."""
    G, K = geo.groups, geo.taps
    Fg, Cg = geo.c_out // G, geo.c_in // G
    return xp.ascontiguousarray(w.reshape(G, Fg, Cg, K).transpose(0, 3, 2, 1)).reshape(G, K * Cg, Fg)


def weight_from_matrix(xp, dW, geo):
    """Inverse of weight_matrix: (G, K*Cg, Fg) -> (C_out, Cg, *kernel)."""
    G, K = geo.groups, geo.taps
    Fg, Cg = geo.c_out // G, geo.c_in // G
    return xp.ascontiguousarray(dW.reshape(G, K, Cg, Fg).transpose(0, 3, 2, 1)).reshape((geo.c_out, Cg) + geo.kernel)


def im2col(xp, x_cl, geo, taps, slot="col"):
    """(M, G, K*Cg) column matrix of a channels-last padded chunk, written by one copy of a strided
    window view into the `slot` scratch array (a view of x_cl itself when K == 1 allows)."""
    m = x_cl.shape[0]
    G, K, C = geo.groups, geo.taps, geo.c_in
    Cg = C // G
    M = m * prod(geo.out_sizes)
    if K == 1:
        return x_cl[(slice(None),) + taps[0]].reshape(M, G, Cg)
    x_cl = xp.ascontiguousarray(x_cl)
    st = x_cl.strides
    sp = st[1 : 1 + geo.nd]
    item = x_cl.itemsize
    # window view (m, *o, G, *k, Cg): element [.., i, g, j, c] = x_cl[.., i*s + j*d, g*Cg + c]
    shape = (m,) + geo.out_sizes + (G,) + geo.kernel + (Cg,)
    strides = (
        (st[0],)
        + tuple(a * s for a, s in zip(sp, geo.stride))
        + (Cg * item,)
        + tuple(a * d for a, d in zip(sp, geo.dilation))
        + (item,)
    )
    win = xp.lib.stride_tricks.as_strided(x_cl, shape=shape, strides=strides)
    col = scratch(xp, slot, shape, x_cl.dtype)
    col[...] = win
    return col.reshape(M, G, K * Cg)


def col2im(xp, dcol, geo, taps, m):
    """Adjoint of im2col: dcol (M, G, K*Cg) -> channels-last padded (m, *padded, C_in), one strided add
    per tap (each add is a plain elementwise pass, so the result is deterministic)."""
    G, K, C = geo.groups, geo.taps, geo.c_in
    Cg = C // G
    padded_sizes = tuple(n + b + e for n, (b, e) in zip(geo.in_sizes, geo.pads))
    dx = scratch(xp, "dx", (m,) + padded_sizes + (C,), dcol.dtype, zero=True)
    d5 = dcol.reshape((m,) + geo.out_sizes + (G, K, Cg))
    overlap = any(s < d * (k - 1) + 1 for s, d, k in zip(geo.stride, geo.dilation, geo.kernel))
    for t, sl in enumerate(taps):
        dst = dx[(slice(None),) + sl].reshape((m,) + geo.out_sizes + (G, Cg))
        if overlap:
            dst += d5[..., t, :]
        else:  # every padded position is read by at most one (window, tap)
            dst[...] = d5[..., t, :]
    return dx


def _dw_taps(Wt, f):
    """Per tap t, the (G,) weights of output f of every group: Wt (K, G, Fg)."""
    return [Wt[t, :, f].copy() for t in range(Wt.shape[0])]


def _dw_forward(xp, x_cl, taps, Wt, shape):
    """Depthwise (Cg == 1) y: for every output f of each group, K broadcast multiply-adds over the
    channels-last taps (no column matrix: its rows would be K*Cg = K long, too thin for a GEMM)."""
    y = xp.empty(shape, dtype=x_cl.dtype)  # (m, *o, G, Fg)
    tmp = None
    lead = (slice(None),)
    for f in range(shape[-1]):
        ws = _dw_taps(Wt, f)
        acc = x_cl[lead + taps[0]] * ws[0]
        for t in range(1, len(taps)):
            tmp = xp.multiply(x_cl[lead + taps[t]], ws[t], out=tmp)
            acc += tmp
        y[..., f] = acc
    return y


def _dw_weight(xp, x_cl, taps, gm):
    """Depthwise dW (G, K, Fg): sum over batch and positions of tap * g, per channel."""
    G, Fg = gm.shape[-2:]
    lead = (slice(None),)
    out = xp.empty((G, len(taps), Fg), dtype=gm.dtype)
    for f in range(Fg):
        gf = xp.ascontiguousarray(gm[..., f])
        for t, sl in enumerate(taps):
            out[:, t, f] = (x_cl[lead + sl] * gf).reshape(-1, G).sum(axis=0)
    return out


def _dw_input(xp, gm, Wt, geo, taps, m):
    """Depthwise input gradient, channels-last padded: dx[tap t] += sum_f g[.., f] * w[t, f]."""
    padded_sizes = tuple(n + b + e for n, (b, e) in zip(geo.in_sizes, geo.pads))
    G, Fg = gm.shape[-2:]
    dx = xp.zeros((m,) + padded_sizes + (G,), dtype=gm.dtype)
    lead = (slice(None),)
    for f in range(Fg):
        gf = xp.ascontiguousarray(gm[..., f])
        for t, w_t in enumerate(_dw_taps(Wt, f)):
            dx[lead + taps[t]] += gf * w_t
    return dx


def _gemm(xp, a, b, slot=None):
    """Per-group product (G, M, P) @ (G, P, Q) -> (G, M, Q), into a scratch array when `slot` is given."""
    out = None if slot is None else scratch(xp, slot, (a.shape[0], a.shape[1], b.shape[2]), xp.result_type(a, b))
    if a.shape[0] == 1:
        if out is None:
            return mm(xp, a[0], b[0])[None]
        mm(xp, a[0], b[0], out=out[0])
        return out
    return xp.matmul(a, b, out=out)


def input_grad_as_conv(xp, geo, w, g, limit=DEFAULT_LIMIT):
    """For stride 1 the input adjoint is itself a conv: dx[i] = sum_j g[i + p_b - j*d] w[j]
    = sum_j' g_pad[i + j'*d] w_flip[j'] with g padded by (k-1)*d - p_b at the start (negative: cropped)
    and the channel roles of w swapped per group. This runs as a forward pass (one im2col + a GEMM with
    the long K*C_out inner dimension) instead of a thin GEMM followed by K strided adds."""
    G = geo.groups
    Fg, Cg = geo.c_out // G, geo.c_in // G
    crops, pads = [], []
    for n_in, o, k, d, (pb, _) in zip(geo.in_sizes, geo.out_sizes, geo.kernel, geo.dilation, geo.pads):
        b = (k - 1) * d - pb
        e = n_in + (k - 1) * d - o - b
        crops.append((max(-b, 0), max(-e, 0)))
        pads.append((max(b, 0), max(e, 0)))
    if any(b or e for b, e in crops):
        g = g[(slice(None), slice(None)) + tuple(slice(b, n - e) for (b, e), n in zip(crops, g.shape[2:]))]
    flip = (slice(None), slice(None)) + (slice(None, None, -1),) * geo.nd
    # w2[g*Cg + c, f, j'] = w[g*Fg + f, c, k-1-j']; for one group a view of w (no weight-sized copy: the
    # paths below copy what they need of it, the tap-shift path one outer tap at a time)
    if G == 1:
        w2 = w.swapaxes(0, 1)[flip]
        io = geo.n * (geo.c_in * prod(geo.in_sizes) + geo.c_out * prod(geo.out_sizes))
        if w.size <= io:  # one contiguous copy, where it is no larger than the layer's x and y: the tap-shift
            # path copies the view one tap at a time for every work item, each copy a transpose of the
            # channel axes (VGG's 256-512 @28 input gradient: 25.5 ms with the view, 13.8 ms before)
            w2 = xp.ascontiguousarray(w2)
    else:
        w2 = w.reshape((G, Fg, Cg) + geo.kernel).swapaxes(1, 2).reshape((G * Cg, Fg) + geo.kernel)[flip]
    geo2 = _SimpleGeometry(
        n=geo.n,
        c_in=geo.c_out,
        c_out=geo.c_in,
        groups=G,
        kernel=geo.kernel,
        stride=(1,) * geo.nd,
        dilation=geo.dilation,
        pads=tuple(pads),
        in_sizes=tuple(g.shape[2:]),
        out_sizes=geo.in_sizes,
    )
    y, _, _ = conv_passes(xp, geo2, x=g, w=w2, want_y=True, limit=limit)
    return y


class _SimpleGeometry:
    """The geometry fields conv_passes reads, for a conv built internally (already valid)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.nd = len(self.kernel)
        self.taps = prod(self.kernel)


def dx_as_conv(geo, shift: bool = False) -> bool:
    """Whether the input gradient runs as a forward conv of g (stride 1 only) rather than a GEMM and
    per-tap adds (col2im). The conv's column matrix has n*prod(in)*K*C_out elements, written once and
    read by the GEMM; col2im's has n*prod(out)*K*C_in, written by the GEMM and then read and added in
    K passes over the input gradient (about twice the traffic per element): the conv wins unless the
    layer widens the channels (C_out > 2 C_in: LeNet, AlphaGo's first layer) or shrinks the spatial
    size (a 'valid' conv on a small input: LeNet's C5 sees a 5x5 input through a 5x5 kernel). With
    `shift` (NumPy), always when the conv of g takes the tap-shift path, which builds no column matrix."""
    if geo.taps == 1 or any(s != 1 for s in geo.stride):
        return False
    if shift and shifted(geo) and geo.c_out >= 32:
        grid = prod(n + (k - 1) * d for n, k, d in zip(geo.in_sizes, geo.kernel, geo.dilation))  # g padded
        if grid <= SHIFT_MAX_WASTE * prod(geo.in_sizes):
            return True
    return prod(geo.in_sizes) * geo.c_out <= 2 * prod(geo.out_sizes) * geo.c_in


def prefer_channels_first(geo) -> bool:
    """Whether the column matrix is built channels first and batch last, (C_in*K, prod(out)*n) (see
    _cf_passes), instead of channels last, (n*prod(out), K*C_in). The channels-last copy moves inner runs
    of kernel[-1]*C_in elements (C_in when dilated); few input channels make those runs too short for a
    fast copy (LeNet's C1: 5 elements), while batch-last runs are n elements or more."""
    if geo.groups != 1 or geo.taps == 1:
        return False
    run_cl = geo.c_in * (geo.kernel[-1] if geo.dilation[-1] == 1 else 1)
    return run_cl < 32


def im2col_cf(xp, x_t, geo):
    """(C_in*K, prod(out)*m) column matrix of a batch-last padded chunk x_t (C_in, *padded, m): row
    c*K + t holds tap t of channel c for every window, columns ordered (*out, sample). One copy of a
    strided view; its inner runs are out[-1]*m elements at stride 1 (m otherwise)."""
    m = x_t.shape[-1]
    C = geo.c_in
    x_t = xp.ascontiguousarray(x_t)
    st = x_t.strides
    sp = st[1:-1]
    shape = (C,) + geo.kernel + geo.out_sizes + (m,)
    strides = (
        (st[0],)
        + tuple(a * d for a, d in zip(sp, geo.dilation))
        + tuple(a * s for a, s in zip(sp, geo.stride))
        + (st[-1],)
    )
    win = xp.lib.stride_tricks.as_strided(x_t, shape=shape, strides=strides)
    col = scratch(xp, "col", shape, x_t.dtype)
    col[...] = win
    return col.reshape(C * geo.taps, prod(geo.out_sizes) * m)


def col2im_cf(xp, dcol, geo, taps, m):
    """Adjoint of im2col_cf: dcol (C_in*K, prod(out)*m) -> batch-last padded (C_in, *padded, m), one
    strided add per tap (deterministic, as col2im)."""
    C, K = geo.c_in, geo.taps
    padded_sizes = tuple(n + b + e for n, (b, e) in zip(geo.in_sizes, geo.pads))
    dx = scratch(xp, "dx", (C,) + padded_sizes + (m,), dcol.dtype, zero=True)
    d = dcol.reshape((C, K) + geo.out_sizes + (m,))
    overlap = any(s < d_ * (k - 1) + 1 for s, d_, k in zip(geo.stride, geo.dilation, geo.kernel))
    for t, sl in enumerate(taps):
        dst = dx[(slice(None),) + sl]
        if overlap:
            dst += d[:, t]
        else:
            dst[...] = d[:, t]
    return dx


# Bytes of a chunk's buffers (column matrix, padded input copy, y's or the gradients' buffers), at most,
# at least one sample: forward-only calls of _cm_passes (CM_FWD_CHUNK) and _cf_passes (CF_FWD_CHUNK), and
# backward calls of _cf_passes with row_shift (CF_ROWS_BWD_CHUNK). The batch's chunk of about the layer's
# input + output (4 MiB and more) put the peak memory above torch's on LeNet's C1 forward and C3 forward and
# backward (float32 5.1, 2.1 and 3.3 MiB against 3.1, 0.5 and 1.6). Smaller chunks were also faster, their
# buffers staying in the cache between the column copy and the GEMM that reads it (interleaved rounds,
# float32, load 2-4: C3's forward 0.48 -> 0.39 ms at 448 KiB, 0.40 at 512, 0.42 at 384; its backward
# 1.16 -> 1.02 ms at 1 MiB, 1.22 at 512 KiB; float64 1.88 -> 1.88 ms). C1's sample-major forward, which
# writes y in place (no y buffer, no transpose: 0.98 -> 0.51 ms at 512 KiB), ran fastest in large chunks
# (0.44, 0.41, 0.37, 0.36 ms at 0.5, 1, 2, 4 MiB): 2 MiB keeps it below torch's 3.1 MiB. ResNet's 7x7/2 stem
# and VGG's first layer run a sample per chunk: forward peak 85.6 -> 7.6 and 36.0 -> 5.8 MiB (float32, torch
# 49.0 and 24.6), forward 31.5 -> 29.4 and 5.2 -> 3.7 ms (float64: 72.0 -> 11.5 MiB for VGG's layer, torch
# 20.7; ResNet's stem 58-82 ms both ways, within the noise of the rounds).
CM_FWD_CHUNK = 2 << 20
# _cm_passes' products that mm splits aim for this many output positions (whole samples) when a sample has
# fewer: ResNet's s5 3x3 512-512 (7x7, float32) ran W @ a sample's columns, (512, 4608) @ (4608, 49), at
# 237 GFLOP/s and its input gradient's (4608, 512) @ (512, 49) at 296; at 294 columns (6 samples) 352 and 402.
# Such chunks (`few` samples) override CM_FWD_CHUNK and the one-sample rule of the backward: ResNet's s5 3x3
# 512-512 float32 forward peak 1.4 -> 5.6 MiB (torch-cpu 10.6)
CM_MIN_COLS = 256
# ... within this many bytes of the call's column matrices (float32's s5: 4 samples, 196 positions, 3.5 MiB; as
# fast as 6 samples in 8 MiB, which took VGG's 512-512 @14 float32 forward peak above torch-cpu's: 11.0 against
# 9.8 MiB) and the caller's chunk limit
CM_FEW_BUDGET = 4 << 20
CF_FWD_CHUNK = 448 << 10
CF_ROWS_BWD_CHUNK = 1 << 20
ROW_SHIFT_MIN_K = 24  # C_in * kernel width below which the per-row GEMMs are too thin (see row_shift)


def row_shift(geo) -> bool:
    """Whether _cf_passes gathers only the taps of one kernel row, R (C_in*k_w, padded_h*out_w*m),
    and runs each kernel row as a GEMM over a column range of R (the rows' windows are column shifts
    of out_w*m in batch-last order): 2-d, stride 1 along the first spatial dim, more than one kernel row,
    and rows of C_in*k_w >= ROW_SHIFT_MIN_K for the GEMMs' inner dimension. R is about k_h times smaller
    than the column matrix: LeNet's C3 copies 269k elements instead of 960k, and memory copies were what
    slowed most when the benchmark's other threads were busy (its forward 0.99 -> 0.84 ms then). The
    input gradient takes the adjoint route (row2im_cf): per kernel row W_i^T @ g^T added into a dR of
    R's shape, then k_w strided adds, instead of the full dcol and K adds (C3's backward 1.65 -> 1.47 ms
    in the benchmark's interleaved rounds)."""
    return geo.nd == 2 and geo.stride[0] == 1 and geo.kernel[0] > 1 and geo.c_in * geo.kernel[1] >= ROW_SHIFT_MIN_K


def im2row_cf(xp, x_t, geo):
    """(C_in*k_w, padded_h*out_w*m) matrix of a batch-last padded chunk x_t (C_in, padded_h, padded_w, m):
    row c*k_w + j holds, for every padded row h and output column i, x_t[c, h, i*s_w + j*d_w, :]."""
    m = x_t.shape[-1]
    C, kw = geo.c_in, geo.kernel[1]
    x_t = xp.ascontiguousarray(x_t)
    st = x_t.strides
    shape = (C, kw, x_t.shape[1], geo.out_sizes[1], m)
    strides = (st[0], st[2] * geo.dilation[1], st[1], st[2] * geo.stride[1], st[3])
    win = xp.lib.stride_tricks.as_strided(x_t, shape=shape, strides=strides)
    R = scratch(xp, "col", shape, x_t.dtype)
    R[...] = win
    return R.reshape(C * kw, -1)


def row2im_cf(xp, WrT, gt, geo, m):
    """Input gradient of the row-shift form: dR (C_in*k_w, padded_h*out_w*m) = sum_i W_i^T @ g^T placed
    at column i*d_h*out_w*m, then one strided add per kernel column into the batch-last padded input
    gradient (C_in, padded_h, padded_w, m)."""
    C, (kh, kw) = geo.c_in, geo.kernel
    padded = tuple(v + b + e for v, (b, e) in zip(geo.in_sizes, geo.pads))
    oh, ow = geo.out_sizes
    L, step = oh * ow * m, geo.dilation[0] * ow * m
    width = padded[0] * ow * m
    dR = scratch(xp, "dcol", (C * kw, width), gt.dtype)
    mm(xp, WrT[0], gt, out=dR[:, :L])
    dR[:, L:] = 0
    tmp = scratch(xp, "ytmp", (C * kw, L), gt.dtype)
    for i in range(1, kh):
        dR[:, i * step : i * step + L] += mm(xp, WrT[i], gt, out=tmp)
    d = dR.reshape((C, kw, padded[0], ow, m))
    dx = scratch(xp, "dx", (C,) + padded + (m,), gt.dtype, zero=True)
    sw, dw_ = geo.stride[1], geo.dilation[1]
    for j in range(kw):
        dx[:, :, j * dw_ : j * dw_ + (ow - 1) * sw + 1 : sw] += d[:, j]
    return dx


def _cf_passes(xp, geo, x, w, g, want_y, want_dx, want_dw, limit):
    """conv_passes for groups == 1 with a channels-first, batch-last column matrix: y^T = W (C_out,
    C_in*K) @ col, dW = g^T @ col^T, dcol = W^T @ g^T, with g^T = g as (C_out, prod(out)*m). The weight
    needs no reordering; x, g, y and dx are transposed to and from batch-last once per chunk. With
    row_shift, the forward and weight products run per kernel row over the smaller R instead of col:
    y^T = sum_i W_i @ R[:, i*d_h*out_w*m + (0 .. P*m)], dW_i = g^T @ (the same range of R)^T."""
    n, P, K, C, F = geo.n, prod(geo.out_sizes), geo.taps, geo.c_in, geo.c_out
    dtype = (x if x is not None else g).dtype
    taps = tap_slices(geo.kernel, geo.stride, geo.dilation, geo.out_sizes)
    rows = (want_y or want_dw) and row_shift(geo)
    dx_rows = want_dx and row_shift(geo)
    WrT = xp.ascontiguousarray(w.transpose(2, 1, 3, 0)).reshape(geo.kernel[0], -1, geo.c_out) if dx_rows else None
    W = w.reshape(F, C * K) if (want_y or want_dx) else None
    if rows:
        kh, kw = geo.kernel
        Wr = xp.ascontiguousarray(w.transpose(2, 0, 1, 3)).reshape(kh, F, C * kw) if want_y else None
        padded_h = geo.in_sizes[0] + sum(geo.pads[0])
        col_per_sample = C * kw * padded_h * geo.out_sizes[1]
    else:
        col_per_sample = P * K * C
    y = xp.empty((n, F) + geo.out_sizes, dtype=dtype) if want_y else None
    dx = xp.empty((n, C) + geo.in_sizes, dtype=dtype) if want_dx else None
    dW = None
    per_sample = dtype.itemsize * (col_per_sample * int(want_y or want_dw) + P * K * C * int(want_dx))
    if not (want_dx or want_dw):  # forward only: chunks of CF_FWD_CHUNK, counting x_t and y's buffers too
        padded_size = prod(v + b + e for v, (b, e) in zip(geo.in_sizes, geo.pads))
        per_sample = dtype.itemsize * (col_per_sample + C * padded_size + F * P * (2 if rows else 1))
        limit = min(limit, CF_FWD_CHUNK)
    elif rows and dx_rows:  # chunks of CF_ROWS_BWD_CHUNK: x_t, R, g^T, dR, its GEMM's buffer and dx_t
        padded_size = prod(v + b + e for v, (b, e) in zip(geo.in_sizes, geo.pads))
        per_sample = dtype.itemsize * (2 * C * padded_size + 2 * col_per_sample + F * P + C * kw * P)
        limit = min(limit, CF_ROWS_BWD_CHUNK)
    for lo, hi in _chunks(n, per_sample, limit):
        m = hi - lo
        if m == 0:
            continue
        col = None
        if want_y or want_dw:
            x_t = _padded_into(xp, x[lo:hi], geo.pads, "x", batch_last=True)
            col = im2row_cf(xp, x_t, geo) if rows else im2col_cf(xp, x_t, geo)
        L, step = P * m, (geo.dilation[0] * geo.out_sizes[1] * m if rows else 0)
        if want_y:
            yt = scratch(xp, "y", (F, L), dtype)
            if rows:
                mm(xp, Wr[0], col[:, :L], out=yt)
                tmp = scratch(xp, "ytmp", (F, L), dtype)
                for i in range(1, kh):
                    yt += mm(xp, Wr[i], col[:, i * step : i * step + L], out=tmp)
            else:
                mm(xp, W, col, out=yt)
            y[lo:hi] = xp.moveaxis(yt.reshape((F,) + geo.out_sizes + (m,)), -1, 0)
        if want_dx or want_dw:
            gt = _padded_into(xp, g[lo:hi], ((0, 0),) * geo.nd, "g", batch_last=True).reshape(F, L)
        if want_dw:  # col @ g^T ran 6-25% faster than g @ col^T (LeNet's C1, C3)
            if rows:  # (k_h, C_in*k_w, C_out)
                part = xp.empty((kh, C * kw, F), dtype=dtype)
                for i in range(kh):
                    mm(xp, col[:, i * step : i * step + L], gt.T, out=part[i])
            else:  # (C_in*K, C_out)
                part = mm(xp, col, gt.T)
            if dW is None:
                dW = part
            else:  # in place: no third weight-sized array (the sum is the same, in chunk order)
                dW += part
        del col
        if want_dx:
            if dx_rows:
                dx_t = row2im_cf(xp, WrT, gt, geo, m)
            else:
                dcol = mm(xp, W.T, gt, out=scratch(xp, "dcol", (C * K, L), dtype))
                dx_t = col2im_cf(xp, dcol, geo, taps, m)
                del dcol
            dx[lo:hi] = xp.moveaxis(dx_t[crop_index(geo.pads, geo.in_sizes, 1)], -1, 0)
    dw = None
    if want_dw:
        if dW is None:
            dw = xp.zeros((F, C) + geo.kernel, dtype=dtype)
        elif rows:
            dw = xp.ascontiguousarray(dW.reshape(kh, C, kw, F).transpose(3, 1, 0, 2))
        else:
            dw = xp.ascontiguousarray(dW.T).reshape((F, C) + geo.kernel)
    return y, dx, dw


def channel_major(geo, want_dx: bool) -> bool:
    """For a conv that prefers a channels-first column matrix (prefer_channels_first): whether its
    columns run sample-major, (C_in*K, m*prod(out)) with column (sample, *out) (_cm_passes), rather than
    batch-last, (*out, sample) (_cf_passes). Batch-last copies move long runs (out[-1]*m elements) but
    transpose x, y, g and dx to and from batch-last order element by element; sample-major keeps them in
    runs of whole images and copies the column matrix in runs of out[-1] elements. That pays when the
    column matrix is small next to the transposed arrays, C_in*K <= 4 (C_in + C_out) for the forward
    (2 (C_in + C_out) when the input gradient's col2im is wanted too: LeNet's C1 runs its forward
    sample-major, its backward batch-last), and always under a stride, whose batch-last runs are only
    m elements (ResNet's 7x7/2 stem: forward 35 -> 26 ms, backward 92 -> 59 ms at batch 8; VGG's first
    layer 24 -> 18 and 37 -> 31 ms)."""
    if any(s != 1 for s in geo.stride):
        return True
    return geo.c_in * geo.taps <= (2 if want_dx else 4) * (geo.c_in + geo.c_out)


def im2col_cm(xp, X, geo, slot="col"):
    """(C_in*K, m*prod(out)) column matrix of a channel-major padded chunk X (C_in, m, *padded): row
    c*K + t holds tap t of channel c, columns ordered (sample, *out). One copy of a strided view."""
    C, m = X.shape[:2]
    st = X.strides
    sp = st[2:]
    shape = (C,) + geo.kernel + (m,) + geo.out_sizes
    strides = (
        (st[0],)
        + tuple(a * d for a, d in zip(sp, geo.dilation))
        + (st[1],)
        + tuple(a * s for a, s in zip(sp, geo.stride))
    )
    win = xp.lib.stride_tricks.as_strided(X, shape=shape, strides=strides)
    col = scratch(xp, slot, shape, X.dtype)
    col[...] = win
    return col.reshape(C * geo.taps, m * prod(geo.out_sizes))


def _cm_passes(xp, geo, x, w, g, want_y, want_dx, want_dw, limit, bands=0):
    """_cf_passes with sample-major columns (see channel_major): x, g and dx move between NCHW and
    channel-major (C, m, *spatial) order, which swaps the two outer axes only; col2im is one strided add
    per tap into the channel-major padded input gradient (deterministic, as col2im). The forward writes y
    in place: W @ (sample i's columns) is y[i] as (C_out, prod(out)), one product per sample (per-sample
    calls of mm, whose blocks go to the pool, when a sample's product is that large), except on grids of
    fewer than CM_MIN_COLS positions, whose products span a chunk of a few samples (the gradients'
    chunks too), then reordered into y. `bands` (bytes, 0: never): a forward whose sample has more columns
    than that runs per sample in bands of output rows of about that many bytes of columns (at least
    CM_BAND_MIN_COLS positions each: _cm_forward_bands)."""
    n, P, K, C, F = geo.n, prod(geo.out_sizes), geo.taps, geo.c_in, geo.c_out
    dtype = (x if x is not None else g).dtype
    taps = tap_slices(geo.kernel, geo.stride, geo.dilation, geo.out_sizes)
    psizes = tuple(v + b + e for v, (b, e) in zip(geo.in_sizes, geo.pads))
    has_pad = any(b or e for b, e in geo.pads)
    inner = crop_index(geo.pads, geo.in_sizes, 2)
    lead = (slice(None), slice(None))
    overlap = any(s < d * (k - 1) + 1 for s, d, k in zip(geo.stride, geo.dilation, geo.kernel))
    W = w.reshape(F, C * K) if (want_y or want_dx) else None
    y = xp.empty((n, F) + geo.out_sizes, dtype=dtype) if want_y else None
    dx = xp.empty((n, C) + geo.in_sizes, dtype=dtype) if want_dx else None
    dW = None
    per_sample = P * K * C * dtype.itemsize * (int(want_y or want_dw) + int(want_dx))
    # products large enough for mm's blocks, on a grid too small for a sample's columns to make a good one
    # (ResNet's s5 3x3 layers at 7x7): `few` samples per chunk, towards CM_MIN_COLS positions, within
    # CM_FEW_BUDGET and the caller's limit (bytes of this call's column matrices)
    few = 0
    if 2 * F * C * K * P >= SPLIT_MIN_FLOPS and P < CM_MIN_COLS:
        few = min(-(-CM_MIN_COLS // P), min(CM_FEW_BUDGET, limit) // per_sample)
        few = few if few > 1 else 0
    if not (want_dx or want_dw):  # forward only: chunks of CM_FWD_CHUNK, counting X too (or of `few` samples)
        per_sample = (P * K * C + C * prod(psizes)) * dtype.itemsize
        limit = max(min(limit, CM_FWD_CHUNK), few * per_sample)
        if bands and P * K * C * dtype.itemsize > bands and geo.nd >= 2:  # bands of rows (_cm_forward_bands)
            for i in range(n):
                X = scratch(xp, "x", (C, 1) + psizes, dtype, zero=has_pad)
                X[inner] = x[i : i + 1].swapaxes(0, 1)
                _cm_forward_bands(xp, geo, X, W, y[i].reshape(F, P), bands)
            return y, None, None
    elif few:
        limit = few * per_sample
    elif 2 * F * C * K * P >= SPLIT_MIN_FLOPS:
        # a sample per chunk when its products are large enough for mm's blocks: g[lo] is g^T for the chunk
        # (no copy of g, the size of y) and the column matrices are a sample's. VGG's first layer, float64
        # backward peak 95.2 -> 23.2 MiB (torch 79.9), ResNet's 7x7/2 stem 73.6 -> 15.5 MiB (float32); the
        # backward as fast or faster (old/new interleaved, load 3.3: VGG's 13.4 -> 12.6 ms float32, 22.7 ->
        # 19.8 ms float64; the stem's 99.9 -> 93.8 and 336 -> 336 ms)
        limit = 1
    for lo, hi in _chunks(n, per_sample, limit):
        m = hi - lo
        if m == 0:
            continue
        col = None
        if want_y or want_dw:
            X = scratch(xp, "x", (C, m) + psizes, dtype, zero=has_pad)
            X[inner] = x[lo:hi].swapaxes(0, 1)
            col = im2col_cm(xp, X, geo)
        if want_y:  # sample i's columns give y[i] (C_out, P) in NCHW order: no y buffer, no transpose
            y3 = y[lo:hi].reshape(m, F, P)
            if few and m > 1:  # one product for the chunk, then into y's (sample, channel) order
                yt = mm(xp, W, col, out=scratch(xp, "y", (F, m * P), dtype))
                y3[...] = yt.reshape(F, m, P).swapaxes(0, 1)
            elif 2 * F * C * K * P >= SPLIT_MIN_FLOPS:  # per sample: mm's blocks over the pool
                for i in range(m):
                    mm(xp, W, col[:, i * P : (i + 1) * P], out=y3[i])
            else:
                xp.matmul(W, col.reshape(C * K, m, P).swapaxes(0, 1), out=y3)
        if (want_dx or want_dw) and m == 1:  # one sample: g[lo] is already (C_out, P)
            gt = g[lo].reshape(F, P)
        elif want_dx or want_dw:
            gt = scratch(xp, "g", (F, m) + geo.out_sizes, dtype)
            gt[...] = g[lo:hi].swapaxes(0, 1)
            gt = gt.reshape(F, m * P)
        if want_dw:
            part = mm(xp, col, gt.T).T  # (F, C*K); col @ g^T ran 6-25% faster than g @ col^T (LeNet's C1, C3)
            if dW is None:
                dW = part
            else:  # in place: no third weight-sized array (the sum is the same, in chunk order)
                dW += part
        del col
        if want_dx:
            dcol = mm(xp, W.T, gt, out=scratch(xp, "dcol", (C * K, m * P), dtype))
            d = dcol.reshape((C, K, m) + geo.out_sizes)
            dX = scratch(xp, "dx", (C, m) + psizes, dtype, zero=True)
            for t, sl in enumerate(taps):
                if overlap:
                    dX[lead + sl] += d[:, t]
                else:  # every padded position is read by at most one (window, tap)
                    dX[lead + sl] = d[:, t]
            del dcol, d
            dx[lo:hi] = dX[inner].swapaxes(0, 1)
    dw = None
    if want_dw:
        dw = (xp.zeros((F, C * K), dtype=dtype) if dW is None else dW).reshape((F, C) + geo.kernel)
    return y, dx, dw


CM_BAND_MIN_COLS = 128  # output positions per band at least (thinner products lose speed)


def _cm_forward_bands(xp, geo, X, W, y2, limit):
    """y2 (C_out, P) = W @ the column matrix of one padded sample X (C_in, 1, *padded), in bands of output
    rows (the first spatial dim) whose columns take at most `limit` bytes (and at least CM_BAND_MIN_COLS
    positions): each band's product is written straight into its columns of y2. For weight_heavy layers:
    a whole sample's column matrix was 14.5 MiB for VGG's 512-512 @28 in float32 once the tap shifts gave
    those layers up (peak 18.6 MiB against torch-cpu's 12.3). Bands cost time elsewhere (2 MiB bands,
    forward ms whole -> bands, float32 / float64: VGG's first layer 4.0-4.5 -> 5.1-5.7 / 9.3 -> 11.5-11.7,
    ResNet's stem 52-56 -> 64 in float64), so only _heavy_passes asks for them, and not in float64: 4 MiB
    bands took VGG's float32 256-512 / 512-512 @28 forwards from 10.8 / 21.4-21.9 to 11.7-11.9 / 23.8 ms, but
    the float64 512-512 @28 from 49 to 66 ms and 256-256 @56 from 58 to 70; torch-cpu's float64 convs (no
    oneDNN kernel) hold more than a whole sample's columns anyway (27.6 MiB forward for 256-512 @28)."""
    for cols, rows_in, band in _row_bands(geo, W.shape[1] * X.dtype.itemsize, limit):
        mm(xp, W, im2col_cm(xp, X[:, :, rows_in], band), out=y2[:, cols])


def _row_bands(geo, col_bytes: int, limit: int):
    """The bands of output rows (the first spatial dim) of _cm_forward_bands and _heavy_backward_bands: about
    `limit` bytes of columns each at `col_bytes` per output position, at least CM_BAND_MIN_COLS positions.
    Yields (cols, rows_in, band): the band's slice of the flattened output positions, its slice of the padded
    input's rows, and its geometry (for im2col_cm and tap_slices). From shapes only."""
    rest = prod(geo.out_sizes[1:])
    rows = max(1, limit // (col_bytes * rest), -(-CM_BAND_MIN_COLS // rest))
    s0, d0, k0 = geo.stride[0], geo.dilation[0], geo.kernel[0]
    for r0 in range(0, geo.out_sizes[0], rows):
        r1 = min(r0 + rows, geo.out_sizes[0])
        band = _SimpleGeometry(
            kernel=geo.kernel, stride=geo.stride, dilation=geo.dilation, out_sizes=(r1 - r0,) + geo.out_sizes[1:]
        )
        yield slice(r0 * rest, r1 * rest), slice(r0 * s0, (r1 - 1) * s0 + d0 * (k0 - 1) + 1), band


SHIFT_ENABLED = True  # the tap-shift path (False: im2col everywhere; for comparisons)
SHIFT_MAX_WASTE = 1.25  # padded grid positions per output position (see shifted)


def shifted(geo) -> bool:
    """Stride-1, single-group convs with enough input channels (C_in >= 32) run as shifted GEMMs over
    the padded input (see _shifted_passes): no full column matrix. The GEMMs cover the whole padded grid,
    so the windows that straddle the padding are computed and thrown away; that waste is bounded here
    (at most 25% more positions than outputs: 3x3 'same' convs from 19x19 up; on smaller grids
    im2col was as fast or faster). One spatial dim gains nothing (the gathered taps are the whole im2col)."""
    if geo.groups != 1 or geo.taps == 1 or geo.nd < 2 or any(s != 1 for s in geo.stride):
        return False
    if not SHIFT_ENABLED or geo.c_in < 32 or geo.c_out < 16:
        return False
    padded_sizes = [n + b + e for n, (b, e) in zip(geo.in_sizes, geo.pads)]
    return prod(padded_sizes) <= SHIFT_MAX_WASTE * prod(geo.out_sizes)


def _shift_layout(geo, padded_sizes):
    """(outer, inner, step): the flat offsets on the padded grid (row-major) of the kernel taps over
    all but the last spatial dim, the number of taps along the last dim, and their spacing (the
    dilation)."""
    row = [prod(padded_sizes[a + 1 :]) for a in range(geo.nd)]
    outer = [
        sum(j * d * r for j, d, r in zip(js, geo.dilation, row)) for js in product(*(range(k) for k in geo.kernel[:-1]))
    ]
    return outer, geo.kernel[-1], geo.dilation[-1]


SHIFT_BUDGET = 8 << 20  # bytes of the tap-shift path's work arrays per work item (see _shift_items)
SHIFT_DW_COLS = 1024  # ... but at least this many grid positions per weight-gradient item (see _shifted_passes)
SHIFT_WIDE_DW = 1 << 20  # weights of at least this many bytes: the weight-gradient products as G @ R_i^T


def _shift_items(n, out0, halo, row_cols, per_col, budget):
    """Work items (lo, hi, r0, r1) of the tap-shift path: samples lo..hi-1, output rows r0..r1-1 along
    the first spatial dim, whose work arrays hold (r1 - r0 + halo) * row_cols columns of per_col bytes
    per sample. Whole samples, as many as fit `budget`, when one does; else bands of rows of one sample
    (a band of B output rows reads B + halo padded rows), about equal in height. From shapes only."""
    per_sample = (out0 + halo) * row_cols * per_col
    if per_sample <= budget:
        return [(lo, hi, 0, out0) for lo, hi in _chunks(n, per_sample, budget) if hi > lo]
    rows = max(1, budget // (row_cols * per_col) - halo)
    bands = -(-out0 // rows)
    cut = [out0 * k // bands for k in range(bands + 1)]  # heights differ by one row at most
    return [(i, i + 1, cut[k], cut[k + 1]) for i in range(n) for k in range(bands)]


def _shift_input(xp, X, x, geo, lo, hi, r0):
    """X (C_in, m, nrows, *padded[1:]) <- the padded input of samples lo..hi-1, padded rows r0..r0+nrows-1,
    channel-major."""
    nrows = X.shape[2]
    pads = geo.pads
    if any(b or e for b, e in pads):
        X.fill(0)
    pb = pads[0][0]
    a, b = max(0, pb - r0), min(nrows, geo.in_sizes[0] + pb - r0)  # rows of X inside the image
    if b > a:
        dst = X[:, :, a:b][crop_index(pads[1:], geo.in_sizes[1:], 3)]
        dst[...] = x[lo:hi, :, a + r0 - pb : b + r0 - pb].swapaxes(0, 1)
    return X


def _shifted_passes(xp, geo, x, w, g, want_y, want_dw, limit):
    """conv_passes for stride 1 and one group without a full column matrix, channel-major throughout.
    The padded input of a work item, (C_in, m, *padded), is a (C_in, m*prod(padded)) matrix X whose
    column q is a position of the padded grid (row-major), and output window q reads tap t at column
    q + off_t. The taps along the last spatial dim are gathered once, R[j*C_in + c, q] = X[c, q + j*d]
    (k_last contiguous copies of X, against prod(kernel) for im2col), and the other taps are column
    shifts of R: Y[:, q] = sum_i W_i @ R[:, q + off_i], one GEMM per outer tap over a contiguous column
    range of R, added in tap order. Windows that leave the image are computed and cropped. The weight
    gradient is the adjoint, dW_i^T = R[:, off_i : off_i + L] @ G^T with G = g on the padded grid, zero
    at the cropped positions; the input gradient is a conv of g (input_grad_as_conv), which lands here
    too. Every copy to and from the channel-major layout moves runs of a whole image row.

    Memory (issue #15: peak extra memory at most torch-cpu's): a work item is a group of whole samples or
    a band of output rows of one sample (_shift_items), so that R, Y and its tmp (forward) or R and G
    (weight gradient) stay within SHIFT_BUDGET bytes (and the chunk limit) whatever the image size: VGG's
    64-64 @224 held a whole sample, 62 MiB in float32 against torch's 49 (7.4 MiB now). The weight is
    never copied whole: per outer tap its (C_out, k_last*C_in) block is copied into a scratch array before
    each item's GEMMs (0.8 ms for all taps of a 512-512 weight, against ~10 ms of GEMM per item), and each
    item's weight gradient (per outer tap, G @ R_i^T for weights of SHIFT_WIDE_DW bytes or more, else
    R_i @ G^T) is added straight into the returned array's layout: a 512-512 3x3 weight is 9 MiB in
    float32, and the full transposed copy, the per-chunk partial sum and the final transposed copy were
    three of them. Those adds cost a pass over the weight per item, so weight-gradient items are sized by
    the chunk limit (io_limit: about the layer's x and y) and take at least SHIFT_DW_COLS grid positions
    (VGG's 512-512 @28, float32: its weight gradient took 116 ms with 4 MiB items and R_i @ G^T added
    transposed, 26 ms with G @ R_i^T and these items, 29-30 ms before, in A/B rounds). Bands cost speed
    where they cut the GEMMs short: 512-512 @28's forward ran ~20% slower in its two bands per sample than
    in one item per sample (the price of its forward peak staying below torch's 12.1 MiB); VGG's 64-64
    @224 ran ~10% faster in bands (cache reuse)."""
    n, C, F = geo.n, geo.c_in, geo.c_out
    dtype = (x if x is not None else g).dtype
    item = dtype.itemsize
    psizes = tuple(v + b + e for v, (b, e) in zip(geo.in_sizes, geo.pads))
    outer, kl, dl = _shift_layout(geo, psizes)
    KO = len(outer)
    halo = (geo.kernel[0] - 1) * geo.dilation[0]
    row_cols = prod(psizes[1:])
    budget = min(limit, SHIFT_BUDGET)
    w4 = w.reshape(F, C, KO, kl)
    y = xp.empty((n, F) + geo.out_sizes, dtype=dtype) if want_y else None
    dw = xp.empty((F, C) + geo.kernel, dtype=dtype) if want_dw else None
    out_rest = tuple(slice(0, o) for o in geo.out_sizes[1:])

    def shifts(lo, hi, r0, r1):
        """R (kl*C, m*S) of an item, S its padded positions per sample; -> (R, S, L columns computed)."""
        m, nrows = hi - lo, r1 - r0 + halo
        S = nrows * row_cols
        # R[0] is X itself (no separate copy of X); the last (kl-1)*dl columns of R[1:] are never read
        R = scratch(xp, "col", (kl, C, m * S), dtype)
        _shift_input(xp, R[0].reshape((C, m, nrows) + psizes[1:]), x, geo, lo, hi, r0)
        LR = m * S - (kl - 1) * dl  # columns of R read
        for j in range(1, kl):
            R[j, :, :LR] = R[0, :, j * dl : j * dl + LR]
        return R.reshape(kl * C, m * S), S, LR - outer[-1]

    if want_y:
        Wi = scratch(xp, "w", (F, kl, C), dtype)
        for lo, hi, r0, r1 in _shift_items(n, geo.out_sizes[0], halo, row_cols, (kl * C + 2 * F) * item, budget):
            R, S, L = shifts(lo, hi, r0, r1)
            Y = scratch(xp, "y", (F, (hi - lo) * S), dtype)
            tmp = scratch(xp, "dcol", (F, L), dtype) if KO > 1 else None
            for i in range(KO):  # w[f, c, i, j] -> Wi[f, j, c]: W_i's column j*C + c
                Wi[...] = w4[:, :, i, :].transpose(0, 2, 1)
                Wm = Wi.reshape(F, kl * C)
                if i == 0:
                    mm(xp, Wm, R[:, outer[0] : outer[0] + L], out=Y[:, :L])
                else:
                    mm(xp, Wm, R[:, outer[i] : outer[i] + L], out=tmp)
                    Y[:, :L] += tmp
            Yv = Y.reshape((F, hi - lo, r1 - r0 + halo) + psizes[1:])
            y[lo:hi, :, r0:r1] = Yv[(slice(None), slice(None), slice(0, r1 - r0)) + out_rest].swapaxes(0, 1)
    if want_dw:
        dw4 = dw.reshape(F, C, KO, kl)
        first = True
        per_col = (kl * C + F) * item
        dw_budget = max(limit, SHIFT_DW_COLS * per_col)
        # the orientation of the per-tap products: the transposed add of R_i @ G^T costs ~2 ms per 512-512
        # weight and item (VGG's 512-512 @28: 40 ms against 30 for G @ R_i^T), while on small weights
        # R_i @ G^T ran faster (VGG's 128-128 @112: 29 against 32 ms, 64-64 @224: 36 against 39)
        wide = w.size * item >= SHIFT_WIDE_DW
        for lo, hi, r0, r1 in _shift_items(n, geo.out_sizes[0], halo, row_cols, per_col, dw_budget):
            R, S, L = shifts(lo, hi, r0, r1)
            G = scratch(xp, "g", (F, hi - lo, r1 - r0 + halo) + psizes[1:], dtype, zero=True)
            G[(slice(None), slice(None), slice(0, r1 - r0)) + out_rest] = g[lo:hi, :, r0:r1].swapaxes(0, 1)
            Gm = G.reshape(F, -1)[:, :L]
            for i in range(KO):
                Ri = R[:, outer[i] : outer[i] + L]
                if wide:  # G @ R_i^T (F, kl*C): a cheap reorder into dw's (F, C, kl)
                    part = mm(xp, Gm, Ri.T, out=scratch(xp, "w", (F, kl * C), dtype)).reshape(F, kl, C)
                    part = part.transpose(0, 2, 1)
                else:  # R_i @ G^T (kl*C, F), a full transpose away
                    part = mm(xp, Ri, Gm.T, out=scratch(xp, "w", (kl * C, F), dtype)).reshape(kl, C, F)
                    part = part.transpose(2, 1, 0)
                dst = dw4[:, :, i, :]  # (F, C, kl)
                if first:
                    dst[...] = part
                else:  # the items' sums in item order (shapes only: deterministic)
                    dst += part
            first = False
        if first:  # an empty batch
            dw.fill(0)
    return y, None, dw


def pointwise(geo) -> bool:
    """1x1 kernels (any stride), one group, no padding: GEMMs straight on the NCHW arrays."""
    return geo.groups == 1 and geo.taps == 1 and not any(b or e for b, e in geo.pads)


PW_SAMPLE_MIN_P = 128  # 1x1 stride-1 convs with at least this many positions run per sample (see below)
PW_PARTS = 4 << 20  # bytes of per-group weight-gradient partial sums (see _pointwise_sample_passes)
PW_TMP_BLOCKS = 4  # output-channel blocks of each per-sample weight-gradient product (see there) ...
PW_TMP_MIN = 1 << 20  # ... for weights of at least this many bytes


def sample_pointwise(geo) -> bool:
    """Whether a pointwise conv runs as per-sample GEMMs on the NCHW arrays (_pointwise_sample_passes):
    stride 1 (every input position is read) and prod(out) >= PW_SAMPLE_MIN_P, where a (C_out, C_in) @
    (C_in, P) product per sample is as efficient as one large GEMM; on smaller grids (ResNet's 7x7) the
    per-sample products are too thin and the channel-major copies of _pointwise_passes pay off."""
    return all(s == 1 for s in geo.stride) and prod(geo.out_sizes) >= PW_SAMPLE_MIN_P


def _bmm(xp, a, b, out):
    """matmul(a, b, out=out) for stacks of matrices; an inner dimension of 1 (a 1x1 conv from or to a
    single channel) as the broadcast product, which is what the GEMM computes there (one product per
    element), without OpenBLAS's slow K=1 path (5x slower on AlphaGo's 192-1 layer)."""
    if a.shape[-1] == 1:
        return xp.multiply(a, b, out=out)
    return xp.matmul(a, b, out=out)


def _pointwise_sample_passes(xp, geo, x, w, g, want_y, want_dx, want_dw):
    """1x1 stride-1 conv as per-sample GEMMs straight on the NCHW arrays, no copies: y[i] = W @ x[i],
    dx[i] = W^T @ g[i] and dW = sum_i g[i] @ x[i]^T, with x[i] (C_in, P) and g[i] (C_out, P). The
    samples are cut into fixed groups (from the batch size only) that the calling thread and the pool's
    helper take in turn; dW adds its per-sample products in sample order within a group, then the
    groups' sums in group order, whichever thread ran them."""
    n, C, F, P = geo.n, geo.c_in, geo.c_out, prod(geo.out_sizes)
    dtype = (x if x is not None else g).dtype
    W = w.reshape(F, C)
    x3 = x.reshape(n, C, P) if (want_y or want_dw) else None
    g3 = g.reshape(n, F, P) if (want_dx or want_dw) else None
    y = xp.empty((n, F) + geo.out_sizes, dtype=dtype) if want_y else None
    dx = xp.empty((n, C) + geo.in_sizes, dtype=dtype) if want_dx else None
    y3 = None if y is None else y.reshape(n, F, P)
    dx3 = None if dx is None else dx.reshape(n, C, P)

    def group(lohi):
        lo, hi = lohi
        if want_y:
            _bmm(xp, W, x3[lo:hi], y3[lo:hi])
        if want_dx:
            _bmm(xp, W.T, g3[lo:hi], dx3[lo:hi])
        if not want_dw:
            return None
        part = _bmm(xp, g3[lo], x3[lo].T, xp.empty((F, C), dtype=dtype))
        # weights of PW_TMP_MIN bytes or more: the later samples' products in PW_TMP_BLOCKS blocks of output
        # channels, a quarter of a weight as the temporary instead of a whole one (ResNet's s4 1x1 1024-256
        # backward in float64: 10.0 -> 7.9 MiB of peak with PW_PARTS 8 -> 4 MiB, torch-cpu's 7.7); smaller
        # weights in one product per sample (blocks cost 10-18% of the backward on ResNet's s2/s3 1x1 layers)
        step = F if F * C * dtype.itemsize < PW_TMP_MIN else -(-F // PW_TMP_BLOCKS)
        tmp = xp.empty((min(step, F), C), dtype=dtype) if hi - lo > 1 else None
        for i in range(lo + 1, hi):
            for f0 in range(0, F, step):
                f1 = min(f0 + step, F)
                part[f0:f1] += _bmm(xp, g3[i, f0:f1], x3[i].T, tmp[: f1 - f0])
        return part

    # up to 8 groups, fewer when their weight-sized partial sums (all kept until summed in group order)
    # would pass PW_PARTS bytes (ResNet's 1x1 1024-512 in float64: 8 x 4 MiB); from shapes only
    parts = max(2, PW_PARTS // (F * C * dtype.itemsize)) if want_dw else 8
    step = -(-n // min(n, 8, parts))
    groups = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
    work = 2 * n * P * C * F * (int(want_y) + int(want_dx) + int(want_dw))
    pool = _pool() if work >= SPLIT_MIN_FLOPS else None
    dW = None
    for part in _map(pool, group, groups):
        if part is not None:
            if dW is None:
                dW = part
            else:  # in place: no third weight-sized array (the sum is the same, in chunk order)
                dW += part
    dw = None
    if want_dw:
        dw = (xp.zeros((F, C), dtype=dtype) if dW is None else dW).reshape((F, C) + geo.kernel)
    return y, dx, dw


def _pointwise_passes(xp, geo, x, w, g, want_y, want_dx, want_dw, limit):
    """1x1 conv as single GEMMs over a channel-major copy of each batch chunk: x_t (C_in, m*P) holds x
    at the strided positions, g_t (C_out, m*P) holds g; y_t = W @ x_t, dx_t = W^T @ g_t, dW = g_t @ x_t^T.
    The copies to and from channel-major order move inner runs of P elements (cheap), and one large
    GEMM per product keeps a threaded BLAS efficient where per-sample GEMMs would not be."""
    strided = any(s != 1 for s in geo.stride)
    if want_y and not (want_dx or want_dw) and not strided and getattr(xp, "__name__", "") == "numpy":
        # a stride-1 forward on a small grid per sample too, straight on the NCHW arrays: no copies (peak
        # ~0 against 3.9 MiB for ResNet's s5 1x1 2048-512 and 512-2048 at 7x7, batch 16, float64; torch-cpu
        # 0.0-0.3), as fast within +-10% in both dtypes (A/B rounds at load 1)
        return _pointwise_sample_passes(xp, geo, x, w, None, True, False, False)
    n, C, F, P = geo.n, geo.c_in, geo.c_out, prod(geo.out_sizes)
    dtype = (x if x is not None else g).dtype
    sel = (slice(None), slice(None)) + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(geo.out_sizes, geo.stride))
    W = w.reshape(F, C) if w is not None else None
    y = xp.empty((n, F) + geo.out_sizes, dtype=dtype) if want_y else None
    dx = None
    if want_dx:  # zeros where no output reads the input: strides, or conv_transpose's output_padding
        covered = not strided and tuple(geo.out_sizes) == tuple(geo.in_sizes)
        dx = (xp.empty if covered else xp.zeros)((n, C) + geo.in_sizes, dtype=dtype)
    # the weight gradient goes straight into the returned array: the first chunk's product written there,
    # the later ones' added in PW_TMP_BLOCKS blocks of output channels (a quarter-weight temporary, where
    # a per-chunk partial sum and a running sum were two weights)
    dW = xp.empty((F, C), dtype=dtype) if want_dw else None
    step = -(-F // PW_TMP_BLOCKS)
    first = True
    per_sample = (C + F) * P * dtype.itemsize
    # chunks of COL_BUDGET bytes of x_t and y_t (or g_t): io_limit (up to 64 MiB) let ResNet's 1x1/2
    # downsamples hold 60 MiB in float64 in their forward, torch-cpu's peak 24.5 (s3, 256-512), and its
    # s5 1x1 2048-512 13.8 MiB in its float32 backward (9.2; 7.8 now)
    for lo, hi in _chunks(n, per_sample, min(limit, COL_BUDGET)):
        m = hi - lo
        if m == 0:
            continue
        xt = gt = None
        if want_y or want_dw:
            xt = scratch(xp, "x", (C, m) + geo.out_sizes, dtype)
            xt[...] = x[lo:hi][sel].swapaxes(0, 1)
            xt = xt.reshape(C, m * P)
        if want_dx or want_dw:
            gt = scratch(xp, "g", (F, m, P), dtype)
            gt[...] = g[lo:hi].reshape(m, F, P).swapaxes(0, 1)
            gt = gt.reshape(F, m * P)
        if want_y:
            yt = mm(xp, W, xt, out=scratch(xp, "y", (F, m * P), dtype))
            y[lo:hi] = yt.reshape((F, m) + geo.out_sizes).swapaxes(0, 1)
        if want_dw:
            if first:
                mm(xp, gt, xt.T, out=dW)
            else:  # the chunks' sums in chunk order (deterministic)
                tmp = scratch(xp, "w", (min(step, F), C), dtype)
                for f0 in range(0, F, step):
                    f1 = min(f0 + step, F)
                    dW[f0:f1] += mm(xp, gt[f0:f1], xt.T, out=tmp[: f1 - f0])
        first = False
        if want_dx:  # into x_t's slot, dead by now (a third chunk-sized array was ResNet's s5 1x1 2048-512's
            # float64 backward peak 8.9 MiB against torch-cpu's 4.6)
            dt = mm(xp, W.T, gt, out=scratch(xp, "x", (C, m * P), dtype))
            dx[lo:hi][sel] = dt.reshape((C, m) + geo.out_sizes).swapaxes(0, 1)
    dw = None
    if want_dw:
        if first:  # an empty batch
            dW.fill(0)
        dw = dW.reshape((F, C) + geo.kernel)
    return y, dx, dw


def conv_passes(xp, geo, *, x=None, w=None, g=None, want_y=False, want_dx=False, want_dw=False, limit=DEFAULT_LIMIT):
    """The three conv products over one batch, sharing the column matrix of each chunk.

    x (n, C_in, *in), w (C_out, Cg, *k), g (n, C_out, *out) -> (y, dx, dw) with None for what is not
    wanted; y = conv(x, w) without bias, dx = the input adjoint of g, dw = the weight gradient."""
    work = 2 * geo.n * prod(geo.out_sizes) * geo.c_out * (geo.c_in // geo.groups) * prod(geo.kernel)
    try:
        if work < TOGGLE_MIN_FLOPS:  # products small enough for one BLAS thread anyway: skip the switch
            return _conv_passes(xp, geo, x, w, g, want_y, want_dx, want_dw, limit)
        with _blas_split(xp):
            return _conv_passes(xp, geo, x, w, g, want_y, want_dx, want_dw, limit)
    finally:
        trim_scratch()


# --- GEMMs split into fixed blocks over our own threads, the BLAS single-threaded ---------------------
#
# A threaded OpenBLAS splits each product over its threads and spins until all are done: on a machine
# whose other cores are busy one descheduled thread stalls the product, and thin products with a long
# inner dimension (the weight gradients: (C_out, L) @ (L, C_in) with L = batch * positions) took 10-30x
# longer than on one thread (measured: ResNet's 1x1 64-64 weight gradient, L = 100k, 274 ms median and
# 4.5 s worst with 2 threads at load 20, 46 ms on one thread). Inside a conv call the NumPy BLAS runs on
# one thread, and the large products are cut into fixed blocks (along the inner dimension when it
# dominates: partial products summed in block order; else eighths of the longer output dimension) that the
# calling thread and a pool of helpers (one fewer than the BLAS had threads) take in turn (_map): a busy
# core takes fewer blocks instead of stalling the others, and a helper that has not woken up by the time
# the caller has taken the last block takes none (the caller waits only for blocks already started).
# Block boundaries depend on the shapes only, so results do not depend on the thread count or the
# scheduling. Without threadpoolctl the BLAS is left as it is and blocks run inline. Products below
# SPLIT_MIN_FLOPS run on the calling thread alone: waking a helper costs more than it saves there, and in
# the benchmark's interleaved rounds (another library's threads still spinning) LeNet's layers ran 10-20%
# slower split than whole (C3's 31 MFLOP products: f+b / torch 1.86 split at 4 MFLOP, 1.55 at 64 MFLOP).

SPLIT_MIN_FLOPS = 1 << 26  # smaller products run as one call, on the calling thread
# convs below this many FLOPs leave the BLAS threads as they are (switching costs ~0.1 ms); above it, even
# products too small to split run on one BLAS thread (a threaded OpenBLAS stalls 20-30 ms per call on them
# when the other core is busy)
TOGGLE_MIN_FLOPS = 1 << 19
K_BLOCK = 8192  # inner-dimension block (the partial products' operands stay in cache)
N_BLOCK = 4096  # (kept for callers; output blocks are now an eighth of the longer output dimension)
MM_BLOCKS = 8  # blocks of the longer output dimension

_split_lock = threading.Lock()
_split_state = {"depth": 0, "limiter": None, "pool": None, "workers": 1, "ctl": None}
_split_local = threading.local()


def _reset_after_fork():
    """A forked child has none of the parent's pool threads (nor its locks' holders): start afresh."""
    global _split_lock, _split_local
    _split_lock = threading.Lock()
    _split_local = threading.local()
    _split_state.update(depth=0, limiter=None, pool=None, workers=1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _controller():
    if _split_state["ctl"] is None:
        try:
            from threadpoolctl import ThreadpoolController

            _split_state["ctl"] = ThreadpoolController().select(user_api="blas")
        except Exception:  # noqa: BLE001  (not installed, or no BLAS found: no split)
            _split_state["ctl"] = False
    return _split_state["ctl"]


class _blas_split:
    """While any conv call runs (any thread): the BLAS on one thread and a pool of the BLAS's previous
    thread count for mm()'s blocks. Re-entrant (input_grad_as_conv nests a conv call)."""

    def __init__(self, xp):
        self.active = getattr(xp, "__name__", "") == "numpy"

    def __enter__(self):
        if not self.active:
            return self
        _split_local.depth = getattr(_split_local, "depth", 0) + 1
        if _split_local.depth > 1:
            return self
        with _split_lock:
            st = _split_state
            if st["depth"] == 0:
                ctl = _controller()
                workers = 1
                if ctl:
                    workers = max([lc.num_threads for lc in ctl.lib_controllers] or [1])
                    st["limiter"] = ctl.limit(limits=1) if workers > 1 else None
                if workers > 1 and (st["pool"] is None or st["workers"] != workers):
                    from concurrent.futures import ThreadPoolExecutor

                    if st["pool"] is not None:
                        st["pool"].shutdown(wait=False)
                    st["pool"] = ThreadPoolExecutor(workers - 1, thread_name_prefix="convspec-gemm")
                st["workers"] = workers
            st["depth"] += 1
        return self

    def __exit__(self, *exc):
        if not self.active:
            return False
        _split_local.depth -= 1
        if _split_local.depth > 0:
            return False
        with _split_lock:
            st = _split_state
            st["depth"] -= 1
            if st["depth"] == 0 and st["limiter"] is not None:
                st["limiter"].restore_original_limits()
                st["limiter"] = None
        return False


blas_split = _blas_split  # for the other kernels (dense layers)


def _block(dim: int, parts: int, align: int) -> int:
    """A block length that cuts `dim` into about `parts` pieces, a multiple of `align` (shape-only)."""
    return -(-max(-(-dim // parts), 1) // align) * align


def _pool():
    """The helper pool while a conv call has split the BLAS (None outside one, or with one thread)."""
    return _split_state["pool"] if _split_state["depth"] > 0 and _split_state["workers"] > 1 else None


def mm(xp, a, b, out=None):
    """a (M, K) @ b (K, N) -> (M, N) (into `out` when given): one BLAS call for small products or other
    array modules; otherwise fixed blocks over the pool (see above): the inner dimension in blocks of
    K_BLOCK (a quarter of it when shorter) when it dominates, else the longer output dimension in
    MM_BLOCKS."""
    M, K = a.shape
    N = b.shape[1]
    pool = _pool()
    if getattr(xp, "__name__", "") != "numpy" or 2 * M * N * K < SPLIT_MIN_FLOPS:
        return xp.matmul(a, b, out=out)
    # thin product, long inner dimension: split K (also from K >= 1024 when both output dims are below 512,
    # which the output split below leaves whole: the tap-shift path's weight-gradient items of 1-4k grid
    # positions on 128 channels ran on the calling thread alone, twice as long as in blocks)
    if K >= 4 * max(M, N) and (K >= 4096 or (K >= 1024 and max(M, N) < 512)):
        step = K_BLOCK if K >= 4 * K_BLOCK else _block(K, 4, 256)
        bounds = [(lo, min(lo + step, K)) for lo in range(0, K, step)]
        parts = _map(pool, lambda lh: a[:, lh[0] : lh[1]] @ b[lh[0] : lh[1]], bounds)
        total = parts[0]
        for p in parts[1:]:
            total += p
        if out is None:
            return total
        out[...] = total
        return out
    if out is None:
        out = xp.empty((M, N), dtype=xp.result_type(a, b))
    if max(M, N) < 512:
        return xp.matmul(a, b, out=out)
    if N >= M:
        step = _block(N, MM_BLOCKS, 64)
        bounds = [(lo, min(lo + step, N)) for lo in range(0, N, step)]
        _map(pool, lambda lh: xp.matmul(a, b[:, lh[0] : lh[1]], out=out[:, lh[0] : lh[1]]), bounds)
    else:
        step = _block(M, MM_BLOCKS, 64)
        bounds = [(lo, min(lo + step, M)) for lo in range(0, M, step)]
        _map(pool, lambda lh: xp.matmul(a[lh[0] : lh[1]], b, out=out[lh[0] : lh[1]]), bounds)
    return out


class _Job:
    """One mm()'s blocks, taken in turn by the calling thread and the pool's helpers. The caller works
    through them too and then waits only for the blocks a helper has already started: a helper that is
    slow to wake (its core busy) takes none, and never holds the call up."""

    def __init__(self, fn, items):
        self.fn, self.items = fn, items
        self.results = [None] * len(items)
        self.ticket = itertools.count()  # next() is atomic under the GIL
        self.left = len(items)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.error = None

    def work(self):
        n = len(self.items)
        while True:
            i = next(self.ticket)
            if i >= n:
                return
            try:
                self.results[i] = self.fn(self.items[i])
            except BaseException as exc:  # noqa: BLE001  (re-raised in the calling thread)
                self.error = self.error or exc
            with self.lock:
                self.left -= 1
                if self.left == 0:
                    self.done.set()


def _map(pool, fn, items):
    """[fn(i) for i in items], the items shared between the calling thread and the pool's helpers."""
    if pool is None or len(items) < 2:
        return [fn(i) for i in items]
    job = _Job(fn, items)
    for _ in range(min(_split_state["workers"] - 1, len(items) - 1)):
        pool.submit(job.work)
    job.work()
    job.done.wait()
    if job.error is not None:
        raise job.error
    return job.results


def whole_window(geo) -> bool:
    """One window that covers the whole unpadded input (kernel == input size, dilation 1, one group):
    the conv is a dense layer on the flattened samples (LeNet's C5: 16x5x5 -> 120)."""
    return (
        geo.groups == 1
        and tuple(geo.kernel) == tuple(geo.in_sizes)
        and all(d == 1 for d in geo.dilation)
        and not any(b or e for b, e in geo.pads)
    )


def _whole_window_passes(xp, geo, x, w, g, want_y, want_dx, want_dw):
    """whole_window convs as three plain products on the flattened arrays, no copies: y = x (n, C_in*K)
    @ W^T, dx = g (n, C_out) @ W, dW = g^T @ x, with W = w as (C_out, C_in*K)."""
    n, F = geo.n, geo.c_out
    W = w.reshape(F, -1)
    ones = (1,) * geo.nd
    g2 = g.reshape(n, F) if (want_dx or want_dw) else None
    x2 = x.reshape(n, -1) if (want_y or want_dw) else None
    y = mm(xp, x2, W.T).reshape((n, F) + ones) if want_y else None
    dx = mm(xp, g2, W).reshape((n, geo.c_in) + geo.in_sizes) if want_dx else None
    dw = mm(xp, g2.T, x2).reshape(w.shape) if want_dw else None
    return y, dx, dw


CONV1D_MIN_C = 32  # input channels from which 1-d convs take _conv1d_passes (the GEMMs' inner dimension)
CONV1D_MIN_L = 32  # ... and input length (the forward's per-sample GEMMs have L columns)
CONV1D_LANES = 2  # fixed lanes of the weight gradient's batch chunks (see _conv1d_backward)
CONV1D_CHUNK = 1 << 20  # bytes of one lane's channel-major buffers per batch chunk, at most


def conv1d(geo) -> bool:
    """Whether a 1-d conv runs as per-tap products without a column matrix (_conv1d_passes): one group,
    stride 1, more than one tap, C_in >= CONV1D_MIN_C and L >= CONV1D_MIN_L. im2col's column matrix is K
    times the input (the sentence CNN's k5 300-100 layer at batch 50: 19 MiB of float32 for 3.8 MiB of x,
    built in chunks of about x + y), which put its peak memory above torch's on every text1d layer
    (float32, MiB fwd/bwd, k3: 7.2/14.9 against torch's 4.3/6.3; this path 1.4/3.4). It is faster too
    (old/new in interleaved rounds, float32 at load 1.6-2: k3 forward 12.3 -> 5.1 ms, backward 15.3 ->
    11.6 ms; 64 channels x 1000: 2.5 -> 1.2 and 4.9 -> 2.4 ms), except on short inputs, where the
    forward's per-sample products are thin (64 channels x 8 at batch 64: 0.16 -> 0.26 ms)."""
    return (
        geo.nd == 1
        and geo.groups == 1
        and geo.taps > 1
        and geo.stride[0] == 1
        and geo.c_in >= CONV1D_MIN_C
        and geo.in_sizes[0] >= CONV1D_MIN_L
    )


def _conv1d_ranges(geo):
    """Per tap t: (o0, o1, i0, i1), the outputs o0 <= o < o1 whose window reads the unpadded input at
    tap t, and the input positions i0 <= i < i1 they read (i = o + t*d - pad_begin): the padding is
    never materialized."""
    (L,), (out,), (d,), ((b, _),) = geo.in_sizes, geo.out_sizes, geo.dilation, geo.pads
    ranges = []
    for t in range(geo.taps):
        o0, o1 = max(0, b - t * d), min(out, L + b - t * d)
        o1 = max(o0, o1)
        ranges.append((o0, o1, o0 + t * d - b, o1 + t * d - b))
    return ranges


def _batch_groups(n: int, parts: int):
    """Up to `parts` consecutive sample ranges of about equal size (from n alone); none for an empty batch."""
    step = max(1, -(-n // max(min(n, parts), 1)))
    return [(lo, min(lo + step, n)) for lo in range(0, n, step)]


def _conv1d_forward(xp, geo, x, w, ranges):
    """y of a conv1d layer straight from the NCL input, no copy of it: per sample group the stacked taps
    Z (m, K*C_out, L) = W_stack (K*C_out, C_in) @ x[group] (one batched product whose inner dimension is
    C_in), then y[:, :, o0:o1] += Z[:, tap t, :, i0:i1] per tap (K shifted adds of y's size). Z's
    columns that no window reads at a tap are its only waste (at most (K-1)*d of L per tap, none at the
    padding, none between samples). The samples are cut into up
    to 8 fixed groups (from the batch size only) that the calling thread and the pool's helper take in
    turn; each output element is written by one group in tap order, whichever thread runs it."""
    n, C, F, K = geo.n, geo.c_in, geo.c_out, geo.taps
    (L,), (out,) = geo.in_sizes, geo.out_sizes
    Wst = xp.ascontiguousarray(w.transpose(2, 0, 1)).reshape(K * F, C)
    y = xp.empty((n, F, out), dtype=x.dtype)
    full = [t for t, (o0, o1, _, _) in enumerate(ranges) if o0 == 0 and o1 == out]
    first = full[0] if full else None

    def group(lohi):
        lo, hi = lohi
        Z = xp.matmul(Wst, x[lo:hi]).reshape(hi - lo, K, F, L)
        yy = y[lo:hi]
        if first is None:
            yy[...] = 0
        else:
            yy[...] = Z[:, first, :, ranges[first][2] : ranges[first][3]]
        for t, (o0, o1, i0, i1) in enumerate(ranges):
            if t != first and o1 > o0:
                yy[:, :, o0:o1] += Z[:, t, :, i0:i1]

    work = 2 * n * out * F * C * K
    _map(_pool() if work >= SPLIT_MIN_FLOPS else None, group, _batch_groups(n, 8))
    return y


def _conv1d_backward(xp, geo, x, w, g, want_dx, want_dw, limit):
    """dx and dW of a conv1d layer over channel-major copies of batch chunks, G (C_out, m*S) holding g
    and X (C_in, m*S) holding x, both on the padded length S = L + pads per sample (zeros elsewhere),
    so that tap t's windows are the column shift t*d: dW_t^T = X[:, t*d + (0 .. Lc)] @ G[:, 0 .. Lc]^T
    (inner dimension m*S) and dX[:, t*d + (0 .. Lc)] += W_t^T @ G[:, 0 .. Lc], Lc = m*S - (K-1)*d
    (the windows that straddle two samples read only G's zeros). The chunks (about CONV1D_CHUNK bytes
    of these buffers, from the shapes) are dealt to CONV1D_LANES fixed lanes, each summing its dW in
    chunk order, then the lanes in lane order, whichever thread runs them: deterministic."""
    n, C, F, K = geo.n, geo.c_in, geo.c_out, geo.taps
    (L,), (out,), (d,), ((pb, pe),) = geo.in_sizes, geo.out_sizes, geo.dilation, geo.pads
    S = L + pb + pe
    dtype = g.dtype
    Wt = xp.ascontiguousarray(w.transpose(2, 1, 0)) if want_dx else None  # (K, C_in, C_out)
    dx = xp.empty((n, C, L), dtype=dtype) if want_dx else None
    per_sample = S * dtype.itemsize * (F + (C if want_dw else 0) + (2 * C if want_dx else 0))
    chunks = _chunks(n, per_sample, min(limit, CONV1D_CHUNK))
    lanes = [chunks[j::CONV1D_LANES] for j in range(min(CONV1D_LANES, len(chunks)))]
    span = (K - 1) * d

    def lane(ranges_):
        bufs = {}

        def buf(name, shape):
            size = prod(shape)
            if name not in bufs or bufs[name].size < size:
                bufs[name] = xp.empty(size, dtype=dtype)
            return bufs[name][:size].reshape(shape)

        dW = None
        for lo, hi in ranges_:
            m = hi - lo
            if m == 0:
                continue
            Lc = m * S - span
            G = buf("g", (F, m, S))
            G[:, :, out:] = 0
            G[:, :, :out] = g[lo:hi].swapaxes(0, 1)
            G = G.reshape(F, m * S)
            if want_dw:
                X = buf("x", (C, m, S))
                X[:, :, :pb] = 0
                X[:, :, pb + L :] = 0
                X[:, :, pb : pb + L] = x[lo:hi].swapaxes(0, 1)
                X = X.reshape(C, m * S)
                part = xp.empty((K, C, F), dtype=dtype)
                for t in range(K):
                    mm(xp, X[:, t * d : t * d + Lc], G[:, :Lc].T, out=part[t])
                if dW is None:
                    dW = part
                else:  # in place: the sum is the same, in chunk order
                    dW += part
            if want_dx:
                dX = buf("dx", (C, m * S))
                mm(xp, Wt[0], G[:, :Lc], out=dX[:, :Lc])
                dX[:, Lc:] = 0
                tmp = buf("tmp", (C, Lc))
                for t in range(1, K):
                    dX[:, t * d : t * d + Lc] += mm(xp, Wt[t], G[:, :Lc], out=tmp)
                dx[lo:hi] = dX.reshape(C, m, S)[:, :, pb : pb + L].swapaxes(0, 1)
        return dW

    work = 2 * n * out * F * C * K * (int(want_dx) + int(want_dw))
    parts = _map(_pool() if work >= SPLIT_MIN_FLOPS else None, lane, lanes)
    dw = None
    if want_dw:
        dW = None
        for part in parts:
            if part is None:
                continue
            if dW is None:
                dW = part
            else:
                dW += part
        if dW is None:
            dW = xp.zeros((K, C, F), dtype=dtype)
        dw = xp.ascontiguousarray(dW.transpose(2, 1, 0))
    return dx, dw


def _conv1d_passes(xp, geo, x, w, g, want_y, want_dx, want_dw, limit):
    """conv_passes for conv1d layers: the forward from the NCL input itself (_conv1d_forward), the
    gradients over channel-major chunk copies (_conv1d_backward); no column matrix anywhere."""
    ranges = _conv1d_ranges(geo)
    y = _conv1d_forward(xp, geo, x, w, ranges) if want_y else None
    dx = dw = None
    if want_dx or want_dw:
        dx, dw = _conv1d_backward(xp, geo, x, w, g, want_dx, want_dw, limit)
    return y, dx, dw


def weight_heavy(geo, itemsize: int) -> bool:
    """Whether a single-group conv that takes the im2col loop (no tap shifts, not channels-first) has a
    weight of HEAVY_WEIGHT bytes or more: ResNet's 3x3 512-512 layers (9 MiB in float32) and VGG's
    512-512 @14. The im2col loop copies such a weight into its (K*C_in, C_out) matrix, the input
    gradient's conv of g copies the flipped weight twice, and the weight gradient keeps a per-chunk
    partial sum and a running sum before the final transposed copy: two or three weight-sized arrays
    where torch-cpu's peak holds about one (VGG's 512-512 @14 in float32: 14.5 / 31.4 MiB forward /
    backward against torch's 9.9 / 12.1). _heavy_passes holds none.

    It also takes such layers from the tap-shift path: their GEMMs run over all K*C_in taps at once, where
    the shifts' run over C_in per tap. Measured on NumPy (2 threads, f+b ms, two rounds each, shift ->
    heavy): VGG 256-512 @28 float32 56.9 / 55.7 -> 38.6 / 38.1, 512-512 @28 105.1 / 105.9 -> 71.7 / 73.4;
    float64 141.7 / 139.3 -> 95.5 / 96.4 and 264.5 / 262.4 -> 161.4 / 161.2. Lighter weights gained nothing
    (VGG 256-256 @56, 128-256 @56 and AlphaGo's 192-192 float32 within 3% either way)."""
    if geo.groups != 1 or geo.taps == 1 or geo.nd < 2 or prefer_channels_first(geo):
        return False
    return geo.c_out * geo.c_in * geo.taps * itemsize >= HEAVY_WEIGHT


def _heavy_passes(xp, geo, x, w, g, want_y, want_dx, want_dw, limit):
    """conv_passes for weight_heavy layers, with no weight-sized temporary. y and dx run on the
    channel-major column matrices of _cm_passes, whose products take w as it is, (C_out, C_in*K): y^T =
    W @ col, dcol = W^T @ g^T, and dcol back to the input by one strided add per tap (the col2im route;
    a conv of g would need the flipped weight reordered). The weight gradient runs as the im2col loop's
    product transposed, dW^T = g_cl^T @ col (C_out, K*C_in), in HEAVY_BLOCKS blocks of output channels
    added straight into the returned array's layout (chunks in order: deterministic). Peak extra memory
    (the bench's RSS method, float32, forward / backward MiB): VGG's 512-512 @14 (batch 2) 14.5 / 31.4 ->
    5.9 / 10.6, ResNet's s5 3x3 512-512 (batch 16) 14.3 / 22.9 -> 6.0 / 5.2, s5 3x3/2 22.2 / 38.4 -> 7.1 /
    13.6, when this route came in (the 2026-11-30 report: s5 3x3 512-512 5.6 / 7.4 with CM_MIN_COLS's chunks,
    torch-cpu 10.6 / 15.2); f+b time within about 10% of the im2col loop's either way (interleaved A/B rounds
    at load 3-4)."""
    y = dx = dw = None
    dtype = (x if x is not None else g).dtype
    bands = HEAVY_BAND if dtype.itemsize <= 4 and geo.nd >= 2 else 0  # (float64: see _cm_forward_bands)
    if want_y:
        y = _cm_passes(xp, geo, x, w, None, True, False, False, limit, bands=bands)[0]
    if (want_dx or want_dw) and bands and prod(geo.out_sizes) * geo.taps * geo.c_in * dtype.itemsize > HEAVY_BWD_BAND:
        return (y,) + _heavy_backward_bands(xp, geo, x, w, g, want_dx, want_dw, HEAVY_BWD_BAND)
    if want_dx:
        dx = _cm_passes(xp, geo, None, w, g, False, True, False, limit)[1]
    if not want_dw:
        return y, dx, None
    n, P, K, C, F = geo.n, prod(geo.out_sizes), geo.taps, geo.c_in, geo.c_out
    taps = tap_slices(geo.kernel, geo.stride, geo.dilation, geo.out_sizes)
    dw = xp.empty((F, C) + geo.kernel, dtype=dtype)
    dw3 = dw.reshape(F, C, K)
    step = -(-F // HEAVY_BLOCKS)
    first = True
    for lo, hi in _chunks(n, P * K * C * dtype.itemsize, limit):
        m = hi - lo
        if m == 0:
            continue
        x_cl = _padded_into(xp, x[lo:hi], geo.pads, "x", batch_last=False)
        # in the "dcol" scratch array, which the input gradient's dcol (the same size per sample) has left
        col = im2col(xp, x_cl, geo, taps, "dcol").reshape(m * P, K * C)
        g_cl = scratch(xp, "g", (m, P, F), dtype)
        g_cl[...] = g[lo:hi].reshape(m, F, P).transpose(0, 2, 1)
        g_cl = g_cl.reshape(m * P, F)
        for f0 in range(0, F, step):
            f1 = min(f0 + step, F)
            part = mm(xp, g_cl[:, f0:f1].T, col, out=scratch(xp, "w", (f1 - f0, K * C), dtype))
            dst = dw3[f0:f1]  # (Fb, C, K) <- part (Fb, K, C)
            if first:
                dst[...] = part.reshape(f1 - f0, K, C).transpose(0, 2, 1)
            else:
                dst += part.reshape(f1 - f0, K, C).transpose(0, 2, 1)
        first = False
    if first:
        dw.fill(0)
    return y, dx, dw


def _heavy_backward_bands(xp, geo, x, w, g, want_dx, want_dw, band):
    """The input and weight gradients of a weight_heavy float32 layer whose sample has more than `band`
    bytes of columns: per sample, in the bands of output rows of _cm_forward_bands. Per band, dcol = W^T @
    g_band goes back to the sample's padded input gradient by one strided add per tap, and the band's
    columns give dW += g_band @ col^T in HEAVY_BLOCKS blocks of output channels (samples, bands and blocks
    in order: deterministic). A whole sample's dcol and columns were 14.5 MiB each for VGG's 512-512 @28
    (backward peak 21.6 MiB against torch-cpu's 18.2). -> (dx, dw)."""
    n, P, K, C, F = geo.n, prod(geo.out_sizes), geo.taps, geo.c_in, geo.c_out
    dtype = g.dtype
    psizes = tuple(v + b + e for v, (b, e) in zip(geo.in_sizes, geo.pads))
    has_pad = any(b or e for b, e in geo.pads)
    inner = crop_index(geo.pads, geo.in_sizes, 2)
    lead = (slice(None), slice(None))
    W = w.reshape(F, C * K)
    dx = xp.empty((n, C) + geo.in_sizes, dtype=dtype) if want_dx else None
    dw = xp.zeros((F, C) + geo.kernel, dtype=dtype) if want_dw else None
    dw2 = None if dw is None else dw.reshape(F, C * K)
    step = -(-F // HEAVY_BLOCKS)
    for i in range(n):
        gi = g[i].reshape(F, P)
        if want_dw:
            X = scratch(xp, "x", (C, 1) + psizes, dtype, zero=has_pad)
            X[inner] = x[i : i + 1].swapaxes(0, 1)
        if want_dx:
            dX = scratch(xp, "dx", (C, 1) + psizes, dtype, zero=True)
        for cols, rows_in, bgeo in _row_bands(geo, C * K * dtype.itemsize, band):
            gb = gi[:, cols]
            if want_dx:
                dcol = mm(xp, W.T, gb, out=scratch(xp, "dcol", (C * K, gb.shape[1]), dtype))
                d = dcol.reshape((C, K, 1) + bgeo.out_sizes)
                dXb = dX[:, :, rows_in]
                for t, sl in enumerate(tap_slices(geo.kernel, geo.stride, geo.dilation, bgeo.out_sizes)):
                    dXb[lead + sl] += d[:, t]
                del dcol, d
            if want_dw:  # the band's columns in the "dcol" slot, which the band's dcol has left
                col = im2col_cm(xp, X[:, :, rows_in], bgeo, "dcol")
                for f0 in range(0, F, step):
                    f1 = min(f0 + step, F)
                    dw2[f0:f1] += mm(xp, gb[f0:f1], col.T, out=scratch(xp, "w", (f1 - f0, C * K), dtype))
                del col
        if want_dx:
            dx[i] = dX[inner][:, 0]
    return dx, dw


HEAVY_BAND = 4 << 20  # bytes of a heavy forward's columns per band of output rows (see _cm_forward_bands)
HEAVY_BWD_BAND = 8 << 20  # ... and of its backward's (see _heavy_backward_bands)
HEAVY_BLOCKS = 4  # output-channel blocks of the heavy weight gradient (a quarter of the weight at a time)


def _conv_passes(xp, geo, x, w, g, want_y, want_dx, want_dw, limit):
    dx_direct = None
    limit = io_limit(geo, (x if x is not None else g).dtype.itemsize, limit)
    shift = getattr(xp, "__name__", "") == "numpy"  # the tap-shift path is tuned for NumPy's BLAS only
    if shift and whole_window(geo):  # (measured on NumPy: LeNet's C5 forward 0.15 -> 0.05 ms)
        return _whole_window_passes(xp, geo, x, w, g, want_y, want_dx, want_dw)
    if shift and conv1d(geo):  # (measured on NumPy: see conv1d)
        return _conv1d_passes(xp, geo, x, w, g, want_y, want_dx, want_dw, limit)
    heavy = shift and weight_heavy(geo, (x if x is not None else g).dtype.itemsize)
    if want_dx and dx_as_conv(geo, shift) and not heavy:
        dx_direct = input_grad_as_conv(xp, geo, w, g, limit)
        want_dx = False
        if not (want_y or want_dw):
            return None, dx_direct, None
    if pointwise(geo):
        if shift and sample_pointwise(geo):
            return _pointwise_sample_passes(xp, geo, x, w, g, want_y, want_dx, want_dw)
        return _pointwise_passes(xp, geo, x, w, g, want_y, want_dx, want_dw, limit)
    if shift and not want_dx and not heavy and shifted(geo) and (want_y or want_dw):
        y, _, dw = _shifted_passes(xp, geo, x, w, g, want_y, want_dw, limit)
        return y, dx_direct, dw
    if prefer_channels_first(geo):
        passes = _cm_passes if shift and channel_major(geo, want_dx) else _cf_passes  # measured on NumPy only
        y, dx, dw = passes(xp, geo, x, w, g, want_y, want_dx, want_dw, limit)
        return y, (dx if dx_direct is None else dx_direct), dw
    G, K = geo.groups, geo.taps
    Cg, Fg = geo.c_in // G, geo.c_out // G
    if heavy:
        return _heavy_passes(xp, geo, x, w, g, want_y, want_dx, want_dw, min(limit, COL_BUDGET))
    dw_path = G > 1 and Cg == 1 and K > 1  # depthwise: tap loops instead of im2col + thin GEMMs
    n, nd, P = geo.n, geo.nd, prod(geo.out_sizes)
    dtype = (x if x is not None else g).dtype
    taps = tap_slices(geo.kernel, geo.stride, geo.dilation, geo.out_sizes)
    W = weight_matrix(xp, w, geo) if (want_y or want_dx) else None
    y = xp.empty((n, geo.c_out) + geo.out_sizes, dtype=dtype) if want_y else None
    dx = xp.empty((n, geo.c_in) + geo.in_sizes, dtype=dtype) if want_dx else None
    dW = None
    per_sample = P * K * geo.c_in * dtype.itemsize * (int(want_y or want_dw) + int(want_dx))
    # chunks of at most COL_BUDGET bytes of column matrix: io_limit let ResNet's strided 3x3/2 layers (whose
    # input is four times their output) build 30 MiB of it, 44.8 MiB of peak against torch-cpu's 25.1 for
    # s3 3x3/2 128-128 in float32 (6.1 MiB now), at the same speed within noise (A/B rounds at load 3-6)
    for lo, hi in _chunks(n, per_sample, min(limit, COL_BUDGET)):
        m = hi - lo
        M = m * P
        if M == 0:
            continue
        col = None
        if dw_path:
            Wt = None if W is None else W.transpose(1, 0, 2)  # (K, G, Fg)
            x_cl = padded(xp, x[lo:hi], geo.pads, 0, channels_last=True) if (want_y or want_dw) else None
            gm = None
            if want_dx or want_dw:
                gm = xp.ascontiguousarray(xp.moveaxis(g[lo:hi], 1, -1)).reshape((m,) + geo.out_sizes + (G, Fg))
            if want_y:
                yc = _dw_forward(xp, x_cl, taps, Wt, (m,) + geo.out_sizes + (G, Fg))
                y[lo:hi] = xp.moveaxis(yc.reshape((m,) + geo.out_sizes + (G * Fg,)), -1, 1)
            if want_dw:
                part = _dw_weight(xp, x_cl, taps, gm)
                if dW is None:
                    dW = part
                else:  # in place: no third weight-sized array (the sum is the same, in chunk order)
                    dW += part
            if want_dx:
                dx_cl = _dw_input(xp, gm, Wt, geo, taps, m)
                dx[lo:hi] = xp.moveaxis(crop(dx_cl, geo.pads, geo.in_sizes, first=1), -1, 1)
            continue
        if want_y or want_dw:
            x_cl = _padded_into(xp, x[lo:hi], geo.pads, "x", batch_last=False)
            col = im2col(xp, x_cl, geo, taps)
            col = col.transpose(1, 0, 2)  # (G, M, K*Cg) view
        if want_y:
            yg = _gemm(xp, col, W, "y")  # (G, M, Fg)
            # (G, m, *o, Fg) -> (m, G, Fg, *o)
            yv = yg.reshape((G, m) + geo.out_sizes + (Fg,)).transpose((1, 0, nd + 2) + tuple(range(2, nd + 2)))
            y[lo:hi].reshape((m, G, Fg) + geo.out_sizes)[...] = yv
        if want_dx or want_dw:
            # (m, G*Fg, *o) -> (G, M, Fg)
            gg = g[lo:hi].reshape((m, G, Fg, P)).transpose(1, 0, 3, 2)
            g_cl = scratch(xp, "g", (G, M, Fg), dtype)
            g_cl.reshape(G, m, P, Fg)[...] = gg
        if want_dw:
            part = _gemm(xp, col.transpose(0, 2, 1), g_cl)  # (G, K*Cg, Fg)
            if dW is None:
                dW = part
            else:  # in place: no third weight-sized array (the sum is the same, in chunk order)
                dW += part
        del col
        if want_dx:
            dcol = _gemm(xp, g_cl, W.transpose(0, 2, 1), "dcol")  # (G, M, K*Cg)
            dcol = xp.ascontiguousarray(dcol.transpose(1, 0, 2)) if G > 1 else dcol.reshape(M, 1, K * Cg)
            dx_cl = col2im(xp, dcol, geo, taps, m)
            del dcol
            dx[lo:hi] = xp.moveaxis(crop(dx_cl, geo.pads, geo.in_sizes, first=1), -1, 1)
    dw = None
    if want_dw:
        if dW is None:
            dW = xp.zeros((G, K * Cg, Fg), dtype=dtype)
        dw = weight_from_matrix(xp, dW, geo)
    return y, (dx if dx_direct is None else dx_direct), dw


def add_bias(xp, y, b):
    """y += b along the channel axis (in place)."""
    y += b.reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


def bias_grad(xp, g):
    return g.sum(axis=(0,) + tuple(range(2, g.ndim)))
