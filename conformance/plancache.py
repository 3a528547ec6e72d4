"""A cache of planned cases: drawing the property-based cases with hypothesis is most of a run's start-up
(quick profile 0.8 s, full 5-7 s on a 2-core machine), and for a given (profile, seed, ops, sources,
filters) and the same code it always draws the same cases. ``plan_cases(plan)`` returns run.plan_cases'
list, from the cache when an entry with the same key exists, and stores it otherwise.

The key covers the plan's fields that choose cases (profile, seed, ops, shard, dtypes, -k, max_examples,
derandomize), the case sources (names and the code they come from), convspec's, hypothesis' and NumPy's
versions, the Python version, and the contents of every ``.py`` file that planning runs through: convspec.api,
convspec.reference, the sources, conformance's case/registry/ops/tolerance/run/plugins modules, and the folder
of each source's code (an edited strategy or reference check invalidates the cache without a version bump; a
touched file with the same contents, or an edit to the CLI, workers or reports, does not).
Entries live under the user cache directory (``$CONVSPEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/convspec/plans``,
else ``~/.cache/convspec/plans``), never in the working directory; ``CONVSPEC_PLAN_CACHE=0`` turns the cache
off. A corrupt or unreadable entry is ignored and redrawn.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import pickle
import sys
import tempfile
from pathlib import Path

from . import run as _run

FORMAT = 1  # bump when the entry layout changes
#: packages whose every module can change which cases are drawn (the strategies, the case types, the ops
#: and their validation in the reference)
_ROOTS = ("convspec", "convspec.api", "convspec.reference", "convspec.conformance.sources")
#: the modules of convspec.conformance itself that planning runs through (the CLI, workers, reports and the
#: pytest plugin do not change the cases: editing them keeps the cache)
_PLANNING = (
    "__init__.py",
    "cases.py",
    "registry.py",
    "ops.py",
    "tolerance.py",
    "run.py",
    "plugins.py",
    "hookspecs.py",
    "plancache.py",
)


def cache_dir() -> Path:
    explicit = os.environ.get("CONVSPEC_CACHE_DIR")
    if explicit:
        return Path(explicit) / "plans"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "convspec" / "plans"


def enabled() -> bool:
    return os.environ.get("CONVSPEC_PLAN_CACHE", "1").strip().lower() not in ("0", "no", "off", "false", "")


def _code_files(plan) -> set:
    files = set()
    for name in _ROOTS:
        mod = sys.modules.get(name)
        for folder in getattr(mod, "__path__", ()) or ():
            files.update(str(p) for p in Path(folder).glob("*.py"))
    conformance = sys.modules.get("convspec.conformance")
    for folder in getattr(conformance, "__path__", ()) or ():
        files.update(str(Path(folder) / f) for f in _PLANNING if (Path(folder) / f).exists())
    for source in plan.sources.values():  # every module in the folder of each source's code (a plugin's package)
        for obj in (source, getattr(source, "cases", None), type(source)):
            try:
                files.update(str(p) for p in Path(inspect.getfile(obj)).parent.glob("*.py"))
            except (TypeError, OSError):
                pass
    return files


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001  (not installed, broken metadata: part of the key all the same)
        return "?"


def key(plan) -> str:
    """The cache key of the plan's case list (a hex digest)."""
    import numpy

    h = hashlib.sha256()
    parts = [
        FORMAT,
        sys.version,
        _version("convspec"),
        _version("hypothesis"),
        numpy.__version__,
        plan.profile,
        plan.seed,
        tuple(plan.ops),
        tuple(plan.shard),
        tuple(plan.dtypes),
        tuple(plan.keywords),
        plan.max_examples,
        plan.derandomize,
    ]
    for name, source in plan.sources.items():
        fn = getattr(source, "cases", source)
        parts.append((name, getattr(fn, "__module__", "?"), getattr(fn, "__qualname__", repr(type(source)))))
    h.update(repr(parts).encode())
    for f in sorted(_code_files(plan)):
        try:
            with open(f, "rb") as fh:
                h.update(f"{f}\0".encode() + hashlib.sha256(fh.read()).digest())
        except OSError:
            continue
    return h.hexdigest()[:32]


def plan_cases(plan) -> list:
    """run.plan_cases(plan), cached (see the module's docstring). A single-case plan is not cached."""
    if plan.only_case is not None or not enabled():
        return _run.plan_cases(plan)
    try:
        path = cache_dir() / f"{plan.profile}-{key(plan)}.pickle"
    except Exception:  # noqa: BLE001  (a source whose code cannot be located: no cache)
        return _run.plan_cases(plan)
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f)
        if entry.get("format") == FORMAT:
            return entry["cases"]
    except Exception:  # noqa: BLE001  (absent, truncated, from another layout: draw again)
        pass
    cases = _run.plan_cases(plan)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".plan-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump({"format": FORMAT, "cases": cases}, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)  # atomic: a concurrent run reads the old entry or the new one
    except Exception:  # noqa: BLE001  (read-only home, full disk, a plugin's unpicklable case: no cache)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return cases
