"""relu(x) = max(x, 0); derivative 1 where x > 0 and 0 where x <= 0 (0 at 0, by the spec's choice).
relu(-inf) = 0 and relu(-0.0) = +0.0; NaN propagates forward; its gradient is 0 (NaN > 0 is false)."""
from __future__ import annotations

import numpy as np

from ._params import as_array, zero_like
from .conv import check_grad


def relu(x):
    x = as_array("x", x)
    return np.where((x > 0) | (x != x), x, zero_like(x))  # x != x: NaN passes through


def relu_backward(grad_out, x):
    """-> (dx,)."""
    x = as_array("x", x)
    g = check_grad("grad_out", grad_out, x.shape)
    return (np.where(x > 0, g, zero_like(g)),)
