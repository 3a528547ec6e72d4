"""add: the residual connection G(x) = F(x) + x. Both inputs must have the same shape (no broadcasting:
a residual that silently broadcasts is a bug).

The literal definition (`add_literal`, `add_backward_literal`: a loop over the elements) comes first;
`add` and `add_backward` are its vectorised form, proven equal by tests/test_reference_literal.py."""

from __future__ import annotations

import numpy as np

from ._params import as_array, grid
from .conv import check_grad
from .errors import ShapeError


def _inputs(x, y):
    x, y = as_array("x", x), as_array("y", y)
    if x.shape != y.shape:
        raise ShapeError("y", f"must have the shape of x {x.shape} (no broadcasting), got {y.shape}")
    return x, y


# --- the literal definition ------------------------------------------------------------------------


def add_literal(x, y):
    """z[p] = x[p] + y[p] at every index p."""
    x, y = _inputs(x, y)
    z = np.empty(x.shape, dtype=np.result_type(x, y))
    for p in grid(x.shape):
        z[p] = x[p] + y[p]
    return z


def add_backward_literal(grad_out, x, y):
    """dx[p] = dy[p] = g[p]: the sum passes its gradient to both branches. -> (dx, dy)."""
    x, y = _inputs(x, y)
    g = check_grad("grad_out", grad_out, x.shape)
    dx, dy = np.empty(g.shape, dtype=g.dtype), np.empty(g.shape, dtype=g.dtype)
    for p in grid(g.shape):
        dx[p] = dy[p] = g[p]
    return dx, dy


# --- the vectorised form ---------------------------------------------------------------------------


# The vectorised form of add_literal; tests/test_reference_literal.py proves the two equal.
def add(x, y):
    x, y = _inputs(x, y)
    return x + y


# The vectorised form of add_backward_literal; tests/test_reference_literal.py proves the two equal.
def add_backward(grad_out, x, y):
    """-> (dx, dy): the gradient flows unchanged into both branches."""
    x, y = _inputs(x, y)
    g = check_grad("grad_out", grad_out, x.shape)
    return g, g.copy()
