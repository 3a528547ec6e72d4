"""The mutation score: run the mutant catalogue through the engine on a profile's cases and record which
case kills which mutant.

A mutant is killed when one of its ops' cases ends fail, error, timeout or crashed on it (an invalid or
unsupported case kills nothing). A mutant runs only the cases of the ops it changes (`Mutant.ops`):
that is all a kill needs, and it keeps the catalogue fast. The score of a profile counts REAL mutants;
an EQUIVALENT mutant that is killed is a false alarm (a correct backend failing); ERROR mutants are
reported apart: they accept what the spec rejects, so only cases the spec rejects, given to the backend,
can kill them.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .. import plancache, plugins
from ..evaluate import evaluate
from ..records import BAD
from ..run import CACHE, Plan, applies, execute
from ..worker import CheckedBackend, apply_violations
from .mutants import EQUIVALENT, ERROR, HOLE_CLASSES, REAL, catalogue
from .plugin import MODULE as PLUGIN


@dataclass
class Score:
    profile: str
    mutants: list  # the mutant classes run
    cases: int = 0  # cases run (over all mutants)
    kills: dict = field(default_factory=lambda: defaultdict(list))  # mutant name -> [case ids that kill it]
    first: dict = field(default_factory=dict)  # mutant name -> the first killing record (message, repro)
    failed: dict = field(default_factory=lambda: defaultdict(set))  # mutant name -> checks its kills failed

    def of_kind(self, kind):
        return [m for m in self.mutants if m.kind == kind]

    def killed(self, kind=REAL) -> list:
        return [m for m in self.of_kind(kind) if self.kills.get(m.name)]

    def survivors(self, kind=REAL) -> list:
        return [m for m in self.of_kind(kind) if not self.kills.get(m.name)]

    def ratio(self, kind=REAL) -> float:
        n = len(self.of_kind(kind))
        return len(self.killed(kind)) / n if n else 1.0

    def generated_kills(self, name) -> list:
        """The cases killing mutant `name` that the generators drew (property, exact, half), not crafted ones."""
        return [cid for cid in self.kills.get(name, []) if cid.split(":", 1)[0] in GENERATED]

    def per_op(self) -> dict:
        """op -> (real mutants of the op killed, real mutants of the op)."""
        out: dict = {}
        for m in self.of_kind(REAL):
            for op in m.ops:
                k, n = out.get(op, (0, 0))
                out[op] = (k + bool(self.kills.get(m.name)), n + 1)
        return out

    def case_kills(self) -> dict:
        """case id -> names of the mutants it kills."""
        out = defaultdict(list)
        for name, ids in self.kills.items():
            for cid in ids:
                out[cid].append(name)
        return out


#: with first_kill: how many more cases each surviving mutant gets per round
ROUNDS = (12, 48, None)


def _in_process(mutant_cls, cases, first_kill):
    """The mutant's case records, evaluated in this process as a worker would (the backend contract checked),
    stopping at the first kill when first_kill."""
    backend = mutant_cls()
    out = []
    for case in cases:
        checked = CheckedBackend(backend)
        with np.errstate(all="ignore"):
            r = apply_violations(evaluate(checked, case, CACHE.get(case)[0], plugins=(PLUGIN,)), checked.violations)
        out.append(r)
        if first_kill and r["status"] in BAD:
            break
    return out


def mutation_score(
    profile="quick",
    *,
    jobs=1,
    seed=0,
    mutants=None,
    ops=None,
    timeout=60.0,
    first_kill=False,
    isolate=True,
    sources=None,
) -> Score:
    """Run `mutants` (default: the whole catalogue) on the profile's cases of their ops (and of `ops`, when
    given, only those). first_kill: stop running a mutant once a case kills it (enough for the score, not for
    the full list of which case kills which mutant). isolate: through the engine's worker processes
    (run.execute: a hang or a crash costs one case); otherwise each mutant's cases are evaluated in one
    process of a pool of `jobs` (the same evaluation and contract checks, without the per-case process
    round trip: several times faster, for mutants known not to hang or crash, i.e. this catalogue).
    sources: only the case sources of these names (e.g. GENERATED)."""
    mutants = list(mutants if mutants is not None else catalogue())
    wanted = set(ops) if ops else None
    mutant_ops = {op for m in mutants for op in m.ops}
    from .. import registry

    run_ops = tuple(op for op in registry.names() if op in mutant_ops and (wanted is None or op in wanted))
    only = sources
    sources = plugins.load((), autoload=False).case_sources
    plan = Plan(
        profile=profile,
        seed=seed,
        ops=run_ops,
        timeout=timeout,
        jobs=jobs,
        sources=sources,
        shrink_seconds=0,
        plugins=(PLUGIN,),
    )
    cases = plancache.plan_cases(plan)  # drawn once per code version, then read from the user cache
    if only is not None:  # filtered here, so that the plan (and its cache entry) stays the whole profile's
        cases = [c for c in cases if c.source in only]
    by_op = defaultdict(list)
    for c in cases:
        by_op[c.op].append(c)
    backends = [m() for m in mutants]
    with np.errstate(all="ignore"):  # NaN, inf and overflowing data are the point of many cases
        for c in cases:  # computed once here, before the workers fork, so that every process shares them
            CACHE.get(c)
    score = Score(profile, mutants)

    todo = {b.name: [c for op in b.ops for c in by_op.get(op, ()) if applies(c, b)] for b in backends}

    def emit(r):
        score.cases += 1
        if r["status"] in BAD:
            score.kills[r["backend"]].append(r["case_id"])
            score.first.setdefault(r["backend"], r)
            score.failed[r["backend"]] |= {c["what"] for c in r.get("checks", []) if c["status"] in BAD}

    if not isolate:
        args = [(type(b), todo[b.name], first_kill) for b in backends]
        if jobs > 1:
            with mp.get_context("fork").Pool(jobs) as pool:
                results = pool.starmap(_in_process, args, chunksize=1)
        else:
            results = [_in_process(*a) for a in args]
        for records in results:
            for r in records:
                emit(r)
        return score
    if not first_kill:
        execute(plan, backends, lambda b: todo[b.name], emit)
        return score
    start = 0
    for size in ROUNDS:
        alive = [b for b in backends if not score.kills.get(b.name) and len(todo[b.name]) > start]
        if not alive:
            break
        stop = None if size is None else start + size
        execute(plan, alive, lambda b: todo[b.name][start:stop], emit)
        if stop is None:
            break
        start = stop
    return score


KIND_TITLES = {REAL: "real", EQUIVALENT: "equivalent (must pass)", ERROR: "error behaviour"}
#: the sources whose cases are drawn, not written: a mutant they kill is caught by a class of cases
GENERATED = ("property", "exact", "half")


def summary_lines(score: Score) -> list:
    real, eq, err = (score.of_kind(k) for k in (REAL, EQUIVALENT, ERROR))
    generated = sum(bool(score.generated_kills(m.name)) for m in real)
    lines = [
        f"profile {score.profile}: {len(score.killed())}/{len(real)} real mutants killed "
        f"({100 * score.ratio():.1f}%; {generated} by generated cases alone); "
        f"equivalent mutants flagged: {len(score.killed(EQUIVALENT))}/{len(eq)}; "
        f"error-behaviour mutants killed: {len(score.killed(ERROR))}/{len(err)} "
        f"(only rejected cases given to the backend can kill them); {score.cases} case runs"
    ]
    return lines


def markdown(scores: list, command: str, *, case_list: bool = True) -> str:
    """reports/mutation.md: the score per profile and per op, every mutant with what kills it, and (case_list)
    which mutants each case kills."""
    out = [
        "# Mutation score of the conformance suite",
        "",
        f"Produced by `{command}`.",
        "",
        "Each mutant is the NumPy backend with one realistic semantic change "
        "(`conformance/selftest/mutants.py`); a mutant is killed when one of its ops' cases fails, "
        "errors, times out or crashes on it.",
        "",
    ]
    out += [
        "## Score per profile",
        "",
        "| profile | real killed | score | killed by generated cases alone | equivalent flagged | "
        "error-behaviour killed |",
        "|---|---|---|---|---|---|",
    ]
    for s in scores:
        generated = sum(bool(s.generated_kills(m.name)) for m in s.of_kind(REAL))
        out.append(
            f"| {s.profile} | {len(s.killed())}/{len(s.of_kind(REAL))} | {100 * s.ratio():.1f}% | "
            f"{generated}/{len(s.of_kind(REAL))} | "
            f"{len(s.killed(EQUIVALENT))}/{len(s.of_kind(EQUIVALENT))} | "
            f"{len(s.killed(ERROR))}/{len(s.of_kind(ERROR))} |"
        )
    out += [
        "",
        "Error-behaviour mutants accept what the spec rejects; only rejected cases given to the backend "
        "(the `errors` source) can kill them.",
        "",
        "## The classes of holes of issue 12",
        "",
        "Mutants that need the cases each class of holes lacked; killed: by any case / by generated "
        "(property, exact, half) cases alone, without the crafted corner and golden cases.",
        "",
        "| class | mutants | " + " | ".join(s.profile for s in scores) + " |",
        "|---|---|" + "---|" * len(scores),
    ]
    for title, names in HOLE_CLASSES.items():
        cells = []
        for s in scores:
            ran = [n for n in names if any(m.name == n for m in s.mutants)]
            cells.append(
                f"{sum(bool(s.kills.get(n)) for n in ran)}/{len(ran)} / "
                f"{sum(bool(s.generated_kills(n)) for n in ran)}/{len(ran)}"
            )
        out.append(f"| {title} | {', '.join(n[4:] for n in names)} | " + " | ".join(cells) + " |")
    out += [
        "",
        "## Score per op (real mutants killed)",
        "",
        "| op | " + " | ".join(s.profile for s in scores) + " |",
        "|---|" + "---|" * len(scores),
    ]
    ops = list(dict.fromkeys(op for s in scores for op in s.per_op()))
    for op in ops:
        cells = []
        for s in scores:
            k, n = s.per_op().get(op, (0, 0))
            cells.append(f"{k}/{n}")
        out.append(f"| {op} | " + " | ".join(cells) + " |")
    heads = " | ".join(f"{s.profile}: cases killing" for s in scores)
    out += [
        "",
        "## Mutants",
        "",
        f"| mutant | kind | ops | change | {heads} |",
        "|---|---|---|---|" + "---|" * len(scores),
    ]
    for m in scores[0].mutants:
        cells = []
        for s in scores:
            ids = s.kills.get(m.name, [])
            cells.append(f"{len(ids)}" + (f" (e.g. `{ids[0]}`)" if ids else ""))
        out.append(f"| {m.name} | {m.kind} | {', '.join(m.ops)} | {m.__doc__.strip()} | " + " | ".join(cells) + " |")
    if case_list:
        for s in scores:
            kills = s.case_kills()
            out += ["", f"## Which mutants each case kills ({s.profile} profile, {len(kills)} killing cases)", ""]
            for cid in sorted(kills):
                out.append(f"- `{cid}`: {', '.join(sorted(kills[cid]))}")
    return "\n".join(out) + "\n"
