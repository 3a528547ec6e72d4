"""The suite's sensitivity, kept: the full profile kills every real mutant of the catalogue, the quick profile
at least 95% of them, no equivalent mutant (a correct backend written differently) is flagged, every corner
case kills the alternative rule it names, and the case sources cover what the mutants need (superset
profiles, capped degenerate draws, non-finite and huge data, shapes beyond 8/16/32)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner
from convspec.backends.numpy_backend import NumpyBackend
from convspec.conformance import plancache, plugins, registry
from convspec.conformance.cases import Case
from convspec.conformance.cli import main
from convspec.conformance.evaluate import evaluate
from convspec.conformance.records import BAD
from convspec.conformance.run import Plan
from convspec.conformance.selftest import mutants as M
from convspec.conformance.selftest import score as S
from convspec.conformance.sources import corners

SOURCES = plugins.load((), autoload=False).case_sources


def _cases(profile):
    return plancache.plan_cases(Plan(profile=profile, sources=SOURCES))  # the plan mutation_score draws, cached


def test_catalogue_has_fifty_real_and_five_equivalent_numpy_mutants_with_one_line_docstrings():
    real, equivalent = M.catalogue(M.REAL), M.catalogue(M.EQUIVALENT)
    assert len(real) >= 50 and len(equivalent) >= 5
    for cls in M.catalogue():
        assert issubclass(cls, NumpyBackend) and cls.name.startswith("mut-") and cls.kind in M.KINDS
        assert cls.__doc__ and "\n" not in cls.__doc__.strip() and len(cls.__doc__.strip()) > 20, cls
        assert cls.ops and set(cls.ops) <= set(registry.names()), cls
    assert len({c.name for c in M.catalogue()}) == len(M.catalogue())
    assert {n for ns in M.HOLE_CLASSES.values() for n in ns} <= set(M.CATALOGUE)
    # every op is mutated (forward or backward); the new ops of the registry too
    assert {op for c in real for op in c.ops} >= set(_ops())


def _check_score(score, need):
    assert not score.killed(M.EQUIVALENT), {m.name: score.first[m.name]["case_id"] for m in score.killed(M.EQUIVALENT)}
    assert score.ratio() >= need, [m.name for m in score.survivors()]


def test_full_profile_kills_every_real_mutant_and_flags_no_equivalent_one():
    # a kill needs only the mutant's own ops' cases; each mutant stops at its first kill; in-process (the
    # worker's evaluation and contract checks without a process round trip per case)
    score = S.mutation_score("full", jobs=2, first_kill=True, isolate=False)
    _check_score(score, 1.0)
    # the kills cover every op's forward and backward (and the index outputs): the catalogue's reach
    failed = {op: set() for op in _ops()}
    for m in score.killed():
        for op in m.ops:
            failed[op] |= score.failed[m.name]
    for op, checks in failed.items():
        info = registry.get(op)
        assert any(c.startswith("forward") for c in checks), (op, checks)
        if info.differentiable:
            assert any(c.startswith("grad") for c in checks), (op, checks)
        if info.index_op:
            assert "indices" in checks, (op, checks)


def test_generated_cases_alone_kill_the_mutants_of_each_class_of_holes():
    # the classes are fixed in the generators, not by crafted instances: without corner and golden cases
    names = [n for cls, ns in M.HOLE_CLASSES.items() if not cls.startswith(("4 ", "6 ")) for n in ns]
    score = S.mutation_score(
        "full", jobs=2, first_kill=True, isolate=False, sources=S.GENERATED, mutants=[M.CATALOGUE[n] for n in names]
    )
    assert not score.survivors(), [m.name for m in score.survivors()]


def test_quick_profile_kills_at_least_95_percent_and_flags_no_equivalent_mutant():
    score = S.mutation_score("quick", jobs=2, first_kill=True, isolate=False)
    _check_score(score, 0.95)
    kills = Counter()
    for m in score.killed():
        cid = score.kills[m.name][0]
        kills["1d" if "[1d" in cid else "2d" if "[2d" in cid else "3d" if "[3d" in cid else "other"] += 1
    assert kills["other"] and kills["1d"] and kills["2d"]


def test_each_corner_case_kills_the_alternative_it_names_and_the_numpy_backend_passes_it():
    numpy_backend = NumpyBackend()
    cases = corners.cases()
    assert {c.name for c in cases} == set(corners.RULES_OUT)
    for case in cases:
        alternative = corners.RULES_OUT[case.name]
        assert alternative in M.CATALOGUE and M.CATALOGUE[alternative].kind == M.REAL, (case.name, alternative)
        assert case.op in M.CATALOGUE[alternative].ops, (case.name, alternative)
        assert evaluate(numpy_backend, case)["status"] == "pass", case.id
        r = evaluate(M.CATALOGUE[alternative](), case)
        assert r["status"] in BAD, (case.id, alternative, r["status"])


def test_a_backward_from_the_backends_own_forward_passes_the_issue_example(tmp_path):
    # tanh' = 1 - t*t and sigmoid' = s*(1-s) from a forward 12 u off (inside its 16 u bound)
    text = (
        '{"data":"normal","dtype":"float64","op":"tanh","params":{},"scale":30.0,"seed":759792,'
        '"shapes":{"x":[1,2,4]},"source":"property"}'
    )
    for op in ("tanh", "sigmoid"):
        r = evaluate(M.CATALOGUE[f"mut-{op}-grad-from-own-forward"](), Case.from_json(text.replace("tanh", op)))
        assert r["status"] == "pass", (op, r["checks"])
    out = CliRunner().invoke(
        main,
        [
            "run",
            "-p",
            "convspec.conformance.selftest.plugin",
            "-b",
            "mut-tanh-grad-from-own-forward",
            "--no-progress",
            "--case",
            text,
            "--out",
            str(tmp_path / "r.jsonl"),
        ],
    )
    assert out.exit_code == 0, out.output


def test_selftest_command_prints_the_score_per_op_and_writes_markdown(tmp_path):
    md = tmp_path / "mutation.md"
    out = CliRunner().invoke(main, ["selftest", "--op", "relu", "--op", "kmax_pool", "--markdown", str(md)])
    assert out.exit_code == 0, out.output
    assert "real mutants killed" in out.output and "mut-relu-grad-one-at-zero" in out.output
    assert "corner:relu-at-zero" in out.output  # which mutant each case kills
    text = md.read_text()
    assert "| quick |" in text and "| kmax_pool |" in text and "convspec selftest" in text


def test_full_profile_is_a_superset_of_quick():
    quick, full = {c.id for c in _cases("quick")}, {c.id for c in _cases("full")}
    assert quick <= full, sorted(quick - full)[:5]


def test_degenerate_draws_are_capped_and_the_new_data_kinds_and_shapes_are_drawn():
    cases = [c for c in _cases("full") if c.source == "property"]
    by_op: dict = {}
    for c in cases:
        by_op.setdefault(c.op, []).append(c)

    def dims(c):
        return [
            d
            for s in c.shapes.values()
            if s is not None
            for d in (s if s and isinstance(s[0], int) else [x for sub in s for x in sub])
        ]

    ones = [c for c in cases if all(d == 1 for d in dims(c))]
    assert len(ones) <= 0.05 * len(cases), len(ones)
    assert all(c.shapes["z"][-1] >= 2 for c in by_op["softmax"])
    assert all(c.shapes["logits"][1] >= 2 for c in by_op["cross_entropy"])
    kmax = by_op["kmax_pool"]
    assert sum(c.params["k"] == c.shapes["x"][-1] for c in kmax) <= 0.15 * len(kmax)
    assert any(len(c.shapes["z"]) >= 3 for c in by_op["softmax"])  # any ndim, classes last
    for op in ("relu", "sigmoid", "tanh", "add", "max_pool", "avg_pool", "global_max_pool", "kmax_pool"):
        kinds = {c.data for c in by_op[op]}
        assert "special" in kinds, (op, kinds)
    large = [c for op in ("sigmoid", "tanh", "softmax", "cross_entropy") for c in by_op[op] if c.data == "large"]
    assert {c.op for c in large} == {"sigmoid", "tanh", "softmax", "cross_entropy"}
    assert {c.dtype for c in large} == {"float32", "float64"}
    for op in ("max_pool", "avg_pool", "global_max_pool", "kmax_pool"):
        nc = {c.shapes["x"][0] * c.shapes["x"][1] for c in by_op[op]}
        assert any(v > 8 and v % 8 for v in nc) and any(v > 32 and v % 32 for v in nc), (op, nc)
    strided_same = [c for c in by_op["conv"] if c.params["padding"] == "same" and np.max(c.params["stride"]) > 1]
    assert len(strided_same) >= 5


def test_large_data_straddles_exps_thresholds_and_special_data_holds_every_non_finite_value():
    for dtype, limit in (("float32", 88.72), ("float64", 709.78)):
        x = Case(op="sigmoid", shapes={"x": [400]}, params={}, dtype=dtype, data="large", scale=limit).inputs()[0]
        a = np.abs(x.astype(np.float64))
        assert (a < limit).any() and (a > limit).any() and (x < -limit).any() and (x > limit).any()
    x = Case(op="relu", shapes={"x": [400]}, params={}, data="special").inputs()[0]
    assert np.isnan(x).any() and np.isposinf(x).any() and np.isneginf(x).any()
    assert (np.signbit(x) & (x == 0)).any() and (~np.signbit(x) & (x == 0)).any()
    assert json.loads(Case(op="relu", shapes={"x": [3]}, params={}, data="special").to_json())["data"] == "special"


@pytest.mark.parametrize("kind", [M.EQUIVALENT])
def test_equivalent_mutants_are_registered_as_backends(kind):
    reg = plugins.load(("convspec.conformance.selftest.plugin",), autoload=False)
    assert {c.name for c in M.catalogue(kind)} <= set(reg.backends)


def _ops():
    """The ops a backend implements (blocks compose them: their mutants are their ops' mutants)."""
    return [n for n in registry.names() if registry.get(n).compose is None]
