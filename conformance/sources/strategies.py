"""The hypothesis strategies that draw each op's cases: dims (1-D/2-D/3-D), shapes, strides, every
padding form, dilations, groups, dtypes and data recipes. A drawn configuration the spec rejects is
discarded (the reference itself is the validity oracle, via the op's registry entry), so the strategies
stay simple. Each op's registry entry (convspec.conformance.ops) names its strategy."""
from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from convspec import SpecError

from .. import registry
from ..cases import Case

DTYPES = st.sampled_from(["float32", "float64"])


def _per_dim(nd, elem):
    return st.one_of(elem, st.tuples(*([elem] * nd)))


def padding_forms(nd, max_pad=2, modes=True):
    pair = st.tuples(st.integers(0, max_pad), st.integers(0, max_pad))
    forms = [st.integers(0, max_pad), st.tuples(*([st.integers(0, max_pad)] * nd)), st.tuples(*([pair] * nd))]
    if modes:
        forms.append(st.sampled_from(["valid", "same", "full"]))
    return st.one_of(*forms)


@st.composite
def conv_cases(draw, op):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    kmax = 4 if nd < 3 else 3
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = draw(_per_dim(nd, st.integers(1, 3)))
    dilation = draw(_per_dim(nd, st.integers(1, 2)))
    padding = draw(padding_forms(nd))
    size = tuple(draw(st.integers(1, 9 if nd < 3 else 6)) for _ in range(nd))
    n = draw(st.integers(1, 2))
    bias = draw(st.booleans())
    params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    w = [og * groups, cg] + list(kernel)
    if op == "conv_transpose":
        params["output_padding"] = draw(_per_dim(nd, st.integers(0, 2)))
        shapes = {"y": [n, og * groups] + list(size), "w": w, "b": [cg * groups] if bias else None}
    else:
        shapes = {"x": [n, cg * groups] + list(size), "w": w, "b": [og * groups] if bias else None}
    return _valid(draw, op, shapes, params)


@st.composite
def pool_cases(draw, op):
    nd = draw(st.integers(1, 3))
    kernel = _simplify(tuple(draw(st.integers(1, 3)) for _ in range(nd)))
    params = {
        "kernel_size": kernel,
        "stride": draw(st.one_of(st.none(), _per_dim(nd, st.integers(1, 3)))),
        "padding": draw(padding_forms(nd, max_pad=1, modes=False)),
        "dilation": draw(_per_dim(nd, st.integers(1, 2))),
        "ceil_mode": draw(st.booleans()),
    }
    if op == "avg_pool":
        params["count_include_pad"] = draw(st.booleans())
    size = [draw(st.integers(1, 8 if nd < 3 else 5)) for _ in range(nd)]
    shapes = {"x": [draw(st.integers(1, 2)), draw(st.integers(1, 3))] + size}
    return _valid(draw, op, shapes, params, data=draw(st.sampled_from(["normal", "ties", "nan"])) if op == "max_pool" else "normal")


def _shape_and_scale(draw):
    return draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)), draw(st.sampled_from([1.0, 4.0, 30.0]))


@st.composite
def elementwise_cases(draw, op):
    shape, scale = _shape_and_scale(draw)
    return _valid(draw, op, {"x": shape}, {}, scale=scale)


@st.composite
def flatten_cases(draw):
    shape, _ = _shape_and_scale(draw)
    shape = [draw(st.integers(1, 3))] + shape
    return _valid(draw, "flatten", {"x": shape}, {})


@st.composite
def add_cases(draw):
    shape, scale = _shape_and_scale(draw)
    return _valid(draw, "add", {"x": shape, "y": shape}, {}, scale=scale)


@st.composite
def global_pool_cases(draw, op):
    shape, _ = _shape_and_scale(draw)
    shape = [draw(st.integers(1, 2)), draw(st.integers(1, 3))] + shape[: draw(st.integers(1, 3))]
    data = draw(st.sampled_from(["normal", "ties", "nan"])) if op == "global_max_pool" else "normal"
    return _valid(draw, op, {"x": shape}, {}, data=data)


@st.composite
def kmax_cases(draw):
    n, c, length = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 12))
    k = draw(st.integers(1, length))
    return _valid(draw, "kmax_pool", {"x": [n, c, length]}, {"k": k}, data=draw(st.sampled_from(["normal", "ties", "nan"])))


@st.composite
def linear_cases(draw):
    n, fin, fout = draw(st.integers(1, 5)), draw(st.integers(1, 12)), draw(st.integers(1, 8))
    return _valid(draw, "linear", {"x": [n, fin], "w": [fout, fin], "b": [fout] if draw(st.booleans()) else None}, {})


@st.composite
def loss_cases(draw, op):
    n, k = draw(st.integers(1, 6)), draw(st.integers(1, 10))
    scale = draw(st.sampled_from([1.0, 5.0, 40.0]))
    shapes = {"z": [n, k]} if op == "softmax" else {"logits": [n, k], "labels": [n]}
    return _valid(draw, op, shapes, {}, scale=scale)


def _simplify(t):
    return t[0] if len(set(t)) == 1 and len(t) > 0 and t[0] % 2 else t  # sometimes an int, sometimes a tuple


def _valid(draw, op, shapes, params, *, data="normal", scale=1.0) -> Case:
    case = Case(op=op, shapes=shapes, params=params, dtype=draw(DTYPES), data=data, seed=draw(st.integers(0, 2**31 - 1)), scale=scale)
    assume(is_valid(case))
    return case


def is_valid(case: Case) -> bool:
    """Does the spec accept this configuration? (Evaluated on zeros: cheap at these sizes.)"""
    info = registry.get(case.op)
    args = [None if case.shapes.get(n) is None else np.zeros(case.shapes[n]) for n in info.arrays]
    for i, name in enumerate(info.arrays):
        if info.special_inputs.get(name) == "labels" and args[i] is not None:
            args[i] = args[i].astype(np.int64)
    try:
        info.forward(*args, **case.params)
    except SpecError:
        return False
    return True


def strategy(op: str):
    """The hypothesis strategy drawing cases for op (the registry entry's)."""
    return registry.get(op).strategy()
