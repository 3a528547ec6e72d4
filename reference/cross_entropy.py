"""cross_entropy(logits, labels) = mean_n [ logsumexp(z_n) - z_n[label_n] ]  (softmax fused in).

logits: (N, K) float; labels: (N,) ints in [0, K). Backward: dz = (softmax(z) - onehot(labels)) / N,
scaled by the incoming scalar gradient. labels are not differentiable."""
from __future__ import annotations

import numpy as np

from ._params import as_array
from .errors import DTypeError, ParameterError, ShapeError
from .sigmoid import _float
from .softmax import softmax


def _inputs(logits, labels):
    z = _float("logits", logits)
    if z.ndim != 2:
        raise ShapeError("logits", f"must be (N, K), got shape {z.shape}")
    if z.shape[0] == 0 or z.shape[1] == 0:
        raise ShapeError("logits", f"needs N >= 1 and K >= 1 (the loss is a mean over the batch), got shape {z.shape}")
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise DTypeError("labels", f"must be integers, got dtype {y.dtype}")
    if y.shape != (z.shape[0],):
        raise ShapeError("labels", f"must have shape (N,) = ({z.shape[0]},), got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= z.shape[1]):
        raise ParameterError("labels", f"must lie in [0, K) = [0, {z.shape[1]}), got values in [{y.min()}, {y.max()}]")
    return z, y


def cross_entropy(logits, labels):
    z, y = _inputs(logits, labels)
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    return (lse - z[np.arange(z.shape[0]), y]).mean()


def cross_entropy_backward(grad_out, logits, labels):
    """-> (dlogits,)."""
    z, y = _inputs(logits, labels)
    g = as_array("grad_out", grad_out)
    if g.size != 1:
        raise ShapeError("grad_out", f"must be a scalar (the loss is a scalar), got shape {g.shape}")
    p = softmax(z)
    p[np.arange(z.shape[0]), y] -= 1
    return (p * (g.reshape(()) / z.shape[0]),)
