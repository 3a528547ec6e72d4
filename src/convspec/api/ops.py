"""An op's signature, as a backend sees it: the names of its methods and of its array arguments.

A backend implements an op ``name`` as the method ``name(*arrays, **params)`` and its gradient as
``name_backward(grad_out, *arrays, **params)``, returning one gradient per ``differentiable`` input (in
that order; None for an absent bias). An op with an ``index_op`` also has that method, returning an
integer array that must match exactly. The facts the conformance engine adds to a signature (the
reference functions, the case strategy, the error model) are in convspec.conformance.registry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpSignature:
    name: str
    arrays: tuple[str, ...]  # positional array arguments, in the forward's order
    differentiable: tuple[str, ...]  # the inputs <op>_backward returns gradients for, in order
    index_op: str | None = None  # an index-valued companion that must match exactly

    @property
    def backward_name(self) -> str:
        return self.name + "_backward"

    def methods(self) -> tuple[str, ...]:
        """The backend methods this op needs: forward, backward and the index companion, if any."""
        return (self.name, self.backward_name) + ((self.index_op,) if self.index_op else ())
