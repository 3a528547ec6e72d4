"""Convolution benchmarks: every backend side by side on the layer shapes of real networks.

A *suite* is a list of conv layers (LeNet-5, ResNet-50's convs, VGG-16's 3x3 convs, the AlphaGo policy
network from the lectures, a 1-D sentence CNN). For every layer, every backend is timed through the
backend contract only: inputs are converted with ``from_numpy`` outside the clock, and the clock covers
``conv`` (forward) or ``conv_backward`` (backward) and the backend's ``synchronize()``. Backends run
interleaved (round robin, the order rotating every round) after warm-up calls, and each figure is the
median over the rounds, so slow drifts of a shared machine's load hit every backend alike.

In the same run the machine's float32 GEMM rate is measured (one square matmul per layer round, with
NumPy's BLAS and with torch when present), so each layer's GFLOP/s can be read as a fraction of what
this machine's GEMM does right now. GFLOP counts are the dense ones: forward ``2*N*C_out*prod(out)*
(C_in/groups)*prod(kernel)``, backward twice that (input gradient and weight gradient; the bias
gradient is negligible and not counted).

GPU backends (device ``cuda...``) are timed with device events (``torch.cuda.Event`` or
``cupy.cuda.Event``) at the suite's larger GPU batch; see :class:`EventTimer`.

For NumPy-array backends the peak extra memory of one forward and one backward call is measured with
tracemalloc (NumPy reports its buffers to it) in a separate, untimed call: the peak minus the result
arrays, i.e. the column matrices and other temporaries.
"""
from __future__ import annotations

import gc
import json
import math
import os
import statistics
import time
import tracemalloc
from dataclasses import dataclass, field
from math import prod

import numpy as np

from convspec import SpecError

from .environment import environment

SCHEMA = "convspec-bench/1"
BASELINE = "torch-cpu"
GEMM_SIZE = 1024  # square float32 matmul for the machine's GEMM rate: 2*1024^3 = 2.1 GFLOP


# ---------------------------------------------------------------------------------------------- suites
@dataclass(frozen=True)
class Layer:
    """One conv layer at batch 1: x (1, c_in, *size), w (c_out, c_in/groups, *kernel)."""

    name: str
    c_in: int
    c_out: int
    size: tuple
    kernel: tuple
    stride: int | tuple = 1
    padding: int | tuple | str = 0
    dilation: int | tuple = 1
    groups: int = 1
    count: int = 1  # how many times the network has this exact layer (for weighted totals)

    def shapes(self, batch: int):
        """(x_shape, w_shape, b_shape) at `batch`."""
        return (batch, self.c_in) + tuple(self.size), (self.c_out, self.c_in // self.groups) + tuple(self.kernel), (self.c_out,)

    def params(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}

    def out_sizes(self, batch: int = 1) -> tuple:
        from convspec.reference.conv import ConvGeometry

        x, w, b = self.shapes(batch)
        return tuple(ConvGeometry(x, w, b, **self.params()).out_sizes)

    def flops(self, batch: int) -> dict:
        """Dense multiply-add count x2: forward, backward (input + weight gradients) and their sum."""
        fwd = 2 * batch * self.c_out * prod(self.out_sizes(batch)) * (self.c_in // self.groups) * prod(self.kernel)
        return {"forward": fwd, "backward": 2 * fwd, "total": 3 * fwd}


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    batch: int  # CPU backends
    gpu_batch: int  # GPU backends: the same shapes at a larger batch
    layers: tuple = field(default_factory=tuple)


def _l(name, c_in, c_out, size, k, **kw) -> Layer:
    nd = len(size)
    return Layer(name, c_in, c_out, tuple(size), (k,) * nd if isinstance(k, int) else tuple(k), **kw)


def _resnet50() -> tuple:
    """ResNet-50 (torchvision / v1.5: the stride-2 of a stage's first block is in its 3x3) conv
    layers, each distinct shape once with its multiplicity in the network."""
    layers = [_l("conv1 7x7/2 3-64", 3, 64, (224, 224), 7, stride=2, padding=3)]
    stages = [(64, 256, 56, 3, 1), (128, 512, 28, 4, 2), (256, 1024, 14, 6, 2), (512, 2048, 7, 3, 2)]
    c_prev = 64
    for i, (mid, out, size, blocks, stride) in enumerate(stages, start=2):
        in_size = size * stride
        layers.append(_l(f"s{i} 1x1 {c_prev}-{mid}", c_prev, mid, (in_size, in_size), 1))
        layers.append(_l(f"s{i} 3x3/{stride} {mid}-{mid}" if stride > 1 else f"s{i} 3x3 {mid}-{mid}", mid, mid, (in_size, in_size), 3, stride=stride, padding=1, count=1 if stride > 1 else blocks))
        layers.append(_l(f"s{i} 1x1 {mid}-{out}", mid, out, (size, size), 1, count=blocks))
        layers.append(_l(f"s{i} down 1x1/{stride} {c_prev}-{out}" if stride > 1 else f"s{i} down 1x1 {c_prev}-{out}", c_prev, out, (in_size, in_size), 1, stride=stride))
        if stride > 1:
            layers.append(_l(f"s{i} 3x3 {mid}-{mid}", mid, mid, (size, size), 3, padding=1, count=blocks - 1))
        layers.append(_l(f"s{i} 1x1 {out}-{mid}", out, mid, (size, size), 1, count=blocks - 1))
        c_prev = out
    # stage 2's first 1x1 (64-64) and its later ones (256-64) differ; stage 2's downsample 64-256 has the
    # shape of its 1x1 64-256: merge exact duplicates, adding their counts
    merged: dict = {}
    for layer in layers:
        key = (layer.c_in, layer.c_out, layer.size, layer.kernel, layer.stride, layer.padding)
        if key in merged:
            old = merged[key]
            merged[key] = Layer(old.name, old.c_in, old.c_out, old.size, old.kernel, old.stride, old.padding, old.dilation, old.groups, old.count + layer.count)
        else:
            merged[key] = layer
    return tuple(merged.values())


def _vgg16() -> tuple:
    cfg = [(3, 64, 224, 1), (64, 64, 224, 1), (64, 128, 112, 1), (128, 128, 112, 1), (128, 256, 56, 1), (256, 256, 56, 2),
           (256, 512, 28, 1), (512, 512, 28, 2), (512, 512, 14, 3)]
    return tuple(_l(f"3x3 {a}-{b} @{s}", a, b, (s, s), 3, padding=1, count=c) for a, b, s, c in cfg)


SUITES = {
    s.name: s
    for s in (
        Suite("lenet", "LeNet-5 (LeCun et al. 1998): C1, C3 and C5 on 32x32 digits", 64, 1024, (
            _l("C1 5x5 1-6 @32", 1, 6, (32, 32), 5),
            _l("C3 5x5 6-16 @14", 6, 16, (14, 14), 5),
            _l("C5 5x5 16-120 @5", 16, 120, (5, 5), 5),
        )),
        Suite("resnet50", "ResNet-50 (v1.5) conv layers, each distinct shape once, at batch 32", 32, 256, _resnet50()),
        Suite("vgg", "VGG-16's 3x3 conv layers (pad 1), each distinct shape once", 4, 64, _vgg16()),
        Suite("alphago", "AlphaGo policy network (Silver et al. 2016, lecture 'Why CNN for Go?'): 48 planes 19x19, k=192", 16, 256, (
            _l("L1 5x5 48-192 @19", 48, 192, (19, 19), 5, padding=2),
            _l("L2-12 3x3 192-192 @19", 192, 192, (19, 19), 3, padding=1, count=11),
            _l("L13 1x1 192-1 @19", 192, 1, (19, 19), 1),
        )),
        Suite("text1d", "Sentence CNN (Kim 2014): 300-d embeddings, 64 words, 100 maps per width; a wide (full) conv", 50, 512, (
            _l("k3 300-100 @64", 300, 100, (64,), 3),
            _l("k4 300-100 @64", 300, 100, (64,), 4),
            _l("k5 300-100 @64", 300, 100, (64,), 5),
            _l("wide k5 300-100 @64", 300, 100, (64,), 5, padding="full"),
        )),
    )
}


def tiny_suite() -> Suite:
    """Two small layers for tests and smoke runs (seconds)."""
    return Suite("tiny", "two small layers (tests)", 2, 4, (
        _l("3x3 3-4 @8", 3, 4, (8, 8), 3, padding=1),
        _l("k3/2 2-3 @9", 2, 3, (9,), 3, stride=2),
    ))


def resolve_suites(names) -> list:
    out = []
    for name in names:
        if name == "all":
            out.extend(s for s in SUITES.values() if s not in out)
        elif name == "tiny":
            out.append(tiny_suite())
        elif name in SUITES:
            if SUITES[name] not in out:
                out.append(SUITES[name])
        else:
            raise SpecError("suite", f"unknown suite {name!r}; expected one of {sorted(SUITES) + ['all', 'tiny']}")
    return out


# ---------------------------------------------------------------------------------------------- threads
def set_threads(n: int) -> dict:
    """Use n threads in torch (intra-op) and in NumPy's BLAS (via threadpoolctl when installed)."""
    info = {"requested": n}
    try:
        import torch

        torch.set_num_threads(n)
        info["torch"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(n, user_api="blas")
        info["blas"] = [{"library": p.get("internal_api"), "threads": p.get("num_threads")} for p in threadpool_info() if p.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = "threadpoolctl not installed: BLAS threads not set (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS decide)"
    return info


# ---------------------------------------------------------------------------------------------- timers
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


# ---------------------------------------------------------------------------------------------- GEMM
class Gemm:
    """The machine's float32 GEMM rate, sampled between layer rounds with each available library."""

    def __init__(self, size: int = GEMM_SIZE, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.size = size
        self.flops = 2 * size ** 3
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
        t0 = time.perf_counter()
        np.matmul(self.a, self.b, out=self.out)
        self.samples["numpy"].append(time.perf_counter() - t0)
        if self.ta is not None:
            import torch

            t0 = time.perf_counter()
            torch.mm(self.ta, self.tb, out=self.tout)
            self.samples["torch"].append(time.perf_counter() - t0)

    def summary(self) -> dict:
        libs = {lib: {"gflops": self.flops / statistics.median(s) / 1e9, "samples": len(s)} for lib, s in self.samples.items() if s}
        rate = max((v["gflops"] for v in libs.values()), default=float("nan"))
        return {"size": self.size, "libraries": libs, "machine_gflops": rate}


# ---------------------------------------------------------------------------------------------- run
def _inputs(layer: Layer, batch: int, seed: int, dtype: str):
    rng = np.random.default_rng(seed)
    xs, ws, bs = layer.shapes(batch)
    fan_in = ws[1] * prod(ws[2:])
    x = rng.standard_normal(xs).astype(dtype)
    w = (rng.standard_normal(ws) / math.sqrt(fan_in)).astype(dtype)
    b = rng.standard_normal(bs).astype(dtype)
    g = rng.standard_normal((batch, layer.c_out) + layer.out_sizes(batch)).astype(dtype)
    return x, w, b, g


def _nbytes(a) -> int:
    return int(getattr(a, "nbytes", 0) or 0)


def _peak_extra(fn, backend=None) -> int:
    """Peak traced memory of fn() above the start, minus what it returns (the results themselves).
    A backend that caches work buffers between calls may define ``release_memory()``: it is called
    first, so that the buffers are allocated (and counted) inside the measured call."""
    release = getattr(backend, "release_memory", None)
    if callable(release):
        release()
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    outs = out if isinstance(out, tuple) else (out,)
    return max(peak - base - sum(_nbytes(o) for o in outs if o is not None), 0)


class _Case:
    """One layer on one backend: the converted arrays and the two timed calls."""

    def __init__(self, backend, layer: Layer, batch: int, seed: int, dtype: str):
        self.backend, self.layer, self.batch = backend, layer, batch
        x, w, b, g = _inputs(layer, batch, seed, dtype)
        self.input_bytes = x.nbytes
        conv = backend.from_numpy
        self.x, self.w, self.b, self.g = conv(x), conv(w), conv(b), conv(g)
        self.params = layer.params()
        self.timer = timer_for(backend)
        self.numpy_arrays = isinstance(self.x, np.ndarray)
        self.times = {"forward": [], "backward": []}

    def forward(self):
        return self.backend.conv(self.x, self.w, self.b, **self.params)

    def backward(self):
        return self.backend.conv_backward(self.g, self.x, self.w, self.b, **self.params)

    def run(self, record: bool) -> None:
        for phase, fn in (("forward", self.forward), ("backward", self.backward)):
            t = self.timer(fn)
            if record:
                self.times[phase].append(t)

    def release(self):
        self.x = self.w = self.b = self.g = None


def bench_layer(backends: list, layer: Layer, suite: Suite, *, repeats: int, warmup: int, seed: int, dtype: str, gemm: Gemm,
                batch: int | None = None, gpu_batch: int | None = None, memory: bool = True) -> dict:
    """Time one layer on every backend, interleaved. -> the layer's JSON record (without ratios)."""
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
        order = cases[r % len(cases):] + cases[:r % len(cases)]
        for c in order:
            if c.backend.name in errors:
                continue
            try:
                c.run(record=True)
            except Exception as exc:
                errors[c.backend.name] = f"{type(exc).__name__}: {exc}"
        gemm.sample()
    results = {}
    for c in cases:
        name = c.backend.name
        rec = {"batch": c.batch, "timer": c.timer.kind}
        if name in errors:
            rec["error"] = errors[name]
        else:
            flops = layer.flops(c.batch)
            fwd, bwd = statistics.median(c.times["forward"]), statistics.median(c.times["backward"])
            total = statistics.median([a + b for a, b in zip(c.times["forward"], c.times["backward"])])
            rec["seconds"] = {"forward": fwd, "backward": bwd, "total": total}
            rec["samples"] = c.times
            rec["gflops"] = {k: flops[k] / v / 1e9 for k, v in rec["seconds"].items()}
            if memory and c.numpy_arrays:
                rec["peak_extra_bytes"] = {"forward": _peak_extra(c.forward, c.backend), "backward": _peak_extra(c.backward, c.backend),
                                           "input": c.input_bytes}
        c.release()
        results[name] = rec
    out_sizes = layer.out_sizes()
    return {
        "name": layer.name, "c_in": layer.c_in, "c_out": layer.c_out, "size": list(layer.size), "kernel": list(layer.kernel),
        "out_size": list(out_sizes), "stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation, "groups": layer.groups,
        "count": layer.count, "flops_per_sample": {k: v for k, v in layer.flops(1).items()}, "results": results,
    }


def _geomean(values) -> float | None:
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def add_ratios(layer_rec: dict, machine_gflops: float, baseline: str = BASELINE) -> None:
    """Per backend: time per FLOP relative to the baseline (> 1: slower; at equal batch the plain time
    ratio) and GFLOP/s as a fraction of the machine's GEMM rate."""
    base = layer_rec["results"].get(baseline, {}).get("gflops")
    for rec in layer_rec["results"].values():
        if "gflops" not in rec:
            continue
        rec["gemm_fraction"] = {k: v / machine_gflops for k, v in rec["gflops"].items()} if machine_gflops == machine_gflops else None
        rec["ratio_to_baseline"] = {k: base[k] / v for k, v in rec["gflops"].items()} if base else None


def summarize(suite_rec: dict, baseline: str = BASELINE) -> dict:
    """Per backend: geometric mean over the suite's layers of the time ratios to the baseline, the
    worst layer, and the network-weighted totals (layers x their multiplicity)."""
    names = {n for lr in suite_rec["layers"] for n in lr["results"]}
    out = {}
    for name in sorted(names):
        recs = [lr["results"].get(name, {}) for lr in suite_rec["layers"]]
        entry = {}
        ratios = [r.get("ratio_to_baseline") for r in recs]
        if all(ratios):
            for k in ("forward", "backward", "total"):
                entry[f"geomean_ratio_{k}"] = _geomean(r[k] for r in ratios)
            worst = max(range(len(recs)), key=lambda i: ratios[i]["total"])
            entry["worst_layer"] = {"name": suite_rec["layers"][worst]["name"], "ratio_total": ratios[worst]["total"]}
        ok = [(lr, r) for lr, r in zip(suite_rec["layers"], recs) if "seconds" in r]
        if ok:
            flops = sum(lr["count"] * lr["flops_per_sample"]["total"] * r["batch"] for lr, r in ok)
            secs = sum(lr["count"] * r["seconds"]["total"] for lr, r in ok)
            entry["network_gflops_total"] = flops / secs / 1e9
            peaks = [max(r["peak_extra_bytes"]["forward"], r["peak_extra_bytes"]["backward"]) for _, r in ok if "peak_extra_bytes" in r]
            if peaks:
                entry["max_peak_extra_bytes"] = max(peaks)
        errors = [lr["name"] for lr, r in zip(suite_rec["layers"], recs) if "error" in r]
        if errors:
            entry["errors"] = errors
        out[name] = entry
    return out


def _load() -> list | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def run(backends: list, suites: list, *, repeats: int = 5, warmup: int = 1, seed: int = 0, dtype: str = "float32", threads: int = 2,
        batch: int | None = None, gpu_batch: int | None = None, memory: bool = True, baseline: str = BASELINE, progress=None,
        command: str | None = None) -> dict:
    """Benchmark `backends` (contract objects) on `suites`; -> the JSON-serialisable result."""
    if repeats < 1:
        raise SpecError("repeats", f"must be >= 1, got {repeats}")
    if warmup < 0:
        raise SpecError("warmup", f"must be >= 0, got {warmup}")
    threads_info = set_threads(threads)
    gemm = Gemm(seed=seed)
    for _ in range(3):  # warm the BLAS up, and three samples before any layer
        gemm.sample()
    started = time.time()
    load_start = _load()
    suite_recs = []
    for suite in suites:
        load_before = _load()
        layers = []
        for layer in suite.layers:
            rec = bench_layer(backends, layer, suite, repeats=repeats, warmup=warmup, seed=seed, dtype=dtype, gemm=gemm,
                              batch=batch, gpu_batch=gpu_batch, memory=memory)
            layers.append(rec)
            if progress:
                progress(suite, rec)
        suite_recs.append({"name": suite.name, "description": suite.description, "batch": batch or suite.batch,
                           "gpu_batch": gpu_batch or suite.gpu_batch, "load_before": load_before, "load_after": _load(), "layers": layers})
    gemm_summary = gemm.summary()
    for s in suite_recs:
        for lr in s["layers"]:
            add_ratios(lr, gemm_summary["machine_gflops"], baseline)
        s["summary"] = summarize(s, baseline)
    return {
        "schema": SCHEMA,
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "seconds": time.time() - started,
        "settings": {"repeats": repeats, "warmup": warmup, "seed": seed, "dtype": dtype, "threads": threads, "baseline": baseline},
        "environment": environment(threads_info),
        "load_average": {"start": load_start, "end": _load()},
        "backends": [{"name": b.name, "device": str(getattr(b, "device", "")), "version": str(getattr(b, "version", "")),
                      "timer": timer_for(b).kind if not is_gpu(b) else "cuda-events"} for b in backends],
        "gemm": gemm_summary,
        "suites": suite_recs,
    }


def dump(result: dict, path) -> None:
    with open(path, "w") as f:
        json.dump(result, f, indent=1, default=_jsonable)
        f.write("\n")


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---------------------------------------------------------------------------------------------- text
def _mib(n) -> str:
    return f"{n / 2**20:.1f}"


def _fmt(v, spec=".2f") -> str:
    return "-" if v is None else format(v, spec)


def layer_rows(suite_rec: dict, baseline: str = BASELINE) -> list:
    """Table rows: layer, backend, batch, ms fwd/bwd, GFLOP/s fwd+bwd, ratio fwd/bwd/total, GEMM %, peak extra MiB."""
    rows = []
    for lr in suite_rec["layers"]:
        for name, r in lr["results"].items():
            if "error" in r:
                rows.append([lr["name"], name, str(r["batch"]), "error: " + r["error"][:60]] + [""] * 8)
                continue
            ratio = r.get("ratio_to_baseline") or {}
            frac = r.get("gemm_fraction") or {}
            peak = r.get("peak_extra_bytes")
            rows.append([
                lr["name"], name, str(r["batch"]), f"{r['seconds']['forward'] * 1e3:.2f}", f"{r['seconds']['backward'] * 1e3:.2f}",
                f"{r['gflops']['forward']:.1f}", f"{r['gflops']['total']:.1f}",
                _fmt(ratio.get("forward")), _fmt(ratio.get("backward")), _fmt(ratio.get("total")),
                _fmt(None if frac.get("total") is None else 100 * frac["total"], ".0f"),
                "-" if peak is None else f"{_mib(peak['forward'])}/{_mib(peak['backward'])}",
            ])
    return rows


LAYER_HEADER = ["layer", "backend", "batch", "fwd ms", "bwd ms", "fwd GF/s", "f+b GF/s", "fwd x", "bwd x", "f+b x", "GEMM %", "extra MiB f/b"]


def vs_baseline_backward(suite: dict, backend: str, baseline: str):
    """(geometric mean, worst layer name, worst ratio) over the suite's layers of backend's
    forward+backward time / the baseline's backward time; None where a layer lacks either."""
    ratios = []
    for lr in suite["layers"]:
        a, b = lr["results"].get(backend, {}), lr["results"].get(baseline, {})
        try:
            r = a["seconds"]["total"] / b["seconds"]["backward"]
        except (KeyError, TypeError, ZeroDivisionError):
            return None
        if not (r > 0 and math.isfinite(r)):
            return None
        ratios.append((r, lr["name"]))
    if not ratios:
        return None
    worst = max(ratios)
    return math.exp(sum(math.log(r) for r, _ in ratios) / len(ratios)), worst[1], worst[0]


def summary_rows(result: dict) -> list:
    """Per suite and backend: geometric-mean time ratios to the baseline, and forward+backward over
    the baseline's backward alone (the stricter comparison when the baseline's backward re-runs its
    forward under autograd, as torch's does through the contract)."""
    baseline = result["settings"]["baseline"]
    rows = []
    for s in result["suites"]:
        for name, e in s["summary"].items():
            worst = e.get("worst_layer")
            strict = None if name == baseline else vs_baseline_backward(s, name, baseline)
            rows.append([s["name"], name, _fmt(e.get("geomean_ratio_forward")), _fmt(e.get("geomean_ratio_backward")),
                         _fmt(e.get("geomean_ratio_total")), "-" if strict is None else f"{strict[0]:.2f} (worst {strict[1]} {strict[2]:.2f})",
                         "-" if not worst else f"{worst['name']} ({worst['ratio_total']:.2f})",
                         _fmt(e.get("network_gflops_total"), ".1f"), "-" if "max_peak_extra_bytes" not in e else _mib(e["max_peak_extra_bytes"])])
    return rows


SUMMARY_HEADER = ["suite", "backend", "fwd x", "bwd x", "f+b x", "f+b / baseline bwd", "worst layer (f+b x)", "network GF/s", "max extra MiB"]


def header_lines(result: dict) -> list:
    env, g = result["environment"], result["gemm"]
    th = env["threads"]
    blas = th.get("blas")
    blas_txt = blas if isinstance(blas, str) else ", ".join(f"{b['library']} {b['threads']}" for b in blas)
    libs = ", ".join(f"{k} {v['gflops']:.1f}" for k, v in g["libraries"].items())
    return [
        f"machine: {env['processor']} ({env.get('cpus_usable', env['cpus'])} usable CPUs), numpy {env['numpy']}, torch {env.get('torch', '-')}",
        f"threads: torch {th.get('torch', '-')}, BLAS {blas_txt}",
        f"float32 GEMM {g['size']}^3 (median, GFLOP/s): {libs}; machine rate {g['machine_gflops']:.1f}",
        f"load average: start {result['load_average']['start']}, end {result['load_average']['end']}",
        f"dtype {result['settings']['dtype']}, {result['settings']['warmup']} warm-up + {result['settings']['repeats']} interleaved rounds, medians; "
        f"ratio x = time per FLOP / {result['settings']['baseline']}'s (> 1 slower)",
    ]


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- plot
def plot_svg(result: dict) -> str | None:
    """GFLOP/s (forward + backward) per layer per backend, one panel per suite, with the machine's GEMM
    rate as a line. SVG text (matplotlib's object API, reproducible output), or None without matplotlib."""
    try:
        from matplotlib.figure import Figure
        import matplotlib
    except ImportError:
        return None
    import io

    suites = result["suites"]
    if not suites:
        return None
    names = [b["name"] for b in result["backends"]]
    colors = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
    rc = {"svg.hashsalt": "convspec", "svg.fonttype": "path", "font.size": 8, "axes.spines.top": False, "axes.spines.right": False}
    with matplotlib.rc_context(rc):
        heights = [max(1.6, 0.32 * len(s["layers"]) * len(names) / 2 + 0.8) for s in suites]
        fig = Figure(figsize=(8, sum(heights)))
        axes = fig.subplots(len(suites), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
        rate = result["gemm"]["machine_gflops"]
        for ax, s in zip(axes, suites):
            layers = s["layers"]
            bar = 0.8 / max(len(names), 1)
            for j, name in enumerate(names):
                ys = [i + (j - (len(names) - 1) / 2) * bar for i in range(len(layers))]
                vals = [lr["results"].get(name, {}).get("gflops", {}).get("total", 0.0) for lr in layers]
                ax.barh(ys, vals, height=bar, color=colors[j % len(colors)], label=name)
            ax.axvline(rate, color="#555555", linestyle="--", linewidth=0.8, label=f"GEMM {rate:.0f}")
            ax.set_yticks(range(len(layers)), [lr["name"] for lr in layers])
            ax.invert_yaxis()
            ax.set_title(f"{s['name']} (batch {s['batch']}): forward + backward GFLOP/s", loc="left")
            ax.legend(loc="lower right", fontsize=7, frameon=False)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()
