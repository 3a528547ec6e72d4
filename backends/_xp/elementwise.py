"""Activations, losses and the dense layer, generic over the array module `xp`; all in the input dtype."""

from __future__ import annotations

from . import conv as _conv
from .arrays import errstate, where_zero


def relu(xp, x):
    # max(x, 0): NaN propagates (maximum returns the NaN operand); -inf -> 0
    return xp.maximum(x, x.dtype.type(0))


def relu_backward(xp, g, x):
    # derivative 1 where x > 0, 0 elsewhere (0 at 0; NaN > 0 is false): g's bits where x > 0, else +0
    return where_zero(xp, lambda m: xp.greater(x, 0, out=m), g)


def _sigmoid_parts(xp, x):
    """e = exp(-|x|) (never overflows) and d = 1 + e: sigmoid is 1/d for x >= 0 and e/d below."""
    e = xp.exp(-xp.abs(x))
    return e, 1 + e


def sigmoid(xp, x):
    e, d = _sigmoid_parts(xp, x)
    return xp.where(x >= 0, 1 / d, e / d)


def sigmoid_backward(xp, g, x):
    # s * (1 - s) = e / (1 + e)^2 on both sides of 0, with e = exp(-|x|): no cancellation in 1 - s
    e, d = _sigmoid_parts(xp, x)
    return g * (e / (d * d))


def tanh(xp, x):
    return xp.tanh(x)


def tanh_backward(xp, g, x):
    t = xp.tanh(x)
    return g * (1 - t * t)


def softmax(xp, z):
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def softmax_backward(xp, g, z):
    p = softmax(xp, z)
    return p * (g - (g * p).sum(axis=-1, keepdims=True))


def cross_entropy(xp, z, labels):
    """mean_n [ logsumexp(z_n) - z_n[label_n] ]."""
    m = z.max(axis=1, keepdims=True)
    with errstate(xp):
        lse = xp.log(xp.exp(z - m).sum(axis=1)) + m[:, 0]
    picked = z[xp.arange(z.shape[0]), labels]
    return (lse - picked).mean()


def cross_entropy_backward(xp, g, z, labels):
    p = softmax(xp, z)
    p[xp.arange(z.shape[0]), labels] -= 1
    p *= g.reshape(()).astype(z.dtype) / z.dtype.type(z.shape[0])
    return p


# OpenBLAS runs a product on its threads once m*n*k exceeds 4 * 65536 (interface/gemm.c): on a machine
# whose other core is busy its worker wakes late and the call stalls (LeNet's 400-120 layer at batch 64:
# 73x torch's time under load). Above that size the products run through conv's mm() with the BLAS on
# one thread (fixed blocks, shared with the pool's helper when one is free: deterministic).
BLAS_THREADED_MNK = 4 * 65536


def _products(xp, pairs):
    """[a @ b for a, b in pairs], the large ones through mm() with the BLAS on one thread."""
    big = [a.shape[0] * a.shape[1] * b.shape[1] > BLAS_THREADED_MNK for a, b in pairs]
    if not any(big):
        return [a @ b for a, b in pairs]
    with _conv.blas_split(xp):
        return [_conv.mm(xp, a, b) if large else a @ b for (a, b), large in zip(pairs, big)]


def linear(xp, x, w, b):
    (y,) = _products(xp, [(x, w.T)])
    if b is not None:
        y += b
    return y


def linear_backward(xp, g, x, w, want_db):
    dx, dw = _products(xp, [(g, w), (g.T, x)])
    return dx, dw, (g.sum(axis=0) if want_db else None)
