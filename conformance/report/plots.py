"""The report's pictures, drawn with matplotlib's object API (no pyplot, so no global backend and no
display: a Figure rendered to SVG by the Agg-free SVG canvas). Each function returns SVG text, or None
when there is nothing to draw. Text is drawn as paths, so the SVG needs no fonts; the hash salt and the
absent date make the output byte-for-byte reproducible. PALETTE and style() are the one plot style of
the reports and of `convspec bench --plot` (:func:`bench_gflops`)."""

from __future__ import annotations

import io

from convspec import SpecError

from .model import Report

FLOOR = 1e-4  # bound ratios below this (exact results are 0) are drawn at the floor of the log axis
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def style(font_size: float = 9) -> dict:
    """matplotlib rc settings of every convspec plot: text as paths, a fixed SVG hash salt, no top or right
    spine."""
    return {
        "svg.hashsalt": "convspec",
        "svg.fonttype": "path",
        "font.size": font_size,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def _horizontal() -> dict:
    """matplotlib 3.10 replaced boxplot's vert=False by orientation='horizontal' (vert warns from 3.11)."""
    import inspect

    from matplotlib.axes import Axes

    return (
        {"orientation": "horizontal"}
        if "orientation" in inspect.signature(Axes.boxplot).parameters
        else {"vert": False}
    )


def _mpl():
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the environment
        raise SpecError(
            "matplotlib",
            "the report's plots need matplotlib: pip install matplotlib "
            "(or, in a convspec checkout, pip install '.[report]')",
        ) from None
    return matplotlib, Figure


def _svg(fig, tight: bool = True) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, **({"bbox_inches": "tight"} if tight else {}))
    return buf.getvalue()


def color(report: Report, backend: str) -> str:
    i = report.columns.index(backend) if backend in report.columns else len(report.columns)
    return PALETTE[i % len(PALETTE)]


def bound_ratios(report: Report) -> str | None:
    """Per op, one box per backend: the spread of max |got - expected| / bound over the op's cases
    (whiskers from the smallest to the largest case). 1 is the error bound."""
    matplotlib, Figure = _mpl()
    horizontal = _horizontal()
    ops = [op for _, rows in report.matrix for op, _ in rows if report.ratios.get(op)]
    backends = [b for b in report.columns if any(report.ratios.get(op, {}).get(b) for op in ops)]
    if not ops or not backends:
        return None
    with matplotlib.rc_context(style()):
        n = len(backends)
        fig = Figure(figsize=(7.5, 0.9 + 0.32 * len(ops) * max(1, n) ** 0.6 + 0.4))
        ax = fig.add_subplot()
        height = 0.8 / n
        for k, b in enumerate(backends):
            data, pos = [], []
            for i, op in enumerate(ops):
                vals = report.ratios.get(op, {}).get(b)
                if vals:
                    data.append([max(v, FLOOR) for v in vals])
                    pos.append(i + (k - (n - 1) / 2) * height)
            c = color(report, b)
            ax.boxplot(
                data,
                positions=pos,
                widths=height * 0.85,
                **horizontal,
                whis=(0, 100),
                patch_artist=True,
                manage_ticks=False,
                boxprops={"facecolor": c, "alpha": 0.55, "edgecolor": c},
                medianprops={"color": "black"},
                whiskerprops={"color": c},
                capprops={"color": c},
                flierprops={"marker": ""},
            )
            ax.plot([], [], color=c, linewidth=6, alpha=0.55, label=b)
        ax.axvline(1.0, color="#d62728", linestyle="--", linewidth=1.2, label="error bound")
        ax.set_xscale("log")
        ax.set_xlim(FLOOR / 2, None)
        ax.set_yticks(range(len(ops)), ops)
        ax.invert_yaxis()
        ax.set_xlabel(
            f"bound ratio: max |backend - reference| / bound per case (log; below {FLOOR:g} drawn at {FLOOR:g})"
        )
        ax.set_title("How close each backend runs to its error bound")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
        return _svg(fig)


def loss_curves(report: Report) -> str | None:
    """LeNet-5 training loss of every backend over the reference's."""
    matplotlib, Figure = _mpl()
    curves = [c for c in report.trains if c.losses]
    if not curves and not report.reference_train:
        return None
    with matplotlib.rc_context(style()):
        fig = Figure(figsize=(7.5, 3.6))
        ax = fig.add_subplot()
        if report.reference_train:
            xs, ys = zip(*report.reference_train)
            ax.plot(xs, ys, color="black", linewidth=3, alpha=0.35, label="reference", zorder=1)
        for c in curves:
            xs, ys = zip(*c.losses)
            ax.plot(xs, ys, color=color(report, c.backend), linewidth=1.2, label=c.backend, zorder=2)
        ax.set_xlabel("training step")
        ax.set_ylabel("loss")
        ax.set_title("LeNet-5 training loss: each backend over the reference")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return _svg(fig)


def weight_diffs(report: Report) -> str | None:
    """The difference between each backend's weights and the reference's over training steps."""
    matplotlib, Figure = _mpl()
    curves = [c for c in report.trains if c.weight_diff]
    if not curves:
        return None
    with matplotlib.rc_context(style()):
        fig = Figure(figsize=(7.5, 3.2))
        ax = fig.add_subplot()
        for c in curves:
            xs, ys = zip(*c.weight_diff)
            ax.plot(
                xs,
                ys,
                color=color(report, c.backend),
                linewidth=1.2,
                marker="." if len(xs) < 40 else None,
                label=c.backend,
            )
        if all(y > 0 for c in curves for _, y in c.weight_diff):
            ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("max |w_backend - w_reference|")
        ax.set_title("Weight difference from the reference over training")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return _svg(fig)


def all_plots(report: Report) -> list:
    """[(anchor, caption, svg)] for every picture there is data for."""
    out = []
    for anchor, caption, fn in (
        ("plot-loss", "LeNet-5 loss curves of every backend over the reference's", loss_curves),
        (
            "plot-bound-ratio",
            "Bound ratio per op and backend: how close each runs to its error bound (1 = at the bound)",
            bound_ratios,
        ),
        ("plot-weight-diff", "Weight difference from the reference over training steps", weight_diffs),
    ):
        svg = fn(report)
        if svg:
            out.append((anchor, caption, svg))
    for i, run in enumerate(report.benches):
        svg = bench_gflops(run.result)
        if svg:
            caption = (
                f"Conv forward + backward GFLOP/s per layer and backend ({run.path.name}), with the machine's GEMM rate"
            )
            out.append((f"plot-perf-{i + 1}", caption, svg))
    return out


def bench_gflops(result: dict) -> str | None:
    """GFLOP/s (forward + backward) per layer per backend of one `convspec bench` result, one panel per
    suite, with the machine's GEMM rate as a line. SVG text, or None without matplotlib or suites."""
    try:
        matplotlib, Figure = _mpl()
    except SpecError:
        return None
    suites = result["suites"]
    if not suites:
        return None
    names = [b["name"] for b in result["backends"]]
    with matplotlib.rc_context(style(font_size=8)):
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
                ax.barh(ys, vals, height=bar, color=PALETTE[j % len(PALETTE)], label=name)
            ax.axvline(rate, color="#555555", linestyle="--", linewidth=0.8, label=f"GEMM {rate:.0f}")
            ax.set_yticks(range(len(layers)), [lr["name"] for lr in layers])
            ax.invert_yaxis()
            ax.set_title(f"{s['name']} (batch {s['batch']}): forward + backward GFLOP/s", loc="left")
            ax.legend(loc="lower right", fontsize=7, frameon=False)
        fig.tight_layout()
        return _svg(fig, tight=False)
