"""Convolution kernels: channels-last im2col + one GEMM per group, col2im by strided adds per tap.

Layouts (G groups, Cg = C_in/G input and Fg = C_out/G output channels per group, K taps, M = n*prod(o)):

    x_cl   (n, *padded, C_in)          the padded input, channels last (one copy of x)
    col    (n, *o, G, K, Cg)           col[.., g, t, c] = x_cl[.., i*s + j_t*d, g*Cg + c]
    W      (G, K*Cg, Fg)               W[g, t*Cg + c, f] = w[g*Fg + f, c, j_t]
    y_cl   (M, C_out) = col @ W        per group: (M, K*Cg) @ (K*Cg, Fg)

The backward passes are the same GEMMs transposed: dW = col^T @ g_cl and dcol = g_cl @ W^T, and dcol
goes back to the input by one strided add per kernel tap (a deterministic gather, never an atomic
scatter). Everything runs in the input dtype (float32 stays float32: the BLAS accumulates in it). The
batch is processed in chunks so that the column matrices stay below `limit` bytes.

Every function takes the array module `xp` (numpy or cupy) as its first argument.
"""
from __future__ import annotations

from math import prod

from .arrays import crop, padded, tap_slices

DEFAULT_LIMIT = 256 << 20  # bytes of column matrix (col + dcol) per batch chunk


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


def im2col(xp, x_cl, geo, taps, out=None):
    """(M, G, K*Cg) column matrix of a channels-last padded chunk, written by one copy of a strided
    window view (a view of x_cl itself when K == 1 allows). `out`: a reusable buffer of >= the size."""
    m = x_cl.shape[0]
    G, K, C = geo.groups, geo.taps, geo.c_in
    Cg = C // G
    M = m * prod(geo.out_sizes)
    if K == 1:
        return x_cl[(slice(None),) + taps[0]].reshape(M, G, Cg)
    x_cl = xp.ascontiguousarray(x_cl)
    st = x_cl.strides
    sp = st[1:1 + geo.nd]
    item = x_cl.itemsize
    # window view (m, *o, G, *k, Cg): element [.., i, g, j, c] = x_cl[.., i*s + j*d, g*Cg + c]
    shape = (m,) + geo.out_sizes + (G,) + geo.kernel + (Cg,)
    strides = (st[0],) + tuple(a * s for a, s in zip(sp, geo.stride)) + (Cg * item,) + tuple(a * d for a, d in zip(sp, geo.dilation)) + (item,)
    win = xp.lib.stride_tricks.as_strided(x_cl, shape=shape, strides=strides)
    n_el = M * G * K * Cg
    col = xp.empty(n_el, dtype=x_cl.dtype) if out is None or out.size < n_el else out[:n_el]
    col.reshape(shape)[...] = win
    return col.reshape(M, G, K * Cg)


def col2im(xp, dcol, geo, taps, m):
    """Adjoint of im2col: dcol (M, G, K*Cg) -> channels-last padded (m, *padded, C_in), one strided add
    per tap (each add is a plain elementwise pass, so the result is deterministic)."""
    G, K, C = geo.groups, geo.taps, geo.c_in
    Cg = C // G
    padded_sizes = tuple(n + b + e for n, (b, e) in zip(geo.in_sizes, geo.pads))
    dx = xp.zeros((m,) + padded_sizes + (C,), dtype=dcol.dtype)
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


def _gemm(xp, a, b):
    """Per-group product: a (M, G, P) or (G, M, P) layouts handled by the caller; here (G, M, P) @ (G, P, Q)."""
    if a.shape[0] == 1:
        return (a[0] @ b[0])[None]
    return xp.matmul(a, b)


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
    # w2[g*Cg + c, f, j'] = w[g*Fg + f, c, k-1-j']
    w2 = w.reshape((G, Fg, Cg) + geo.kernel).swapaxes(1, 2).reshape((G * Cg, Fg) + geo.kernel)[flip]
    geo2 = _SimpleGeometry(n=geo.n, c_in=geo.c_out, c_out=geo.c_in, groups=G, kernel=geo.kernel, stride=(1,) * geo.nd,
                           dilation=geo.dilation, pads=tuple(pads), in_sizes=tuple(g.shape[2:]), out_sizes=geo.in_sizes)
    y, _, _ = conv_passes(xp, geo2, x=g, w=w2, want_y=True, limit=limit)
    return y


class _SimpleGeometry:
    """The geometry fields conv_passes reads, for a conv built internally (already valid)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.nd = len(self.kernel)
        self.taps = prod(self.kernel)


def conv_passes(xp, geo, *, x=None, w=None, g=None, want_y=False, want_dx=False, want_dw=False, limit=DEFAULT_LIMIT):
    """The three conv products over one batch, sharing the column matrix of each chunk.

    x (n, C_in, *in), w (C_out, Cg, *k), g (n, C_out, *out) -> (y, dx, dw) with None for what is not
    wanted; y = conv(x, w) without bias, dx = the input adjoint of g, dw = the weight gradient."""
    dx_direct = None
    if want_dx and all(s == 1 for s in geo.stride) and geo.taps > 1:
        dx_direct = input_grad_as_conv(xp, geo, w, g, limit)
        want_dx = False
        if not (want_y or want_dw):
            return None, dx_direct, None
    G, K = geo.groups, geo.taps
    Cg, Fg = geo.c_in // G, geo.c_out // G
    dw_path = G > 1 and Cg == 1 and K > 1  # depthwise: tap loops instead of im2col + thin GEMMs
    n, nd, P = geo.n, geo.nd, prod(geo.out_sizes)
    dtype = (x if x is not None else g).dtype
    taps = tap_slices(geo.kernel, geo.stride, geo.dilation, geo.out_sizes)
    W = weight_matrix(xp, w, geo) if (want_y or want_dx) else None
    y = xp.empty((n, geo.c_out) + geo.out_sizes, dtype=dtype) if want_y else None
    dx = xp.empty((n, geo.c_in) + geo.in_sizes, dtype=dtype) if want_dx else None
    dW = None
    buf = None
    per_sample = P * K * geo.c_in * dtype.itemsize * (int(want_y or want_dw) + int(want_dx))
    for lo, hi in _chunks(n, per_sample, limit):
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
                dW = part if dW is None else dW + part
            if want_dx:
                dx_cl = _dw_input(xp, gm, Wt, geo, taps, m)
                dx[lo:hi] = xp.moveaxis(crop(dx_cl, geo.pads, geo.in_sizes, first=1), -1, 1)
            continue
        if want_y or want_dw:
            x_cl = padded(xp, x[lo:hi], geo.pads, 0, channels_last=True)
            col = im2col(xp, x_cl, geo, taps, buf)
            if K > 1 and buf is None:
                buf = col.reshape(-1)  # reused by the following chunks
            col = col.transpose(1, 0, 2)  # (G, M, K*Cg) view
            del x_cl
        if want_y:
            yg = _gemm(xp, col, W)  # (G, M, Fg)
            # (G, m, *o, Fg) -> (m, G, Fg, *o)
            yv = yg.reshape((G, m) + geo.out_sizes + (Fg,)).transpose((1, 0, nd + 2) + tuple(range(2, nd + 2)))
            y[lo:hi].reshape((m, G, Fg) + geo.out_sizes)[...] = yv
        if want_dx or want_dw:
            # (m, G*Fg, *o) -> (G, M, Fg)
            gg = g[lo:hi].reshape((m, G, Fg, P)).transpose(1, 0, 3, 2)
            g_cl = xp.ascontiguousarray(gg).reshape(G, M, Fg)
        if want_dw:
            part = _gemm(xp, col.transpose(0, 2, 1), g_cl)  # (G, K*Cg, Fg)
            dW = part if dW is None else dW + part
        del col
        if want_dx:
            dcol = _gemm(xp, g_cl, W.transpose(0, 2, 1))  # (G, M, K*Cg)
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
