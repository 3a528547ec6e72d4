"""relu(x) = max(x, 0); derivative 1 where x > 0 and 0 where x <= 0 (0 at 0, by the spec's choice).
relu(-inf) = 0 and relu(-0.0) = +0.0; NaN propagates forward; its gradient is 0 (NaN > 0 is false).

The literal definition (`relu_literal`, `relu_backward_literal`: a loop over the elements) comes first;
`relu` and `relu_backward` are its vectorised form, proven equal by tests/test_reference_literal.py."""

from __future__ import annotations

import numpy as np

from ._params import as_array, grid, zero_like
from .conv import check_grad

# --- the literal definition ------------------------------------------------------------------------


def relu_literal(x):
    """y = max(x, 0), element by element; NaN passes through."""
    x = as_array("x", x)
    y = np.empty(x.shape, dtype=x.dtype)
    for p in grid(x.shape):
        v = x[p]
        y[p] = v if v > 0 or v != v else zero_like(x)  # v != v: NaN
    return y


def relu_backward_literal(grad_out, x):
    """dx = g where x > 0, else 0 (0 at 0, and at NaN). -> (dx,)."""
    x = as_array("x", x)
    g = check_grad("grad_out", grad_out, x.shape)
    dx = np.empty(g.shape, dtype=g.dtype)
    for p in grid(x.shape):
        dx[p] = g[p] if x[p] > 0 else zero_like(g)
    return (dx,)


# --- the vectorised form ---------------------------------------------------------------------------


# The vectorised form of relu_literal; tests/test_reference_literal.py proves the two equal.
def relu(x):
    x = as_array("x", x)
    return np.where((x > 0) | (x != x), x, zero_like(x))  # x != x: NaN passes through


# The vectorised form of relu_backward_literal; tests/test_reference_literal.py proves the two equal.
def relu_backward(grad_out, x):
    """-> (dx,)."""
    x = as_array("x", x)
    g = check_grad("grad_out", grad_out, x.shape)
    return (np.where(x > 0, g, zero_like(g)),)
