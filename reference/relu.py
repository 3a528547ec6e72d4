"""relu(x) = max(x, 0); derivative 1 where x > 0 and 0 where x <= 0 (0 at 0, by the spec's choice).
NaN propagates forward; its gradient is 0 (NaN > 0 is false)."""
from __future__ import annotations

import numpy as np

from ._params import as_array
from .conv import check_grad


def relu(x):
    x = as_array("x", x)
    return np.where(x > 0, x, x * 0)  # x * 0 keeps NaN (NaN * 0 = NaN) and the number system


def relu_backward(grad_out, x):
    """-> (dx,)."""
    x = as_array("x", x)
    g = check_grad("grad_out", grad_out, x.shape)
    return (np.where(x > 0, g, g * 0),)
