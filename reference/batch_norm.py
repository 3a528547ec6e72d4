"""batch_norm: batch normalization (Ioffe & Szegedy 2015, Algorithm 1), training mode, per channel.

    mu[c]    = (1/m) sum_{n, i} x[n, c, i]                       m = N * prod(spatial)
    var[c]   = (1/m) sum_{n, i} (x[n, c, i] - mu[c])^2            (biased: the batch's own variance)
    xhat     = (x[n, c, i] - mu[c]) / sqrt(var[c] + eps)
    y        = gamma[c] * xhat + beta[c]

x is (N, C, *spatial) with 0 to 3 spatial dims; gamma and beta are (C,). The statistics are taken over
the batch and every spatial position of a channel (the paper's "convolutional" BN, section 3.2).

batch_norm_inference normalises with given statistics (the running averages):
    y = gamma * (x - mean) / sqrt(var + eps) + beta.

batch_norm_running_stats updates the running averages from a batch (Algorithm 2, step 10):
    new_mean = (1 - momentum) * running_mean + momentum * mu
    new_var  = (1 - momentum) * running_var  + momentum * m/(m-1) * var      (UNBIASED batch variance)
This is PyTorch's convention (momentum weighs the new batch; running_var takes the unbiased variance) and
the paper's (Var[x] = m/(m-1) E_B[sigma_B^2]). Keras and ONNX use the biased variance and the opposite
momentum (the weight of the old value); see SPEC.md.

sqrt is irrational: batch_norm, batch_norm_inference and their gradients are evaluated in floating point
(a Fraction array is a DTypeError). The statistics (batch_norm_stats) and batch_norm_running_stats are
rational and exact on Fraction arrays.

Each op comes twice: `<op>_literal`, explicit loops that read like the formula, then the vectorised
public `<op>` with the same signature and results.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np

from ._params import as_array, bool_param
from .conv import check_grad
from .errors import DTypeError, ParameterError, ShapeError

# ------------------------------------------------------------------------------------------ parameters


def real_param(name: str, value, *, minimum=None, maximum=None, min_open=False, max_open=False):
    """A finite real scalar (int, float, Fraction, NumPy number; not bool) within the given bounds."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ParameterError(name, f"must be a real number, got {value!r}")
    if isinstance(value, np.generic):
        value = value.item()
    if not math.isfinite(value):
        raise ParameterError(name, f"must be finite, got {value!r}")
    lo = "(" if min_open else "["
    hi = ")" if max_open else "]"
    rng = f"{lo}{'-inf' if minimum is None else minimum}, {'inf' if maximum is None else maximum}{hi}"
    if minimum is not None and (value <= minimum if min_open else value < minimum):
        raise ParameterError(name, f"must lie in {rng}, got {value!r}")
    if maximum is not None and (value >= maximum if max_open else value > maximum):
        raise ParameterError(name, f"must lie in {rng}, got {value!r}")
    return value


def scalar_for(x: np.ndarray, value):
    """A scalar parameter in x's number system: a Fraction for object arrays (exact), else a float."""
    return Fraction(value) if x.dtype == object else float(value)


def _float(name: str, a) -> np.ndarray:
    if a.dtype == object:
        raise DTypeError(
            name,
            "batch normalization divides by sqrt(var + eps), evaluated in floating point; "
            "Fraction arrays are not supported (batch_norm_stats and batch_norm_running_stats "
            "are exact)",
        )
    return a


def _x(x) -> np.ndarray:
    x = as_array("x", x, ndim=(2, 3, 4, 5))
    if x.size == 0:
        raise ShapeError(
            "x", f"needs at least one value per channel (N * prod(spatial) >= 1) and C >= 1, got shape {x.shape}"
        )
    return x


def _per_channel(name: str, a, c: int) -> np.ndarray:
    a = as_array(name, a, ndim=1)
    if a.shape != (c,):
        raise ShapeError(name, f"must have shape (C,) = ({c},) to match x's channels, got {a.shape}")
    return a


def _axes(x: np.ndarray) -> tuple[int, ...]:
    """The reduction axes: batch and every spatial axis (all but the channel axis 1)."""
    return (0,) + tuple(range(2, x.ndim))


def _count(x: np.ndarray) -> int:
    """m = N * prod(spatial): how many values each channel's statistics average."""
    return x.size // x.shape[1]


def _bcast(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A (C,) vector shaped to broadcast against x: (1, C, 1, ...)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def _bool(name: str, v) -> bool:
    return bool_param(name, v)


def _stats_divisor(x: np.ndarray, unbiased: bool) -> int:
    m = _count(x)
    if unbiased and m < 2:
        raise ShapeError(
            "x",
            f"the unbiased variance sum (x - mu)^2 / (m - 1) needs m = N * prod(spatial) >= 2 "
            f"values per channel, got m = {m} (shape {x.shape}): it would divide by zero",
        )
    return m - 1 if unbiased else m


def _channel_positions(shape, c: int):
    """Every index (n, c, *i) of channel c, in row-major order."""
    for idx in np.ndindex(shape[:1] + shape[2:]):
        yield (idx[0], c) + idx[1:]


def _check_eps(eps):
    return real_param("eps", eps, minimum=0, min_open=True)


# --------------------------------------------------------------------------------------- literal forms


def batch_norm_stats_literal(x, *, unbiased=False):
    """(mu, var) per channel, as loops: mu = sum x / m; var = sum (x - mu)^2 / m (or / (m - 1))."""
    x = _x(x)
    div = _stats_divisor(x, _bool("unbiased", unbiased))
    m = _count(x)
    C = x.shape[1]
    mean = np.empty(C, dtype=x.dtype)
    var = np.empty(C, dtype=x.dtype)
    for c in range(C):
        total = 0
        for idx in _channel_positions(x.shape, c):
            total += x[idx]
        mu = total / m
        sq = 0
        for idx in _channel_positions(x.shape, c):
            sq += (x[idx] - mu) ** 2
        mean[c], var[c] = mu, sq / div
    return mean, var


def batch_norm_literal(x, gamma, beta, *, eps=1e-5):
    x = _float("x", _x(x))
    gamma = _float("gamma", _per_channel("gamma", gamma, x.shape[1]))
    beta = _float("beta", _per_channel("beta", beta, x.shape[1]))
    eps = float(_check_eps(eps))
    m = _count(x)
    y = np.empty(x.shape, dtype=np.float64)
    for c in range(x.shape[1]):
        mu = sum(float(x[idx]) for idx in _channel_positions(x.shape, c)) / m
        var = sum((float(x[idx]) - mu) ** 2 for idx in _channel_positions(x.shape, c)) / m
        for idx in _channel_positions(x.shape, c):
            xhat = (float(x[idx]) - mu) / math.sqrt(var + eps)
            y[idx] = float(gamma[c]) * xhat + float(beta[c])
    return y


def batch_norm_backward_literal(grad_out, x, gamma, beta, *, eps=1e-5):
    """-> (dx, dgamma, dbeta), the chain rule exactly as the paper's section 3 writes it:

    dxhat = g * gamma
    dvar  = sum dxhat * (x - mu) * (-1/2) * (var + eps)^(-3/2)
    dmu   = sum dxhat * (-1 / sqrt(var + eps)) + dvar * sum(-2 (x - mu)) / m
    dx    = dxhat / sqrt(var + eps) + dvar * 2 (x - mu) / m + dmu / m
    dgamma = sum g * xhat,  dbeta = sum g
    """
    x = _float("x", _x(x))
    gamma = _float("gamma", _per_channel("gamma", gamma, x.shape[1]))
    _float("beta", _per_channel("beta", beta, x.shape[1]))
    g = _float("grad_out", check_grad("grad_out", grad_out, x.shape))
    eps = float(_check_eps(eps))
    m = _count(x)
    C = x.shape[1]
    dx = np.empty(x.shape, dtype=np.float64)
    dgamma = np.empty(C, dtype=np.float64)
    dbeta = np.empty(C, dtype=np.float64)
    for c in range(C):
        pos = list(_channel_positions(x.shape, c))
        mu = sum(float(x[i]) for i in pos) / m
        var = sum((float(x[i]) - mu) ** 2 for i in pos) / m
        s = math.sqrt(var + eps)
        dxhat = {i: float(g[i]) * float(gamma[c]) for i in pos}
        dvar = sum(dxhat[i] * (float(x[i]) - mu) * -0.5 * (var + eps) ** -1.5 for i in pos)
        dmu = sum(dxhat[i] * (-1 / s) for i in pos) + dvar * sum(-2 * (float(x[i]) - mu) for i in pos) / m
        for i in pos:
            dx[i] = dxhat[i] / s + dvar * 2 * (float(x[i]) - mu) / m + dmu / m
        dgamma[c] = sum(float(g[i]) * (float(x[i]) - mu) / s for i in pos)
        dbeta[c] = sum(float(g[i]) for i in pos)
    return dx, dgamma, dbeta


def _inference_inputs(x, gamma, beta, mean, var, eps):
    x = _float("x", _x(x))
    C = x.shape[1]
    gamma, beta, mean, var = (
        _float(n, _per_channel(n, a, C)) for n, a in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))
    )
    if np.any(var < 0):
        raise ParameterError("var", f"must be >= 0 (a variance), got min {var.min()!r}")
    return x, gamma, beta, mean, var, _check_eps(eps)


def batch_norm_inference_literal(x, gamma, beta, mean, var, *, eps=1e-5):
    x, gamma, beta, mean, var, eps = _inference_inputs(x, gamma, beta, mean, var, eps)
    y = np.empty(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        c = idx[1]
        y[idx] = float(gamma[c]) * (float(x[idx]) - float(mean[c])) / math.sqrt(float(var[c]) + eps) + float(beta[c])
    return y


def batch_norm_inference_backward_literal(grad_out, x, gamma, beta, mean, var, *, eps=1e-5):
    """-> (dx, dgamma, dbeta); mean and var are constants here (not differentiable)."""
    x, gamma, beta, mean, var, eps = _inference_inputs(x, gamma, beta, mean, var, eps)
    g = _float("grad_out", check_grad("grad_out", grad_out, x.shape))
    C = x.shape[1]
    dx = np.empty(x.shape, dtype=np.float64)
    dgamma = np.zeros(C, dtype=np.float64)
    dbeta = np.zeros(C, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        c = idx[1]
        s = math.sqrt(float(var[c]) + eps)
        dx[idx] = float(g[idx]) * float(gamma[c]) / s
        dgamma[c] += float(g[idx]) * (float(x[idx]) - float(mean[c])) / s
        dbeta[c] += float(g[idx])
    return dx, dgamma, dbeta


def _running_inputs(running_mean, running_var, x, momentum):
    x = _x(x)
    C = x.shape[1]
    rm = _per_channel("running_mean", running_mean, C)
    rv = _per_channel("running_var", running_var, C)
    if np.any(rv < 0):
        raise ParameterError("running_var", "must be >= 0 (a variance)")
    momentum = real_param("momentum", momentum, minimum=0, maximum=1)
    return rm, rv, x, momentum


def batch_norm_running_stats_literal(running_mean, running_var, x, *, momentum=0.1):
    rm, rv, x, momentum = _running_inputs(running_mean, running_var, x, momentum)
    mu, var = batch_norm_stats_literal(x, unbiased=True)
    mom = scalar_for(x, momentum)
    dt = np.result_type(rm, rv, x)
    new_mean = np.empty(x.shape[1], dtype=dt)
    new_var = np.empty(x.shape[1], dtype=dt)
    for c in range(x.shape[1]):
        new_mean[c] = (1 - mom) * rm[c] + mom * mu[c]
        new_var[c] = (1 - mom) * rv[c] + mom * var[c]
    return new_mean, new_var


# --------------------------------------------------------------------------------------- public forms


def batch_norm_stats(x, *, unbiased=False):
    """-> (mu, var), each (C,): the batch statistics per channel over the batch and spatial axes.
    var is biased (divides by m) unless unbiased=True (divides by m - 1; needs m >= 2). Exact on Fractions."""
    x = _x(x)
    div = _stats_divisor(x, _bool("unbiased", unbiased))
    axes = _axes(x)
    mean = x.sum(axis=axes) / _count(x)
    d = x - _bcast(mean, x)
    return mean, (d * d).sum(axis=axes) / div


def batch_norm(x, gamma, beta, *, eps=1e-5):
    x = _float("x", _x(x))
    gamma = _float("gamma", _per_channel("gamma", gamma, x.shape[1]))
    beta = _float("beta", _per_channel("beta", beta, x.shape[1]))
    eps = float(_check_eps(eps))
    mean, var = batch_norm_stats(x)
    xhat = (x - _bcast(mean, x)) / _bcast(np.sqrt(var + eps), x)
    return _bcast(gamma, x) * xhat + _bcast(beta, x)


def batch_norm_backward(grad_out, x, gamma, beta, *, eps=1e-5):
    """-> (dx, dgamma, dbeta):

    dbeta = sum g,   dgamma = sum g * xhat,
    dx = gamma / sqrt(var + eps) * (g - dbeta / m - xhat * dgamma / m)      (sums per channel)
    """
    x = _float("x", _x(x))
    gamma = _float("gamma", _per_channel("gamma", gamma, x.shape[1]))
    _float("beta", _per_channel("beta", beta, x.shape[1]))
    g = _float("grad_out", check_grad("grad_out", grad_out, x.shape))
    eps = float(_check_eps(eps))
    m = _count(x)
    axes = _axes(x)
    mean, var = batch_norm_stats(x)
    s = np.sqrt(var + eps)
    xhat = (x - _bcast(mean, x)) / _bcast(s, x)
    dbeta = g.sum(axis=axes)
    dgamma = (g * xhat).sum(axis=axes)
    dx = _bcast(gamma / s, x) * (g - _bcast(dbeta / m, x) - xhat * _bcast(dgamma / m, x))
    return dx, dgamma, dbeta


def batch_norm_inference(x, gamma, beta, mean, var, *, eps=1e-5):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta with given per-channel mean and var (>= 0)."""
    x, gamma, beta, mean, var, eps = _inference_inputs(x, gamma, beta, mean, var, eps)
    return _bcast(gamma, x) * (x - _bcast(mean, x)) / _bcast(np.sqrt(var + float(eps)), x) + _bcast(beta, x)


def batch_norm_inference_backward(grad_out, x, gamma, beta, mean, var, *, eps=1e-5):
    """-> (dx, dgamma, dbeta): dx = g * gamma / sqrt(var + eps), dgamma = sum g * (x - mean) / sqrt(var + eps),
    dbeta = sum g. mean and var are statistics, not differentiable inputs: no gradient is returned for them."""
    x, gamma, beta, mean, var, eps = _inference_inputs(x, gamma, beta, mean, var, eps)
    g = _float("grad_out", check_grad("grad_out", grad_out, x.shape))
    axes = _axes(x)
    s = _bcast(np.sqrt(var + float(eps)), x)
    return g * _bcast(gamma, x) / s, (g * (x - _bcast(mean, x)) / s).sum(axis=axes), g.sum(axis=axes)


def batch_norm_running_stats(running_mean, running_var, x, *, momentum=0.1):
    """-> (new_mean, new_var) = (1 - momentum) * running + momentum * batch statistic, with the UNBIASED batch
    variance (m/(m-1) * var; m = N * prod(spatial) must be >= 2). momentum in [0, 1]. A state update, not a
    differentiable op: there is no backward. Exact on Fractions."""
    rm, rv, x, momentum = _running_inputs(running_mean, running_var, x, momentum)
    mu, var = batch_norm_stats(x, unbiased=True)
    mom = scalar_for(x, momentum)
    return (1 - mom) * rm + mom * mu, (1 - mom) * rv + mom * var
