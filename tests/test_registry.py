"""The op registry: every fact the engine knows about an op is in its entry. Adding an op takes a module
(its definition) and a registry entry, nothing else: cases, data, bounds, exact cases, ids, the run, the
scaffold's contract and the reports follow."""

from __future__ import annotations

import dataclasses
import json
import sys
import types

import numpy as np
import pytest
from convspec.backends.numpy_backend import NumpyBackend
from convspec.conformance import registry, tolerance
from convspec.conformance.cases import Case
from convspec.conformance.evaluate import evaluate
from convspec.conformance.run import Plan, plan_cases
from convspec.conformance.sources import exact, properties
from hypothesis import strategies as st

from convspec import reference as R
from convspec.api import OpSignature

# -- the toy op's own module: its definition, like a reference module ----------------------------------
toy = types.ModuleType("toy_double")
exec(
    '''
import numpy as np
from convspec import ShapeError

def double(x):
    """double(x) = 2 x."""
    x = np.asarray(x)
    if x.ndim < 1:
        raise ShapeError("x", f"must have at least 1 dimension, got shape {x.shape}")
    return 2 * x

def double_backward(grad_out, x):
    return (2 * np.asarray(grad_out),)
''',
    toy.__dict__,
)


@st.composite
def _toy_cases(draw):
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    return Case(
        op="double",
        shapes={"x": shape},
        params={},
        dtype=draw(st.sampled_from(["float32", "float64"])),
        seed=draw(st.integers(0, 1000)),
    )


def _toy_bounds(inputs, params, g, dtype, pr=0.0):
    return 0.0, [0.0]  # doubling is exact in binary floating point


TOY = registry.OpInfo(
    name="double",
    arrays=("x",),
    differentiable=("x",),
    group="toys",
    error_model=_toy_bounds,
    strategy=_toy_cases,
    forward=toy.double,
    backward=toy.double_backward,
    exact=True,
)


@pytest.fixture
def toy_op():
    registry.register(TOY)
    yield TOY
    registry.unregister("double")


class Doubler(NumpyBackend):
    name = "doubler"

    def double(self, x):
        return x + x

    def double_backward(self, g, x):
        return (g + g,)


class Tripler(Doubler):
    name = "tripler"

    def double(self, x):
        return 3 * x


def test_a_toy_op_needs_only_a_module_and_a_registry_entry(toy_op):
    cases = plan_cases(
        Plan(profile="quick", seed=0, ops=("double",), sources={"property": properties.source, "exact": exact.source})
    )
    assert {c.source for c in cases} == {"property", "exact"}  # exact: the entry says it is exact
    assert all(c.id.startswith(("property:double[", "exact:double[")) for c in cases)
    good = [evaluate(Doubler(), c) for c in cases]
    assert {r["status"] for r in good} == {"pass"}, good
    assert {r["verdicts"]["forward"] for r in good} == {"pass"}
    bad = [evaluate(Tripler(), c) for c in cases]
    assert {r["status"] for r in bad} == {"fail"}
    assert all(r["verdicts"] == {"forward": "fail", "backward": "pass"} for r in bad)
    # a JSON repro of the toy op parses back to the same case
    assert Case.from_json(cases[0].to_json()) == cases[0]
    # the spec rejects a 0-d input; the engine gives it to the backend, which must refuse it
    r = evaluate(Doubler(), Case(op="double", shapes={"x": []}, params={}))
    assert r["checks"][0]["what"] == "rejects" and r["checks"][0]["status"] == "fail"
    # the backend that lacks the op is told so, not failed
    assert evaluate(NumpyBackend(), cases[0])["status"] == "unsupported"


def test_the_registry_covers_the_reference():
    names = set(registry.names())
    assert set(R.OPS) | set(R.STATE_OPS) <= names
    for name in R.OPS:
        info = registry.get(name)
        assert isinstance(info, OpSignature)
        assert info.forward is getattr(R, name) and info.backward is getattr(R, name + "_backward")
        assert info.index is (getattr(R, info.index_op) if info.index_op else None)
        assert set(info.differentiable) <= set(info.arrays)
        assert info.group in registry.groups()
    assert set(R.INDEX_OPS) == {i.index_op for i in registry.OPS.values() if i.index_op}


def test_every_error_model_gives_one_bound_per_gradient():
    """Each entry's error model answers for a drawn case of its op: a forward bound and one bound per
    gradient the backward returns (a sequence input's arrays counted one by one)."""
    for info in registry.OPS.values():
        if info.compose is not None:
            continue
        case = properties.draw_cases(info.name, 1, 3)[0]
        if info.exact:
            case = dataclasses.replace(case, data="ints", exact=True)
        ins = [
            a if not isinstance(a, np.ndarray) or a.dtype.kind != "f" else a.astype(np.float64) for a in case.inputs()
        ]
        y = info.forward(*ins, **case.params)
        g = case.grad_output(np.shape(y)) if info.differentiable else None
        fwd, grads = tolerance.bounds(info.name, ins, case.params, g, case.dtype)
        assert len(grads) == len(info.gradient_names(ins)), info.name


def test_unknown_op_names_the_registered_ones():
    with pytest.raises(KeyError, match="registered ops: conv, convolve"):
        registry.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("conv"))


def test_an_entry_without_a_reference_function_says_what_is_missing():
    with pytest.raises(LookupError, match="no function for its forward"):
        registry.OpInfo(
            name="not_in_the_reference",
            arrays=("x",),
            differentiable=("x",),
            group="toys",
            error_model=_toy_bounds,
            strategy=_toy_cases,
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))


def test_explicit_values_of_a_sequence_input_one_list_per_array():
    """concat's xs given as --case JSON: one value list per shape, each checked against its own shape."""
    from convspec.conformance.cases import CaseError

    good = {"op": "concat", "shapes": {"xs": [[1, 2], [1, 1]]}, "data": "explicit", "values": {"xs": [[[1, 2]], [[3]]]}}
    case = Case.from_json(json.dumps(good))
    xs = case.inputs()[0]
    assert [a.tolist() for a in xs] == [[[1.0, 2.0]], [[3.0]]]
    for values, where, rule in (
        ([[[1, 2]]], "values.xs", "list of 2 value lists"),
        ([[[1, 2]], [[3, 4]]], "values.xs[1]", "has 2 numbers, but its shape [1, 1] holds 1"),
        ([[[1, 2]], [["x"]]], "values.xs[1]", "nested list of numbers"),
    ):
        bad = {**good, "values": {"xs": values}}
        with pytest.raises(CaseError) as err:
            Case.from_json(json.dumps(bad))
        assert where in str(err.value) and rule in str(err.value), str(err.value)


_DRAW = """
import hashlib, json, sys
if len(sys.argv) > 1:  # a local module full of literals, imported before planning
    sys.path.insert(0, sys.argv[1])
    import many_constants  # noqa: F401
from convspec.conformance.sources import properties
ids = [c.id for op in ("conv", "softmax", "local_response_norm") for c in properties.draw_cases(op, 40, 7)]
print(hashlib.sha256(json.dumps(ids).encode()).hexdigest())
"""


def test_property_draws_do_not_depend_on_what_the_process_imported(tmp_path):
    """Hypothesis mixes the literals of the 'local' modules a process has imported into its draws; a plan
    must not change with them (nor with an editable or regular install): the same seed, the same cases."""
    import subprocess

    values = [1, 2, 3, 4, 5, 7, 0.5, 1.5, 2.5, 1e-3, 1e-5, 0.0625, 0.75, 3.25, 1e30, -1e30, 6.5e-5, 127, 255, 4097]
    (tmp_path / "many_constants.py").write_text("\n".join(f"C{i} = {v!r}" for i, v in enumerate(values)) + "\n")
    plain, imported = (
        subprocess.run([sys.executable, "-c", _DRAW, *args], capture_output=True, text=True, check=True).stdout
        for args in ((), (str(tmp_path),))
    )
    assert plain == imported


def test_property_draws_leave_other_hypothesis_users_their_local_constants():
    """Planning empties hypothesis' pool of local constants only while it draws."""
    from hypothesis.internal.conjecture import providers

    before = providers._get_local_constants
    properties.draw_cases("relu", 2, 0)
    assert providers._get_local_constants is before
