"""Max pooling for the CuPy backend: two raw kernels and their NumPy twins.

Forward, one thread per output window: visit the window's taps in row-major order, skipping taps that
fall in the padding or past the input (the ceil_mode overhang), and keep the first real tap, then any
later tap that is strictly greater, or NaN while the best so far is not (the first NaN wins, nothing
beats a NaN, ties stay with the smaller index). Padding therefore never wins over a real input, and
a window of -inf picks its first real tap: the rules of convspec.backends._xp.pool.max_pool.

Backward, one thread per input element (a gather, no atomics, so two runs give the same bits): for
each tap j in row-major order, the window o with o*s + j*d - b == p (if one exists) sends its
gradient here when its winning tap is j. Summing in tap order from +0.0 gives the same bits as the
shared kernel's per-tap strided adds.

Both kernels see the geometry padded to 3 spatial dims (leading unit dims). The `*_host` functions are
the same per-thread arithmetic written with NumPy over all threads at once: CI tests them against the
shared kernels, and a GPU session tests the CUDA kernels against them.
"""

from __future__ import annotations

import numpy as np

from .._xp import pool as _pool
from .._xp.errors import ParameterError

_GEOMETRY = ", ".join(f"int32 {v}{a}" for v in "noksdb" for a in range(3))

FORWARD_SRC = r"""
const long long t = i;
const int q2 = (int)(t % o2);
const long long r2 = t / o2;
const int q1 = (int)(r2 % o1);
const long long r1 = r2 / o1;
const int q0 = (int)(r1 % o0);
const long long plane = r1 / o0;
const long long base = plane * n0 * n1 * n2;
T best = (T)0;
int barg = -1;
bool bnan = false;
for (int j0 = 0; j0 < k0; ++j0) {
    const int p0 = q0 * s0 + j0 * d0 - b0;
    if (p0 < 0 || p0 >= n0) continue;
    for (int j1 = 0; j1 < k1; ++j1) {
        const int p1 = q1 * s1 + j1 * d1 - b1;
        if (p1 < 0 || p1 >= n1) continue;
        for (int j2 = 0; j2 < k2; ++j2) {
            const int p2 = q2 * s2 + j2 * d2 - b2;
            if (p2 < 0 || p2 >= n2) continue;
            const T v = x[base + ((long long)p0 * n1 + p1) * n2 + p2];
            const bool vnan = isnan(v);
            if (barg < 0 || (!bnan && (vnan || v > best))) {
                best = v;
                barg = (j0 * k1 + j1) * k2 + j2;
                bnan = vnan;
            }
        }
    }
}
y = best;
arg = barg;
"""

BACKWARD_SRC = r"""
const long long t = i;
const int p2 = (int)(t % n2);
const long long r2 = t / n2;
const int p1 = (int)(r2 % n1);
const long long r1 = r2 / n1;
const int p0 = (int)(r1 % n0);
const long long plane = r1 / n0;
T acc = (T)0;
for (int j0 = 0; j0 < k0; ++j0) {
    const int t0 = p0 + b0 - j0 * d0;
    if (t0 < 0 || t0 % s0 != 0 || t0 / s0 >= o0) continue;
    const int q0 = t0 / s0;
    for (int j1 = 0; j1 < k1; ++j1) {
        const int t1 = p1 + b1 - j1 * d1;
        if (t1 < 0 || t1 % s1 != 0 || t1 / s1 >= o1) continue;
        const int q1 = t1 / s1;
        for (int j2 = 0; j2 < k2; ++j2) {
            const int t2 = p2 + b2 - j2 * d2;
            if (t2 < 0 || t2 % s2 != 0 || t2 / s2 >= o2) continue;
            const int q2 = t2 / s2;
            const long long oi = ((plane * o0 + q0) * o1 + q1) * o2 + q2;
            if (arg[oi] == (j0 * k1 + j1) * k2 + j2) acc += g[oi];
        }
    }
}
dx = acc;
"""

_KERNELS: dict = {}


def on_gpu(xp) -> bool:
    """Whether `xp` is CuPy (the raw kernels) rather than NumPy or a stand-in for it (the twins)."""
    return getattr(xp, "__name__", None) == "cupy"


def kernels(cp):
    """(forward, backward) cupy.ElementwiseKernel objects, built once (compiled on first launch)."""
    if "fwd" not in _KERNELS:
        _KERNELS["fwd"] = cp.ElementwiseKernel(
            f"raw T x, {_GEOMETRY}", "T y, int32 arg", FORWARD_SRC, "convspec_max_pool_fwd"
        )
        _KERNELS["bwd"] = cp.ElementwiseKernel(
            f"raw T g, raw int32 arg, {_GEOMETRY}", "T dx", BACKWARD_SRC, "convspec_max_pool_bwd"
        )
    return _KERNELS["fwd"], _KERNELS["bwd"]


def geometry3(geo):
    """(n, o, k, s, d, b): input, output, kernel, stride, dilation, begin padding, each 3 ints."""
    lead = 3 - geo.nd
    one = (1,) * lead
    return (
        one + geo.in_sizes,
        one + geo.out_sizes,
        one + geo.kernel,
        one + geo.stride,
        one + geo.dilation,
        (0,) * lead + tuple(b for b, _ in geo.pads),
    )


def _scalars(geo):
    return tuple(v for part in geometry3(geo) for v in part)


# ------------------------------------------------------------------ NumPy twins of the kernels
def forward_host(x, geo):
    """The forward kernel, every thread at once: x (N, C, *n) -> (values, winning tap int32)."""
    (n0, n1, n2), (o0, o1, o2), (k0, k1, k2), (s0, s1, s2), (d0, d1, d2), (b0, b1, b2) = geometry3(geo)
    planes = x.shape[0] * x.shape[1]
    xf = np.ascontiguousarray(x).reshape(planes, n0 * n1 * n2)
    q0, q1, q2 = np.arange(o0)[:, None, None], np.arange(o1)[None, :, None], np.arange(o2)[None, None, :]
    best = np.zeros((planes, o0, o1, o2), dtype=x.dtype)
    barg = np.full(best.shape, -1, dtype=np.int32)
    bnan = np.zeros(best.shape, dtype=bool)
    for j0 in range(k0):
        p0 = q0 * s0 + j0 * d0 - b0
        for j1 in range(k1):
            p1 = q1 * s1 + j1 * d1 - b1
            for j2 in range(k2):
                p2 = q2 * s2 + j2 * d2 - b2
                inside = (p0 >= 0) & (p0 < n0) & (p1 >= 0) & (p1 < n1) & (p2 >= 0) & (p2 < n2)
                flat = (np.clip(p0, 0, n0 - 1) * n1 + np.clip(p1, 0, n1 - 1)) * n2 + np.clip(p2, 0, n2 - 1)
                v = xf[:, flat]
                vnan = np.isnan(v)
                take = inside & ((barg < 0) | (~bnan & (vnan | (v > best))))
                best = np.where(take, v, best)
                barg = np.where(take, np.int32((j0 * k1 + j1) * k2 + j2), barg)
                bnan = np.where(take, vnan, bnan)
    shape = tuple(x.shape[:2]) + tuple(geo.out_sizes)
    return best.reshape(shape), barg.reshape(shape)


def _source(t, s, o):
    """Per coordinate: whether a window o with o*s == t exists, and that o (clipped where not)."""
    ok = (t >= 0) & (t % s == 0) & (t // s < o)
    return ok, np.clip(t // s, 0, o - 1)


def backward_host(g, arg, x_shape, geo):
    """The backward kernel, every thread at once: g and arg (N, C, *out) -> dx (N, C, *in)."""
    (n0, n1, n2), (o0, o1, o2), (k0, k1, k2), (s0, s1, s2), (d0, d1, d2), (b0, b1, b2) = geometry3(geo)
    planes = x_shape[0] * x_shape[1]
    gf, af = (
        np.ascontiguousarray(g).reshape(planes, o0 * o1 * o2),
        np.ascontiguousarray(arg).reshape(planes, o0 * o1 * o2),
    )
    p0, p1, p2 = np.arange(n0)[:, None, None], np.arange(n1)[None, :, None], np.arange(n2)[None, None, :]
    acc = np.zeros((planes, n0, n1, n2), dtype=g.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        for j0 in range(k0):
            ok0, q0 = _source(p0 + b0 - j0 * d0, s0, o0)
            for j1 in range(k1):
                ok1, q1 = _source(p1 + b1 - j1 * d1, s1, o1)
                for j2 in range(k2):
                    ok2, q2 = _source(p2 + b2 - j2 * d2, s2, o2)
                    oi = (q0 * o1 + q1) * o2 + q2
                    match = (ok0 & ok1 & ok2) & (af[:, oi] == (j0 * k1 + j1) * k2 + j2)
                    acc = np.where(match, acc + gf[:, oi], acc)
    return acc.reshape(tuple(x_shape))


# ------------------------------------------------------------------ dispatch: kernel on cupy, twin elsewhere
def window_max(xp, x, geo):
    """-> (values, winning tap int32), both (N, C, *out)."""
    if not on_gpu(xp):
        return forward_host(np.asarray(x), geo)
    x = xp.ascontiguousarray(x)
    shape = tuple(x.shape[:2]) + tuple(geo.out_sizes)
    y = xp.empty(shape, dtype=x.dtype)
    arg = xp.empty(shape, dtype=xp.int32)
    if y.size:
        kernels(xp)[0](x.reshape(-1), *_scalars(geo), y, arg)
    return y, arg


def gather_grad(xp, g, arg, x_shape, geo):
    """dx (N, C, *in) in g's dtype: every window's gradient on its winning input element."""
    if not on_gpu(xp):
        return backward_host(np.asarray(g), np.asarray(arg), x_shape, geo)
    dx = xp.empty(tuple(x_shape), dtype=g.dtype)
    if dx.size:
        kernels(xp)[1](xp.ascontiguousarray(g).reshape(-1), xp.ascontiguousarray(arg).reshape(-1), *_scalars(geo), dx)
    return dx


def max_pool(xp, x, geo, *, want_indices=False):
    """-> (values, winning taps, flat per-plane input indices or None), with the errors of the
    shared max_pool: a window without any real input is a ParameterError (when there is a window)."""
    if x.shape[0] * x.shape[1] and any(0 in geo.dim_counts(a, False) for a in range(geo.nd)):
        raise ParameterError(
            "padding",
            "a pooling window lies entirely in the padding "
            "(padding must leave every window at least one input element)",
        )
    values, arg = window_max(xp, x, geo)
    idx = None
    if want_indices:
        for a in range(geo.nd):
            p = _pool._positions(xp, geo, arg, a)
            idx = p if idx is None else idx * geo.in_sizes[a] + p
    return values, arg, idx
