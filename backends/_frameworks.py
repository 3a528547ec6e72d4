"""Helpers shared by the framework backends (jax, onnxruntime, tensorflow).

- lazy import of the framework, with the availability reason when it is missing or broken;
- the framework's version for the reports;
- argument checks and the spec's geometry, from convspec.backends._xp (the NumPy backend's validation,
  re-derived from the spec text), so every framework backend raises the same SpecErrors;
- padding-form normalisation: every form the spec takes ('same', 'full', ints, pairs) to explicit
  (begin, end) pairs per spatial dim, which is what the frameworks' explicit-padding forms take.

Nothing here computes an op: the ops are the frameworks' own.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from importlib.metadata import PackageNotFoundError, version
from numbers import Integral

import numpy as np

from ._xp import checks
from ._xp.arrays import check_ndim
from ._xp.errors import DTypeError, ParameterError, ShapeError
from ._xp.geometry import Conv, Pool, conv_transpose

__all__ = [
    "Framework",
    "Conv",
    "Pool",
    "conv_transpose",
    "check_ndim",
    "DTypeError",
    "ParameterError",
    "ShapeError",
    "np_float",
    "check_k",
    "check_labels",
    "kmax_k",
    "pool_geometry",
]


class Framework:
    """One lazily imported framework: `module()` imports it (once), `reason()` says why it cannot be used.

    `setup(module)` runs once after the first successful import (thread counts, x64...)."""

    def __init__(self, module: str, extra: str, dists=(), setup=None, env=None):
        self.env = dict(env or {})  # environment defaults the framework reads at import (logging)
        self.module_name = module
        self.extra = extra
        self.dists = tuple(dists) or (module,)
        self._setup = setup
        self._module = None
        self._error: str | None = None

    def module(self):
        if self._module is None:
            if self._error is not None:
                raise ImportError(self._error)
            try:
                for key, value in self.env.items():
                    os.environ.setdefault(key, value)
                mod = importlib.import_module(self.module_name)
                if self._setup is not None:
                    self._setup(mod)
            except Exception as exc:
                self._error = f"{self.module_name} failed to import: {exc!r}"
                raise
            self._module = mod
        return self._module

    def reason(self) -> str | None:
        """None when usable, else why not (never raises)."""
        try:
            missing = importlib.util.find_spec(self.module_name) is None
        except (ImportError, ValueError):
            missing = True
        if missing:
            return f"{self.module_name} not installed: pip install '.[{self.extra}]'"
        try:
            self.module()
        except Exception:
            return self._error or f"{self.module_name} failed to import"
        return None

    def version(self) -> str:
        for dist in self.dists:
            try:
                return version(dist)
            except PackageNotFoundError:
                continue
        return ""


def np_float(name: str, a, *, ndim=None, min_ndim=None) -> np.ndarray:
    """An array argument as NumPy, checked like the NumPy backend does: integers read as float64,
    real floats pass, object (exact Fraction) arrays are the reference's business, others a DTypeError."""
    from convspec.api.backend import Unsupported

    a = np.asarray(a)
    if a.dtype.kind in "iu":
        a = a.astype(np.float64)
    elif a.dtype.kind == "O":
        raise Unsupported(f"{name}: object (exact rational) arrays are evaluated by the reference only")
    elif a.dtype.kind != "f":
        raise DTypeError(name, f"dtype must be a real floating or integer dtype, got {a.dtype}")
    return check_ndim(name, a, ndim=ndim, min_ndim=min_ndim)


def common(*arrays):
    """The arrays in their common NumPy dtype (float32 stays float32); None stays None."""
    dt = np.result_type(*[a for a in arrays if a is not None])
    return [None if a is None else a.astype(dt, copy=False) for a in arrays]


def kmax_k(k, n: int) -> int:
    if not isinstance(k, Integral) or isinstance(k, bool) or not 1 <= k <= n:
        raise ParameterError("k", f"must be an int with 1 <= k <= x.shape[-1] = {n}, got {k!r}")
    return int(k)


def check_k(k, n):
    return kmax_k(k, n)


def check_labels(labels, z_shape) -> np.ndarray:
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise DTypeError("labels", f"must be integers, got dtype {y.dtype}")
    if len(z_shape) != 2:
        raise ShapeError("logits", f"must be (N, K), got shape {tuple(z_shape)}")
    if y.shape != (z_shape[0],):
        raise ShapeError("labels", f"must have shape (N,) = ({z_shape[0]},), got {tuple(y.shape)}")
    if y.size and (y.min() < 0 or y.max() >= z_shape[1]):
        raise ParameterError("labels", f"must lie in [0, K) = [0, {z_shape[1]}), got values in [{y.min()}, {y.max()}]")
    return y.astype(np.int64)


def pool_geometry(x_shape, kernel_size, stride, padding, dilation, ceil_mode) -> Pool:
    """The spec's pooling geometry; a window entirely in the padding is a ParameterError."""
    geo = Pool(tuple(x_shape), kernel_size, stride, padding, dilation, ceil_mode)
    for axis in range(geo.nd):
        if 0 in geo.dim_counts(axis, False):
            raise ParameterError(
                "padding",
                "a pooling window lies entirely in the padding (padding must leave "
                "every window at least one input element)",
            )
    return geo


def pool_pads_with_overhang(geo: Pool):
    """(begin, end) per spatial dim, the end extended by the ceil_mode overhang: padding a framework's
    VALID (floor) pooling with these gives at least the spec's windows; crop to geo.out_sizes."""
    return tuple((b, e + o) for (b, e), o in zip(geo.pads, geo.overhang))


def window_stack(x: np.ndarray, params: dict) -> np.ndarray:
    """Index bookkeeping for deviation(case): the pooling windows of x as an array (taps, N, C, *out),
    padding and ceil overhang as NaN-free -inf. Only inspects the case's data; computes no op result."""
    from ._xp.arrays import padded, tap_slices

    geo = pool_geometry(
        x.shape,
        params["kernel_size"],
        params.get("stride"),
        params.get("padding", 0),
        params.get("dilation", 1),
        params.get("ceil_mode", False),
    )
    xp = padded(np, x.astype(np.float64), pool_pads_with_overhang(geo), -np.inf)
    lead = (slice(None), slice(None))
    return np.stack([xp[lead + sl] for sl in tap_slices(geo.kernel, geo.stride, geo.dilation, geo.out_sizes)])


def windows_with_nan(case) -> int:
    """How many max-pool windows of the case's input hold a NaN (0 when none)."""
    x = case.inputs()[0]
    if not np.isnan(x).any():
        return 0
    if case.op == "global_max_pool":
        return int(np.isnan(x.reshape(x.shape[:2] + (-1,))).any(axis=-1).sum())
    return int(np.isnan(window_stack(x, case.params)).any(axis=0).sum())


def windows_with_ties(case) -> int:
    """How many max-pool windows (global: planes) of the case's input hold their maximum twice or more."""
    x = case.inputs()[0].astype(np.float64)
    if case.op == "global_max_pool":
        w = np.moveaxis(x.reshape(x.shape[:2] + (-1,)), -1, 0)
    else:
        w = window_stack(x, case.params)
    with np.errstate(invalid="ignore"):
        top = np.max(w, axis=0)
        return int(((w == top[None]).sum(axis=0) >= 2).sum())


# -- argument checks every framework backend shares (arrays checked by the backend's own `check(name, a,
# ndim=...)`, then brought to their common dtype by its `common(*arrays)`) ------------------------------


def conv_inputs(check, common, x, w, b, **geometry) -> tuple:
    """conv/convolve: (x, w, b, geometry), the arrays checked and in their common dtype."""
    x = check("x", x, ndim=(3, 4, 5))
    w = check("w", w)
    b = None if b is None else check("b", b, ndim=1)
    geo = Conv(tuple(x.shape), tuple(w.shape), None if b is None else tuple(b.shape), **geometry)
    x, w, b = common(x, w, b)
    return x, w, b, geo


def linear_inputs(check, common, x, w, b) -> tuple:
    """linear: (x, w, b) checked (x (N, in), w (out, in), b (out,)) and in their common dtype."""
    x = check("x", x, ndim=2)
    w = check("w", w, ndim=2)
    checks.linear_shapes(x.shape, w.shape, None)
    if b is not None:
        b = check("b", b, ndim=1)
        checks.linear_shapes(x.shape, w.shape, b.shape)
    return common(x, w, b)
