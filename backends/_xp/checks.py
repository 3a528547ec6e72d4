"""Argument checks on shapes and plain Python values, for backends whose arrays are not an `xp` array
module (torch tensors): the same rules and messages as the inline checks of `ops.ArrayOps`, taking
shapes, sizes and ints instead of arrays, so a backend needs no array conversion to run them."""
from __future__ import annotations

from numbers import Integral

from .errors import ParameterError, ShapeError


def grad_shape(shape, want, name: str = "grad_out") -> None:
    """The incoming gradient has the forward output's shape."""
    if tuple(shape) != tuple(want):
        raise ShapeError(name, f"must have the forward output's shape {tuple(want)}, got {tuple(shape)}")


def scalar_grad(shape, size: int, name: str = "grad_out") -> None:
    """The incoming gradient of a scalar (a loss) has exactly one element."""
    if size != 1:
        raise ShapeError(name, f"must be a scalar (the loss is a scalar), got shape {tuple(shape)}")


def windows_touch_input(geo) -> None:
    """Every pooling window of `geo` (a geometry.Pool) covers at least one input element."""
    if any(0 in geo.dim_counts(axis, False) for axis in range(geo.nd)):
        raise ParameterError("padding", "a pooling window lies entirely in the padding "
                             "(padding must leave every window at least one input element)")


def kmax_k(k, n: int) -> int:
    """k-max pooling's k: an int with 1 <= k <= n (the length of the last axis)."""
    if not isinstance(k, Integral) or isinstance(k, bool) or not 1 <= k <= n:
        raise ParameterError("k", f"must be an int with 1 <= k <= x.shape[-1] = {n}, got {k!r}")
    return int(k)


def class_axis(name: str, shape) -> None:
    """Softmax input: at least one axis, the classes last."""
    if len(shape) < 1:
        raise ShapeError(name, "must have at least one axis (classes last)")


def logits_labels(z_shape, y_shape) -> None:
    """cross_entropy: logits (N, K) and labels (N,)."""
    if len(z_shape) != 2:
        raise ShapeError("logits", f"must be (N, K), got shape {tuple(z_shape)}")
    if tuple(y_shape) != (z_shape[0],):
        raise ShapeError("labels", f"must have shape (N,) = ({z_shape[0]},), got {tuple(y_shape)}")


def label_range(lo: int, hi: int, k: int) -> None:
    """cross_entropy: the smallest and largest label lie in [0, K)."""
    if lo < 0 or hi >= k:
        raise ParameterError("labels", f"must lie in [0, K) = [0, {k}), got values in [{lo}, {hi}]")


def linear_shapes(x_shape, w_shape, b_shape) -> None:
    """linear: x (N, in), w (out, in), b (out,) or None (the ndims checked by the caller)."""
    if x_shape[1] != w_shape[1]:
        raise ShapeError("x", f"feature mismatch: x has {x_shape[1]} features but w expects {w_shape[1]} "
                              f"(w is (out, in) = {tuple(w_shape)})")
    if b_shape is not None and tuple(b_shape) != (w_shape[0],):
        raise ShapeError("b", f"must have shape (out,) = ({w_shape[0]},), got {tuple(b_shape)}")


def same_shape(x_shape, y_shape) -> None:
    """add: y has the shape of x (no broadcasting)."""
    if tuple(x_shape) != tuple(y_shape):
        raise ShapeError("y", f"must have the shape of x {tuple(x_shape)} (no broadcasting), "
                              f"got {tuple(y_shape)}")
