"""tanh(x); derivative 1 - tanh(x)^2. Float only.

The literal definition (`tanh_literal`, `tanh_backward_literal`: a loop over the elements) comes first;
`tanh` and `tanh_backward` are its vectorised form, proven equal by tests/test_reference_literal.py."""

from __future__ import annotations

import numpy as np

from ._params import grid
from .conv import check_grad
from .sigmoid import _float

# --- the literal definition ------------------------------------------------------------------------


def tanh_literal(x):
    """t = (1 - exp(-2x)) / (1 + exp(-2x)) for x >= 0 and tanh(-x) = -tanh(x), element by element; written
    with e = expm1(-2|x|) = exp(-2|x|) - 1 as -e / (2 + e), so that small |x| keeps its digits."""
    x = _float("x", x)
    t = np.empty(x.shape, dtype=x.dtype)
    for p in grid(x.shape):
        e = np.expm1(-2 * abs(x[p]))
        t[p] = np.copysign(-e / (2 + e), x[p])
    return t


def tanh_backward_literal(grad_out, x):
    """dx = g * (1 - t^2), t = tanh(x). -> (dx,)."""
    t = tanh_literal(x)
    g = check_grad("grad_out", grad_out, t.shape)
    dx = np.empty(t.shape, dtype=np.result_type(g, t))
    for p in grid(t.shape):
        dx[p] = g[p] * (1 - t[p] * t[p])
    return (dx,)


# --- the vectorised form ---------------------------------------------------------------------------


# The vectorised form of tanh_literal; tests/test_reference_literal.py proves the two equal.
def tanh(x):
    return np.tanh(_float("x", x))


# The vectorised form of tanh_backward_literal; tests/test_reference_literal.py proves the two equal.
def tanh_backward(grad_out, x):
    """-> (dx,)."""
    t = tanh(x)
    g = check_grad("grad_out", grad_out, t.shape)
    return (g * (1 - t * t),)
