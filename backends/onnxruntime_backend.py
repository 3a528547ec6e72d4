"""The ONNX Runtime backend ``onnxruntime`` (install ``convspec[onnxruntime]``): forward only.

Every op call builds a one-node ONNX model with ``onnx.helper`` (the spec's parameters mapped onto the
operator's attributes; a few nodes where an ONNX attribute cannot hold the spec's parameter, see batch norm
and dropout) and runs it with ``onnxruntime.InferenceSession`` on the CPU execution provider.
Sessions are cached by (nodes, attributes, input shapes, dtype). ONNX Runtime has no training
gradients in this package, so the backend has no ``*_backward`` methods: the engine reports every
case's backward "unsupported", and a forward or index mismatch still shows as a failure.

Mappings (ONNX operator, opset 22 unless noted):

- conv: Conv(pads = begins + ends, strides, dilations, group); convolve: Conv with the kernel flipped
  (array reversal when converting the input, the spec's definition of convolve).
- conv_transpose: ConvTranspose with pads (which crop the full output, as the spec's padding does),
  output_padding, strides, dilations, group; the spec's 'same'/'full' forms as explicit pads.
- max_pool: MaxPool(kernel_shape, strides, pads, dilations, ceil_mode) with its Indices output;
  ONNX's indices are flat over (N, C, *spatial) (storage_order 0), the spec's over one (*spatial)
  plane: index % prod(spatial) converts them.
- avg_pool: AveragePool(kernel_shape, strides, pads, dilations, ceil_mode, count_include_pad).
- global pooling: GlobalMaxPool / GlobalAveragePool, reshaped to (N, C).
- kmax_pool: TopK(largest=1, sorted=1) for the kept positions (ties: the lower index first, as the
  operator's documentation says), sorted back into their original order (index bookkeeping), the
  values by GatherElements.
- relu, sigmoid, tanh: Relu, Sigmoid, Tanh; linear: Gemm(transB=1); flatten: Flatten(axis=1); add: Add;
  softmax: Softmax(axis=-1); cross_entropy: SoftmaxCrossEntropyLoss(reduction='mean').
- batch_norm: the batch mean and biased variance from BatchNormalization(training_mode=1, momentum=0) with
  zero running inputs (its running outputs are then ``0 * 0 + current * 1``, exactly the batch statistics);
  Add(var, eps) in x's dtype; BatchNormalization(training_mode=0, epsilon=0) normalises with them. ADAPT:
  ONNX's epsilon is a FLOAT (float32) attribute (ORT keeps ``float epsilon_``), which rounds a float64 eps
  (0.1 -> 0.10000000149). m = 1 is computed (var = 0, y = beta).
- batch_norm_inference: Add(var, eps), then BatchNormalization(training_mode=0, epsilon=0) (same reason).
- batch_norm_running_stats: the batch statistics as for batch_norm, then the spec's update with Mul/Add in
  x's dtype: ``(1 - momentum) * running + momentum * stat``, the variance times m/(m-1). ADAPT: ORT's own
  update is ``input * momentum + current * (1 - momentum)`` (its momentum weighs the OLD value) with the
  BIASED (population) current_var and a float32 momentum attribute.
- local_response_norm: LRN(size, alpha=alpha * size, beta, bias=k) (ONNX divides alpha by size) on x viewed
  as (N, C, prod(spatial), 1) (ADAPT: ORT's kernel is 4-D only; LRN acts on each position's channels alone).
  Unsupported where ORT's kernel refuses: even sizes, alpha = 0 and beta <= 0 (lrn.h: ORT_ENFORCE size odd,
  alpha > 0, beta > 0; the spec allows alpha >= 0 and any beta), float64 (no kernel).
- dropout: Mul(x, keep) then Div by (1 - p) in x's dtype, ONNX's ``output = scale * data * mask`` with the
  spec's mask: ONNX's Dropout draws its own mask (seed attribute) and is the identity in inference mode.
- concat: Concat(axis), the inputs in their common dtype.

A configuration ONNX Runtime refuses (a dtype without a kernel, a pad it rejects) raises
``convspec.api.Unsupported`` with ONNX Runtime's own message.
"""

from __future__ import annotations

from math import prod

import numpy as np

from convspec.api.backend import Backend, Deviation, Unsupported
from convspec.api.hookspecs import hookimpl

from . import _frameworks as fw
from ._xp import checks
from ._xp.errors import ShapeError


def _setup(ort):
    ort.set_default_logger_severity(4)  # FATAL only: a refused configuration is reported as unsupported


ORT = fw.Framework("onnxruntime", "onnxruntime", dists=("onnxruntime",), setup=_setup)
ONNX = fw.Framework("onnx", "onnxruntime", dists=("onnx",))
OPSET = 22


def _ort():
    return ORT.module()


def _onnx():
    return ONNX.module()


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    device = "cpu"
    dtypes = ("float32", "float64")

    def __init__(self):
        self._sessions: dict = {}

    @property
    def version(self) -> str:
        v = ORT.version()
        return f"{v} (onnx {ONNX.version()}, opset {OPSET})" if v else ""

    # ------------------------------------------------------------------ contract
    def availability(self) -> str | None:
        return ORT.reason() or ONNX.reason()

    def from_numpy(self, a):
        a = np.asarray(a)
        if a.dtype == object:
            raise Unsupported("object (exact rational) arrays are evaluated by the reference only")
        return a

    def to_numpy(self, a):
        return np.asarray(a)

    def deviation(self, case):
        return _deviation(case)

    # ------------------------------------------------------------------ the model
    def _run(self, op_type, inputs, n_outputs=1, out_types=None, **attrs):
        """Run one `op_type` node on `inputs` (NumPy arrays, None for an absent optional input)."""
        names = ["" if a is None else f"in{i}" for i, a in enumerate(inputs)]
        while names and names[-1] == "":
            names.pop()
        outs = tuple(f"out{i}" for i in range(n_outputs))
        out = self._run_graph(op_type, [(op_type, names, outs, attrs)], inputs, n_outputs, out_types)
        return out if n_outputs > 1 else out[0]

    def _run_graph(self, name, nodes, inputs, n_outputs=1, out_types=None):
        """Run a small graph and return its list of outputs. `nodes`: (op_type, input names, output names,
        attributes) in evaluation order; the graph's inputs are in0, in1, ... (`inputs`, None for an absent
        one), its outputs out0, out1, ...; other names are intermediate values."""
        key = (
            name,
            tuple((op, tuple(ins), tuple(outs), _attrs_key(attrs)) for op, ins, outs, attrs in nodes),
            tuple(None if a is None else (a.shape, a.dtype.str) for a in inputs),
            n_outputs,
            out_types,
        )
        sess = self._sessions.get(key)
        if sess is None:
            sess = self._session(name, nodes, inputs, n_outputs, out_types)
            self._sessions[key] = sess
        feeds = {f"in{i}": a for i, a in enumerate(inputs) if a is not None}
        try:
            return sess.run(None, feeds)
        except Exception as exc:  # a runtime refusal (e.g. a pad ORT rejects): ORT's own message
            raise Unsupported(f"onnxruntime {name}: {exc}") from None

    def _session(self, name, nodes, inputs, n_outputs, out_types):
        onnx = _onnx()
        ort = _ort()
        helper = onnx.helper
        vinfo = [
            helper.make_tensor_value_info(f"in{i}", helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for i, a in enumerate(inputs)
            if a is not None
        ]
        outs = [f"out{i}" for i in range(n_outputs)]
        first = next(a for a in inputs if a is not None)
        types = out_types or (helper.np_dtype_to_tensor_dtype(first.dtype),) * n_outputs
        oinfo = [helper.make_tensor_value_info(o, t, None) for o, t in zip(outs, types)]
        graph_nodes = [helper.make_node(op, list(ins), list(o), **attrs) for op, ins, o, attrs in nodes]
        graph = helper.make_graph(graph_nodes, f"convspec_{name}", vinfo, oinfo)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = min(model.ir_version, 10)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4
        try:
            return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # e.g. NOT_IMPLEMENTED: no kernel for this dtype
            raise Unsupported(f"onnxruntime {name}: {exc}") from None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _a(name, a, **kw):
        return fw.np_float(name, a, **kw)

    @staticmethod
    def _onnx_pads(pairs):
        """((b, e) per dim) -> ONNX's [b1, b2, ..., e1, e2, ...]."""
        return [b for b, _ in pairs] + [e for _, e in pairs]

    # ------------------------------------------------------------------ convolutions
    def _conv(self, x, w, b, stride, padding, dilation, groups, strict, flip):
        x, w, b, geo = fw.conv_inputs(
            self._a, fw.common, x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, strict=strict
        )
        if flip:  # convolve: conv with the kernel reversed in every spatial axis
            w = np.ascontiguousarray(w[(slice(None), slice(None)) + (slice(None, None, -1),) * geo.nd])
        return self._run(
            "Conv",
            [x, w, b],
            kernel_shape=list(geo.kernel),
            strides=list(geo.stride),
            pads=self._onnx_pads(geo.pads),
            dilations=list(geo.dilation),
            group=geo.groups,
        )

    def conv(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        return self._conv(x, w, b, stride, padding, dilation, groups, strict, False)

    def convolve(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        return self._conv(x, w, b, stride, padding, dilation, groups, strict, True)

    def conv_transpose(self, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
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
        y, w, b = fw.common(y, w, b)
        # output_padding as the spec computes it (for 'same' it is the extra the pads leave)
        op = [
            n_x - ((n_y - 1) * s - pb - pe + d * (k - 1) + 1)
            for n_x, n_y, s, (pb, pe), d, k in zip(
                geo.in_sizes, geo.out_sizes, geo.stride, geo.pads, geo.dilation, geo.kernel
            )
        ]
        return self._run(
            "ConvTranspose",
            [y, w, b],
            kernel_shape=list(geo.kernel),
            strides=list(geo.stride),
            pads=self._onnx_pads(geo.pads),
            dilations=list(geo.dilation),
            group=geo.groups,
            output_padding=op,
        )

    # ------------------------------------------------------------------ pooling
    def _pool_args(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        x = self._a("x", x, ndim=(3, 4, 5))
        geo = fw.pool_geometry(tuple(x.shape), kernel_size, stride, padding, dilation, ceil_mode)
        attrs = dict(
            kernel_shape=list(geo.kernel),
            strides=list(geo.stride),
            pads=self._onnx_pads(geo.pads),
            dilations=list(geo.dilation),
            ceil_mode=int(geo.ceil_mode),
        )
        return x, geo, attrs

    def max_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        # one output: ONNX Runtime's MLAS pooling kernel (without dilation), what a model without Indices runs
        x, geo, attrs = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._run("MaxPool", [x], storage_order=0, **attrs)

    def max_pool_indices(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        onnx = _onnx()
        x, geo, attrs = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        types = (onnx.helper.np_dtype_to_tensor_dtype(x.dtype), onnx.TensorProto.INT64)
        _, idx = self._run("MaxPool", [x], 2, types, storage_order=0, **attrs)
        # ONNX flattens over (N, C, *spatial) (storage_order 0: row-major); the spec's index is per plane
        return np.asarray(idx, dtype=np.int64) % prod(geo.in_sizes)

    def avg_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
        x, geo, attrs = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._run("AveragePool", [x], count_include_pad=int(bool(count_include_pad)), **attrs)

    def global_max_pool(self, x):
        x = self._a("x", x, ndim=(3, 4, 5))
        return self._run("GlobalMaxPool", [x]).reshape(x.shape[:2])

    def global_avg_pool(self, x):
        x = self._a("x", x, ndim=(3, 4, 5))
        return self._run("GlobalAveragePool", [x]).reshape(x.shape[:2])

    def kmax_pool_indices(self, x, k):
        x = self._a("x", x, min_ndim=1)
        k = fw.kmax_k(k, x.shape[-1])
        onnx = _onnx()
        vt = onnx.helper.np_dtype_to_tensor_dtype(x.dtype)
        _, idx = self._run(
            "TopK", [x, np.array([k], dtype=np.int64)], 2, (vt, onnx.TensorProto.INT64), axis=-1, largest=1, sorted=1
        )
        return np.sort(idx, axis=-1)  # index bookkeeping: the kept positions in their original order

    def kmax_pool(self, x, k):
        x = self._a("x", x, min_ndim=1)
        idx = self.kmax_pool_indices(x, k)
        return self._run("GatherElements", [x, idx], axis=-1)

    # ------------------------------------------------------------------ elementwise, dense, losses
    def relu(self, x):
        return self._run("Relu", [self._a("x", x)])

    def sigmoid(self, x):
        return self._run("Sigmoid", [self._a("x", x)])

    def tanh(self, x):
        return self._run("Tanh", [self._a("x", x)])

    def softmax(self, z):
        return self._run("Softmax", [self._a("z", z, min_ndim=1)], axis=-1)

    def cross_entropy(self, logits, labels):
        z = self._a("logits", logits)
        y = fw.check_labels(labels, z.shape)
        return self._run("SoftmaxCrossEntropyLoss", [z, y], reduction="mean")

    def linear(self, x, w, b=None):
        x = self._a("x", x, ndim=2)
        w = self._a("w", w, ndim=2)
        if x.shape[1] != w.shape[1]:
            raise ShapeError(
                "x",
                f"feature mismatch: x has {x.shape[1]} features but w expects {w.shape[1]} "
                f"(w is (out, in) = {tuple(w.shape)})",
            )
        if b is not None:
            b = self._a("b", b, ndim=1)
            if tuple(b.shape) != (w.shape[0],):
                raise ShapeError("b", f"must have shape (out,) = ({w.shape[0]},), got {tuple(b.shape)}")
        x, w, b = fw.common(x, w, b)
        return self._run("Gemm", [x, w, b], transB=1)

    def flatten(self, x):
        return self._run("Flatten", [self._a("x", x, min_ndim=1)], axis=1)

    def add(self, x, y):
        x, y = self._a("x", x), self._a("y", y)
        if x.shape != y.shape:
            raise ShapeError("y", f"must have the shape of x {tuple(x.shape)} (no broadcasting), got {tuple(y.shape)}")
        return self._run("Add", fw.common(x, y))

    # ------------------------------------------------------------------ normalization, dropout, concat
    # The checks are the NumPy backend's (convspec.backends._xp.norm.NormOps), in its order, through
    # convspec.backends._xp.checks, as the torch backend does.
    def _floating(self, name, a, reason, **kw):
        """An input of an op evaluated in floating point only: a Fraction array is NormOps' DTypeError."""
        checks.floating_only(name, np.asarray(a).dtype.kind, reason)
        return self._a(name, a, **kw)

    def _bn_inputs(self, x, gamma, beta, eps, *extra):
        x = self._floating("x", x, checks.BN_FRACTION, ndim=BN_X)
        checks.bn_nonempty(x.shape)
        vecs = []
        for name, a in (("gamma", gamma), ("beta", beta)) + extra:
            v = self._floating(name, a, checks.BN_FRACTION, ndim=1)
            checks.bn_channels(name, v.shape, x.shape[1])
            vecs.append(v)
        eps = checks.real("eps", eps, lo=0, lo_open=True)
        return fw.common(x, *vecs), eps

    @staticmethod
    def _batch_stats_feeds(x):
        """The inputs 1-4 of BN_STATS after x: gamma, beta (unused: its Y is discarded) and the zero running
        statistics, fresh arrays on every call."""
        c = x.shape[1]
        return [np.ones(c, x.dtype), np.zeros(c, x.dtype), np.zeros(c, x.dtype), np.zeros(c, x.dtype)]

    def batch_norm(self, x, gamma, beta, *, eps=1e-5):
        (x, gamma, beta), eps = self._bn_inputs(x, gamma, beta, eps)
        # ADAPT: the batch statistics from training mode (BN_STATS), eps added in x's dtype (ONNX's epsilon is
        # a float32 attribute), the normalisation by an inference-mode node with epsilon 0 (BN_NORMALISE)
        nodes = [BN_STATS, ("Add", ("var", "in5"), ("var_eps",), {}), BN_NORMALISE]
        stats = self._batch_stats_feeds(x)
        return self._run_graph("BatchNormalization", nodes, [x, *stats, np.array(eps, x.dtype), gamma, beta])[0]

    def batch_norm_inference(self, x, gamma, beta, mean, var, *, eps=1e-5):
        (x, gamma, beta, mean, var), eps = self._bn_inputs(x, gamma, beta, eps, ("mean", mean), ("var", var))
        checks.nonnegative("var", bool((var < 0).any()))
        nodes = [
            ("Add", ("in4", "in5"), ("var_eps",), {}),  # eps in x's dtype (ONNX's epsilon is a float32 attribute)
            ("BatchNormalization", ("in0", "in1", "in2", "in3", "var_eps"), ("out0",), {"epsilon": 0.0}),
        ]
        return self._run_graph("BatchNormalization", nodes, [x, gamma, beta, mean, var, np.array(eps, x.dtype)])[0]

    def batch_norm_running_stats(self, running_mean, running_var, x, *, momentum=0.1):
        x = self._a("x", x, ndim=BN_X)
        checks.bn_nonempty(x.shape)
        rm, rv = self._a("running_mean", running_mean, ndim=1), self._a("running_var", running_var, ndim=1)
        checks.bn_channels("running_mean", rm.shape, x.shape[1])
        checks.bn_channels("running_var", rv.shape, x.shape[1])
        checks.nonnegative("running_var", bool((rv < 0).any()))
        momentum = checks.real("momentum", momentum, lo=0, hi=1)
        checks.running_stats_m(x.shape)
        rm, rv, x = fw.common(rm, rv, x)
        m = x.size // x.shape[1]
        t = x.dtype.type
        # ADAPT: ONNX Runtime's own update is `input * momentum + current * (1 - momentum)` with the BIASED
        # (population) current_var and a float32 momentum attribute; the spec's weighs the new batch by
        # `momentum` and takes the unbiased variance m/(m-1) var. So the graph takes the batch statistics from
        # BatchNormalization's running outputs with momentum 0 (exactly the batch mean and biased variance)
        # and computes the spec's update with Mul/Add nodes in x's dtype.
        nodes = [
            BN_STATS,
            ("Mul", ("var", "in9"), ("var_u",), {}),  # the unbiased variance: m/(m-1) * biased
            ("Mul", ("in5", "in7"), ("old_mean",), {}),
            ("Mul", ("mu", "in8"), ("new_mean",), {}),
            ("Add", ("old_mean", "new_mean"), ("out0",), {}),
            ("Mul", ("in6", "in7"), ("old_var",), {}),
            ("Mul", ("var_u", "in8"), ("new_var",), {}),
            ("Add", ("old_var", "new_var"), ("out1",), {}),
        ]
        scalars = [np.array(v, x.dtype) for v in (t(1 - momentum), t(momentum), t(m / (m - 1)))]
        inputs = [x, *self._batch_stats_feeds(x), rm, rv, *scalars]
        mean, var = self._run_graph("BatchNormalization", nodes, inputs, n_outputs=2)
        return mean, var

    def local_response_norm(self, x, size, *, alpha=1e-4, beta=0.75, k=2.0):
        x = self._floating("x", x, checks.LRN_FRACTION, ndim=BN_X)
        size = checks.lrn_size(size)
        alpha = checks.real("alpha", alpha, lo=0)
        beta = checks.real("beta", beta)
        k = checks.real("k", k, lo=0, lo_open=True)
        if size % 2 == 0:
            raise Unsupported(ORT_LRN_EVEN)
        # ADAPT: ORT's LRN kernel takes 4-D input only (lrn.cc: X_shape.NumDimensions() == 4); LRN acts on each
        # position's channel vector alone, so (N, C, *spatial) is viewed as (N, C, prod(spatial), 1)
        x4 = x.reshape(x.shape[0], x.shape[1], prod(x.shape[2:]), 1)
        # ONNX divides alpha by size ("bias + alpha / size * square_sum"): pass alpha * size
        y = self._run("LRN", [x4], size=size, alpha=alpha * size, beta=beta, bias=k)
        return y.reshape(x.shape)

    def dropout(self, x, keep, *, p):
        x = self._a("x", x)
        m = np.asarray(keep)
        checks.keep_mask(m.dtype.kind, m.dtype, m.shape, x.shape)
        if m.dtype.kind != "b":
            checks.keep_values(bool(((m != 0) & (m != 1)).any()))
        p = checks.real("p", p, lo=0, hi=1, hi_open=True)
        # ONNX's Dropout draws its own mask (the seed attribute) and is the identity in inference mode: the
        # spec's explicit mask is applied in its functional form, ONNX's `output = scale * data * mask` with
        # scale = 1 / (1 - ratio), as Mul by the mask and Div by 1 - p in x's dtype
        nodes = [("Mul", ("in0", "in1"), ("kept",), {}), ("Div", ("kept", "in2"), ("out0",), {})]
        return self._run_graph("Dropout", nodes, [x, m.astype(x.dtype), np.array(1 - p, x.dtype)])[0]

    def concat(self, xs, *, axis=1):
        checks.concat_sequence(xs)
        arrays = [self._a(f"xs[{i}]", a, min_ndim=1) for i, a in enumerate(xs)]
        axis = checks.concat_axis(axis, arrays[0].ndim)
        checks.concat_shapes([a.shape for a in arrays], axis)
        return self._run("Concat", fw.common(*arrays), axis=axis)


BN_X = (2, 3, 4, 5)  # (N, C, *spatial) with 0 to 3 spatial dims
#: the batch statistics: training mode with momentum 0 and zero running inputs (in3, in4), so the running outputs
#: are `0 * 0 + current * (1 - 0)`, exactly the batch mean `mu` and biased variance `var` (ONNX: "ReduceVar
#: refers to the population variance"); Y is discarded (it would use the float32 epsilon)
BN_STATS = (
    "BatchNormalization",
    ("in0", "in1", "in2", "in3", "in4"),
    ("y_unused", "mu", "var"),
    {"training_mode": 1, "momentum": 0.0},
)
#: y = gamma (x - mu) / sqrt(var + eps) + beta with var + eps computed before (in6, in7: gamma, beta)
BN_NORMALISE = ("BatchNormalization", ("in0", "in6", "in7", "mu", "var_eps"), ("out0",), {"epsilon": 0.0})


ORT_POOL_NAN = (
    "ONNX Runtime's MaxPool ignores a NaN unless it is the window's first element: the Indices kernel "
    "(pool_functors.h MaxPool1D/2D/3DTask) keeps the first in-range element and replaces it only when "
    "x > Yh (false for NaN either way), and the MLAS kernel of the one-output MaxPool compares the same way"
)
ORT_SIGMOID = (
    "ONNX Runtime's Sigmoid is MLAS's logistic approximation, not a correctly rounded exp: up to ~41 ulp in "
    "float32 and ~72 ulp in float64, and 0 for x <= -18 in float32 (exact 1.5e-8, a normal number) and "
    "x <= -40 in float64 (claim O13 in docs/framework-differences.md); no relative bound holds where it "
    "returns 0, so this is an accuracy difference, not a rounding property the spec could bound"
)
ORT_LRN_EVEN = (
    "onnxruntime LRN: ONNX Runtime's CPU LRN kernel accepts odd sizes only (lrn.h: ORT_ENFORCE(size_ % 2 == 1)); "
    "an even size is refused when the session is created. (ONNX's operator would also place an even window one "
    "channel later than the spec: floor((size-1)/2) channels before c and ceil((size-1)/2) after.)"
)
ORT_GLOBAL_NAN = (
    "ONNX Runtime's GlobalMaxPool (MlasPool with MlasMaximumPooling, pool.cc) ignores NaN: the maximum of "
    "a plane holding a NaN is the maximum of its numbers; the spec propagates the NaN"
)


def _deviation(case):
    try:
        if case.op == "max_pool" and fw.windows_with_nan(case):
            return Deviation(ORT_POOL_NAN, ("forward", "indices"))
        if case.op == "global_max_pool" and fw.windows_with_nan(case):
            return Deviation(ORT_GLOBAL_NAN, ("forward",))
        if case.op == "sigmoid":
            return Deviation(ORT_SIGMOID, ("forward",))
    except Exception:  # a case the spec rejects: nothing to declare
        return None
    return None


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v


def _attrs_key(attrs):
    return tuple(sorted((k, _hashable(v)) for k, v in attrs.items()))


@hookimpl
def register_backends(register):
    register(OnnxRuntimeBackend())
