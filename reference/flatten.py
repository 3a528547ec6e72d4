"""flatten: (N, *rest) -> (N, prod(rest)) in row-major (C-order) order."""
from __future__ import annotations

from ._params import as_array
from .conv import check_grad


def flatten(x):
    x = as_array("x", x, min_ndim=1)
    return x.reshape(x.shape[0], -1)


def flatten_backward(grad_out, x):
    """-> (dx,): the gradient reshaped back."""
    x = as_array("x", x, min_ndim=1)
    g = check_grad("grad_out", grad_out, (x.shape[0], x[0].size if x.shape[0] else 0))
    return (g.reshape(x.shape),)
