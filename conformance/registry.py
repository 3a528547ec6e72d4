"""The op registry: everything the conformance engine knows about an op, in one entry (an OpInfo,
in the spirit of PyTorch's OpInfo).

An entry extends the op's signature (convspec.api.OpSignature: array arguments, differentiable inputs,
index companion) with the conformance facts: the reference functions, the hypothesis strategy that
draws its cases, its error model, whether it is exact on small integers, and how reports show it.
The built-in entries are in convspec.conformance.ops; a plugin or a test adds an op with register().
Everything else (case validation and data, the reference result, bounds, exact cases, case ids,
report groups, the scaffold's stubs) derives from the entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from convspec import reference as R
from convspec.api.ops import OpSignature

#: the parameters a case id shows, in this order, when the case has them
ID_PARAMS = (
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "output_padding",
    "ceil_mode",
    "count_include_pad",
    "k",
    "axis",
    "size",
    "p",
)


@dataclass(frozen=True, kw_only=True)
class OpInfo(OpSignature):
    group: str  # the report section: "convolution", "pooling", ...
    #: (float64 inputs, params, grad_out, dtype, product_roundoff) -> (forward bound, [bound per gradient])
    error_model: Callable
    #: () -> a hypothesis strategy drawing convspec.conformance.cases.Case objects for this op
    strategy: Callable[[], Any]
    forward: Callable | None = None  # default: convspec.reference.<name>
    backward: Callable | None = None  # default: convspec.reference.<name>_backward
    index: Callable | None = None  # default: convspec.reference.<index_op>
    exact: bool = False  # forward and backward only add, multiply or select: exact on small integers
    spatial: bool = False  # the first array is (N, C, *spatial): case ids and reports show the dims
    products: bool = False  # sums of products: a TF32-like tier's product roundoff widens the bound
    #: inputs that are not drawn as data: name -> "labels" (class indices in [0, K), K = the first
    #: input's axis 1) or "mask" (0/1 values)
    special_inputs: dict = field(default_factory=dict)
    #: the input that is a sequence of arrays (concat's xs): its shape is a list of shapes, and its
    #: gradients are checked one per array ("grad xs[0]", ...)
    variadic: str | None = None
    #: the names of the forward's outputs when it returns several (batch_norm_running_stats)
    outputs: tuple = ()
    #: a composite op (a network block) is not a backend method: it is computed by composing the
    #: backend's ops. compose(backend, *arrays, **params) -> output and compose_backward(backend,
    #: grad_out, *arrays, **params) -> gradients; `requires` names the backend ops it uses (its forward
    #: needs only those not ending in "_backward": a forward-only backend runs a block's forward).
    compose: Callable | None = None
    compose_backward: Callable | None = None
    requires: tuple = ()

    def backend_call(self, backend, part: str):
        """The callable that computes `part` ("forward", "backward", "indices") of this op on `backend`,
        or None when the backend lacks it."""
        if self.compose is not None:
            if any(not callable(getattr(backend, op, None)) for op in self.requires_for(part)):
                return None
            fn = {"forward": self.compose, "backward": self.compose_backward}.get(part)
            return None if fn is None else (lambda *a, **k: fn(backend, *a, **k))
        name = {"forward": self.name, "backward": self.backward_name, "indices": self.index_op}[part]
        fn = getattr(backend, name, None) if name else None
        return fn if callable(fn) else None

    def requires_for(self, part: str) -> tuple:
        """The backend ops a composite op needs for `part`: its forward composes forwards only."""
        if part == "forward":
            return tuple(op for op in self.requires if not op.endswith("_backward"))
        return self.requires

    def __post_init__(self):
        for attr, fname in (("forward", self.name), ("backward", self.name + "_backward"), ("index", self.index_op)):
            if attr == "backward" and not self.differentiable:
                continue  # a state update (running statistics) has no gradient
            if getattr(self, attr) is None and fname:
                fn = getattr(R, fname, None)
                if fn is None:
                    raise LookupError(
                        f"op {self.name!r}: no function for its {attr} (convspec.reference has no "
                        f"{fname!r}); pass {attr}= to OpInfo"
                    )
                object.__setattr__(self, attr, fn)

    def gradient_names(self, inputs) -> list:
        """The name of each gradient the backward returns, for these inputs (variadic ones expanded)."""
        names = []
        for name, a in zip(self.arrays, inputs):
            if name in self.differentiable:
                names += [f"{name}[{i}]" for i in range(len(a))] if name == self.variadic else [name]
        return names


#: name -> OpInfo, in registration order (the order of reports and runs)
OPS: dict[str, OpInfo] = {}


def register(info: OpInfo, *, replace: bool = False) -> OpInfo:
    """Add an op to the registry (replace=True to redefine one, e.g. in a test)."""
    if info.name in OPS and not replace:
        raise ValueError(f"op {info.name!r} is already registered")
    OPS[info.name] = info
    return info


def unregister(name: str) -> None:
    OPS.pop(name, None)


def get(name: str) -> OpInfo:
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; registered ops: {', '.join(OPS)}") from None


def names() -> tuple[str, ...]:
    return tuple(OPS)


def groups() -> tuple[str, ...]:
    """The report groups, in the order their first op was registered."""
    return tuple(dict.fromkeys(info.group for info in OPS.values()))
