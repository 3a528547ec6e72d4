"""Running a backend in a child process, so a backend that crashes (segfault, abort) or hangs costs one
case, not the run: the child is killed at the per-case timeout and a fresh one takes over."""
from __future__ import annotations

import multiprocessing as mp
import time

from .cases import Case
from .evaluate import evaluate
from .lenet.check import equivalence_check, lenet_record
from .records import CaseResult


def _serve(conn, backend, plugins):
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        if msg[0] == "lenet":  # the short LeNet-5 training equivalence check of the full profile
            conn.send(equivalence_check(backend, **msg[1]))
            continue
        case_json, reference = msg
        conn.send(evaluate(backend, Case.from_json(case_json), reference, plugins=plugins))


class Worker:
    """A forked child that evaluates cases for one backend. Fork keeps backends a test registered
    in-process (not importable by name) usable in the child."""

    def __init__(self, backend, timeout: float, plugins=()):
        self.backend, self.timeout, self.plugins = backend, timeout, tuple(plugins)
        self._ctx = mp.get_context("fork")
        self.proc = None
        self.conn = None

    def _start(self):
        parent, child = self._ctx.Pipe()
        self.proc = self._ctx.Process(target=_serve, args=(child, self.backend, self.plugins), daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent

    def run(self, case: Case, reference=None) -> dict:
        """The result of `case` (with the precomputed reference_result, if given)."""
        def failure(status, msg, t0):
            return CaseResult(case, status, backend=self.backend.name, plugins=self.plugins, message=msg,
                              seconds=time.perf_counter() - t0).to_dict()

        return self._ask((case.to_json(), reference), self.timeout, failure)

    def run_lenet(self, *, steps: int, seed: int, timeout: float) -> dict:
        """The LeNet-5 equivalence check's case record (computed in the child, so a GPU backend
        initialises its device there and never in the parent)."""

        def failure(status, msg, t0):
            return lenet_record(self.backend, steps=steps, seed=seed, status=status, message=msg,
                                seconds=time.perf_counter() - t0)

        return self._ask(("lenet", {"steps": steps, "seed": seed}), timeout, failure)

    def _ask(self, msg, timeout, failure) -> dict:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        t0 = time.perf_counter()
        try:
            self.conn.send(msg)
            if self.conn.poll(timeout):
                return self.conn.recv()
            self.kill()
            return failure("timeout", f"no result within the timeout of {timeout:g} s", t0)
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            code = None
            if self.proc is not None:
                self.proc.join(2)  # reap it, so the exit code (or killing signal) is known
                code = self.proc.exitcode
            self.kill()
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            return failure("crashed", f"the backend process died ({how})", t0)

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.join(5)
        self.proc = None

    def close(self):
        if self.proc is not None and self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(2)
        self.kill()
