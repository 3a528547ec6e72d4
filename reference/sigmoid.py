"""sigmoid(x) = 1 / (1 + exp(-x)); derivative s * (1 - s). Float only.

The literal definition (`sigmoid_literal`, `sigmoid_backward_literal`: a loop over the elements) comes
first; `sigmoid` and `sigmoid_backward` are its vectorised form, proven equal by
tests/test_reference_literal.py."""

from __future__ import annotations

import numpy as np

from ._params import as_array, grid
from .conv import check_grad
from .errors import DTypeError

# --- the literal definition ------------------------------------------------------------------------


def sigmoid_literal(x):
    """s = 1 / (1 + exp(-x)), element by element; for x < 0 written exp(x) / (1 + exp(x)), the same value,
    so that exp never overflows."""
    x = _float("x", x)
    s = np.empty(x.shape, dtype=x.dtype)
    for p in grid(x.shape):
        v = x[p]
        s[p] = 1 / (1 + np.exp(-v)) if v >= 0 else np.exp(v) / (1 + np.exp(v))
    return s


def sigmoid_backward_literal(grad_out, x):
    """dx = g * s * (1 - s), s = sigmoid(x). -> (dx,)."""
    s = sigmoid_literal(x)
    g = check_grad("grad_out", grad_out, s.shape)
    dx = np.empty(s.shape, dtype=np.result_type(g, s))
    for p in grid(s.shape):
        dx[p] = g[p] * s[p] * (1 - s[p])
    return (dx,)


# --- the vectorised form ---------------------------------------------------------------------------


def _float(name, x):
    x = as_array(name, x)
    if x.dtype == object:
        raise DTypeError(name, "transcendental ops are evaluated in floating point; Fraction arrays are not supported")
    return x


# The vectorised form of sigmoid_literal; tests/test_reference_literal.py proves the two equal.
def sigmoid(x):
    x = _float("x", x)
    # the two algebraically equal forms, each where exp cannot overflow
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


# The vectorised form of sigmoid_backward_literal; tests/test_reference_literal.py proves the two equal.
def sigmoid_backward(grad_out, x):
    """-> (dx,)."""
    s = sigmoid(x)
    g = check_grad("grad_out", grad_out, s.shape)
    return (g * s * (1 - s),)
