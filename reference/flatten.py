"""flatten: (N, *rest) -> (N, prod(rest)) in row-major (C-order) order."""
from __future__ import annotations

import numpy as np

from ._params import as_array
from .conv import check_grad


def flatten(x):
    x = as_array("x", x, min_ndim=1)
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))


def flatten_backward(grad_out, x):
    """-> (dx,): the gradient reshaped back."""
    x = as_array("x", x, min_ndim=1)
    g = check_grad("grad_out", grad_out, (x.shape[0], int(np.prod(x.shape[1:]))))
    return (g.reshape(x.shape),)
