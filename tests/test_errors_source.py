"""Error behaviour: the cases the spec rejects are given to the backend, which must refuse them."""

from __future__ import annotations

import numpy as np
import pytest
from convspec.backends.numpy_backend import NumpyBackend
from convspec.conformance.evaluate import evaluate, reference_result
from convspec.conformance.sources import errors

from convspec import SpecError


@pytest.mark.parametrize("case", errors.cases(), ids=lambda c: c.id)
def test_the_reference_rejects_every_errors_case(case):
    with pytest.raises(SpecError):
        reference_result(case)


class BroadcastingAdd(NumpyBackend):
    """add broadcasts (NumPy's rule) instead of refusing shapes that differ."""

    name = "broadcasting-add"

    def add(self, x, y):
        return x + y


class LaxStrict(NumpyBackend):
    """conv ignores strict: an illegal stride is floored instead of refused."""

    name = "lax-strict"

    def conv(self, x, w, b=None, *, strict=False, **params):
        return super().conv(x, w, b, **params)


def _by_name(op, name):
    return [c for c in errors.cases() if c.op == op and c.name == name]


def test_a_conforming_backend_refuses_every_errors_case():
    for case in errors.cases():
        r = evaluate(NumpyBackend(), case)
        assert r["status"] == "pass" and r["verdicts"] == {"errors": "pass"}, (case.id, r)
        assert r["checks"][0]["what"] == "rejects" and "refused it too" in r["checks"][0]["message"]


@pytest.mark.parametrize(
    "backend, op, name",
    [
        (BroadcastingAdd(), "add", "no-broadcasting"),
        (LaxStrict(), "conv", "strict-stride-does-not-fit"),
    ],
)
def test_a_lenient_backend_fails_the_rejects_check(backend, op, name):
    cases = _by_name(op, name)
    assert cases
    for case in cases:
        r = evaluate(backend, case)
        assert r["status"] == "fail", r
        (check,) = r["checks"]
        assert check["what"] == "rejects" and check["status"] == "fail"
        assert "computed a result for a case the spec rejects" in check["message"]
        assert r["verdicts"] == {"errors": "fail"}


def test_strict_reaches_the_backend():
    seen = {}

    class Spy(NumpyBackend):
        name = "spy"

        def conv(self, x, w, b=None, **params):
            seen.update(params)
            return super().conv(x, w, b, **params)

    (case, *_) = _by_name("conv", "strict-stride-does-not-fit")
    evaluate(Spy(), case)
    assert seen.get("strict") is True and seen.get("stride") == 3
    assert np.shape(case.inputs()[0]) == (1, 1, 7, 7)  # the lecture's 7x7 input with a 3x3 filter


def test_flush_to_zero_is_a_declared_precision_property():
    """A backend whose arithmetic flushes subnormal results to zero (XLA and TensorFlow on the CPU) fails
    a case whose exact gradient is subnormal, unless it declares `flushes_subnormals`; then every bound
    carries the smallest normal number, and the same backend passes."""
    from convspec.conformance.cases import Case

    class Flushing(NumpyBackend):
        name = "flushing"

        def sigmoid_backward(self, grad_out, x):
            (dx,) = super().sigmoid_backward(grad_out, x)
            tiny = np.finfo(dx.dtype).tiny
            return (np.where(np.abs(dx) < tiny, np.zeros((), dx.dtype), dx),)

    class DeclaredFlushing(Flushing):
        flushes_subnormals = True

    # sigmoid(-87) = 1.6e-38 is normal, but 0.5 * sigmoid'(-87) = 8.2e-39 is a float32 subnormal
    case = Case(
        op="sigmoid",
        shapes={"x": [1, 2]},
        params={},
        dtype="float32",
        data="explicit",
        values={"x": [[-87.0, 1.0]], "grad_out": [[0.5, 1.0]]},
    )
    plain, declared = evaluate(Flushing(), case), evaluate(DeclaredFlushing(), case)
    assert plain["status"] == "fail" and plain["verdicts"]["backward"] == "fail"
    assert declared["status"] == "pass"
