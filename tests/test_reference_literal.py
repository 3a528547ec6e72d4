"""The literal specification equals the fast one: convspec.reference.literal.<op> == convspec.reference.<op>.

Each op module of reference/ opens with its literal definition, `<op>_literal` (explicit loops over the
output positions and window taps, read off the formula), and its gradient `<op>_backward_literal`; the
public op is the vectorised form. For every op in OPS and every index op in INDEX_OPS, hypothesis draws
configurations with the conformance suite's property generator, and the two forms are compared on the
forward, on every gradient and on the indices:

- rational ops (conv, convolve, conv_transpose, the poolings, relu, linear, flatten, add): EXACTLY, on
  integer-valued float64 data (every partial sum is representable, so summation order cannot matter) and
  again on object arrays of fractions.Fraction, where every output element must still be a Fraction (no
  float conversion anywhere). The selection ops (max_pool, global_max_pool, kmax_pool, relu, flatten,
  add) are also compared bit for bit on the drawn float data, NaN payloads and -0.0 included (with
  integer gradients: the fast max_pool_backward accumulates overlapping windows in float64, the literal
  one in the data's dtype, so float32 sums of three gradients may round differently).
- transcendental ops (sigmoid, tanh, softmax, cross_entropy): on float64, within TRANSCENDENTAL (relative
  and absolute 1e-13, i.e. a few hundred ulp): the literal forms sum in a different order and evaluate
  tanh through expm1, so they agree to rounding, not bit for bit.

Cap: the literal loops are plain Python, so a configuration whose forward needs more than MAX_WORK
multiply-adds (window taps times outputs; conv: N * C_out * prod(out) * C_in/G * prod(kernel)) is
discarded with assume(); the Fraction pass, ten times slower, is run only below MAX_FRACTION_WORK. This
drops the largest 3-D convolutions only (the generator's sizes are unchanged); every other configuration
the generator draws is compared.
"""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convspec import SpecError
from convspec import reference as R
from convspec.conformance.sources.properties import strategy
from convspec.reference import lectures, literal

RATIONAL = ("conv", "convolve", "conv_transpose", "max_pool", "avg_pool", "global_max_pool", "global_avg_pool",
            "kmax_pool", "relu", "linear", "flatten", "add")
#: Ops that only select or move values: literal and fast agree bit for bit on any float data.
SELECTION = ("max_pool", "global_max_pool", "kmax_pool", "relu", "flatten", "add")
TRANSCENDENTAL = dict(rtol=1e-13, atol=1e-13)
MAX_WORK = 60_000
MAX_FRACTION_WORK = 16_000

LITERAL_OPS = [op for op in R.OPS if hasattr(literal, op)]
CHECKED = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.filter_too_much])


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
        assert not bad, f"{what}: the literal form left Fractions: {bad[:3]}"


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


@pytest.mark.parametrize("op", LITERAL_OPS)
@CHECKED
@given(data=st.data())
def test_literal_equals_fast(op, data):
    case = data.draw(strategy(op), label="case")
    if op in RATIONAL:
        exact = dataclasses.replace(case, dtype="float64", exact=True,
                                    data=case.data if case.data in ("ties", "nan") else "ints")
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
        _check(op, floats, args, close=TRANSCENDENTAL)
