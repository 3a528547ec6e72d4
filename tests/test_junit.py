"""JUnit XML (conformance/junit.py): one testcase per case and part, parsed back and checked."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from convspec.conformance import plugins
from convspec.conformance.backend import Unsupported
from convspec.conformance.evaluate import evaluate
from convspec.conformance.junit import parts_of, to_string, write_junit
from convspec.conformance.junit import testcases as junit_testcases
from convspec.conformance.pytest_plugin import suite_cases

from convspec import reference as R


class _Broken:
    """relu off by one in its forward; sigmoid without a backward; max_pool's indices wrong."""

    def __init__(self, base):
        self._base = base
        self.name = "broken"

    def __getattr__(self, attr):
        return getattr(self._base, attr)

    def relu(self, x):
        return np.maximum(x, x.dtype.type(0)) + x.dtype.type(1)

    def sigmoid_backward(self, grad_out, x):
        raise Unsupported("no sigmoid gradient yet")

    def max_pool_indices(self, x, *a, **k):
        return self._base.max_pool_indices(x, *a, **k) * 0 + 1


@pytest.fixture(scope="module")
def results():
    reg = plugins.load(autoload=False)
    numpy = reg.backends["numpy"]
    broken = _Broken(numpy)
    out = []
    for backend in (numpy, broken):
        cases = suite_cases(reg, ops=("relu", "sigmoid", "max_pool"), backend=numpy)
        picked = [c for op in ("relu", "sigmoid", "max_pool") for c in cases if c.op == op]
        out += [{**evaluate(backend, c), "backend": backend.name} for c in picked[:: max(1, len(picked) // 40)]]
    return out


def _parse(text):
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    return root


def test_one_testcase_per_case_and_part_with_counts(results, tmp_path):
    path = write_junit(results, tmp_path / "out" / "junit.xml")
    root = _parse(path.read_text(encoding="utf-8"))
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"convspec[numpy]", "convspec[broken]"}
    for backend, suite in ((b, suites[f"convspec[{b}]"]) for b in ("numpy", "broken")):
        mine = [r for r in results if r["backend"] == backend]
        want = [f"{r['case_id']}::{p}" for r in mine for p, _ in junit_testcases(r)]
        got = [tc.get("name") for tc in suite.findall("testcase")]
        assert got == want
        op = {f"{r['case_id']}::{p}": r["op"] for r in mine for p, _ in junit_testcases(r)}
        assert all(
            tc.get("classname") == f"convspec[{backend}].{op[tc.get('name')]}" for tc in suite.findall("testcase")
        )
        n = {
            tag: sum(1 for tc in suite.findall("testcase") if tc.find(tag) is not None)
            for tag in ("failure", "error", "skipped")
        }
        assert suite.get("tests") == str(len(want))
        assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == tuple(map(str, n.values()))
    assert root.get("tests") == str(sum(int(s.get("tests")) for s in suites.values()))
    numpy = suites["convspec[numpy]"]
    assert not any(tc.find(t) is not None for tc in numpy.findall("testcase") for t in ("failure", "error", "skipped"))


def test_part_verdicts_become_failure_and_skipped_elements(results):
    root = _parse(to_string(results))
    broken = {tc.get("name"): tc for tc in root.find("testsuite[@name='convspec[broken]']").findall("testcase")}
    relu = next(r for r in results if r["backend"] == "broken" and r["op"] == "relu")
    fwd = broken[f"{relu['case_id']}::forward"].find("failure")
    assert fwd is not None and fwd.get("type") == "fail" and fwd.get("message").startswith("forward: fail: forward")
    assert relu["repro"] in fwd.text and "elements outside the bound" in fwd.text
    assert broken[f"{relu['case_id']}::backward"].find("failure") is None  # relu's backward is right
    sig = next(r for r in results if r["backend"] == "broken" and r["op"] == "sigmoid")
    assert broken[f"{sig['case_id']}::forward"].find("skipped") is None  # the forward passes: credit
    skipped = broken[f"{sig['case_id']}::backward"].find("skipped")
    assert skipped.get("type") == "unsupported" and "no sigmoid gradient yet" in skipped.get("message")
    pool = next(r for r in results if r["backend"] == "broken" and r["op"] == "max_pool")
    assert broken[f"{pool['case_id']}::indices"].find("failure") is not None
    assert broken[f"{pool['case_id']}::forward"].find("failure") is None


def test_errors_timeouts_deviations_and_unrun_parts():
    base = {
        "record": "case",
        "backend": "b",
        "op": "conv",
        "source": "corner",
        "dtype": "float32",
        "case": {},
        "repro": "convspec run --backend b --case '{}'",
        "bound_ratio": None,
        "seconds": 0.5,
    }
    recs = [
        {
            **base,
            "case_id": "corner:conv[a]",
            "status": "error",
            "checks": [],
            "message": "Traceback (most recent call last):\n  File x\nValueError: bad \x1b[31mcolour\x1b[0m <&>",
        },
        {**base, "case_id": "corner:conv[b]", "status": "timeout", "checks": [], "message": "no result within 5 s"},
        {
            **base,
            "case_id": "corner:conv[c]",
            "status": "deviation",
            "deviation": "rounds differently",
            "checks": [{"what": "forward", "status": "fail", "message": "x"}, {"what": "grad x", "status": "pass"}],
        },
    ]
    root = _parse(to_string(recs, hostname="h"))  # the records carry no "verdicts": derived from the checks
    (suite,) = root.findall("testsuite")
    tcs = {tc.get("name"): tc for tc in suite.findall("testcase")}
    assert list(tcs) == [f"corner:conv[{k}]::{p}" for k in "abc" for p in ("forward", "backward")]
    err = tcs["corner:conv[a]::forward"].find("error")
    assert err.get("type") == "error" and "ValueError: bad" in err.text and "<&>" in err.text
    assert "\x1b" not in err.text  # control characters XML cannot hold are replaced
    assert tcs["corner:conv[a]::backward"].find("skipped").get("message").startswith("not run: not checked")
    assert tcs["corner:conv[b]::forward"].find("error").get("type") == "timeout"
    dev = tcs["corner:conv[c]::forward"].find("skipped")
    assert dev.get("type") == "deviation" and dev.text == "rounds differently"
    assert len(tcs["corner:conv[c]::backward"]) == 0  # the gradient passed
    counts = tuple(suite.get(k) for k in ("tests", "errors", "skipped", "failures"))
    assert counts == ("6", "2", "3", "0")
    assert suite.get("hostname") == "h" and float(suite.get("time")) == pytest.approx(1.5)


def test_parts_follow_the_op():
    assert parts_of("relu") == ("forward", "backward")
    assert parts_of("max_pool") == ("forward", "indices", "backward")
    assert parts_of("lenet", {"backward": "pass"}) == ("forward", "backward")
    assert R.max_pool_indices  # the index output the indices part checks
