"""Both install modes work from the repository: `pip install .` puts everything under the single package
`convspec` (no top-level `reference` or `backends`), with its data files; `pip install -e .` maps each
package to its folder, so contributors edit the spec in place. The wheels are built with setuptools'
PEP 517 hooks (what pip calls) and unpacked into a temporary folder: nothing touches this environment."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _build(kind: str, out: Path) -> Path:
    """Build the wheel ('wheel' or 'editable') with setuptools' backend, in a child process."""
    out.mkdir()
    code = f"from setuptools import build_meta as b; print(b.build_{kind}({str(out)!r}))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.mark.slow
def test_regular_wheel_has_every_package_and_data_file(tmp_path):
    names = zipfile.ZipFile(_build("wheel", tmp_path / "dist")).namelist()
    assert {n.split("/")[0] for n in names} == {"convspec", "convspec-0.1.0.dist-info"}
    for rel in (
        "api/backend.py",
        "reference/conv.py",
        "reference/literal.py",
        "backends/numpy_backend.py",
        "backends/_xp/conv.py",
        "backends/_torch/ops.py",
        "conformance/registry.py",
        "conformance/schema/results.schema.json",
        "conformance/scaffold/templates/backend.py.tmpl",
        "conformance/report/html.py",
        "conformance/sources/properties.py",
    ):
        assert f"convspec/{rel}" in names, rel


@pytest.mark.slow
def test_editable_wheel_maps_each_package_to_its_folder(tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(_build("editable", tmp_path / "dist")).extractall(site)
    (finder,) = site.glob("__editable___convspec_*_finder.py")
    outer = [p for p in sys.path if p and Path(p).is_dir()]
    # the editable finder first, then the rest of this environment (numpy, pluggy, ...)
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r}); import {finder.stem} as f; "
        f"sys.meta_path.insert(0, f._EditableFinder); sys.path.extend({outer!r}); "
        "import convspec, convspec.reference as R, convspec.backends.numpy_backend as nb, "
        "convspec.conformance.cli as cli; print(convspec.__file__); print(R.__file__); print(nb.__file__); "
        "print(cli.__file__)"
    )
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [
        str(ROOT / "src/convspec/__init__.py"),
        str(ROOT / "reference/__init__.py"),
        str(ROOT / "backends/numpy_backend.py"),
        str(ROOT / "conformance/cli.py"),
    ]
