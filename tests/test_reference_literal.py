"""The literal specification equals the fast one: convspec.reference.literal.<op> == convspec.reference.<op>.

Each op module of reference/ opens with its literal definition, `<op>_literal` (explicit loops over the
output positions and window taps, read off the formula), and its gradient `<op>_backward_literal`; the
public op is the vectorised form. For every op in OPS and every index op in INDEX_OPS, hypothesis draws
configurations with the conformance suite's property generator, and the two forms are compared on the
forward, on every gradient and on the indices:

- rational ops (conv, convolve, conv_transpose, the poolings, relu, linear, flatten, add): EXACTLY, on
  integer-valued float64 data (every partial sum is representable, so summation order cannot matter) and
  again (unless the data holds NaN) on object arrays of fractions.Fraction, where every output element
  must still be a Fraction (no float conversion anywhere). The selection ops (max_pool, global_max_pool,
  kmax_pool, relu, flatten, add) are also compared bit for bit on the drawn float data, NaN payloads and
  -0.0 included (with integer gradients: the fast max_pool_backward accumulates overlapping windows in
  float64, the literal one in the data's dtype, so float32 sums of three gradients may round differently).
- transcendental ops (sigmoid, tanh, softmax, cross_entropy): on float64, within TRANSCENDENTAL (relative
  and absolute 1e-14, about 50 ulp of 1; the largest difference seen over 1500 drawn cases was 1.9e-15):
  the literal forms sum in a different order and evaluate tanh through expm1, so they agree to rounding,
  not bit for bit.

Cap: the literal loops are plain Python, so a configuration whose forward needs more than MAX_WORK
multiply-adds (window taps times outputs; conv: N * C_out * prod(out) * C_in/G * prod(kernel)) would be
discarded with assume(), and the Fraction pass, ten times slower, runs only up to MAX_FRACTION_WORK. The
generator's sizes are unchanged; over 4000 drawn configurations per op the largest forward was 54000
(a 3-D conv), so MAX_WORK discarded none, and the Fraction pass skipped under 1% (large 3-D convs and
conv_transposes, one 3-D max_pool in 2000), which the integer-valued float64 pass still compares exactly.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from convspec.conformance.sources.properties import strategy
from convspec.reference import lectures, literal
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convspec import SpecError
from convspec import reference as R

RATIONAL = (
    "conv",
    "convolve",
    "conv_transpose",
    "max_pool",
    "avg_pool",
    "global_max_pool",
    "global_avg_pool",
    "kmax_pool",
    "relu",
    "linear",
    "flatten",
    "add",
)
#: Ops that only select or move values: literal and fast agree bit for bit on any float data.
SELECTION = ("max_pool", "global_max_pool", "kmax_pool", "relu", "flatten", "add")
TRANSCENDENTAL = dict(rtol=1e-14, atol=1e-14)
MAX_WORK = 60_000
MAX_FRACTION_WORK = 16_000

CHECKED = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)


def _index_op(op):
    name = f"{op}_indices"
    return name if name in R.INDEX_OPS else None


def _work(op, args, params, y) -> int:
    """Multiply-adds (or window taps) the literal forward performs."""
    if op in ("conv", "convolve"):
        return y.size * int(np.prod(args[1].shape[1:]))  # outputs * C_in/G * prod(kernel)
    if op == "conv_transpose":
        return args[0].size * int(np.prod(args[1].shape[1:]))  # conv outputs * C_x/G * prod(kernel)
    if op in ("max_pool", "avg_pool"):
        k = params["kernel_size"]
        return y.size * (k ** (y.ndim - 2) if isinstance(k, int) else math.prod(k))
    return int(np.size(args[0]))


def _fractions(a):
    if a is None or a.dtype.kind in "iu":
        return a
    return np.vectorize(Fraction, otypes=[object])(a) if a.size else a.astype(object)


def _call(fns, op, args, params):
    return getattr(fns, op)(*args, **params)


def _compare(got, want, *, what, bits=False, fraction=False, close=None):
    if want is None:
        assert got is None, f"{what}: literal gave {got!r}, fast gave None"
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if close is not None:
        np.testing.assert_allclose(got, want, err_msg=what, **close)
    elif got.dtype == object:
        assert all(a == b for a, b in zip(got.flat, want.flat)), f"{what}: {got} != {want}"
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)
    if bits and got.dtype.kind == "f":
        assert got.tobytes() == want.tobytes(), f"{what}: not bit for bit equal: {got} vs {want}"
    if fraction and got.dtype == object:
        bad = [v for v in got.flat if not isinstance(v, Fraction)]
        assert not bad, f"{what}: the literal form returned non-Fractions: {bad[:3]}"


def _check(op, case, args, *, bits=False, fraction=False, close=None):
    """Forward, every gradient and the index op: literal against fast."""
    params = case.params
    fast = _call(R, op, args, params)
    lit = _call(literal, op, args, params)
    _compare(lit, fast, what=f"{op} forward", bits=bits, fraction=fraction, close=close)
    g = case.grad_output(np.shape(fast))
    if fraction:
        g = _fractions(g)
    fast_grads = _call(R, f"{op}_backward", [g] + args, params)
    lit_grads = _call(literal, f"{op}_backward", [g] + args, params)
    assert isinstance(lit_grads, tuple) and len(lit_grads) == len(fast_grads)
    for k, (a, b) in enumerate(zip(lit_grads, fast_grads)):
        _compare(a, b, what=f"{op}_backward gradient {k}", bits=bits, fraction=fraction, close=close)
    index_op = _index_op(op)
    if index_op:
        _compare(_call(literal, index_op, args, params), _call(R, index_op, args, params), what=index_op)


@pytest.mark.parametrize("op", R.OPS)
@CHECKED
@given(data=st.data())
def test_literal_equals_fast(op, data):
    case = data.draw(strategy(op), label="case")
    if op in RATIONAL:
        exact = dataclasses.replace(
            case, dtype="float64", exact=True, data=case.data if case.data in ("ties", "nan") else "ints"
        )
        args = exact.inputs()
        try:
            y = _call(R, op, args, case.params)
        except SpecError:
            assume(False)
        work = _work(op, args, case.params, y)
        assume(work <= MAX_WORK)
        _check(op, exact, args)
        if exact.data != "nan" and work <= MAX_FRACTION_WORK:
            _check(op, exact, [_fractions(a) for a in args], fraction=True)
        if op in SELECTION:  # the drawn float32/float64 data as it is; integer gradients, so that
            # max_pool's accumulation of overlapping windows is exact in either form
            _check(op, dataclasses.replace(case, exact=True), case.inputs(), bits=True)
    else:
        floats = dataclasses.replace(case, dtype="float64")
        args = floats.inputs()
        try:
            _call(R, op, args, case.params)
        except SpecError:
            assume(False)
        if op in BOUNDED:
            _check_within_bounds(op, floats, args)
        else:
            _check(op, floats, args, close=TRANSCENDENTAL)


#: float64 ops whose two forms sum in different orders over many terms (batch statistics, channel windows,
#: the 1/(1-p) scale): each form is within the op's float64 error bound of the exact result, so the two
#: are within twice that bound of each other (the bound is the engine's: conformance/tolerance.py)
BOUNDED = ("batch_norm", "batch_norm_inference", "local_response_norm", "dropout")


def _check_within_bounds(op, case, args):
    from convspec.conformance import tolerance

    params = case.params
    fast, lit = _call(R, op, args, params), _call(literal, op, args, params)
    g = case.grad_output(np.shape(fast))
    fwd_bound, grad_bounds = tolerance.bounds(op, args, params, g, "float64")
    np.testing.assert_array_less(np.abs(lit - fast), 2 * np.asarray(fwd_bound) + 1e-300, err_msg=f"{op} forward")
    fast_grads = _call(R, f"{op}_backward", [g] + args, params)
    lit_grads = _call(literal, f"{op}_backward", [g] + args, params)
    for k, (a, b, bound) in enumerate(zip(lit_grads, fast_grads, grad_bounds)):
        np.testing.assert_array_less(np.abs(a - b), 2 * np.asarray(bound) + 1e-300, err_msg=f"{op} gradient {k}")


# ------------------------------------------------------------------------------ the literal namespace


def test_every_op_has_a_literal_form_in_its_module():
    """literal.<op> is <op>_literal of the op's own module, for every op, gradient and index op."""
    names = [n for op in R.OPS for n in (op, f"{op}_backward")] + list(R.INDEX_OPS)
    assert set(R.INDEX_OPS) <= {_index_op(op) for op in R.OPS}, "an index op whose forward is not in OPS"
    for name in names:
        lit, fast = getattr(literal, name), getattr(R, name)
        assert lit.__name__ == f"{name}_literal" and lit.__module__ == fast.__module__, (name, lit)
        assert lit is not fast
    assert sorted(literal.__all__) == sorted(names)


# ------------------------------------------------------------------------------ the lectures' examples

ARRAY_CASES = [c for c in lectures.CASES if hasattr(literal, c.op)]


@pytest.mark.parametrize("case", ARRAY_CASES, ids=[c.id for c in ARRAY_CASES])
def test_literal_forms_reproduce_the_lecture_examples(case):
    """Every worked example of the lectures with an array op, evaluated by the literal form, exactly."""
    fn = getattr(literal, case.op)
    args, kwargs = lectures.arguments(case)
    if lectures.expects_error(case):
        with pytest.raises(case.expected):
            fn(*args, **kwargs)
        return
    got = lectures.plain(fn(*args, **kwargs))
    if case.arithmetic == "exact":  # float64 cases: floating point by definition, exact dyadic data
        assert lectures.is_exact(got), f"{case.id}: the literal form returned floats on exact inputs: {got!r}"
    assert got == case.expected, f"{case.id}: literal {got!r} != expected {case.expected!r}"


def test_literal_box_filter_and_pooling_examples():
    """Two of the lecture's numbers, spelled out: the 1-D box filter gives 10/3 and 16/3 exactly, and the
    4x4 max pool of seed 000 gives [[6, 9], [3, 4]], its last window's tie (4 at flat 11 and 14) going to
    the smaller index, and its gradient routed to the chosen maxima."""
    box = lectures.by_id("box-filter-1d-shrink")
    y = literal.conv(*[lectures.exact(v) for v in box.inputs], **box.params)
    assert y.dtype == object and Fraction(10, 3) in y.tolist()[0][0] and Fraction(16, 3) in y.tolist()[0][0]
    assert lectures.plain(y) == box.expected
    x = lectures.exact([[lectures.POOL_A]])
    assert lectures.plain(literal.max_pool(x, 2)) == [[[[6, 9], [3, 4]]]]
    assert lectures.plain(literal.max_pool_indices(x, 2)) == [[[[4, 7], [8, 11]]]]
    (dx,) = literal.max_pool_backward(lectures.exact([[[[1, 2], [3, 4]]]]), x, 2)
    assert lectures.plain(dx) == [[[[0, 0, 0, 0], [1, 0, 0, 2], [3, 0, 0, 4], [0, 0, 0, 0]]]]


# ------------------------------------------------------------------------------ the same errors

F1 = np.ones((1, 1, 4))
BAD_CALLS = [
    ("conv", (np.ones((1, 4, 5)), np.ones((2, 3, 2))), {"groups": 3}),
    ("conv", (np.ones((1, 2, 7, 7)), np.ones((1, 2, 3, 3))), {"stride": 3, "strict": True}),
    ("conv", (np.ones((1, 1, 3)), np.ones((1, 1, 5))), {}),
    ("conv", (F1, np.ones((1, 1, 2))), {"padding": -1}),
    ("conv", (F1, np.ones((1, 1, 2))), {"padding": "wide"}),
    ("conv", (F1, np.ones((1, 1, 2)), np.ones(2)), {}),
    ("convolve", (F1, np.ones((1, 2))), {}),
    ("conv_transpose", (F1, np.ones((1, 1, 2))), {"stride": 2, "output_padding": 2}),
    ("conv_transpose", (F1, np.ones((2, 1, 2))), {}),
    ("max_pool", (F1, 2), {"padding": "same"}),
    ("max_pool", (F1, 2), {"padding": 2}),
    ("max_pool", (F1, 5), {}),
    ("avg_pool", (F1, 2), {"padding": 2, "stride": 1}),
    ("avg_pool", (np.ones((1, 4)), 2), {}),
    ("global_max_pool", (np.ones((2, 3)),), {}),
    ("kmax_pool", (F1, 5), {}),
    ("kmax_pool", (F1, True), {}),
    ("relu", (np.array(["a"]),), {}),
    ("sigmoid", (np.array([Fraction(1)], dtype=object),), {}),
    ("tanh", (np.array([Fraction(1)], dtype=object),), {}),
    ("linear", (np.ones((2, 3)), np.ones((4, 2))), {}),
    ("flatten", (np.float64(1.0),), {}),
    ("add", (np.ones(3), np.ones((1, 3))), {}),
    ("softmax", (np.float64(1.0),), {}),
    ("cross_entropy", (np.ones((2, 3)), np.array([0, 3])), {}),
    ("cross_entropy", (np.ones((2, 3)), np.array([0.0, 1.0])), {}),
]


@pytest.mark.parametrize("op, args, params", BAD_CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_CALLS)])
def test_literal_forms_raise_the_same_errors(op, args, params):
    """The literal forms parse their parameters with the fast forms' code: the same SpecError, same message,
    for the forward, the backward and the index op."""
    calls = [(op, args)]
    calls.append((f"{op}_backward", (np.ones(1),) + args))
    if _index_op(op):
        calls.append((_index_op(op), args))
    for name, a in calls:
        with pytest.raises(SpecError) as want:
            getattr(R, name)(*a, **params)
        with pytest.raises(SpecError) as got:
            getattr(literal, name)(*a, **params)
        assert type(got.value) is type(want.value) and str(got.value) == str(want.value), name


@pytest.mark.parametrize("op", R.OPS)
def test_wrong_grad_out_shape_is_the_same_error(op):
    """A grad_out of the wrong shape: the same ShapeError from both forms."""
    args = {
        "conv": (np.ones((1, 2, 5)), np.ones((2, 1, 2)), np.ones(2)),
        "convolve": (np.ones((1, 1, 5)), np.ones((1, 1, 2))),
        "conv_transpose": (np.ones((1, 2, 3)), np.ones((2, 1, 2)), np.ones(1)),
        "max_pool": (np.ones((1, 1, 4)), 2),
        "avg_pool": (np.ones((1, 1, 4)), 2),
        "global_max_pool": (np.ones((1, 2, 3)),),
        "global_avg_pool": (np.ones((1, 2, 3)),),
        "kmax_pool": (np.ones((1, 1, 4)), 2),
        "relu": (np.ones(3),),
        "sigmoid": (np.ones(3),),
        "tanh": (np.ones(3),),
        "linear": (np.ones((2, 3)), np.ones((4, 3))),
        "flatten": (np.ones((2, 3, 2)),),
        "add": (np.ones(3), np.ones(3)),
        "softmax": (np.ones((2, 3)),),
        "cross_entropy": (np.ones((2, 3)), np.array([0, 2])),
        "batch_norm": (np.arange(6.0).reshape(2, 3), np.ones(3), np.zeros(3)),
        "batch_norm_inference": (np.ones((2, 3)), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)),
        "local_response_norm": (np.ones((1, 3, 2)), 3),
        "dropout": (np.ones(3), np.ones(3)),
        "concat": ([np.ones((2, 1)), np.ones((2, 2))],),
    }[op]
    kwargs = {"p": 0.5} if op == "dropout" else {}
    bad = np.ones((7, 7))
    with pytest.raises(SpecError) as want:
        getattr(R, f"{op}_backward")(bad, *args, **kwargs)
    with pytest.raises(SpecError) as got:
        getattr(literal, f"{op}_backward")(bad, *args, **kwargs)
    assert type(got.value) is type(want.value) and str(got.value) == str(want.value)
