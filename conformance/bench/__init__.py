"""Convolution benchmarks: every backend side by side on the layer shapes of real networks.

A *suite* is a list of conv layers (LeNet-5, ResNet-50's convs, VGG-16's 3x3 convs, the AlphaGo policy
network from the lectures, a 1-D sentence CNN). For every layer, every backend is timed through the
backend contract only, interleaved, and each figure is the median over the rounds; the machine's float32
GEMM rate and compute kernels are recorded in the same run, and for every CPU backend alike the peak
extra memory of one forward and one backward call (the kernel's peak-RSS mark, in a forked child).

    suites.py    the layer suites and a layer's inputs
    timing.py    threads, the timers (perf_counter, CUDA events), GEMM calibration, the BLAS kernels,
                 tracemalloc's peak (NumPy's cross-check)
    memory.py    the peak extra memory of one call: peak RSS in a child forked from a clean fork server
    run.py       the orchestration: run(backends, suites) -> the JSON-serialisable result
    records.py   the result's record shapes, ratios and per-suite summaries, dump()
    load.py      --load busy's competing load; ops.py --ops (LeNet-5's other ops); tables.py their tables

Rendering is in convspec.conformance.report: perf.py (table rows), markdown.py (Markdown), plots.py
(the GFLOP/s plot). The rendering names this module had are still importable from here.
"""

from __future__ import annotations

from .memory import MemoryServer, Unavailable, rss_unavailable
from .records import BASELINE, SCHEMA, add_ratios, dump, summarize, vs_baseline_backward
from .run import bench_layer, run, suite_batch
from .suites import SUITES, Layer, Suite, layer_inputs, resolve_suites, tiny_suite
from .timing import GEMM_SIZE, CpuTimer, EventTimer, Gemm, blas_kernels, is_gpu, peak_extra, set_threads, timer_for

_inputs = layer_inputs  # the names benchmarks/ imported before the split
_peak_extra = peak_extra

# rendering moved to convspec.conformance.report; these old names resolve there on first use (the report
# package imports bench.records, so importing it here eagerly would make a cycle)
_MOVED = {
    "LAYER_HEADER": ("perf", "LAYER_HEADER"),
    "layer_rows": ("perf", "layer_rows"),
    "SUMMARY_HEADER": ("perf", "BENCH_SUMMARY_HEADER"),
    "summary_rows": ("perf", "bench_summary_rows"),
    "header_lines": ("perf", "result_header_lines"),
    "plot_svg": ("plots", "bench_gflops"),
    "_fmt": ("format", "fmt_num"),
    "_mib": ("format", "mib"),
}


def markdown_table(header, rows) -> str:
    """A Markdown table as one string (report.markdown.table's lines joined)."""
    from ..report.markdown import table

    return "\n".join(table(header, rows))


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        module, attr = _MOVED[name]
        return getattr(importlib.import_module(f"convspec.conformance.report.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BASELINE",
    "GEMM_SIZE",
    "SCHEMA",
    "SUITES",
    "CpuTimer",
    "EventTimer",
    "Gemm",
    "Layer",
    "MemoryServer",
    "Suite",
    "Unavailable",
    "add_ratios",
    "bench_layer",
    "blas_kernels",
    "dump",
    "is_gpu",
    "layer_inputs",
    "peak_extra",
    "resolve_suites",
    "rss_unavailable",
    "run",
    "set_threads",
    "suite_batch",
    "summarize",
    "timer_for",
    "tiny_suite",
    "vs_baseline_backward",
]
