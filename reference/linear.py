"""linear (fully connected): y[n, o] = b[o] + sum_i x[n, i] * w[o, i].  x: (N, in), w: (out, in)."""
from __future__ import annotations

from ._params import as_array
from .conv import check_grad
from .errors import ShapeError


def _inputs(x, w, b):
    x = as_array("x", x, ndim=2)
    w = as_array("w", w, ndim=2)
    if x.shape[1] != w.shape[1]:
        raise ShapeError("x", f"feature mismatch: x has {x.shape[1]} features but w expects {w.shape[1]} (w is (out, in) = {w.shape})")
    if b is not None:
        b = as_array("b", b, ndim=1)
        if b.shape != (w.shape[0],):
            raise ShapeError("b", f"must have shape (out,) = ({w.shape[0]},), got {b.shape}")
    return x, w, b


def linear(x, w, b=None):
    x, w, b = _inputs(x, w, b)
    y = x @ w.T
    return y if b is None else y + b


def linear_backward(grad_out, x, w, b=None):
    """-> (dx, dw, db): dx = g w, dw = g^T x, db = sum_n g."""
    x, w, b = _inputs(x, w, b)
    g = check_grad("grad_out", grad_out, (x.shape[0], w.shape[0]))
    return g @ w, g.T @ x, None if b is None else g.sum(axis=0)
