"""Principled error bounds: how far a correct floating-point backend may be from the exact result.

For an output that sums n products, a backend accumulating in working precision u is within
(Higham, *Accuracy and Stability of Numerical Algorithms*, Lemma 3.1 and eq. 3.5)

    |computed - exact| <= gamma_n * (|x| conv |w|),     gamma_n = n*u / (1 - n*u),

in any summation order. The magnitude term is computed by running the reference on |x| and |w| (and
|b|, |g|). The reference computes in float64 with the same kind of error, so the bound charges both:
gamma_n(u_dtype) + gamma_n(u_float64). Ops that only select or move values (max-pool forward, relu,
flatten, k-max) get a bound of 0; index outputs must match exactly.

Transcendental ops (sigmoid, tanh, softmax, cross_entropy) have no summation bound; their bound is
C_FN * u relative to the value, C_FN = 16: 16 units of roundoff are 8 ulps (an ulp is at most eps = 2u
relative to the value), covering the libraries' documented accuracy of exp/log/tanh (glibc, SLEEF, CUDA:
<= 4 ulps) plus the few roundings of the formula. Their results below the smallest normal number may
be flushed to zero (vectorised exp/sigmoid kernels, e.g. PyTorch's CPU sigmoid, return no subnormals):
their bounds carry the dtype's smallest normal number `tiny` as an absolute term.

The backward of sigmoid and tanh is bounded as it is computed everywhere, from the backend's own
forward: h(s) = s(1-s) and h(t) = 1 - t^2 evaluated at a forward f' = f(1 + d) + a, |d| <= C_FN*u,
|a| <= tiny, then multiplied by g: |h(f') - h(f)| <= |h'(f)| e + e^2 with e = C_FN*u*|f| + tiny, plus
three roundings of the evaluation (Sterbenz makes 1 - f' exact where f' >= 1/2). The float64 reference
is charged the same with u_64. Where the softmax shift z - max z is rounded, exp amplifies its absolute
error: that is charged too.
"""

from __future__ import annotations

from math import prod

import numpy as np

from convspec import reference as R

from . import registry

#: the transcendental bound in units of roundoff u = eps/2: 16 u = 8 ulps (SPEC.md says the same)
C_FN = 16


def unit_roundoff(dtype) -> float:
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def gamma(n: int, dtype) -> float:
    nu = n * unit_roundoff(dtype)
    return nu / (1 - nu) if nu < 1 else np.inf


def _both(n, dtype):
    return gamma(n, dtype) + gamma(n, np.float64)


def _abs(a):
    return None if a is None else np.abs(a)


def bounds(
    op: str, inputs: list, params: dict, g: np.ndarray, dtype: str, product_roundoff: float = 0.0, flush: bool = False
):
    """(forward bound, [bound per gradient]) for float64 inputs `inputs` and incoming gradient g, from
    the op's error model in the registry.

    product_roundoff: a mixed-precision tier that rounds both factors of each product of the
    convolutions and matrix products (registry flag `products`) to a narrower format first (TF32:
    10-bit mantissas, u = 2**-11) adds (2u + u^2) * (|x| conv |w|): each product is then off by that
    much relative.

    With gradual underflow every operation may also add an absolute error of half the smallest
    subnormal (Higham eq. 2.8: fl(x op y) = (x op y)(1 + d) + e, |e| <= eta/2); a non-zero bound is
    charged UNDERFLOW_OPS of those (results far below the subnormal range round to 0 or a subnormal).

    flush: a backend that flushes subnormal results to zero (FTZ/DAZ): every bound, zero bounds included,
    also carries the dtype's smallest normal number `tiny`."""
    info = registry.get(op)
    pr = product_roundoff if info.products else 0.0
    fwd, grads = info.error_model(inputs, params, g, dtype, pr)
    eta = UNDERFLOW_OPS * float(np.finfo(np.dtype(dtype)).smallest_subnormal)
    fwd, grads = _with_underflow(fwd, eta), [_with_underflow(b, eta) for b in grads]
    if flush:
        flushed = tiny(dtype)
        fwd = [np.asarray(b) + flushed for b in fwd] if isinstance(fwd, list) else np.asarray(fwd) + flushed
        grads = [np.asarray(b) + flushed for b in grads]
    return fwd, grads


UNDERFLOW_OPS = 64


def _with_underflow(bound, eta):
    return bound if np.isscalar(bound) and bound == 0 else np.asarray(bound) + eta


def _conv_like(fwd, bwd):
    def model(inputs, params, g, dtype, pr=0.0):
        x, w, b = inputs
        groups = params.get("groups", 1)
        k = prod(w.shape[2:])
        # products per element: forward sums C_in/G * k (+ bias); dx sums C_out/G * k; dw and db sum
        # N * prod(out) terms of the other side.
        n_fwd = w.shape[1] * k + 1
        n_dx = (w.shape[0] // groups) * k
        n_dw = g.shape[0] * prod(g.shape[2:])
        n_db = g.shape[0] * prod(g.shape[2:])
        if fwd is R.conv_transpose:  # roles swap: the transposed conv's output is the conv's input
            n_fwd, n_dx = n_dx + 1, w.shape[1] * k
            n_dw = x.shape[0] * prod(x.shape[2:])
        mag = fwd(np.abs(x), np.abs(w), _abs(b), **params)
        dx, dw, db = bwd(np.abs(g), np.abs(x), np.abs(w), _abs(b), **params)
        grads = [_products(n_dx, dtype, pr) * dx, _products(n_dw, dtype, pr) * dw]
        if b is not None:
            grads.append(_both(n_db, dtype) * db)  # a plain sum: no products
        return _products(n_fwd, dtype, pr) * mag, grads

    return model


def _products(n, dtype, pr):
    """The bound's coefficient for n products summed, each factor first rounded with roundoff pr."""
    return _both(n, dtype) + 2 * pr + pr * pr


def linear_model(inputs, params, g, dtype, pr=0.0):
    x, w, b = inputs
    mag = R.linear(np.abs(x), np.abs(w), _abs(b))
    dx, dw, db = R.linear_backward(np.abs(g), np.abs(x), np.abs(w), _abs(b))
    grads = [_products(w.shape[0], dtype, pr) * dx, _products(x.shape[0], dtype, pr) * dw]
    if b is not None:
        grads.append(_both(x.shape[0], dtype) * db)
    return _products(x.shape[1] + 1, dtype, pr) * mag, grads


def max_pool_model(inputs, params, g, dtype, pr=0.0):
    (x,) = inputs
    k = prod(np.broadcast_to(params["kernel_size"], (x.ndim - 2,)))
    # forward selects (exact); the backward adds the gradients of the windows that chose the same
    # input: at most prod(kernel) of them (stride >= 1).
    (dx,) = R.max_pool_backward(np.abs(g), x, **params)
    return 0.0, [_both(k, dtype) * dx]


def avg_pool_model(inputs, params, g, dtype, pr=0.0):
    (x,) = inputs
    k = prod(np.broadcast_to(params["kernel_size"], (x.ndim - 2,)))
    mag = R.avg_pool(np.abs(x), **params)
    (dx,) = R.avg_pool_backward(np.abs(g), x, **params)
    return _both(k + 1, dtype) * mag, [_both(k + 1, dtype) * dx]


def global_avg_pool_model(inputs, params, g, dtype, pr=0.0):
    (x,) = inputs
    n = prod(x.shape[2:])
    # backward: g * (1/n) or g / n, up to two roundings
    return (
        _both(n + 1, dtype) * R.global_avg_pool(np.abs(x)),
        [_both(2, dtype) * R.global_avg_pool_backward(np.abs(g), x)[0]],
    )


def exact_model(inputs, params, g, dtype, pr=0.0):
    """Selection / data movement: forward and backward exact."""
    info_grads = len(inputs)
    return 0.0, [0.0] * info_grads


def add_model(inputs, params, g, dtype, pr=0.0):
    x, y = inputs
    return _both(1, dtype) * (np.abs(x) + np.abs(y)), [0.0, 0.0]


def tiny(dtype) -> float:
    """The smallest normal number: a transcendental result below it may be flushed to zero."""
    return float(np.finfo(np.dtype(dtype)).tiny)


def transcendental_bound(f, dtype):
    """The forward bound of a transcendental value f: C_FN*u*|f| + tiny (a flushed subnormal)."""
    return C_FN * unit_roundoff(dtype) * np.abs(f) + tiny(dtype)


def _from_forward(f, dh, h, dtype):
    """Bound of h(f') - h(f) for a forward f' within transcendental_bound(f), plus three roundings of the
    evaluation of h and the product with g: |dh| e + e^2 + gamma_3 (|h| + |dh| e + e^2)."""
    e = transcendental_bound(f, dtype)
    step = np.abs(dh) * e + e * e
    return step + gamma(3, dtype) * (np.abs(h) + step)


def _derived(f, dh, h, g, dtype):
    """The backward bound of h(f) * g for the backend (dtype) and the float64 reference."""
    return np.abs(g) * (_from_forward(f, dh, h, dtype) + _from_forward(f, dh, h, np.float64))


def sigmoid_model(inputs, params, g, dtype, pr=0.0):
    (x,) = inputs
    s = R.sigmoid(x)  # dx = g * s(1-s), from the backend's own forward s; d/ds s(1-s) = 1 - 2s
    return transcendental_bound(s, dtype), [_derived(s, 1 - 2 * s, s * (1 - s), g, dtype)]


def tanh_model(inputs, params, g, dtype, pr=0.0):
    (x,) = inputs
    t = R.tanh(x)  # dx = g * (1 - t^2), from the backend's own forward t; d/dt (1 - t^2) = -2t
    return transcendental_bound(t, dtype), [_derived(t, -2 * t, 1 - t * t, g, dtype)]


def _shift(z):
    """max_j |z_j - max z| per row: exp amplifies the absolute error of the shifted argument."""
    return z.max(axis=-1, keepdims=True) - z.min(axis=-1, keepdims=True)


def softmax_model(inputs, params, g, dtype, pr=0.0):
    (z,) = inputs
    p = R.softmax(z)
    u = unit_roundoff(dtype)
    rel = u * (C_FN + z.shape[-1] + 2 * _shift(z))
    ag = np.abs(g)
    p_err = rel * p + tiny(dtype)  # a flushed subnormal probability: tiny
    return p_err, [p_err * (ag + (ag * p).sum(axis=-1, keepdims=True)) * 2 + tiny(dtype) * ag]


def cross_entropy_model(inputs, params, g, dtype, pr=0.0):
    z, labels = inputs
    u = unit_roundoff(dtype)
    n, k = z.shape
    m = z.max(axis=1)
    lse = np.log(np.exp(z - m[:, None]).sum(axis=1)) + m
    rel = u * (C_FN + k + n + 2 * _shift(z))
    fwd = (rel[:, 0] * (np.abs(lse) + np.abs(z[np.arange(n), labels]) + np.abs(m))).mean()
    p = R.softmax(z)
    onehot = np.zeros_like(p)
    onehot[np.arange(n), labels] = 1
    return fwd, [(rel * (p + onehot) + tiny(dtype)) * np.abs(np.asarray(g).reshape(())) / n]


conv_model = _conv_like(R.conv, R.conv_backward)
convolve_model = _conv_like(R.convolve, R.convolve_backward)
conv_transpose_model = _conv_like(R.conv_transpose, R.conv_transpose_backward)


# -- batch norm, LRN, dropout, concat ---------------------------------------------------------------
# First-order bounds (Higham's standard model, products of two small terms neglected), charging both the
# backend's working precision and the float64 reference (uu = u + u64), derived in SPEC.md.


def _uu(dtype) -> float:
    return unit_roundoff(dtype) + unit_roundoff(np.float64)


def _bn_parts(x, eps, dtype):
    """Per-channel statistics of x and the first-order errors of computing them: (axes, m, d = x - mu,
    s = sqrt(var + eps), xhat, dmu: error of mu, dxhat: error of xhat, rel_s: relative error of s)."""
    axes = (0,) + tuple(range(2, x.ndim))
    m = x.size // max(x.shape[1], 1)
    uu = _uu(dtype)
    mu = x.mean(axis=axes, keepdims=True)
    d = x - mu
    var = (d * d).mean(axis=axes, keepdims=True)
    s = np.sqrt(var + eps)
    xhat = d / s
    dmu = _both(m, dtype) * np.abs(x).mean(axis=axes, keepdims=True)
    dvar = _both(m + 2, dtype) * var + 2 * np.abs(d).mean(axis=axes, keepdims=True) * dmu
    rel_s = dvar / (2 * (var + eps)) + 3 * uu  # var + eps, sqrt (and a reciprocal, if taken)
    dxhat = (uu * np.abs(d) + dmu) / s + np.abs(xhat) * (rel_s + uu)
    return axes, m, d, s, xhat, dmu, dxhat, rel_s


def _per_channel(v, x):
    return np.asarray(v, dtype=np.float64).reshape((1, -1) + (1,) * (x.ndim - 2))


def batch_norm_model(inputs, params, g, dtype, pr=0.0):
    x, gamma, beta = inputs
    axes, m, d, s, xhat, dmu, dxhat, rel_s = _bn_parts(x, params.get("eps", 1e-5), dtype)
    uu = _uu(dtype)
    ga, ba = np.abs(_per_channel(gamma, x)), np.abs(_per_channel(beta, x))
    fwd = ga * dxhat + 3 * uu * (ga * np.abs(xhat) + ba)
    ag = np.abs(g)
    mean_g = ag.mean(axis=axes, keepdims=True)
    mean_gx = (ag * np.abs(xhat)).mean(axis=axes, keepdims=True)
    bracket = ag + mean_g + np.abs(xhat) * mean_gx  # |g - mean g - xhat mean(g xhat)|, term by term
    gm = _both(m, dtype)
    err_bracket = (
        gm * mean_g
        + np.abs(xhat) * (gm * mean_gx + (ag * dxhat).mean(axis=axes, keepdims=True))
        + dxhat * mean_gx
        + 3 * uu * bracket
    )
    dx = ga / s * (err_bracket + bracket * (rel_s + 2 * uu))
    dgamma = (gm + uu) * (ag * np.abs(xhat)).sum(axis=axes) + (ag * dxhat).sum(axis=axes)
    dbeta = gm * ag.sum(axis=axes)
    return fwd, [dx, dgamma, dbeta]


def batch_norm_inference_model(inputs, params, g, dtype, pr=0.0):
    x, gamma, beta, mean, var = inputs
    axes = (0,) + tuple(range(2, x.ndim))
    m = x.size // max(x.shape[1], 1)
    s = np.sqrt(_per_channel(var, x) + params.get("eps", 1e-5))
    ga = np.abs(_per_channel(gamma, x))
    # (x - mean) / s * gamma + beta, or folded as x * (gamma / s) + (beta - mean * gamma / s): 6 roundings
    # relative to the terms' magnitudes
    mag = ga * (np.abs(x) + np.abs(_per_channel(mean, x))) / s
    fwd = _both(6, dtype) * (mag + np.abs(_per_channel(beta, x)))
    ag = np.abs(g)
    dx = _both(4, dtype) * ag * ga / s
    dgamma = _both(m + 6, dtype) * (ag * (np.abs(x) + np.abs(_per_channel(mean, x))) / s).sum(axis=axes)
    dbeta = _both(m, dtype) * ag.sum(axis=axes)
    return fwd, [dx, dgamma, dbeta]


def batch_norm_running_stats_model(inputs, params, g, dtype, pr=0.0):
    running_mean, running_var, x = inputs
    mom = params.get("momentum", 0.1)
    axes = (0,) + tuple(range(2, x.ndim))
    m = x.size // max(x.shape[1], 1)
    mu = x.mean(axis=axes)
    d = x - x.mean(axis=axes, keepdims=True)
    dmu = _both(m, dtype) * np.abs(x).mean(axis=axes)
    var_u = (d * d).sum(axis=axes) / (m - 1)
    dvar_u = (_both(m + 2, dtype) * (d * d).sum(axis=axes) + 2 * np.abs(d).sum(axis=axes) * dmu) / (m - 1)
    mean_b = mom * dmu + _both(4, dtype) * ((1 - mom) * np.abs(running_mean) + mom * np.abs(mu))
    var_b = mom * dvar_u + _both(5, dtype) * ((1 - mom) * np.abs(running_var) + mom * var_u)
    return [mean_b, var_b], []


def _channel_sums(v, before, after):
    """out[:, c] = sum of v[:, j] for j in c - before .. c + after (clipped)."""
    out = np.zeros_like(v)
    for c in range(v.shape[1]):
        out[:, c] = v[:, max(0, c - before) : c + after + 1].sum(axis=1)
    return out


def local_response_norm_model(inputs, params, g, dtype, pr=0.0):
    (x,) = inputs
    size, alpha = params["size"], params.get("alpha", 1e-4)
    beta, k = params.get("beta", 0.75), params.get("k", 2.0)
    uu = _uu(dtype)
    sq = _channel_sums(x * x, size // 2, (size - 1) // 2)  # the window W(c) of the spec
    D = k + alpha * sq
    rel_D = alpha * sq * (_both(size, dtype) + 3 * uu) / D + uu  # squares, sum, * alpha, + k
    fwd = np.abs(x) * D**-beta * (beta * rel_D + (C_FN + 1) * unit_roundoff(dtype) + uu)
    ag = np.abs(g)
    # dx_c = g_c D_c^-beta - 2 alpha beta x_c sum_{j: c in W(j)} g_j x_j D_j^(-beta-1), term by term
    cross = _channel_sums(ag * np.abs(x) * D ** (-beta - 1), (size - 1) // 2, size // 2)
    mag = ag * D**-beta + 2 * alpha * beta * np.abs(x) * cross
    rel = (beta + 1) * float(rel_D.max(initial=0.0)) + (C_FN + size + 4) * uu
    return fwd, [mag * rel]


def dropout_model(inputs, params, g, dtype, pr=0.0):
    x, keep = inputs
    # x * keep is exact (keep is 0 or 1); the scale 1 / (1 - p) and its product: three roundings
    scale = 1 / (1 - params["p"])
    return _both(3, dtype) * np.abs(x) * keep * scale, [_both(3, dtype) * np.abs(g) * keep * scale]


def concat_model(inputs, params, g, dtype, pr=0.0):
    (xs,) = inputs
    return 0.0, [0.0] * len(xs)  # data movement: exact
