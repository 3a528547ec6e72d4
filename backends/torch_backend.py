"""PyTorch backends: ``torch-cpu``, ``torch-cuda`` and ``torch-cuda-tf32`` (install ``convspec[torch]``).

The point is to measure what PyTorch computes, so every op calls PyTorch's own operators
(``torch.nn.functional``, ``torch.sort``, ``torch.max``...) and every backward is PyTorch's autograd of
that forward, never a reimplementation. This module is the plugin (the backend class and its
registration); the internals are in convspec.backends._torch:

- ``_torch/ops.py``: the op table, each op's argument checks (the shared ones of backends._xp) and its
  forward as PyTorch calls; the one generic backward (torch.autograd over the differentiable inputs);
- ``_torch/workarounds.py``: the spec's parameters PyTorch cannot take directly (asymmetric and 'same'
  padding, pooling pads and the ceil-mode overhang, avg_pool dilation, stable k-max, batch norm with one
  value per channel, LRN of an (N, C) input), each with why;
- ``_torch/deviations.py``: the declared deviations (max_pool's NaN choice, relu's gradient at NaN);
- ``_torch/runtime.py``: the lazy torch import, its thread count, the TF32 switch.

``torch-cuda-tf32``: float32 convolutions and matmuls with TF32 (both factors of each product rounded
to 10-bit mantissas). It is a precision tier with its own bound, not a deviation: it declares
``product_roundoff = 2**-11`` and the engine widens the bounds of conv/convolve/conv_transpose/
linear by (2u + u^2) * (|x| conv |w|); every other op must meet the float32 bounds. ``torch-cuda``
runs float32 with TF32 OFF (cuDNN enables TF32 for convolutions by default), so the two tiers show
side by side in a report.

torch is imported lazily (first availability check or first op), so ``convspec backends`` lists these
backends as "unavailable: torch not installed" on a machine without torch.
"""

from __future__ import annotations

import importlib.util
import inspect
import os

import numpy as np

from convspec.api import Backend, Deviation, hookimpl

from ._torch import deviations, runtime
from ._torch.ops import OPS, Tensors, TorchOp, backward
from ._torch.runtime import THREADS_ENV  # noqa: F401  (the documented environment variable)


class TorchBackend(Backend):
    """One PyTorch device (and, on CUDA, one float32 precision tier). Its ops are the entries of the op
    table (convspec.backends._torch.ops.OPS), bound below as methods with the spec's signatures."""

    def __init__(self, name: str = "torch-cpu", device: str = "cpu", *, tf32: bool = False):
        self.name = name
        self.device = device
        self.tf32 = tf32
        self.product_roundoff = 2.0**-11 if tf32 else 0.0  # TF32: 10 explicit mantissa bits
        self._tensors = Tensors(device)
        cuda = device.startswith("cuda")
        if tf32:
            self.dtypes = ("float32",)
        elif cuda:
            self.dtypes = ("float32", "float64", "float16", "bfloat16")
        else:
            self.dtypes = ("float32", "float64")

    @property
    def version(self) -> str:
        v = runtime.torch_version()
        return f"{v} (TF32 on)" if self.tf32 and v else v

    # ------------------------------------------------------------------ contract
    def availability(self) -> str | None:
        if importlib.util.find_spec("torch") is None:
            return "torch not installed"
        try:
            torch = runtime.import_torch()
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
        return self._tensors.from_numpy(a)

    def to_numpy(self, t):
        torch = runtime.import_torch()
        if not isinstance(t, torch.Tensor):
            return np.asarray(t)
        t = t.detach()
        if t.dtype == torch.bfloat16:  # NumPy has no bfloat16
            t = t.float()
        return t.cpu().numpy()

    def synchronize(self) -> None:
        torch = runtime.imported()
        if self.device.startswith("cuda") and torch is not None:
            torch.cuda.synchronize(self.device)

    def deviation(self, case) -> Deviation | None:
        return deviations.declared(case)

    def _precision(self):
        """TF32 on for the tf32 tier, off otherwise (cuDNN's default for convolutions is ON)."""
        return runtime.precision(self.device, self.tf32)


def _methods(entry: TorchOp) -> dict:
    """The backend methods of one op-table entry: the forward, <op>_backward and the index companion,
    each with the spec's signature (that of entry.inputs, `self` in place of the tensor converter)."""
    sig = entry.sig
    params = list(inspect.signature(entry.inputs).parameters.values())[1:]
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    spec = {
        sig.name: (
            inspect.Signature([inspect.Parameter("self", kind)] + params),
            f"PyTorch's {sig.name} (the op table's entry, convspec.backends._torch.ops).",
        ),
        sig.name + "_backward": (
            inspect.Signature([inspect.Parameter("self", kind), inspect.Parameter("grad_out", kind)] + params),
            f"torch.autograd of {sig.name}: one gradient per input of {sig.differentiable}, in that order.",
        ),
    }
    if sig.index_op:
        spec[sig.index_op] = (spec[sig.name][0], f"PyTorch's {sig.index_op} (an index output, matched exactly).")

    def inputs(self, name, args, kwargs):
        """(tensors, plan) from the arguments; a call that does not fit the signature is a TypeError
        naming the method, as for any Python method."""
        try:
            return entry.inputs(self._tensors, *args, **kwargs)
        except TypeError:
            try:
                spec[name][0].bind(self, *((None,) if name.endswith("_backward") else ()), *args, **kwargs)
            except TypeError as bad_call:
                raise TypeError(f"TorchBackend.{name}(): {bad_call}") from None
            raise

    def forward(self, *args, **kwargs):
        tensors, plan = inputs(self, sig.name, args, kwargs)
        with self._precision():
            return entry.forward(plan, *tensors)

    def grad(self, grad_out, *args, **kwargs):
        tensors, plan = inputs(self, sig.name + "_backward", args, kwargs)
        with self._precision():
            return backward(entry, plan, tensors, grad_out, self._tensors)

    def index(self, *args, **kwargs):
        tensors, plan = inputs(self, sig.index_op, args, kwargs)
        return entry.index(plan, *tensors)

    methods = dict(zip(spec, (forward, grad, index)))
    if not sig.differentiable:  # a state update (batch_norm_running_stats): no backward, as in the spec
        del methods[sig.name + "_backward"]
    for name, fn in methods.items():
        fn.__name__, fn.__qualname__ = name, f"TorchBackend.{name}"
        fn.__signature__, fn.__doc__ = spec[name]
    return methods


for _entry in OPS.values():
    for _name, _fn in _methods(_entry).items():
        setattr(TorchBackend, _name, _fn)
del _entry, _name, _fn


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
