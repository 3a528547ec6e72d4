"""The tables that `--load busy` and `--ops` add to `convspec bench`'s output and Markdown: per layer the
[min, median, max] of the rounds quiet and loaded (so a stall shows as a max far above the median) beside
the peak extra memory; per suite the geometric means quiet and loaded; per LeNet op the times and ratios.
Each function takes the result of bench.run and returns (header, rows); ``extra_markdown`` joins them."""

from __future__ import annotations

from ..report.perf import peak_cells
from .records import vs_baseline_backward


def _ms(v) -> str:
    return "-" if v is None else f"{v * 1e3:.2f}" if v < 1 else f"{v * 1e3:.0f}"


def _x(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def _spread(rec, key="total") -> str:
    s = (rec or {}).get("spread", {}).get(key)
    return "-" if not s else f"{_ms(s[0])} / {_ms(s[1])} / {_ms(s[2])}"


SPREAD_HEADER = [
    "suite",
    "layer",
    "backend",
    "f+b ms min / med / max",
    "f+b x",
    "loaded f+b ms min / med / max",
    "loaded f+b x",
    "extra MiB fwd / bwd",
    "peak x fwd / bwd",
]


def spread_rows(result: dict) -> tuple:
    """Per suite, layer and backend: the rounds' forward+backward spread quiet and loaded, the ratios to the
    baseline (loaded: to the baseline's loaded time) and the peak extra memory."""
    rows = []
    for s in result["suites"]:
        for lr in s["layers"]:
            for name, r in lr["results"].items():
                if "error" in r:
                    rows.append([s["name"], lr["name"], name, "error", "", "", "", "", ""])
                    continue
                loaded = r.get("loaded") or {}
                rows.append(
                    [
                        s["name"],
                        lr["name"],
                        name,
                        _spread(r),
                        _x((r.get("ratio_to_baseline") or {}).get("total")),
                        _spread(loaded),
                        _x((loaded.get("ratio_to_baseline") or {}).get("total")),
                    ]
                    + peak_cells(r, " / ")
                )
    return SPREAD_HEADER, rows


LOADED_HEADER = [
    "suite",
    "backend",
    "f+b x quiet",
    "f+b x loaded",
    "worst layer quiet",
    "worst layer loaded",
    "f+b / baseline bwd quiet",
    "f+b / baseline bwd loaded",
    "max stall (max / median, loaded)",
]


def _step_cell(suite: dict, name: str, baseline: str | None, loaded: bool) -> str:
    """The backend's forward+backward over the baseline's backward (its training step), geometric mean
    over the suite's layers with the worst layer, quiet or loaded; '-' for the baseline itself."""
    ratio = None if name == baseline or baseline is None else vs_baseline_backward(suite, name, baseline, loaded=loaded)
    return "-" if ratio is None else f"{ratio[0]:.2f} (worst {ratio[1]} {ratio[2]:.2f})"


def loaded_summary_rows(result: dict) -> tuple:
    """Per suite and backend: geometric means quiet and loaded, the worst layers, forward+backward over the
    baseline's training step (its backward) quiet and loaded, and the largest ratio of a layer's slowest
    loaded round to its median (a cliff shows here)."""
    rows = []
    baseline = (result.get("settings") or {}).get("baseline")
    for s in result["suites"]:
        for name, e in s["summary"].items():
            lo = e.get("loaded") or {}
            stalls = [
                (r["loaded"]["spread"]["total"][2] / r["loaded"]["spread"]["total"][1], lr["name"])
                for lr in s["layers"]
                for n, r in lr["results"].items()
                if n == name and "spread" in (r.get("loaded") or {}) and r["loaded"]["spread"]["total"][1] > 0
            ]
            worst = e.get("worst_layer") or {}
            lworst = lo.get("worst_layer") or {}
            stall = max(stalls) if stalls else None
            rows.append(
                [
                    s["name"],
                    name,
                    _x(e.get("geomean_ratio_total")),
                    _x(lo.get("geomean_ratio_total")),
                    f"{worst['name']} ({worst['ratio_total']:.2f})" if worst else "-",
                    f"{lworst['name']} ({lworst['ratio_total']:.2f})" if lworst else "-",
                    _step_cell(s, name, baseline, loaded=False),
                    _step_cell(s, name, baseline, loaded=True),
                    "-" if stall is None else f"{stall[0]:.2f} ({stall[1]})",
                ]
            )
    return LOADED_HEADER, rows


OPS_HEADER = [
    "op",
    "backend",
    "fwd ms",
    "bwd ms",
    "f+b ms min / med / max",
    "f+b x",
    "loaded f+b ms min / med / max",
    "loaded f+b x",
]


def ops_rows(result: dict) -> tuple:
    rows = []
    ops = result.get("ops") or {}
    for lr in ops.get("layers", []):
        for name, r in lr["results"].items():
            if "error" in r:
                rows.append([lr["name"], name, "error: " + r["error"][:50], "", "", "", "", ""])
                continue
            loaded = r.get("loaded") or {}
            rows.append(
                [
                    lr["name"],
                    name,
                    _ms(r["seconds"]["forward"]),
                    _ms(r["seconds"]["backward"]),
                    _spread(r),
                    _x((r.get("ratio_to_baseline") or {}).get("total")),
                    _spread(loaded),
                    _x((loaded.get("ratio_to_baseline") or {}).get("total")),
                ]
            )
    for name, e in ops.get("summary", {}).items():
        rows.append(
            [
                "geometric mean",
                name,
                "",
                "",
                "",
                _x(e.get("geomean_ratio_total")),
                "",
                _x(e.get("loaded_geomean_ratio_total")),
            ]
        )
    return OPS_HEADER, rows


def load_line(result: dict) -> str | None:
    cl = result.get("competing_load")
    if not cl:
        return None
    rate = cl.get("iterations_per_second")
    g = (cl.get("gemm") or {}).get("machine_gflops")
    return (
        f"competing load (--load {cl['kind']}): {cl['workload']} (CPU {cl['cpu']}), on for "
        f"{cl['seconds_on']:.1f} s at {'-' if rate is None else f'{rate:.0f}'} iterations/s; "
        f"float32 GEMM rate with it on: {'-' if g is None else f'{g:.1f}'} GFLOP/s"
    )


def _md(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def extra_markdown(result: dict) -> str:
    """The quiet/loaded summary, the per-layer spread with peak memory, and the per-op table (those that
    apply) as Markdown; empty when the run had neither --load nor --ops and no spread."""
    parts = []
    line = load_line(result)
    if line:
        parts += [
            "### Quiet and loaded (geometric mean over each suite's layers)",
            "",
            f"- {line}",
            "",
            _md(*loaded_summary_rows(result)),
        ]
    if result.get("suites"):
        parts += ["", "### Per layer: rounds' min / median / max and peak extra memory", "", _md(*spread_rows(result))]
    if result.get("ops"):
        parts += [
            "",
            f"### LeNet-5's other ops (batch {result['ops']['batch']}, x = time / {result['ops']['baseline']}'s)",
            "",
            _md(*ops_rows(result)),
        ]
    return ("\n".join(parts) + "\n") if parts else ""
