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
        raise ParameterError(
            "padding",
            "a pooling window lies entirely in the padding "
            "(padding must leave every window at least one input element)",
        )


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
        raise ShapeError(
            "x",
            f"feature mismatch: x has {x_shape[1]} features but w expects {w_shape[1]} "
            f"(w is (out, in) = {tuple(w_shape)})",
        )
    if b_shape is not None and tuple(b_shape) != (w_shape[0],):
        raise ShapeError("b", f"must have shape (out,) = ({w_shape[0]},), got {tuple(b_shape)}")


def same_shape(x_shape, y_shape) -> None:
    """add: y has the shape of x (no broadcasting)."""
    if tuple(x_shape) != tuple(y_shape):
        raise ShapeError("y", f"must have the shape of x {tuple(x_shape)} (no broadcasting), got {tuple(y_shape)}")


# ---------------------------------------------------------------- normalization, dropout, concat
# The rules and messages of convspec.backends._xp.norm.NormOps (whose checks are inline), on shapes, dtype
# kinds and plain values, for the torch backends; the value tests (var < 0, a non-0/1 mask) are done by the
# caller on its own arrays and passed in as booleans.
from math import prod  # noqa: E402  (this section is appended)

import numpy as np  # noqa: E402

from .errors import DTypeError  # noqa: E402

BN_FRACTION = (
    "batch normalization divides by sqrt(var + eps), evaluated in floating point; Fraction arrays are not supported"
)
LRN_FRACTION = (
    "local response norm is evaluated in floating point here (the reference is exact on Fractions for an integer beta)"
)


def real(name: str, v, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """A finite real parameter in the given interval (NormOps' rule and message)."""
    from .norm import _real

    return _real(name, v, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)


def floating_only(name: str, dtype_kind: str, reason: str) -> None:
    """An op evaluated in floating point only: an object (Fraction) array is a DTypeError."""
    if dtype_kind == "O":
        raise DTypeError(name, reason)


def bn_nonempty(shape) -> None:
    """Batch norm's x has at least one value per channel and at least one channel."""
    if prod(shape) == 0:
        raise ShapeError(
            "x",
            f"needs at least one value per channel (N * prod(spatial) >= 1) and C >= 1, got shape {tuple(shape)}",
        )


def bn_channels(name: str, shape, c: int) -> None:
    """A per-channel vector (gamma, beta, mean, var, the running statistics) of shape (C,)."""
    if tuple(shape) != (c,):
        raise ShapeError(name, f"must have shape (C,) = ({c},) to match x's channels, got {tuple(shape)}")


def nonnegative(name: str, any_negative: bool) -> None:
    """A variance: no element < 0."""
    if any_negative:
        raise ParameterError(name, "must be >= 0 (a variance)")


def running_stats_m(shape) -> None:
    """The running variance's unbiased batch variance needs m = N * prod(spatial) >= 2."""
    m = prod(shape) // shape[1]
    if m < 2:
        raise ShapeError(
            "x",
            f"the unbiased variance sum (x - mu)^2 / (m - 1) needs m = N * prod(spatial) >= 2 "
            f"values per channel, got m = {m} (shape {tuple(shape)}): it would divide by zero",
        )


def lrn_size(size) -> int:
    """local_response_norm's window: an int >= 1."""
    if not isinstance(size, Integral) or isinstance(size, (bool, np.bool_)) or size < 1:
        raise ParameterError("size", f"must be an int >= 1 (the number of channels in the window), got {size!r}")
    return int(size)


def keep_mask(dtype_kind: str, dtype, shape, x_shape) -> None:
    """dropout's keep: a bool or numeric array of x's shape (its values checked by keep_values)."""
    if dtype_kind not in "biuf":
        name = str(dtype).rpartition(".")[2]  # torch.complex128 -> complex128, as NumPy names it
        raise DTypeError("keep", f"must be a 0/1 mask (bool or numbers), got dtype {name}")
    if tuple(shape) != tuple(x_shape):
        raise ShapeError(
            "keep", f"must have x's shape {tuple(x_shape)} (one keep flag per element), got {tuple(shape)}"
        )


def keep_values(other_than_0_1: bool) -> None:
    if other_than_0_1:
        raise ParameterError("keep", "must hold only 0 and 1 (1 = keep)")


def concat_sequence(xs) -> None:
    """concat's xs: a non-empty list or tuple."""
    if not isinstance(xs, (list, tuple)):
        raise ParameterError("xs", f"must be a list or tuple of arrays, got {type(xs).__name__}")
    if len(xs) == 0:
        raise ParameterError("xs", "must hold at least one array")


def concat_axis(axis, nd: int) -> int:
    """concat's axis: an int in [-nd, nd), returned in [0, nd)."""
    if not isinstance(axis, Integral) or isinstance(axis, (bool, np.bool_)) or not -nd <= axis < nd:
        raise ParameterError("axis", f"must be an int in [-{nd}, {nd}) for inputs of ndim {nd}, got {axis!r}")
    return int(axis) % nd


def concat_shapes(shapes, axis: int) -> None:
    """Every xs[i] has xs[0]'s ndim and matches it in every dim but axis (no broadcasting)."""
    first = tuple(shapes[0])
    nd = len(first)
    for i, s in enumerate(shapes[1:], 1):
        s = tuple(s)
        if len(s) != nd:
            raise ShapeError(f"xs[{i}]", f"must have ndim {nd} like xs[0] {first}, got shape {s}")
        if s[:axis] + s[axis + 1 :] != first[:axis] + first[axis + 1 :]:
            raise ShapeError(
                f"xs[{i}]",
                f"must match xs[0] {first} in every dim but axis {axis} (no broadcasting), got shape {s}",
            )
