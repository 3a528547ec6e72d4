"""concat: join arrays along one axis (default 1, the channels: GoogLeNet's Inception module
concatenates its 1x1, 3x3, 5x5 and pool branches; lecture seed 001, "Inception Module": "Use them all,
and combine").

    y[..., offset_k + i, ...] = xs[k][..., i, ...]          offset_k = sum_{l < k} xs[l].shape[axis]

xs is a non-empty list or tuple of arrays with the same ndim (>= 1), equal in every dim but `axis`
(a size of 0 along axis is allowed). axis is an int in [-ndim, ndim). No broadcasting. The result has
the inputs' common dtype. Backward: grad_out split back along axis, one gradient per input, in order.

Exact (a selection): exact on Fraction arrays. Each op comes twice: `<op>_literal`, explicit loops that
read like the formula, then the vectorised public `<op>`.
"""

from __future__ import annotations

import numpy as np

from ._params import as_array
from .conv import check_grad
from .errors import ParameterError, ShapeError


def _inputs(xs, axis):
    if not isinstance(xs, (list, tuple)):
        raise ParameterError("xs", f"must be a list or tuple of arrays, got {type(xs).__name__}")
    if not xs:
        raise ParameterError("xs", "must hold at least one array")
    arrays = [as_array(f"xs[{i}]", a, min_ndim=1) for i, a in enumerate(xs)]
    nd = arrays[0].ndim
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)) or not -nd <= axis < nd:
        raise ParameterError("axis", f"must be an int in [-{nd}, {nd}) for inputs of ndim {nd}, got {axis!r}")
    axis = int(axis) % nd
    ref = arrays[0].shape
    for i, a in enumerate(arrays[1:], 1):
        if a.ndim != nd:
            raise ShapeError(f"xs[{i}]", f"must have ndim {nd} like xs[0] {ref}, got shape {a.shape}")
        if a.shape[:axis] + a.shape[axis + 1 :] != ref[:axis] + ref[axis + 1 :]:
            raise ShapeError(
                f"xs[{i}]",
                f"must match xs[0] {ref} in every dim but axis {axis} (no broadcasting), got shape {a.shape}",
            )
    return arrays, axis


def _out_shape(arrays, axis):
    shape = list(arrays[0].shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    return tuple(shape)


# --------------------------------------------------------------------------------------- literal forms


def concat_literal(xs, *, axis=1):
    arrays, axis = _inputs(xs, axis)
    y = np.empty(_out_shape(arrays, axis), dtype=np.result_type(*arrays))
    for idx in np.ndindex(y.shape):
        i = idx[axis]
        for a in arrays:  # the input that holds output position i, and i's offset in it
            if i < a.shape[axis]:
                y[idx] = a[idx[:axis] + (i,) + idx[axis + 1 :]]
                break
            i -= a.shape[axis]
    return y


def concat_backward_literal(grad_out, xs, *, axis=1):
    arrays, axis = _inputs(xs, axis)
    g = check_grad("grad_out", grad_out, _out_shape(arrays, axis))
    grads = []
    offset = 0
    for a in arrays:
        d = np.empty(a.shape, dtype=g.dtype)
        for idx in np.ndindex(a.shape):
            d[idx] = g[idx[:axis] + (offset + idx[axis],) + idx[axis + 1 :]]
        grads.append(d)
        offset += a.shape[axis]
    return tuple(grads)


# --------------------------------------------------------------------------------------- public forms


def concat(xs, *, axis=1):
    arrays, axis = _inputs(xs, axis)
    return np.concatenate(arrays, axis=axis)


def concat_backward(grad_out, xs, *, axis=1):
    """-> one gradient per input (a tuple, in xs's order): grad_out's slice at that input's offset."""
    arrays, axis = _inputs(xs, axis)
    g = check_grad("grad_out", grad_out, _out_shape(arrays, axis))
    bounds = np.cumsum([0] + [a.shape[axis] for a in arrays])
    lead = (slice(None),) * axis
    return tuple(g[lead + (slice(int(b), int(e)),)].copy() for b, e in zip(bounds[:-1], bounds[1:]))
