"""sigmoid(x) = 1 / (1 + exp(-x)); derivative s * (1 - s). Float only."""
from __future__ import annotations

import numpy as np

from ._params import as_array
from .conv import check_grad
from .errors import DTypeError


def _float(name, x):
    x = as_array(name, x)
    if x.dtype == object:
        raise DTypeError(name, "transcendental ops are evaluated in floating point; Fraction arrays are not supported")
    return x


def sigmoid(x):
    x = _float("x", x)
    # the two algebraically equal forms, each where exp cannot overflow
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(grad_out, x):
    """-> (dx,)."""
    s = sigmoid(x)
    g = check_grad("grad_out", grad_out, s.shape)
    return (g * s * (1 - s),)
