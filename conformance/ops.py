"""The built-in ops of the registry: one entry per op, holding every fact the engine needs about it.

Adding an op: write its module in reference/ (the literal definition and the fast form) and add its
entry here (or register() it from a plugin or a test); nothing else in the engine lists ops.
"""

from __future__ import annotations

from functools import partial

from . import tolerance as T
from .blocks.registry_entries import block_ops
from .registry import OPS, OpInfo, groups, register
from .sources import strategies as S

_CONV = ("x", "w", "b")

for _info in (
    OpInfo(
        name="conv",
        arrays=_CONV,
        differentiable=_CONV,
        group="convolution",
        error_model=T.conv_model,
        strategy=partial(S.conv_cases, "conv"),
        exact=True,
        spatial=True,
        products=True,
    ),
    OpInfo(
        name="convolve",
        arrays=_CONV,
        differentiable=_CONV,
        group="convolution",
        error_model=T.convolve_model,
        strategy=partial(S.conv_cases, "convolve"),
        exact=True,
        spatial=True,
        products=True,
    ),
    OpInfo(
        name="conv_transpose",
        arrays=("y", "w", "b"),
        differentiable=("y", "w", "b"),
        group="transposed convolution",
        error_model=T.conv_transpose_model,
        strategy=partial(S.conv_cases, "conv_transpose"),
        exact=True,
        spatial=True,
        products=True,
    ),
    OpInfo(
        name="max_pool",
        arrays=("x",),
        differentiable=("x",),
        index_op="max_pool_indices",
        group="pooling",
        error_model=T.max_pool_model,
        strategy=partial(S.pool_cases, "max_pool"),
        exact=True,
        spatial=True,
    ),
    OpInfo(
        name="avg_pool",
        arrays=("x",),
        differentiable=("x",),
        group="pooling",
        error_model=T.avg_pool_model,
        strategy=partial(S.pool_cases, "avg_pool"),
        spatial=True,
    ),
    OpInfo(
        name="global_max_pool",
        arrays=("x",),
        differentiable=("x",),
        group="pooling",
        error_model=T.exact_model,
        strategy=partial(S.global_pool_cases, "global_max_pool"),
        exact=True,
        spatial=True,
    ),
    OpInfo(
        name="global_avg_pool",
        arrays=("x",),
        differentiable=("x",),
        group="pooling",
        error_model=T.global_avg_pool_model,
        strategy=partial(S.global_pool_cases, "global_avg_pool"),
        spatial=True,
    ),
    OpInfo(
        name="kmax_pool",
        arrays=("x",),
        differentiable=("x",),
        index_op="kmax_pool_indices",
        group="pooling",
        error_model=T.exact_model,
        strategy=S.kmax_cases,
        exact=True,
    ),
    OpInfo(
        name="relu",
        arrays=("x",),
        differentiable=("x",),
        group="activations",
        error_model=T.exact_model,
        strategy=partial(S.elementwise_cases, "relu"),
        exact=True,
    ),
    OpInfo(
        name="sigmoid",
        arrays=("x",),
        differentiable=("x",),
        group="activations",
        error_model=T.sigmoid_model,
        strategy=partial(S.elementwise_cases, "sigmoid"),
    ),
    OpInfo(
        name="tanh",
        arrays=("x",),
        differentiable=("x",),
        group="activations",
        error_model=T.tanh_model,
        strategy=partial(S.elementwise_cases, "tanh"),
    ),
    OpInfo(
        name="linear",
        arrays=_CONV,
        differentiable=_CONV,
        group="fully connected",
        error_model=T.linear_model,
        strategy=S.linear_cases,
        exact=True,
        products=True,
    ),
    OpInfo(
        name="flatten",
        arrays=("x",),
        differentiable=("x",),
        group="fully connected",
        error_model=T.exact_model,
        strategy=S.flatten_cases,
        exact=True,
    ),
    OpInfo(
        name="add",
        arrays=("x", "y"),
        differentiable=("x", "y"),
        group="fully connected",
        error_model=T.add_model,
        strategy=S.add_cases,
        exact=True,
    ),
    OpInfo(
        name="softmax",
        arrays=("z",),
        differentiable=("z",),
        group="losses",
        error_model=T.softmax_model,
        strategy=partial(S.loss_cases, "softmax"),
    ),
    OpInfo(
        name="cross_entropy",
        arrays=("logits", "labels"),
        differentiable=("logits",),
        group="losses",
        error_model=T.cross_entropy_model,
        strategy=partial(S.loss_cases, "cross_entropy"),
        special_inputs={"labels": "labels"},
    ),
    OpInfo(
        name="batch_norm",
        arrays=("x", "gamma", "beta"),
        differentiable=("x", "gamma", "beta"),
        group="normalization",
        error_model=T.batch_norm_model,
        strategy=partial(S.batch_norm_cases, "batch_norm"),
        spatial=True,
    ),
    OpInfo(
        name="batch_norm_inference",
        arrays=("x", "gamma", "beta", "mean", "var"),
        differentiable=("x", "gamma", "beta"),
        group="normalization",
        error_model=T.batch_norm_inference_model,
        strategy=partial(S.batch_norm_cases, "batch_norm_inference"),
        spatial=True,
        special_inputs={"var": "positive"},
    ),
    OpInfo(
        name="batch_norm_running_stats",
        arrays=("running_mean", "running_var", "x"),
        differentiable=(),
        outputs=("mean", "var"),
        group="normalization",
        error_model=T.batch_norm_running_stats_model,
        strategy=S.running_stats_cases,
        special_inputs={"running_var": "positive"},
    ),
    OpInfo(
        name="local_response_norm",
        arrays=("x",),
        differentiable=("x",),
        group="normalization",
        error_model=T.local_response_norm_model,
        strategy=S.lrn_cases,
        spatial=True,
    ),
    OpInfo(
        name="dropout",
        arrays=("x", "keep"),
        differentiable=("x",),
        group="regularization",
        error_model=T.dropout_model,
        strategy=S.dropout_cases,
        special_inputs={"keep": "mask"},
    ),
    OpInfo(
        name="concat",
        arrays=("xs",),
        differentiable=("xs",),
        variadic="xs",
        group="fully connected",
        error_model=T.concat_model,
        strategy=S.concat_cases,
        exact=True,
    ),
):
    register(_info)

# the network blocks (VGG, ResNet, Inception, AlexNet stage, sentence CNN): composite ops of the registry
for _info in block_ops():
    register(_info)

#: the report groups, in order
GROUPS = groups()

__all__ = ["OPS", "GROUPS", "OpInfo", "register"]
