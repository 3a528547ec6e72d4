"""The conformance run: plan cases from every source, evaluate them on every backend (in worker
processes, optionally in parallel), shrink property failures, and stream results to a file."""

from __future__ import annotations

import fnmatch
import hashlib
import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from convspec import SpecError
from convspec.api.backend import flushes_subnormals, product_roundoff

from . import registry
from .cases import Case
from .evaluate import reference_result
from .records import BAD, CaseResult, Status, format_exception, last_line, repro
from .sources import as_source, shrinker_of
from .worker import DEFAULT_MEMORY_LIMIT, Worker, die_with_parent

__all__ = ["BAD", "Plan", "applies", "plan_cases", "execute", "run_unit", "ReferenceCache", "failure_signature"]


def failure_signature(rec: dict) -> tuple:
    """(backend, op, check, kind of mismatch) of a bad result: failures with one signature are one
    problem, shown once with a count."""
    status = str(rec["status"])
    bad = [c for c in rec.get("checks", []) if c["status"] not in ("pass", "skipped")]
    check = bad[0]["what"] if bad else "-"
    if status in ("timeout", "crashed"):
        kind = "not run (consecutive timeouts)" if rec.get("not_run") else status
        if "memory" in rec.get("message", "") and "--memory-limit" in rec.get("message", ""):
            kind = "over the memory limit"
    elif bad and bad[0]["status"] == "error" or not bad:
        text = bad[0].get("message", "") if bad else rec.get("message", "")
        if "--memory-limit" in text or "--memory-limit" in rec.get("message", ""):
            kind = "over the memory limit"
        else:
            line = last_line(text)
            kind = "raised " + line.split(":")[0][:60] if line else status
    else:
        c = bad[0]
        msg = c.get("message", "")
        if c.get("mismatch") and "index" in c["mismatch"]:
            kind = "values outside the bound"
        elif msg.startswith("shape"):
            kind = "wrong shape"
        elif msg.startswith("dtype"):
            kind = "wrong dtype"
        elif "in place" in msg:
            kind = "input modified in place"
        elif "not an array" in msg or " returned " in msg:
            kind = "output not an array"
        else:
            kind = (msg.split(":")[0] or c["status"])[:60]
    return (rec.get("backend", "?"), rec["op"], check, kind)


@dataclass
class Plan:
    profile: str = "quick"
    seed: int = 0
    ops: tuple = field(default_factory=registry.names)
    shard: tuple = (1, 1)  # (i, n): run the i-th of n shards
    timeout: float = 60.0
    jobs: int = 1
    only_case: Case | None = None
    sources: dict = field(default_factory=dict)
    plugins: tuple = ()  # -p modules, repeated in every repro command
    lenet_steps: int = 0  # > 0: also run the LeNet-5 training equivalence check for that many steps
    lenet_done: set = field(default_factory=set)  # backends whose LeNet check is already recorded
    shrink_seconds: float = 30.0  # time budget to minimise one failure signature on one backend
    memory_limit: float | None = DEFAULT_MEMORY_LIMIT  # bytes of resident memory a worker may use (None: no limit)
    max_timeouts: int = 3  # consecutive timeouts in one op after which its other cases are not run
    max_examples: int | None = None  # property source: hypothesis examples per op (None: the profile's)
    derandomize: bool = False  # property source: hypothesis derandomize (cases from the case ids alone)
    keywords: tuple = ()  # -k: keep cases whose id contains one of these (or matches it, with * and ?)
    dtypes: tuple = ()  # --dtype: keep cases of these dtypes


#: precision tiers a backend opts into by listing the dtype: others are not asked (nor reported
#: "unsupported") for those cases
OPTIONAL_DTYPES = ("float16", "bfloat16")


def applies(case: Case, backend) -> bool:
    """Whether `case` is asked of `backend` (optional precision tiers only where declared)."""
    return case.dtype not in OPTIONAL_DTYPES or case.dtype in getattr(backend, "dtypes", ())


def plan_cases(plan: Plan) -> list:
    """Every case of every source, in a stable order, filtered to this shard."""
    if plan.only_case is not None:
        return [plan.only_case]
    cases = []
    for name, source in plan.sources.items():
        src = as_source(source)
        options = {k: getattr(plan, k) for k in getattr(src, "options", ()) if getattr(plan, k, None)}
        cases.extend(src.cases(plan.profile, plan.seed, plan.ops, **options))
    if plan.dtypes:
        cases = [c for c in cases if c.dtype in plan.dtypes]
    if plan.keywords:
        cases = [c for c in cases if any(keyword_matches(k, c.id) for k in plan.keywords)]
    i, n = plan.shard
    if n > 1:
        cases = [c for c in cases if int(hashlib.sha1(c.id.encode()).hexdigest(), 16) % n == i - 1]
    return cases


def keyword_matches(pattern: str, case_id: str) -> bool:
    """-k: a substring of the case id, or, with * or ?, a wildcard pattern found anywhere in it (brackets
    match themselves: case ids are full of them)."""
    if "*" not in pattern and "?" not in pattern:
        return pattern in case_id
    glob = pattern.replace("[", "\0").replace("]", "[]]").replace("\0", "[[]")
    return fnmatch.fnmatchcase(case_id, f"*{glob}*")


def _size(c: Case) -> int:
    return sum(int(np.prod(s)) for s in c.shapes.values() if s is not None)


def _shrink(plan: Plan, worker: Worker, case: Case, signature: tuple, seconds: float | None = None) -> dict | None:
    """The minimal configuration hypothesis finds for this op on this backend that fails the same way
    (the same failure_signature: check and kind of mismatch), as a {case_id, case, repro, checks}
    record, or None. Within `seconds` (default plan.shrink_seconds); when the budget runs out, the
    smallest such configuration seen so far."""
    shrink = shrinker_of(plan.sources.get(case.source))
    if shrink is None:
        return None
    deadline = time.monotonic() + (plan.shrink_seconds if seconds is None else seconds)
    memo: dict = {}  # case JSON -> (fails, result): hypothesis must see the same answer twice
    failing: dict = {}

    def fails(c):
        key = c.to_json()
        if key not in memo:
            if time.monotonic() > deadline:
                return False
            r = worker.run(c)
            memo[key] = r["status"] in (Status.FAIL, Status.ERROR) and failure_signature(r)[1:] == signature
            if memo[key]:
                failing[key] = (c, r)
        return memo[key]

    minimal = shrink(case.op, fails, plan.seed)
    if minimal is None or minimal.to_json() not in failing:
        if not failing:
            return None
        minimal = min((c for c, _ in failing.values()), key=lambda c: (_size(c), len(c.to_json())))
    r = failing[minimal.to_json()][1]
    return {
        "case_id": r["case_id"],
        "case": r["case"],
        "repro": repro(worker.backend.name, minimal, plan.plugins),
        "checks": r["checks"],
        "message": r.get("message", ""),
    }


class ReferenceCache:
    """Reference results per case, computed once per process and shared by every backend that
    runs the case after the first (the reference is written to be read, not to be fast)."""

    def __init__(self, size: int = 4096):
        self.size, self.store = size, {}

    def get(self, case: Case, product_roundoff: float = 0.0, flush: bool = False):
        """-> (reference_result or the SpecError it raised, seconds spent computing it now)."""
        key = (case.to_json(), product_roundoff, flush)
        if key in self.store:
            return self.store[key], 0.0
        t = time.perf_counter()
        try:
            ref = reference_result(case, product_roundoff, flush)
        except SpecError as exc:
            ref = exc
        seconds = time.perf_counter() - t
        if len(self.store) >= self.size:
            self.store.pop(next(iter(self.store)))
        self.store[key] = ref
        return ref, seconds


CACHE = ReferenceCache()


def _engine_error(plan: Plan, backend, case: Case, exc: BaseException, status=Status.ERROR, message=None) -> dict:
    """A case the engine itself could not finish (a bug of ours, not the backend's): recorded, and
    the run goes on."""
    return CaseResult(
        case,
        status,
        backend=backend.name,
        plugins=plan.plugins,
        message=message or "convspec engine error:\n" + format_exception(exc),
    ).to_dict()


def run_unit(plan: Plan, backend, cases, emit, lenet: bool = False) -> None:
    """Evaluate `cases` on one backend, calling emit(result) for each. A failing property case gets
    the minimal configuration that fails the same way (shrunk once per failure signature: op, check,
    kind of mismatch). After plan.max_timeouts consecutive timeouts in one op, its remaining cases are
    recorded as not run. lenet: also run the LeNet-5 training equivalence check (plan.lenet_steps
    steps)."""
    worker = Worker(backend, plan.timeout, plan.plugins, plan.memory_limit)
    minimal: dict = {}
    budget: dict = {}  # op -> shrinking seconds left
    streak: dict = {}  # op -> consecutive timeouts
    given_up: dict = {}  # op -> why its remaining cases are not run
    try:
        for case in cases:
            if case.op in given_up:
                emit(
                    CaseResult(
                        case,
                        Status.TIMEOUT,
                        backend=backend.name,
                        plugins=plan.plugins,
                        message=given_up[case.op],
                        extra={"not_run": True},
                    ).to_dict()
                )
                continue
            try:
                reference, ref_seconds = CACHE.get(case, product_roundoff(backend), flushes_subnormals(backend))
                r = worker.run(case, reference)
                r["reference_seconds"] = round(ref_seconds, 6)
                if r["status"] in (Status.FAIL, Status.ERROR) and case.source == "property" and plan.shrink_seconds > 0:
                    sig = failure_signature(r)[1:]
                    if sig not in minimal:  # the op's budget is shared by its kinds of failure
                        left = budget.setdefault(case.op, plan.shrink_seconds)
                        t_shrink = time.monotonic()
                        minimal[sig] = _shrink(plan, worker, case, sig, left) if left > 0 else None
                        budget[case.op] = left - (time.monotonic() - t_shrink)
                    if minimal[sig]:
                        r["minimal"] = minimal[sig]
            except Exception as exc:
                r = _engine_error(plan, backend, case, exc)
            streak[case.op] = streak.get(case.op, 0) + 1 if r["status"] == Status.TIMEOUT else 0
            if plan.max_timeouts and streak[case.op] >= plan.max_timeouts:
                given_up[case.op] = (
                    f"not run: {streak[case.op]} consecutive timeouts in op {case.op} on backend "
                    f"{backend.name} (its remaining cases are skipped; rerun the op alone with a larger "
                    f"--timeout to run them)"
                )
            emit(r)
        if lenet and plan.lenet_steps > 0 and backend.name not in plan.lenet_done:
            emit(worker.run_lenet(steps=plan.lenet_steps, seed=plan.seed, timeout=10 * plan.timeout))
    finally:
        worker.close()


def _child(plan, backend, cases, lenet, queue, k, parent_pid):
    die_with_parent(parent_pid)
    try:
        run_unit(plan, backend, cases, lambda r: queue.put(("result", k, r)), lenet)
    except BaseException:
        queue.put(("unit_error", k, traceback.format_exc()[-4000:]))
    finally:
        queue.put(("done", k))


def execute(plan: Plan, backends: list, cases_for, emit) -> None:
    """Run every backend; with plan.jobs > 1, units (backend x chunk of cases) run in parallel
    processes and their results are emitted here, in arrival order. A unit process that dies leaves
    a "crashed" record for each case it did not finish."""
    units = []
    for b in backends:
        cases = cases_for(b)
        chunks = max(1, min(plan.jobs, len(cases))) if plan.jobs > 1 else 1
        units += [(b, cases[k::chunks], k == 0) for k in range(chunks)]
    if plan.jobs <= 1:
        for b, cases, lenet in units:
            run_unit(plan, b, cases, emit, lenet)
        return
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs: dict = {}
    finished: dict = {}  # unit -> case ids it emitted
    errors: dict = {}  # unit -> traceback of an exception that ended it
    units_exit: dict = {}  # unit -> exit code of a process that died without saying so
    pending = list(enumerate(units))

    def close(k):
        procs.pop(k).join()
        b, cases, _ = units[k]
        why = errors.get(k) or f"exit code {units_exit.get(k)}"
        for case in cases:
            if case.id not in finished[k]:
                emit(
                    _engine_error(
                        plan,
                        b,
                        case,
                        None,
                        Status.CRASHED,
                        f"the process running this part of the run died before this case: {why}",
                    )
                )

    try:
        _loop(plan, ctx, queue, procs, pending, finished, errors, units_exit, close, emit)
    finally:  # Ctrl-C, -x, or an error here: no unit process outlives the run
        for p in procs.values():
            p.kill()
        for p in procs.values():
            p.join(5)


def _loop(plan, ctx, queue, procs, pending, finished, errors, units_exit, close, emit):
    while pending or procs:
        while pending and len(procs) < plan.jobs:
            k, (b, cases, lenet) = pending.pop(0)
            finished[k] = set()
            procs[k] = ctx.Process(target=_child, args=(plan, b, cases, lenet, queue, k, os.getpid()))
            procs[k].start()
        try:
            kind, k, *rest = queue.get(timeout=5)
        except Exception:  # queue.Empty: look for a unit process that died without saying so
            for k, p in list(procs.items()):
                if not p.is_alive() and queue.empty():
                    units_exit[k] = p.exitcode
                    close(k)
            continue
        if kind == "result":
            finished[k].add(rest[0]["case_id"])
            emit(rest[0])
        elif kind == "unit_error":
            errors[k] = rest[0]
        elif kind == "done" and k in procs:
            close(k)
