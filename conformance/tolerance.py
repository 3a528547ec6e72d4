"""Principled error bounds: how far a correct floating-point backend may be from the exact result.

For an output that sums n products, a backend accumulating in working precision u is within
(Higham, *Accuracy and Stability of Numerical Algorithms*, Lemma 3.1 and eq. 3.5)

    |computed - exact| <= gamma_n * (|x| conv |w|),     gamma_n = n*u / (1 - n*u),

in any summation order. The magnitude term is computed by running the reference on |x| and |w| (and
|b|, |g|). The reference computes in float64 with the same kind of error, so the bound charges both:
gamma_n(u_dtype) + gamma_n(u_float64). Ops that only select or move values (max-pool forward, relu,
flatten, k-max) get a bound of 0; index outputs must match exactly.

Transcendental ops (sigmoid, tanh, softmax, cross_entropy) have no summation bound; their bound is
C_FN * u relative to the value, with C_FN = 8 ulps covering the libraries' documented accuracy of
exp/log/tanh (glibc, SLEEF, CUDA: <= 4 ulps) plus the few roundings of the formula; where the formula
evaluates 1 - s from a rounded s (the backward of sigmoid and tanh, the softmax shift z - max z), the
absolute error of that step is charged, not a relative one.
"""
from __future__ import annotations

from math import prod

import numpy as np

from convspec import reference as R

from . import registry

C_FN = 8


def unit_roundoff(dtype) -> float:
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def gamma(n: int, dtype) -> float:
    nu = n * unit_roundoff(dtype)
    return nu / (1 - nu) if nu < 1 else np.inf


def _both(n, dtype):
    return gamma(n, dtype) + gamma(n, np.float64)


def _abs(a):
    return None if a is None else np.abs(a)


def bounds(op: str, inputs: list, params: dict, g: np.ndarray, dtype: str, product_roundoff: float = 0.0):
    """(forward bound, [bound per gradient]) for float64 inputs `inputs` and incoming gradient g, from
    the op's error model in the registry.

    product_roundoff: a mixed-precision tier that rounds both factors of each product of the
    convolutions and matrix products (registry flag `products`) to a narrower format first (TF32:
    10-bit mantissas, u = 2**-11) adds (2u + u^2) * (|x| conv |w|): each product is then off by that
    much relative.

    With gradual underflow every operation may also add an absolute error of half the smallest
    subnormal (Higham eq. 2.8: fl(x op y) = (x op y)(1 + d) + e, |e| <= eta/2); a non-zero bound is
    charged UNDERFLOW_OPS of those (results far below the subnormal range round to 0 or a subnormal)."""
    info = registry.get(op)
    pr = product_roundoff if info.products else 0.0
    fwd, grads = info.error_model(inputs, params, g, dtype, pr)
    eta = UNDERFLOW_OPS * float(np.finfo(np.dtype(dtype)).smallest_subnormal)
    return _with_underflow(fwd, eta), [_with_underflow(b, eta) for b in grads]


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
    return _both(n + 1, dtype) * R.global_avg_pool(np.abs(x)), [_both(2, dtype) * R.global_avg_pool_backward(np.abs(g), x)[0]]


def exact_model(inputs, params, g, dtype, pr=0.0):
    """Selection / data movement: forward and backward exact."""
    info_grads = len(inputs)
    return 0.0, [0.0] * info_grads


def add_model(inputs, params, g, dtype, pr=0.0):
    x, y = inputs
    return _both(1, dtype) * (np.abs(x) + np.abs(y)), [0.0, 0.0]


def sigmoid_model(inputs, params, g, dtype, pr=0.0):
    (x,) = inputs
    s = R.sigmoid(x)
    u = unit_roundoff(dtype)
    return C_FN * u * s, [C_FN * u * np.abs(g) * s]


def tanh_model(inputs, params, g, dtype, pr=0.0):
    (x,) = inputs
    t = np.abs(R.tanh(x))
    u = unit_roundoff(dtype)
    return C_FN * u * t, [C_FN * u * np.abs(g) * np.maximum(t * t, 1 - t * t) + 2 * u * np.abs(g)]


def _shift(z):
    """max_j |z_j - max z| per row: exp amplifies the absolute error of the shifted argument."""
    return (z.max(axis=-1, keepdims=True) - z.min(axis=-1, keepdims=True))


def softmax_model(inputs, params, g, dtype, pr=0.0):
    (z,) = inputs
    p = R.softmax(z)
    u = unit_roundoff(dtype)
    rel = u * (C_FN + z.shape[-1] + 2 * _shift(z))
    ag = np.abs(g)
    return rel * p, [rel * p * (ag + (ag * p).sum(axis=-1, keepdims=True)) * 2]


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
    return fwd, [rel * (p + onehot) * np.abs(np.asarray(g).reshape(())) / n]


conv_model = _conv_like(R.conv, R.conv_backward)
convolve_model = _conv_like(R.convolve, R.convolve_backward)
conv_transpose_model = _conv_like(R.conv_transpose, R.conv_transpose_backward)
