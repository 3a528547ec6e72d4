"""The backend authors' kit: `convspec new-backend NAME` writes a complete, installable plugin package.

The package is rendered from the templates in ``templates/`` (``string.Template``, ``$name`` style;
``.tmpl`` files so nothing here is imported). The backend module is generated from the reference
itself: one stub per op of convspec.reference.OPS (forward, ``_backward`` and index companions), with
the reference's signature, each raising :class:`~convspec.conformance.backend.Unsupported` so a fresh
package installs, runs, and honestly reports every case "unsupported".
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from string import Template

from convspec import SPEC_VERSION

from .. import registry

TEMPLATES = Path(__file__).parent / "templates"
NAME_RULE = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*\Z")
#: reference-only keyword arguments a backend never receives (the conformance cases never pass them)
REFERENCE_ONLY = ("strict",)

# path in the package -> template file
FILES = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "src/$module/__init__.py": "__init__.py.tmpl",
    "src/$module/backend.py": "backend.py.tmpl",
    "src/$module/plugin.py": "plugin.py.tmpl",
    "tests/test_conformance.py": "test_conformance.py.tmpl",
}


class ScaffoldError(ValueError):
    """A backend name or target directory the scaffold cannot use; the message names the rule."""


def check_name(name: str) -> str:
    """Backend names are lower-case words joined by '-' or '_' (they become a distribution name,
    an entry-point name and, with '_', part of a Python module name)."""
    if not NAME_RULE.match(name or ""):
        raise ScaffoldError(
            f"backend name {name!r} is not allowed: use lower-case letters and digits, starting with a letter, "
            "words joined by single '-' or '_' (e.g. 'mylib', 'mylib-gpu')"
        )
    return name


def module_name(name: str) -> str:
    return "convspec_" + name.replace("-", "_")


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]", name)) + "Backend"


def signature(fn, *, method: bool = False) -> str:
    """The signature a backend implements: the reference's, without reference-only parameters."""
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.name not in REFERENCE_ONLY]
    if method:
        params.insert(0, inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD))
    return str(sig.replace(parameters=params))


def contract_functions() -> list:
    """Every function of the op contract, in registry order: (name, reference function, kind, op) with
    kind one of 'forward', 'indices', 'backward' (an op without gradients, a state update, has none)."""
    out = []
    for info in registry.OPS.values():
        if info.compose is not None:
            continue  # a block composes the backend's ops: nothing to implement
        op = info.name
        out.append((op, info.forward, "forward", op))
        if info.index_op:
            out.append((info.index_op, info.index, "indices", op))
        if info.differentiable:
            out.append((info.backward_name, info.backward, "backward", op))
    return out


def backward_returns(op: str) -> str:
    """What `<op>_backward` returns, e.g. '(dx, dw, db)'; for a sequence input, one per array."""
    info = registry.get(op)
    names = [f"d{a}[0], d{a}[1], ..." if a == info.variadic else "d" + a for a in info.differentiable]
    return "(" + ", ".join(names) + ("," if len(names) == 1 and not info.variadic else "") + ")"


def _stub(fname: str, fn, kind: str, op: str) -> str:
    OPS = registry.OPS
    if kind == "backward":
        doc = f"-> {backward_returns(op)}: the gradient of each differentiable input, in the forward's order"
        if "b" in OPS[op].differentiable:
            doc += " (db is None when b is None)"
        doc += "."
    elif kind == "indices":
        doc = "-> integer array of the chosen positions; must match the reference exactly."
    else:
        doc = f"The forward of {fname}; see convspec.reference.{fname}."
    return (
        f"    def {fname}{signature(fn, method=True)}:\n"
        f'        """{doc}"""\n'
        f'        raise Unsupported("{fname}: not implemented yet")\n'
    )


def stubs() -> str:
    """The op methods of the generated backend class, grouped like the reports."""
    blocks = []
    funcs = contract_functions()
    for group in registry.groups():
        members = [f for f in funcs if registry.get(f[3]).group == group]
        if members:
            blocks.append(
                f"    # -- {group} " + "-" * (94 - len(group)) + "\n\n" + "\n".join(_stub(*m) for m in members)
            )
    return "\n".join(blocks)


def render(name: str) -> dict:
    """{relative path: text} of the package for backend `name`."""
    check_name(name)
    values = {
        "name": name,
        "module": module_name(name),
        "cls": class_name(name),
        "spec_version": SPEC_VERSION,
        "stubs": stubs(),
        "n_ops": str(len({f[3] for f in contract_functions()})),
    }
    out = {}
    for rel, tmpl in FILES.items():
        text = Template((TEMPLATES / tmpl).read_text(encoding="utf-8")).substitute(values)
        out[Template(rel).substitute(values)] = text
    return out


def generate(name: str, directory=None) -> Path:
    """Write the package for backend `name` into `directory` (default ./convspec-NAME), which must
    not exist or be empty. Returns the package directory."""
    files = render(name)
    root = Path(directory if directory is not None else f"convspec-{name}")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ScaffoldError(f"{str(root)!r} already exists and is not an empty directory; choose a new one")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root
