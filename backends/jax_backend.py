"""The JAX backend ``jax`` (install ``convspec[jax]``): jax.lax, jax.numpy and jax.nn on JAX's default
device, float32 and float64.

Every forward calls JAX's own operators with the spec's parameters; every backward is ``jax.vjp`` of that
forward, never a hand-written gradient. Mappings (search for "MAP"):

- conv / convolve: ``lax.conv_general_dilated`` with explicit (begin, end) padding pairs, rhs_dilation,
  feature_group_count; convolve flips the kernel with ``jnp.flip`` first (the spec's definition).
- conv_transpose: ``lax.conv_general_dilated`` over the stride-dilated input (lhs_dilation = stride),
  the kernel flipped and its in/out axes swapped per group, padding d*(k-1) - p (+ output_padding at the
  end): the construction ``lax.conv_transpose(transpose_kernel=True)`` uses, which has no
  feature_group_count.
- max_pool: ``lax.reduce_window(-inf, lax.max)`` with explicit padding and window dilation; the ceil_mode
  overhang is extra end padding and the result is cropped to the spec's size. JAX has no argmax
  pooling, so ``max_pool_indices`` is unsupported.
- avg_pool: JAX has no average-pool primitive: ``reduce_window(add)`` of the zero-padded input divided
  by ``reduce_window(add)`` of a mask of the elements the divisor counts (real inputs, or real inputs
  and explicit padding), as Flax's ``avg_pool(count_include_pad=False)`` does.
- global pooling: ``jnp.max`` / ``jnp.mean`` over the spatial axes; k-max: ``lax.top_k`` (ties: lower
  index first), positions sorted back with ``jnp.sort``, values by ``jnp.take_along_axis``.
- relu, sigmoid, softmax: ``jax.nn``; tanh: ``jnp.tanh``; linear: ``jnp.matmul`` (HIGHEST precision);
  cross_entropy: ``jax.nn.log_softmax`` and ``jnp.take_along_axis``, mean over the batch.
- batch_norm: ``jax.nn.standardize`` over the batch and spatial axes with the two-pass ``jnp.mean`` /
  ``jnp.var`` (biased) passed in (its own default variance is ``mean(x^2) - mean(x)^2``), then
  ``gamma * z + beta``: ``jax.example_libraries.stax.BatchNorm``'s construction. JAX has no batch-norm op.
- batch_norm_inference: ``jax.nn.standardize`` with the given mean and var; gradients for x, gamma, beta.
- batch_norm_running_stats: ``jnp.mean`` and ``jnp.var(ddof=1)`` (the unbiased variance), blended with
  the running statistics by momentum; no backward (a state update).
- local_response_norm: JAX has no LRN op: the channel-window sum of x^2 is ``lax.reduce_window(add)`` over
  axis 1 (window size, padding size // 2 before and (size - 1) // 2 after), then
  ``x * jnp.power(k + alpha * sum, -beta)`` (alpha not divided by size).
- dropout: JAX's dropouts (``stax.Dropout``, Flax's ``nn.Dropout``) draw their own mask from a PRNG key, so
  the backend runs their construction with the spec's mask: ``jnp.where(keep, x / (1 - p), 0)`` (a dropped
  inf or NaN gives 0 there, NaN in the spec: declared).
- concat: ``jnp.concatenate``; its backward is one gradient per array.

float64 needs JAX's x64 mode: the backend turns ``jax_enable_x64`` on when it first imports JAX (not at
convspec's import). Declared deviations: see ``deviation`` and docs/framework-differences.md.
"""

from __future__ import annotations

import numpy as np

from convspec.api.backend import Backend, Deviation, Unsupported
from convspec.api.hookspecs import hookimpl

from . import _frameworks as fw
from ._xp import checks
from ._xp.errors import DTypeError, ShapeError


def _setup(jax):
    # float64 cases need x64; set once, in the backend (importing convspec does not import jax)
    jax.config.update("jax_enable_x64", True)


JAX = fw.Framework("jax", "jax", dists=("jax",), setup=_setup)


def _jax():
    jax = JAX.module()
    import jax.numpy as jnp
    from jax import lax

    return jax, jnp, lax


class JaxBackend(Backend):
    name = "jax"
    device = "cpu"
    dtypes = ("float32", "float64")
    # XLA's CPU kernels flush subnormal results to zero (claim J9 in docs/framework-differences.md:
    # jnp.array([1e-40], float32) * 1.0 == 0): a precision property the spec bounds (an absolute tiny),
    # not a deviation
    flushes_subnormals = True

    @property
    def version(self) -> str:
        v = JAX.version()
        return f"{v} (jaxlib {fw.Framework('jaxlib', 'jax').version()})" if v else ""

    # ------------------------------------------------------------------ contract
    def availability(self) -> str | None:
        return JAX.reason()

    def from_numpy(self, a):
        jax, jnp, _ = _jax()
        a = np.asarray(a)
        if a.dtype == object:
            raise Unsupported("object (exact rational) arrays are evaluated by the reference only")
        return jnp.asarray(a)

    def to_numpy(self, t):
        return np.asarray(t)

    def synchronize(self) -> None:
        pass

    def deviation(self, case):
        return _deviation(case)

    # ------------------------------------------------------------------ helpers
    def _a(self, name, a, *, ndim=None, min_ndim=None):
        """An array argument as a floating JAX array (integers read as float64), ndim checked."""
        jax, jnp, _ = _jax()
        if not isinstance(a, jax.Array):
            a = jnp.asarray(fw.np_float(name, a))
        kind = np.dtype(a.dtype).kind
        if kind in "iu":
            a = a.astype(jnp.float64)
        elif kind != "f":
            raise DTypeError(name, f"dtype must be a real floating or integer dtype, got {a.dtype}")
        return fw.check_ndim(name, a, ndim=ndim, min_ndim=min_ndim)

    @staticmethod
    def _common(*arrays):
        _, jnp, _ = _jax()
        dt = jnp.result_type(*[a for a in arrays if a is not None])
        return [None if a is None else a.astype(dt) for a in arrays]

    def _vjp(self, forward, grad_out, inputs):
        """jax.vjp of forward at the non-None inputs: one gradient per input (None for an absent one)."""
        jax, jnp, _ = _jax()
        present = [a for a in inputs if a is not None]

        def f(*args):
            it = iter(args)
            return forward(*[None if a is None else next(it) for a in inputs])

        y, pullback = jax.vjp(f, *present)
        g = self._a("grad_out", grad_out)
        if tuple(g.shape) != tuple(y.shape):
            raise ShapeError("grad_out", f"must have the forward output's shape {tuple(y.shape)}, got {tuple(g.shape)}")
        try:
            got = iter(pullback(g.astype(y.dtype)))
        except NotImplementedError as exc:  # e.g. the max-pool VJP with window dilation
            raise Unsupported(f"jax: {exc}") from None
        return tuple(None if a is None else next(got) for a in inputs)

    # ------------------------------------------------------------------ convolutions
    @staticmethod
    def _dims(nd):
        sp = "DHW"[3 - nd :]
        return ("NC" + sp, "OI" + sp, "NC" + sp)

    def _conv_args(self, x, w, b, stride, padding, dilation, groups, strict):
        x, w, b, geo = fw.conv_inputs(
            self._a,
            self._common,
            x,
            w,
            b,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            strict=strict,
        )
        return x, w, b, geo

    def _conv_forward(self, x, w, b, geo, flip=False):
        _, jnp, lax = _jax()
        if flip:
            w = jnp.flip(w, axis=tuple(range(2, w.ndim)))
        # MAP: the spec's (begin, end) pads, stride, dilation and groups are lax's own parameters
        y = lax.conv_general_dilated(
            x,
            w,
            window_strides=geo.stride,
            padding=geo.pads,
            rhs_dilation=geo.dilation,
            dimension_numbers=self._dims(geo.nd),
            feature_group_count=geo.groups,
            precision=lax.Precision.HIGHEST,
        )
        return y if b is None else y + b.reshape((1, -1) + (1,) * geo.nd)

    def conv(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        x, w, b, geo = self._conv_args(x, w, b, stride, padding, dilation, groups, strict)
        return self._conv_forward(x, w, b, geo)

    def conv_backward(self, grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        x, w, b, geo = self._conv_args(x, w, b, stride, padding, dilation, groups, strict)
        return self._vjp(lambda x, w, b: self._conv_forward(x, w, b, geo), grad_out, [x, w, b])

    def convolve(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        x, w, b, geo = self._conv_args(x, w, b, stride, padding, dilation, groups, strict)
        return self._conv_forward(x, w, b, geo, flip=True)

    def convolve_backward(self, grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        x, w, b, geo = self._conv_args(x, w, b, stride, padding, dilation, groups, strict)
        return self._vjp(lambda x, w, b: self._conv_forward(x, w, b, geo, flip=True), grad_out, [x, w, b])

    def _transpose_args(self, y, w, b, stride, padding, output_padding, dilation, groups):
        y = self._a("y", y, ndim=(3, 4, 5))
        w = self._a("w", w)
        b = None if b is None else self._a("b", b, ndim=1)
        geo = fw.conv_transpose(
            tuple(y.shape),
            tuple(w.shape),
            None if b is None else tuple(b.shape),
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
        )
        y, w, b = self._common(y, w, b)
        return y, w, b, geo

    def _transpose_forward(self, y, w, b, geo):
        _, jnp, lax = _jax()
        nd, g = geo.nd, geo.groups
        # MAP: (C_y, C_x/G, *k) -> (C_x, C_y/G, *k) per group, flipped: lax.conv_transpose's
        # transpose_kernel=True construction, with groups
        c_y, cxg = w.shape[0], w.shape[1]
        k = tuple(w.shape[2:])
        wt = w.reshape((g, c_y // g, cxg) + k).swapaxes(1, 2).reshape((g * cxg, c_y // g) + k)
        wt = jnp.flip(wt, axis=tuple(range(2, 2 + nd)))
        pads = []
        for (pb, pe), kk, d, n_x, n_y, s in zip(geo.pads, k, geo.dilation, geo.in_sizes, geo.out_sizes, geo.stride):
            ext = d * (kk - 1)
            # the output size n_x fixes the end padding (it includes output_padding)
            lo = ext - pb
            hi = n_x - 1 + pb - (n_y - 1) * s
            pads.append((lo, hi))
        out = lax.conv_general_dilated(
            y,
            wt,
            window_strides=(1,) * nd,
            padding=pads,
            lhs_dilation=geo.stride,
            rhs_dilation=geo.dilation,
            dimension_numbers=self._dims(nd),
            feature_group_count=g,
            precision=lax.Precision.HIGHEST,
        )
        return out if b is None else out + b.reshape((1, -1) + (1,) * nd)

    def conv_transpose(self, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        y, w, b, geo = self._transpose_args(y, w, b, stride, padding, output_padding, dilation, groups)
        return self._transpose_forward(y, w, b, geo)

    def conv_transpose_backward(
        self, grad_out, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1
    ):
        y, w, b, geo = self._transpose_args(y, w, b, stride, padding, output_padding, dilation, groups)
        return self._vjp(lambda y, w, b: self._transpose_forward(y, w, b, geo), grad_out, [y, w, b])

    # ------------------------------------------------------------------ pooling
    def _pool_args(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        x = self._a("x", x, ndim=(3, 4, 5))
        return x, fw.pool_geometry(tuple(x.shape), kernel_size, stride, padding, dilation, ceil_mode)

    @staticmethod
    def _window(geo):
        pads = ((0, 0), (0, 0)) + fw.pool_pads_with_overhang(geo)
        return dict(
            window_dimensions=(1, 1) + geo.kernel,
            window_strides=(1, 1) + geo.stride,
            padding=pads,
            window_dilation=(1, 1) + geo.dilation,
        )

    @staticmethod
    def _crop(a, geo):
        return a[(slice(None), slice(None)) + tuple(slice(0, o) for o in geo.out_sizes)]

    def _max_pool_forward(self, x, geo):
        _, jnp, lax = _jax()
        # MAP: reduce_window max, -inf init (padding and overhang count as -inf)
        y = lax.reduce_window(x, jnp.array(-jnp.inf, x.dtype), lax.max, **self._window(geo))
        return self._crop(y, geo)

    def max_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._max_pool_forward(x, geo)

    def max_pool_indices(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        raise Unsupported("JAX has no max pooling with an index (argmax) output: lax.reduce_window returns values only")

    def max_pool_backward(self, grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._vjp(lambda x: self._max_pool_forward(x, geo), grad_out, [x])

    def _avg_pool_forward(self, x, geo, include_pad):
        _, jnp, lax = _jax()
        win = self._window(geo)
        zero = jnp.array(0, x.dtype)
        total = lax.reduce_window(x, zero, lax.add, **win)
        # the divisor: reduce_window(add) over a mask of what it counts (never the ceil overhang)
        if include_pad:
            mask = jnp.pad(jnp.ones(x.shape, x.dtype), ((0, 0), (0, 0)) + geo.pads, constant_values=1)
            mwin = dict(win, padding=((0, 0), (0, 0)) + tuple((0, o) for o in geo.overhang))
        else:
            mask, mwin = jnp.ones(x.shape, x.dtype), win
        count = lax.reduce_window(mask, zero, lax.add, **mwin)
        return self._crop(total / count, geo)

    def avg_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._avg_pool_forward(x, geo, bool(count_include_pad))

    def avg_pool_backward(
        self, grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False
    ):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._vjp(lambda x: self._avg_pool_forward(x, geo, bool(count_include_pad)), grad_out, [x])

    def _global(self, x, reduce):
        x = self._a("x", x, ndim=(3, 4, 5))
        return x, (lambda x: reduce(x, axis=tuple(range(2, x.ndim))))

    def global_max_pool(self, x):
        _, jnp, _ = _jax()
        x, f = self._global(x, jnp.max)
        return f(x)

    def global_max_pool_backward(self, grad_out, x):
        _, jnp, _ = _jax()
        x, f = self._global(x, jnp.max)
        return self._vjp(f, grad_out, [x])

    def global_avg_pool(self, x):
        _, jnp, _ = _jax()
        x, f = self._global(x, jnp.mean)
        return f(x)

    def global_avg_pool_backward(self, grad_out, x):
        _, jnp, _ = _jax()
        x, f = self._global(x, jnp.mean)
        return self._vjp(f, grad_out, [x])

    def _kmax(self, x, k):
        _, jnp, lax = _jax()
        k = fw.kmax_k(k, x.shape[-1])
        # MAP: lax.top_k ranks by value, ties to the lower index; the kept positions in original order
        idx = jnp.sort(lax.top_k(lax.stop_gradient(x), k)[1], axis=-1)
        return idx

    def kmax_pool_indices(self, x, k):
        x = self._a("x", x, min_ndim=1)
        return self._kmax(x, k)

    def kmax_pool(self, x, k):
        _, jnp, _ = _jax()
        x = self._a("x", x, min_ndim=1)
        return jnp.take_along_axis(x, self._kmax(x, k), axis=-1)

    def kmax_pool_backward(self, grad_out, x, k):
        _, jnp, _ = _jax()
        x = self._a("x", x, min_ndim=1)
        idx = self._kmax(x, k)
        return self._vjp(lambda x: jnp.take_along_axis(x, idx, axis=-1), grad_out, [x])

    # ------------------------------------------------------------------ elementwise, dense, losses
    def relu(self, x):
        jax, _, _ = _jax()
        return jax.nn.relu(self._a("x", x))

    def relu_backward(self, grad_out, x):
        jax, _, _ = _jax()
        return self._vjp(jax.nn.relu, grad_out, [self._a("x", x)])

    def sigmoid(self, x):
        jax, _, _ = _jax()
        return jax.nn.sigmoid(self._a("x", x))

    def sigmoid_backward(self, grad_out, x):
        jax, _, _ = _jax()
        return self._vjp(jax.nn.sigmoid, grad_out, [self._a("x", x)])

    def tanh(self, x):
        _, jnp, _ = _jax()
        return jnp.tanh(self._a("x", x))

    def tanh_backward(self, grad_out, x):
        _, jnp, _ = _jax()
        return self._vjp(jnp.tanh, grad_out, [self._a("x", x)])

    def softmax(self, z):
        jax, _, _ = _jax()
        return jax.nn.softmax(self._a("z", z, min_ndim=1), axis=-1)

    def softmax_backward(self, grad_out, z):
        jax, _, _ = _jax()
        return self._vjp(lambda z: jax.nn.softmax(z, axis=-1), grad_out, [self._a("z", z, min_ndim=1)])

    def _ce(self, logits, labels):
        jax, jnp, _ = _jax()
        z = self._a("logits", logits)
        y = jnp.asarray(fw.check_labels(np.asarray(labels), tuple(z.shape)))

        def f(z):
            logp = jax.nn.log_softmax(z, axis=-1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0])

        return z, f

    def cross_entropy(self, logits, labels):
        z, f = self._ce(logits, labels)
        return f(z)

    def cross_entropy_backward(self, grad_out, logits, labels):
        z, f = self._ce(logits, labels)
        g = self._a("grad_out", grad_out)
        if g.size != 1:
            raise ShapeError("grad_out", f"must be a scalar (the loss is a scalar), got shape {tuple(g.shape)}")
        return self._vjp(f, g.reshape(()), [z])

    def _linear_args(self, x, w, b):
        return fw.linear_inputs(self._a, self._common, x, w, b)

    @staticmethod
    def _linear(x, w, b):
        _, jnp, lax = _jax()
        y = jnp.matmul(x, w.T, precision=lax.Precision.HIGHEST)
        return y if b is None else y + b

    def linear(self, x, w, b=None):
        return self._linear(*self._linear_args(x, w, b))

    def linear_backward(self, grad_out, x, w, b=None):
        return self._vjp(self._linear, grad_out, self._linear_args(x, w, b))

    @staticmethod
    def _flatten(x):
        return x.reshape((x.shape[0], -1))

    def flatten(self, x):
        return self._flatten(self._a("x", x, min_ndim=1))

    def flatten_backward(self, grad_out, x):
        return self._vjp(self._flatten, grad_out, [self._a("x", x, min_ndim=1)])

    def _add_args(self, x, y):
        x, y = self._a("x", x), self._a("y", y)
        if x.shape != y.shape:
            raise ShapeError("y", f"must have the shape of x {tuple(x.shape)} (no broadcasting), got {tuple(y.shape)}")
        return self._common(x, y)

    def add(self, x, y):
        _, jnp, _ = _jax()
        return jnp.add(*self._add_args(x, y))

    def add_backward(self, grad_out, x, y):
        _, jnp, _ = _jax()
        return self._vjp(jnp.add, grad_out, self._add_args(x, y))

    # ------------------------------------------------------------------ normalization, dropout, concat
    # The checks are the NumPy backend's (convspec.backends._xp.norm), in its order, through _xp.checks.
    def _floating(self, name, a, reason, **kw):
        """An input of an op evaluated in floating point only: a Fraction array is NormOps' DTypeError."""
        checks.floating_only(name, _kind(a), reason)
        return self._a(name, a, **kw)

    def _bn_inputs(self, x, gamma, beta, eps, *extra):
        x = self._floating("x", x, checks.BN_FRACTION, ndim=BN_X)
        checks.bn_nonempty(tuple(x.shape))
        vecs = []
        for name, a in (("gamma", gamma), ("beta", beta)) + extra:
            v = self._floating(name, a, checks.BN_FRACTION, ndim=1)
            checks.bn_channels(name, tuple(v.shape), x.shape[1])
            vecs.append(v)
        eps = checks.real("eps", eps, lo=0, lo_open=True)
        return self._common(x, *vecs), eps

    @staticmethod
    def _bn_forward(eps, x, gamma, beta):
        jax, jnp, _ = _jax()
        axes = _bn_axes(x)
        # MAP: jax.nn.standardize over the batch and spatial axes, as stax.BatchNorm; the statistics passed in
        # are jnp.mean and jnp.var (two passes: mean, then the centred squares; biased), not standardize's
        # default mean(x^2) - mean(x)^2, which cancels catastrophically when |mean| >> std
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.var(x, axis=axes, keepdims=True)
        z = jax.nn.standardize(x, axis=axes, mean=mean, variance=var, epsilon=eps)
        return _per_channel(gamma, x) * z + _per_channel(beta, x)

    def batch_norm(self, x, gamma, beta, *, eps=1e-5):
        (x, gamma, beta), eps = self._bn_inputs(x, gamma, beta, eps)
        return self._bn_forward(eps, x, gamma, beta)

    def batch_norm_backward(self, grad_out, x, gamma, beta, *, eps=1e-5):
        """-> (dx, dgamma, dbeta): jax.vjp of the forward, through the batch statistics."""
        (x, gamma, beta), eps = self._bn_inputs(x, gamma, beta, eps)
        return self._vjp(lambda x, gamma, beta: self._bn_forward(eps, x, gamma, beta), grad_out, [x, gamma, beta])

    def _bn_inference_inputs(self, x, gamma, beta, mean, var, eps):
        arrays, eps = self._bn_inputs(x, gamma, beta, eps, ("mean", mean), ("var", var))
        checks.nonnegative("var", bool((arrays[4] < 0).any()))
        return arrays, eps

    @staticmethod
    def _bn_inference_forward(eps, x, gamma, beta, mean, var):
        jax, _, _ = _jax()
        # MAP: jax.nn.standardize with the given statistics: (x - mean) * rsqrt(var + eps)
        z = jax.nn.standardize(
            x, axis=_bn_axes(x), mean=_per_channel(mean, x), variance=_per_channel(var, x), epsilon=eps
        )
        return _per_channel(gamma, x) * z + _per_channel(beta, x)

    def batch_norm_inference(self, x, gamma, beta, mean, var, *, eps=1e-5):
        arrays, eps = self._bn_inference_inputs(x, gamma, beta, mean, var, eps)
        return self._bn_inference_forward(eps, *arrays)

    def batch_norm_inference_backward(self, grad_out, x, gamma, beta, mean, var, *, eps=1e-5):
        """-> (dx, dgamma, dbeta); mean and var are statistics, not differentiated (the spec's)."""
        (x, gamma, beta, mean, var), eps = self._bn_inference_inputs(x, gamma, beta, mean, var, eps)

        def f(x, gamma, beta):
            return self._bn_inference_forward(eps, x, gamma, beta, mean, var)

        return self._vjp(f, grad_out, [x, gamma, beta])

    def batch_norm_running_stats(self, running_mean, running_var, x, *, momentum=0.1):
        """-> (new_mean, new_var); a state update: there is no backward."""
        _, jnp, _ = _jax()
        x = self._a("x", x, ndim=BN_X)
        checks.bn_nonempty(tuple(x.shape))
        rm, rv = self._a("running_mean", running_mean, ndim=1), self._a("running_var", running_var, ndim=1)
        checks.bn_channels("running_mean", tuple(rm.shape), x.shape[1])
        checks.bn_channels("running_var", tuple(rv.shape), x.shape[1])
        checks.nonnegative("running_var", bool((rv < 0).any()))
        momentum = checks.real("momentum", momentum, lo=0, hi=1)
        checks.running_stats_m(tuple(x.shape))
        rm, rv, x = self._common(rm, rv, x)
        axes = _bn_axes(x)
        # MAP: jnp.mean and jnp.var(ddof=1): the running variance takes the UNBIASED batch variance (the spec's,
        # PyTorch's); Flax's BatchNorm keeps the biased one (see docs/framework-differences.md)
        mean, var = jnp.mean(x, axis=axes), jnp.var(x, axis=axes, ddof=1)
        return (1 - momentum) * rm + momentum * mean, (1 - momentum) * rv + momentum * var

    def _lrn_inputs(self, x, size, alpha, beta, k):
        x = self._floating("x", x, checks.LRN_FRACTION, ndim=BN_X)
        size = checks.lrn_size(size)
        alpha = checks.real("alpha", alpha, lo=0)
        beta = checks.real("beta", beta)
        k = checks.real("k", k, lo=0, lo_open=True)
        return x, (size, alpha, beta, k)

    @staticmethod
    def _lrn_forward(plan, x):
        _, jnp, lax = _jax()
        size, alpha, beta, k = plan
        rest = (1,) * (x.ndim - 2)
        # MAP: JAX has no LRN op: the window sum of x^2 over channels c - size // 2 .. c + (size - 1) // 2
        # (clipped at the edges: zero padding) is lax.reduce_window(add) over axis 1; alpha is the paper's,
        # not divided by size
        s = lax.reduce_window(
            x * x,
            jnp.array(0, x.dtype),
            lax.add,
            window_dimensions=(1, size) + rest,
            window_strides=(1, 1) + rest,
            padding=((0, 0), (size // 2, (size - 1) // 2)) + ((0, 0),) * len(rest),
        )
        return x * jnp.power(k + alpha * s, -beta)

    def local_response_norm(self, x, size, *, alpha=1e-4, beta=0.75, k=2.0):
        x, plan = self._lrn_inputs(x, size, alpha, beta, k)
        return self._lrn_forward(plan, x)

    def local_response_norm_backward(self, grad_out, x, size, *, alpha=1e-4, beta=0.75, k=2.0):
        x, plan = self._lrn_inputs(x, size, alpha, beta, k)
        return self._vjp(lambda x: self._lrn_forward(plan, x), grad_out, [x])

    def _dropout_inputs(self, x, keep, p):
        jax, jnp, _ = _jax()
        x = self._a("x", x)
        if isinstance(keep, jax.Array):
            checks.keep_mask(np.dtype(keep.dtype).kind, keep.dtype, keep.shape, tuple(x.shape))
        else:
            a = np.asarray(keep)
            checks.keep_mask(a.dtype.kind, a.dtype, a.shape, tuple(x.shape))
            keep = jnp.asarray(a)
        if keep.dtype != jnp.bool_:
            checks.keep_values(bool(((keep != 0) & (keep != 1)).any()))
        p = checks.real("p", p, lo=0, hi=1, hi_open=True)
        return x, keep.astype(jnp.bool_), p

    @staticmethod
    def _dropout_forward(p, keep, x):
        _, jnp, _ = _jax()
        # MAP: JAX's dropouts draw their own mask from a PRNG key (stax.Dropout: keep = random.bernoulli(rng,
        # rate, shape); jnp.where(keep, inputs / rate, 0), rate being the keep probability; Flax's nn.Dropout:
        # lax.select(mask, inputs / keep_prob, 0)): their construction with the spec's mask. A dropped inf or
        # NaN gives 0 here, NaN in the spec (0 * inf): declared in deviation()
        return jnp.where(keep, x / (1 - p), jnp.zeros_like(x))

    def dropout(self, x, keep, *, p):
        x, keep, p = self._dropout_inputs(x, keep, p)
        return self._dropout_forward(p, keep, x)

    def dropout_backward(self, grad_out, x, keep, *, p):
        """-> (dx,); keep (a mask) is not differentiated."""
        x, keep, p = self._dropout_inputs(x, keep, p)
        return self._vjp(lambda x: self._dropout_forward(p, keep, x), grad_out, [x])

    def _concat_inputs(self, xs, axis):
        checks.concat_sequence(xs)
        arrays = [self._a(f"xs[{i}]", a, min_ndim=1) for i, a in enumerate(xs)]
        axis = checks.concat_axis(axis, arrays[0].ndim)
        checks.concat_shapes([tuple(a.shape) for a in arrays], axis)
        return self._common(*arrays), axis

    def concat(self, xs, *, axis=1):
        _, jnp, _ = _jax()
        arrays, axis = self._concat_inputs(xs, axis)
        return jnp.concatenate(arrays, axis=axis)

    def concat_backward(self, grad_out, xs, *, axis=1):
        """-> one gradient per array of xs: jax.vjp of jnp.concatenate splits grad_out."""
        _, jnp, _ = _jax()
        arrays, axis = self._concat_inputs(xs, axis)
        return self._vjp(lambda *xs: jnp.concatenate(xs, axis=axis), grad_out, arrays)


BN_X = (2, 3, 4, 5)  # batch norm and LRN: (N, C, *spatial) with 0 to 3 spatial dims


def _kind(a) -> str:
    """The NumPy dtype kind of an argument ("O" for a Fraction array)."""
    dtype = getattr(a, "dtype", None)
    return np.dtype(dtype).kind if dtype is not None else np.asarray(a).dtype.kind


def _bn_axes(x) -> tuple:
    """The axes batch statistics reduce over: the batch axis and the spatial axes (all but channels)."""
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(v, x):
    """A (C,) vector broadcast against x (N, C, *spatial)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


JAX_MAX_GRAD = (
    "JAX's gradient of jnp.max (reduce_max) divides the gradient equally among all elements equal to the "
    "maximum (lax._reduce_chooser_jvp_rule: location_indicators / counts), and a NaN maximum gives a NaN "
    "gradient everywhere (NaN == NaN is false, counts = 0); the spec routes it to the first maximum / first NaN"
)
JAX_POOL_NAN_GRAD = (
    "JAX's max-pool gradient (reduce_window max -> select_and_gather_add with a GE select, "
    "windowed_reductions._reduce_window_chooser_jvp_rule) does not route the gradient to the NaN the forward "
    "returns: x >= NaN and NaN >= x are both false, so the pairwise select moves on from a NaN"
)


JAX_MAX_NAN = (
    "XLA's CPU reduce_max drops NaN from an array of 4096 or more elements (jnp.max of [NaN] + 4095 zeros is 0, "
    "of [NaN] + 4094 zeros NaN; openxla/xla#21461 reports the same family), and its gradient is NaN at a NaN "
    "maximum (lax._reduce_chooser_jvp_rule: NaN == NaN is false, the count is 0)"
)


JAX_TOPK_ZERO = (
    "lax.top_k (chlo.top_k) orders floats totally, +0.0 above -0.0, so of a -0.0 and a +0.0 the +0.0 ranks "
    "higher (lax.top_k([-0., 0., -1.], 1) is index 1); the spec compares them equal, ties to the smaller index"
)


JAX_DROPOUT_SELECT = (
    "JAX's dropouts select instead of multiplying by the mask: jax.example_libraries.stax.Dropout returns "
    "jnp.where(keep, inputs / rate, 0) and Flax's nn.Dropout lax.select(mask, inputs / keep_prob, "
    "zeros_like(inputs)), so a dropped inf or NaN gives 0: stax.Dropout(0.5) with jax.random.key(0) (x64 off) draws "
    "the mask [0, 0, 1, 1] and maps [inf, nan, 1, -inf] to [0, 0, 2, -inf]; the spec's x * keep / (1 - p) gives "
    "[nan, nan, 2, -inf]"
)


def _dropped_nonfinite(case) -> bool:
    """Whether the dropout case drops (keep == 0) an inf or NaN of x."""
    x, keep = case.inputs()[:2]
    return bool((~np.isfinite(np.asarray(x, dtype=np.float64)) & (np.asarray(keep) == 0)).any())


def _signed_zero_rows(x) -> bool:
    """Whether some row (last axis) of x holds both a -0.0 and a +0.0."""
    zero = x == 0
    neg = np.signbit(x) & zero
    return bool(((neg.any(axis=-1)) & ((zero & ~neg).any(axis=-1))).any())


def _deviation(case):
    try:
        if case.op == "kmax_pool" and _signed_zero_rows(case.inputs()[0]):
            return Deviation(JAX_TOPK_ZERO, ("forward", "indices", "grad x"))
        if case.op == "global_max_pool" and fw.windows_with_nan(case):
            big = int(np.prod(case.shapes["x"])) >= 4096
            return Deviation(JAX_MAX_NAN if big else JAX_MAX_GRAD, ("forward", "grad x") if big else ("grad x",))
        if case.op == "global_max_pool" and fw.windows_with_ties(case):
            return Deviation(JAX_MAX_GRAD, ("grad x",))
        if case.op == "max_pool" and fw.windows_with_nan(case):
            return Deviation(JAX_POOL_NAN_GRAD, ("grad x",))
        if case.op == "dropout" and _dropped_nonfinite(case):
            return Deviation(JAX_DROPOUT_SELECT, ("forward",))
    except Exception:  # a case the spec rejects: no deviation to declare
        return None
    return None


@hookimpl
def register_backends(register):
    register(JaxBackend())
