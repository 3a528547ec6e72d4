"""Every op of the spec, forward and backward, as methods of `ArrayOps` parameterised by the array
module `self.xp` (numpy or cupy): argument validation, dtype handling, then the kernels.

A backend is `class MyBackend(ArrayOps, Backend)` with `xp` set; signatures, argument order and
return tuples are the reference's. Computation is in the inputs' common dtype (float32 stays float32;
integer inputs count as float64)."""

from __future__ import annotations

from math import prod
from numbers import Integral

from . import conv as _conv
from . import elementwise as _ew
from . import pool as _pool
from .arrays import as_float, cast, common_dtype, grad, spatial, to_array, transcendental
from .errors import DTypeError, ParameterError, ShapeError
from .geometry import Conv, Pool, conv_transpose
from .norm import NormOps


def _flip(w):
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


class ArrayOps(NormOps):
    xp = None  # the array module, set by the backend class
    col_limit = _conv.DEFAULT_LIMIT  # bytes of im2col column matrix per batch chunk

    def release_memory(self) -> None:
        """Free the cached conv work buffers (benchmarks call it before measuring peak memory)."""
        _conv.release_scratch()

    # ---------------------------------------------------------------- conv family
    def _conv_inputs(self, x, w, b, x_name="x"):
        xp = self.xp
        x = spatial(xp, x_name, x)
        w = as_float(xp, "w", w)
        b = None if b is None else as_float(xp, "b", b, ndim=1)
        return x, w, b

    def _conv_geo(self, x, w, b, stride, padding, dilation, groups, strict):
        return Conv(
            x.shape,
            w.shape,
            None if b is None else b.shape,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            strict=strict,
        )

    def conv(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        xp = self.xp
        x, w, b = self._conv_inputs(x, w, b)
        geo = self._conv_geo(x, w, b, stride, padding, dilation, groups, strict)
        dt = common_dtype(xp, x, w, b)
        y, _, _ = _conv.conv_passes(xp, geo, x=cast(x, dt), w=cast(w, dt), want_y=True, limit=self.col_limit)
        return y if b is None else _conv.add_bias(xp, y, cast(b, dt))

    def conv_backward(self, grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        xp = self.xp
        x, w, b = self._conv_inputs(x, w, b)
        geo = self._conv_geo(x, w, b, stride, padding, dilation, groups, strict)
        g = grad(xp, grad_out, geo.y_shape)
        dt = common_dtype(xp, g, x, w, b)
        g = cast(g, dt)
        _, dx, dw = _conv.conv_passes(
            xp, geo, x=cast(x, dt), w=cast(w, dt), g=g, want_dx=True, want_dw=True, limit=self.col_limit
        )
        return dx, dw, (None if b is None else _conv.bias_grad(xp, g))

    def convolve(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        w = as_float(self.xp, "w", w, min_ndim=3)
        return self.conv(
            x, _flip(w), b, stride=stride, padding=padding, dilation=dilation, groups=groups, strict=strict
        )

    def convolve_backward(self, grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        w = as_float(self.xp, "w", w, min_ndim=3)
        dx, dw, db = self.conv_backward(
            grad_out, x, _flip(w), b, stride=stride, padding=padding, dilation=dilation, groups=groups, strict=strict
        )
        return dx, self.xp.ascontiguousarray(_flip(dw)), db

    def _transpose_geo(self, y, w, b, stride, padding, output_padding, dilation, groups):
        return conv_transpose(
            y.shape,
            w.shape,
            None if b is None else b.shape,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
        )

    def conv_transpose(self, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        xp = self.xp
        y, w, b = self._conv_inputs(y, w, b, "y")
        geo = self._transpose_geo(y, w, b, stride, padding, output_padding, dilation, groups)
        dt = common_dtype(xp, y, w, b)
        _, x, _ = _conv.conv_passes(xp, geo, w=cast(w, dt), g=cast(y, dt), want_dx=True, limit=self.col_limit)
        return x if b is None else _conv.add_bias(xp, x, cast(b, dt))

    def conv_transpose_backward(
        self, grad_out, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1
    ):
        """-> (dy, dw, db): dy = conv(g, w); dw is conv's weight gradient with input g and output y."""
        xp = self.xp
        y, w, b = self._conv_inputs(y, w, b, "y")
        geo = self._transpose_geo(y, w, b, stride, padding, output_padding, dilation, groups)
        g = grad(xp, grad_out, geo.x_shape)
        dt = common_dtype(xp, g, y, w, b)
        g = cast(g, dt)
        dy, _, dw = _conv.conv_passes(
            xp, geo, x=g, w=cast(w, dt), g=cast(y, dt), want_y=True, want_dw=True, limit=self.col_limit
        )
        return dy, dw, (None if b is None else _conv.bias_grad(xp, g))

    # ---------------------------------------------------------------- pooling
    def _pool(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        x = spatial(self.xp, "x", x)
        return x, Pool(x.shape, kernel_size, stride, padding, dilation, ceil_mode)

    def max_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        x, geo = self._pool(x, kernel_size, stride, padding, dilation, ceil_mode)
        return _pool.max_pool(self.xp, x, geo)[0]

    def max_pool_indices(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        x, geo = self._pool(x, kernel_size, stride, padding, dilation, ceil_mode)
        return _pool.max_pool(self.xp, x, geo, want_indices=True)[1]

    def max_pool_backward(self, grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        xp = self.xp
        x, geo = self._pool(x, kernel_size, stride, padding, dilation, ceil_mode)
        values, _, arg = _pool.max_pool(xp, x, geo, want_arg=True)
        g = grad(xp, grad_out, values.shape)
        g = cast(g, common_dtype(xp, g, x))
        return (_pool.max_pool_backward(xp, g, x.shape, arg, geo),)

    def _avg_geo(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        x, geo = self._pool(x, kernel_size, stride, padding, dilation, ceil_mode)
        if any(0 in geo.dim_counts(a, False) for a in range(geo.nd)):
            raise ParameterError(
                "padding",
                "a pooling window lies entirely in the padding "
                "(padding must leave every window at least one input element)",
            )
        return x, geo

    def avg_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
        x, geo = self._avg_geo(x, kernel_size, stride, padding, dilation, ceil_mode)
        return _pool.avg_pool(self.xp, x, geo, bool(count_include_pad))

    def avg_pool_backward(
        self, grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False
    ):
        xp = self.xp
        x, geo = self._avg_geo(x, kernel_size, stride, padding, dilation, ceil_mode)
        g = grad(xp, grad_out, tuple(x.shape[:2]) + geo.out_sizes)
        g = cast(g, common_dtype(xp, g, x))
        return (_pool.avg_pool_backward(xp, g, x.shape, geo, bool(count_include_pad)),)

    def global_max_pool(self, x):
        x = spatial(self.xp, "x", x)
        return _pool.global_max(self.xp, x)[0]

    def global_max_pool_backward(self, grad_out, x):
        xp = self.xp
        x = spatial(xp, "x", x)
        _, arg = _pool.global_max(xp, x)
        g = grad(xp, grad_out, x.shape[:2])
        return (_pool.global_max_backward(xp, cast(g, common_dtype(xp, g, x)), x.shape, arg),)

    def global_avg_pool(self, x):
        x = spatial(self.xp, "x", x)
        return _pool.global_avg(self.xp, x)

    def global_avg_pool_backward(self, grad_out, x):
        xp = self.xp
        x = spatial(xp, "x", x)
        g = grad(xp, grad_out, x.shape[:2])
        return (_pool.global_avg_backward(xp, cast(g, common_dtype(xp, g, x)), x.shape),)

    def _kmax(self, x, k):
        x = as_float(self.xp, "x", x, min_ndim=1)
        n = x.shape[-1]
        if not isinstance(k, Integral) or isinstance(k, bool) or not 1 <= k <= n:
            raise ParameterError("k", f"must be an int with 1 <= k <= x.shape[-1] = {n}, got {k!r}")
        return x, _pool.kmax_indices(self.xp, x, int(k))

    def kmax_pool_indices(self, x, k):
        return self._kmax(x, k)[1]

    def kmax_pool(self, x, k):
        x, idx = self._kmax(x, k)
        return self.xp.take_along_axis(x, idx, axis=-1)

    def kmax_pool_backward(self, grad_out, x, k):
        xp = self.xp
        x, idx = self._kmax(x, k)
        g = grad(xp, grad_out, idx.shape)
        return (_pool.kmax_backward(xp, cast(g, common_dtype(xp, g, x)), x.shape, idx),)

    # ---------------------------------------------------------------- elementwise, dense, losses
    def _unary_backward(self, grad_out, x, name="x", check=as_float):
        xp = self.xp
        x = check(xp, name, x)
        g = grad(xp, grad_out, x.shape)
        dt = common_dtype(xp, g, x)
        return cast(g, dt), cast(x, dt)

    def relu(self, x):
        return _ew.relu(self.xp, as_float(self.xp, "x", x))

    def relu_backward(self, grad_out, x):
        g, x = self._unary_backward(grad_out, x)
        return (_ew.relu_backward(self.xp, g, x),)

    def sigmoid(self, x):
        return _ew.sigmoid(self.xp, transcendental(self.xp, "x", x))

    def sigmoid_backward(self, grad_out, x):
        g, x = self._unary_backward(grad_out, x, check=transcendental)
        return (_ew.sigmoid_backward(self.xp, g, x),)

    def tanh(self, x):
        return _ew.tanh(self.xp, transcendental(self.xp, "x", x))

    def tanh_backward(self, grad_out, x):
        g, x = self._unary_backward(grad_out, x, check=transcendental)
        return (_ew.tanh_backward(self.xp, g, x),)

    def _logits(self, z, name="z"):
        z = transcendental(self.xp, name, z)
        if z.ndim < 1:
            raise ShapeError(name, "must have at least one axis (classes last)")
        return z

    def softmax(self, z):
        return _ew.softmax(self.xp, self._logits(z))

    def softmax_backward(self, grad_out, z):
        xp = self.xp
        z = self._logits(z)
        g = grad(xp, grad_out, z.shape)
        dt = common_dtype(xp, g, z)
        return (_ew.softmax_backward(xp, cast(g, dt), cast(z, dt)),)

    def _ce_inputs(self, logits, labels):
        xp = self.xp
        z = transcendental(xp, "logits", logits)
        if z.ndim != 2:
            raise ShapeError("logits", f"must be (N, K), got shape {tuple(z.shape)}")
        y = to_array(xp, labels)
        if y.dtype.kind not in "iu":
            raise DTypeError("labels", f"must be integers, got dtype {y.dtype}")
        if tuple(y.shape) != (z.shape[0],):
            raise ShapeError("labels", f"must have shape (N,) = ({z.shape[0]},), got {tuple(y.shape)}")
        if y.size:
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= z.shape[1]:
                raise ParameterError("labels", f"must lie in [0, K) = [0, {z.shape[1]}), got values in [{lo}, {hi}]")
        return z, y

    def cross_entropy(self, logits, labels):
        z, y = self._ce_inputs(logits, labels)
        return _ew.cross_entropy(self.xp, z, y)

    def cross_entropy_backward(self, grad_out, logits, labels):
        xp = self.xp
        z, y = self._ce_inputs(logits, labels)
        g = as_float(xp, "grad_out", grad_out)
        if g.size != 1:
            raise ShapeError("grad_out", f"must be a scalar (the loss is a scalar), got shape {tuple(g.shape)}")
        return (_ew.cross_entropy_backward(xp, g, z, y),)

    def _linear_inputs(self, x, w, b):
        xp = self.xp
        x = as_float(xp, "x", x, ndim=2)
        w = as_float(xp, "w", w, ndim=2)
        if x.shape[1] != w.shape[1]:
            raise ShapeError(
                "x",
                f"feature mismatch: x has {x.shape[1]} features but w expects {w.shape[1]} "
                f"(w is (out, in) = {tuple(w.shape)})",
            )
        if b is not None:
            b = as_float(xp, "b", b, ndim=1)
            if tuple(b.shape) != (w.shape[0],):
                raise ShapeError("b", f"must have shape (out,) = ({w.shape[0]},), got {tuple(b.shape)}")
        dt = common_dtype(xp, x, w, b)
        return cast(x, dt), cast(w, dt), cast(b, dt)

    def linear(self, x, w, b=None):
        x, w, b = self._linear_inputs(x, w, b)
        return _ew.linear(self.xp, x, w, b)

    def linear_backward(self, grad_out, x, w, b=None):
        xp = self.xp
        x, w, b = self._linear_inputs(x, w, b)
        g = grad(xp, grad_out, (x.shape[0], w.shape[0]))
        dt = common_dtype(xp, g, x)
        return _ew.linear_backward(xp, cast(g, dt), cast(x, dt), cast(w, dt), b is not None)

    def flatten(self, x):
        x = as_float(self.xp, "x", x, min_ndim=1)
        return x.reshape(x.shape[0], prod(x.shape[1:]))

    def flatten_backward(self, grad_out, x):
        x = as_float(self.xp, "x", x, min_ndim=1)
        g = grad(self.xp, grad_out, (x.shape[0], prod(x.shape[1:])))
        return (g.reshape(x.shape),)

    def _add_inputs(self, x, y):
        xp = self.xp
        x, y = as_float(xp, "x", x), as_float(xp, "y", y)
        if x.shape != y.shape:
            raise ShapeError("y", f"must have the shape of x {tuple(x.shape)} (no broadcasting), got {tuple(y.shape)}")
        return x, y

    def add(self, x, y):
        x, y = self._add_inputs(x, y)
        return x + y

    def add_backward(self, grad_out, x, y):
        x, y = self._add_inputs(x, y)
        g = grad(self.xp, grad_out, x.shape)
        return g, g.copy()
