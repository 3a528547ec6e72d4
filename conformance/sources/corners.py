"""Crafted corner cases: the places where implementations disagree with the spec most often.

Every corner case names the plausible alternative rule it rules out (`rules_out`): a mutant of the
self-test catalogue (convspec.conformance.selftest.mutants) that implements that alternative, and that
tests/test_mutation.py runs on the case to see it fail. RULES_OUT maps a corner case's name to it."""

from __future__ import annotations

import numpy as np

from ..cases import Case

NAN = float("nan")
INF = float("inf")

#: corner case name -> the mutant (self-test catalogue name) implementing the alternative it rules out
RULES_OUT: dict = {}


def _x(values):
    a = np.asarray(values, dtype=np.float64)
    return a.shape, a.tolist()


def _named(name, rules_out):
    if not rules_out:
        raise ValueError(f"corner case {name!r}: name the alternative rule it rules out (rules_out=)")
    RULES_OUT[name] = f"mut-{rules_out}"


def explicit(name, op, params, rules_out=None, dtypes=("float32", "float64"), **arrays) -> list:
    _named(name, rules_out)
    shapes, values = {}, {}
    for k, v in arrays.items():
        if v is None:
            shapes[k] = None
            continue
        shapes[k], values[k] = _x(v)
    return [
        Case(op=op, shapes=shapes, params=params, dtype=dt, data="explicit", values=values, source="corner", name=name)
        for dt in dtypes
    ]


def recipe(name, op, shapes, params, data="normal", exact=False, rules_out=None) -> list:
    _named(name, rules_out)
    return [
        Case(op=op, shapes=shapes, params=params, dtype=dt, data=data, seed=7, source="corner", name=name, exact=exact)
        for dt in ("float32", "float64")
    ]


def cases() -> list:
    out = []
    # --- max-pool ties: the smaller index wins (row-major order in the window)
    ties = [[[[1, 3, 3, 0], [3, 2, 1, 3], [0, 0, 2, 2], [2, 0, 0, 2]]]]
    out += explicit("maxpool-ties-2x2", "max_pool", {"kernel_size": 2}, "maxpool-ties-last", x=ties)
    out += explicit("maxpool-ties-overlap", "max_pool", {"kernel_size": 3, "stride": 1}, "maxpool-ties-last", x=ties)
    out += explicit(
        "maxpool-ties-dilated",
        "max_pool",
        {"kernel_size": 2, "stride": 1, "dilation": 2},
        "maxpool-ties-last",
        x=[[[[3, 0, 3, 1], [0, 2, 0, 2], [3, 1, 3, 0], [0, 2, 1, 2]]]],
    )
    out += explicit(
        "maxpool-all-equal",
        "max_pool",
        {"kernel_size": (2, 3), "stride": 1},
        "maxpool-ties-last",
        x=np.ones((1, 2, 3, 4)),
    )
    out += explicit(
        "maxpool-ties-1d-pad",
        "max_pool",
        {"kernel_size": 3, "stride": 2, "padding": 1},
        "maxpool-ties-last",
        x=[[[5, 5, 1, 5, 5, 2, 5]]],
    )
    out += explicit(
        "maxpool-overlap-grad-adds",
        "max_pool",
        {"kernel_size": 2, "stride": 1},
        "maxpool-grad-overwrites",
        x=[[[1, 9, 2, 0, 3]]],
    )
    out += explicit(
        "maxpool-pad-below-zero",
        "max_pool",
        {"kernel_size": 2, "stride": 2, "padding": 1},
        "maxpool-pads-zero",
        x=[[[-3, -1, -4, -2]]],
    )
    out += explicit(
        "maxpool-default-stride", "max_pool", {"kernel_size": 2}, "maxpool-default-stride-1", x=[[[1, 2, 3, 4, 5, 6]]]
    )
    out += explicit(
        "maxpool-planes-beyond-8",
        "max_pool",
        {"kernel_size": 2},
        "maxpool-planes-blocked-by-8",
        x=np.arange(1, 9 * 4 + 1, dtype=float).reshape(1, 9, 4),
    )
    out += explicit("global-maxpool-ties", "global_max_pool", {}, "global-max-grad-to-every-tie", x=ties)
    # --- NaN: propagates; the first NaN in window order is chosen
    nan = [[[[1, NAN, 3, 0], [NAN, 2, 1, NAN], [0, 0, 2, 2], [2, 0, NAN, NAN]]]]
    out += explicit("maxpool-nan", "max_pool", {"kernel_size": 2}, "maxpool-ignores-nan", x=nan)
    out += explicit("maxpool-nan-overlap", "max_pool", {"kernel_size": 2, "stride": 1}, "maxpool-last-nan", x=nan)
    out += explicit("global-maxpool-nan", "global_max_pool", {}, "global-max-ignores-nan", x=nan)
    out += explicit("avgpool-nan", "avg_pool", {"kernel_size": 2}, "avgpool-nan-as-zero", x=nan)
    # --- k-max pooling: ties to the smaller index, original order kept, NaN ranked first, -0.0 == +0.0
    out += explicit("kmax-ties", "kmax_pool", {"k": 2}, "kmax-ties-last", x=[[[2, 5, 1, 5, 5, 2, 0]]])
    out += explicit(
        "kmax-order",
        "kmax_pool",
        {"k": 4},
        "kmax-sorted-by-value",
        x=[[[6, 1, 8, 2, 7, 3, 9]], [[0, 0, 0, 0, 0, 0, 0]]],
    )
    out += explicit("kmax-grad-order", "kmax_pool", {"k": 3}, "kmax-grad-in-rank-order", x=[[[1, 8, 0, 9, 7]]])
    out += explicit("kmax-nan", "kmax_pool", {"k": 2}, "kmax-nan-last", x=[[[1, NAN, 3, NAN, 2]]])
    out += explicit("kmax-signed-zero", "kmax_pool", {"k": 2}, "kmax-signed-zeros", x=[[[-0.0, 1.0, 0.0, -1.0]]])
    # --- ceil_mode: last windows, and the window that would start in the end padding is dropped
    row = np.arange(25, dtype=float).reshape(1, 1, 5, 5)
    out += explicit(
        "ceil-last-window",
        "max_pool",
        {"kernel_size": 2, "stride": 2, "ceil_mode": True},
        "pool-ignores-ceil-mode",
        x=row,
    )
    out += explicit(
        "ceil-drop-window",
        "max_pool",
        {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True},
        "maxpool-ceil-keeps-padding-window",
        x=row,
    )
    out += explicit(
        "ceil-avg-cip0",
        "avg_pool",
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
        "avgpool-always-counts-padding",
        x=np.ones((1, 1, 6, 6)),
    )
    out += explicit(
        "ceil-avg-cip1",
        "avg_pool",
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": True},
        "avgpool-counts-ceil-overhang",
        x=np.ones((1, 1, 6, 6)),
    )
    out += explicit(
        "avg-border-cip0",
        "avg_pool",
        {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": False},
        "avgpool-always-counts-padding",
        x=np.ones((1, 1, 4, 5)),
    )
    out += explicit(
        "avg-border-cip1",
        "avg_pool",
        {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": True},
        "avgpool-never-counts-padding",
        x=np.ones((1, 1, 4, 5)),
    )
    out += explicit(
        "avg-border-grad",
        "avg_pool",
        {"kernel_size": 3, "stride": 1, "padding": 1},
        "avgpool-grad-by-kernel-size",
        x=[[[1, 2, 3, 4]]],
    )
    out += explicit(
        "ceil-avg-1d-asym",
        "avg_pool",
        {"kernel_size": 2, "stride": 2, "padding": ((0, 1),), "ceil_mode": True},
        "avgpool-always-counts-padding",
        x=[[[1, 2, 3, 4, 5, 6, 7]]],
    )
    out += explicit("global-avg-2d", "global_avg_pool", {}, "global-avg-last-dim-only", x=ties)
    # --- 'same' with even kernels and stride > 1: the odd pad goes at the END, the total depends on the stride
    for n, k, s, alt in (
        (5, 2, 1, "same-extra-at-start"),
        (6, 4, 2, "flipped-kernel"),
        (7, 4, 3, "same-extra-at-start"),
        (5, 2, 2, "same-extra-at-start"),
        (1, 4, 2, "same-extra-at-start"),
        (6, 3, 2, "same-split-ignores-stride"),
        (8, 5, 3, "same-split-ignores-stride"),
    ):
        out += recipe(
            f"same-1d-n{n}-k{k}-s{s}",
            "conv",
            {"x": [1, 1, n], "w": [1, 1, k], "b": None},
            {"padding": "same", "stride": s},
            data="ints",
            exact=True,
            rules_out=alt,
        )
    out += recipe(
        "same-2d-even-s2",
        "conv",
        {"x": [2, 2, 6, 7], "w": [3, 2, 2, 4], "b": [3]},
        {"padding": "same", "stride": 2},
        data="ints",
        exact=True,
        rules_out="same-extra-at-start",
    )
    out += recipe(
        "same-2d-per-dim-stride",
        "conv",
        {"x": [1, 2, 6, 6], "w": [2, 2, 3, 3], "b": None},
        {"padding": "same", "stride": (1, 2)},
        data="ints",
        exact=True,
        rules_out="same-split-ignores-stride",
    )
    out += recipe(
        "same-dilated-s2",
        "conv",
        {"x": [1, 2, 8], "w": [2, 2, 3], "b": [2]},
        {"padding": "same", "stride": 2, "dilation": 2},
        data="ints",
        exact=True,
        rules_out="same-split-ignores-stride",
    )
    out += recipe(
        "full-1d-wide",
        "conv",
        {"x": [1, 1, 6], "w": [1, 1, 3], "b": None},
        {"padding": "full", "dilation": 2},
        data="ints",
        exact=True,
        rules_out="full-ignores-dilation",
    )
    out += recipe(
        "convolve-flip-2d",
        "convolve",
        {"x": [1, 1, 4, 5], "w": [1, 1, 2, 3], "b": None},
        {"padding": 1},
        data="ints",
        exact=True,
        rules_out="convolve-unflipped",
    )
    out += recipe(
        "convolve-dw-flip",
        "convolve",
        {"x": [1, 1, 5], "w": [1, 1, 3], "b": None},
        {},
        data="ints",
        exact=True,
        rules_out="convolve-dw-unflipped",
    )
    out += recipe(
        "conv-pairs-2d",
        "conv",
        {"x": [1, 1, 5, 6], "w": [1, 1, 2, 2], "b": None},
        {"padding": ((0, 2), (1, 0))},
        data="ints",
        exact=True,
        rules_out="pairs-read-as-onnx",
    )
    out += recipe(
        "conv-stride-per-dim",
        "conv",
        {"x": [1, 1, 7, 7], "w": [1, 1, 2, 2], "b": None},
        {"stride": (1, 3)},
        data="ints",
        exact=True,
        rules_out="stride-dims-reversed",
    )
    out += recipe(
        "conv-dilation-per-dim",
        "conv",
        {"x": [1, 1, 7, 7], "w": [1, 1, 2, 2], "b": None},
        {"dilation": (1, 3)},
        data="ints",
        exact=True,
        rules_out="dilation-dims-reversed",
    )
    out += recipe(
        "conv-floor-sizing",
        "conv",
        {"x": [1, 1, 8], "w": [1, 1, 3], "b": None},
        {"stride": 2},
        data="ints",
        exact=True,
        rules_out="ceil-sizing",
    )
    out += recipe(
        "conv-bias-grad-sum",
        "conv",
        {"x": [2, 1, 4], "w": [2, 1, 2], "b": [2]},
        {},
        data="ints",
        exact=True,
        rules_out="bias-grad-mean",
    )
    out += recipe(
        "conv-weight-grad-batch",
        "conv",
        {"x": [2, 1, 4], "w": [1, 1, 2], "b": None},
        {},
        data="ints",
        exact=True,
        rules_out="weight-grad-last-sample",
    )
    out += recipe(
        "conv-input-grad",
        "conv",
        {"x": [1, 1, 4], "w": [1, 1, 2], "b": None},
        {},
        data="ints",
        exact=True,
        rules_out="input-grad-flipped-kernel",
    )
    # --- kernel == padded input: one output
    out += recipe(
        "kernel-equals-padded-input",
        "conv",
        {"x": [1, 2, 3, 3], "w": [2, 2, 5, 5], "b": [2]},
        {"padding": 1},
        data="ints",
        exact=True,
        rules_out="conv-kernel-must-fit-input",
    )
    out += recipe(
        "pool-kernel-equals-input",
        "max_pool",
        {"x": [1, 1, 3, 3]},
        {"kernel_size": 3},
        data="ties",
        rules_out="maxpool-ties-last",
    )
    # --- output_padding of the transposed conv
    for s, d, op in ((2, 1, 1), (3, 1, 2), (1, 2, 1), (2, 2, 1)):
        out += recipe(
            f"convT-outpad-s{s}-d{d}-op{op}",
            "conv_transpose",
            {"y": [1, 2, 3, 4], "w": [2, 3, 3, 2], "b": [3]},
            {"stride": s, "dilation": d, "output_padding": op, "padding": 1},
            data="ints",
            exact=True,
            rules_out="convT-output-padding-at-start",
        )
    out += recipe(
        "convT-same",
        "conv_transpose",
        {"y": [1, 2, 4], "w": [2, 1, 3], "b": None},
        {"stride": 2, "padding": "same"},
        data="ints",
        exact=True,
        rules_out="convT-same-ignores-stride",
    )
    out += recipe(
        "convT-pairs-groups",
        "conv_transpose",
        {"y": [2, 4, 3, 3], "w": [4, 1, 3, 3], "b": [2]},
        {"stride": 2, "padding": ((1, 0), (0, 2)), "groups": 2},
        data="ints",
        exact=True,
        rules_out="convT-flipped-kernel",
    )
    out += recipe(
        "convT-bias-grad-batch",
        "conv_transpose",
        {"y": [2, 1, 3], "w": [1, 2, 2], "b": [2]},
        {},
        data="ints",
        exact=True,
        rules_out="convT-bias-grad-first-sample",
    )
    out += recipe(
        "convT-input-grad",
        "conv_transpose",
        {"y": [1, 1, 3], "w": [1, 1, 2], "b": None},
        {},
        data="ints",
        exact=True,
        rules_out="convT-input-grad-convolve",
    )
    # --- depthwise and grouped conv with every padding form
    for label, pad in (
        ("int", 1),
        ("per-dim", (1, 0)),
        ("pairs", ((0, 2), (1, 1))),
        ("valid", "valid"),
        ("same", "same"),
        ("full", "full"),
    ):
        out += recipe(
            f"grouped-pad-{label}",
            "conv",
            {"x": [1, 4, 5, 5], "w": [4, 2, 3, 2], "b": [4]},
            {"padding": pad, "groups": 2, "stride": (2, 1)},
            data="ints",
            exact=True,
            rules_out="groups-interleaved",
        )
    # --- relu at exactly 0 (derivative 0 there) and at -0.0; NaN and infinities; a tail beyond 16 elements
    out += explicit(
        "relu-at-zero",
        "relu",
        {},
        "relu-grad-one-at-zero",
        x=[[0.0, -0.0, 1.0, -1.0, 0.0, 2.5]],
        grad_out=[[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]],
    )
    out += explicit(
        "relu-nan-inf",
        "relu",
        {},
        "relu-nan-to-zero",
        x=[[NAN, -INF, INF, -2.0, 3.0]],
        grad_out=[[1.0, 1.0, 1.0, 1.0, 1.0]],
    )
    out += explicit("relu-minus-inf", "relu", {}, "relu-as-product", x=[[-INF, 1.0]])
    out += explicit("relu-tail", "relu", {}, "relu-tail-of-16", x=[[(-1.0) ** i * i for i in range(34)]])
    # --- saturating activations beyond exp's overflow threshold of both dtypes
    out += explicit(
        "sigmoid-saturate",
        "sigmoid",
        {},
        "sigmoid-textbook-backward",
        x=[[-800.0, -100.0, -40.0, -17.0, -1e-8, 0.0, 17.0, 40.0, 100.0, 800.0]],
    )
    out += explicit("sigmoid-grad", "sigmoid", {}, "sigmoid-grad-from-input", x=[[-2.0, 0.5, 3.0]])
    out += explicit("sigmoid-float64", "sigmoid", {}, "sigmoid-in-float32", ("float64",), x=[[0.1, 0.7, 1.3, -2.9]])
    out += explicit(
        "tanh-saturate",
        "tanh",
        {},
        "tanh-textbook",
        x=[[-800.0, -100.0, -20.0, -1e-4, 0.0, 1e-4, 9.0, 20.0, 100.0, 800.0]],
    )
    out += explicit("tanh-grad", "tanh", {}, "tanh-grad-from-input", x=[[-2.0, 0.5, 3.0]])
    out += explicit("tanh-grad-square", "tanh", {}, "tanh-grad-missing-square", x=[[-0.7, 0.5, 1.5]])
    # --- dense layers
    out += explicit(
        "linear-weight-grad",
        "linear",
        {},
        "linear-weight-grad-mean",
        x=[[1.0, 2.0], [3.0, -1.0]],
        w=[[1.0, 0.5], [-1.0, 2.0], [0.0, 1.0]],
        b=None,
    )
    out += explicit(
        "linear-weight-grad-layout",
        "linear",
        {},
        "linear-weight-grad-transposed",
        x=[[1.0, 2.0], [3.0, -1.0]],
        w=[[1.0, 0.5], [-1.0, 2.0]],
        b=None,
    )
    out += explicit(
        "linear-bias-grad", "linear", {}, "linear-bias-grad-first-sample", x=[[1.0], [2.0]], w=[[1.0]], b=[0.5]
    )
    out += explicit(
        "linear-features-beyond-8",
        "linear",
        {},
        "linear-features-blocked-by-8",
        x=[[float(i) for i in range(1, 12)]],
        w=[[1.0] * 11],
        b=None,
    )
    out += explicit("flatten-order", "flatten", {}, "flatten-column-major", x=[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])
    out += explicit("add-grads", "add", {}, "add-grad-once", x=[[1.0, 2.0]], y=[[3.0, 4.0]])
    out += explicit("add-float64", "add", {}, "add-in-float32", ("float64",), x=[[0.1, 0.2]], y=[[0.7, 1e-9]])
    # --- losses: huge logit spread, the class axis, the softmax Jacobian, the mean
    out += explicit(
        "xent-spread",
        "cross_entropy",
        {},
        "xent-log-of-softmax",
        logits=[[800.0, 0.0, -800.0], [0.0, 0.0, 0.0]],
        labels=[2, 1],
    )
    out += explicit(
        "xent-class-axis",
        "cross_entropy",
        {},
        "xent-softmax-over-batch",
        logits=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]],
        labels=[1, 0],
    )
    out += explicit(
        "xent-mean", "cross_entropy", {}, "xent-sum-not-mean", logits=[[1.0, 2.0], [0.0, -1.0]], labels=[1, 0]
    )
    out += explicit(
        "xent-grad-mean", "cross_entropy", {}, "xent-grad-missing-mean", logits=[[1.0, 2.0], [0.0, -1.0]], labels=[1, 0]
    )
    out += explicit(
        "xent-grad-scale",
        "cross_entropy",
        {},
        "xent-grad-unscaled",
        logits=[[1.0, 2.0], [0.0, -1.0]],
        labels=[1, 0],
        grad_out=2.5,
    )
    out += explicit("softmax-overflow", "softmax", {}, "softmax-unshifted", z=[[800.0, 799.0, 0.0]])
    out += explicit(
        "softmax-3d-class-axis",
        "softmax",
        {},
        "softmax-channel-axis",
        z=[[[1.0, 2.0, 3.0, 0.5], [0.0, -1.0, 2.0, 1.0]]],
    )
    out += explicit("softmax-jacobian", "softmax", {}, "softmax-grad-diagonal", z=[[1.0, 2.0, 0.5]])
    return out


def source(profile, run_seed, ops):
    wanted = set(ops)
    yield from (c for c in cases() if c.op in wanted)
