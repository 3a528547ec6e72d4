"""The report's Performance section: conv timings from `convspec bench --out FILE` (schema
convspec-bench/1, written by convspec.conformance.bench), read strictly and summarised per suite.

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

from .. import bench as B


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
        return f"{self.path.name} ({self.result['environment'].get('processor', '?')}, {self.result.get('started', '?')})"

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
        raise BenchFileError(path, f"is not JSON (line {exc.lineno}: {exc.msg}): not a `convspec bench --out` file") from None
    if not isinstance(result, dict) or result.get("schema") != B.SCHEMA:
        got = result.get("schema") if isinstance(result, dict) else type(result).__name__
        raise BenchFileError(path, f"must be a bench result of schema {B.SCHEMA!r} (from `convspec bench --out`), got schema {got!r}")
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


SUMMARY_HEADER = ["suite", "backend", "fwd x", "bwd x", "f+b x", "f+b / baseline bwd", "worst layer (f+b x)", "network GF/s", "GEMM %"]


def summary_rows(run: BenchRun) -> list:
    """Per suite and backend: geometric-mean time ratios to the baseline (> 1: slower), the ratio to the
    baseline's backward alone, the worst layer, the network's GFLOP/s and its share of the GEMM rate."""
    rate = run.result["gemm"]["machine_gflops"]
    rows = []
    for s in run.result["suites"]:
        for name, e in s["summary"].items():
            worst = e.get("worst_layer")
            fair = None if name == run.baseline else B.vs_baseline_backward(s, name, run.baseline)
            net = e.get("network_gflops_total")
            rows.append([
                s["name"], name, B._fmt(e.get("geomean_ratio_forward")), B._fmt(e.get("geomean_ratio_backward")),
                B._fmt(e.get("geomean_ratio_total")),
                "-" if fair is None else f"{fair[0]:.2f} (worst {fair[1]} {fair[2]:.2f})",
                "-" if not worst else f"{worst['name']} ({worst['ratio_total']:.2f})",
                B._fmt(net, ".1f"), "-" if net is None or not rate or rate != rate else f"{100 * net / rate:.0f}",
            ])
    return rows


def header_lines(run: BenchRun) -> list:
    """Machine, threads, GEMM rate, load average and settings of the run (one line each)."""
    try:
        lines = B.header_lines(run.result)
    except (KeyError, TypeError, AttributeError):  # an older or trimmed file: say what there is
        env = run.result["environment"]
        lines = [f"machine: {env.get('processor', '?')}", f"machine GEMM rate {run.result['gemm']['machine_gflops']:.1f} GFLOP/s",
                 f"load average: {run.result['load_average']}"]
    if run.result.get("command"):
        lines.append(f"command: {run.result['command']}")
    return lines


HINT = ("x = time per FLOP relative to the baseline backend (> 1: slower), geometric mean over each suite's layers; "
        "'f+b / baseline bwd' compares forward+backward with the baseline's backward alone, which for an autograd "
        "backend (torch) re-runs the forward; GEMM % = the network's GFLOP/s as a share of the machine's float32 GEMM rate.")


def plot(run: BenchRun) -> str | None:
    """The bench's GFLOP/s-per-layer plot (SVG text), or None without matplotlib or suites."""
    return B.plot_svg(run.result)
