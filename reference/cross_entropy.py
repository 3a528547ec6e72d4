"""cross_entropy(logits, labels) = mean_n [ logsumexp(z_n) - z_n[label_n] ]  (softmax fused in).

logits: (N, K) float; labels: (N,) ints in [0, K). Backward: dz = (softmax(z) - onehot(labels)) / N,
scaled by the incoming scalar gradient. labels are not differentiable.

The literal definition (`cross_entropy_literal`, `cross_entropy_backward_literal`: loops over the
samples and the classes) comes first; `cross_entropy` and `cross_entropy_backward` are its vectorised
form, proven equal by tests/test_reference_literal.py."""

from __future__ import annotations

import numpy as np

from ._params import as_array
from ._pool import first_max
from .errors import DTypeError, ParameterError, ShapeError
from .sigmoid import _float
from .softmax import softmax, softmax_literal


def _inputs(logits, labels):
    z = _float("logits", logits)
    if z.ndim != 2:
        raise ShapeError("logits", f"must be (N, K), got shape {z.shape}")
    if z.shape[0] == 0 or z.shape[1] == 0:
        raise ShapeError("logits", f"needs N >= 1 and K >= 1 (the loss is a mean over the batch), got shape {z.shape}")
    try:
        y = np.asarray(labels)
    except ValueError as exc:  # a ragged nested list
        raise ShapeError("labels", f"must be a rectangular array; got a ragged nested sequence ({exc})") from None
    if y.dtype.kind not in "iu":
        raise DTypeError("labels", f"must be integers, got dtype {y.dtype}")
    if y.shape != (z.shape[0],):
        raise ShapeError("labels", f"must have shape (N,) = ({z.shape[0]},), got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= z.shape[1]):
        raise ParameterError("labels", f"must lie in [0, K) = [0, {z.shape[1]}), got values in [{y.min()}, {y.max()}]")
    return z, y


def _grad(grad_out):
    g = as_array("grad_out", grad_out)
    if g.size != 1:
        raise ShapeError("grad_out", f"must be a scalar (the loss is a scalar), got shape {g.shape}")
    return g.reshape(())


# --- the literal definition ------------------------------------------------------------------------


def cross_entropy_literal(logits, labels):
    """L = (1/N) sum_n [log sum_k exp(z[n, k]) - z[n, label_n]], each logsumexp taken as
    log sum_k exp(z[n, k] - m_n) + m_n with m_n = max_k z[n, k], so that exp cannot overflow."""
    z, y = _inputs(logits, labels)
    n_batch, k = z.shape
    total = z.dtype.type(0)
    for n in range(n_batch):
        row = [z[n, j] for j in range(k)]
        m = row[first_max(row)]
        sum_exp = z.dtype.type(0)
        for v in row:
            sum_exp += np.exp(v - m)
        total += np.log(sum_exp) + m - z[n, y[n]]
    return total / n_batch


def cross_entropy_backward_literal(grad_out, logits, labels):
    """dL/dz[n, k] = g * (softmax(z)[n, k] - [k == label_n]) / N. -> (dlogits,)."""
    z, y = _inputs(logits, labels)
    g = _grad(grad_out)
    p = softmax_literal(z)
    n_batch, k = z.shape
    dz = np.empty(z.shape, dtype=np.result_type(p, g))
    for n in range(n_batch):
        for j in range(k):
            dz[n, j] = (p[n, j] - (1 if j == y[n] else 0)) * (g / n_batch)
    return (dz,)


# --- the vectorised form ---------------------------------------------------------------------------


# The vectorised form of cross_entropy_literal; tests/test_reference_literal.py proves the two equal.
def cross_entropy(logits, labels):
    z, y = _inputs(logits, labels)
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    return (lse - z[np.arange(z.shape[0]), y]).mean()


# The vectorised form of cross_entropy_backward_literal; tests/test_reference_literal.py proves the two equal.
def cross_entropy_backward(grad_out, logits, labels):
    """-> (dlogits,)."""
    z, y = _inputs(logits, labels)
    g = _grad(grad_out)
    p = softmax(z)
    p[np.arange(z.shape[0]), y] -= 1
    return (p * (g / z.shape[0]),)
