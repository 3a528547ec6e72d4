"""What the engine knows about each op: its array inputs, which of them are differentiable, its index
companion and its group in the reports. The semantics themselves live in convspec.reference."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpInfo:
    name: str
    arrays: tuple[str, ...]  # positional array arguments, in the forward's order
    differentiable: tuple[str, ...]  # the inputs <op>_backward returns gradients for, in order
    group: str
    index_op: str | None = None  # an index-valued companion that must match exactly


_CONV = ("x", "w", "b")
OPS: dict[str, OpInfo] = {
    op.name: op
    for op in (
        OpInfo("conv", _CONV, _CONV, "convolution"),
        OpInfo("convolve", _CONV, _CONV, "convolution"),
        OpInfo("conv_transpose", ("y", "w", "b"), ("y", "w", "b"), "transposed convolution"),
        OpInfo("max_pool", ("x",), ("x",), "pooling", "max_pool_indices"),
        OpInfo("avg_pool", ("x",), ("x",), "pooling"),
        OpInfo("global_max_pool", ("x",), ("x",), "pooling"),
        OpInfo("global_avg_pool", ("x",), ("x",), "pooling"),
        OpInfo("kmax_pool", ("x",), ("x",), "pooling", "kmax_pool_indices"),
        OpInfo("relu", ("x",), ("x",), "activations"),
        OpInfo("sigmoid", ("x",), ("x",), "activations"),
        OpInfo("tanh", ("x",), ("x",), "activations"),
        OpInfo("linear", _CONV, _CONV, "fully connected"),
        OpInfo("flatten", ("x",), ("x",), "fully connected"),
        OpInfo("add", ("x", "y"), ("x", "y"), "fully connected"),
        OpInfo("softmax", ("z",), ("z",), "losses"),
        OpInfo("cross_entropy", ("logits", "labels"), ("logits",), "losses"),
    )
}
GROUPS = ("convolution", "transposed convolution", "pooling", "activations", "fully connected", "losses")
