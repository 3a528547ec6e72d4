"""PyTorch backends: ``torch-cpu``, ``torch-cuda`` and ``torch-cuda-tf32`` (install ``convspec[torch]``).

The point is to measure what PyTorch computes, so every op calls PyTorch's own operators
(``torch.nn.functional``, ``torch.sort``, ``torch.max``...) and every backward is PyTorch's autograd of
that forward, never a reimplementation. Where PyTorch lacks a feature of the spec the adapter builds it
from PyTorch operations, and says so where it does (search for "ADAPT"):

- ADAPT conv 'same'/'full'/asymmetric padding: PyTorch takes one symmetric pad per dim and rejects
  ``padding='same'`` with stride > 1, so the spec's (begin, end) pads are applied with an explicit
  ``F.pad`` (zeros) and the convolution runs with ``padding=0``.
- ADAPT conv_transpose padding: PyTorch crops ``padding`` symmetrically; other forms (asymmetric pairs,
  'same', 'full') run with ``padding=0`` and crop/extend the result with ``F.pad`` (negative pads crop).
- ADAPT pooling padding: PyTorch pools only with symmetric pads of at most ``kernel_size // 2``; other
  pads are applied by ``F.pad`` (``-inf`` for max, zeros for avg) and the ceil-mode overhang is padded
  the same way, so the pooling runs with ``padding=0`` in floor mode; max-pool indices are mapped back
  from the padded plane to the input plane.
- ADAPT avg_pool with dilation > 1 (PyTorch's avg_pool has no dilation): a depthwise ``F.conv`` with a
  ones kernel (the window sum, with that dilation) over the zero-padded input, divided by the spec's
  divisor (count of real, or of real + padding, window elements).
- ADAPT kmax_pool: ``torch.topk`` is documented as unstable on ties, so k-max uses
  ``torch.sort(descending=True, stable=True)`` (NaN sorts first, as the spec ranks it), keeps the first k
  positions and sorts those indices back into their original order.
- ``count_include_pad`` is always passed explicitly (PyTorch's default is True, the spec's False).

Declared deviations (``deviation(case)``), where PyTorch genuinely computes something else:

- max_pool with two or more NaNs in one window: PyTorch's max-pool index (and so its gradient) is the
  LAST NaN of the window; the spec picks the first.
- relu at NaN: PyTorch's relu backward is ``threshold_backward(grad, relu(x), 0)``, which passes the
  gradient where the *output* is NaN (NaN <= 0 is false); the spec's derivative there is 0.
- ``torch-cuda-tf32``: float32 convolutions and matmuls with TF32 (both factors of each product rounded
  to 10-bit mantissas). It is a precision tier with its own bound, not a deviation: it declares
  ``product_roundoff = 2**-11`` and the engine widens the bounds of conv/convolve/conv_transpose/
  linear by (2u + u^2) * (|x| conv |w|); every other op must meet the float32 bounds. ``torch-cuda``
  runs float32 with TF32 OFF (cuDNN enables TF32 for convolutions by default), so the two tiers show
  side by side in a report.

torch is imported lazily (first availability check or first op), so ``convspec backends`` lists these
backends as "unavailable: torch not installed" on a machine without torch.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
from math import prod
from numbers import Integral

import numpy as np

from convspec.api.backend import Backend, Deviation, Unsupported
from convspec.api.hookspecs import hookimpl

from ._xp.arrays import check_ndim
from ._xp.errors import DTypeError, ParameterError, ShapeError
from ._xp.geometry import Conv, Pool, per_dim
from ._xp.geometry import conv_transpose as conv_transpose_geometry

_torch = None
THREADS_ENV = "CONVSPEC_TORCH_THREADS"


def _import_torch():
    """Import torch once and set its intra-op thread count: CONVSPEC_TORCH_THREADS, else 1.

    One thread by default: conformance cases and LeNet-sized batches are too small to gain from more,
    and conformance workers (-j) and pytest-xdist run processes side by side; with several OpenMP
    threads per process the spinning workers oversubscribe the cores (measured on a loaded 2-core
    machine: LeNet training 15x slower with 2 threads than with 1). Benchmarks set it explicitly."""
    global _torch
    if _torch is None:
        import torch

        want = os.environ.get(THREADS_ENV, "1")
        try:
            n = int(want)
        except ValueError:
            n = 1
        if n >= 1 and torch.get_num_threads() != n:
            torch.set_num_threads(n)
        _torch = torch
    return _torch


def _torch_version() -> str:
    try:
        from importlib.metadata import version

        return version("torch")
    except Exception:
        return ""


def _window_nan_counts(case) -> int:
    """The largest number of NaNs in one max-pool window of the case's input (0 when none)."""
    from convspec.reference._pool import PoolGeometry

    x = case.inputs()[0].astype(np.float64)
    p = case.params
    geo = PoolGeometry(x.shape, p["kernel_size"], p.get("stride"), p.get("padding", 0), p.get("dilation", 1), p.get("ceil_mode", False))
    win = geo.window_view(np.isnan(x).astype(np.float64), 0.0)
    return int(win.sum(axis=-1).max()) if win.size else 0


class TorchBackend(Backend):
    """One PyTorch device (and, on CUDA, one float32 precision tier)."""

    def __init__(self, name: str = "torch-cpu", device: str = "cpu", *, tf32: bool = False):
        self.name = name
        self.device = device
        self.tf32 = tf32
        self.product_roundoff = 2.0**-11 if tf32 else 0.0  # TF32: 10 explicit mantissa bits
        cuda = device.startswith("cuda")
        if tf32:
            self.dtypes = ("float32",)
        elif cuda:
            self.dtypes = ("float32", "float64", "float16", "bfloat16")
        else:
            self.dtypes = ("float32", "float64")

    @property
    def version(self) -> str:
        v = _torch_version()
        return f"{v} (TF32 on)" if self.tf32 and v else v

    # ------------------------------------------------------------------ contract
    def availability(self) -> str | None:
        if importlib.util.find_spec("torch") is None:
            return "torch not installed"
        try:
            torch = _import_torch()
        except Exception as exc:  # a broken install
            return f"torch failed to import: {exc!r}"
        if self.device.startswith("cuda"):
            # The NVML-based check does not initialise CUDA in this process, so worker processes
            # forked from it can still use the GPU.
            old = os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK")
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
            try:
                if not torch.cuda.is_available():
                    return "no CUDA device"
            finally:
                if old is None:
                    os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
                else:
                    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = old
        return None

    def from_numpy(self, a):
        torch = _import_torch()
        a = np.asarray(a)
        if a.dtype == object:
            raise Unsupported("object (exact rational) arrays are evaluated by the reference only")
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def to_numpy(self, t):
        torch = _import_torch()
        if not isinstance(t, torch.Tensor):
            return np.asarray(t)
        t = t.detach()
        if t.dtype == torch.bfloat16:  # NumPy has no bfloat16
            t = t.float()
        return t.cpu().numpy()

    def synchronize(self) -> None:
        if self.device.startswith("cuda") and _torch is not None:
            _torch.cuda.synchronize(self.device)

    def deviation(self, case) -> Deviation | None:
        if case.op == "max_pool" and case.data in ("nan", "explicit"):
            try:
                if _window_nan_counts(case) >= 2:
                    return Deviation("PyTorch max-pool picks the LAST NaN of a window with several NaNs (index and gradient); the spec picks the first", ("indices", "grad x"))
            except Exception:
                return None
        if case.op == "relu" and any(np.isnan(a).any() for a in case.inputs() if a is not None):
            return Deviation("PyTorch's relu backward passes the gradient at NaN inputs (threshold_backward tests the output, NaN <= 0 is false); the spec's derivative there is 0", ("grad x",))
        return None

    # ------------------------------------------------------------------ helpers
    @contextlib.contextmanager
    def _precision(self):
        """TF32 on for the tf32 tier, off otherwise (cuDNN's default for convolutions is ON)."""
        torch = _import_torch()
        if not self.device.startswith("cuda"):
            yield
            return
        old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = self.tf32
        torch.backends.cudnn.allow_tf32 = self.tf32
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old

    def _t(self, name, a, *, ndim=None, min_ndim=None):
        """Validate an array argument and return it as a floating tensor on this device."""
        torch = _import_torch()
        if not isinstance(a, torch.Tensor):
            a = self.from_numpy(np.asarray(a))
        if a.dtype == torch.bool or a.is_complex():
            raise DTypeError(name, f"dtype must be a real floating or integer dtype, got {a.dtype}")
        if not a.is_floating_point():
            a = a.to(torch.float64)
        return check_ndim(name, a, ndim=ndim, min_ndim=min_ndim)

    def _common(self, *ts):
        torch = _import_torch()
        present = [t for t in ts if t is not None]
        dt = present[0].dtype
        for t in present[1:]:
            dt = torch.promote_types(dt, t.dtype)
        return [None if t is None else t.to(dt) for t in ts]

    def _grad_out(self, g, shape):
        g = self._t("grad_out", g)
        if tuple(g.shape) != tuple(shape):
            raise ShapeError("grad_out", f"must have the forward output's shape {tuple(shape)}, got {tuple(g.shape)}")
        return g

    def _autograd(self, forward, grad_out, inputs, differentiable):
        """PyTorch's gradients of forward(*inputs) for the inputs flagged differentiable: a tuple with one
        entry per flagged input (None where that input is None)."""
        torch = _import_torch()
        with torch.enable_grad(), self._precision():
            leaves = [t.detach().requires_grad_(True) if (t is not None and d) else t for t, d in zip(inputs, differentiable)]
            y = forward(*leaves)
            g = self._grad_out(grad_out, y.shape).to(y.dtype)
            wrt = [t for t, d in zip(leaves, differentiable) if d and t is not None]
            got = iter(torch.autograd.grad(y, wrt, g, allow_unused=True)) if wrt else iter(())
        out = []
        for t, d in zip(leaves, differentiable):
            if not d:
                continue
            if t is None:
                out.append(None)
                continue
            gr = next(got)
            out.append(torch.zeros_like(t) if gr is None else gr.detach())
        return tuple(out)

    # ------------------------------------------------------------------ convolutions
    def _conv_forward(self, x, w, b, geo, *, flip=False):
        torch = _import_torch()
        F = torch.nn.functional
        if flip:
            w = torch.flip(w, dims=tuple(range(2, w.ndim)))
        fn = (F.conv1d, F.conv2d, F.conv3d)[geo.nd - 1]
        if all(bb == e for bb, e in geo.pads):
            return fn(x, w, b, stride=geo.stride, padding=tuple(bb for bb, _ in geo.pads), dilation=geo.dilation, groups=geo.groups)
        # ADAPT: asymmetric pads ('same' with an odd total, (begin, end) pairs) via an explicit F.pad
        xp = F.pad(x, _torch_pad(geo.pads))
        return fn(xp, w, b, stride=geo.stride, padding=0, dilation=geo.dilation, groups=geo.groups)

    def _conv_args(self, x, w, b, stride, padding, dilation, groups, strict):
        x = self._t("x", x, ndim=(3, 4, 5))
        w = self._t("w", w)
        b = None if b is None else self._t("b", b, ndim=1)
        geo = Conv(tuple(x.shape), tuple(w.shape), None if b is None else tuple(b.shape), stride=stride, padding=padding, dilation=dilation, groups=groups, strict=strict)
        x, w, b = self._common(x, w, b)
        return x, w, b, geo

    def conv(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        x, w, b, geo = self._conv_args(x, w, b, stride, padding, dilation, groups, strict)
        with self._precision():
            return self._conv_forward(x, w, b, geo)

    def conv_backward(self, grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        x, w, b, geo = self._conv_args(x, w, b, stride, padding, dilation, groups, strict)
        return self._autograd(lambda x, w, b: self._conv_forward(x, w, b, geo), grad_out, [x, w, b], [True, True, True])

    def convolve(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        x, w, b, geo = self._conv_args(x, w, b, stride, padding, dilation, groups, strict)
        with self._precision():
            return self._conv_forward(x, w, b, geo, flip=True)

    def convolve_backward(self, grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        x, w, b, geo = self._conv_args(x, w, b, stride, padding, dilation, groups, strict)
        return self._autograd(lambda x, w, b: self._conv_forward(x, w, b, geo, flip=True), grad_out, [x, w, b], [True, True, True])

    def _transpose_args(self, y, w, b, stride, padding, output_padding, dilation, groups):
        y = self._t("y", y, ndim=(3, 4, 5))
        w = self._t("w", w)
        b = None if b is None else self._t("b", b, ndim=1)
        geo = _TransposeGeometry(tuple(y.shape), tuple(w.shape), None if b is None else tuple(b.shape), stride, padding, output_padding, dilation, groups)
        y, w, b = self._common(y, w, b)
        return y, w, b, geo

    def _transpose_forward(self, y, w, b, geo):
        torch = _import_torch()
        F = torch.nn.functional
        fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[geo.nd - 1]
        if geo.native:
            return fn(y, w, b, stride=geo.stride, padding=geo.sym_pad, output_padding=geo.output_padding, groups=geo.groups, dilation=geo.dilation)
        # ADAPT: PyTorch crops `padding` symmetrically; other forms run unpadded, then F.pad crops the
        # begin pad and crops or zero-extends the end to the spec's size; the bias is added after.
        full = fn(y, w, None, stride=geo.stride, padding=0, output_padding=0, groups=geo.groups, dilation=geo.dilation)
        adjust = []
        for (bb, _), n_full, n_x in zip(geo.pads, full.shape[2:], geo.out_sizes):
            adjust.append((-bb, n_x - (n_full - bb)))
        out = F.pad(full, _torch_pad(adjust))
        return out if b is None else out + b.reshape((1, -1) + (1,) * geo.nd)

    def conv_transpose(self, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        y, w, b, geo = self._transpose_args(y, w, b, stride, padding, output_padding, dilation, groups)
        with self._precision():
            return self._transpose_forward(y, w, b, geo)

    def conv_transpose_backward(self, grad_out, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        y, w, b, geo = self._transpose_args(y, w, b, stride, padding, output_padding, dilation, groups)
        return self._autograd(lambda y, w, b: self._transpose_forward(y, w, b, geo), grad_out, [y, w, b], [True, True, True])

    # ------------------------------------------------------------------ pooling
    def _pool_args(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        x = self._t("x", x, ndim=(3, 4, 5))
        geo = Pool(tuple(x.shape), kernel_size, stride, padding, dilation, ceil_mode)
        for axis in range(geo.nd):
            if 0 in geo.dim_counts(axis, False):
                raise ParameterError("padding", "a pooling window lies entirely in the padding (padding must leave every window at least one input element)")
        return x, geo

    @staticmethod
    def _native_pads(geo) -> bool:
        """Whether PyTorch's pooling takes these pads itself: symmetric and at most kernel_size // 2."""
        return all(b == e and b <= k // 2 for (b, e), k in zip(geo.pads, geo.kernel))

    def _max_pool_forward(self, x, geo):
        """(values, flat per-plane indices into x)."""
        torch = _import_torch()
        F = torch.nn.functional
        fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[geo.nd - 1]
        if self._native_pads(geo):
            return fn(x, geo.kernel, geo.stride, tuple(b for b, _ in geo.pads), geo.dilation, ceil_mode=geo.ceil_mode, return_indices=True)
        # ADAPT: pads PyTorch's pooling refuses (asymmetric, > kernel_size // 2) and the ceil-mode
        # overhang become -inf via F.pad; pooling then runs in floor mode with padding=0.
        pads = [(b, e + o) for (b, e), o in zip(geo.pads, geo.overhang)]
        xp = F.pad(x, _torch_pad(pads), value=float("-inf"))
        values, idx = fn(xp, geo.kernel, geo.stride, 0, geo.dilation, ceil_mode=False, return_indices=True)
        # in ceil mode the spec drops a last window that starts in the end padding: crop to its size
        keep = (slice(None), slice(None)) + tuple(slice(0, o) for o in geo.out_sizes)
        values, idx = values[keep], idx[keep]
        # indices refer to the padded plane: unravel, shift by the begin pads, ravel into x's plane
        coords = []
        rest = idx
        for n_p in reversed(xp.shape[2:]):
            coords.append(rest % n_p)
            rest = torch.div(rest, n_p, rounding_mode="floor")
        coords.reverse()
        flat = torch.zeros_like(idx)
        for c, (b, _), n in zip(coords, geo.pads, x.shape[2:]):
            flat = flat * n + (c - b)
        return values, flat

    def max_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._max_pool_forward(x, geo)[0]

    def max_pool_indices(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._max_pool_forward(x, geo)[1]

    def max_pool_backward(self, grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._autograd(lambda x: self._max_pool_forward(x, geo)[0], grad_out, [x], [True])

    def _avg_pool_forward(self, x, geo, count_include_pad):
        torch = _import_torch()
        F = torch.nn.functional
        if all(d == 1 for d in geo.dilation) and self._native_pads(geo):
            fn = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[geo.nd - 1]
            return fn(x, geo.kernel, geo.stride, tuple(b for b, _ in geo.pads), ceil_mode=geo.ceil_mode, count_include_pad=count_include_pad)
        # ADAPT: dilation (no dilation in PyTorch's avg_pool) or pads it refuses: the window sums are a
        # depthwise convolution with a ones kernel over the zero-padded input (overhang included),
        # divided by the spec's divisor: real elements, or real + padding ones (never the overhang).
        c = x.shape[1]
        pads = [(b, e + o) for (b, e), o in zip(geo.pads, geo.overhang)]
        xp = F.pad(x, _torch_pad(pads))
        ones = torch.ones((c, 1) + geo.kernel, dtype=x.dtype, device=x.device)
        conv = (F.conv1d, F.conv2d, F.conv3d)[geo.nd - 1]
        total = conv(xp, ones, None, stride=geo.stride, padding=0, dilation=geo.dilation, groups=c)
        # in ceil mode the spec drops a last window that starts in the end padding: crop to its size
        total = total[(slice(None), slice(None)) + tuple(slice(0, o) for o in geo.out_sizes)]
        divisor = torch.ones((), dtype=x.dtype, device=x.device)
        for axis in range(geo.nd):
            cnt = torch.tensor(geo.dim_counts(axis, count_include_pad), dtype=x.dtype, device=x.device)
            shape = [1] * geo.nd
            shape[axis] = -1
            divisor = divisor * cnt.reshape(shape)
        return total / divisor

    def avg_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        with self._precision():
            return self._avg_pool_forward(x, geo, bool(count_include_pad))

    def avg_pool_backward(self, grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
        x, geo = self._pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        return self._autograd(lambda x: self._avg_pool_forward(x, geo, bool(count_include_pad)), grad_out, [x], [True])

    def global_max_pool(self, x):
        x = self._t("x", x, ndim=(3, 4, 5))
        return x.flatten(2).max(dim=-1).values  # torch.max(dim): first maximum on ties, NaN propagates

    def global_max_pool_backward(self, grad_out, x):
        x = self._t("x", x, ndim=(3, 4, 5))
        return self._autograd(lambda x: x.flatten(2).max(dim=-1).values, grad_out, [x], [True])

    def global_avg_pool(self, x):
        x = self._t("x", x, ndim=(3, 4, 5))
        return x.flatten(2).mean(dim=-1)

    def global_avg_pool_backward(self, grad_out, x):
        x = self._t("x", x, ndim=(3, 4, 5))
        return self._autograd(lambda x: x.flatten(2).mean(dim=-1), grad_out, [x], [True])

    def _kmax_indices(self, x, k):
        torch = _import_torch()
        n = x.shape[-1]
        if not isinstance(k, Integral) or isinstance(k, bool) or not 1 <= k <= n:
            raise ParameterError("k", f"must be an int with 1 <= k <= x.shape[-1] = {n}, got {k!r}")
        # ADAPT: topk is unstable on ties; a stable descending sort ranks NaN first, then by value,
        # ties by position. The first k positions, sorted back into their original order.
        order = torch.sort(x.detach(), dim=-1, descending=True, stable=True).indices
        return torch.sort(order[..., : int(k)], dim=-1).values

    def kmax_pool_indices(self, x, k):
        x = self._t("x", x, min_ndim=1)
        return self._kmax_indices(x, k)

    def kmax_pool(self, x, k):
        torch = _import_torch()
        x = self._t("x", x, min_ndim=1)
        return torch.gather(x, -1, self._kmax_indices(x, k))

    def kmax_pool_backward(self, grad_out, x, k):
        torch = _import_torch()
        x = self._t("x", x, min_ndim=1)
        idx = self._kmax_indices(x, k)
        return self._autograd(lambda x: torch.gather(x, -1, idx), grad_out, [x], [True])

    # ------------------------------------------------------------------ elementwise, dense, losses
    def relu(self, x):
        F = _import_torch().nn.functional
        return F.relu(self._t("x", x))

    def relu_backward(self, grad_out, x):
        F = _import_torch().nn.functional
        return self._autograd(F.relu, grad_out, [self._t("x", x)], [True])

    def sigmoid(self, x):
        return _import_torch().sigmoid(self._t("x", x))

    def sigmoid_backward(self, grad_out, x):
        return self._autograd(_import_torch().sigmoid, grad_out, [self._t("x", x)], [True])

    def tanh(self, x):
        return _import_torch().tanh(self._t("x", x))

    def tanh_backward(self, grad_out, x):
        return self._autograd(_import_torch().tanh, grad_out, [self._t("x", x)], [True])

    def _z(self, z, name="z"):
        z = self._t(name, z)
        if z.ndim < 1:
            raise ShapeError(name, "must have at least one axis (classes last)")
        return z

    def softmax(self, z):
        return _import_torch().softmax(self._z(z), dim=-1)

    def softmax_backward(self, grad_out, z):
        torch = _import_torch()
        return self._autograd(lambda z: torch.softmax(z, dim=-1), grad_out, [self._z(z)], [True])

    def _ce_args(self, logits, labels):
        torch = _import_torch()
        z = self._t("logits", logits)
        if z.ndim != 2:
            raise ShapeError("logits", f"must be (N, K), got shape {tuple(z.shape)}")
        y = labels if isinstance(labels, torch.Tensor) else self.from_numpy(np.asarray(labels))
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise DTypeError("labels", f"must be integers, got dtype {y.dtype}")
        if tuple(y.shape) != (z.shape[0],):
            raise ShapeError("labels", f"must have shape (N,) = ({z.shape[0]},), got {tuple(y.shape)}")
        if y.numel():
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= z.shape[1]:
                raise ParameterError("labels", f"must lie in [0, K) = [0, {z.shape[1]}), got values in [{lo}, {hi}]")
        return z, y.to(device=z.device, dtype=torch.int64)

    def cross_entropy(self, logits, labels):
        F = _import_torch().nn.functional
        z, y = self._ce_args(logits, labels)
        return F.cross_entropy(z, y)

    def cross_entropy_backward(self, grad_out, logits, labels):
        F = _import_torch().nn.functional
        z, y = self._ce_args(logits, labels)
        g = self._t("grad_out", grad_out)
        if g.numel() != 1:
            raise ShapeError("grad_out", f"must be a scalar (the loss is a scalar), got shape {tuple(g.shape)}")
        return self._autograd(lambda z: F.cross_entropy(z, y), g.reshape(()), [z], [True])

    def _linear_args(self, x, w, b):
        x = self._t("x", x, ndim=2)
        w = self._t("w", w, ndim=2)
        if x.shape[1] != w.shape[1]:
            raise ShapeError("x", f"feature mismatch: x has {x.shape[1]} features but w expects {w.shape[1]} (w is (out, in) = {tuple(w.shape)})")
        if b is not None:
            b = self._t("b", b, ndim=1)
            if tuple(b.shape) != (w.shape[0],):
                raise ShapeError("b", f"must have shape (out,) = ({w.shape[0]},), got {tuple(b.shape)}")
        return self._common(x, w, b)

    def linear(self, x, w, b=None):
        F = _import_torch().nn.functional
        x, w, b = self._linear_args(x, w, b)
        with self._precision():
            return F.linear(x, w, b)

    def linear_backward(self, grad_out, x, w, b=None):
        F = _import_torch().nn.functional
        x, w, b = self._linear_args(x, w, b)
        return self._autograd(F.linear, grad_out, [x, w, b], [True, True, True])

    def flatten(self, x):
        x = self._t("x", x, min_ndim=1)
        return x.reshape(x.shape[0], prod(x.shape[1:]))

    def flatten_backward(self, grad_out, x):
        x = self._t("x", x, min_ndim=1)
        return self._autograd(lambda x: x.reshape(x.shape[0], prod(x.shape[1:])), grad_out, [x], [True])

    def _add_args(self, x, y):
        x, y = self._t("x", x), self._t("y", y)
        if x.shape != y.shape:
            raise ShapeError("y", f"must have the shape of x {tuple(x.shape)} (no broadcasting), got {tuple(y.shape)}")
        return self._common(x, y)

    def add(self, x, y):
        torch = _import_torch()
        return torch.add(*self._add_args(x, y))

    def add_backward(self, grad_out, x, y):
        torch = _import_torch()
        return self._autograd(torch.add, grad_out, list(self._add_args(x, y)), [True, True])


def _torch_pad(pairs) -> tuple:
    """((b, e) per spatial dim, first dim first) -> F.pad's flat tuple (last dim first)."""
    out = []
    for b, e in reversed(list(pairs)):
        out += [b, e]
    return tuple(out)


class _TransposeGeometry:
    """conv_transpose's parameters: validated, the spec's output size, and whether PyTorch's own
    (symmetric) padding and output_padding express them."""

    def __init__(self, y_shape, w_shape, b_shape, stride, padding, output_padding, dilation, groups):
        # validation and sizing are the NumPy backend's (the conv whose adjoint this is)
        conv = conv_transpose_geometry(y_shape, w_shape, b_shape, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
        nd, groups, s, d = conv.nd, conv.groups, conv.stride, conv.dilation
        op = per_dim("output_padding", output_padding, nd, 0)
        pads, n_x = conv.pads, conv.in_sizes
        self.nd, self.groups, self.stride, self.dilation, self.output_padding = nd, groups, s, d, op
        self.pads, self.out_sizes = pads, n_x
        # PyTorch's own padding crops symmetrically; 'same'/'full' may need zero rows beyond its output
        self.native = not isinstance(padding, str) and all(b == e for b, e in pads)
        self.sym_pad = tuple(b for b, _ in pads)


def backends() -> list:
    return [
        TorchBackend("torch-cpu", "cpu"),
        TorchBackend("torch-cuda", "cuda"),
        TorchBackend("torch-cuda-tf32", "cuda", tf32=True),
    ]


@hookimpl
def register_backends(register):
    for b in backends():
        register(b)
