"""The convspec pytest plugin: run the conformance suite inside a backend's own test suite.

    pytest --convspec-backend NAME [--convspec-profile quick|full] [--convspec-seed N]
           [--convspec-op OP ...] [--convspec-xfails FILE] [--convspec-skips FILE]
           [--convspec-plugin MODULE ...]

Registered through the ``pytest11`` entry point, so it is loaded in every pytest session where convspec
is installed; it does nothing at all unless ``--convspec-backend`` is given. With it, the session
collects one test per conformance case (a ``convspec[NAME]`` collector next to whatever else pytest
collects), named by the case id (``property:conv[2d,stride=2,padding=same,float32,normal]#3a531f14``), so
``-k``, ``-x``, ``--lf`` and pytest-xdist's ``-n`` work as usual. Property-based (hypothesis) cases are
drawn at collection from ``--convspec-seed``: the same seed gives the same tests in every process.

Outcomes: pass -> passed; "unsupported" (an op or dtype the backend does not implement) and "invalid"
-> skipped, with the reason; a deviation the backend declares -> xfailed, with the reason; fail or
error -> failed, the message showing every check, the first mismatching element (index, expected, got,
bound) and the one-line repro command.

Expected-failure and skip files (``--convspec-xfails FILE``, ``--convspec-skips FILE``): one case-id
pattern per line, ``*`` and ``?`` wildcards (everything else, brackets included, is literal), whole-id
match; ``#`` starts a comment line, and `` # text`` after a pattern is its reason. Expected failures are
strict: a listed case that passes is reported as a failure ("[XPASS(strict)]") so the list cannot go
stale silently. A pattern that matches no collected case gets a ConvspecPatternWarning pointing at its
line.
"""
from __future__ import annotations

import fnmatch
import re
import warnings
from dataclasses import dataclass, field

import pytest



class ConvspecPatternWarning(pytest.PytestWarning):
    """An xfail or skip pattern that matches no collected case."""


class CaseFailure(Exception):
    """A conformance case that failed or errored; str() is the report pytest shows."""


# -- helpers usable without pytest's command line (the scaffold's generated test uses them) ----------

def suite_cases(registry, *, profile: str = "quick", seed: int = 0, ops=None, backend=None) -> list:
    """Every case of every registered source, in the engine's stable order (for `backend`: the ones
    it is asked, i.e. optional precision tiers only where it declares them)."""
    from .run import Plan, applies, plan_cases

    plan = Plan(profile=profile, seed=seed, sources=registry.case_sources)
    if ops:
        plan.ops = tuple(ops)
    cases = plan_cases(plan)
    return cases if backend is None else [c for c in cases if applies(c, backend)]


def run_suite(backend: str, *, profile: str = "quick", seed: int = 0, ops=None, plugins=()) -> list:
    """Evaluate the suite on one backend, in this process; a list of result dicts."""
    from . import plugins as loader
    from .evaluate import evaluate

    reg = loader.load(plugins)
    if backend not in reg.backends:
        raise LookupError(f"unknown backend {backend!r}; found: {', '.join(reg.backends) or '(none)'}; plugin errors: {reg.load_errors}")
    b = reg.backends[backend]
    return [{**evaluate(b, c), "backend": backend} for c in suite_cases(reg, profile=profile, seed=seed, ops=ops, backend=b)]


def failure_report(backend: str, result: dict) -> str:
    """A readable account of a bad result: status, each check, the first mismatching element, repro."""
    from .records import failure_text

    return "convspec: " + failure_text({**result, "backend": backend})


# -- xfail / skip files -------------------------------------------------------------------------------

@dataclass(eq=False)
class Pattern:
    text: str
    file: str
    line: int
    reason: str = ""
    regex: re.Pattern = field(init=False, repr=False)

    def __post_init__(self):
        # only * and ? are wildcards: case ids are full of brackets, which fnmatch would read as sets
        glob = self.text.replace("[", "\0").replace("]", "[]]").replace("\0", "[[]")
        self.regex = re.compile(fnmatch.translate(glob))

    def matches(self, case_id: str) -> bool:
        return self.regex.match(case_id) is not None

    def describe(self) -> str:
        return f"{self.file}:{self.line}: {self.text}" + (f" ({self.reason})" if self.reason else "")


def read_patterns(path: str, option: str) -> list:
    """The patterns of an xfails / skips file: one per line, optionally followed by ' # reason';
    lines starting with '#' are comments."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise pytest.UsageError(f"{option}: cannot read {path!r}: {exc.strerror or exc}") from None
    out = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"(.*?)\s+#(.*)", line)  # ' # reason' (a case id's own '#hash' has no space before it)
        text, reason = (m.group(1), m.group(2)) if m else (line, "")
        out.append(Pattern(text.strip(), path, n, reason.strip()))
    return out


# -- the pytest hooks -------------------------------------------------------------------------------

@dataclass
class _State:
    registry: object
    names: list
    profile: str
    seed: int
    ops: tuple
    xfails: list
    skips: list
    plugins: tuple = ()
    used: set = field(default_factory=set)  # patterns that matched a collected case
    availability: dict = field(default_factory=dict)


STATE = pytest.StashKey[_State]()


def pytest_addoption(parser):
    group = parser.getgroup("convspec", "convspec conformance suite (inert unless --convspec-backend is given)")
    group.addoption("--convspec-backend", action="append", default=[], metavar="NAME",
                    help="Run the conformance suite on this backend, one test per case (repeatable).")
    group.addoption("--convspec-profile", choices=("quick", "full"), default="quick",
                    help="Case profile (default: quick).")
    group.addoption("--convspec-seed", type=int, default=0, metavar="N",
                    help="Seed of the property-based cases; every process draws the same cases (default: 0).")
    group.addoption("--convspec-op", action="append", default=[], metavar="OP",
                    help="Only these ops (repeatable; default: every op).")
    group.addoption("--convspec-xfails", action="append", default=[], metavar="FILE",
                    help="Expected failures: case-id patterns, one a line, # comments; strict (a listed case that passes fails).")
    group.addoption("--convspec-skips", action="append", default=[], metavar="FILE",
                    help="Cases to skip: case-id patterns, one a line, # comments.")
    group.addoption("--convspec-plugin", action="append", default=[], metavar="MODULE",
                    help="Load a convspec plugin module that is not installed (repeatable; like `convspec -p`).")


def pytest_configure(config):
    names = config.getoption("convspec_backend", None)
    if not names:
        return  # inert
    from . import plugins as loader
    from . import registry as op_registry

    ops = tuple(config.getoption("convspec_op") or ())
    for op in ops:
        if op not in op_registry.OPS:
            raise pytest.UsageError(f"--convspec-op: unknown op {op!r}; valid ops: {', '.join(op_registry.OPS)}")
    reg = loader.load(tuple(config.getoption("convspec_plugin")))
    for err in reg.load_errors:
        warnings.warn(pytest.PytestConfigWarning(f"convspec plugin {err.plugin!r} failed to load: {err.error}"))
    for n in names:
        if n not in reg.backends:
            errors = "".join(f"\n  plugin {e.plugin!r} failed to load: {e.error}" for e in reg.load_errors)
            raise pytest.UsageError(f"--convspec-backend: unknown backend {n!r}; found: {', '.join(reg.backends) or '(none)'}{errors}")
    config.stash[STATE] = _State(
        registry=reg,
        names=list(dict.fromkeys(names)),
        profile=config.getoption("convspec_profile"),
        seed=config.getoption("convspec_seed"),
        ops=ops or op_registry.names(),
        xfails=[p for f in config.getoption("convspec_xfails") for p in read_patterns(f, "--convspec-xfails")],
        skips=[p for f in config.getoption("convspec_skips") for p in read_patterns(f, "--convspec-skips")],
        plugins=tuple(config.getoption("convspec_plugin")),
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Add one convspec[NAME] collector per backend to the session's top-level collection."""
    outcome = yield
    if not isinstance(collector, pytest.Session):
        return
    state = collector.config.stash.get(STATE, None)
    if state is None:
        return
    rep = outcome.get_result()
    if rep.passed:
        for name in state.names:
            rep.result.append(Suite.from_parent(collector, name=f"convspec[{name}]", nodeid=f"convspec[{name}]", backend_name=name))


def pytest_collection_modifyitems(session, config, items):
    state = config.stash.get(STATE, None)
    if state is None:
        return
    for p in state.xfails + state.skips:
        if p not in state.used:
            kind = "xfail" if p in state.xfails else "skip"
            try:
                warnings.warn_explicit(
                    ConvspecPatternWarning(f"convspec {kind} pattern {p.text!r} matches no collected case"),
                    category=None, filename=p.file, lineno=p.line,
                )
            except ConvspecPatternWarning as exc:  # -W error::...ConvspecPatternWarning: a stale list stops the run
                raise pytest.UsageError(f"{p.file}:{p.line}: {exc}") from None


class Suite(pytest.Collector):
    """The conformance cases of one backend."""

    def __init__(self, *, backend_name: str, **kw):
        super().__init__(**kw)
        self.backend_name = backend_name

    def collect(self):
        state = self.config.stash[STATE]
        backend = state.registry.backends.get(self.backend_name)
        for case in suite_cases(state.registry, profile=state.profile, seed=state.seed, ops=state.ops, backend=backend):
            item = CaseItem.from_parent(self, name=case.id, case=case, backend_name=self.backend_name)
            skip = next((p for p in state.skips if p.matches(case.id)), None)
            if skip is not None:
                state.used.add(skip)
                item.add_marker(pytest.mark.skip(reason=f"listed in {skip.describe()}"))
            xfail = next((p for p in state.xfails if p.matches(case.id)), None)
            if xfail is not None:
                state.used.add(xfail)
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"listed in {xfail.describe()}"))
            yield item


class CaseItem(pytest.Item):
    """One conformance case on one backend, evaluated in this process."""

    def __init__(self, *, case, backend_name: str, **kw):
        super().__init__(**kw)
        self.case = case
        self.backend_name = backend_name
        self.extra_keyword_matches.update({case.op, case.source, case.dtype})

    def runtest(self):
        from .evaluate import evaluate

        state = self.config.stash[STATE]
        backend = state.registry.backends[self.backend_name]
        if self.backend_name not in state.availability:
            try:
                state.availability[self.backend_name] = backend.availability()
            except Exception as exc:
                state.availability[self.backend_name] = f"availability check raised {exc!r}"
        reason = state.availability[self.backend_name]
        if reason:
            pytest.skip(f"backend {self.backend_name} unavailable: {reason}")
        r = evaluate(backend, self.case, plugins=state.plugins)
        self.user_properties.append(("convspec_status", r["status"]))
        status = r["status"]
        if status == "pass":
            return
        if status == "unsupported":
            why = r.get("message") or "; ".join(f"{c['what']}: {c.get('message', '')}" for c in r["checks"] if c["status"] == "unsupported")
            pytest.skip(f"unsupported: {why}")
        if status == "invalid":
            pytest.skip(r.get("message", "invalid case"))
        if status == "deviation":
            pytest.xfail(f"declared deviation: {r.get('deviation')}")
        raise CaseFailure(failure_report(self.backend_name, r))

    def repr_failure(self, excinfo, style=None):
        # our report says it all; a declared deviation (pytest.xfail) needs no traceback either
        if isinstance(excinfo.value, (CaseFailure, pytest.xfail.Exception)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        # a location named like the collector (no file holds the case): skip summaries read "convspec[NAME]:1"
        return self.session.path / f"convspec[{self.backend_name}]", 0, f"convspec[{self.backend_name}]::{self.name}"
