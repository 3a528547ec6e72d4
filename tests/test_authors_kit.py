"""The backend authors' kit: `convspec new-backend` (a generated package that installs, is found through
its entry point, and reports honestly), `convspec backends --json`, and docs/writing-a-backend.md covering
every hook and op of the contract. The pytest plugin's tests are in test_pytest_plugin.py."""

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
from convspec.conformance import hookspecs, plugins, pytest_plugin, scaffold
from convspec.conformance.backend import Backend
from convspec.conformance.cli import main
from convspec.conformance.ops import OPS
from convspec.conformance.pytest_plugin import suite_cases

from convspec import reference as R

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
    for stub, body in (
        ('raise Unsupported("relu: not implemented yet")', RELU_FORWARD),
        ('raise Unsupported("relu_backward: not implemented yet")', RELU_BACKWARD),
    ):
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
    assert files == [
        "README.md",
        "pyproject.toml",
        "src/convspec_my_lib/__init__.py",
        "src/convspec_my_lib/backend.py",
        "src/convspec_my_lib/plugin.py",
        "tests/test_conformance.py",
    ]
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
    stubs = {
        n: sig for n, sig in defs if n not in ("availability", "from_numpy", "to_numpy", "synchronize", "deviation")
    }
    expected = {name for name, *_ in scaffold.contract_functions()}
    assert set(stubs) == expected and len(expected) == 2 * len(R.OPS) + len(R.INDEX_OPS) + len(R.STATE_OPS)
    assert stubs["conv"] == "self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1"
    assert stubs["max_pool_indices"] == "self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False"
    assert stubs["cross_entropy_backward"] == "self, grad_out, logits, labels"
    for name in expected:
        assert backend_src.count(f'raise Unsupported("{name}: not implemented yet")') == 1
    assert "from convspec import hookimpl" in (target / "src/convspec_my_lib/plugin.py").read_text()
    assert "pip install -e" in res.output and "convspec-my-lib" in res.output


@pytest.mark.parametrize(
    "name, rule",
    [
        ("MyLib", "lower-case"),
        ("1lib", "starting with a letter"),
        ("my lib", "lower-case"),
        ("my--lib", "single '-' or '_'"),
        ("", "lower-case"),
    ],
)
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
    assert {r["source"] for r in results} == {"golden", "corner", "exact", "property", "errors"}
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
    purelib = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # A venv made from inside a venv sees the *base* interpreter's site-packages; hand it ours too, so
    # numpy, pluggy, hypothesis, pip, hatchling and convspec itself (installed or on PYTHONPATH) import.
    outer = [p for p in sys.path if p and Path(p).is_dir() and Path(p).resolve() != Path.cwd().resolve()]
    # addsitedir, not plain path lines: an editable install of convspec lives in a .pth finder there
    (Path(purelib) / "_outer_env.pth").write_text(f"import site; list(map(site.addsitedir, {outer!r}))\n")
    env = {k: v for k, v in os.environ.items() if k != plugins.AUTOLOAD_ENV}

    install = subprocess.run(
        [py, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(pkg)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    where = subprocess.run(
        [py, "-c", f"import {module}; print({module}.__file__)"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert where.stdout.strip().startswith(purelib), where.stdout + where.stderr  # the installed copy, not the sources

    listing = subprocess.run(
        [py, "-m", "convspec", "backends", "--json"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert listing.returncode == 0, listing.stderr
    rows = {r["name"]: r for r in json.loads(listing.stdout)["backends"]}
    assert rows[name] == {
        "name": name,
        "available": True,
        "reason": None,
        "version": "0",
        "device": "cpu",
        "dtypes": ["float32", "float64"],
        "plugin": name,
    }

    out = tmp_path / "results.jsonl"
    run = subprocess.run(
        [py, "-m", "convspec", "run", "--backend", name, "--out", str(out), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
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
    assert len(cases) == len(_cases(tuple(R.OPS) + tuple(R.STATE_OPS)))

    # the generated package's own test passes in that environment too
    own = subprocess.run(
        [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests")],
        env={**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        cwd=pkg,
    )
    assert own.returncode == 0, own.stdout + own.stderr
    assert "2 passed" in own.stdout


# ---------------------------------------------------------------------------------------------- backends --json


def test_backends_json_lists_backends_and_plugin_errors():
    res = CliRunner().invoke(main, ["backends", "--json", "-p", "convspec_no_such_plugin_module"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    numpy_row = next(r for r in data["backends"] if r["name"] == "numpy")
    import numpy

    assert numpy_row == {
        "name": "numpy",
        "available": True,
        "reason": None,
        "version": numpy.__version__,
        "device": "cpu",
        "dtypes": ["float32", "float64"],
        "plugin": "convspec.backends.numpy_backend",
    }
    errors = [e for e in data["plugin_errors"] if e["plugin"] == "convspec_no_such_plugin_module"]
    assert len(errors) == 1 and "ModuleNotFoundError" in errors[0]["error"]


def test_backends_json_reports_unavailable_backends(tmp_path, monkeypatch):
    (tmp_path / "kit_unavailable.py").write_text(
        textwrap.dedent("""
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
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    res = CliRunner().invoke(main, ["backends", "--json", "-p", "kit_unavailable"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)["backends"]}
    assert rows["gone"] == {
        "name": "gone",
        "available": False,
        "reason": "CUDA not available",
        "version": "9.9",
        "device": "cuda:0",
        "dtypes": ["float32"],
        "plugin": "kit_unavailable",
    }
    assert rows["raises"]["available"] is False and "driver exploded" in rows["raises"]["reason"]


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
    assert set(members) >= {
        "name",
        "device",
        "dtypes",
        "version",
        "availability",
        "from_numpy",
        "to_numpy",
        "synchronize",
        "deviation",
        "supports",
    }
    for member in members:
        assert re.search(rf"^\| `{member}(\(.*?\))?` \|", doc, re.M), member
    for option in (
        "--convspec-backend",
        "--convspec-profile",
        "--convspec-seed",
        "--convspec-op",
        "--convspec-xfails",
        "--convspec-skips",
        "--convspec-plugin",
    ):
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
