"""Crafted corner cases: the places where implementations disagree with the spec most often."""
from __future__ import annotations

import numpy as np

from ..cases import Case

NAN = float("nan")


def _x(values):
    a = np.asarray(values, dtype=np.float64)
    return a.shape, a.tolist()


def explicit(name, op, params, **arrays) -> list:
    shapes, values = {}, {}
    for k, v in arrays.items():
        if v is None:
            shapes[k] = None
            continue
        shapes[k], values[k] = _x(v)
    return [Case(op=op, shapes=shapes, params=params, dtype=dt, data="explicit", values=values, source="corner", name=name) for dt in ("float32", "float64")]


def recipe(name, op, shapes, params, data="normal", exact=False) -> list:
    return [Case(op=op, shapes=shapes, params=params, dtype=dt, data=data, seed=7, source="corner", name=name, exact=exact) for dt in ("float32", "float64")]


def cases() -> list:
    out = []
    # --- max-pool ties: the smaller index wins (row-major order in the window)
    ties = [[[[1, 3, 3, 0], [3, 2, 1, 3], [0, 0, 2, 2], [2, 0, 0, 2]]]]
    out += explicit("maxpool-ties-2x2", "max_pool", {"kernel_size": 2}, x=ties)
    out += explicit("maxpool-ties-overlap", "max_pool", {"kernel_size": 3, "stride": 1}, x=ties)
    out += explicit("maxpool-ties-dilated", "max_pool", {"kernel_size": 2, "stride": 1, "dilation": 2}, x=ties)
    out += explicit("maxpool-all-equal", "max_pool", {"kernel_size": (2, 3), "stride": 1}, x=np.ones((1, 2, 3, 4)))
    out += explicit("maxpool-ties-1d-pad", "max_pool", {"kernel_size": 3, "stride": 2, "padding": 1}, x=[[[5, 5, 1, 5, 5, 2, 5]]])
    out += explicit("global-maxpool-ties", "global_max_pool", {}, x=ties)
    # --- NaN: propagates; the first NaN in window order is chosen
    nan = [[[[1, NAN, 3, 0], [NAN, 2, 1, NAN], [0, 0, 2, 2], [2, 0, NAN, NAN]]]]
    out += explicit("maxpool-nan", "max_pool", {"kernel_size": 2}, x=nan)
    out += explicit("maxpool-nan-overlap", "max_pool", {"kernel_size": 2, "stride": 1}, x=nan)
    out += explicit("global-maxpool-nan", "global_max_pool", {}, x=nan)
    # --- k-max pooling: ties to the smaller index, original order kept, NaN ranked first
    out += explicit("kmax-ties", "kmax_pool", {"k": 3}, x=[[[2, 5, 1, 5, 5, 2, 0]]])
    out += explicit("kmax-order", "kmax_pool", {"k": 4}, x=[[[9, 1, 8, 2, 7, 3, 6]], [[0, 0, 0, 0, 0, 0, 0]]])
    out += explicit("kmax-nan", "kmax_pool", {"k": 2}, x=[[[1, NAN, 3, NAN, 2]]])
    # --- ceil_mode: last windows, and the window that would start in the end padding is dropped
    row = np.arange(25, dtype=float).reshape(1, 1, 5, 5)
    out += explicit("ceil-last-window", "max_pool", {"kernel_size": 2, "stride": 2, "ceil_mode": True}, x=row)
    out += explicit("ceil-drop-window", "max_pool", {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, x=row)
    for cip in (False, True):
        out += explicit(f"ceil-avg-cip{int(cip)}", "avg_pool", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": cip}, x=np.ones((1, 1, 6, 6)))
        out += explicit(f"avg-border-cip{int(cip)}", "avg_pool", {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": cip}, x=np.ones((1, 1, 4, 5)))
    out += explicit("ceil-avg-1d-asym", "avg_pool", {"kernel_size": 2, "stride": 2, "padding": ((0, 1),), "ceil_mode": True}, x=[[[1, 2, 3, 4, 5, 6, 7]]])
    # --- 'same' with even kernels and stride > 1: the odd pad goes at the END
    for n, k, s in ((5, 2, 1), (6, 4, 2), (7, 4, 3), (5, 2, 2), (1, 4, 2)):
        out += recipe(f"same-1d-n{n}-k{k}-s{s}", "conv", {"x": [1, 1, n], "w": [1, 1, k], "b": None}, {"padding": "same", "stride": s}, data="ints", exact=True)
    out += recipe("same-2d-even-s2", "conv", {"x": [2, 2, 6, 7], "w": [3, 2, 2, 4], "b": [3]}, {"padding": "same", "stride": 2}, data="ints", exact=True)
    out += recipe("same-dilated-s2", "conv", {"x": [1, 2, 9], "w": [2, 2, 3], "b": [2]}, {"padding": "same", "stride": 2, "dilation": 2}, data="ints", exact=True)
    out += recipe("full-1d-wide", "conv", {"x": [1, 1, 4], "w": [1, 1, 3], "b": None}, {"padding": "full"}, data="ints", exact=True)
    out += recipe("convolve-flip-2d", "convolve", {"x": [1, 1, 4, 5], "w": [1, 1, 2, 3], "b": None}, {"padding": 1}, data="ints", exact=True)
    # --- kernel == padded input: one output
    out += recipe("kernel-equals-padded-input", "conv", {"x": [1, 2, 3, 3], "w": [2, 2, 5, 5], "b": [2]}, {"padding": 1}, data="ints", exact=True)
    out += recipe("pool-kernel-equals-input", "max_pool", {"x": [1, 1, 3, 3]}, {"kernel_size": 3}, data="ties")
    # --- output_padding of the transposed conv
    for s, d, op in ((2, 1, 1), (3, 1, 2), (1, 2, 1), (2, 2, 1)):
        out += recipe(f"convT-outpad-s{s}-d{d}-op{op}", "conv_transpose", {"y": [1, 2, 3, 4], "w": [2, 3, 3, 2], "b": [3]}, {"stride": s, "dilation": d, "output_padding": op, "padding": 1}, data="ints", exact=True)
    out += recipe("convT-same", "conv_transpose", {"y": [1, 2, 4], "w": [2, 1, 4], "b": None}, {"stride": 2, "padding": "same"}, data="ints", exact=True)
    out += recipe("convT-pairs-groups", "conv_transpose", {"y": [2, 4, 3, 3], "w": [4, 1, 3, 3], "b": [2]}, {"stride": 2, "padding": ((1, 0), (0, 2)), "groups": 2}, data="ints", exact=True)
    # --- depthwise and grouped conv with every padding form
    for label, pad in (("int", 1), ("per-dim", (1, 0)), ("pairs", ((0, 2), (1, 1))), ("valid", "valid"), ("same", "same"), ("full", "full")):
        out += recipe(f"grouped-pad-{label}", "conv", {"x": [1, 4, 5, 5], "w": [4, 2, 3, 2], "b": [4]}, {"padding": pad, "groups": 2, "stride": (2, 1)}, data="ints", exact=True)
    # --- relu at exactly 0 (derivative 0 there) and at -0.0
    out += explicit("relu-at-zero", "relu", {}, x=[[0.0, -0.0, 1.0, -1.0, 0.0, 2.5]], grad_out=[[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    out += explicit("relu-nan-inf", "relu", {}, x=[[NAN, -np.inf, np.inf, -2.0, 3.0]], grad_out=[[1.0, 1.0, 1.0, 1.0, 1.0]])
    # --- saturating activations and a loss with a huge logit spread
    out += explicit("sigmoid-saturate", "sigmoid", {}, x=[[-40.0, -17.0, -1e-8, 0.0, 17.0, 40.0]])
    out += explicit("tanh-saturate", "tanh", {}, x=[[-20.0, -1e-4, 0.0, 1e-4, 9.0, 20.0]])
    out += explicit("xent-spread", "cross_entropy", {}, logits=[[100.0, 0.0, -100.0], [0.0, 0.0, 0.0]], labels=[2, 1])
    return out


def source(profile, run_seed, ops):
    wanted = set(ops)
    yield from (c for c in cases() if c.op in wanted)
