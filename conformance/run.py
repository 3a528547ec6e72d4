"""The conformance run: plan cases from every source, evaluate them on every backend (in worker
processes, optionally in parallel), shrink property failures, and stream results to a file."""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import time
from dataclasses import dataclass, field

from convspec import reference as R

from .cases import Case
from .worker import Worker

BAD = ("fail", "error", "timeout", "crashed")
SHRINK_SECONDS = 30.0


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


def _shrink(plan: Plan, worker: Worker, backend, result: dict, case: Case) -> dict:
    """Minimise a failing property case with hypothesis; the minimal case's result replaces it."""
    source = plan.sources.get(case.source)
    shrink = getattr(source, "shrink", None)
    if shrink is None:
        return result
    deadline = time.monotonic() + SHRINK_SECONDS
    last = {}

    def fails(c):
        if time.monotonic() > deadline:
            return False
        r = worker.run(c)
        if r["status"] in ("fail", "error"):
            last[c.to_json()] = r
            return True
        return False

    minimal = shrink(case.op, fails, plan.seed)
    if minimal is None or minimal.to_json() not in last:
        return result
    small = last[minimal.to_json()]
    small["found_as"] = result["case_id"]
    return small


def run_unit(plan: Plan, backend, cases, emit) -> None:
    """Evaluate `cases` on one backend, calling emit(result) for each."""
    worker = Worker(backend, plan.timeout)
    try:
        for case in cases:
            r = worker.run(case)
            if r["status"] in ("fail", "error") and case.source == "property":
                r = _shrink(plan, worker, backend, r, case)
            r["backend"] = backend.name
            r["record"] = "case"
            emit(r)
    finally:
        worker.close()


def _child(plan, backend, cases, queue, k):
    try:
        run_unit(plan, backend, cases, queue.put)
    finally:
        queue.put(("done", k))


def execute(plan: Plan, backends: list, cases_for, emit) -> None:
    """Run every backend; with plan.jobs > 1, units (backend x chunk of cases) run in parallel
    processes and their results are emitted here, in arrival order."""
    units = []
    for b in backends:
        cases = cases_for(b)
        chunks = max(1, min(plan.jobs, len(cases))) if plan.jobs > 1 else 1
        units += [(b, cases[k::chunks]) for k in range(chunks)]
    if plan.jobs <= 1:
        for b, cases in units:
            run_unit(plan, b, cases, emit)
        return
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs: dict = {}
    pending = list(enumerate(units))
    while pending or procs:
        while pending and len(procs) < plan.jobs:
            k, (b, cases) = pending.pop(0)
            procs[k] = ctx.Process(target=_child, args=(plan, b, cases, queue, k))
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
