"""Running the benchmark: every backend side by side on every layer of the chosen suites.

Every backend is timed through the backend contract only: inputs are converted with ``from_numpy`` outside
the clock, and the clock covers ``conv`` (forward) or ``conv_backward`` (backward) and the backend's
``synchronize()`` (see timing.py). Backends run interleaved (round robin, the order rotating every round)
after warm-up calls, and each figure is the median over the rounds, so slow drifts of a shared machine's
load hit every backend alike. Each backend's turn starts with untimed forward calls (timing.prime): the
previous backend's threads still spin then (OpenBLAS's for about 0.1 s after a threaded GEMM, torch's
OpenMP threads for tens of ms) and a vCPU that idled wakes slowly; the timed calls follow back to back.
GPU backends run at the suite's larger GPU batch. One GEMM sample is taken per layer round (timing.Gemm).

After a layer's timed rounds, the peak extra memory of one forward and of one backward call is measured
for every CPU backend alike, each in a forked child (memory.py: the kernel's peak-RSS mark, which sees
torch's C++ allocations as well as NumPy's); for NumPy-array backends tracemalloc's figure is recorded
beside it as a cross-check ("traced"). Where the RSS cannot be measured the record says why.
"""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np

from convspec import SpecError

from ..environment import environment
from .load import Load
from .memory import METHOD, LayerCall, MemoryServer, Unavailable, calibrate, rss_unavailable
from .memory import extra as rss_extra
from .records import BASELINE, SCHEMA, add_ratios, error_record, layer_record, summarize, timing_record
from .suites import Layer, Suite, layer_inputs
from .timing import SETTLE_LOG, Gemm, blas_kernels, is_gpu, peak_extra, prime, set_threads, timer_for, torch_threads


class _Case:
    """One layer on one backend: the converted arrays and the two timed calls."""

    def __init__(self, backend, layer: Layer, batch: int, seed: int, dtype: str):
        self.backend, self.layer, self.batch, self.seed, self.dtype = backend, layer, batch, seed, dtype
        x, w, b, g = layer_inputs(layer, batch, seed, dtype)
        self.input_bytes = x.nbytes
        conv = backend.from_numpy
        self.x, self.w, self.b, self.g = conv(x), conv(w), conv(b), conv(g)
        self.params = layer.params()
        self.timer = timer_for(backend)
        self.numpy_arrays = isinstance(self.x, np.ndarray)
        self.times = {"forward": [], "backward": []}
        self.loaded_times = {"forward": [], "backward": []}  # the rounds with the competing load on

    def forward(self):
        return self.backend.conv(self.x, self.w, self.b, **self.params)

    def backward(self):
        return self.backend.conv_backward(self.g, self.x, self.w, self.b, **self.params)

    def run(self, record: bool, loaded: bool = False) -> None:
        prime(self.forward)
        for phase, fn in (("forward", self.forward), ("backward", self.backward)):
            t = self.timer(fn)
            if record:
                (self.loaded_times if loaded else self.times)[phase].append(t)

    def release(self):
        self.x = self.w = self.b = self.g = None

    def memory(self, server: MemoryServer, threads: int | None) -> dict:
        """The peak extra memory record of one forward and one backward call, each measured through `server`
        (memory.py): {forward, backward, input, method, results, traced?} in bytes, or {unavailable: reason,
        input, method}."""
        rec = {"input": self.input_bytes, "method": METHOD}
        if is_gpu(self.backend):
            return dict(rec, unavailable="GPU backend: device memory is not in the process's RSS; not measured")
        runs = {}
        try:
            for phase in ("forward", "backward"):
                call = LayerCall(self.backend, self.layer, self.batch, self.seed, self.dtype, phase, threads)
                runs[phase] = server.measure(call)
        except Unavailable as exc:
            return dict(rec, unavailable=str(exc))
        rec.update({p: rss_extra(r) for p, r in runs.items()})
        rec["results"] = {p: r["results"] for p, r in runs.items()}
        if self.numpy_arrays:  # tracemalloc sees NumPy's buffers: the same figure by another method
            rec["traced"] = {"forward": peak_extra(self.forward, self.backend)}
            rec["traced"]["backward"] = peak_extra(self.backward, self.backend)
        return rec


def bench_layer(
    backends: list,
    layer: Layer,
    suite: Suite,
    *,
    repeats: int,
    warmup: int,
    seed: int,
    dtype: str,
    gemm: Gemm,
    batch: int | None = None,
    gpu_batch: int | None = None,
    memory: bool = True,
    load=None,
    gemm_loaded: Gemm | None = None,
    memory_server: MemoryServer | None = None,
    threads: int | None = None,
) -> dict:
    """Time one layer on every backend, interleaved. -> the layer's JSON record (without ratios). With a
    `load` (load.Load), every quiet round is followed by the same round with the competing load on. With
    `memory`, each backend's peak extra memory is measured after the rounds (module docstring), through
    `memory_server` (one is started for this call when none is given), its children on `threads` threads."""
    if memory and memory_server is None:
        with MemoryServer() as server:
            return bench_layer(
                backends,
                layer,
                suite,
                repeats=repeats,
                warmup=warmup,
                seed=seed,
                dtype=dtype,
                gemm=gemm,
                batch=batch,
                gpu_batch=gpu_batch,
                memory=True,
                load=load,
                gemm_loaded=gemm_loaded,
                memory_server=server,
                threads=threads,
            )
    cases = []
    for bk in backends:
        n = (gpu_batch or suite.gpu_batch) if is_gpu(bk) else (batch or suite.batch)
        cases.append(_Case(bk, layer, n, seed, dtype))
    errors = {}
    for _ in range(warmup):
        for c in cases:
            if c.backend.name not in errors:
                try:
                    c.run(record=False)
                except Exception as exc:  # a backend failing one layer must not stop the others
                    errors[c.backend.name] = f"{type(exc).__name__}: {exc}"
    for r in range(repeats):
        order = cases[r % len(cases) :] + cases[: r % len(cases)]
        for loaded in (False, True) if load is not None else (False,):
            if loaded:
                load.on()
            try:
                for c in order:
                    if c.backend.name in errors:
                        continue
                    try:
                        c.run(record=True, loaded=loaded)
                    except Exception as exc:
                        errors[c.backend.name] = f"{type(exc).__name__}: {exc}"
                (gemm_loaded if loaded else gemm).sample()
            finally:
                if loaded:
                    load.off()
    results = {}
    for c in cases:
        name = c.backend.name
        if name in errors:
            results[name] = error_record(c.batch, c.timer.kind, errors[name])
        else:
            peak = c.memory(memory_server, threads) if memory else None
            results[name] = timing_record(c.batch, c.timer.kind, c.times, layer.flops(c.batch), peak)
            if load is not None:
                results[name]["loaded"] = timing_record(c.batch, c.timer.kind, c.loaded_times, layer.flops(c.batch))
        c.release()
    return layer_record(layer, results)


def suite_batch(suite: Suite, batch: int | dict | None) -> int:
    """The CPU batch `suite` runs at: `batch` when an int, batch[suite.name] when a dict has it, else the
    suite's own."""
    if isinstance(batch, dict):
        batch = batch.get(suite.name)
    if batch is not None and (not isinstance(batch, int) or batch < 1):
        raise SpecError("batch", f"must be a positive integer, got {batch!r} for suite {suite.name}")
    return batch or suite.batch


def _load() -> list | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def run(
    backends: list,
    suites: list,
    *,
    repeats: int = 5,
    warmup: int = 1,
    seed: int = 0,
    dtype: str = "float32",
    threads: int = 2,
    batch: int | dict | None = None,
    gpu_batch: int | None = None,
    memory: bool = True,
    baseline: str = BASELINE,
    progress=None,
    command: str | None = None,
    load: str | None = None,
    ops: bool = False,
) -> dict:
    """Benchmark `backends` (contract objects) on `suites`; -> the JSON-serialisable result. load="busy":
    every round also runs with a fixed competing load on the last CPU (load.Load), recorded beside the
    quiet figures as each result's "loaded" record; ops=True: also time LeNet-5's other ops (ops.py).
    `batch`: every suite's CPU batch (an int), or {suite name: batch} for some (the others keep theirs)."""
    if load not in (None, "none", "busy"):
        raise SpecError("load", f"must be 'none' or 'busy', got {load!r}")
    load = None if load == "none" else load
    if repeats < 1:
        raise SpecError("repeats", f"must be >= 1, got {repeats}")
    if warmup < 0:
        raise SpecError("warmup", f"must be >= 0, got {warmup}")
    batches = {s.name: suite_batch(s, batch) for s in suites}
    threads_info = set_threads(threads)
    SETTLE_LOG.update(waits=0, capped=0, seconds=0.0)
    gemm = Gemm(seed=seed)
    for _ in range(3):  # warm the BLAS up, and three samples before any layer
        gemm.sample()
    started = time.time()
    load_start = _load()
    suite_recs = []
    gemm_loaded = Gemm(seed=seed) if load else None
    with (
        Load() if load else contextlib.nullcontext() as competing,
        MemoryServer() if memory else contextlib.nullcontext() as server,
    ):
        check = calibrate(server) if memory else None
        for suite in suites:
            load_before = _load()
            layers = []
            for layer in suite.layers:
                rec = bench_layer(
                    backends,
                    layer,
                    suite,
                    repeats=repeats,
                    warmup=warmup,
                    seed=seed,
                    dtype=dtype,
                    gemm=gemm,
                    batch=batches[suite.name],
                    gpu_batch=gpu_batch,
                    memory=memory,
                    load=competing,
                    gemm_loaded=gemm_loaded,
                    memory_server=server,
                    threads=threads,
                )
                layers.append(rec)
                if progress:
                    progress(suite, rec)
            suite_recs.append(
                {
                    "name": suite.name,
                    "description": suite.description,
                    "batch": batches[suite.name],
                    "gpu_batch": gpu_batch or suite.gpu_batch,
                    "load_before": load_before,
                    "load_after": _load(),
                    "layers": layers,
                }
            )
        op_recs = None
        if ops:
            from .ops import bench_ops

            op_recs = bench_ops(
                backends,
                repeats=repeats,
                warmup=warmup,
                seed=seed,
                dtype=dtype,
                baseline=baseline,
                load=competing,
                progress=progress,
            )
    gemm_summary = gemm.summary()
    for s in suite_recs:
        for lr in s["layers"]:
            add_ratios(lr, gemm_summary["machine_gflops"], baseline)
        s["summary"] = summarize(s, baseline)
    if (after := torch_threads()) is not None:  # what torch ran on: a backend importing torch late must not reset it
        threads_info["torch_after_run"] = after
    environ = environment(threads_info)
    environ["kernels"] = blas_kernels()
    settings = {
        "repeats": repeats,
        "warmup": warmup,
        "seed": seed,
        "dtype": dtype,
        "threads": threads,
        "baseline": baseline,
        "primed": True,  # each backend's turn starts with untimed forwards (timing.prime)
    }
    extra = {}
    if memory:
        settings["memory"] = {"method": METHOD, "unavailable": rss_unavailable(), "calibration": check}
    if load:
        settings["load"] = load
        extra["competing_load"] = dict(competing.describe(), gemm=gemm_loaded.summary())
    if op_recs is not None:
        extra["ops"] = op_recs
    return {
        "schema": SCHEMA,
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "seconds": time.time() - started,
        "settings": settings,
        "environment": environ,
        "load_average": {"start": load_start, "end": _load()},
        "backends": [
            {
                "name": b.name,
                "device": str(getattr(b, "device", "")),
                "version": str(getattr(b, "version", "")),
                "timer": timer_for(b).kind if not is_gpu(b) else "cuda-events",
            }
            for b in backends
        ],
        "gemm": gemm_summary,
        "suites": suite_recs,
        "settle": dict(SETTLE_LOG),  # the waits for idle threads before each turn (timing.settle)
        **extra,
    }
