"""Pooling kernels (channels-first: windows never cross channels), generic over the array module `xp`.

A window reduction is a loop over the K kernel taps, each one elementwise pass over the output
(`tap_slices` addresses tap t of every window as one strided view of the padded input); the backward
passes are the same loop with strided adds into the padded input gradient, then a crop.

Max-pool order: taps are visited in row-major window order and a later tap wins only if strictly
greater (ties stay with the smaller index), or if it is NaN and the current best is not (the first NaN
wins, and nothing beats a NaN).
"""

from __future__ import annotations

from math import prod

import numpy as np

from .arrays import crop, padded, tap_slices, where_zero
from .errors import ParameterError


def _padded_input(xp, x, geo, fill):
    pads = tuple((b, e + o) for (b, e), o in zip(geo.pads, geo.overhang))
    return padded(xp, x, pads, fill), pads


def argmax_first(xp, a, axis=-1):
    """Index of the maximum along `axis`: the first NaN when there is one, else the first maximum."""
    if xp is np:  # numpy's argmax already returns the first NaN, else the first maximum
        return np.argmax(a, axis=axis)
    # elsewhere (cupy) neither argmax's tie order nor its NaN handling is documented: take the
    # smallest position among the hits (the NaNs when there are any, else the elements equal to the max)
    axis = axis % a.ndim
    n = a.shape[axis]
    nan = xp.isnan(a)
    top = xp.where(nan, -xp.inf, a).max(axis=axis, keepdims=True)
    hit = xp.where(nan.any(axis=axis, keepdims=True), nan, a == top)
    pos = xp.arange(n, dtype=xp.int64).reshape((n,) + (1,) * (a.ndim - 1 - axis))
    return xp.where(hit, pos, n).min(axis=axis)


def _window_max(xp, x, geo, want_arg):
    """(values, arg) with arg the winning tap per window (None when not wanted and not needed)."""
    xpad, _ = _padded_input(xp, x, geo, -np.inf)
    taps = tap_slices(geo.kernel, geo.stride, geo.dilation, geo.out_sizes)
    lead = (slice(None), slice(None))
    best = xpad[lead + taps[0]].copy()
    has_nan = bool(xp.isnan(x).any()) if x.size else False
    arg = xp.zeros(best.shape, dtype=xp.int32) if want_arg else None
    if has_nan:
        best_nan = xp.isnan(best)
    for t, sl in enumerate(taps[1:], 1):
        v = xpad[lead + sl]
        if has_nan:
            v_nan = xp.isnan(v)
            take = (v > best) | (v_nan & ~best_nan)
            best_nan |= v_nan
            xp.copyto(best, v, where=take)
        else:
            take = v > best if want_arg else None
            xp.maximum(best, v, out=best)
        if want_arg:  # taps come in increasing order: arg = the last tap taken = the largest (no masked copy)
            xp.maximum(arg, xp.multiply(take, t, dtype=arg.dtype), out=arg)
    return best, arg


def _positions(xp, geo, arg, axis):
    """Unpadded input coordinate along `axis` of the chosen element: o*s + j*d - b."""
    k, s, d, (b, _) = geo.kernel[axis], geo.stride[axis], geo.dilation[axis], geo.pads[axis]
    inner = prod(geo.kernel[axis + 1 :])
    j = (arg // inner) % k
    shape = [1] * (2 + geo.nd)
    shape[2 + axis] = geo.out_sizes[axis]
    base = xp.arange(geo.out_sizes[axis], dtype=xp.int64).reshape(shape) * s - b
    return base + j.astype(xp.int64) * d


def _first_inside_tap(xp, geo):
    """Per output position, the first tap (row-major) on a real input, or -1 where there is none."""
    tap, valid = None, None
    for a in range(geo.nd):
        k, s, d, (b, _) = geo.kernel[a], geo.stride[a], geo.dilation[a], geo.pads[a]
        p = np.arange(geo.out_sizes[a])[:, None] * s + np.arange(k)[None, :] * d - b  # (out, k)
        ok = (p >= 0) & (p < geo.in_sizes[a])
        j = ok.argmax(axis=1)
        shape = [1] * geo.nd
        shape[a] = geo.out_sizes[a]
        j, has = j.reshape(shape), ok.any(axis=1).reshape(shape)
        tap = j if tap is None else tap * k + j
        valid = has if valid is None else valid & has
    return xp.asarray(np.where(valid, tap, -1))


def max_pool(xp, x, geo, *, want_indices=False, want_arg=False):
    """-> (values, flat per-plane indices or None, winning taps or None). Padding counts as -inf
    but is never chosen over a real input: where a window's maximum is -inf its first real tap
    wins. A window with no real input at all is an error."""
    needs_check = any(b or e for b, e in geo.pads) or any(geo.overhang)
    best, arg = _window_max(xp, x, geo, want_arg or want_indices)
    if needs_check and best.size:
        first = _first_inside_tap(xp, geo)
        if bool((first < 0).any()):
            raise ParameterError(
                "padding",
                "a pooling window lies entirely in the padding "
                "(padding must leave every window at least one input element)",
            )
        if bool((best == -np.inf).any()):
            if arg is None:
                best, arg = _window_max(xp, x, geo, True)
            inside = None
            for a in range(geo.nd):
                p = _positions(xp, geo, arg, a)
                ok = (p >= 0) & (p < geo.in_sizes[a])
                inside = ok if inside is None else inside & ok
            arg = xp.where(inside, arg, first.astype(arg.dtype))
    idx = None
    if want_indices:
        idx = None
        for a in range(geo.nd):
            p = _positions(xp, geo, arg, a)
            idx = p if idx is None else idx * geo.in_sizes[a] + p
    return best, idx, arg


def max_pool_backward(xp, g, x_shape, arg, geo):
    """Each window's gradient to its winning tap: one strided pass per tap, then the crop."""
    pads = tuple((b, e + o) for (b, e), o in zip(geo.pads, geo.overhang))
    shape = tuple(x_shape[:2]) + tuple(n + b + e for n, (b, e) in zip(geo.in_sizes, pads))
    dx = xp.zeros(shape, dtype=g.dtype)
    taps = tap_slices(geo.kernel, geo.stride, geo.dilation, geo.out_sizes)
    lead = (slice(None), slice(None))
    overlap = geo.overlapping()
    contrib = None
    for t, sl in enumerate(taps):
        if overlap:
            contrib = where_zero(xp, lambda m, t=t: xp.equal(arg, t, out=m), g, out=contrib)
            dx[lead + sl] += contrib
        else:  # each input position is in at most one window
            contrib = where_zero(xp, lambda m, t=t: xp.equal(arg, t, out=m), g, out=contrib)
            dx[lead + sl] = contrib
    return xp.ascontiguousarray(crop(dx, pads, geo.in_sizes))


def avg_divisor(xp, geo, include_pad, dtype):
    """D(i) per output position, (*out): the product of per-dim counts (the counted region is a box)."""
    div = None
    for a in range(geo.nd):
        c = np.asarray(geo.dim_counts(a, include_pad), dtype=np.float64)
        shape = [1] * geo.nd
        shape[a] = c.size
        c = c.reshape(shape)
        div = c if div is None else div * c
    return xp.asarray(div.astype(dtype))


def avg_pool(xp, x, geo, include_pad):
    xpad, _ = _padded_input(xp, x, geo, 0)
    taps = tap_slices(geo.kernel, geo.stride, geo.dilation, geo.out_sizes)
    lead = (slice(None), slice(None))
    total = xpad[lead + taps[0]].copy()
    for sl in taps[1:]:
        total += xpad[lead + sl]
    total /= avg_divisor(xp, geo, include_pad, total.dtype)  # every divisor >= 1 (checked by the caller)
    return total


def avg_pool_backward(xp, g, x_shape, geo, include_pad):
    share = g / avg_divisor(xp, geo, include_pad, g.dtype)
    pads = tuple((b, e + o) for (b, e), o in zip(geo.pads, geo.overhang))
    shape = tuple(x_shape[:2]) + tuple(n + b + e for n, (b, e) in zip(geo.in_sizes, pads))
    dx = xp.zeros(shape, dtype=g.dtype)
    lead = (slice(None), slice(None))
    overlap = geo.overlapping()
    for sl in tap_slices(geo.kernel, geo.stride, geo.dilation, geo.out_sizes):
        if overlap:
            dx[lead + sl] += share
        else:
            dx[lead + sl] = share
    return xp.ascontiguousarray(crop(dx, pads, geo.in_sizes))


def global_max(xp, x):
    """-> (values (N, C), flat arg (N, C))."""
    f = x.reshape(x.shape[:2] + (-1,))
    arg = argmax_first(xp, f, axis=-1)
    return xp.take_along_axis(f, arg[..., None], axis=-1)[..., 0], arg


def global_max_backward(xp, g, x_shape, arg):
    n, c = x_shape[:2]
    plane = prod(x_shape[2:])
    dx = xp.zeros((n * c, plane), dtype=g.dtype)
    dx[xp.arange(n * c), arg.reshape(-1)] = g.reshape(-1)
    return dx.reshape(x_shape)


def global_avg(xp, x):
    f = x.reshape(x.shape[:2] + (-1,))
    return f.sum(axis=-1) / f.dtype.type(f.shape[-1])


def global_avg_backward(xp, g, x_shape):
    plane = prod(x_shape[2:])
    share = g / g.dtype.type(plane)
    return xp.ascontiguousarray(xp.broadcast_to(share.reshape(share.shape + (1,) * (len(x_shape) - 2)), x_shape))


def kmax_indices(xp, x, k):
    """Positions of the k highest-ranked entries along the last axis, in increasing order. Rank: NaN
    above everything, then larger values; ties (and NaNs among themselves) to the smaller position."""
    nan = xp.isnan(x)
    # + 0 turns -0.0 into +0.0: a radix sort (cupy's 1-D argsort) would order -0.0 before +0.0
    key = xp.where(nan, xp.zeros((), dtype=x.dtype), -x) + x.dtype.type(0)
    order = xp.argsort(key, axis=-1, kind="stable")  # descending value, stable
    if bool(nan.any()):  # then move the NaNs to the front, keeping their order
        nan_sorted = xp.take_along_axis(nan, order, axis=-1)
        not_nan = (~nan_sorted).astype(xp.int8)  # integer keys: every array module sorts them
        order = xp.take_along_axis(order, xp.argsort(not_nan, axis=-1, kind="stable"), axis=-1)
    return xp.sort(order[..., :k], axis=-1)


def kmax_backward(xp, g, x_shape, idx):
    dx = xp.zeros(x_shape, dtype=g.dtype)
    xp.put_along_axis(dx, idx, g, axis=-1)
    return dx
