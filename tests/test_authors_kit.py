"""The backend authors' kit: `convspec new-backend` (a generated package that installs, is found through
its entry point, and reports honestly), the pytest plugin (one test per case, -k, -x, -n, xfail and
skip files, failure messages), `convspec backends --json`, and docs/writing-a-backend.md covering
every hook and op of the contract."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from convspec import reference as R
from convspec.conformance import hookspecs, plugins, pytest_plugin, scaffold
from convspec.conformance.backend import Backend
from convspec.conformance.cli import main
from convspec.conformance.ops import OPS
from convspec.conformance.pytest_plugin import Pattern, read_patterns, suite_cases

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "writing-a-backend.md"

RELU_FORWARD = "return np.maximum(x, x.dtype.type(0))"
RELU_BACKWARD = "return (np.where(x > 0, grad_out, np.zeros((), grad_out.dtype)),)"


def _implement_relu(pkg: Path, module: str) -> None:
    """Replace the relu stubs of a generated backend by NumPy code, the way a user edits the file."""
    path = pkg / "src" / module / "backend.py"
    text = path.read_text()
    for stub, body in (('raise Unsupported("relu: not implemented yet")', RELU_FORWARD),
                       ('raise Unsupported("relu_backward: not implemented yet")', RELU_BACKWARD)):
        assert text.count(stub) == 1, stub
        text = text.replace(stub, body)
    path.write_text(text)


def _cases(ops, backend="numpy") -> list:
    """The quick-profile cases of these ops, seed 0, from the built-in sources, that `backend` is asked."""
    reg = plugins.load(autoload=False)
    return suite_cases(reg, ops=ops, backend=reg.backends[backend])


# ---------------------------------------------------------------------------------------------- scaffold

def test_new_backend_writes_a_complete_package(tmp_path):
    target = tmp_path / "pkg"
    res = CliRunner().invoke(main, ["new-backend", "my-lib", "--dir", str(target)])
    assert res.exit_code == 0, res.output
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == ["README.md", "pyproject.toml", "src/convspec_my_lib/__init__.py", "src/convspec_my_lib/backend.py",
                     "src/convspec_my_lib/plugin.py", "tests/test_conformance.py"]
    if tomllib is not None:
        meta = tomllib.loads((target / "pyproject.toml").read_text())
        assert meta["project"]["name"] == "convspec-my-lib"
        assert meta["project"]["entry-points"]["convspec"] == {"my-lib": "convspec_my_lib.plugin"}
        assert meta["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/convspec_my_lib"]
    backend_src = (target / "src/convspec_my_lib/backend.py").read_text()
    compile(backend_src, "backend.py", "exec")
    assert "class MyLibBackend(Backend):" in backend_src and 'name = "my-lib"' in backend_src
    # one stub per function of the contract, with the reference's signature (minus `strict`), each unsupported
    defs = re.findall(r"^    def (\w+)\((.*)\):$", backend_src, re.M)
    stubs = {n: sig for n, sig in defs if n not in ("availability", "from_numpy", "to_numpy", "synchronize", "deviation")}
    expected = {name for name, *_ in scaffold.contract_functions()}
    assert set(stubs) == expected and len(expected) == 2 * len(R.OPS) + 2
    assert stubs["conv"] == "self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1"
    assert stubs["max_pool_indices"] == "self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False"
    assert stubs["cross_entropy_backward"] == "self, grad_out, logits, labels"
    for name in expected:
        assert backend_src.count(f'raise Unsupported("{name}: not implemented yet")') == 1
    assert "from convspec import hookimpl" in (target / "src/convspec_my_lib/plugin.py").read_text()
    assert "pip install -e" in res.output and "convspec-my-lib" in res.output


@pytest.mark.parametrize("name, rule", [
    ("MyLib", "lower-case"), ("1lib", "starting with a letter"), ("my lib", "lower-case"), ("my--lib", "single '-' or '_'"),
    ("", "lower-case"),
])
def test_new_backend_rejects_bad_names(tmp_path, name, rule):
    res = CliRunner().invoke(main, ["new-backend", name, "--dir", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "Invalid value for NAME" in res.output and rule in res.output
    assert not (tmp_path / "x").exists()


def test_new_backend_refuses_a_taken_name_and_a_used_directory(tmp_path):
    res = CliRunner().invoke(main, ["new-backend", "numpy", "--dir", str(tmp_path / "a")])
    assert res.exit_code == 2 and "already registered" in res.output and "convspec.backends.numpy_backend" in res.output
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    res = CliRunner().invoke(main, ["new-backend", "fresh", "--dir", str(used)])
    assert res.exit_code == 2 and "Invalid value for --dir" in res.output and "not an empty directory" in res.output
    assert [p.name for p in used.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert CliRunner().invoke(main, ["new-backend", "fresh", "--dir", str(empty)]).exit_code == 0


def test_new_backend_default_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["new-backend", "lib2"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "convspec-lib2" / "src" / "convspec_lib2" / "backend.py").is_file()


def test_fresh_package_reports_every_case_unsupported(tmp_path, monkeypatch):
    pkg = scaffold.generate("fresh-kit", tmp_path / "pkg")
    monkeypatch.syspath_prepend(str(pkg / "src"))
    results = pytest_plugin.run_suite("fresh-kit", plugins=("convspec_fresh_kit.plugin",))
    assert len(results) > 100 and {r["op"] for r in results} == set(R.OPS) | set(R.STATE_OPS)
    assert {r["source"] for r in results} == {"golden", "corner", "exact", "property"}
    assert {r["status"] for r in results} == {"unsupported"}
    assert {r["message"] for r in results if r["op"] == "relu"} == {"relu: not implemented yet"}


@pytest.mark.slow
def test_generated_package_installs_and_runs_in_a_venv(tmp_path):
    """Generate, implement relu with NumPy, pip-install into a fresh venv, and run `convspec` there:
    the backend is found through its entry point (no -p), relu passes, every other case is unsupported."""
    name, module = "kitdemo", "convspec_kitdemo"
    pkg = tmp_path / "convspec-kitdemo"
    assert CliRunner().invoke(main, ["new-backend", name, "--dir", str(pkg)]).exit_code == 0
    _implement_relu(pkg, module)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True, capture_output=True, text=True).stdout.strip()
    # A venv made from inside a venv sees the *base* interpreter's site-packages; hand it ours too, so
    # numpy, pluggy, hypothesis, pip, hatchling and convspec itself (installed or on PYTHONPATH) import.
    outer = [p for p in sys.path if p and Path(p).is_dir() and Path(p).resolve() != Path.cwd().resolve()]
    # addsitedir, not plain path lines: an editable install of convspec lives in a .pth finder there
    (Path(purelib) / "_outer_env.pth").write_text(f"import site; list(map(site.addsitedir, {outer!r}))\n")
    env = {k: v for k, v in os.environ.items() if k != plugins.AUTOLOAD_ENV}

    install = subprocess.run([py, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(pkg)],
                             env=env, capture_output=True, text=True, cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    where = subprocess.run([py, "-c", f"import {module}; print({module}.__file__)"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert where.stdout.strip().startswith(purelib), where.stdout + where.stderr  # the installed copy, not the sources

    listing = subprocess.run([py, "-m", "convspec", "backends", "--json"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = {r["name"]: r for r in json.loads(listing.stdout)["backends"]}
    assert rows[name] == {"name": name, "available": True, "reason": None, "version": "0", "device": "cpu",
                          "dtypes": ["float32", "float64"], "plugin": name}

    out = tmp_path / "results.jsonl"
    run = subprocess.run([py, "-m", "convspec", "run", "--backend", name, "--out", str(out), "--no-progress"],
                         env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    cases = [r for r in records if r["record"] == "case"]
    assert not [r for r in records if r["record"] == "plugin_error"]
    relu = [r for r in cases if r["op"] == "relu"]
    others = [r for r in cases if r["op"] != "relu"]
    assert len(relu) == len(_cases(("relu",))) > 5
    assert {r["status"] for r in relu} == {"pass"}
    assert {r["source"] for r in relu} >= {"golden", "corner", "exact", "property"}
    assert {r["op"] for r in others} == (set(R.OPS) | set(R.STATE_OPS)) - {"relu"}
    assert {r["status"] for r in others} == {"unsupported"}
    assert len(cases) == len(_cases(tuple(R.OPS)))

    # the generated package's own test passes in that environment too
    own = subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests")],
                         env={**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, capture_output=True, text=True, cwd=pkg)
    assert own.returncode == 0, own.stdout + own.stderr
    assert "2 passed" in own.stdout


# ---------------------------------------------------------------------------------------------- backends --json

def test_backends_json_lists_backends_and_plugin_errors():
    res = CliRunner().invoke(main, ["backends", "--json", "-p", "convspec_no_such_plugin_module"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    numpy_row = next(r for r in data["backends"] if r["name"] == "numpy")
    import numpy

    assert numpy_row == {"name": "numpy", "available": True, "reason": None, "version": numpy.__version__, "device": "cpu",
                         "dtypes": ["float32", "float64"], "plugin": "convspec.backends.numpy_backend"}
    errors = [e for e in data["plugin_errors"] if e["plugin"] == "convspec_no_such_plugin_module"]
    assert len(errors) == 1 and "ModuleNotFoundError" in errors[0]["error"]


def test_backends_json_reports_unavailable_backends(tmp_path, monkeypatch):
    (tmp_path / "kit_unavailable.py").write_text(textwrap.dedent('''
        from convspec import hookimpl
        from convspec.conformance.backend import Backend

        class Gone(Backend):
            name = "gone"
            device = "cuda:0"
            dtypes = ("float32",)
            version = "9.9"
            def availability(self):
                return "CUDA not available"

        class Raises(Backend):
            name = "raises"
            def availability(self):
                raise RuntimeError("driver exploded")

        @hookimpl
        def register_backends(register):
            register(Gone())
            register(Raises())
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    res = CliRunner().invoke(main, ["backends", "--json", "-p", "kit_unavailable"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)["backends"]}
    assert rows["gone"] == {"name": "gone", "available": False, "reason": "CUDA not available", "version": "9.9",
                            "device": "cuda:0", "dtypes": ["float32"], "plugin": "kit_unavailable"}
    assert rows["raises"]["available"] is False and "driver exploded" in rows["raises"]["reason"]


# ---------------------------------------------------------------------------------------------- patterns

def test_patterns_are_whole_id_globs_with_literal_brackets():
    cid = "golden:relu-max-0-x:relu[float32,explicit]#92fb51d2"
    assert Pattern(cid, "f", 1).matches(cid)
    assert Pattern("*relu[float32*", "f", 1).matches(cid)
    assert Pattern("golden:*#92fb51d?", "f", 1).matches(cid)
    assert not Pattern("relu", "f", 1).matches(cid)  # whole id, not a substring
    assert not Pattern("*relu[f]*", "f", 1).matches(cid)  # [f] is literal, not a character set
    assert not Pattern("*relu[float64*", "f", 1).matches(cid)


def test_read_patterns_comments_reasons_and_errors(tmp_path):
    f = tmp_path / "xfails.txt"
    f.write_text("# header\n\n  *conv[*   # groups not done\ncorner:relu-at-zero:*\n*#abcd1234\n")
    pats = read_patterns(str(f), "--convspec-xfails")
    assert [(p.text, p.line, p.reason) for p in pats] == [("*conv[*", 3, "groups not done"), ("corner:relu-at-zero:*", 4, ""), ("*#abcd1234", 5, "")]
    # some case names hold spaces (corner:grouped-pad-(1, 0):...); only whitespace + '#' starts a reason
    f.write_text("corner:grouped-pad-(1, 0):*\ncorner:grouped-pad-(1, 0):conv[*]#4122bb4d #  why \n")
    pats = read_patterns(str(f), "--convspec-xfails")
    assert [(p.text, p.reason) for p in pats] == [("corner:grouped-pad-(1, 0):*", ""), ("corner:grouped-pad-(1, 0):conv[*]#4122bb4d", "why")]
    assert pats[1].matches("corner:grouped-pad-(1, 0):conv[2d,stride=(2,1),padding=(1,0),groups=2,float64,ints]#4122bb4d")
    with pytest.raises(pytest.UsageError, match=r"--convspec-skips: cannot read"):
        read_patterns(str(tmp_path / "missing.txt"), "--convspec-skips")


# ---------------------------------------------------------------------------------------------- pytest plugin

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


@hookimpl
def register_backends(register):
    register(Broken())
    register(Deviant())
'''


@pytest.fixture
def kit(pytester, monkeypatch):
    """pytester with only our plugin loaded (entry-point autoload off: the same in dev and in CI).
    In-process by default (fast); in_subprocess=True for xdist."""
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


def _ids(result) -> list:
    return [ln.strip() for ln in result.outlines if ln.startswith("convspec[")]


def test_plugin_is_inert_without_the_option(kit, pytester):
    pytester.makepyfile(test_mine="def test_one():\n    assert 1 + 1 == 2\n")
    res = kit("-v")
    res.assert_outcomes(passed=1)
    assert "test_mine.py::test_one PASSED" in res.stdout.str() and "convspec[" not in res.stdout.str()


def test_one_test_per_case_with_readable_ids(kit, pytester):
    pytester.makepyfile(test_mine="def test_one():\n    pass\n")
    expected = [c.id for c in _cases(("relu",))]
    assert any(cid.startswith("property:relu[") for cid in expected)  # hypothesis-drawn cases are items too
    res = kit("--convspec-backend", "numpy", "--convspec-op", "relu", "-v")
    res.assert_outcomes(passed=len(expected) + 1)  # the suite next to the project's own tests
    assert [re.sub(r"\s+\[\s*\d+%\]$", "", ln) for ln in _ids(res)] == [f"convspec[numpy]::{cid} PASSED" for cid in expected]
    assert res.ret == 0


def test_seed_picks_the_property_cases(kit):
    reg = plugins.load(autoload=False)
    seed0 = [c.id for c in suite_cases(reg, ops=("conv",), seed=0, backend=reg.backends["numpy"])]
    seed1 = [c.id for c in suite_cases(reg, ops=("conv",), seed=1, backend=reg.backends["numpy"])]
    res = kit("--convspec-backend", "numpy", "--convspec-op", "conv", "--convspec-seed", "1", "--co", "-q")
    assert _ids(res) == [f"convspec[numpy]::{cid}" for cid in seed1]
    prop0 = {i for i in seed0 if i.startswith("property:")}
    prop1 = {i for i in seed1 if i.startswith("property:")}
    assert prop0 and prop1 and prop0 != prop1
    fixed = ("golden:", "corner:")  # crafted cases do not depend on the seed
    assert [i for i in seed0 if i.startswith(fixed)] == [i for i in seed1 if i.startswith(fixed)]


def test_k_selects_by_op_source_and_dtype(kit):
    cases = _cases(("relu", "tanh"))
    want = [c for c in cases if c.op == "relu" and c.source == "property" and c.dtype == "float32"]
    res = kit("--convspec-backend", "numpy", "--convspec-op", "relu", "--convspec-op", "tanh", "-k", "relu and property and float32")
    res.assert_outcomes(passed=len(want), deselected=len(cases) - len(want))
    assert len(want) >= 1


def test_failures_show_the_element_and_the_repro_and_x_stops(kit):
    import importlib

    from convspec.conformance.evaluate import evaluate

    relu_cases = _cases(("relu",))
    res = kit("--convspec-backend", "broken", "--convspec-plugin", "kit_broken", "--convspec-op", "relu", "-x")
    res.assert_outcomes(failed=1)
    out = res.stdout.str()
    assert "stopping after 1 failures" in out
    # the first case's failure, element by element, as the engine computes it
    r = evaluate(importlib.import_module("kit_broken").Broken(), relu_cases[0])
    m = next(c for c in r["checks"] if c["what"] == "forward")["mismatch"]
    assert f"convspec: backend broken FAIL on {relu_cases[0].id}" in out
    # every digit needed to tell expected from got (repr: the shortest string that round-trips)
    assert (f"forward    FAIL: {m['count']} of {m['of']} elements outside the bound; first at index {m['index']}: "
            f"expected {m['expected']!r}, got {m['got']!r}, bound {m['bound']!r}") in out
    assert f"repro: convspec run -p kit_broken --backend broken --case '{relu_cases[0].to_json()}'" in out


def test_statuses_map_to_pytest_outcomes(kit):
    cases = _cases(("relu", "sigmoid", "tanh"))
    n = {op: sum(c.op == op for c in cases) for op in ("relu", "sigmoid", "tanh")}
    res = kit("--convspec-backend", "broken", "--convspec-backend", "deviant", "--convspec-plugin", "kit_broken",
              "--convspec-op", "relu", "--convspec-op", "sigmoid", "--convspec-op", "tanh", "-rsx")
    # broken: relu fails, sigmoid unsupported (skipped), tanh passes; deviant: relu is a declared deviation
    res.assert_outcomes(failed=n["relu"], xfailed=n["relu"], skipped=2 * n["sigmoid"], passed=2 * n["tanh"])
    out = res.stdout.str()
    assert "unsupported: backward: no sigmoid gradient yet" in out
    assert "declared deviation: relu adds one, on purpose" in out
    assert not [ln for ln in out.splitlines() if ln.startswith("FAILED convspec[deviant]")]


def test_xfail_and_skip_files(kit, pytester):
    cases = _cases(("relu", "tanh"))
    tanh_ids = [c.id for c in cases if c.op == "tanh"]
    n_relu = sum(c.op == "relu" for c in cases)
    pytester.path.joinpath("xfails.txt").write_text(
        "# relu is broken on purpose\n"
        "*:relu[*   # off by one\n"
        f"{tanh_ids[0]}\n"  # tanh passes: a strict xfail that passes is reported
        "nothing:matches[this]*\n"
    )
    pytester.path.joinpath("skips.txt").write_text(f"{tanh_ids[1]}   # flaky on our CI\n")
    res = kit("--convspec-backend", "broken", "--convspec-plugin", "kit_broken", "--convspec-op", "relu", "--convspec-op", "tanh",
              "--convspec-xfails", "xfails.txt", "--convspec-skips", "skips.txt", "-rsx")
    res.assert_outcomes(xfailed=n_relu, failed=1, skipped=1, passed=len(tanh_ids) - 2, warnings=1)
    out = res.stdout.str()
    assert f"[XPASS(strict)] listed in xfails.txt:3: {tanh_ids[0]}" in out
    assert "listed in skips.txt:1:" in out and "(flaky on our CI)" in out
    assert "xfails.txt:4: ConvspecPatternWarning: convspec xfail pattern 'nothing:matches[this]*' matches no collected case" in out
    assert "(off by one)" in out
    # a stale list can be made to stop the run
    res = kit("--convspec-backend", "broken", "--convspec-plugin", "kit_broken", "--convspec-op", "relu",
              "--convspec-xfails", "xfails.txt", "-W", "error::convspec.conformance.pytest_plugin.ConvspecPatternWarning")
    assert res.ret == 4
    assert "xfails.txt:3: convspec xfail pattern" in res.stderr.str()  # the tanh line matches nothing without tanh


def test_xdist_runs_the_cases_in_parallel(kit):
    n = len(_cases(("relu", "tanh")))
    res = kit("-p", "xdist.plugin", "-n", "2", "--convspec-backend", "numpy", "--convspec-op", "relu", "--convspec-op", "tanh", in_subprocess=True)
    res.assert_outcomes(passed=n)  # the workers collected the same tests (xdist checks), and ran them all
    assert "2 workers" in res.stdout.str()


def test_bad_options_are_usage_errors(kit):
    res = kit("--convspec-backend", "nosuch")
    assert res.ret == 4
    res.stderr.fnmatch_lines(["*--convspec-backend: unknown backend 'nosuch'; found: numpy*"])
    res = kit("--convspec-backend", "numpy", "--convspec-op", "convolution")
    assert res.ret == 4
    res.stderr.fnmatch_lines(["*--convspec-op: unknown op 'convolution'; valid ops: conv, convolve*"])


def test_pytest11_entry_point_is_declared():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^\[project\.entry-points\.pytest11\]\nconvspec = "convspec\.conformance\.pytest_plugin"$', text, re.M)
    assert callable(pytest_plugin.pytest_addoption) and callable(pytest_plugin.pytest_configure)


# ---------------------------------------------------------------------------------------------- the guide

def test_guide_documents_every_hook_op_and_contract_member():
    doc = DOC.read_text()
    hooks = [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "convspec_spec")]
    assert sorted(hooks) == ["register_backends", "register_case_sources"]
    for hook in hooks:
        assert f"#### `{hook}(register)`" in doc, hook
    for name, fn, kind, op in scaffold.contract_functions():
        assert f"{name}{scaffold.signature(fn)}" in doc, f"{name}: signature missing or stale in {DOC.name}"
        if kind == "backward":
            assert f"{name}{scaffold.signature(fn)}  # -> {scaffold.backward_returns(op)}" in doc, name
    for op in R.OPS:
        assert f"##### `{op}`" in doc, op
    members = [n for n in vars(Backend) if not n.startswith("_")]
    assert set(members) >= {"name", "device", "dtypes", "version", "availability", "from_numpy", "to_numpy", "synchronize", "deviation", "supports"}
    for member in members:
        assert re.search(rf"^\| `{member}(\(.*?\))?` \|", doc, re.M), member
    for option in ("--convspec-backend", "--convspec-profile", "--convspec-seed", "--convspec-op", "--convspec-xfails", "--convspec-skips", "--convspec-plugin"):
        assert f"| `{option}" in doc, option
    assert "convspec new-backend" in doc and "convspec backends --json" in doc and "Unsupported" in doc


def test_backward_returns_match_the_reference():
    """The doc's and the stubs' `-> (dx, dw, db)` come from OPS; check them against the reference."""
    import numpy as np

    x = np.random.default_rng(0).standard_normal((1, 2, 5))
    w = np.random.default_rng(1).standard_normal((3, 2, 2))
    b = np.zeros(3)
    g = np.ones((1, 3, 4))
    assert scaffold.backward_returns("conv") == "(dx, dw, db)" and len(R.conv_backward(g, x, w, b)) == 3
    assert scaffold.backward_returns("relu") == "(dx,)" and len(R.relu_backward(x, x)) == 1
    assert scaffold.backward_returns("cross_entropy") == "(dlogits,)"
    assert scaffold.backward_returns("add") == "(dx, dy)" and len(R.add_backward(x, x, x)) == 2
    assert OPS["cross_entropy"].differentiable == ("logits",)
