"""How the benchmark measures: thread settings, the clocks around one call, the machine's GEMM rate and
the peak extra memory of one call.

The clock covers the call and the backend's ``synchronize()``. CPU backends are timed with
``time.perf_counter`` (:class:`CpuTimer`); GPU backends (device ``cuda...``) with device events
(``torch.cuda.Event`` or ``cupy.cuda.Event``, :class:`EventTimer`).

The machine's float32 GEMM rate (:class:`Gemm`) is one square matmul sampled once per layer round, with
NumPy's BLAS and with torch when present, so that each layer's GFLOP/s can be read as a fraction of what
this machine's GEMM does right now.

The peak extra memory of one call is measured in memory.py (every CPU backend alike, from the kernel's
peak-RSS mark in a forked child); :func:`peak_extra` here is tracemalloc's figure, which sees NumPy's
buffers only: the bench records it beside the RSS figure for NumPy-array backends as a cross-check.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
import tracemalloc

import numpy as np

from ..environment import blas_libraries

GEMM_SIZE = 1024  # square float32 matmul for the machine's GEMM rate: 2*1024^3 = 2.1 GFLOP


TORCH_THREADS_ENV = "CONVSPEC_TORCH_THREADS"  # read by the torch backends when they first import torch


def set_threads(n: int) -> dict:
    """Use n threads in torch (intra-op) and in NumPy's BLAS (via threadpoolctl when installed).

    The torch backends set torch's thread count when they first import torch, from CONVSPEC_TORCH_THREADS
    (default 1): that variable is set to n as well, else a backend first used after this call would put
    torch back on one thread (as every bench before this fix did: torch-cpu was timed on 1 thread against
    NumPy's 2). :func:`torch_threads` reads back what torch uses."""
    info = {"requested": n}
    os.environ[TORCH_THREADS_ENV] = str(n)
    try:
        import torch

        torch.set_num_threads(n)
        info["torch"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(n, user_api="blas")
        info["blas"] = [
            {"library": p.get("internal_api"), "threads": p.get("num_threads")}
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ]
    except ImportError:
        info["blas"] = (
            "threadpoolctl not installed: BLAS threads not set (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS decide)"
        )
    return info


def torch_threads() -> int | None:
    """torch's intra-op thread count now (None when torch was never imported: never imports it)."""
    torch = sys.modules.get("torch")
    return None if torch is None else torch.get_num_threads()


def blas_kernels() -> dict:
    """Which compute kernels this process's libraries picked: per BLAS that threadpoolctl finds its
    library, version and kernel architecture (OpenBLAS's 'Haswell' = AVX2, 'SkylakeX' = AVX-512, chosen
    at load time from the CPU unless OPENBLAS_CORETYPE names one), the OPENBLAS_* environment variables that
    steer it, and torch's CPU capability (the ATen kernel set: 'AVX2', 'AVX512', ...). Plain JSON."""
    out: dict = {"openblas_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("OPENBLAS_")}}
    libs = blas_libraries()
    out["blas"] = libs if libs is not None else "threadpoolctl not installed: BLAS kernels unknown"
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            out["torch_cpu_capability"] = str(torch.backends.cpu.get_cpu_capability())
        except (AttributeError, RuntimeError):
            out["torch_cpu_capability"] = None
    return out


PRIME_SECONDS = 0.02  # the untimed calls before a backend's timed ones last at least this long (prime)
SETTLE_WINDOW = 0.005  # seconds per look at this process's CPU time (settle)
SETTLE_IDLE = 0.2  # ... idle below this many CPUs' worth
SETTLE_MAX = 1.0  # ... waiting at most this long


SETTLE_LOG = {"waits": 0, "capped": 0, "seconds": 0.0}  # settle()'s calls since the last reset (bench.run)


def settle() -> float:
    """Wait until this process's threads are idle (CPU time over SETTLE_WINDOW below SETTLE_IDLE of one CPU),
    for at most SETTLE_MAX seconds: another library's threads spin after its calls. -> the seconds waited;
    SETTLE_LOG counts the waits, those that reached SETTLE_MAX (threads that never went idle) and the time.
    Measured here: OpenBLAS's threads for about 0.11 s after a threaded GEMM, torch's OpenMP threads for
    about 0.07 s after a conv. A competing load runs in its own process and is not counted."""
    start = time.perf_counter()
    while True:
        c0, t0 = time.process_time(), time.perf_counter()
        time.sleep(SETTLE_WINDOW)
        t1 = time.perf_counter()
        idle = (time.process_time() - c0) / (t1 - t0) < SETTLE_IDLE
        if idle or t1 - start > SETTLE_MAX:
            SETTLE_LOG["waits"] += 1
            SETTLE_LOG["capped"] += 0 if idle else 1
            SETTLE_LOG["seconds"] += t1 - start
            return t1 - start


def prime(fn) -> None:
    """Before a backend's timed calls: wait until the previous backend's threads stop spinning (settle), then
    untimed calls for PRIME_SECONDS, so that the timed calls run back to back as in training.

    Measured here (2 vCPUs, torch 2 threads, one 3.7 GFLOP conv): right after a threaded NumPy GEMM the
    conv took 20.9 ms median, 8.9 ms after 0.15 s and 8.6 ms back to back (OpenBLAS's threads spin); a GEMM
    right after that conv ran at 219-229 GFLOP/s against 393-434 after 20-50 ms (torch's threads spin); the
    same conv after 0.3 s idle took 9-25 ms (an idle vCPU wakes slowly: hence the untimed call). LeNet's C3
    backward, 1.0 ms back to back, took 5.5 ms median when only its 0.5 ms forward stood between it and
    torch's calls: an untimed call alone is too short to outlast the spinning. The untimed call repeats
    until PRIME_SECONDS have passed: a thread that has just slept may wake on the CPU the competing load
    holds and wait a scheduler tick (LeNet's C3 loaded: 1.84 / 5.95 / 6.10 ms min / median / max with one
    0.5 ms call before the timed ones, 1.50-1.53 / 1.60-1.63 / 1.70-2.31 back to back)."""
    settle()
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < PRIME_SECONDS:
        fn()


class CpuTimer:
    """Wall clock (perf_counter) around the call and the backend's synchronize()."""

    kind = "perf_counter"

    def __init__(self, backend):
        self.backend = backend

    def __call__(self, fn) -> float:
        self.backend.synchronize()
        t0 = time.perf_counter()
        fn()
        self.backend.synchronize()
        return time.perf_counter() - t0


class EventTimer:
    """GPU backends: device events recorded around the call on the current stream, read after an event
    synchronisation (elapsed device time, so host-side launch gaps before the first kernel are not hidden
    behind an idle GPU). `lib` is "torch" or "cupy". Not exercised on a machine without a GPU."""

    kind = "cuda-events"

    def __init__(self, backend, lib: str):
        self.backend, self.lib = backend, lib
        if lib == "torch":
            import torch

            self._event = lambda: torch.cuda.Event(enable_timing=True)
            self._elapsed_ms = lambda a, b: a.elapsed_time(b)
        else:
            import cupy

            self._event = lambda: cupy.cuda.Event()
            self._elapsed_ms = lambda a, b: cupy.cuda.get_elapsed_time(a, b)

    def __call__(self, fn) -> float:
        self.backend.synchronize()
        start, stop = self._event(), self._event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        self.backend.synchronize()
        return self._elapsed_ms(start, stop) / 1000.0


def timer_for(backend):
    if not str(getattr(backend, "device", "cpu")).startswith("cuda"):
        return CpuTimer(backend)
    lib = "cupy" if "cupy" in type(backend).__module__ or "cupy" in backend.name else "torch"
    return EventTimer(backend, lib)


def is_gpu(backend) -> bool:
    return str(getattr(backend, "device", "cpu")).startswith("cuda")


class Gemm:
    """The machine's float32 GEMM rate, sampled between layer rounds with each available library."""

    def __init__(self, size: int = GEMM_SIZE, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.size = size
        self.flops = 2 * size**3
        self.a = rng.standard_normal((size, size), dtype=np.float32)
        self.b = rng.standard_normal((size, size), dtype=np.float32)
        self.out = np.empty((size, size), dtype=np.float32)
        self.samples: dict = {"numpy": []}
        try:
            import torch

            self.ta, self.tb, self.tout = torch.from_numpy(self.a), torch.from_numpy(self.b), torch.empty(size, size)
            self.samples["torch"] = []
        except ImportError:
            self.ta = None

    def sample(self) -> None:
        prime(lambda: np.matmul(self.a, self.b, out=self.out))  # after a backend's calls: see prime()
        t0 = time.perf_counter()
        np.matmul(self.a, self.b, out=self.out)
        self.samples["numpy"].append(time.perf_counter() - t0)
        if self.ta is not None:
            import torch

            prime(lambda: torch.mm(self.ta, self.tb, out=self.tout))
            t0 = time.perf_counter()
            torch.mm(self.ta, self.tb, out=self.tout)
            self.samples["torch"].append(time.perf_counter() - t0)

    def summary(self) -> dict:
        libs = {
            lib: {"gflops": self.flops / statistics.median(s) / 1e9, "samples": len(s)}
            for lib, s in self.samples.items()
            if s
        }
        rate = max((v["gflops"] for v in libs.values()), default=float("nan"))
        return {"size": self.size, "libraries": libs, "machine_gflops": rate}


def _nbytes(a) -> int:
    return int(getattr(a, "nbytes", 0) or 0)


def peak_extra(fn, backend=None) -> int:
    """Peak traced memory of fn() above the start, minus what it returns (the results themselves): what
    tracemalloc sees, i.e. NumPy's and Python's allocations only (the bench's cross-check of memory.py's
    RSS figure for NumPy-array backends; blind to torch's and other C++ libraries' allocations).
    A backend that caches work buffers between calls may define ``release_memory()``: it is called
    first, so that the buffers are allocated (and counted) inside the measured call."""
    release = getattr(backend, "release_memory", None)
    if callable(release):
        release()
    # no collection inside the call (freed garbage would hide the call's allocations); none before it either:
    # garbage left from before is in the base as well as in the peak (and a full collection costs ~0.2 s)
    was_enabled = gc.isenabled()
    gc.disable()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        if was_enabled:
            gc.enable()
    outs = out if isinstance(out, tuple) else (out,)
    return max(peak - base - sum(_nbytes(o) for o in outs if o is not None), 0)
