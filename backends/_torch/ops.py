"""The op table: every spec op as PyTorch computes it, one entry per op.

An entry (:class:`TorchOp`) has

- ``sig``: the op's signature (convspec.api.OpSignature): its array inputs in the spec's order, the
  differentiable ones, its index companion;
- ``inputs(t, *arrays, **params)``, written with the spec's signature: the argument checks (the shared
  ones of convspec.backends._xp: geometry, ndims, shapes) and the arrays as tensors on the device
  (``t``, a :class:`Tensors`), returned with a ``plan`` (the validated parameters) for the forward;
- ``forward(plan, *tensors)``: the op as torch.nn.functional / torch calls (workarounds.py where
  PyTorch cannot take a parameter as the spec states it);
- ``index(plan, *tensors)``: the index companion (max_pool_indices, kmax_pool_indices), if any.

There is no hand-written backward: :func:`backward` differentiates ``forward`` with torch.autograd
(over the differentiable inputs, in the spec's order, None for an absent bias), so every gradient is
PyTorch's autograd of the very forward that is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod

import numpy as np
from convspec.backends._xp import checks, geometry
from convspec.backends._xp.arrays import check_ndim

from convspec.api import DTypeError, OpSignature, Unsupported

from . import workarounds as wa
from .runtime import import_torch

SPATIAL = (3, 4, 5)  # (N, C, *spatial) with 1, 2 or 3 spatial dims


@dataclass(frozen=True)
class TorchOp:
    sig: OpSignature
    inputs: Callable  # (t, *arrays, **params) -> (tensors in sig.arrays order, plan)
    forward: Callable  # (plan, *tensors) -> the output tensor
    index: Callable | None = None  # (plan, *tensors) -> the index tensor of sig.index_op
    scalar: bool = False  # the output is a scalar (a loss): grad_out may be any one-element array


OPS: dict[str, TorchOp] = {}


def op(name, arrays, inputs, *, differentiable=None, index_op=None, index=None, scalar=False):
    """Register the decorated forward as the table's entry for `name`."""

    def register(forward):
        sig = OpSignature(name, arrays, arrays if differentiable is None else differentiable, index_op)
        OPS[name] = TorchOp(sig, inputs, forward, index, scalar)
        return forward

    return register


def F():
    """torch.nn.functional (torch imported on first use)."""
    return import_torch().nn.functional


# ---------------------------------------------------------------- tensors
class Tensors:
    """Array arguments as tensors on one device: NumPy arrays are copied there, integer arrays count
    as float64 (as in every backend), bool and complex are a DTypeError."""

    def __init__(self, device: str):
        self.device = device

    def from_numpy(self, a):
        a = np.asarray(a)
        if a.dtype == object:
            raise Unsupported("object (exact rational) arrays are evaluated by the reference only")
        # np.ascontiguousarray makes a 0-d array 1-d: reshape back (a 0-d input must stay 0-d to be checked)
        return import_torch().from_numpy(np.ascontiguousarray(a).reshape(a.shape)).to(self.device)

    def __call__(self, name, a, *, ndim=None, min_ndim=None):
        torch = import_torch()
        if not isinstance(a, torch.Tensor):
            a = self.from_numpy(np.asarray(a))
        if a.dtype == torch.bool or a.is_complex():
            raise DTypeError(name, f"dtype must be a real floating or integer dtype, got {a.dtype}")
        if not a.is_floating_point():
            a = a.to(torch.float64)
        return check_ndim(name, a, ndim=ndim, min_ndim=min_ndim)

    def optional(self, name, a, **kw):
        """An optional input (the bias): None stays None."""
        return None if a is None else self(name, a, **kw)

    def labels(self, a, device):
        """Class labels: an integer tensor (int64 on `device`)."""
        torch = import_torch()
        y = a if isinstance(a, torch.Tensor) else self.from_numpy(np.asarray(a))
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise DTypeError("labels", f"must be integers, got dtype {y.dtype}")
        return y.to(device=device, dtype=torch.int64)

    @staticmethod
    def common(*ts):
        """The inputs in their promoted dtype (float32 stays float32); None stays None."""
        torch = import_torch()
        present = [t for t in ts if t is not None]
        dt = present[0].dtype
        for t in present[1:]:
            dt = torch.promote_types(dt, t.dtype)
        return tuple(None if t is None else t.to(dt) for t in ts)


def shape(t):
    return None if t is None else tuple(t.shape)


# ---------------------------------------------------------------- the generic backward
def backward(entry: TorchOp, plan, tensors, grad_out, t: Tensors):
    """PyTorch's gradients of entry.forward(plan, *tensors), by torch.autograd: one per differentiable
    input in the spec's order (None where that input is None, zeros where it does not reach the output).
    A sequence input (concat's xs) gives one gradient per array, in order, in the flat tuple; an op with no
    differentiable input (a state update: batch_norm_running_stats) has no gradient: ()."""
    torch = import_torch()
    names = entry.sig.arrays
    wrt_names = entry.sig.differentiable
    if not wrt_names:
        return ()

    def leaf(v):
        return v.detach().requires_grad_(True)

    with torch.enable_grad():
        leaves = {}
        for n, v in zip(names, tensors):
            if v is not None and n in wrt_names:
                v = [leaf(a) for a in v] if isinstance(v, (list, tuple)) else leaf(v)
            leaves[n] = v
        y = entry.forward(plan, *leaves.values())
        g = t("grad_out", grad_out)
        if entry.scalar:
            checks.scalar_grad(g.shape, g.numel())
            g = g.reshape(y.shape)
        else:
            checks.grad_shape(g.shape, y.shape)
        wrt = []
        for n in wrt_names:
            v = leaves[n]
            wrt += [] if v is None else list(v) if isinstance(v, list) else [v]
        got = iter(torch.autograd.grad(y, wrt, g.to(y.dtype), allow_unused=True) if wrt else ())
    out = []
    for n in wrt_names:
        v = leaves[n]
        if v is None:
            out.append(None)
            continue
        for lf in v if isinstance(v, list) else [v]:
            gr = next(got)
            out.append(torch.zeros_like(lf) if gr is None else gr.detach())
    return tuple(out)


# ---------------------------------------------------------------- convolutions
def conv_inputs(t, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
    x, w, b = t("x", x, ndim=SPATIAL), t("w", w), t.optional("b", b, ndim=1)
    geo = geometry.Conv(
        shape(x), shape(w), shape(b), stride=stride, padding=padding, dilation=dilation, groups=groups, strict=strict
    )
    return t.common(x, w, b), geo


def _conv(geo, x, w, b):
    x, padding = wa.conv_input(x, geo)
    fn = wa.nd_function(F(), "conv", geo.nd)
    return fn(x, w, b, stride=geo.stride, padding=padding, dilation=geo.dilation, groups=geo.groups)


@op("conv", ("x", "w", "b"), conv_inputs)
def conv(geo, x, w, b):
    return _conv(geo, x, w, b)


@op("convolve", ("x", "w", "b"), conv_inputs)
def convolve(geo, x, w, b):
    # the true convolution is the cross-correlation with the kernel flipped along every spatial dim
    return _conv(geo, x, import_torch().flip(w, dims=tuple(range(2, w.ndim))), b)


def transpose_inputs(t, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    y, w, b = t("y", y, ndim=SPATIAL), t("w", w), t.optional("b", b, ndim=1)
    geo = geometry.conv_transpose(
        shape(y),
        shape(w),
        shape(b),
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    return t.common(y, w, b), wa.Transpose(geo, padding, output_padding)


@op("conv_transpose", ("y", "w", "b"), transpose_inputs)
def conv_transpose(plan, y, w, b):
    fn = wa.nd_function(F(), "conv_transpose", plan.nd)
    if plan.native:
        return fn(
            y,
            w,
            b,
            stride=plan.stride,
            padding=plan.sym_pad,
            output_padding=plan.output_padding,
            groups=plan.groups,
            dilation=plan.dilation,
        )
    full = fn(y, w, None, stride=plan.stride, padding=0, output_padding=0, groups=plan.groups, dilation=plan.dilation)
    return wa.transpose_fit(full, b, plan)


# ---------------------------------------------------------------- pooling
def pool_inputs(t, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
    x = t("x", x, ndim=SPATIAL)
    geo = geometry.Pool(shape(x), kernel_size, stride, padding, dilation, ceil_mode)
    checks.windows_touch_input(geo)
    return (x,), geo


def _max_pool(geo, x):
    """(values, flat per-plane indices into x)."""
    fn = wa.nd_function(F(), "max_pool", geo.nd)
    if wa.native_pool_pads(geo):
        return fn(
            x,
            geo.kernel,
            geo.stride,
            wa.symmetric(geo.pads),
            geo.dilation,
            ceil_mode=geo.ceil_mode,
            return_indices=True,
        )
    xp = wa.pool_input(x, geo, float("-inf"))
    values, idx = fn(xp, geo.kernel, geo.stride, 0, geo.dilation, ceil_mode=False, return_indices=True)
    idx = wa.input_indices(wa.crop_to_windows(idx, geo.out_sizes), xp.shape[2:], geo)
    return wa.gather_plane(x, idx), idx


@op("max_pool", ("x",), pool_inputs, index_op="max_pool_indices", index=lambda geo, x: _max_pool(geo, x)[1])
def max_pool(geo, x):
    return _max_pool(geo, x)[0]


def avg_pool_inputs(t, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
    (x,), geo = pool_inputs(t, x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    return (x,), (geo, bool(count_include_pad))


@op("avg_pool", ("x",), avg_pool_inputs)
def avg_pool(plan, x):
    geo, count_include_pad = plan
    if any(d != 1 for d in geo.dilation) or not wa.native_pool_pads(geo):
        return wa.avg_pool_by_window_sums(x, geo, count_include_pad)
    fn = wa.nd_function(F(), "avg_pool", geo.nd)
    # count_include_pad always passed explicitly: PyTorch's default is True, the spec's False
    return fn(
        x, geo.kernel, geo.stride, wa.symmetric(geo.pads), ceil_mode=geo.ceil_mode, count_include_pad=count_include_pad
    )


def spatial_inputs(t, x):
    return (t("x", x, ndim=SPATIAL),), None


@op("global_max_pool", ("x",), spatial_inputs)
def global_max_pool(_, x):
    return x.flatten(2).max(dim=-1).values  # torch.max(dim): first maximum on ties, NaN propagates


@op("global_avg_pool", ("x",), spatial_inputs)
def global_avg_pool(_, x):
    return x.flatten(2).mean(dim=-1)


def kmax_inputs(t, x, k):
    x = t("x", x, min_ndim=1)
    return (x,), checks.kmax_k(k, x.shape[-1])


@op("kmax_pool", ("x",), kmax_inputs, index_op="kmax_pool_indices", index=lambda k, x: wa.kmax_indices(x, k))
def kmax_pool(k, x):
    return import_torch().gather(x, -1, wa.kmax_indices(x, k))


# ---------------------------------------------------------------- elementwise, dense, losses
def any_inputs(t, x):
    return (t("x", x),), None


@op("relu", ("x",), any_inputs)
def relu(_, x):
    return F().relu(x)


@op("sigmoid", ("x",), any_inputs)
def sigmoid(_, x):
    return import_torch().sigmoid(x)


@op("tanh", ("x",), any_inputs)
def tanh(_, x):
    return import_torch().tanh(x)


def linear_inputs(t, x, w, b=None):
    x, w, b = t("x", x, ndim=2), t("w", w, ndim=2), t.optional("b", b, ndim=1)
    checks.linear_shapes(shape(x), shape(w), shape(b))
    return t.common(x, w, b), None


@op("linear", ("x", "w", "b"), linear_inputs)
def linear(_, x, w, b):
    return F().linear(x, w, b)


def flatten_inputs(t, x):
    return (t("x", x, min_ndim=1),), None


@op("flatten", ("x",), flatten_inputs)
def flatten(_, x):
    return x.reshape(x.shape[0], prod(x.shape[1:]))


def add_inputs(t, x, y):
    x, y = t("x", x), t("y", y)
    checks.same_shape(shape(x), shape(y))
    return t.common(x, y), None


@op("add", ("x", "y"), add_inputs)
def add(_, x, y):
    return import_torch().add(x, y)


def softmax_inputs(t, z):
    z = t("z", z)
    checks.class_axis("z", shape(z))
    return (z,), None


@op("softmax", ("z",), softmax_inputs)
def softmax(_, z):
    return import_torch().softmax(z, dim=-1)


def cross_entropy_inputs(t, logits, labels):
    z = t("logits", logits)
    y = t.labels(labels, z.device)
    checks.logits_labels(shape(z), shape(y))
    if y.numel():
        checks.label_range(int(y.min()), int(y.max()), z.shape[1])
    return (z, y), None


@op("cross_entropy", ("logits", "labels"), cross_entropy_inputs, differentiable=("logits",), scalar=True)
def cross_entropy(_, z, y):
    return F().cross_entropy(z, y)


# ---------------------------------------------------------------- normalization, dropout, concat
# The checks are NormOps' (convspec.backends._xp.norm), in its order, through convspec.backends._xp.checks.
def _kind(a) -> str:
    """The NumPy dtype kind of an argument ("O" for a Fraction array, "b", "i", "u", "f", "c"...)."""
    torch = import_torch()
    if isinstance(a, torch.Tensor):
        return "b" if a.dtype == torch.bool else "c" if a.is_complex() else "f" if a.is_floating_point() else "i"
    return np.asarray(a).dtype.kind


def _floating(t, name, a, reason, **kw):
    """An input of an op evaluated in floating point only: a Fraction array is NormOps' DTypeError."""
    checks.floating_only(name, _kind(a), reason)
    return t(name, a, **kw)


BN_X = (2, 3, 4, 5)  # (N, C, *spatial) with 0 to 3 spatial dims


def _bn_inputs(t, x, gamma, beta, eps, *extra):
    x = _floating(t, "x", x, checks.BN_FRACTION, ndim=BN_X)
    checks.bn_nonempty(shape(x))
    vecs = []
    for name, a in (("gamma", gamma), ("beta", beta)) + extra:
        v = _floating(t, name, a, checks.BN_FRACTION, ndim=1)
        checks.bn_channels(name, shape(v), x.shape[1])
        vecs.append(v)
    eps = checks.real("eps", eps, lo=0, lo_open=True)
    return t.common(x, *vecs), eps


def batch_norm_inputs(t, x, gamma, beta, *, eps=1e-5):
    return _bn_inputs(t, x, gamma, beta, eps)


@op("batch_norm", ("x", "gamma", "beta"), batch_norm_inputs)
def batch_norm(eps, x, gamma, beta):
    if prod(x.shape) // x.shape[1] == 1:
        return wa.batch_norm_one_value(x, gamma, beta, eps)
    return F().batch_norm(x, None, None, gamma, beta, training=True, eps=eps)


def batch_norm_inference_inputs(t, x, gamma, beta, mean, var, *, eps=1e-5):
    tensors, eps = _bn_inputs(t, x, gamma, beta, eps, ("mean", mean), ("var", var))
    checks.nonnegative("var", bool((tensors[4] < 0).any()))
    return tensors, eps


@op(
    "batch_norm_inference",
    ("x", "gamma", "beta", "mean", "var"),
    batch_norm_inference_inputs,
    differentiable=("x", "gamma", "beta"),
)
def batch_norm_inference(eps, x, gamma, beta, mean, var):
    return F().batch_norm(x, mean, var, gamma, beta, training=False, eps=eps)


def running_stats_inputs(t, running_mean, running_var, x, *, momentum=0.1):
    x = t("x", x, ndim=BN_X)
    checks.bn_nonempty(shape(x))
    rm, rv = t("running_mean", running_mean, ndim=1), t("running_var", running_var, ndim=1)
    checks.bn_channels("running_mean", shape(rm), x.shape[1])
    checks.bn_channels("running_var", shape(rv), x.shape[1])
    checks.nonnegative("running_var", bool((rv < 0).any()))
    momentum = checks.real("momentum", momentum, lo=0, hi=1)
    checks.running_stats_m(shape(x))
    return t.common(rm, rv, x), momentum


@op("batch_norm_running_stats", ("running_mean", "running_var", "x"), running_stats_inputs, differentiable=())
def batch_norm_running_stats(momentum, running_mean, running_var, x):
    # F.batch_norm updates running_mean/running_var in place: copies, never the caller's tensors. PyTorch's
    # running_var takes the UNBIASED batch variance m/(m-1) var, as the spec (BatchNorm2d's doc: "the value
    # stored in the moving average of the standard-deviation is calculated via the unbiased estimator").
    # gamma/beta/eps do not enter the statistics (eps only normalises the output, discarded here).
    mean, var = running_mean.clone(), running_var.clone()
    F().batch_norm(x, mean, var, None, None, training=True, momentum=momentum)
    return mean, var


def lrn_inputs(t, x, size, *, alpha=1e-4, beta=0.75, k=2.0):
    x = _floating(t, "x", x, checks.LRN_FRACTION, ndim=BN_X)
    size = checks.lrn_size(size)
    alpha = checks.real("alpha", alpha, lo=0)
    beta = checks.real("beta", beta)
    k = checks.real("k", k, lo=0, lo_open=True)
    return (x,), (size, alpha, beta, k)


@op("local_response_norm", ("x",), lrn_inputs)
def local_response_norm(plan, x):
    size, alpha, beta, k = plan
    # PyTorch divides alpha by size (it averages the window: avg_pool of x^2, then * alpha;
    # https://pytorch.org/docs/stable/generated/torch.nn.LocalResponseNorm.html), the spec does not (the
    # paper's formula): pass alpha * size. Its window is the spec's, also for even sizes: F.pad with
    # size // 2 channels before and (size - 1) // 2 after, then avg_pool (F.local_response_norm's source).
    x3 = x.unsqueeze(-1) if x.ndim == 2 else x  # ADAPT: PyTorch needs >= 3 dims; (N, C) is (N, C, 1)
    y = F().local_response_norm(x3, size, alpha=alpha * size, beta=beta, k=k)
    return y.squeeze(-1) if x.ndim == 2 else y


def dropout_inputs(t, x, keep, *, p):
    torch = import_torch()
    x = t("x", x)
    kind = _kind(keep)
    if kind == "O" or not isinstance(keep, torch.Tensor):
        a = np.asarray(keep)
        checks.keep_mask(kind, a.dtype, a.shape, shape(x))
        keep = t.from_numpy(a)
    else:
        checks.keep_mask(kind, keep.dtype, keep.shape, shape(x))
    if keep.dtype != torch.bool:
        checks.keep_values(bool(((keep != 0) & (keep != 1)).any()))
    p = checks.real("p", p, lo=0, hi=1, hi_open=True)
    return (x, keep.to(device=x.device, dtype=x.dtype)), p


@op("dropout", ("x", "keep"), dropout_inputs, differentiable=("x",))
def dropout(p, x, keep):
    # PyTorch has no dropout with a given mask: F.dropout draws its own, so it cannot be checked against the
    # spec's mask. This is the functional form of F.dropout (inverted dropout, "outputs are scaled by a factor
    # of 1/(1-p) during training", torch.nn.Dropout's doc) with the mask as an input, as SPEC.md's dropout
    # section defines it; its backward is autograd's g * keep / (1 - p).
    return x * keep / (1 - p)


def concat_inputs(t, xs, *, axis=1):
    checks.concat_sequence(xs)
    arrays = [t(f"xs[{i}]", a, min_ndim=1) for i, a in enumerate(xs)]
    axis = checks.concat_axis(axis, arrays[0].ndim)
    checks.concat_shapes([shape(a) for a in arrays], axis)
    return (list(t.common(*arrays)),), axis


@op("concat", ("xs",), concat_inputs)
def concat(axis, xs):
    return import_torch().cat(xs, dim=axis)  # the backward: one gradient per array of xs
