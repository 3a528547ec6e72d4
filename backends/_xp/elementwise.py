"""Activations, losses and the dense layer, generic over the array module `xp`; all in the input dtype."""

from __future__ import annotations

from .arrays import errstate


def relu(xp, x):
    # max(x, 0): NaN propagates (maximum returns the NaN operand); -inf -> 0
    return xp.maximum(x, x.dtype.type(0))


def relu_backward(xp, g, x):
    # derivative 1 where x > 0, 0 elsewhere (0 at 0; NaN > 0 is false)
    return xp.where(x > 0, g, xp.zeros((), dtype=g.dtype))


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


def linear(xp, x, w, b):
    y = x @ w.T
    if b is not None:
        y += b
    return y


def linear_backward(xp, g, x, w, want_db):
    return g @ w, g.T @ x, (g.sum(axis=0) if want_db else None)
