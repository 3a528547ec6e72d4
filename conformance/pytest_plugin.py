"""The convspec pytest plugin: run the conformance suite inside a backend's own test suite.

    pytest --convspec-backend NAME [--convspec-profile quick|full] [--convspec-seed N]
           [--convspec-op OP ...] [--convspec-xfails=FILE] [--convspec-skips=FILE]
           [--convspec-plugin MODULE ...]

Registered through the ``pytest11`` entry point, so it is loaded in every pytest session where convspec
is installed; it does nothing at all unless ``--convspec-backend`` is given. With it, the session
collects a ``convspec[NAME]`` collector per backend holding one collector per conformance case, named by
the case id, and in it one test per *part* of the case: ``forward`` (the output), ``indices`` (the index
output, for the ops that have one) and ``backward`` (every gradient):

    convspec[numpy]::property:conv[2d,stride=2,padding=same,float32,normal]#3a531f14::forward
    convspec[numpy]::property:conv[2d,stride=2,padding=same,float32,normal]#3a531f14::backward

so a forward-only backend shows a pass for every forward it computes, and ``-k``, ``-x``, ``--lf`` and
pytest-xdist's ``-n`` work as usual (``-k "conv and forward"``; with ``-n``, ``--dist loadscope`` keeps
the parts of a case in one process, which evaluates the case once). A case is evaluated once per
process, by its first part to run; each part's outcome is its verdict (records.verdicts). A verdict of a
part the op does not list (a case the spec rejects is checked for being refused: "errors") is that
case's only test. Property-based (hypothesis) cases are drawn at collection from ``--convspec-seed``:
the same seed gives the same tests in every process.

With ``--convspec-backend`` and no file or directory arguments, pytest collects only the suite (not the
tests under the current directory): name paths (``pytest tests --convspec-backend NAME``) to run your
own tests too.

Outcomes per part: pass -> passed; "unsupported" (an op, dtype or gradient the backend does not
implement), "invalid", and a part not checked because another failed -> skipped, with the reason; a
deviation the backend declares -> xfailed, with the reason; fail, error, timeout -> failed, the message
showing every check, the first mismatching element (index, expected, got, bound, every digit needed) and
the one-line repro command.

Expected-failure and skip files (``--convspec-xfails=FILE``, ``--convspec-skips=FILE``): one pattern per
line, ``*`` and ``?`` wildcards (everything else, brackets included, is literal), whole-id match against
the case id (every part of the case) or against ``CASE_ID::PART`` (that part only); ``#`` starts a
comment line, and `` # text`` after a pattern is its reason. Expected failures are strict: a listed part
that passes is reported as a failure ("[XPASS(strict)]") so the list cannot go stale silently -- except
that a pattern matching a whole case is satisfied when any part of that case fails (its other parts just
pass). A line starting with ``~`` is non-strict: what it matches may pass (reported XPASS, not a
failure), for wildcard patterns that also match passing cases. A pattern that matches no collected case
gets a ConvspecPatternWarning pointing at its line. Write ``--convspec-xfails=FILE`` (with ``=``): pytest
picks its rootdir before plugins register their options, so in the space form it takes FILE for a test
path; the plugin refuses that form when it changed the rootdir.

Hypothesis' files (its cache of constants) go under the user's cache directory
(hypothesis_home.outside_the_tree), not into ``./.hypothesis``, unless HYPOTHESIS_STORAGE_DIRECTORY says
where.
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
    from .hypothesis_home import outside_the_tree
    from .run import Plan, applies, plan_cases

    plan = Plan(profile=profile, seed=seed, sources=registry.case_sources)
    if ops:
        plan.ops = tuple(ops)
    with outside_the_tree():  # no ./.hypothesis in the user's tree
        cases = plan_cases(plan)
    return cases if backend is None else [c for c in cases if applies(c, backend)]


def run_suite(backend: str, *, profile: str = "quick", seed: int = 0, ops=None, plugins=()) -> list:
    """Evaluate the suite on one backend, in this process; a list of result dicts."""
    from . import plugins as loader
    from .evaluate import evaluate

    reg = loader.load(plugins)
    if backend not in reg.backends:
        raise LookupError(
            f"unknown backend {backend!r}; found: "
            f"{', '.join(reg.backends) or '(none)'}; plugin errors: {reg.load_errors}"
        )
    b = reg.backends[backend]
    return [
        {**evaluate(b, c), "backend": backend} for c in suite_cases(reg, profile=profile, seed=seed, ops=ops, backend=b)
    ]


def failure_report(backend: str, result: dict) -> str:
    """A readable account of a bad result: status, each check, the first mismatching element, repro."""
    from .records import failure_text
    from .report.signature import reproduces

    result = {**result, "backend": backend}
    if result.get("minimal") and not reproduces(result):  # a shrunk case that fails another way is not this one's
        result.pop("minimal")
    return "convspec: " + failure_text(result)


# -- xfail / skip files -------------------------------------------------------------------------------


@dataclass(eq=False)
class Pattern:
    text: str
    file: str
    line: int
    reason: str = ""
    strict: bool = True  # False for a line written "~PATTERN": what it matches may also pass
    regex: re.Pattern = field(init=False, repr=False)

    def __post_init__(self):
        # only * and ? are wildcards: case ids are full of brackets, which fnmatch would read as sets
        glob = self.text.replace("[", "\0").replace("]", "[]]").replace("\0", "[[]")
        self.regex = re.compile(fnmatch.translate(glob))

    def matches(self, case_id: str) -> bool:
        return self.regex.match(case_id) is not None

    def describe(self) -> str:
        text = self.text if self.strict else f"~{self.text}"
        return f"{self.file}:{self.line}: {text}" + (f" ({self.reason})" if self.reason else "")

    def scope(self, case_id: str, part: str):
        """ "case" when the pattern matches the case id (every part), "part" when it matches only
        CASE_ID::PART, None when it does not match."""
        if self.matches(case_id):
            return "case"
        return "part" if self.matches(f"{case_id}::{part}") else None


def read_patterns(path: str, option: str) -> list:
    """The patterns of an xfails / skips file: one per line, optionally followed by ' # reason';
    lines starting with '#' are comments; a line starting with '~' is a non-strict pattern."""
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
        strict = not text.startswith("~")
        out.append(Pattern(text.lstrip("~").strip(), path, n, reason.strip(), strict=strict))
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
    group.addoption(
        "--convspec-backend",
        action="append",
        default=[],
        metavar="NAME",
        help="Run the conformance suite on this backend, one test per case (repeatable).",
    )
    group.addoption(
        "--convspec-profile", choices=("quick", "full"), default="quick", help="Case profile (default: quick)."
    )
    group.addoption(
        "--convspec-seed",
        type=int,
        default=0,
        metavar="N",
        help="Seed of the property-based cases; every process draws the same cases (default: 0).",
    )
    group.addoption(
        "--convspec-op",
        action="append",
        default=[],
        metavar="OP",
        help="Only these ops (repeatable; default: every op).",
    )
    group.addoption(
        "--convspec-xfails",
        action="append",
        default=[],
        metavar="FILE",
        help="Expected failures (write --convspec-xfails=FILE): case-id or CASE_ID::PART patterns, one a "
        "line, # comments; strict (a listed part that passes fails) unless the line starts with ~.",
    )
    group.addoption(
        "--convspec-skips",
        action="append",
        default=[],
        metavar="FILE",
        help="Cases to skip (write --convspec-skips=FILE): case-id or CASE_ID::PART patterns, one a line.",
    )
    group.addoption(
        "--convspec-plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="Load a convspec plugin module that is not installed (repeatable; like `convspec -p`).",
    )


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
    _check_rootdir(config)
    reg = loader.load(tuple(config.getoption("convspec_plugin")))
    for err in reg.load_errors:
        warnings.warn(pytest.PytestConfigWarning(f"convspec plugin {err.plugin!r} failed to load: {err.error}"))
    for n in names:
        if n not in reg.backends:
            errors = "".join(f"\n  plugin {e.plugin!r} failed to load: {e.error}" for e in reg.load_errors)
            raise pytest.UsageError(
                f"--convspec-backend: unknown backend {n!r}; found: {', '.join(reg.backends) or '(none)'}{errors}"
            )
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


PATH_OPTIONS = ("--convspec-xfails", "--convspec-skips")


def _space_form_values(args) -> list:
    """The values given to PATH_OPTIONS in the space form (``--convspec-xfails FILE``)."""
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a in PATH_OPTIONS]


def _check_rootdir(config) -> None:
    """pytest determines its rootdir and ini file from the command line's paths before it loads plugins
    (and so before it knows that --convspec-xfails takes a value): in the space form, FILE counts as a
    test path, and its folder can become the rootdir. Refuse that case with the fix; the ``=`` form has
    no such effect."""
    import os
    import shlex

    args = list(config.invocation_params.args)
    args = shlex.split(os.environ.get("PYTEST_ADDOPTS", "")) + args
    values = _space_form_values(args)
    if not values:
        return
    try:
        from _pytest.config.findpaths import determine_setup

        ns = config.known_args_namespace
        rootpath, inipath, *_ = determine_setup(
            inifile=ns.inifilename,
            override_ini=ns.override_ini,
            args=list(ns.file_or_dir),
            rootdir_cmd_arg=ns.rootdir or None,
            invocation_dir=config.invocation_params.dir,
        )
    except Exception:  # pragma: no cover - a pytest whose internals differ: nothing to compare with
        return
    if rootpath != config.rootpath or inipath != config.inipath:
        forms = " ".join(f"{opt}={v}" for opt, v in zip((a for a in args if a in PATH_OPTIONS), values))
        raise pytest.UsageError(
            f"{', '.join(dict.fromkeys(a for a in args if a in PATH_OPTIONS))} FILE: pytest took its rootdir "
            f"({config.rootpath}) from {', '.join(values)}, not {rootpath}, because it reads the command line's paths "
            f"before plugins register their options; write {forms} instead"
        )


def pytest_ignore_collect(collection_path, config):
    """With --convspec-backend and no file or directory arguments, collect only the suite."""
    if config.stash.get(STATE, None) is None:
        return None
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return True
    return None


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
            rep.result.append(
                Suite.from_parent(collector, name=f"convspec[{name}]", nodeid=f"convspec[{name}]", backend_name=name)
            )


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
                    category=None,
                    filename=p.file,
                    lineno=p.line,
                )
            except ConvspecPatternWarning as exc:  # -W error::...ConvspecPatternWarning: a stale list stops the run
                raise pytest.UsageError(f"{p.file}:{p.line}: {exc}") from None


def case_parts(case) -> tuple:
    """The parts of a case that become tests: those of its op (junit.parts_of); a case the spec
    rejects (the "errors" source) has the one part "errors"."""
    from .junit import parts_of
    from .records import PARTS

    if case.source in PARTS:
        return (case.source,)
    return parts_of(case.op)


def _match(patterns, case_id: str, part: str):
    """(pattern, scope) of the first pattern matching the case or this part of it, or (None, None)."""
    for p in patterns:
        scope = p.scope(case_id, part)
        if scope:
            return p, scope
    return None, None


class Suite(pytest.Collector):
    """The conformance cases of one backend."""

    def __init__(self, *, backend_name: str, **kw):
        super().__init__(**kw)
        self.backend_name = backend_name

    def collect(self):
        state = self.config.stash[STATE]
        backend = state.registry.backends.get(self.backend_name)
        for case in suite_cases(state.registry, profile=state.profile, seed=state.seed, ops=state.ops, backend=backend):
            yield CaseNode.from_parent(self, name=case.id, case=case, backend_name=self.backend_name)


class CaseNode(pytest.Collector):
    """One conformance case on one backend: a test per part; evaluated once, by the first part to run."""

    def __init__(self, *, case, backend_name: str, **kw):
        super().__init__(**kw)
        self.case = case
        self.backend_name = backend_name
        self.result = None
        self.extra_keyword_matches.update({case.op, case.source, case.dtype})

    def collect(self):
        state = self.config.stash[STATE]
        parts = case_parts(self.case)
        for part in parts:
            item = PartItem.from_parent(self, name=part, part=part, others=parts)
            skip, _ = _match(state.skips, self.case.id, part)
            if skip is not None:
                state.used.add(skip)
                item.add_marker(pytest.mark.skip(reason=f"listed in {skip.describe()}"))
            xfail, _ = _match(state.xfails, self.case.id, part)
            if xfail is not None:
                state.used.add(xfail)
            yield item

    def evaluate(self) -> dict:
        if self.result is None:
            from .evaluate import evaluate

            state = self.config.stash[STATE]
            self.result = evaluate(state.registry.backends[self.backend_name], self.case, plugins=state.plugins)
        return self.result

    def reportinfo(self):
        return self.session.path / f"convspec[{self.backend_name}]", 0, f"convspec[{self.backend_name}]::{self.name}"


_BAD = ("fail", "error", "timeout", "crashed")


class PartItem(pytest.Item):
    """One part (forward, indices, backward) of a conformance case on one backend."""

    def __init__(self, *, part: str, others: tuple, **kw):
        super().__init__(**kw)
        self.part = part
        self.others = others  # the parts that are tests of this case

    def verdict(self, result: dict):
        """This part's verdict; the first part also carries any verdict of a part that is not a test."""
        from .junit import record_verdicts

        v = record_verdicts(result)
        mine = [v[self.part]] if self.part in v else []
        if self.part == self.others[0]:
            mine += [x for p, x in v.items() if p not in self.others]
        order = ("crashed", "timeout", "error", "fail", "invalid", "deviation", "unsupported", "skipped", "pass")
        return min(mine, key=lambda x: order.index(x) if x in order else len(order)) if mine else None

    def runtest(self):
        node = self.parent
        state = self.config.stash[STATE]
        backend = state.registry.backends[node.backend_name]
        if node.backend_name not in state.availability:
            try:
                state.availability[node.backend_name] = backend.availability()
            except Exception as exc:
                state.availability[node.backend_name] = f"availability check raised {exc!r}"
        reason = state.availability[node.backend_name]
        if reason:
            pytest.skip(f"backend {node.backend_name} unavailable: {reason}")
        r = node.evaluate()
        verdict = self.verdict(r)
        self.user_properties.append(("convspec_status", r["status"]))
        self.user_properties.append(("convspec_verdict", verdict or "not checked"))
        xfail, scope = _match(state.xfails, node.case.id, self.part)
        if xfail is not None:
            self._expect(xfail, scope, verdict, r)
        if verdict == "pass":
            return
        if verdict in _BAD:
            raise CaseFailure(failure_report(node.backend_name, r))
        if verdict == "deviation":
            pytest.xfail(f"declared deviation: {r.get('deviation')}")
        from .junit import part_reason

        why = part_reason(r, self.part)
        if verdict == "unsupported":
            pytest.skip(f"unsupported: {why}")
        if verdict == "invalid":
            pytest.skip(r.get("message", "invalid case"))
        pytest.skip(why if why.startswith("not checked") else f"not checked: {why}")

    def _expect(self, pattern, scope: str, verdict, result: dict) -> None:
        """An xfails pattern matched: a failing part is xfailed; a passing one is an XPASS (strict: a
        failure), except that a pattern over the whole case is satisfied by any failing part."""
        reason = f"listed in {pattern.describe()}"
        if verdict in _BAD:
            pytest.xfail(reason)
        if verdict != "pass":
            return  # skipped or a deviation: reported as such
        from .junit import record_verdicts

        if scope == "case" and any(v in _BAD for v in record_verdicts(result).values()):
            return  # the listed case fails, in another part
        self.add_marker(pytest.mark.xfail(strict=pattern.strict, reason=reason))

    def repr_failure(self, excinfo, style=None):
        # our report says it all; a declared deviation (pytest.xfail) needs no traceback either
        if isinstance(excinfo.value, (CaseFailure, pytest.xfail.Exception)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        # a location named like the collector (no file holds the case): skip summaries read "convspec[NAME]:1"
        node = self.parent
        return (
            self.session.path / f"convspec[{node.backend_name}]",
            0,
            f"convspec[{node.backend_name}]::{node.name}::{self.part}",
        )
