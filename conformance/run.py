"""The conformance run: plan cases from every source, evaluate them on every backend (in worker
processes, optionally in parallel), shrink property failures, and stream results to a file."""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import time
from dataclasses import dataclass, field

from convspec import SpecError
from convspec import reference as R

from .cases import Case
from .evaluate import reference_result, repro
from .worker import Worker

BAD = ("fail", "error", "timeout", "crashed")


@dataclass
class Plan:
    profile: str = "quick"
    seed: int = 0
    ops: tuple = tuple(R.OPS)
    shard: tuple = (1, 1)  # (i, n): run the i-th of n shards
    timeout: float = 60.0
    jobs: int = 1
    only_case: Case | None = None
    sources: dict = field(default_factory=dict)
    plugins: tuple = ()  # -p modules, repeated in every repro command
    lenet_steps: int = 0  # > 0: also run the LeNet-5 training equivalence check for that many steps
    shrink_seconds: float = 30.0  # time budget to minimise one failing op on one backend


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
        cases.extend(source(plan.profile, plan.seed, plan.ops))
    i, n = plan.shard
    if n > 1:
        cases = [c for c in cases if int(hashlib.sha1(c.id.encode()).hexdigest(), 16) % n == i - 1]
    return cases


def _shrink(plan: Plan, worker: Worker, case: Case) -> dict | None:
    """The minimal failing configuration hypothesis finds for this op on this backend, as a
    {case_id, case, repro, checks} record, or None."""
    shrink = getattr(plan.sources.get(case.source), "shrink", None)
    if shrink is None:
        return None
    deadline = time.monotonic() + plan.shrink_seconds
    seen = {}

    def fails(c):
        if time.monotonic() > deadline:
            return False
        r = worker.run(c)
        if r["status"] in ("fail", "error"):
            seen[c.to_json()] = r
            return True
        return False

    minimal = shrink(case.op, fails, plan.seed)
    r = None if minimal is None else seen.get(minimal.to_json())
    if r is None:
        return None
    return {"case_id": r["case_id"], "case": r["case"], "repro": repro(worker.backend.name, minimal, plan.plugins), "checks": r["checks"], "message": r.get("message", "")}


class ReferenceCache:
    """Reference results per case, computed once per process and shared by every backend that
    runs the case after the first (the reference is written to be read, not to be fast)."""

    def __init__(self, size: int = 4096):
        self.size, self.store = size, {}

    def get(self, case: Case):
        """-> (reference_result or the SpecError it raised, seconds spent computing it now)."""
        key = case.to_json()
        if key in self.store:
            return self.store[key], 0.0
        t = time.perf_counter()
        try:
            ref = reference_result(case)
        except SpecError as exc:
            ref = exc
        seconds = time.perf_counter() - t
        if len(self.store) >= self.size:
            self.store.pop(next(iter(self.store)))
        self.store[key] = ref
        return ref, seconds


CACHE = ReferenceCache()


def run_unit(plan: Plan, backend, cases, emit, lenet: bool = False) -> None:
    """Evaluate `cases` on one backend, calling emit(result) for each. A failing property case gets
    the minimal failing configuration of its op (shrunk once per op and backend). lenet: also run the
    LeNet-5 training equivalence check (plan.lenet_steps steps)."""
    worker = Worker(backend, plan.timeout)
    minimal: dict = {}
    try:
        for case in cases:
            reference, ref_seconds = CACHE.get(case)
            r = worker.run(case, reference)
            r["reference_seconds"] = round(ref_seconds, 6)
            if r["status"] in ("fail", "error") and case.source == "property" and plan.shrink_seconds > 0:
                if case.op not in minimal:
                    minimal[case.op] = _shrink(plan, worker, case)
                if minimal[case.op]:
                    r["minimal"] = minimal[case.op]
            r["backend"] = backend.name
            r["record"] = "case"
            if plan.plugins:
                r["repro"] = repro(backend.name, case, plan.plugins)
            emit(r)
        if lenet and plan.lenet_steps > 0:
            r = worker.run_lenet(steps=plan.lenet_steps, seed=plan.seed, timeout=10 * plan.timeout)
            r["backend"], r["record"] = backend.name, "case"
            emit(r)
    finally:
        worker.close()


def _child(plan, backend, cases, lenet, queue, k):
    try:
        run_unit(plan, backend, cases, queue.put, lenet)
    finally:
        queue.put(("done", k))


def execute(plan: Plan, backends: list, cases_for, emit) -> None:
    """Run every backend; with plan.jobs > 1, units (backend x chunk of cases) run in parallel
    processes and their results are emitted here, in arrival order."""
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
    pending = list(enumerate(units))
    while pending or procs:
        while pending and len(procs) < plan.jobs:
            k, (b, cases, lenet) = pending.pop(0)
            procs[k] = ctx.Process(target=_child, args=(plan, b, cases, lenet, queue, k))
            procs[k].start()
        try:
            item = queue.get(timeout=5)
        except Exception:  # queue.Empty: look for a unit process that died without saying so
            for k, p in list(procs.items()):
                if not p.is_alive() and queue.empty():
                    p.join()
                    del procs[k]
            continue
        if isinstance(item, tuple):
            procs.pop(item[1]).join()
            continue
        emit(item)
