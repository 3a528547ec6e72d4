"""The blocks' registry entries (group "blocks"): composite ops, computed on a backend by composing its ops
(model.composer), with the reference composition as their reference functions and the propagated bound
(bounds.error_model) as their error model. Registered from convspec.conformance.ops."""

from __future__ import annotations

from functools import partial

from ..registry import OpInfo
from . import bounds as B
from . import model as M
from . import strategies as S


def block_op(block: M.Block) -> OpInfo:
    compose, compose_backward = M.composer(block)
    forward, backward = M.reference(block)
    return OpInfo(
        name=block.name,
        arrays=block.arrays,
        differentiable=block.arrays,
        group="blocks",
        error_model=B.error_model(block),
        strategy=partial(S.block_cases, block.name),
        forward=forward,
        backward=backward,
        compose=compose,
        compose_backward=compose_backward,
        requires=block.requires(),
        spatial=True,
        products=True,
    )


def block_ops() -> list:
    """One OpInfo per block of model.BLOCKS."""
    return [block_op(b) for b in M.BLOCKS]
