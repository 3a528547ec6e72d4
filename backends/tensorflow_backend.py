"""The TensorFlow backend ``tensorflow`` (install ``convspec[tensorflow]``): tf.nn on the CPU, float32 and
float64, every backward by ``tf.GradientTape`` of the forward.

TensorFlow's CPU kernels take channels-last data, so arrays are moved to (N, *spatial, C) with
``tf.transpose`` and back; weights to TF's (*kernel, C_in, C_out) layout. Mappings (search "MAP" and
"ADAPT"):

- conv / convolve: ``tf.nn.conv1d/conv2d/conv3d`` (strides, dilations, groups by the filter's input depth);
  padding 'same' is TF's ``'SAME'`` (the same formula); explicit pads are TF's explicit-padding list in
  2-D. ADAPT: conv1d and conv3d take only 'SAME'/'VALID', so other pads are applied with ``tf.pad``
  (zeros) and the conv runs 'VALID'. convolve reverses the kernel with ``tf.reverse``.
- conv_transpose: ``tf.nn.conv_transpose`` (the gradient of the conv) with ``output_shape`` = the spec's
  size; 'same' is TF's 'SAME'; 2-D explicit pads natively; otherwise ADAPT: 'VALID' with a larger
  ``output_shape`` and the spec's crop by slicing. No groups in TF's transposed conv (unsupported).
- max_pool: ``tf.nn.max_pool1d/2d`` with explicit padding (ceil_mode's overhang as extra end padding,
  the result sliced to the spec's size); ``tf.nn.max_pool3d`` and dilated windows (``tf.nn.pool``,
  stride 1 only) take only 'SAME'/'VALID': other pads are unsupported (padding with -inf by hand
  would make the padding indistinguishable from -inf inputs). ``max_pool_indices``:
  ``tf.nn.max_pool_with_argmax`` ('SAME'/'VALID', 2-D, and 1-D as 2-D with height 1); its index
  (y * W + x) * C + c is converted to the spec's per-plane index (index bookkeeping).
- avg_pool: ``tf.nn.avg_pool`` takes only 'VALID' (no padding: the divisor is the window) or 'SAME' (the
  divisor counts real inputs: the spec's count_include_pad=False) and has no ceil_mode; other
  configurations are unsupported. Dilation through ``tf.nn.pool``.
- global pooling: ``tf.reduce_max`` / ``tf.reduce_mean``; k-max: ``tf.math.top_k`` (ties: the lower index
  first), positions sorted back with ``tf.sort``, values by ``tf.gather``.
- relu, sigmoid, tanh, softmax: tf.nn / tf.math; linear: ``tf.linalg.matmul(transpose_b=True)`` plus
  ``tf.nn.bias_add``; cross_entropy: ``tf.nn.sparse_softmax_cross_entropy_with_logits``, mean over N.
- batch_norm: ``tf.nn.moments`` over every axis but 1 (biased variance) and ``tf.nn.batch_normalization``
  (what Keras 3's BatchNormalization runs on TF); batch_norm_inference: ``tf.nn.batch_normalization`` with
  the given statistics (mean and var not differentiated).
- batch_norm_running_stats: float32: ``tf.compat.v1.nn.fused_batch_norm(is_training=True,
  exponential_avg_factor=momentum)``, TF's own running-average update, which is the spec's: the factor
  weighs the new batch and the variance is Bessel-corrected (m/(m-1)). ADAPT: its kernel is 4-D NHWC, so
  x is moved channels-last and viewed as (m, 1, 1, C). float64: the fused kernel has no float64 (attrs
  T and U), so ``tf.nn.moments`` times m/(m-1) and the update in TF arithmetic. Keras'
  BatchNormalization differs from both (momentum weighs the old value, biased variance): not used.
- local_response_norm: ``tf.nn.local_response_normalization`` with ``depth_radius = (size - 1) / 2``,
  ``bias = k`` and alpha, beta as given (TF does not divide alpha by the window). Its window is symmetric
  (2 r + 1 channels): even sizes are unsupported. ADAPT: the kernel takes only 4-D channels-last input,
  so x (any rank) is moved channels-last and viewed as (positions, 1, 1, C) (exact: the op is per
  position); float64 is refused by TF (no double kernel) and reported unsupported with its message.
- dropout: ``tf.nn.experimental.general_dropout`` with the keep mask as its ``uniform_sampler`` (kept:
  the value ``p`` >= rate, dropped: 0 < rate), i.e. TF's own arithmetic ``where(keep, x * (1/(1-p)), 0)``
  with the given mask (``tf.nn.dropout`` draws its own mask). At ``p = 0`` TF keeps everything, so a
  dropped element there is unsupported; a dropped inf/NaN gives 0 in TF: a declared deviation.
- concat: ``tf.concat``; its backward (the tape) splits the gradient, one per array.

A configuration TensorFlow refuses raises ``convspec.api.Unsupported`` with TensorFlow's message.
TensorFlow is imported lazily, with one intra-op and one inter-op thread (conformance workers run side
by side). Declared deviations: see ``deviation`` and docs/framework-differences.md.
"""

from __future__ import annotations

from math import prod

import numpy as np

from convspec.api.backend import Backend, Deviation, Unsupported
from convspec.api.hookspecs import hookimpl

from . import _frameworks as fw
from ._xp import checks
from ._xp.errors import DTypeError, ShapeError
from ._xp.geometry import same_split


def _setup(tf):
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised by the host program: keep its settings
        pass


# TF_CPP_MIN_LOG_LEVEL: TF's C++ info logging off (a default; read when TF is imported)
TF = fw.Framework(
    "tensorflow", "tensorflow", dists=("tensorflow-cpu", "tensorflow"), setup=_setup, env={"TF_CPP_MIN_LOG_LEVEL": "2"}
)


def _tf():
    return TF.module()


BN_X = (2, 3, 4, 5)  # batch norm and LRN: (N, C, *spatial) with 0 to 3 spatial dims


class _Refused(Exception):
    pass


def _refusals(tf):
    # any runtime error of a TF op: a kernel that does not exist for this dtype or configuration, or that
    # rejects it (InvalidArgument, Unimplemented, NotFound, oneDNN's Internal "could not create a primitive")
    return (tf.errors.OpError,)


class TensorflowBackend(Backend):
    name = "tensorflow"
    device = "cpu"
    dtypes = ("float32", "float64")
    # TensorFlow's CPU kernels (oneDNN/Eigen) flush subnormal results to zero (claim T10 in
    # docs/framework-differences.md): a precision property the spec bounds (an absolute tiny), not a deviation
    flushes_subnormals = True

    @property
    def version(self) -> str:
        return TF.version()

    # ------------------------------------------------------------------ contract
    def availability(self) -> str | None:
        return TF.reason()

    def from_numpy(self, a):
        tf = _tf()
        a = np.asarray(a)
        if a.dtype == object:
            raise Unsupported("object (exact rational) arrays are evaluated by the reference only")
        with tf.device("/CPU:0"):
            return tf.constant(a)

    def to_numpy(self, t):
        return t.numpy() if hasattr(t, "numpy") else np.asarray(t)

    def deviation(self, case):
        return _deviation(case)

    # ------------------------------------------------------------------ helpers
    def _a(self, name, a, *, ndim=None, min_ndim=None):
        tf = _tf()
        if not isinstance(a, tf.Tensor):
            a = tf.constant(fw.np_float(name, a))
        if a.dtype.is_integer:
            a = tf.cast(a, tf.float64)
        elif not a.dtype.is_floating:
            raise DTypeError(name, f"dtype must be a real floating or integer dtype, got {a.dtype.name}")
        return fw.check_ndim(name, a, ndim=ndim, min_ndim=min_ndim)

    @staticmethod
    def _common(*arrays):
        tf = _tf()
        present = [a for a in arrays if a is not None]
        dt = tf.float64 if any(a.dtype == tf.float64 for a in present) else present[0].dtype
        return [None if a is None else tf.cast(a, dt) for a in arrays]

    def _call(self, fn, *args, **kw):
        """Run a TF op; a configuration TF refuses becomes Unsupported with TF's message."""
        tf = _tf()
        try:
            with tf.device("/CPU:0"):
                return fn(*args, **kw)
        except _refusals(tf) as exc:
            raise Unsupported(f"tensorflow: {exc.message if hasattr(exc, 'message') else exc}".strip()) from None

    def _grad(self, forward, grad_out, inputs):
        """tf.GradientTape gradients of forward(*inputs) at the non-None inputs (None for absent ones)."""
        tf = _tf()
        present = [a for a in inputs if a is not None]
        try:
            with tf.device("/CPU:0"), tf.GradientTape() as tape:
                for a in present:
                    tape.watch(a)
                y = forward(*inputs)
            g = self._a("grad_out", grad_out)
            if tuple(g.shape) != tuple(y.shape):
                raise ShapeError(
                    "grad_out", f"must have the forward output's shape {tuple(y.shape)}, got {tuple(g.shape)}"
                )
            with tf.device("/CPU:0"):
                got = tape.gradient(
                    y, present, output_gradients=tf.cast(g, y.dtype), unconnected_gradients=tf.UnconnectedGradients.ZERO
                )
        except _refusals(tf) as exc:
            raise Unsupported(f"tensorflow: {exc.message if hasattr(exc, 'message') else exc}".strip()) from None
        it = iter(got)
        return tuple(None if a is None else next(it) for a in inputs)

    @staticmethod
    def _last(x):
        """(N, C, *s) -> (N, *s, C)."""
        nd = len(x.shape) - 2
        return _tf().transpose(x, (0,) + tuple(range(2, 2 + nd)) + (1,))

    @staticmethod
    def _first(x):
        """(N, *s, C) -> (N, C, *s)."""
        nd = len(x.shape) - 2
        return _tf().transpose(x, (0, nd + 1) + tuple(range(1, 1 + nd)))

    @staticmethod
    def _tf_kernel(w):
        """(O, I, *k) -> (*k, I, O)."""
        nd = len(w.shape) - 2
        return _tf().transpose(w, tuple(range(2, 2 + nd)) + (1, 0))

    # ------------------------------------------------------------------ convolutions
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
        return x, w, b, geo, padding

    def _conv_forward(self, x, w, b, geo, padding, flip=False):
        tf = _tf()
        nd = geo.nd
        if flip:
            w = tf.reverse(w, axis=list(range(2, 2 + nd)))
        xl, k = self._last(x), self._tf_kernel(w)
        if padding == "same":
            pad = "SAME"  # MAP: TF's SAME is the spec's 'same' (ceil(n/s), odd pad at the end)
        elif all(p == (0, 0) for p in geo.pads):
            pad = "VALID"
        elif nd == 2:
            pad = [[0, 0]] + [list(p) for p in geo.pads] + [[0, 0]]  # MAP: explicit (begin, end) pairs
        else:
            # ADAPT: conv1d/conv3d take only SAME/VALID: zero-pad explicitly, then VALID
            xl = tf.pad(xl, [[0, 0]] + [list(p) for p in geo.pads] + [[0, 0]])
            pad = "VALID"
        if nd == 1:
            y = tf.nn.conv1d(xl, k, stride=geo.stride[0], padding=pad, dilations=geo.dilation[0])
        elif nd == 2:
            y = tf.nn.conv2d(xl, k, strides=list(geo.stride), padding=pad, dilations=list(geo.dilation))
        else:
            y = tf.nn.conv3d(xl, k, strides=[1, *geo.stride, 1], padding=pad, dilations=[1, *geo.dilation, 1])
        if b is not None:
            y = tf.nn.bias_add(y, b)
        return self._first(y)

    def conv(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        x, w, b, geo, padding = self._conv_args(x, w, b, stride, padding, dilation, groups, strict)
        return self._call(self._conv_forward, x, w, b, geo, padding)

    def conv_backward(self, grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        x, w, b, geo, padding = self._conv_args(x, w, b, stride, padding, dilation, groups, strict)
        return self._grad(lambda x, w, b: self._conv_forward(x, w, b, geo, padding), grad_out, [x, w, b])

    def convolve(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        x, w, b, geo, padding = self._conv_args(x, w, b, stride, padding, dilation, groups, strict)
        return self._call(self._conv_forward, x, w, b, geo, padding, True)

    def convolve_backward(self, grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        x, w, b, geo, padding = self._conv_args(x, w, b, stride, padding, dilation, groups, strict)
        return self._grad(lambda x, w, b: self._conv_forward(x, w, b, geo, padding, True), grad_out, [x, w, b])

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
        if geo.groups != 1:
            raise Unsupported("tf.nn.conv_transpose has no groups (the filter is (*kernel, C_out, C_in))")
        y, w, b = self._common(y, w, b)
        return y, w, b, geo, padding

    def _transpose_forward(self, y, w, b, geo, padding):
        tf = _tf()
        nd = geo.nd
        n = int(y.shape[0])
        yl = self._last(y)
        # MAP: the spec's w (C_y, C_x, *k) is TF's transposed-conv filter (*k, C_x, C_y)
        k = tf.transpose(w, tuple(range(2, 2 + nd)) + (1, 0))
        c_x = int(w.shape[1])
        strides, dil = list(geo.stride), list(geo.dilation)
        if padding == "same":
            out = tf.nn.conv_transpose(yl, k, [n, *geo.in_sizes, c_x], strides, "SAME", dilations=dil)
        elif nd == 2 and not any(o for o in self._output_padding(geo)):
            pad = [[0, 0]] + [list(p) for p in geo.pads] + [[0, 0]]
            out = tf.nn.conv_transpose(yl, k, [n, *geo.in_sizes, c_x], strides, pad, dilations=dil)
        else:
            # ADAPT: VALID with the output the spec's size needs (n_x + the pads), cropped by slicing
            full = [n_x + pb + pe for n_x, (pb, pe) in zip(geo.in_sizes, geo.pads)]
            out = tf.nn.conv_transpose(yl, k, [n, *full, c_x], strides, "VALID", dilations=dil)
            out = out[(slice(None),) + tuple(slice(pb, pb + n_x) for (pb, _), n_x in zip(geo.pads, geo.in_sizes))]
        if b is not None:
            out = tf.nn.bias_add(out, b)
        return self._first(out)

    @staticmethod
    def _output_padding(geo):
        return [
            n_x - ((n_y - 1) * s - pb - pe + d * (k - 1) + 1)
            for n_x, n_y, s, (pb, pe), d, k in zip(
                geo.in_sizes, geo.out_sizes, geo.stride, geo.pads, geo.dilation, geo.kernel
            )
        ]

    def conv_transpose(self, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        y, w, b, geo, padding = self._transpose_args(y, w, b, stride, padding, output_padding, dilation, groups)
        return self._call(self._transpose_forward, y, w, b, geo, padding)

    def conv_transpose_backward(
        self, grad_out, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1
    ):
        y, w, b, geo, padding = self._transpose_args(y, w, b, stride, padding, output_padding, dilation, groups)
        return self._grad(lambda y, w, b: self._transpose_forward(y, w, b, geo, padding), grad_out, [y, w, b])

    # ------------------------------------------------------------------ pooling
    def _pool_args(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        x = self._a("x", x, ndim=(3, 4, 5))
        return x, fw.pool_geometry(tuple(x.shape), kernel_size, stride, padding, dilation, ceil_mode)

    @staticmethod
    def _crop_last(y, geo):
        return y[(slice(None),) + tuple(slice(0, o) for o in geo.out_sizes)]

    @staticmethod
    def _pool_mode(geo, include_pad=False):
        """TF's padding string for the spec's pooling geometry: 'VALID' (no padding, no ceil overhang),
        'SAME' (the spec's pads are TF's SAME split; the divisor excludes padding), else None."""
        if all(p == (0, 0) for p in geo.pads) and not any(geo.overhang):
            return "VALID"
        same = tuple(same_split(n, k, s, d) for n, k, s, d in zip(geo.in_sizes, geo.kernel, geo.stride, geo.dilation))
        if geo.pads == same and not any(geo.overhang) and not include_pad:
            return "SAME"
        return None

    def _max_pool_forward(self, x, geo):
        tf = _tf()
        xl = self._last(x)
        mode = self._pool_mode(geo)
        if any(d > 1 for d in geo.dilation):
            if mode is None:
                raise Unsupported("tf.nn.pool (dilated windows) takes only 'SAME' or 'VALID' padding")
            y = self._pool_dilated(xl, geo, "MAX", mode)
        elif geo.nd in (1, 2):
            pads = fw.pool_pads_with_overhang(geo)
            # MAP: explicit (begin, end) pairs; the ceil_mode overhang as extra end padding, then cropped
            pad = mode or [[0, 0]] + [list(p) for p in pads] + [[0, 0]]
            fn = tf.nn.max_pool1d if geo.nd == 1 else tf.nn.max_pool2d
            y = self._crop_last(fn(xl, ksize=list(geo.kernel), strides=list(geo.stride), padding=pad), geo)
        else:
            if mode is None:
                raise Unsupported(
                    "tf.nn.max_pool3d takes only 'SAME' or 'VALID' padding (no explicit pads, no ceil_mode)"
                )
            y = tf.nn.max_pool3d(xl, ksize=list(geo.kernel), strides=list(geo.stride), padding=mode)
        return self._first(y)

    def _pool_dilated(self, xl, geo, kind, padding="VALID"):
        tf = _tf()
        try:
            return tf.nn.pool(
                xl, list(geo.kernel), kind, strides=list(geo.stride), padding=padding, dilations=list(geo.dilation)
            )
        except ValueError as exc:  # tf.nn.pool: "`strides > 1` not supported in conjunction with dilation"
            raise Unsupported(f"tensorflow: {exc}") from None

    def max_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._call(self._max_pool_forward, x, geo)

    def max_pool_backward(self, grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._grad(lambda x: self._max_pool_forward(x, geo), grad_out, [x])

    def max_pool_indices(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        tf = _tf()
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        if geo.nd == 3 or any(d > 1 for d in geo.dilation):
            raise Unsupported("tf.nn.max_pool_with_argmax is 2-D only and has no dilation")
        mode = self._pool_mode(geo)
        if mode is None:
            raise Unsupported("tf.nn.max_pool_with_argmax takes only 'SAME' or 'VALID' padding")
        kernel, stride_, in_sizes = list(geo.kernel), list(geo.stride), list(geo.in_sizes)
        if geo.nd == 1:  # 1-D as 2-D with height 1
            kernel, stride_, in_sizes = [1] + kernel, [1] + stride_, [1] + in_sizes
        xl = self._last(tf.reshape(x, [x.shape[0], x.shape[1], *in_sizes]))
        _, arg = self._call(tf.nn.max_pool_with_argmax, xl, kernel, stride_, mode, include_batch_in_index=False)
        # index bookkeeping: TF's (y * W + x) * C + c -> the spec's per-plane y * W + x
        arg = self._first(arg) // int(x.shape[1])
        return tf.reshape(arg, list(x.shape[:2]) + list(geo.out_sizes))

    def _avg_pool_forward(self, x, geo, include_pad):
        tf = _tf()
        mode = self._pool_mode(geo, include_pad)
        if mode is None:
            raise Unsupported(
                "tf.nn.avg_pool takes only padding 'VALID' (none) or 'SAME' (the divisor counts the "
                "real inputs), and has no ceil_mode"
            )
        xl = self._last(x)
        if any(d > 1 for d in geo.dilation):
            y = self._pool_dilated(xl, geo, "AVG", mode)
        else:
            y = tf.nn.avg_pool(xl, ksize=list(geo.kernel), strides=list(geo.stride), padding=mode)
        return self._first(y)

    def avg_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._call(self._avg_pool_forward, x, geo, bool(count_include_pad))

    def avg_pool_backward(
        self, grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False
    ):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._grad(lambda x: self._avg_pool_forward(x, geo, bool(count_include_pad)), grad_out, [x])

    def _global(self, x, reduce):
        x = self._a("x", x, ndim=(3, 4, 5))
        return x, (lambda x: reduce(x, axis=list(range(2, len(x.shape)))))

    def global_max_pool(self, x):
        x, f = self._global(x, _tf().reduce_max)
        return self._call(f, x)

    def global_max_pool_backward(self, grad_out, x):
        x, f = self._global(x, _tf().reduce_max)
        return self._grad(f, grad_out, [x])

    def global_avg_pool(self, x):
        x, f = self._global(x, _tf().reduce_mean)
        return self._call(f, x)

    def global_avg_pool_backward(self, grad_out, x):
        x, f = self._global(x, _tf().reduce_mean)
        return self._grad(f, grad_out, [x])

    def _kmax(self, x, k):
        tf = _tf()
        k = fw.kmax_k(k, int(x.shape[-1]))
        # MAP: top_k (ties: the lower index first), the kept positions back in their original order
        idx = self._call(tf.math.top_k, tf.stop_gradient(x), k, sorted=True).indices
        return tf.sort(idx, axis=-1)

    def kmax_pool_indices(self, x, k):
        x = self._a("x", x, min_ndim=1)
        return self._kmax(x, k)

    def kmax_pool(self, x, k):
        tf = _tf()
        x = self._a("x", x, min_ndim=1)
        return tf.gather(x, self._kmax(x, k), batch_dims=len(x.shape) - 1)

    def kmax_pool_backward(self, grad_out, x, k):
        tf = _tf()
        x = self._a("x", x, min_ndim=1)
        idx = self._kmax(x, k)
        return self._grad(lambda x: tf.gather(x, idx, batch_dims=len(x.shape) - 1), grad_out, [x])

    # ------------------------------------------------------------------ elementwise, dense, losses
    def relu(self, x):
        return self._call(_tf().nn.relu, self._a("x", x))

    def relu_backward(self, grad_out, x):
        return self._grad(_tf().nn.relu, grad_out, [self._a("x", x)])

    def sigmoid(self, x):
        return self._call(_tf().math.sigmoid, self._a("x", x))

    def sigmoid_backward(self, grad_out, x):
        return self._grad(_tf().math.sigmoid, grad_out, [self._a("x", x)])

    def tanh(self, x):
        return self._call(_tf().math.tanh, self._a("x", x))

    def tanh_backward(self, grad_out, x):
        return self._grad(_tf().math.tanh, grad_out, [self._a("x", x)])

    def softmax(self, z):
        return self._call(_tf().nn.softmax, self._a("z", z, min_ndim=1), axis=-1)

    def softmax_backward(self, grad_out, z):
        tf = _tf()
        return self._grad(lambda z: tf.nn.softmax(z, axis=-1), grad_out, [self._a("z", z, min_ndim=1)])

    def _ce(self, logits, labels):
        tf = _tf()
        z = self._a("logits", logits)
        lab = labels.numpy() if hasattr(labels, "numpy") else labels
        y = tf.constant(fw.check_labels(np.asarray(lab), tuple(z.shape)))

        def f(z):
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z))

        return z, f

    def cross_entropy(self, logits, labels):
        z, f = self._ce(logits, labels)
        return self._call(f, z)

    def cross_entropy_backward(self, grad_out, logits, labels):
        tf = _tf()
        z, f = self._ce(logits, labels)
        g = self._a("grad_out", grad_out)
        if int(np.prod(g.shape)) != 1:
            raise ShapeError("grad_out", f"must be a scalar (the loss is a scalar), got shape {tuple(g.shape)}")
        return self._grad(f, tf.reshape(g, []), [z])

    def _linear_args(self, x, w, b):
        return fw.linear_inputs(self._a, self._common, x, w, b)

    @staticmethod
    def _linear(x, w, b):
        tf = _tf()
        y = tf.linalg.matmul(x, w, transpose_b=True)
        return y if b is None else tf.nn.bias_add(y, b)

    def linear(self, x, w, b=None):
        return self._call(self._linear, *self._linear_args(x, w, b))

    def linear_backward(self, grad_out, x, w, b=None):
        return self._grad(self._linear, grad_out, self._linear_args(x, w, b))

    @staticmethod
    def _flatten(x):
        return _tf().reshape(x, [x.shape[0], prod(x.shape[1:])])

    def flatten(self, x):
        return self._call(self._flatten, self._a("x", x, min_ndim=1))

    def flatten_backward(self, grad_out, x):
        return self._grad(self._flatten, grad_out, [self._a("x", x, min_ndim=1)])

    def _add_args(self, x, y):
        x, y = self._a("x", x), self._a("y", y)
        if tuple(x.shape) != tuple(y.shape):
            raise ShapeError("y", f"must have the shape of x {tuple(x.shape)} (no broadcasting), got {tuple(y.shape)}")
        return self._common(x, y)

    def add(self, x, y):
        return self._call(_tf().add, *self._add_args(x, y))

    def add_backward(self, grad_out, x, y):
        return self._grad(_tf().add, grad_out, self._add_args(x, y))

    # ------------------------------------------------------------------ normalization, dropout, concat
    # The argument checks are NormOps' (convspec.backends._xp.norm), in its order, through _xp.checks.
    @staticmethod
    def _kind(a) -> str:
        """The NumPy dtype kind of an argument ("O" for a Fraction array, "b", "i", "f", "c"...)."""
        tf = _tf()
        if isinstance(a, tf.Tensor):
            d = a.dtype
            return "b" if d.is_bool else "c" if d.is_complex else "f" if d.is_floating else "i" if d.is_integer else "S"
        return np.asarray(a).dtype.kind

    def _floating(self, name, a, reason, **kw):
        """An input of an op evaluated in floating point only: a Fraction array is NormOps' DTypeError."""
        checks.floating_only(name, self._kind(a), reason)
        return self._a(name, a, **kw)

    @staticmethod
    def _channel(v, x):
        """A per-channel (C,) vector shaped (1, C, 1, ...) to broadcast against x (N, C, *spatial)."""
        return _tf().reshape(v, [1, -1] + [1] * (len(x.shape) - 2))

    @staticmethod
    def _rows(x):
        """ADAPT: x (N, C, *s) channels-last as the 4-D NHWC tensor (m, 1, 1, C), m = N * prod(s): TF's fused
        batch norm and LRN kernels take only 4-D input, and both act per channel vector / per position."""
        nd = len(x.shape) - 2
        xl = _tf().transpose(x, (0,) + tuple(range(2, 2 + nd)) + (1,))
        return _tf().reshape(xl, [prod(xl.shape[:-1]), 1, 1, int(x.shape[1])])

    @staticmethod
    def _unrows(r, x):
        """Inverse of _rows, to x's shape."""
        tf = _tf()
        nd = len(x.shape) - 2
        xl = tf.reshape(r, [int(x.shape[0]), *[int(n) for n in x.shape[2:]], int(x.shape[1])])
        return tf.transpose(xl, (0, nd + 1) + tuple(range(1, 1 + nd)))

    def _bn_inputs(self, x, gamma, beta, eps, *extra):
        x = self._floating("x", x, checks.BN_FRACTION, ndim=BN_X)
        checks.bn_nonempty(tuple(x.shape))
        vecs = []
        for name, a in (("gamma", gamma), ("beta", beta)) + extra:
            v = self._floating(name, a, checks.BN_FRACTION, ndim=1)
            checks.bn_channels(name, tuple(v.shape), int(x.shape[1]))
            vecs.append(v)
        eps = checks.real("eps", eps, lo=0, lo_open=True)
        return self._common(x, *vecs), eps

    def _bn_forward(self, x, gamma, beta, eps):
        tf = _tf()
        # MAP: batch statistics over every axis but the channels (tf.nn.moments: the biased variance, as the
        # spec), then y = x * (gamma * rsqrt(var + eps)) + (beta - mean * gamma * rsqrt(var + eps))
        axes = [0] + list(range(2, len(x.shape)))
        mean, var = tf.nn.moments(x, axes=axes, keepdims=True)
        return tf.nn.batch_normalization(x, mean, var, self._channel(beta, x), self._channel(gamma, x), eps)

    def batch_norm(self, x, gamma, beta, *, eps=1e-5):
        arrays, eps = self._bn_inputs(x, gamma, beta, eps)
        return self._call(self._bn_forward, *arrays, eps)

    def batch_norm_backward(self, grad_out, x, gamma, beta, *, eps=1e-5):
        arrays, eps = self._bn_inputs(x, gamma, beta, eps)
        return self._grad(lambda x, gamma, beta: self._bn_forward(x, gamma, beta, eps), grad_out, arrays)

    def _bn_inference_inputs(self, x, gamma, beta, mean, var, eps):
        arrays, eps = self._bn_inputs(x, gamma, beta, eps, ("mean", mean), ("var", var))
        checks.nonnegative("var", bool(_tf().reduce_any(arrays[4] < 0)))
        return arrays, eps

    def _bn_inference_forward(self, x, gamma, beta, mean, var, eps):
        c = self._channel
        # MAP: tf.nn.batch_normalization with the given (running) statistics
        return _tf().nn.batch_normalization(x, c(mean, x), c(var, x), c(beta, x), c(gamma, x), eps)

    def batch_norm_inference(self, x, gamma, beta, mean, var, *, eps=1e-5):
        arrays, eps = self._bn_inference_inputs(x, gamma, beta, mean, var, eps)
        return self._call(self._bn_inference_forward, *arrays, eps)

    def batch_norm_inference_backward(self, grad_out, x, gamma, beta, mean, var, *, eps=1e-5):
        """-> (dx, dgamma, dbeta): mean and var are statistics, not differentiated (as the spec)."""
        (x, gamma, beta, mean, var), eps = self._bn_inference_inputs(x, gamma, beta, mean, var, eps)

        def forward(x, gamma, beta):
            return self._bn_inference_forward(x, gamma, beta, mean, var, eps)

        return self._grad(forward, grad_out, [x, gamma, beta])

    def _running_stats_inputs(self, running_mean, running_var, x, momentum):
        x = self._a("x", x, ndim=BN_X)
        checks.bn_nonempty(tuple(x.shape))
        c = int(x.shape[1])
        rm = self._a("running_mean", running_mean, ndim=1)
        checks.bn_channels("running_mean", tuple(rm.shape), c)
        rv = self._a("running_var", running_var, ndim=1)
        checks.bn_channels("running_var", tuple(rv.shape), c)
        checks.nonnegative("running_var", bool(_tf().reduce_any(rv < 0)))
        momentum = checks.real("momentum", momentum, lo=0, hi=1)
        checks.running_stats_m(tuple(x.shape))
        return self._common(rm, rv, x), momentum

    def _running_stats(self, rm, rv, x, momentum):
        tf = _tf()
        rows = self._rows(x)
        c = int(x.shape[1])
        if x.dtype == tf.float32:
            # MAP: TF's own running-average update, FusedBatchNormV3 in training mode (fused_batch_norm_op.cc:
            # new_variance = (1 - factor) * old_variance + (factor * rest_size_adjust) * batch_variance, with
            # rest_size_adjust = m / (m - 1), "for Bessel's correction"): the spec's update with factor = momentum.
            # gamma = 1, beta = 0 and eps enter only the normalised output, which is discarded. At momentum 1 the
            # old statistics "must be None" (fused_batch_norm's doc): the kernel returns the batch's alone.
            old = (None, None) if momentum == 1 else (rm, rv)
            _, mean, var = tf.compat.v1.nn.fused_batch_norm(
                rows,
                tf.ones([c], x.dtype),
                tf.zeros([c], x.dtype),
                mean=old[0],
                variance=old[1],
                is_training=True,
                exponential_avg_factor=momentum,
            )
            return mean, var
        # ADAPT (float64): FusedBatchNormV3 has no float64 kernel (its attrs T: half, bfloat16, float and U:
        # bfloat16, float; "Value for attr 'T' of double is not in the list of allowed values"): tf.nn.moments'
        # biased variance times m / (m - 1), then the spec's update (momentum weighs the new batch) in TF arithmetic
        m = int(rows.shape[0])
        mean, var = tf.nn.moments(rows, axes=[0, 1, 2])
        a, b = tf.constant(1 - momentum, x.dtype), tf.constant(momentum, x.dtype)
        return a * rm + b * mean, a * rv + b * (var * tf.constant(m / (m - 1), x.dtype))

    def batch_norm_running_stats(self, running_mean, running_var, x, *, momentum=0.1):
        """-> (new_mean, new_var); a state update, without a backward (as the spec)."""
        arrays, momentum = self._running_stats_inputs(running_mean, running_var, x, momentum)
        return self._call(self._running_stats, *arrays, momentum)

    def _lrn_inputs(self, x, size, alpha, beta, k):
        x = self._floating("x", x, checks.LRN_FRACTION, ndim=BN_X)
        size = checks.lrn_size(size)
        alpha = checks.real("alpha", alpha, lo=0)
        beta = checks.real("beta", beta)
        k = checks.real("k", k, lo=0, lo_open=True)
        if size % 2 == 0:
            raise Unsupported(
                "tf.nn.local_response_normalization sums a symmetric window of 2 * depth_radius + 1 channels; the "
                f"spec's even window (size // 2 = {size // 2} channels before c, (size - 1) // 2 = "
                f"{(size - 1) // 2} after) cannot be expressed"
            )
        return x, (size, alpha, beta, k)

    def _lrn_forward(self, x, plan):
        size, alpha, beta, k = plan
        # MAP: sqr_sum = sum(x[c - r : c + r + 1] ** 2) with r = (size - 1) / 2 (odd size), clipped at the edges;
        # y = x / (bias + alpha * sqr_sum) ** beta: bias = k, alpha NOT divided by the window (the spec's).
        y = _tf().nn.local_response_normalization(
            self._rows(x), depth_radius=(size - 1) // 2, bias=k, alpha=alpha, beta=beta
        )
        return self._unrows(y, x)

    def local_response_norm(self, x, size, *, alpha=1e-4, beta=0.75, k=2.0):
        x, plan = self._lrn_inputs(x, size, alpha, beta, k)
        return self._call(self._lrn_forward, x, plan)

    def local_response_norm_backward(self, grad_out, x, size, *, alpha=1e-4, beta=0.75, k=2.0):
        x, plan = self._lrn_inputs(x, size, alpha, beta, k)
        return self._grad(lambda x: self._lrn_forward(x, plan), grad_out, [x])

    def _dropout_inputs(self, x, keep, p):
        tf = _tf()
        x = self._a("x", x)
        kind = self._kind(keep)
        if isinstance(keep, tf.Tensor):
            checks.keep_mask(kind, keep.dtype.name, tuple(keep.shape), tuple(x.shape))
        else:
            a = np.asarray(keep)
            checks.keep_mask(kind, a.dtype, a.shape, tuple(x.shape))
            keep = tf.constant(a)
        if keep.dtype != tf.bool:
            checks.keep_values(bool(tf.reduce_any(tf.logical_and(keep != 0, keep != 1))))
            keep = tf.math.not_equal(keep, 0)
        p = checks.real("p", p, lo=0, hi=1, hi_open=True)
        if p == 0 and not bool(tf.reduce_all(keep)):
            raise Unsupported(
                "TensorFlow's dropout keeps every element at rate 0 (tf.nn.dropout returns x, and its keep mask is "
                "uniform >= rate, always true): a mask that drops an element at p = 0 cannot be expressed"
            )
        return x, keep, p

    @staticmethod
    def _dropout_forward(x, keep, p):
        tf = _tf()

        def given_mask(shape, dtype):
            # the keep mask as TF's uniform draw in [0, 1): kept -> p (>= rate), dropped -> 0 (< rate, p > 0)
            return tf.where(keep, tf.constant(p, dtype), tf.constant(0, dtype))

        # MAP: TF's dropout with the given mask: where(uniform >= rate, x * (1 / (1 - rate)), 0) (nn_ops._dropout);
        # tf.nn.dropout itself draws its own mask, so it cannot be checked against the spec's
        return tf.nn.experimental.general_dropout(x, p, given_mask)

    def dropout(self, x, keep, *, p):
        x, keep, p = self._dropout_inputs(x, keep, p)
        return self._call(self._dropout_forward, x, keep, p)

    def dropout_backward(self, grad_out, x, keep, *, p):
        """-> (dx,): keep and p are not differentiable."""
        x, keep, p = self._dropout_inputs(x, keep, p)
        return self._grad(lambda x: self._dropout_forward(x, keep, p), grad_out, [x])

    def _concat_inputs(self, xs, axis):
        checks.concat_sequence(xs)
        arrays = [self._a(f"xs[{i}]", a, min_ndim=1) for i, a in enumerate(xs)]
        axis = checks.concat_axis(axis, len(arrays[0].shape))
        checks.concat_shapes([tuple(a.shape) for a in arrays], axis)
        return self._common(*arrays), axis

    def concat(self, xs, *, axis=1):
        arrays, axis = self._concat_inputs(xs, axis)
        return self._call(lambda *a: _tf().concat(list(a), axis), *arrays)  # MAP: tf.concat

    def concat_backward(self, grad_out, xs, *, axis=1):
        """-> one gradient per array of xs (the tape's split of grad_out)."""
        arrays, axis = self._concat_inputs(xs, axis)
        return self._grad(lambda *a: _tf().concat(list(a), axis), grad_out, arrays)


TF_MAX_GRAD = (
    "TensorFlow's gradient of tf.reduce_max (math_grad._MaxGrad) divides the gradient equally among all "
    "elements equal to the maximum (indicators / num_selected), and a NaN maximum gives NaN gradients "
    "(NaN == NaN is false); the spec routes it to the first maximum / first NaN"
)
TF_POOL_NAN = (
    "TensorFlow's CPU max-pool does not propagate NaN: tf.nn.max_pool (Eigen/oneDNN) and "
    "tf.nn.max_pool_with_argmax return a number for a window holding a NaN (TF#125965), so value, index and "
    "gradient routing differ from the spec's first-NaN rule"
)
TF_BN_FOLDED = (
    "tf.nn.batch_normalization folds the affine map: inv = rsqrt(var + eps) * scale, y = x * inv + (offset - mean * "
    "inv) (nn_impl.py), so with an inf or NaN gamma the two products cancel as inf - inf = NaN where the spec's "
    "gamma * (x - mean) / sqrt(var + eps) + beta is +-inf (forward; in training also grad x, through the batch "
    "mean), and with an inf or NaN running mean the tape's grad gamma, sum(g x) inv' - sum(g) mean inv', differs "
    "from the spec's sum(g (x - mean)) / sqrt(var + eps)"
)
TF_LRN_BAND = (
    "TensorFlow's CPU LRN sums each window as a contraction of x^2 with a depth x depth band matrix (lrn_op.cc: "
    "in_shaped.square().contract(multiplier, dims), zeros outside the window), so an inf or NaN square at one "
    "channel (an inf or NaN x, or a square that overflows) makes every channel of that position NaN (0 * inf), "
    "forward and gradient; the spec's window sum leaves the channels whose window excludes it finite"
)
TF_FUSED_FACTOR_ONE = (
    "TensorFlow's fused batch norm at exponential_avg_factor = 1 returns the batch's statistics alone "
    "(fused_batch_norm_op.cc: if (exponential_avg_factor == U(1.0)) new_mean = batch_mean, new_variance = "
    "batch_variance * rest_size_adjust; the doc: 'If set to 1.0, the current batch average is returned'), ignoring "
    "the running ones; the spec's 0 * running + 1 * batch is NaN where a running statistic is inf or NaN"
)
TF_DROPOUT_WHERE = (
    "TensorFlow's dropout selects instead of multiplying: where(keep_mask, x * scale, 0) (nn_ops._dropout), so a "
    "dropped inf or NaN gives 0; the spec's x * keep / (1 - p) gives NaN there (0 * inf, 0 * NaN, IEEE)"
)
TF_TOPK_NAN = (
    "tf.math.top_k does not rank NaN above every number (it sorts with x > y, false for NaN), so k-max "
    "keeps other elements than the spec, which ranks NaN first"
)


def _deviation(case):
    try:
        if case.op == "global_max_pool" and (fw.windows_with_ties(case) or fw.windows_with_nan(case)):
            return Deviation(TF_MAX_GRAD, ("grad x",))
        if case.op == "max_pool" and fw.windows_with_nan(case):
            return Deviation(TF_POOL_NAN, ("forward", "indices", "grad x"))
        if case.op == "kmax_pool" and np.isnan(case.inputs()[0]).any():
            return Deviation(TF_TOPK_NAN, ("forward", "indices", "grad x"))
        if case.op in ("batch_norm", "batch_norm_inference"):
            inputs = case.inputs()
            bad = []
            if not np.isfinite(inputs[1]).all():  # gamma
                bad += ["forward", "grad x"] if case.op == "batch_norm" else ["forward"]
            if case.op == "batch_norm_inference" and not np.isfinite(inputs[3]).all():  # mean
                bad.append("grad gamma")
            if bad:
                return Deviation(TF_BN_FOLDED, tuple(bad))
        if case.op == "local_response_norm":
            with np.errstate(over="ignore", invalid="ignore"):
                if not np.isfinite(np.square(case.inputs()[0])).all():  # in the case dtype: float32 squares overflow
                    return Deviation(TF_LRN_BAND, ("forward", "grad x"))
        if case.op == "batch_norm_running_stats" and case.dtype == "float32" and case.params.get("momentum") == 1:
            rm, rv, _ = case.inputs()
            bad = [f"forward {name}" for name, a in (("mean", rm), ("var", rv)) if not np.isfinite(a).all()]
            if bad:
                return Deviation(TF_FUSED_FACTOR_ONE, tuple(bad))
        if case.op == "dropout":
            x, keep = case.inputs()
            if (~np.isfinite(x) & (keep == 0)).any():
                return Deviation(TF_DROPOUT_WHERE, ("forward",))
    except Exception:  # a case the spec rejects: nothing to declare
        return None
    return None


@hookimpl
def register_backends(register):
    register(TensorflowBackend())
