"""Normalization, dropout and concatenation ops, generic over the array module `xp` (numpy or cupy):
batch norm (training, inference, running statistics), local response norm, dropout with an explicit keep
mask, and concat. `NormOps` is a mixin of `ArrayOps`; signatures and return tuples are the spec's.

Computation is in the inputs' common float dtype. Batch statistics are taken channels-last: x is viewed
as an (m, C) matrix (m = N * prod(spatial)) and reduced over its rows, two passes (mean, then the centred
squares). The LRN window sum is one strided add per window offset over a zero-padded copy of x^2."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from .arrays import as_float, cast, common_dtype, grad, to_array
from .errors import DTypeError, ParameterError, ShapeError


def _real(name, v, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, Real):
        raise ParameterError(name, f"must be a real number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ParameterError(name, f"must be finite, got {v!r}")
    below = lo is not None and (v <= lo if lo_open else v < lo)
    above = hi is not None and (v >= hi if hi_open else v > hi)
    if below or above:
        lb, rb = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ParameterError(
            name, f"must lie in {lb}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{rb}, got {v!r}"
        )
    return v


def _rows(xp, x):
    """x (N, C, *s) as the (m, C) matrix of its channel vectors (a copy, contiguous)."""
    return xp.ascontiguousarray(xp.moveaxis(x, 1, -1)).reshape(-1, x.shape[1])


def _colsum(xp, r):
    """Column sums of the (m, C) matrix r, each over a contiguous column: NumPy then sums pairwise (error
    ~ log2(m) u) instead of adding the rows one after another (~ m u), which float32 training amplifies."""
    return xp.ascontiguousarray(r.T).sum(axis=1)


def _unrows(xp, r, shape):
    """Inverse of _rows."""
    return xp.ascontiguousarray(xp.moveaxis(r.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],)), -1, 1))


class NormOps:
    xp = None

    # ------------------------------------------------------------------------------ batch norm
    def _bn_x(self, x):
        x = as_float(self.xp, "x", x, ndim=(2, 3, 4, 5))
        if x.size == 0:
            raise ShapeError(
                "x",
                f"needs at least one value per channel (N * prod(spatial) >= 1) and C >= 1, got shape {tuple(x.shape)}",
            )
        return x

    def _bn_vec(self, name, a, c):
        a = as_float(self.xp, name, a, ndim=1)
        if tuple(a.shape) != (c,):
            raise ShapeError(name, f"must have shape (C,) = ({c},) to match x's channels, got {tuple(a.shape)}")
        return a

    def _bn_float(self, name, a):
        a0 = to_array(self.xp, a)
        if a0.dtype.kind == "O":
            raise DTypeError(
                name,
                "batch normalization divides by sqrt(var + eps), evaluated in floating point; "
                "Fraction arrays are not supported",
            )
        return a0

    def _bn_inputs(self, x, gamma, beta, eps, *extra):
        """Validated x, gamma, beta and the named per-channel extras, cast to their common dtype, and eps."""
        x = self._bn_x(self._bn_float("x", x))
        c = x.shape[1]
        vecs = [self._bn_vec(n, self._bn_float(n, a), c) for n, a in (("gamma", gamma), ("beta", beta)) + extra]
        eps = _real("eps", eps, lo=0, lo_open=True)
        dt = common_dtype(self.xp, x, *vecs)
        return (cast(x, dt),) + tuple(cast(v, dt) for v in vecs) + (eps,)

    @staticmethod
    def _moments(xp, r, ddof=0):
        """Per-column mean and variance of the (m, C) matrix r: sum / m, then sum of centred squares / (m - ddof)."""
        m = r.shape[0]
        mean = _colsum(xp, r) / r.dtype.type(m)
        d = r - mean
        return mean, d, _colsum(xp, d * d) / r.dtype.type(m - ddof)

    def batch_norm(self, x, gamma, beta, *, eps=1e-5):
        xp = self.xp
        x, gamma, beta, eps = self._bn_inputs(x, gamma, beta, eps)
        _, d, var = self._moments(xp, _rows(xp, x))
        inv = 1 / xp.sqrt(var + x.dtype.type(eps))
        return _unrows(xp, d * (gamma * inv) + beta, x.shape)

    def batch_norm_backward(self, grad_out, x, gamma, beta, *, eps=1e-5):
        xp = self.xp
        x, gamma, beta, eps = self._bn_inputs(x, gamma, beta, eps)
        g = grad(xp, grad_out, x.shape)
        dt = common_dtype(xp, g, x)
        x, gamma, g = cast(x, dt), cast(gamma, dt), cast(g, dt)
        _, d, var = self._moments(xp, _rows(xp, x))
        m = d.shape[0]
        inv = 1 / xp.sqrt(var + dt.type(eps))
        xhat = d * inv
        gr = _rows(xp, g)
        dbeta = _colsum(xp, gr)
        dgamma = _colsum(xp, gr * xhat)
        dx = (gamma * inv) * (gr - dbeta / dt.type(m) - xhat * (dgamma / dt.type(m)))
        return _unrows(xp, dx, x.shape), dgamma, dbeta

    def _bn_stats_inputs(self, x, gamma, beta, mean, var, eps):
        x, gamma, beta, mean, var, eps = self._bn_inputs(x, gamma, beta, eps, ("mean", mean), ("var", var))
        if bool((var < 0).any()):
            raise ParameterError("var", "must be >= 0 (a variance)")
        return x, gamma, beta, mean, var, eps

    def batch_norm_inference(self, x, gamma, beta, mean, var, *, eps=1e-5):
        xp = self.xp
        x, gamma, beta, mean, var, eps = self._bn_stats_inputs(x, gamma, beta, mean, var, eps)
        scale = gamma / xp.sqrt(var + x.dtype.type(eps))
        return _unrows(xp, (_rows(xp, x) - mean) * scale + beta, x.shape)

    def batch_norm_inference_backward(self, grad_out, x, gamma, beta, mean, var, *, eps=1e-5):
        """-> (dx, dgamma, dbeta); mean and var are not differentiable."""
        xp = self.xp
        x, gamma, beta, mean, var, eps = self._bn_stats_inputs(x, gamma, beta, mean, var, eps)
        g = grad(xp, grad_out, x.shape)
        dt = common_dtype(xp, g, x)
        inv = 1 / xp.sqrt(cast(var, dt) + dt.type(eps))
        gr = _rows(xp, cast(g, dt))
        dgamma = _colsum(xp, gr * ((_rows(xp, cast(x, dt)) - cast(mean, dt)) * inv))
        return _unrows(xp, gr * (cast(gamma, dt) * inv), x.shape), dgamma, _colsum(xp, gr)

    def batch_norm_running_stats(self, running_mean, running_var, x, *, momentum=0.1):
        xp = self.xp
        x = self._bn_x(x)
        c = x.shape[1]
        rm = self._bn_vec("running_mean", running_mean, c)
        rv = self._bn_vec("running_var", running_var, c)
        if bool((rv < 0).any()):
            raise ParameterError("running_var", "must be >= 0 (a variance)")
        momentum = _real("momentum", momentum, lo=0, hi=1)
        m = x.size // c
        if m < 2:
            raise ShapeError(
                "x",
                f"the unbiased variance sum (x - mu)^2 / (m - 1) needs m = N * prod(spatial) >= 2 "
                f"values per channel, got m = {m} (shape {tuple(x.shape)}): it would divide by zero",
            )
        dt = common_dtype(xp, x, rm, rv)
        mean, _, var = self._moments(xp, _rows(xp, cast(x, dt)), ddof=1)
        a, b = dt.type(1 - momentum), dt.type(momentum)
        return a * cast(rm, dt) + b * mean, a * cast(rv, dt) + b * var

    # ------------------------------------------------------------------------------ local response norm
    def _lrn_inputs(self, x, size, alpha, beta, k):
        xp = self.xp
        a0 = to_array(xp, x)
        if a0.dtype.kind == "O":
            raise DTypeError(
                "x",
                "local response norm is evaluated in floating point here (the reference is exact "
                "on Fractions for an integer beta)",
            )
        x = as_float(xp, "x", a0, ndim=(2, 3, 4, 5))
        if not isinstance(size, Integral) or isinstance(size, (bool, np.bool_)) or size < 1:
            raise ParameterError("size", f"must be an int >= 1 (the number of channels in the window), got {size!r}")
        alpha = _real("alpha", alpha, lo=0)
        beta = _real("beta", beta)
        k = _real("k", k, lo=0, lo_open=True)
        return x, int(size), alpha, beta, k

    def _channel_window_sum(self, v, before, after):
        """s[:, c] = sum of v[:, j] for c - before <= j <= c + after, zero outside [0, C)."""
        xp = self.xp
        C = v.shape[1]
        buf = xp.zeros((v.shape[0], C + before + after) + tuple(v.shape[2:]), dtype=v.dtype)
        buf[:, before : before + C] = v
        s = xp.zeros_like(v)
        for off in range(before + after + 1):
            s += buf[:, off : off + C]
        return s

    def _lrn_base(self, x, size, alpha, k):
        t = x.dtype.type
        return t(k) + t(alpha) * self._channel_window_sum(x * x, size // 2, (size - 1) // 2)

    def local_response_norm(self, x, size, *, alpha=1e-4, beta=0.75, k=2.0):
        x, size, alpha, beta, k = self._lrn_inputs(x, size, alpha, beta, k)
        return x * self.xp.power(self._lrn_base(x, size, alpha, k), x.dtype.type(-beta))

    def local_response_norm_backward(self, grad_out, x, size, *, alpha=1e-4, beta=0.75, k=2.0):
        xp = self.xp
        x, size, alpha, beta, k = self._lrn_inputs(x, size, alpha, beta, k)
        g = grad(xp, grad_out, x.shape)
        dt = common_dtype(xp, g, x)
        x, g = cast(x, dt), cast(g, dt)
        base = self._lrn_base(x, size, alpha, k)
        scaled = xp.power(base, dt.type(-beta))  # D^-beta
        q = g * x * scaled / base  # g x D^-(beta+1)
        back = self._channel_window_sum(q, (size - 1) // 2, size // 2)
        return (g * scaled - dt.type(2 * alpha * beta) * x * back,)

    # ------------------------------------------------------------------------------ dropout
    def _dropout_inputs(self, x, keep, p):
        xp = self.xp
        x = as_float(xp, "x", x)
        m = to_array(xp, keep)
        if m.dtype.kind not in "biuf":
            raise DTypeError("keep", f"must be a 0/1 mask (bool or numbers), got dtype {m.dtype}")
        if tuple(m.shape) != tuple(x.shape):
            raise ShapeError(
                "keep", f"must have x's shape {tuple(x.shape)} (one keep flag per element), got {tuple(m.shape)}"
            )
        if m.dtype.kind != "b" and bool(((m != 0) & (m != 1)).any()):
            raise ParameterError("keep", "must hold only 0 and 1 (1 = keep)")
        p = _real("p", p, lo=0, hi=1, hi_open=True)
        return x, m.astype(bool), p

    def dropout(self, x, keep, *, p):
        x, m, p = self._dropout_inputs(x, keep, p)
        return x * m.astype(x.dtype) / x.dtype.type(1 - p)

    def dropout_backward(self, grad_out, x, keep, *, p):
        xp = self.xp
        x, m, p = self._dropout_inputs(x, keep, p)
        g = grad(xp, grad_out, x.shape)
        g = cast(g, common_dtype(xp, g, x))
        return (g * m.astype(g.dtype) / g.dtype.type(1 - p),)

    # ------------------------------------------------------------------------------ concat
    def _concat_inputs(self, xs, axis):
        xp = self.xp
        if not isinstance(xs, (list, tuple)):
            raise ParameterError("xs", f"must be a list or tuple of arrays, got {type(xs).__name__}")
        if len(xs) == 0:
            raise ParameterError("xs", "must hold at least one array")
        arrays = [as_float(xp, f"xs[{i}]", a, min_ndim=1) for i, a in enumerate(xs)]
        nd = arrays[0].ndim
        if not isinstance(axis, Integral) or isinstance(axis, (bool, np.bool_)) or not -nd <= axis < nd:
            raise ParameterError("axis", f"must be an int in [-{nd}, {nd}) for inputs of ndim {nd}, got {axis!r}")
        axis = int(axis) % nd
        first = tuple(arrays[0].shape)
        for i, a in enumerate(arrays[1:], 1):
            s = tuple(a.shape)
            if len(s) != nd:
                raise ShapeError(f"xs[{i}]", f"must have ndim {nd} like xs[0] {first}, got shape {s}")
            if s[:axis] + s[axis + 1 :] != first[:axis] + first[axis + 1 :]:
                raise ShapeError(
                    f"xs[{i}]",
                    f"must match xs[0] {first} in every dim but axis {axis} (no broadcasting), got shape {s}",
                )
        return arrays, axis

    def concat(self, xs, *, axis=1):
        xp = self.xp
        arrays, axis = self._concat_inputs(xs, axis)
        dt = common_dtype(xp, *arrays)
        return xp.concatenate([cast(a, dt) for a in arrays], axis=axis)

    def concat_backward(self, grad_out, xs, *, axis=1):
        xp = self.xp
        arrays, axis = self._concat_inputs(xs, axis)
        shape = list(arrays[0].shape)
        shape[axis] = sum(a.shape[axis] for a in arrays)
        g = grad(xp, grad_out, tuple(shape))
        out, start = [], 0
        for a in arrays:
            stop = start + a.shape[axis]
            out.append(g[(slice(None),) * axis + (slice(start, stop),)].copy())
            start = stop
        return tuple(out)
