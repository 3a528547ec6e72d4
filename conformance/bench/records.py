"""The shapes of what `convspec bench --out` writes (schema convspec-bench/1), and the fields derived
from the timings: per layer and backend the time ratio to the baseline and the share of the machine's
GEMM rate; per suite the geometric means, the worst layer and the network-weighted totals.

A result is ``{schema, command, started, seconds, settings, environment, load_average, backends, gemm,
suites}``; a suite ``{name, description, batch, gpu_batch, load_before, load_after, layers, summary}``; a
layer ``{name, c_in, c_out, size, kernel, out_size, stride, padding, dilation, groups, count,
flops_per_sample, results}``, with ``results`` ``{backend: {batch, timer, seconds, samples, spread, gflops,
peak_extra_bytes?, peak_ratio_to_baseline?, gemm_fraction, ratio_to_baseline, loaded?}}`` or ``{batch,
timer, error}``; ``peak_extra_bytes`` is ``{forward, backward, input, method: "rss", results, traced?}``
(bytes; memory.py, ``traced`` tracemalloc's figures for NumPy-array backends) or ``{input,
method, unavailable: reason}``, ``peak_ratio_to_baseline`` {forward, backward} its ratio to the baseline's
(> 1: more memory); ``spread`` is
[min, median, max] seconds of the rounds per phase, ``loaded`` the same timing record (with its ratio to the
baseline's loaded one) for the rounds run beside `--load busy`'s competing load. With --load the result also
holds ``competing_load`` (the workload and its measured rate), with --ops ``ops`` (ops.py).
"""

from __future__ import annotations

import json
import math
import statistics

import numpy as np

SCHEMA = "convspec-bench/1"
BASELINE = "torch-cpu"


def timing_record(batch: int, timer: str, times: dict, flops: dict, peak: dict | None = None) -> dict:
    """One backend on one layer: median seconds (forward, backward, and of their per-round sums), the
    samples, GFLOP/s from `flops` (the layer's at `batch`), and the peak extra bytes when measured."""
    fwd, bwd = statistics.median(times["forward"]), statistics.median(times["backward"])
    total = statistics.median([a + b for a, b in zip(times["forward"], times["backward"])])
    totals = [a + b for a, b in zip(times["forward"], times["backward"])]
    phases = (("forward", times["forward"]), ("backward", times["backward"]), ("total", totals))
    spread = {k: [min(v), statistics.median(v), max(v)] for k, v in phases}
    rec = {
        "batch": batch,
        "timer": timer,
        "seconds": {"forward": fwd, "backward": bwd, "total": total},
        "samples": times,
        "spread": spread,
    }
    rec["gflops"] = {k: flops[k] / v / 1e9 for k, v in rec["seconds"].items()}
    if peak is not None:
        rec["peak_extra_bytes"] = peak
    return rec


def error_record(batch: int, timer: str, error: str) -> dict:
    return {"batch": batch, "timer": timer, "error": error}


def layer_record(layer, results: dict) -> dict:
    """The layer's JSON record (a suites.Layer), with `results` {backend: timing or error record}."""
    return {
        "name": layer.name,
        "c_in": layer.c_in,
        "c_out": layer.c_out,
        "size": list(layer.size),
        "kernel": list(layer.kernel),
        "out_size": list(layer.out_sizes()),
        "stride": layer.stride,
        "padding": layer.padding,
        "dilation": layer.dilation,
        "groups": layer.groups,
        "count": layer.count,
        "flops_per_sample": {k: v for k, v in layer.flops(1).items()},
        "results": results,
    }


def _geomean(values) -> float | None:
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def peak_bytes(rec: dict) -> dict | None:
    """A timing record's measured peak extra bytes {forward, backward}, or None (not measured, unavailable)."""
    peak = (rec or {}).get("peak_extra_bytes")
    if not peak or peak.get("forward") is None or peak.get("backward") is None:
        return None
    return {"forward": peak["forward"], "backward": peak["backward"]}


def add_ratios(layer_rec: dict, machine_gflops: float, baseline: str = BASELINE) -> None:
    """Per backend: time per FLOP relative to the baseline (> 1: slower; at equal batch the plain time
    ratio), GFLOP/s as a fraction of the machine's GEMM rate, and the peak extra memory relative to the
    baseline's (at equal batch; None where the baseline's is 0)."""
    base = layer_rec["results"].get(baseline, {}).get("gflops")
    for rec in layer_rec["results"].values():
        if "gflops" not in rec:
            continue
        known = machine_gflops == machine_gflops  # not NaN
        rec["gemm_fraction"] = {k: v / machine_gflops for k, v in rec["gflops"].items()} if known else None
        rec["ratio_to_baseline"] = {k: base[k] / v for k, v in rec["gflops"].items()} if base else None
        base_peak, peak = peak_bytes(layer_rec["results"].get(baseline, {})), peak_bytes(rec)
        if peak and base_peak:
            rec["peak_ratio_to_baseline"] = {
                k: (peak[k] / base_peak[k] if base_peak[k] > 0 else None) for k in ("forward", "backward")
            }
        loaded_base = layer_rec["results"].get(baseline, {}).get("loaded", {}).get("gflops")
        if "gflops" in rec.get("loaded", {}):
            rec["loaded"]["ratio_to_baseline"] = (
                {k: loaded_base[k] / v for k, v in rec["loaded"]["gflops"].items()} if loaded_base else None
            )


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
            peaks = [(lr, peak_bytes(r)) for lr, r in ok if peak_bytes(r)]
            if peaks:
                entry["max_peak_extra_bytes"] = max(max(p.values()) for _, p in peaks)
            if name != baseline:
                entry.update(_above_baseline(ok, baseline))
        loaded = [(r.get("loaded") or {}).get("ratio_to_baseline") for r in recs]
        if loaded and all(loaded):
            worst = max(range(len(recs)), key=lambda i: loaded[i]["total"])
            entry["loaded"] = {
                f"geomean_ratio_{k}": _geomean(r[k] for r in loaded) for k in ("forward", "backward", "total")
            }
            entry["loaded"]["worst_layer"] = {
                "name": suite_rec["layers"][worst]["name"],
                "ratio_total": loaded[worst]["total"],
            }
        errors = [lr["name"] for lr, r in zip(suite_rec["layers"], recs) if "error" in r]
        if errors:
            entry["errors"] = errors
        out[name] = entry
    return out


SMALL_BYTES = 0.1 * (1 << 20)  # the precision of the MiB figures in the tables


def _above_baseline(ok: list, baseline: str) -> dict:
    """{peak_above_baseline: {forward, backward, either, of, under_0.1_mib}}: over the layers where both this
    backend's and the baseline's peak extra memory were measured, on how many this one's is the larger (per
    pass, and in either pass; and of those in either, how many by less than 0.1 MiB); and the geometric
    means of the per-layer ratios. Empty when no layer has both."""
    pairs = [(peak_bytes(r), peak_bytes(lr["results"].get(baseline, {}))) for lr, r in ok]
    pairs = [(a, b) for a, b in pairs if a and b]
    if not pairs:
        return {}
    above = {k: sum(a[k] > b[k] for a, b in pairs) for k in ("forward", "backward")}
    above["either"] = sum(a["forward"] > b["forward"] or a["backward"] > b["backward"] for a, b in pairs)
    above["of"] = len(pairs)
    # of those, the layers above by less than the tables' precision (0.1 MiB) in every pass that is above:
    # a call's own Python objects and a helper thread's malloc arena touch a few dozen KiB of pages after
    # the measurement's malloc_trim, where torch's C++ call can touch none; counted, and shown apart
    above["under_0.1_mib"] = sum(
        any(a[k] > b[k] for k in ("forward", "backward"))
        and all(a[k] - b[k] < SMALL_BYTES for k in ("forward", "backward"))
        for a, b in pairs
    )
    geo = {k: _geomean(a[k] / b[k] for a, b in pairs if b[k] > 0 and a[k] > 0) for k in ("forward", "backward")}
    return {"peak_above_baseline": above, "geomean_peak_ratio": geo}


def vs_baseline_backward(suite: dict, backend: str, baseline: str, *, loaded: bool = False):
    """(geometric mean, worst layer name, worst ratio) over the suite's layers of backend's
    forward+backward time / the baseline's backward time (quiet, or with `loaded` the rounds timed with
    the competing load on, both backends alike); None where a layer lacks either."""
    ratios = []
    for lr in suite["layers"]:
        a, b = lr["results"].get(backend, {}), lr["results"].get(baseline, {})
        if loaded:
            a, b = a.get("loaded") or {}, b.get("loaded") or {}
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


def memory_check(result: dict) -> dict | None:
    """For NumPy-array backends, which record both, the RSS figure against tracemalloc's over every layer
    and pass: {count, max_abs_diff (bytes), where: "suite/layer backend pass"}; None when none has both."""
    worst, count = None, 0
    for s in result.get("suites", []):
        for lr in s["layers"]:
            for name, r in lr["results"].items():
                peak = r.get("peak_extra_bytes") or {}
                traced = peak.get("traced")
                if not traced or peak_bytes(r) is None:
                    continue
                for k in ("forward", "backward"):
                    count += 1
                    diff = abs(peak[k] - traced[k])
                    if worst is None or diff > worst[0]:
                        worst = (diff, f"{s['name']}/{lr['name']} {name} {k}")
    return None if worst is None else {"count": count, "max_abs_diff": worst[0], "where": worst[1]}


def memory_unavailable(result: dict) -> dict:
    """{reason: [backend, ...]} of the timing records whose peak memory could not be measured."""
    out: dict = {}
    for s in result.get("suites", []):
        for lr in s["layers"]:
            for name, r in lr["results"].items():
                reason = (r.get("peak_extra_bytes") or {}).get("unavailable")
                if reason and name not in out.setdefault(reason, []):
                    out[reason].append(name)
    return out


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
