"""`convspec bench` results as tables: read strictly for the report's Performance section (`convspec report
--bench FILE`, schema convspec-bench/1, written by convspec.conformance.bench), and the rows that the
bench command prints and writes as Markdown (header lines, per-layer rows, per-suite summary rows).

Each bench file gives, per suite and backend, the geometric mean over the suite's layers of the time
ratio to the baseline backend (forward, backward, forward+backward), the worst layer, and the network's
GFLOP/s; and, for every backend other than the baseline, forward+backward against the baseline's
backward alone (the contract's backward of an autograd backend such as torch-cpu runs the forward
again, so its backward time is a whole training step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from convspec import SpecError

from ..bench.records import SCHEMA, memory_check, memory_unavailable, peak_bytes, vs_baseline_backward
from .format import fmt_num, mib


class BenchFileError(SpecError):
    """A bench file that cannot go into a report: not JSON, another schema, or missing fields."""

    def __init__(self, path, rule: str):
        super().__init__(f"--bench {path}", rule)


@dataclass
class BenchRun:
    """One bench file: its path and the parsed result of conformance.bench.run."""

    path: Path
    result: dict

    @property
    def label(self) -> str:
        return (
            f"{self.path.name} ({self.result['environment'].get('processor', '?')}, {self.result.get('started', '?')})"
        )

    @property
    def baseline(self) -> str:
        return self.result["settings"]["baseline"]


def _need(path, obj, key, kind, where):
    if not isinstance(obj, dict) or key not in obj:
        raise BenchFileError(path, f"{where} has no {key!r} field: not a complete `convspec bench --out` file")
    if not isinstance(obj[key], kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BenchFileError(path, f"{where}.{key} must be a {names}, got {type(obj[key]).__name__}")
    return obj[key]


def load_bench(path) -> BenchRun:
    """Read and check one bench JSON file; a BenchFileError names the file and what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BenchFileError(path, "is not UTF-8 text: not a convspec bench file") from None
    except OSError as exc:
        raise BenchFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        result = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchFileError(
            path, f"is not JSON (line {exc.lineno}: {exc.msg}): not a `convspec bench --out` file"
        ) from None
    if not isinstance(result, dict) or result.get("schema") != SCHEMA:
        got = result.get("schema") if isinstance(result, dict) else type(result).__name__
        raise BenchFileError(
            path, f"must be a bench result of schema {SCHEMA!r} (from `convspec bench --out`), got schema {got!r}"
        )
    settings = _need(path, result, "settings", dict, "the file")
    _need(path, settings, "baseline", str, "settings")
    _need(path, result, "environment", dict, "the file")
    _need(path, result, "backends", list, "the file")
    gemm = _need(path, result, "gemm", dict, "the file")
    _need(path, gemm, "machine_gflops", (int, float), "gemm")
    _need(path, result, "load_average", dict, "the file")
    for i, s in enumerate(_need(path, result, "suites", list, "the file")):
        where = f"suites[{i}]"
        _need(path, s, "name", str, where)
        _need(path, s, "summary", dict, where)
        for j, lr in enumerate(_need(path, s, "layers", list, where)):
            _need(path, lr, "name", str, f"{where}.layers[{j}]")
            _need(path, lr, "results", dict, f"{where}.layers[{j}]")
    return BenchRun(path, result)


def _summary_head(suite: dict, name: str, entry: dict, baseline: str) -> list:
    """The first seven cells of a summary row: suite, backend, the three geometric-mean ratios, forward +
    backward over the baseline's backward alone, and the worst layer."""
    worst = entry.get("worst_layer")
    strict = None if name == baseline else vs_baseline_backward(suite, name, baseline)
    return [
        suite["name"],
        name,
        fmt_num(entry.get("geomean_ratio_forward")),
        fmt_num(entry.get("geomean_ratio_backward")),
        fmt_num(entry.get("geomean_ratio_total")),
        "-" if strict is None else f"{strict[0]:.2f} (worst {strict[1]} {strict[2]:.2f})",
        "-" if not worst else f"{worst['name']} ({worst['ratio_total']:.2f})",
    ]


_HEAD = ["suite", "backend", "fwd x", "bwd x", "f+b x", "f+b / baseline bwd", "worst layer (f+b x)", "network GF/s"]
SUMMARY_HEADER = _HEAD + ["GEMM %"]  # the report's Performance section
BENCH_SUMMARY_HEADER = _HEAD + [  # what `convspec bench` prints and writes
    "max extra MiB",
    "layers with peak > baseline's (fwd / bwd / either)",
    "peak x fwd / bwd",
]


def peak_cells(rec: dict, sep: str = "/") -> list:
    """[extra MiB forward/backward, memory ratio to the baseline forward/backward] of one timing record:
    '-' where not measured (the reason is in the header lines) or where the baseline's was 0."""
    peak = peak_bytes(rec)
    ratio = rec.get("peak_ratio_to_baseline") or {}
    return [
        "-" if peak is None else f"{mib(peak['forward'])}{sep}{mib(peak['backward'])}",
        "-" if not ratio else f"{fmt_num(ratio.get('forward'))}{sep}{fmt_num(ratio.get('backward'))}",
    ]


def above_text(above: dict | None) -> str:
    """'fwd / bwd / either of N' layers whose peak is above the baseline's, with how many of `either` are
    above by less than 0.1 MiB (the tables' precision) when there are any: '... (3 by < 0.1 MiB)'."""
    if not above:
        return "-"
    text = f"{above['forward']} / {above['backward']} / {above['either']} of {above['of']}"
    small = above.get("under_0.1_mib")
    return f"{text} ({small} by < 0.1 MiB)" if small else text


def _above_cells(entry: dict) -> list:
    above, geo = entry.get("peak_above_baseline"), entry.get("geomean_peak_ratio") or {}
    return [
        above_text(above),
        "-" if not geo else f"{fmt_num(geo.get('forward'))} / {fmt_num(geo.get('backward'))}",
    ]


def summary_rows(run: BenchRun) -> list:
    """Per suite and backend: geometric-mean time ratios to the baseline (> 1: slower), the ratio to the
    baseline's backward alone, the worst layer, the network's GFLOP/s and its share of the GEMM rate."""
    rate = run.result["gemm"]["machine_gflops"]
    rows = []
    for s in run.result["suites"]:
        for name, e in s["summary"].items():
            net = e.get("network_gflops_total")
            rows.append(
                _summary_head(s, name, e, run.baseline)
                + [
                    fmt_num(net, ".1f"),
                    "-" if net is None or not rate or rate != rate else f"{100 * net / rate:.0f}",
                ]
            )
    return rows


def bench_summary_rows(result: dict) -> list:
    """Per suite and backend: geometric-mean time ratios to the baseline, and forward+backward over
    the baseline's backward alone (the stricter comparison when the baseline's backward re-runs its
    forward under autograd, as torch's does through the contract), the worst layer, the network's
    GFLOP/s and the largest peak extra memory."""
    baseline = result["settings"]["baseline"]
    rows = []
    for s in result["suites"]:
        for name, e in s["summary"].items():
            rows.append(
                _summary_head(s, name, e, baseline)
                + [
                    fmt_num(e.get("network_gflops_total"), ".1f"),
                    "-" if "max_peak_extra_bytes" not in e else mib(e["max_peak_extra_bytes"]),
                ]
                + _above_cells(e)
            )
    return rows


LAYER_HEADER = [
    "layer",
    "backend",
    "batch",
    "fwd ms",
    "bwd ms",
    "fwd GF/s",
    "f+b GF/s",
    "fwd x",
    "bwd x",
    "f+b x",
    "GEMM %",
    "extra MiB f/b",
    "peak x f/b",
]


def layer_rows(suite_rec: dict, baseline: str | None = None) -> list:
    """Table rows: layer, backend, batch, ms fwd/bwd, GFLOP/s fwd and fwd+bwd, ratio fwd/bwd/total, GEMM %,
    peak extra MiB (forward/backward) and its ratio to the baseline's. The ratios were computed against the
    run's baseline; `baseline` is accepted for the callers that pass it."""
    rows = []
    for lr in suite_rec["layers"]:
        for name, r in lr["results"].items():
            if "error" in r:
                rows.append([lr["name"], name, str(r["batch"]), "error: " + r["error"][:60]] + [""] * 9)
                continue
            ratio = r.get("ratio_to_baseline") or {}
            frac = r.get("gemm_fraction") or {}
            rows.append(
                [
                    lr["name"],
                    name,
                    str(r["batch"]),
                    f"{r['seconds']['forward'] * 1e3:.2f}",
                    f"{r['seconds']['backward'] * 1e3:.2f}",
                    f"{r['gflops']['forward']:.1f}",
                    f"{r['gflops']['total']:.1f}",
                    fmt_num(ratio.get("forward")),
                    fmt_num(ratio.get("backward")),
                    fmt_num(ratio.get("total")),
                    fmt_num(None if frac.get("total") is None else 100 * frac["total"], ".0f"),
                ]
                + peak_cells(r)
            )
    return rows


def result_header_lines(result: dict) -> list:
    """Machine, threads, GEMM rate, load average and settings of one bench result (one line each)."""
    env, g = result["environment"], result["gemm"]
    th = env["threads"]
    blas = th.get("blas")
    blas_txt = blas if isinstance(blas, str) else ", ".join(f"{b['library']} {b['threads']}" for b in blas)
    libs = ", ".join(f"{k} {v['gflops']:.1f}" for k, v in g["libraries"].items())
    settings = result["settings"]
    numpy_txt, torch_txt = kernel_notes(env.get("kernels"))
    lines = [
        f"machine: {env['processor']} ({env.get('cpus_usable', env['cpus'])} usable CPUs), numpy {env['numpy']}"
        f"{numpy_txt}, torch {env.get('torch', '-')}{torch_txt}",
        f"threads: torch {torch_threads_text(th)}, BLAS {blas_txt}",
        f"float32 GEMM {g['size']}^3 (median, GFLOP/s): {libs}; machine rate {g['machine_gflops']:.1f}",
        f"load average: start {result['load_average']['start']}, end {result['load_average']['end']}",
        f"dtype {settings['dtype']}, {settings['warmup']} warm-up + {settings['repeats']} interleaved rounds, medians"
        f"{PRIMED if settings.get('primed') else ''}{settle_text(result.get('settle'))}; "
        f"ratio x = time per FLOP / {settings['baseline']}'s (> 1 slower)",
    ]
    memory = memory_line(result)
    return lines + ([memory] if memory else [])


PRIMED = (
    " (each backend's turn opens, once this process's threads are idle or after 1 s, with untimed forwards for at"
    " least 20 ms: its timed calls run back to back)"
)


def settle_text(log: dict | None) -> str:
    """How many of the run's waits for idle threads gave up (empty when none did, or for older files)."""
    if not log or not log.get("capped"):
        return ""
    return f" (**{log['capped']} of {log['waits']} waits for idle threads gave up after 1 s**)"


def torch_threads_text(th: dict) -> str:
    """torch's threads as set, and as read back after the run (files written before that check: as set)."""
    want, after = th.get("torch", "-"), th.get("torch_after_run")
    if after is None:
        return f"{want}"
    if after == want:
        return f"{want} (read back after the run)"
    return f"{want} requested, **{after} in use after the run** (torch's figures are not on the requested threads)"


def kernel_notes(kernels: dict | None) -> tuple:
    """(' (OpenBLAS 0.3.31 Haswell kernels, OPENBLAS_CORETYPE=...)', ' (CPU capability AVX512)') from a bench
    environment's "kernels" (timing.blas_kernels); empty strings for files written before it existed."""
    if not kernels:
        return "", ""
    blas = kernels.get("blas")
    parts = []
    if isinstance(blas, list):
        for b in blas:
            name = {"openblas": "OpenBLAS", "mkl": "MKL", "blis": "BLIS"}.get(b.get("library"), b.get("library"))
            arch = b.get("architecture")
            parts.append(f"{name} {b.get('version') or ''}".strip() + (f" {arch} kernels" if arch else ""))
    elif blas:
        parts.append(str(blas))
    env = kernels.get("openblas_env") or {}
    coretype = env.get("OPENBLAS_CORETYPE")
    parts.append(
        f"OPENBLAS_CORETYPE={coretype}" if coretype else "OPENBLAS_CORETYPE unset: kernels chosen from the CPU"
    )
    parts += [f"{k}={v}" for k, v in env.items() if k != "OPENBLAS_CORETYPE"]
    cap = kernels.get("torch_cpu_capability")
    return f" ({', '.join(parts)})", (f" (CPU capability {cap})" if cap else "")


def memory_line(result: dict) -> str | None:
    """How the peak extra memory was measured, where it could not be and why, and the tracemalloc
    cross-check for NumPy; None for a run without memory figures."""
    mem = result["settings"].get("memory")
    peaks = [
        r["peak_extra_bytes"]
        for s in result["suites"]
        for lr in s["layers"]
        for r in lr["results"].values()
        if "peak_extra_bytes" in r
    ]
    if not mem and not peaks:
        return None
    if not mem and not any(p.get("method") for p in peaks):  # a file from before the RSS method
        return "peak extra memory: tracemalloc's peak of one call minus its results (NumPy-array backends only)"
    text = (
        "peak extra memory: the RSS peak of one call above the RSS before it, minus the arrays it returns, in a "
        "forked child per layer, backend and pass after one warm-up call (/proc/self/clear_refs + VmHWM; "
        "every backend alike); peak x = that / the baseline's"
    )
    cal = (mem or {}).get("calibration") or {}
    if "expected" in cal:
        known = ", ".join(f"{lib} {mib(cal[lib])}" for lib in ("numpy", "torch") if lib in cal)
        text += (
            f"; calibration: a no-op {mib(cal['noop'])} MiB, a {mib(cal['expected'])} MiB array made in the call: "
            f"{known}"
        )
    check = memory_check(result)
    if check:
        diff = check["max_abs_diff"]
        text += (
            f"; NumPy cross-check against tracemalloc: largest difference "
            f"{f'{mib(diff)} MiB' if diff >= 1 << 20 else f'{diff >> 10} KiB'} over {check['count']} layer passes "
            f"({check['where']})"
        )
    for reason, names in memory_unavailable(result).items():
        text += f"; not measured for {', '.join(names)}: {reason}"
    return text


def header_lines(run: BenchRun) -> list:
    """Machine, threads, GEMM rate, load average and settings of the run (one line each)."""
    try:
        lines = result_header_lines(run.result)
    except (KeyError, TypeError, AttributeError):  # an older or trimmed file: say what there is
        env = run.result["environment"]
        lines = [
            f"machine: {env.get('processor', '?')}",
            f"machine GEMM rate {run.result['gemm']['machine_gflops']:.1f} GFLOP/s",
            f"load average: {run.result['load_average']}",
        ]
    if run.result.get("command"):
        lines.append(f"command: {run.result['command']}")
    return lines


HINT = (
    "x = time per FLOP relative to the baseline backend (> 1: slower), geometric mean over each suite's layers; "
    "'f+b / baseline bwd' compares forward+backward with the baseline's backward alone, which for an autograd "
    "backend (torch) re-runs the forward; GEMM % = the network's GFLOP/s as a share of the machine's float32 GEMM "
    "rate."
)
