"""linear (fully connected): y[n, o] = b[o] + sum_i x[n, i] * w[o, i].  x: (N, in), w: (out, in).

The literal definition (`linear_literal`, `linear_backward_literal`: loops over the outputs and the
features) comes first; `linear` and `linear_backward` are its vectorised form, proven equal by
tests/test_reference_literal.py."""

from __future__ import annotations

from itertools import product

import numpy as np

from ._params import as_array, check_work, zero_like
from .conv import _zero, check_grad
from .errors import ShapeError


def _inputs(x, w, b):
    x = as_array("x", x, ndim=2)
    w = as_array("w", w, ndim=2)
    if x.shape[1] != w.shape[1]:
        raise ShapeError(
            "x",
            f"feature mismatch: x has {x.shape[1]} features but w expects {w.shape[1]} (w is (out, in) = {w.shape})",
        )
    if b is not None:
        b = as_array("b", b, ndim=1)
        if b.shape != (w.shape[0],):
            raise ShapeError("b", f"must have shape (out,) = ({w.shape[0]},), got {b.shape}")
    check_work("w", {"output (N, out)": x.shape[0] * w.shape[0]})
    return x, w, b


# --- the literal definition ------------------------------------------------------------------------


def linear_literal(x, w, b=None):
    """y[n, o] = b[o] + sum_i x[n, i] * w[o, i]"""
    x, w, b = _inputs(x, w, b)
    (n_batch, n_in), n_out = x.shape, w.shape[0]
    y = np.empty((n_batch, n_out), dtype=np.result_type(*[a for a in (x, w, b) if a is not None]))
    for n, o in product(range(n_batch), range(n_out)):
        total = _zero(x, w)
        for i in range(n_in):
            total += x[n, i] * w[o, i]
        y[n, o] = total if b is None else total + b[o]
    return y


def linear_backward_literal(grad_out, x, w, b=None):
    """The gradient of linear_literal, product by product: g[n, o] flows back through every x[n, i] * w[o, i]:

        dx[n, i] += g[n, o] * w[o, i],    dw[o, i] += g[n, o] * x[n, i],    db[o] += g[n, o]

    -> (dx, dw, db); db is None when b is None."""
    x, w, b = _inputs(x, w, b)
    (n_batch, n_in), n_out = x.shape, w.shape[0]
    g = check_grad("grad_out", grad_out, (n_batch, n_out))
    dx = np.full(x.shape, _zero(g, w), dtype=np.result_type(g, w))
    dw = np.full(w.shape, _zero(g, x), dtype=np.result_type(g, x))
    db = None if b is None else np.full(b.shape, zero_like(g), dtype=g.dtype)
    for n, o in product(range(n_batch), range(n_out)):
        for i in range(n_in):
            dx[n, i] += g[n, o] * w[o, i]
            dw[o, i] += g[n, o] * x[n, i]
        if db is not None:
            db[o] += g[n, o]
    return dx, dw, db


# --- the vectorised form ---------------------------------------------------------------------------


# The vectorised form of linear_literal; tests/test_reference_literal.py proves the two equal.
def linear(x, w, b=None):
    x, w, b = _inputs(x, w, b)
    y = x @ w.T
    return y if b is None else y + b


# The vectorised form of linear_backward_literal; tests/test_reference_literal.py proves the two equal.
def linear_backward(grad_out, x, w, b=None):
    """-> (dx, dw, db): dx = g w, dw = g^T x, db = sum_n g."""
    x, w, b = _inputs(x, w, b)
    g = check_grad("grad_out", grad_out, (x.shape[0], w.shape[0]))
    return g @ w, g.T @ x, None if b is None else g.sum(axis=0)
