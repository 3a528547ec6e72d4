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
from ..cases import EXP_LIMIT, Case

DTYPES = st.sampled_from(["float32", "float64"])

#: plane counts N*C and lengths that are not multiples of 8, 16 or 32, and above them: an implementation
#: that blocks planes or elements by 8/16/32 and gets the tail wrong fails on these
BIG_NC = ((1, 9), (3, 3), (2, 5), (3, 7), (1, 17), (5, 7), (2, 17), (3, 11), (1, 33))


def _per_dim(nd, elem):
    return st.one_of(elem, st.tuples(*([elem] * nd)))


def padding_forms(nd, max_pad=2, modes=True):
    pair = st.tuples(st.integers(0, max_pad), st.integers(0, max_pad))
    forms = [st.integers(0, max_pad), st.tuples(*([st.integers(0, max_pad)] * nd)), st.tuples(*([pair] * nd))]
    if modes:
        forms.append(st.sampled_from(["valid", "same", "full"]))
    return st.one_of(*forms)


def _rare(draw, one_in):
    """True about once in `one_in` draws (hypothesis's simplest choice is False)."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


@st.composite
def conv_cases(draw, op):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    kmax = 4 if nd < 3 else 3
    if _rare(draw, 3):
        # 'same' with a stride: sizes where the stride changes the total padding and its split (n a
        # multiple of s, or one off it), per dim, with dilation; for conv_transpose the stride sets n_x
        kernel = tuple(draw(st.integers(2, kmax)) for _ in range(nd))
        stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
        assume(max(stride) > 1)
        dilation = draw(_per_dim(nd, st.integers(1, 2)))
        padding = "same"
        top = 3 if nd < 3 else 2
        size = tuple(max(1, s * draw(st.integers(1, top)) - draw(st.sampled_from([0, 1]))) for s in stride)
    else:
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
        params["output_padding"] = draw(_per_dim(nd, st.integers(0, 2))) if padding != "same" else 0
        shapes = {"y": [n, og * groups] + list(size), "w": w, "b": [cg * groups] if bias else None}
    else:
        shapes = {"x": [n, cg * groups] + list(size), "w": w, "b": [og * groups] if bias else None}
    return _valid(draw, op, shapes, params)


def _planes(draw, nd, small, big):
    """[N, C] + spatial sizes: small ones, or (about one in four) N*C and sizes beyond 8/16/32."""
    if _rare(draw, 4):
        n, c = draw(st.sampled_from(BIG_NC))
        return [n, c] + [draw(st.integers(small, big[nd - 1])) for _ in range(nd)]
    return [draw(st.integers(1, 2)), draw(st.integers(1, 3))] + [draw(st.integers(1, small)) for _ in range(nd)]


#: data recipes of ops that select or average (NaN, infinities, -0.0 and ties across them)
POOL_DATA = st.sampled_from(["normal", "normal", "ties", "nan", "special"])


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
    shapes = {"x": _planes(draw, nd, 8 if nd < 3 else 5, (40, 9, 5))}
    data = draw(POOL_DATA) if op == "max_pool" else draw(st.sampled_from(["normal", "normal", "special"]))
    return _valid(draw, op, shapes, params, data=data)


def _shape_and_scale(draw):
    if _rare(draw, 4):  # element counts beyond 8/16/32 that are not multiples of them
        shape = [draw(st.integers(1, 3)), draw(st.sampled_from([9, 17, 23, 33, 37]))]
    else:
        shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    return shape, draw(st.sampled_from([1.0, 4.0, 30.0]))


#: data recipes of elementwise ops: ordinary values, NaN/inf/-0.0, magnitudes around exp's thresholds
ELEMENTWISE_DATA = st.sampled_from(["normal", "normal", "normal", "special", "large"])


@st.composite
def elementwise_cases(draw, op):
    shape, scale = _shape_and_scale(draw)
    return _valid(draw, op, {"x": shape}, {}, scale=scale, data=draw(ELEMENTWISE_DATA))


@st.composite
def flatten_cases(draw):
    shape, _ = _shape_and_scale(draw)
    shape = [draw(st.integers(1, 3))] + shape
    return _valid(draw, "flatten", {"x": shape}, {}, data=draw(st.sampled_from(["normal", "normal", "special"])))


@st.composite
def add_cases(draw):
    shape, scale = _shape_and_scale(draw)
    return _valid(draw, "add", {"x": shape, "y": shape}, {}, scale=scale, data=draw(ELEMENTWISE_DATA))


@st.composite
def global_pool_cases(draw, op):
    shape = _planes(draw, draw(st.integers(1, 3)), 5, (40, 9, 5))
    data = draw(POOL_DATA) if op == "global_max_pool" else draw(st.sampled_from(["normal", "normal", "special"]))
    return _valid(draw, op, {"x": shape}, {}, data=data)


@st.composite
def kmax_cases(draw):
    n, c, length = _planes(draw, 1, 12, (40,))
    length = max(length, 2)
    k = draw(st.integers(1, length - 1)) if not _rare(draw, 10) else length  # keeping every element: rare
    return _valid(draw, "kmax_pool", {"x": [n, c, length]}, {"k": k}, data=draw(POOL_DATA))


@st.composite
def linear_cases(draw):
    n, fin, fout = draw(st.integers(1, 5)), draw(st.integers(1, 20)), draw(st.integers(1, 8))
    return _valid(draw, "linear", {"x": [n, fin], "w": [fout, fin], "b": [fout] if draw(st.booleans()) else None}, {})


@st.composite
def loss_cases(draw, op):
    # K >= 2: with one class, softmax is 1 and the loss and every gradient are 0 whatever the logits
    k = draw(st.integers(2, 10))
    if op == "softmax":  # any ndim, classes on the last axis
        lead = draw(st.lists(st.integers(1, 4), min_size=0, max_size=3))
        shapes = {"z": lead + [k]}
    else:  # (N, K): N >= 2 and N != K mostly, so an implementation reducing over the wrong axis shows
        n = 1 if _rare(draw, 8) else draw(st.integers(2, 6))
        shapes = {"logits": [n, k], "labels": [n]}
    data = draw(st.sampled_from(["normal", "normal", "large"]))
    return _valid(draw, op, shapes, {}, scale=draw(st.sampled_from([1.0, 5.0, 40.0])), data=data)


def _simplify(t):
    return t[0] if len(set(t)) == 1 and len(t) > 0 and t[0] % 2 else t  # sometimes an int, sometimes a tuple


def _all_ones(shapes) -> bool:
    flat = []
    for s in shapes.values():
        if s is not None:
            flat += [d for sub in s for d in (sub if isinstance(sub, list) else [sub])]
    return all(d == 1 for d in flat)


def _valid(draw, op, shapes, params, *, data="normal", scale=1.0) -> Case:
    assume(not _all_ones(shapes) or _rare(draw, 20))  # all-ones shapes: rare (no op's coverage rests on them)
    dtype = draw(DTYPES)
    if data == "large":  # around exp's overflow and underflow thresholds of the case dtype
        scale = EXP_LIMIT[dtype]
    case = Case(
        op=op, shapes=shapes, params=params, dtype=dtype, data=data, seed=draw(st.integers(0, 2**31 - 1)), scale=scale
    )
    assume(is_valid(case))
    return case


def is_valid(case: Case) -> bool:
    """Does the spec accept this configuration? (Evaluated on zeros: cheap at these sizes.)"""
    info = registry.get(case.op)
    args = [
        None
        if case.shapes.get(n) is None
        else ([np.zeros(s) for s in case.shapes[n]] if n == info.variadic else np.zeros(case.shapes[n]))
        for n in info.arrays
    ]
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


# -- the layers of the lectures' other networks (batch norm, LRN, dropout, concat) -----------------------


def _channels_first(draw, *, max_c=4):
    """(N, C, *spatial) with 0-3 spatial dims and at least 2 values per channel (no degenerate stats)."""
    nd = draw(st.integers(0, 3))
    shape = [draw(st.integers(1, 3)), draw(st.integers(1, max_c))] + [draw(st.integers(1, 4)) for _ in range(nd)]
    assume(int(np.prod(shape)) // shape[1] >= 2)
    return shape


@st.composite
def batch_norm_cases(draw, op):
    x = _channels_first(draw)
    c = [x[1]]
    params = {"eps": draw(st.sampled_from([1e-5, 1e-3, 0.1]))}
    shapes = {"x": x, "gamma": c, "beta": c}
    if op == "batch_norm_inference":
        shapes.update(mean=c, var=c)
    return _valid(draw, op, shapes, params, scale=draw(st.sampled_from([1.0, 4.0])))


@st.composite
def running_stats_cases(draw):
    x = _channels_first(draw)
    shapes = {"running_mean": [x[1]], "running_var": [x[1]], "x": x}
    params = {"momentum": draw(st.sampled_from([0.1, 0.01, 0.5, 1.0]))}
    return _valid(draw, "batch_norm_running_stats", shapes, params, scale=draw(st.sampled_from([1.0, 4.0])))


@st.composite
def lrn_cases(draw):
    nd = draw(st.integers(0, 2))
    x = [draw(st.integers(1, 2)), draw(st.integers(1, 8))] + [draw(st.integers(1, 4)) for _ in range(nd)]
    params = {
        "size": draw(st.integers(1, 6)),
        "alpha": draw(st.sampled_from([1e-4, 1e-2, 0.5])),
        "beta": draw(st.sampled_from([0.75, 0.5, 1.0])),
        "k": draw(st.sampled_from([2.0, 1.0])),
    }
    return _valid(draw, "local_response_norm", {"x": x}, params, scale=draw(st.sampled_from([1.0, 4.0])))


@st.composite
def dropout_cases(draw):
    shape, scale = _shape_and_scale(draw)
    params = {"p": draw(st.sampled_from([0.0, 0.25, 0.5, 0.8]))}
    return _valid(draw, "dropout", {"x": shape, "keep": shape}, params, scale=scale)


@st.composite
def concat_cases(draw):
    ndim = draw(st.integers(1, 4))
    axis = draw(st.integers(-ndim, ndim - 1))
    base = [draw(st.integers(1, 3)) for _ in range(ndim)]
    shapes = []
    for _ in range(draw(st.integers(1, 4))):
        s = list(base)
        s[axis] = draw(st.integers(0, 4))
        shapes.append(s)
    assume(sum(s[axis] for s in shapes) > 0)
    return _valid(draw, "concat", {"xs": shapes}, {"axis": axis})
