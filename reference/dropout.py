"""dropout: inverted dropout with an explicit keep mask (Srivastava et al. 2014; AlexNet used p = 0.5).

    y = x * keep / (1 - p)

keep is an array of x's shape holding only 0 and 1 (bool or numbers; 1 = keep), drawn by the caller from
Bernoulli(1 - p): the spec takes the mask as an input so the op is deterministic and checkable. The kept
values are scaled by 1/(1 - p) during training, so that inference is the identity (PyTorch, ONNX and
TensorFlow all scale this way). p is the probability of DROPPING, a real number in [0, 1); p = 1 is an
error (everything dropped and 1/(1 - p) divides by zero).

The product is the IEEE product: a dropped NaN or infinity gives NaN (0 * NaN), as PyTorch's and ONNX's
`x * mask * scale`. Backward: dx = g * keep / (1 - p); keep and p are not differentiable.

Rational: exact on Fraction arrays (p is then read as the Fraction it equals). Each op comes twice:
`<op>_literal`, explicit loops that read like the formula, then the vectorised public `<op>`.
"""

from __future__ import annotations

import numpy as np

from ._params import as_array
from .batch_norm import real_param, scalar_for
from .conv import check_grad
from .errors import DTypeError, ParameterError, ShapeError


def _keep(keep, shape) -> np.ndarray:
    try:
        k = np.asarray(keep)
    except ValueError as exc:
        raise ShapeError("keep", f"must be a rectangular array; got a ragged nested sequence ({exc})") from None
    if k.dtype.kind not in "biufO":
        raise DTypeError("keep", f"must be a 0/1 mask (bool or numbers), got dtype {k.dtype}")
    if k.shape != tuple(shape):
        raise ShapeError("keep", f"must have x's shape {tuple(shape)} (one keep flag per element), got {k.shape}")
    if k.dtype.kind != "b":
        bad = [v for v in k.flat if isinstance(v, (bool, np.bool_)) or not (v == 0 or v == 1)]
        if bad:
            raise ParameterError("keep", f"must hold only 0 and 1 (1 = keep), found {bad[0]!r}")
    return k


def _inputs(x, keep, p):
    x = as_array("x", x)
    k = _keep(keep, x.shape)
    p = real_param("p", p, minimum=0, maximum=1, max_open=True)
    zero, one = (0, 1) if x.dtype == object else (x.dtype.type(0), x.dtype.type(1))
    k = np.where(k.astype(bool), one, zero).astype(x.dtype)
    return x, k, scalar_for(x, p)


# --------------------------------------------------------------------------------------- literal forms


def dropout_literal(x, keep, *, p):
    x, keep, p = _inputs(x, keep, p)
    y = np.empty(x.shape, dtype=x.dtype)
    for idx in np.ndindex(x.shape):
        y[idx] = x[idx] * keep[idx] / (1 - p)
    return y


def dropout_backward_literal(grad_out, x, keep, *, p):
    x, keep, p = _inputs(x, keep, p)
    g = check_grad("grad_out", grad_out, x.shape)
    dx = np.empty(x.shape, dtype=np.result_type(g, x))
    for idx in np.ndindex(x.shape):
        dx[idx] = g[idx] * keep[idx] / (1 - p)
    return (dx,)


# --------------------------------------------------------------------------------------- public forms


def dropout(x, keep, *, p):
    x, keep, p = _inputs(x, keep, p)
    return x * keep / (1 - p)


def dropout_backward(grad_out, x, keep, *, p):
    """-> (dx,): dx = g * keep / (1 - p). keep (a mask) is not differentiable."""
    x, keep, p = _inputs(x, keep, p)
    g = check_grad("grad_out", grad_out, x.shape)
    return (g * keep / (1 - p),)
