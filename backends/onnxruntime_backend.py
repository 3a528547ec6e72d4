"""The ONNX Runtime backend ``onnxruntime`` (install ``convspec[onnxruntime]``): forward only.

Every op call builds a one-node ONNX model with ``onnx.helper`` (the spec's parameters mapped onto the
operator's attributes) and runs it with ``onnxruntime.InferenceSession`` on the CPU execution provider.
Sessions are cached by (operator, attributes, input shapes, dtype). ONNX Runtime has no training
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

A configuration ONNX Runtime refuses (a dtype without a kernel, a pad it rejects) raises
``convspec.api.Unsupported`` with ONNX Runtime's own message.
"""

from __future__ import annotations

from math import prod

import numpy as np

from convspec.api.backend import Backend, Deviation, Unsupported
from convspec.api.hookspecs import hookimpl

from . import _frameworks as fw
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

    # ------------------------------------------------------------------ the one-node model
    def _run(self, op_type, inputs, n_outputs=1, out_types=None, **attrs):
        """Run one `op_type` node on `inputs` (NumPy arrays, None for an absent optional input)."""
        key = (
            op_type,
            tuple(sorted((k, _hashable(v)) for k, v in attrs.items())),
            tuple(None if a is None else (a.shape, a.dtype.str) for a in inputs),
            n_outputs,
            out_types,
        )
        sess = self._sessions.get(key)
        if sess is None:
            sess = self._session(op_type, inputs, n_outputs, out_types, attrs)
            self._sessions[key] = sess
        feeds = {f"in{i}": a for i, a in enumerate(inputs) if a is not None}
        try:
            out = sess.run(None, feeds)
        except Exception as exc:  # a runtime refusal (e.g. a pad ORT rejects): ORT's own message
            raise Unsupported(f"onnxruntime {op_type}: {exc}") from None
        return out if n_outputs > 1 else out[0]

    def _session(self, op_type, inputs, n_outputs, out_types, attrs):
        onnx = _onnx()
        ort = _ort()
        helper = onnx.helper
        names, vinfo = [], []
        for i, a in enumerate(inputs):
            if a is None:
                names.append("")
                continue
            names.append(f"in{i}")
            vinfo.append(helper.make_tensor_value_info(f"in{i}", helper.np_dtype_to_tensor_dtype(a.dtype), a.shape))
        while names and names[-1] == "":
            names.pop()
        outs = [f"out{i}" for i in range(n_outputs)]
        first = next(a for a in inputs if a is not None)
        types = out_types or (helper.np_dtype_to_tensor_dtype(first.dtype),) * n_outputs
        oinfo = [helper.make_tensor_value_info(o, t, None) for o, t in zip(outs, types)]
        node = helper.make_node(op_type, names, outs, **attrs)
        graph = helper.make_graph([node], f"convspec_{op_type}", vinfo, oinfo)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = min(model.ir_version, 10)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4
        try:
            return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # e.g. NOT_IMPLEMENTED: no kernel for this dtype
            raise Unsupported(f"onnxruntime {op_type}: {exc}") from None

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


@hookimpl
def register_backends(register):
    register(OnnxRuntimeBackend())
