"""The architecture, checked: imports only run down the layers

    api  <-  reference  <-  {backends, conformance}  <-  cli

(backends and conformance are siblings: neither imports the other), and no two modules import each
other at module level (no cycle, hidden or not)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "src/convspec": "convspec",
    "reference": "convspec.reference",
    "backends": "convspec.backends",
    "conformance": "convspec.conformance",
}
CLI = (
    "convspec.conformance.cli",
    "convspec.conformance.commands",
    "convspec.__main__",
    "convspec.conformance.selftest",
)
ALLOWED = {
    "api": {"api"},
    "reference": {"api", "reference"},
    "backends": {"api", "backends"},
    "conformance": {"api", "reference", "conformance"},
    "cli": {"api", "reference", "conformance", "cli", "backends"},
}


def _modules() -> dict:
    """module name -> source path, for every module of the package."""
    out = {}
    for folder, package in FOLDERS.items():
        base = ROOT / folder
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if folder == "src/convspec" and parts[:1] in (["reference"], ["backends"], ["conformance"]):
                continue
            out[name] = path
    return out


MODULES = _modules()


def layer(module: str) -> str:
    if module in ("convspec",) or module.startswith("convspec.api"):
        return "api"  # the root package re-exports the API
    if module.startswith(CLI):
        return "cli"
    for name in ("reference", "backends", "conformance"):
        if module == f"convspec.{name}" or module.startswith(f"convspec.{name}."):
            return name
    return "cli"  # convspec.__main__


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str, *, top_level_only: bool = False) -> set:
    """The convspec modules `module` imports (every import, or only those run at import time)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    nodes = tree.body if top_level_only else ast.walk(tree)
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, is_package)
            # `from pkg import mod` imports the submodule pkg.mod when there is one
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            continue
        out.update(n for n in names if n == "convspec" or n.startswith("convspec."))
    return out


def test_the_layout_maps_every_folder():
    assert {
        "convspec",
        "convspec.api",
        "convspec.reference",
        "convspec.backends",
        "convspec.conformance",
        "convspec.conformance.cli",
        "convspec.conformance.registry",
    } <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_upward(module):
    mine = layer(module)
    bad = sorted(t for t in imports(module) if layer(t) not in ALLOWED[mine])
    assert not bad, f"{module} ({mine} layer) imports {bad}, which the {mine} layer may not use"


def test_no_import_cycle():
    # a module importing a package it is part of finds that package already initialising: not a cycle
    graph = {m: {t for t in imports(m) if t in MODULES and t != m and not m.startswith(t + ".")} for m in MODULES}
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m) :] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for t in sorted(graph[m]):
            visit(t)
        stack.pop()

    for m in sorted(MODULES):
        visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The test above can fail: a backend module importing the engine is caught."""
    fake = tmp_path / "bad.py"
    fake.write_text("from convspec.conformance import cases\nfrom ..reference import conv\n")
    monkeypatch.setitem(MODULES, "convspec.backends.bad", fake)
    assert imports("convspec.backends.bad") == {"convspec.conformance.cases", "convspec.reference.conv"}
    assert {layer(t) for t in imports("convspec.backends.bad")} == {"conformance", "reference"}
