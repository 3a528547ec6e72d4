"""The peak extra memory of one conv call, measured the same way for every CPU backend: from the kernel's
resident-set accounting, in a forked child per (layer, backend, pass).

The method (:func:`peak_extra_rss_record`), in the child:

1. make the inputs (seeded, converted with the backend's ``from_numpy``) and run the call once untimed
   (warm-up: pool and OpenMP threads started, library code pages mapped, per-thread BLAS buffers and lazily
   built kernels in place); drop its results, call the backend's ``release_memory()`` where it has one (the
   NumPy kernels' scratch cache: its buffers are then allocated, and counted, inside the call), and return
   the allocator's free memory to the kernel (glibc ``malloc_trim(0)``), so that the measured call cannot
   reuse pages that are resident already and would not be counted;
2. write "5" to ``/proc/self/clear_refs`` (Linux >= 4.0): the peak-RSS mark VmHWM is reset to the current
   RSS; read VmRSS from ``/proc/self/status``, run the call and the backend's ``synchronize()``, read VmHWM;
3. extra = VmHWM - VmRSS before - the bytes of the arrays the call returns (what the caller keeps): the peak
   of the call's temporaries (column matrices, padded copies, autograd's saved tensors, workspaces).

Why this method. tracemalloc (timing.peak_extra, the bench's method before, for NumPy only) sees only what
is allocated through Python's and NumPy's allocator hooks; torch, oneDNN, OpenBLAS and other C++ libraries
call malloc directly and are invisible to it: a 64 MiB torch tensor made inside the measured call is ~0
to tracemalloc and 64 MiB here (tests/test_bench.py). The kernel's RSS counts every page the process
touches, whoever allocated it, so NumPy and torch are measured by one rule and their figures compare.
For NumPy both methods are recorded; they count the same buffers and agree to a few MiB at most (the
report prints the largest difference): RSS counts whole pages (2 MiB ones where NumPy asks for transparent
huge pages) and also what the call's threads allocate outside NumPy. torch.profiler's memory view was the
alternative for torch, but it sees only what goes through torch's allocator (not a BLAS's own buffers, not
NumPy's), and two methods would need a proof that they count alike; one kernel counter needs none. What
RSS does not see: memory allocated and never touched (it costs no RAM either), and buffers a library keeps
between calls (resident before the call; the NumPy backend's ``release_memory()`` drops its own, torch's
CPU allocator caches none).

Why a fork server. Each measurement is a fresh fork, so the forward's freed pages cannot serve the
backward and the timing process is never touched. But GNU OpenMP (torch's intra-op threads) is not
fork-safe: a child forked from a process whose OpenMP team has run waits forever at its first parallel
region's barrier for threads that do not exist in it. So the children are forked from a server
(:class:`MemoryServer`): a fresh interpreter (``python -c``, talking over two pipes), which unpickles the
request (the backend object, the layer, the batch, dtype and seed: :class:`LayerCall`) but never runs a
kernel itself; each child is the first to run one. Each measurement has a timeout; a child that dies or
times out, a backend that cannot be pickled, and a machine without fork, ``/proc/self/clear_refs`` or
VmHWM (not Linux, Linux < 4.0, a restricted /proc) give a reason instead of a figure (:class:`Unavailable`).
GPU backends' device memory is not in the RSS and is not measured.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time

CLEAR_REFS = "/proc/self/clear_refs"
STATUS = "/proc/self/status"
METHOD = "rss"  # what the bench records as the method of its peak_extra_bytes
TIMEOUT = 600.0  # seconds a measuring child may take (inputs, warm-up and the measured call)


class Unavailable(RuntimeError):
    """The peak could not be measured; the message says why."""


def _status(*fields) -> dict:
    """Fields of /proc/self/status, in bytes (the file gives kB)."""
    out = {}
    with open(STATUS) as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in fields:
                out[key] = int(line.split()[1]) * 1024
    return out


def rss_unavailable() -> str | None:
    """Why this machine cannot measure the RSS peak, or None when it can."""
    if not hasattr(os, "fork"):
        return "no os.fork on this platform: peak memory not measured"
    try:
        have = _status("VmHWM", "VmRSS")
    except OSError:
        return f"no {STATUS} (not Linux): peak memory not measured"
    if set(have) != {"VmHWM", "VmRSS"}:
        return f"{STATUS} has no VmHWM / VmRSS: peak memory not measured"
    if not os.access(CLEAR_REFS, os.W_OK):
        return f"{CLEAR_REFS} is missing or not writable (Linux >= 4.0 needed): peak memory not measured"
    return None


def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def result_bytes(out) -> int:
    """Bytes of the arrays a call returned (a tuple or list of them, one, or None)."""
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return sum(int(getattr(o, "nbytes", 0) or 0) for o in outs if o is not None)


def _in_child(setup, warmup: int) -> dict:
    """The measurement, in the forked child (module docstring, steps 1-3)."""
    gc.disable()  # no collection inside the measured call
    fn, backend = setup()
    sync = getattr(backend, "synchronize", None) or (lambda: None)
    for _ in range(warmup):
        fn()
        sync()
    release = getattr(backend, "release_memory", None)
    if callable(release):
        release()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    with open(CLEAR_REFS, "w") as f:
        f.write("5")
    before = _status("VmRSS")["VmRSS"]
    out = fn()
    sync()
    hwm = _status("VmHWM")["VmHWM"]
    return {"peak": hwm - before, "results": result_bytes(out), "rss_before": before, "trimmed": trim is not None}


def peak_extra_rss_record(setup, *, warmup: int = 1, timeout: float = TIMEOUT) -> dict:
    """Fork, and in the child measure the call that setup() returns as (fn, backend): -> {"peak": bytes the
    RSS rose above its level before the call, "results": bytes of the arrays fn returned, "rss_before",
    "trimmed"}. Raises Unavailable with the reason (rss_unavailable(), setup or the call raised, the child
    died or took longer than `timeout` s). Fork only from a process whose OpenMP has not run (MemoryServer)."""
    reason = rss_unavailable()
    if reason:
        raise Unavailable(reason)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        code = 0
        try:
            os.close(r)
            try:
                msg = _in_child(setup, warmup)
            except BaseException as exc:  # noqa: BLE001  (reported to the parent)
                msg = {"error": f"{type(exc).__name__}: {exc}"}
            os.write(w, json.dumps(msg).encode())
            os.close(w)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise Unavailable(f"the measuring child took longer than {timeout:.0f} s: killed")
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    if not chunks:
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
        raise Unavailable(f"the measuring child died ({how}; out of memory?)")
    msg = json.loads(b"".join(chunks))
    if "error" in msg:
        raise Unavailable(f"the call failed in the measuring child: {msg['error']}")
    return msg


def extra(rec: dict) -> int:
    """The peak extra bytes of a peak_extra_rss_record: the peak less the returned arrays, never below 0."""
    return max(rec["peak"] - rec["results"], 0)


# --------------------------------------------------------------------------------------- what a child runs
class LayerCall:
    """setup for one conv layer's forward or backward on a backend: the seeded inputs made in the child
    (suites.layer_inputs, converted with from_numpy) and the threads set as the bench has them."""

    def __init__(self, backend, layer, batch: int, seed: int, dtype: str, phase: str, threads: int | None = None):
        if phase not in ("forward", "backward"):
            raise ValueError(f"phase must be 'forward' or 'backward', got {phase!r}")
        self.backend, self.layer, self.batch, self.seed, self.dtype = backend, layer, batch, seed, dtype
        self.phase, self.threads = phase, threads

    def __call__(self):
        from .suites import layer_inputs
        from .timing import set_threads

        if self.threads:
            set_threads(self.threads)
        bk, p = self.backend, self.layer.params()
        x, w, b, g = (bk.from_numpy(a) for a in layer_inputs(self.layer, self.batch, self.seed, self.dtype))
        if self.phase == "forward":
            return (lambda: bk.conv(x, w, b, **p)), bk
        return (lambda: bk.conv_backward(g, x, w, b, **p)), bk


class Alloc:
    """setup for a calibration call: make and fill an array of `nbytes` with `lib` ("numpy" or "torch") and
    drop it, returning nothing: the measured extra should be `nbytes` (tests, and the bench's check line)."""

    def __init__(self, lib: str, nbytes: int):
        self.lib, self.nbytes = lib, nbytes

    def __call__(self):
        if self.lib == "torch":
            import torch

            def fill():
                torch.ones(self.nbytes // 4, dtype=torch.float32).sum()  # made, touched, dropped

        else:
            import numpy as np

            def fill():
                np.ones(self.nbytes // 8).sum()

        return fill, None


class Noop:
    """setup for a call that allocates nothing: the measured extra should be ~0."""

    def __call__(self):
        return (lambda: None), None


# --------------------------------------------------------------------------------------- the fork server
def _send(fd: int, obj) -> None:
    data = pickle.dumps(obj)
    view = memoryview(struct.pack("<Q", len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _recv(fd: int, timeout: float | None = None):
    """One message from `fd`; EOFError at the end, TimeoutError when none starts within `timeout` s."""
    if timeout is not None and not select.select([fd], [], [], timeout)[0]:
        raise TimeoutError
    head = _read(fd, 8)
    return pickle.loads(_read(fd, struct.unpack("<Q", head)[0]))


def _read(fd: int, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def serve(req_fd: int, rep_fd: int) -> None:
    """The server's loop (MemoryServer starts it in a fresh interpreter). The first message is the parent's
    sys.path (so that the backends' classes unpickle) and the modules to import up front; then requests
    (setup, warmup, timeout) -> replies {"record": ...} or {"unavailable": reason}; None or the pipe's end
    stops it. It never runs a kernel itself."""
    sys.path[:], preload = _recv(req_fd)
    for name in preload:  # imported once here, not in every child (importing runs no kernel)
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  (the child will say what fails)
            pass
    while True:
        try:
            req = _recv(req_fd)
        except EOFError:
            return
        if req is None:
            return
        try:
            setup, warmup, timeout = pickle.loads(req)
            reply = {"record": peak_extra_rss_record(setup, warmup=warmup, timeout=timeout)}
        except Unavailable as exc:
            reply = {"unavailable": str(exc)}
        except Exception as exc:  # noqa: BLE001  (a bad request must not end the server)
            reply = {"unavailable": f"{type(exc).__name__}: {exc}"}
        _send(rep_fd, reply)


# imported by the server when the parent has them: the children then start with them loaded
PRELOAD = ("numpy", "threadpoolctl", "torch", "convspec.conformance.bench.suites")


class MemoryServer:
    """A fresh interpreter that forks one measuring child per request (module docstring). A context manager;
    measure(setup) -> the record, or raises Unavailable. Where the machine cannot measure, no process is
    started and every measure() raises with the reason."""

    def __init__(self, timeout: float = TIMEOUT):
        self.timeout = timeout
        self.reason = rss_unavailable()
        self.proc = None

    def __enter__(self):
        if self.reason is None:
            req_r, self._req = os.pipe()
            self._rep, rep_w = os.pipe()
            code = f"from convspec.conformance.bench.memory import serve; serve({req_r}, {rep_w})"
            try:
                self.proc = subprocess.Popen(
                    [sys.executable, "-c", code], pass_fds=(req_r, rep_w), stdin=subprocess.DEVNULL
                )
            finally:
                os.close(req_r)
                os.close(rep_w)
            preload = [m for m in PRELOAD if m in sys.modules]
            _send(self._req, (list(sys.path), preload))
        return self

    def measure(self, setup, warmup: int = 1) -> dict:
        if self.reason:
            raise Unavailable(self.reason)
        if self.proc is None:
            raise RuntimeError("MemoryServer.measure outside its `with` block")
        try:
            request = pickle.dumps((setup, warmup, self.timeout))
        except Exception as exc:  # noqa: BLE001  (what cannot be pickled cannot be measured this way)
            raise Unavailable(
                f"the call cannot be sent to the measuring process ({type(exc).__name__}: {exc})"
            ) from None
        try:
            _send(self._req, request)
            reply = _recv(self._rep, self.timeout + 60)
        except TimeoutError:
            self._fail("the measuring process stopped answering")
        except (EOFError, OSError) as exc:
            self._fail(f"the measuring process ended ({type(exc).__name__})")
        if "unavailable" in reply:
            raise Unavailable(reply["unavailable"])
        return reply["record"]

    def _fail(self, reason: str):
        self.reason = reason
        self._stop()
        raise Unavailable(reason)

    def _stop(self):
        if self.proc is None:
            return
        try:
            _send(self._req, None)
        except OSError:
            pass
        os.close(self._req)
        os.close(self._rep)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def __exit__(self, *exc):
        self._stop()
        return False


def calibrate(server: MemoryServer, nbytes: int = 64 << 20) -> dict:
    """The method checked on known calls, through `server`: a no-op and an `nbytes` array of NumPy's and of
    torch's (when importable) -> {"noop": bytes, "numpy": bytes, "torch"?: bytes, "expected": nbytes}, or
    {"unavailable": reason}."""
    out: dict = {"expected": nbytes}
    probes = [("noop", Noop()), ("numpy", Alloc("numpy", nbytes))]
    try:
        import importlib.util

        if importlib.util.find_spec("torch") is not None:
            probes.append(("torch", Alloc("torch", nbytes)))
    except (ImportError, ValueError):
        pass
    try:
        for name, setup in probes:
            out[name] = extra(server.measure(setup))
    except Unavailable as exc:
        return {"unavailable": str(exc)}
    return out
