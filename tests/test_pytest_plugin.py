"""The pytest plugin: one test per case and part (forward, indices, backward), -k, -x, -n, xfail and
skip files (strict, per case or per part, and non-strict ~ lines), failure messages with every digit,
only the suite collected unless paths are named, the rootdir not taken from an option's value, and no
.hypothesis/ in the user's tree."""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
from convspec.conformance import plugins, pytest_plugin
from convspec.conformance.evaluate import evaluate
from convspec.conformance.hypothesis_home import cache_dir, outside_the_tree
from convspec.conformance.junit import record_verdicts
from convspec.conformance.pytest_plugin import Pattern, case_parts, read_patterns, suite_cases

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

BROKEN = '''
import numpy as np
from convspec import hookimpl
from convspec.backends.numpy_backend import NumpyBackend
from convspec.conformance.backend import Unsupported


class Broken(NumpyBackend):
    """relu's forward is off by one everywhere; sigmoid has no backward; tanh is right."""
    name = "broken"

    def relu(self, x):
        return np.maximum(x, x.dtype.type(0)) + x.dtype.type(1)

    def sigmoid_backward(self, grad_out, x):
        raise Unsupported("no sigmoid gradient yet")


class Deviant(Broken):
    name = "deviant"

    def deviation(self, case):
        return "relu adds one, on purpose" if case.op == "relu" else None


class ForwardOnly(NumpyBackend):
    """Computes forwards only, like an inference runtime."""
    name = "forward-only"

    def __getattribute__(self, attr):
        if attr.endswith("_backward"):
            raise AttributeError(attr)
        return super().__getattribute__(attr)


@hookimpl
def register_backends(register):
    register(Broken())
    register(Deviant())
    register(ForwardOnly())
'''


def _cases(ops, backend="numpy") -> list:
    """The quick-profile cases of these ops, seed 0, from the built-in sources, that `backend` is asked."""
    reg = plugins.load(autoload=False)
    return suite_cases(reg, ops=ops, backend=reg.backends[backend])


def _items(ops) -> list:
    """(case, part) of every test the plugin makes for these ops."""
    return [(c, p) for c in _cases(ops) for p in case_parts(c)]


@pytest.fixture
def kit(pytester, monkeypatch):
    """pytester with only our plugin loaded (entry-point autoload off: the same in dev and in CI).
    In-process by default (fast); in_subprocess=True for xdist and for what a fresh process writes."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv(plugins.AUTOLOAD_ENV, raising=False)
    pytester.makepyfile(kit_broken=BROKEN)
    pytester.syspathinsert()

    def run(*args, in_subprocess=False):
        args = ("-p", "convspec.conformance.pytest_plugin", "-p", "no:cacheprovider", *args)
        if in_subprocess:
            return pytester.runpytest_subprocess(*args)
        # in this process the plugin module is already imported, so pytest cannot assert-rewrite it
        return pytester.runpytest_inprocess("-W", "ignore::pytest.PytestAssertRewriteWarning", *args)

    return run


@pytest.fixture
def kit_backends():
    """The kit's backends, as objects, to compute expected outcomes with the engine."""
    import importlib

    sys.modules.pop("kit_broken", None)
    return importlib.import_module("kit_broken")


def _ids(result) -> list:
    return [re.sub(r"\s+\[\s*\d+%\]$", "", ln.strip()) for ln in result.outlines if ln.startswith("convspec[")]


def _expected(backend, ops) -> Counter:
    """The pytest outcome of every part test of these ops on `backend`, from the engine's verdicts."""
    outcome = {"pass": "passed", "fail": "failed", "error": "failed", "deviation": "xfailed"}
    out = Counter()
    for c in _cases(ops):
        v = record_verdicts(evaluate(backend, c))
        for p in case_parts(c):
            out[outcome.get(v.get(p), "skipped")] += 1
    return out


# ---------------------------------------------------------------------------------------------- patterns


def test_patterns_are_whole_id_globs_with_literal_brackets():
    cid = "golden:relu-max-0-x:relu[float32,explicit]#92fb51d2"
    assert Pattern(cid, "f", 1).matches(cid)
    assert Pattern("*relu[float32*", "f", 1).matches(cid)
    assert Pattern("golden:*#92fb51d?", "f", 1).matches(cid)
    assert not Pattern("relu", "f", 1).matches(cid)  # whole id, not a substring
    assert not Pattern("*relu[f]*", "f", 1).matches(cid)  # [f] is literal, not a character set
    assert not Pattern("*relu[float64*", "f", 1).matches(cid)
    # a pattern over the case id covers every part; CASE_ID::PART covers that part only
    assert Pattern(cid, "f", 1).scope(cid, "backward") == "case"
    assert Pattern(f"{cid}::backward", "f", 1).scope(cid, "backward") == "part"
    assert Pattern("*::backward", "f", 1).scope(cid, "forward") is None


def test_read_patterns_comments_reasons_non_strict_lines_and_errors(tmp_path):
    f = tmp_path / "xfails.txt"
    f.write_text(
        "# header\n\n  *conv[*   # groups not done\ncorner:relu-at-zero:*\n*#abcd1234\n~*:tanh[*::backward # maybe\n"
    )
    pats = read_patterns(str(f), "--convspec-xfails")
    assert [(p.text, p.line, p.reason, p.strict) for p in pats] == [
        ("*conv[*", 3, "groups not done", True),
        ("corner:relu-at-zero:*", 4, "", True),
        ("*#abcd1234", 5, "", True),
        ("*:tanh[*::backward", 6, "maybe", False),
    ]
    assert pats[3].describe().endswith("xfails.txt:6: ~*:tanh[*::backward (maybe)")
    # some case names hold spaces (corner:grouped-pad-(1, 0):...); only whitespace + '#' starts a reason
    f.write_text("corner:grouped-pad-(1, 0):*\ncorner:grouped-pad-(1, 0):conv[*]#4122bb4d #  why \n")
    pats = read_patterns(str(f), "--convspec-xfails")
    assert [(p.text, p.reason) for p in pats] == [
        ("corner:grouped-pad-(1, 0):*", ""),
        ("corner:grouped-pad-(1, 0):conv[*]#4122bb4d", "why"),
    ]
    assert pats[1].matches(
        "corner:grouped-pad-(1, 0):conv[2d,stride=(2,1),padding=(1,0),groups=2,float64,ints]#4122bb4d"
    )
    with pytest.raises(pytest.UsageError, match=r"--convspec-skips: cannot read"):
        read_patterns(str(tmp_path / "missing.txt"), "--convspec-skips")


# ---------------------------------------------------------------------------------------------- collection


def test_plugin_is_inert_without_the_option(kit, pytester):
    pytester.makepyfile(test_mine="def test_one():\n    assert 1 + 1 == 2\n")
    res = kit("-v")
    res.assert_outcomes(passed=1)
    assert "test_mine.py::test_one PASSED" in res.stdout.str() and "convspec[" not in res.stdout.str()


def test_one_test_per_case_and_part_and_only_the_suite_unless_paths_are_named(kit, pytester):
    pytester.makepyfile(test_mine="def test_one():\n    pass\n")
    items = _items(("relu", "max_pool"))
    assert any(c.id.startswith("property:relu[") for c, _ in items)  # hypothesis-drawn cases are tests too
    assert {p for c, p in items if c.op == "max_pool"} >= {"forward", "indices", "backward"}
    res = kit("--convspec-backend", "numpy", "--convspec-op", "relu", "--convspec-op", "max_pool", "-v")
    res.assert_outcomes(passed=len(items))  # the suite only: test_mine.py is not collected
    assert _ids(res) == [f"convspec[numpy]::{c.id}::{p} PASSED" for c, p in items]
    assert res.ret == 0
    res = kit("--convspec-backend", "numpy", "--convspec-op", "relu", "--convspec-op", "max_pool", ".")
    res.assert_outcomes(passed=len(items) + 1)  # a named path: the project's tests next to the suite


def test_seed_picks_the_property_cases(kit):
    reg = plugins.load(autoload=False)
    seed0 = [c.id for c in suite_cases(reg, ops=("conv",), seed=0, backend=reg.backends["numpy"])]
    seed1 = suite_cases(reg, ops=("conv",), seed=1, backend=reg.backends["numpy"])
    res = kit("--convspec-backend", "numpy", "--convspec-op", "conv", "--convspec-seed", "1", "--co", "-q")
    assert _ids(res) == [f"convspec[numpy]::{c.id}::{p}" for c in seed1 for p in case_parts(c)]
    prop0 = {i for i in seed0 if i.startswith("property:")}
    prop1 = {c.id for c in seed1 if c.id.startswith("property:")}
    assert prop0 and prop1 and prop0 != prop1
    fixed = ("golden:", "corner:")  # crafted cases do not depend on the seed
    assert [i for i in seed0 if i.startswith(fixed)] == [c.id for c in seed1 if c.id.startswith(fixed)]


def test_k_selects_by_op_source_dtype_and_part(kit):
    items = _items(("relu", "tanh"))
    want = [(c, p) for c, p in items if c.op == "relu" and c.source == "property" and c.dtype == "float32"]
    res = kit(
        "--convspec-backend",
        "numpy",
        "--convspec-op",
        "relu",
        "--convspec-op",
        "tanh",
        "-k",
        "relu and property and float32",
    )
    res.assert_outcomes(passed=len(want), deselected=len(items) - len(want))
    assert len(want) >= 2
    fwd = [1 for c, p in items if p == "forward"]
    res = kit("--convspec-backend", "numpy", "--convspec-op", "relu", "--convspec-op", "tanh", "-k", "forward")
    res.assert_outcomes(passed=len(fwd), deselected=len(items) - len(fwd))


# ---------------------------------------------------------------------------------------------- outcomes


def test_failures_show_the_element_with_every_digit_and_the_repro_and_x_stops(kit, kit_backends):
    relu_cases = _cases(("relu",))
    res = kit("--convspec-backend", "broken", "--convspec-plugin", "kit_broken", "--convspec-op", "relu", "-x")
    res.assert_outcomes(failed=1)
    out = res.stdout.str()
    assert "stopping after 1 failures" in out
    # the first case's failure, element by element, as the engine computes it
    r = evaluate(kit_backends.Broken(), relu_cases[0])
    m = next(c for c in r["checks"] if c["what"] == "forward")["mismatch"]
    assert f"convspec: backend broken FAIL on {relu_cases[0].id}" in out
    assert f"FAILED convspec[broken]::{relu_cases[0].id}::forward" in out
    # every digit needed to tell expected from got (repr: the shortest string that round-trips)
    assert (
        f"forward    FAIL: {m['count']} of {m['of']} elements outside the bound; first at index {m['index']}: "
        f"expected {m['expected']!r}, got {m['got']!r}, bound {m['bound']!r}"
    ) in out
    assert f"repro: convspec run -p kit_broken --backend broken --case '{relu_cases[0].to_json()}'" in out


def test_parts_map_to_pytest_outcomes(kit, kit_backends):
    ops = ("relu", "sigmoid", "tanh")
    want = _expected(kit_backends.Broken(), ops) + _expected(kit_backends.Deviant(), ops)
    # broken: relu's forward fails (its backward passes), sigmoid's backward is unsupported, tanh passes;
    # deviant: relu's forward is a declared deviation
    n = Counter(c.op for c in _cases(ops))
    assert want == Counter(
        failed=n["relu"],
        xfailed=n["relu"],
        skipped=2 * n["sigmoid"],
        passed=2 * n["relu"] + 2 * n["sigmoid"] + 4 * n["tanh"],
    )
    res = kit(
        "--convspec-backend",
        "broken",
        "--convspec-backend",
        "deviant",
        "--convspec-plugin",
        "kit_broken",
        "--convspec-op",
        "relu",
        "--convspec-op",
        "sigmoid",
        "--convspec-op",
        "tanh",
        "-rsx",
    )
    res.assert_outcomes(**want)
    out = res.stdout.str()
    assert "unsupported: no sigmoid gradient yet" in out
    assert "declared deviation: relu adds one, on purpose" in out
    assert not [ln for ln in out.splitlines() if ln.startswith("FAILED convspec[deviant]")]
    assert not [
        ln for ln in out.splitlines() if ln.startswith("FAILED") and not ln.split(" - ")[0].endswith("::forward")
    ]


def test_a_forward_only_backend_passes_its_forwards(kit):
    items = _items(("relu", "max_pool"))
    res = kit(
        "--convspec-backend",
        "forward-only",
        "--convspec-plugin",
        "kit_broken",
        "--convspec-op",
        "relu",
        "--convspec-op",
        "max_pool",
        "-rs",
    )
    backward = sum(p == "backward" for _, p in items)
    res.assert_outcomes(passed=len(items) - backward, skipped=backward)  # every forward (and index output) passes
    assert "unsupported: backend has no max_pool_backward" in res.stdout.str()


def test_xfail_and_skip_files(kit, pytester):
    cases = _cases(("relu", "tanh"))
    tanh_ids = [c.id for c in cases if c.op == "tanh"]
    n_relu = sum(c.op == "relu" for c in cases)
    pytester.path.joinpath("xfails.txt").write_text(
        "# relu is broken on purpose\n"
        "*:relu[*   # off by one\n"  # the whole case: its failing forward is xfailed, its backward passes
        f"{tanh_ids[0]}\n"  # tanh passes: a strict xfail that passes is reported, for each part
        "nothing:matches[this]*\n"
        f"~{tanh_ids[2]}::backward   # may pass\n"  # non-strict: a pass is an XPASS, not a failure
    )
    pytester.path.joinpath("skips.txt").write_text(f"{tanh_ids[1]}   # flaky on our CI\n")
    res = kit(
        "--convspec-backend",
        "broken",
        "--convspec-plugin",
        "kit_broken",
        "--convspec-op",
        "relu",
        "--convspec-op",
        "tanh",
        "--convspec-xfails=xfails.txt",
        "--convspec-skips=skips.txt",
        "-rsxX",
    )
    n_tanh = len(tanh_ids)
    res.assert_outcomes(
        xfailed=n_relu, failed=2, skipped=2, xpassed=1, warnings=1, passed=n_relu + 2 * (n_tanh - 3) + 1
    )
    out = res.stdout.str()
    assert f"[XPASS(strict)] listed in xfails.txt:3: {tanh_ids[0]}" in out
    assert "listed in skips.txt:1:" in out and "(flaky on our CI)" in out
    assert (
        "xfails.txt:4: ConvspecPatternWarning: "
        "convspec xfail pattern 'nothing:matches[this]*' matches no collected case" in out
    )
    assert "(off by one)" in out
    assert (
        f"XPASS convspec[broken]::{tanh_ids[2]}::backward - listed in xfails.txt:5: ~{tanh_ids[2]}::backward (may pass)"
    ) in out
    # a stale list can be made to stop the run
    res = kit(
        "--convspec-backend",
        "broken",
        "--convspec-plugin",
        "kit_broken",
        "--convspec-op",
        "relu",
        "--convspec-xfails=xfails.txt",
        "-W",
        "error::convspec.conformance.pytest_plugin.ConvspecPatternWarning",
    )
    assert res.ret == 4
    assert "xfails.txt:3: convspec xfail pattern" in res.stderr.str()  # the tanh line matches nothing without tanh


def test_an_xfails_file_in_a_subfolder_does_not_become_the_rootdir(kit, pytester):
    sub = pytester.mkdir("lists")  # a folder with a pytest configuration of its own (a package, say)
    sub.joinpath("xfails.txt").write_text("*:relu[*\n")
    sub.joinpath("pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = ""\n')
    args = ("--convspec-backend", "broken", "--convspec-plugin", "kit_broken", "--convspec-op", "relu")
    res = kit(*args, "--convspec-xfails=lists/xfails.txt")
    assert res.ret == 0 and f"rootdir: {pytester.path}" in res.stdout.str()
    # the space form: pytest reads FILE as a test path before the plugin registers the option
    res = kit(*args, "--convspec-xfails", "lists/xfails.txt")
    assert res.ret == 4
    err = res.stderr.str()
    assert (
        "--convspec-xfails FILE: pytest took its rootdir" in err and "write --convspec-xfails=lists/xfails.txt" in err
    )
    assert str(pytester.path) in err


def test_xdist_runs_the_parts_in_parallel(kit):
    n = len(_items(("relu", "tanh")))
    res = kit(
        "-p",
        "xdist.plugin",
        "-n",
        "2",
        "--dist",
        "loadscope",
        "--convspec-backend",
        "numpy",
        "--convspec-op",
        "relu",
        "--convspec-op",
        "tanh",
        in_subprocess=True,
    )
    res.assert_outcomes(passed=n)  # the workers collected the same tests (xdist checks), and ran them all
    assert "2 workers" in res.stdout.str()


def test_the_suite_writes_no_hypothesis_directory_into_the_tree(kit, pytester, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("HYPOTHESIS_STORAGE_DIRECTORY", raising=False)
    res = kit("--convspec-backend", "numpy", "--convspec-op", "relu", "-q", in_subprocess=True)
    assert res.ret == 0
    assert not (pytester.path / ".hypothesis").exists()
    # (hypothesis stores constants only from sources outside site-packages: with an editable install of
    # convspec it writes them, under the user's cache; with a regular install nothing at all. Where the
    # storage goes is test_outside_the_tree_respects_a_chosen_directory_and_restores's subject.)


def test_outside_the_tree_respects_a_chosen_directory_and_restores(monkeypatch, tmp_path):
    from hypothesis.configuration import storage_directory

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("HYPOTHESIS_STORAGE_DIRECTORY", raising=False)
    before = storage_directory("x", intent_to_write=False).path
    with outside_the_tree():
        assert storage_directory("x", intent_to_write=False).path == cache_dir() / "x"
    assert storage_directory("x", intent_to_write=False).path == before
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(tmp_path / "mine"))
    with outside_the_tree():  # the user's choice wins
        assert storage_directory("x", intent_to_write=False).path == before
    assert os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] == str(tmp_path / "mine")


def test_bad_options_are_usage_errors(kit):
    res = kit("--convspec-backend", "nosuch")
    assert res.ret == 4
    res.stderr.fnmatch_lines(["*--convspec-backend: unknown backend 'nosuch'; found: numpy*"])
    res = kit("--convspec-backend", "numpy", "--convspec-op", "convolution")
    assert res.ret == 4
    res.stderr.fnmatch_lines(["*--convspec-op: unknown op 'convolution'; valid ops: conv, convolve*"])


def test_pytest11_entry_point_is_declared():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(
        r'^\[project\.entry-points\.pytest11\]\nconvspec = "convspec\.conformance\.pytest_plugin"$', text, re.M
    )
    assert callable(pytest_plugin.pytest_addoption) and callable(pytest_plugin.pytest_configure)
