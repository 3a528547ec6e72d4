"""flatten: (N, *rest) -> (N, prod(rest)) in row-major (C-order) order.

The literal definition (`flatten_literal`, `flatten_backward_literal`: a loop over the elements) comes
first; `flatten` and `flatten_backward` are its vectorised form, proven equal by
tests/test_reference_literal.py."""

from __future__ import annotations

import numpy as np

from ._params import as_array, grid, row_major
from .conv import check_grad

# --- the literal definition ------------------------------------------------------------------------


def flatten_literal(x):
    """y[n, row_major(r)] = x[n, r] for every index r of the non-batch axes."""
    x = as_array("x", x, min_ndim=1)
    rest = x.shape[1:]
    y = np.empty((x.shape[0], int(np.prod(rest))), dtype=x.dtype)
    for n in range(x.shape[0]):
        for r in grid(rest):
            y[n, row_major(r, rest)] = x[(n,) + r]
    return y


def flatten_backward_literal(grad_out, x):
    """dx[n, r] = g[n, row_major(r)]: each element's gradient back at its place. -> (dx,)."""
    x = as_array("x", x, min_ndim=1)
    rest = x.shape[1:]
    g = check_grad("grad_out", grad_out, (x.shape[0], int(np.prod(rest))))
    dx = np.empty(x.shape, dtype=g.dtype)
    for n in range(x.shape[0]):
        for r in grid(rest):
            dx[(n,) + r] = g[n, row_major(r, rest)]
    return (dx,)


# --- the vectorised form ---------------------------------------------------------------------------


# The vectorised form of flatten_literal; tests/test_reference_literal.py proves the two equal.
def flatten(x):
    x = as_array("x", x, min_ndim=1)
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))


# The vectorised form of flatten_backward_literal; tests/test_reference_literal.py proves the two equal.
def flatten_backward(grad_out, x):
    """-> (dx,): the gradient reshaped back."""
    x = as_array("x", x, min_ndim=1)
    g = check_grad("grad_out", grad_out, (x.shape[0], int(np.prod(x.shape[1:]))))
    return (g.reshape(x.shape),)
