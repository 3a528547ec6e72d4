"""A fixed competing load for `convspec bench --load busy`: one process, pinned to the machine's last CPU,
that runs a fixed single-threaded workload (a float64 256x256 matmul, then a streaming add over 8 MiB:
compute and memory traffic, like another engineer's tests or a second training job) while it is switched
on. The bench times every layer both quiet and loaded, round by round, so each figure has its twin.

The load is switched on and off between timed rounds (``on()`` returns once the worker has started a
fresh iteration, so the timed call never runs before the load does); ``rate()`` is the worker's
iterations per second while on, recorded with the result so that "busy" is a measured amount of work.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

MATMUL = 256  # the workload's matmul size
STREAM_BYTES = 8 << 20  # and its streaming add


def _worker(switch, stop, count, cpu):
    """The load process: wait while switched off; while on, run the workload and count iterations."""
    import numpy as np

    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except (AttributeError, OSError):
            pass
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((MATMUL, MATMUL)), rng.standard_normal((MATMUL, MATMUL))
    c = np.empty_like(a)
    u = np.zeros(STREAM_BYTES // 8)
    v = np.ones_like(u)
    while not stop.is_set():
        if not switch.wait(0.1):
            continue
        np.matmul(a, b, out=c)
        np.add(u, v, out=u)
        with count.get_lock():
            count.value += 1


class Load:
    """The competing load process (a context manager: started on enter, ended on exit)."""

    kind = "busy"

    def __init__(self, cpu: int | None = None):
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
        self.cpu = cpus[-1] if cpu is None else cpu
        self._ctx = mp.get_context("spawn")  # a fresh interpreter: no BLAS or OpenMP threads from the parent
        self.switch, self.stop, self.count = self._ctx.Event(), self._ctx.Event(), self._ctx.Value("q", 0)
        self.proc = None
        self.on_seconds = 0.0
        self.iterations = 0
        self._since = None

    def __enter__(self):
        env = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        os.environ.update({k: "1" for k in env})  # the child's BLAS: one thread (the environment is copied at spawn)
        try:
            self.proc = self._ctx.Process(
                target=_worker,
                args=(self.switch, self.stop, self.count, self.cpu),
                daemon=True,
                name="convspec-bench-load",
            )
            self.proc.start()
        finally:
            for k, v in env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.on()  # wait for the worker's first iteration (its start-up is not counted)
        self.off()
        self.on_seconds, self.iterations = 0.0, 0
        return self

    def _value(self) -> int:
        with self.count.get_lock():
            return self.count.value

    def on(self, timeout: float = 30.0) -> None:
        start = self._value()
        self.switch.set()
        deadline = time.monotonic() + timeout
        while self._value() == start and time.monotonic() < deadline and self.proc.is_alive():
            time.sleep(0.0005)
        self._since, self._start = time.perf_counter(), self._value()

    def off(self) -> None:
        self.switch.clear()
        if self._since is not None:
            self.on_seconds += time.perf_counter() - self._since
            self.iterations += self._value() - self._start
            self._since = None

    def rate(self) -> float | None:
        """The workload's iterations per second while on (None before any)."""
        return self.iterations / self.on_seconds if self.on_seconds > 0 else None

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "cpu": self.cpu,
            "workload": f"float64 {MATMUL}^3 matmul + {STREAM_BYTES >> 20} MiB "
            "streaming add, 1 thread, pinned to the CPU above",
            "iterations_per_second": self.rate(),
            "seconds_on": self.on_seconds,
        }

    def __exit__(self, *exc):
        self.off()
        self.stop.set()
        if self.proc is not None:
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(5)
        return False
