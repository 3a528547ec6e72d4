"""Running a backend in a child process, so a backend that crashes (segfault, abort, sys.exit) or hangs
costs one case, not the run: the child is killed at the per-case timeout and a fresh one takes over.

The child also guards the run against a backend's side effects: it dies with its parent (never an
orphan), ignores Ctrl-C (the parent stops it), captures what the backend prints to stdout (kept in the
case's "stdout" field), and its resident memory is watched (--memory-limit). Every call of a backend op
goes through a check that the output is an array of the backend's own type and that no input array
was modified in place."""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
import traceback

import numpy as np

from convspec.api.backend import Unsupported

from . import registry
from .cases import Case
from .evaluate import evaluate
from .lenet.check import equivalence_check, lenet_record
from .records import CaseResult, Status, verdicts

#: default per-worker memory limit (resident set size), bytes
DEFAULT_MEMORY_LIMIT = 8 * 2**30
#: how much of a backend's stdout a case record keeps
STDOUT_LIMIT = 10_000
_POLL = 0.2  # seconds between memory checks while a case runs


def die_with_parent(parent_pid: int) -> None:
    """In a forked child: get SIGKILL when the parent dies (Linux), exit now if it is already gone, and
    leave Ctrl-C to the parent (which stops its children itself, without their tracebacks)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except Exception:
            pass
    if os.getppid() != parent_pid:
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def rss_bytes(pid: int) -> int | None:
    """The memory process `pid` holds of its own: its private resident pages (what a forked worker
    shares with its parent, until either writes it, does not count), or None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            total = 0
            for line in f:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1]) * 1024
            return total
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def fmt_bytes(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


# -- the backend contract, checked on every call --------------------------------------------------------


class ContractViolation(Exception):
    """A backend op broke the contract: its output is not an array of the backend's type, or it
    modified an input in place."""


def _op_inputs() -> dict:
    """Every op method name -> (the names of its positional array arguments, whether it returns a
    sequence of outputs: a backward's gradients, or a forward with several outputs)."""
    out = {}
    for info in registry.OPS.values():
        arrays = tuple(info.arrays)
        out[info.name] = (arrays, bool(getattr(info, "outputs", ())))
        out[info.backward_name] = (("grad_out",) + arrays, True)
        if info.index_op:
            out[info.index_op] = (arrays, False)
    return out


def _flat(args, names):
    """(label, array) for every array argument, the elements of a sequence argument (variadic input) too."""
    for i, a in enumerate(args):
        label = names[i] if i < len(names) else f"argument {i}"
        if isinstance(a, (list, tuple)):
            for k, x in enumerate(a):
                if x is not None:
                    yield f"{label}[{k}]", x
        elif a is not None and not isinstance(a, (int, float, str)):
            yield label, a


class CheckedBackend:
    """The backend, with every op call checked (see ContractViolation); violations are kept in order."""

    def __init__(self, backend):
        self._backend = backend
        self._ops = _op_inputs()
        self.violations: list = []

    def __getattr__(self, name):
        attr = getattr(self._backend, name)
        if name in self._ops and callable(attr):
            return self._checked(name, attr)
        return attr

    def _snapshot(self, a):
        try:
            return np.ascontiguousarray(self._backend.to_numpy(a)).tobytes()
        except Exception:
            return None

    def _checked(self, name, fn):
        names, several = self._ops[name]

        def call(*args, **params):
            arrays = list(_flat(args, names))
            # the backend's array type: that of its inputs (a 0-d NumPy input may be a NumPy scalar)
            typed = [a for _, a in arrays if not isinstance(a, np.generic)] or [a for _, a in arrays]
            kind = type(typed[0]) if typed else None
            before = [(label, a, self._snapshot(a)) for label, a in arrays]
            out = fn(*args, **params)
            for label, a, snap in before:
                if snap is not None and self._snapshot(a) != snap:
                    self._violate(f"{name} modified its input {label} in place (inputs must be left unchanged)")
            if several and not isinstance(out, (tuple, list)):
                self._violate(f"{name} returned {_type_name(out)}, not a sequence of arrays")
            outs = out if several else (out,)
            for k, o in enumerate(outs):
                if o is None and name.endswith("_backward"):
                    continue  # an absent bias's gradient
                if kind is not None and not _is_array(o, kind):
                    what = f"output {k} of {name}" if several else name
                    self._violate(
                        f"{what} returned {_type_name(o)}, not an array of the backend's type "
                        f"({_type_name(typed[0])}, what from_numpy gives)"
                    )
            return out

        return call

    def _violate(self, message):
        self.violations.append(message)
        raise ContractViolation(message)


def _is_array(o, kind) -> bool:
    if isinstance(o, kind):
        return True
    # NumPy: an array or a NumPy scalar (what a reduction gives), whichever the inputs were
    return issubclass(kind, (np.ndarray, np.generic)) and isinstance(o, (np.ndarray, np.generic))


def _type_name(o) -> str:
    t = type(o)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def apply_violations(r: dict, violations: list) -> dict:
    """The case record with contract violations reported as such: a failed check (not a backend error
    with a traceback) whose message says what the backend did."""
    if not violations:
        return r
    if not r.get("checks") and r["status"] == "error":  # the forward call itself broke the contract
        r["checks"] = [{"what": "forward", "status": "fail", "message": violations[0]}]
    for c in r.get("checks", []):
        if c["status"] == "error" and "ContractViolation" in c.get("message", ""):
            c["status"] = "fail"
            c["message"] = next((v for v in violations if v in c["message"]), violations[0])
    statuses = {c["status"] for c in r.get("checks", [])}
    if r["status"] in ("error", "pass") and "error" not in statuses:
        r["status"] = str(Status.FAIL)
    r["message"] = "; ".join(dict.fromkeys(violations))
    r["verdicts"] = verdicts(r["status"], r.get("checks", []))
    return r


# -- the child ----------------------------------------------------------------------------------------


class _Capture:
    """Redirects file descriptor 1 (C and Python writes alike) into a temporary file around a call."""

    def __init__(self):
        self.file = tempfile.TemporaryFile()
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)

    def __call__(self, fn):
        sys.stdout.flush()
        self.file.seek(0)
        self.file.truncate()
        saved = os.dup(1)
        os.dup2(self.file.fileno(), 1)
        try:
            result = fn()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        self.file.seek(0)
        text = self.file.read(STDOUT_LIMIT + 1).decode("utf-8", "replace")
        if len(text) > STDOUT_LIMIT:
            text = text[:STDOUT_LIMIT] + "\n[... truncated]"
        return result, text


def _serve(conn, backend, plugins, parent_pid):
    die_with_parent(parent_pid)
    capture = _Capture()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        try:
            if msg[0] == "lenet":  # the short LeNet-5 training equivalence check of the full profile
                result, out = capture(lambda: equivalence_check(backend, **msg[1]))
            else:
                case_json, reference = msg
                checked = CheckedBackend(backend)
                result, out = capture(lambda: evaluate(checked, Case.from_json(case_json), reference, plugins=plugins))
                result = apply_violations(result, checked.violations)
            if out:
                result["stdout"] = out
            conn.send(("ok", result))
        except Exception:
            conn.send(("engine_error", traceback.format_exc()[-4000:]))


class Worker:
    """A forked child that evaluates cases for one backend. Fork keeps backends a test registered
    in-process (not importable by name) usable in the child."""

    def __init__(self, backend, timeout: float, plugins=(), memory_limit: float | None = DEFAULT_MEMORY_LIMIT):
        self.backend, self.timeout, self.plugins = backend, timeout, tuple(plugins)
        self.memory_limit = memory_limit
        self._ctx = mp.get_context("fork")
        self.proc = None
        self.conn = None

    def _start(self):
        parent, child = self._ctx.Pipe()
        self.proc = self._ctx.Process(target=_serve, args=(child, self.backend, self.plugins, os.getpid()), daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent

    def run(self, case: Case, reference=None) -> dict:
        """The result of `case` (with the precomputed reference_result, if given)."""

        def failure(status, msg, t0):
            return CaseResult(
                case,
                status,
                backend=self.backend.name,
                plugins=self.plugins,
                message=msg,
                seconds=time.perf_counter() - t0,
            ).to_dict()

        return self._ask((case.to_json(), reference), self.timeout, failure)

    def run_lenet(self, *, steps: int, seed: int, timeout: float) -> dict:
        """The LeNet-5 equivalence check's case record (computed in the child, so a GPU backend
        initialises its device there and never in the parent)."""

        def failure(status, msg, t0):
            return lenet_record(
                self.backend, steps=steps, seed=seed, status=status, message=msg, seconds=time.perf_counter() - t0
            )

        return self._ask(("lenet", {"steps": steps, "seed": seed}), timeout, failure)

    def _over_memory(self) -> int | None:
        if not self.memory_limit or self.proc is None:
            return None
        rss = rss_bytes(self.proc.pid)
        return rss if rss is not None and rss > self.memory_limit else None

    def _memory_message(self, rss) -> str:
        return (
            f"the backend's worker process used {fmt_bytes(rss)} of memory, over the limit of "
            f"{fmt_bytes(self.memory_limit)} (--memory-limit): it was stopped and a fresh one started"
        )

    def _ask(self, msg, timeout, failure) -> dict:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        try:
            self.conn.send(msg)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    return failure(Status.TIMEOUT, f"no result within the timeout of {timeout:g} s", t0)
                if self.conn.poll(min(_POLL, left)):
                    kind, payload = self.conn.recv()
                    break
                rss = self._over_memory()
                if rss is not None:
                    self.kill()
                    return failure(Status.CRASHED, self._memory_message(rss), t0)
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = None
            if self.proc is not None:
                self.proc.join(2)  # reap it, so the exit code (or killing signal) is known
                code = self.proc.exitcode
            self.kill()
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            return failure(Status.CRASHED, f"the backend process died ({how})", t0)
        if kind == "engine_error":  # our bug, not the backend's
            return failure(Status.ERROR, "convspec engine error (not the backend's fault):\n" + payload, t0)
        rss = self._over_memory()
        if rss is not None:  # the case finished, but the worker grew past the limit
            self.kill()
            payload["status"] = str(Status.ERROR)
            before = payload.get("message", "")
            payload["message"] = (before + "\n" if before else "") + self._memory_message(rss)
            payload["verdicts"] = verdicts(payload["status"], payload.get("checks", []))
        return payload

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


# -- any function of a backend, isolated (convspec train; availability checks) --------------------------


def _isolated_child(conn, fn, args, parent_pid, capture):
    die_with_parent(parent_pid)
    cap = _Capture() if capture else None
    try:

        def send(message):
            conn.send(("message", message))

        if cap is not None:
            result, out = cap(lambda: fn(*args, send=send))
        else:
            result, out = fn(*args, send=send), ""
        conn.send(("ok", (result, out)))
    except Unsupported as exc:
        conn.send(("unsupported", str(exc) or "unsupported"))
    except SystemExit as exc:
        conn.send(("crashed", f"the backend called sys.exit({exc.code!r})"))
    except BaseException:
        conn.send(("error", traceback.format_exc()[-4000:]))
    finally:
        conn.close()


class Isolated:
    """fn(*args, send=...) running in a forked child that dies with this process (see run_isolated)."""

    def __init__(self, fn, args, *, capture: bool = False, memory_limit: float | None = None):
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.memory_limit = memory_limit
        # not a daemon: the job may start processes of its own (cupy's availability probes CUDA in a child);
        # it dies with this process all the same (die_with_parent), and wait() always reaps it
        self.proc = ctx.Process(target=_isolated_child, args=(child, fn, args, os.getpid(), capture), daemon=False)
        self.proc.start()
        child.close()

    def wait(self, deadline: float, timeout: float, on_message=None) -> tuple:
        """-> (kind, payload) by time.monotonic() deadline; the child is gone afterwards."""
        try:
            while True:
                left = deadline - time.monotonic()
                if self.conn.poll(max(0.0, min(_POLL, left))):  # one last look once the time is up
                    kind, payload = self.conn.recv()
                    if kind == "message":
                        if on_message is not None:
                            on_message(payload)
                        continue
                    return kind, payload
                if left <= 0:
                    return "timeout", f"no result within the timeout of {timeout:g} s"
                if self.memory_limit:
                    rss = rss_bytes(self.proc.pid)
                    if rss is not None and rss > self.memory_limit:
                        return "crashed", (
                            f"used {fmt_bytes(rss)} of memory, over the limit of {fmt_bytes(self.memory_limit)}"
                        )
        except (EOFError, ConnectionResetError, BrokenPipeError):
            self.proc.join(2)
            code = self.proc.exitcode
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            return "crashed", f"the process died ({how})"
        finally:
            self.stop()

    def stop(self):
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def run_isolated(
    fn, args, timeout: float, on_message=None, *, capture: bool = False, memory_limit: float | None = None
) -> tuple:
    """fn(*args, send=...) in a forked child that dies with this process. -> (kind, payload):
    ("ok", (result, captured stdout)), ("unsupported", reason), ("error", traceback), ("timeout", message)
    or ("crashed", message). send(message) in the child calls on_message(message) here."""
    job = Isolated(fn, args, capture=capture, memory_limit=memory_limit)
    return job.wait(time.monotonic() + timeout, timeout, on_message)
