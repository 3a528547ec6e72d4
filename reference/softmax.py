"""softmax over the class axis (the last): p_i = exp(z_i - max z) / sum_j exp(z_j - max z).
Backward: dz = p * (g - sum_j g_j p_j). Float only.

The literal definition (`softmax_literal`, `softmax_backward_literal`: loops over the rows and the
classes) comes first; `softmax` and `softmax_backward` are its vectorised form, proven equal by
tests/test_reference_literal.py."""

from __future__ import annotations

import numpy as np

from ._params import grid
from ._pool import first_max
from .conv import check_grad
from .errors import ShapeError
from .sigmoid import _float


def _input(z):
    z = _float("z", z)
    if z.ndim < 1:
        raise ShapeError("z", "must have at least one axis (classes last)")
    return z


# --- the literal definition ------------------------------------------------------------------------


def softmax_literal(z):
    """p[r, i] = exp(z[r, i] - m) / sum_j exp(z[r, j] - m) along the last axis, m = max_j z[r, j] (the shift
    cancels; it keeps exp from overflowing). A NaN in a row makes the row NaN."""
    z = _input(z)
    k = z.shape[-1]
    p = np.empty(z.shape, dtype=z.dtype)
    for r in grid(z.shape[:-1]) if k else ():  # no classes: nothing to normalise, the result is empty
        row = [z[r + (i,)] for i in range(k)]
        m = row[first_max(row)]  # the max, NaN if the row holds one
        e = [np.exp(v - m) for v in row]
        total = z.dtype.type(0)
        for e_j in e:
            total += e_j
        for i in range(k):
            p[r + (i,)] = e[i] / total
    return p


def softmax_backward_literal(grad_out, z):
    """dz[r, i] = sum_j g[r, j] * dp[r, j]/dz[r, i] = p[r, i] * (g[r, i] - sum_j g[r, j] * p[r, j]),
    p = softmax(z). -> (dz,)."""
    p = softmax_literal(z)
    g = check_grad("grad_out", grad_out, p.shape)
    k = p.shape[-1]
    dz = np.empty(p.shape, dtype=np.result_type(g, p))
    for r in grid(p.shape[:-1]):
        gp = np.result_type(g, p).type(0)
        for j in range(k):
            gp += g[r + (j,)] * p[r + (j,)]
        for i in range(k):
            dz[r + (i,)] = p[r + (i,)] * (g[r + (i,)] - gp)
    return (dz,)


# --- the vectorised form ---------------------------------------------------------------------------


# The vectorised form of softmax_literal; tests/test_reference_literal.py proves the two equal.
def softmax(z):
    z = _input(z)
    if z.shape[-1] == 0:  # no classes: nothing to normalise (SPEC.md, "Empty dimensions")
        return z.copy()
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# The vectorised form of softmax_backward_literal; tests/test_reference_literal.py proves the two equal.
def softmax_backward(grad_out, z):
    """-> (dz,)."""
    p = softmax(z)
    g = check_grad("grad_out", grad_out, p.shape)
    return (p * (g - (g * p).sum(axis=-1, keepdims=True)),)
