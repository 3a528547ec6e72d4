"""`convspec bench [--backend NAME ...] [--suite lenet|resnet50|vgg|alphago|text1d|all] [--out FILE]`:
time conv forward and backward of every backend side by side on real networks' layer shapes (see
convspec.conformance.bench; the tables, Markdown and plot come from convspec.conformance.report)."""

from __future__ import annotations

import shlex
import sys

import click

from convspec import SpecError

SUITE_CHOICES = ("lenet", "resnet50", "vgg", "alphago", "text1d", "all", "tiny")


def _backends(names, plugin):
    """The available backends among the registry's (all of them, or those named)."""
    from .common import availability, load_registry

    reg = load_registry(plugin, names)
    chosen = []
    for name in names or list(reg.backends):
        b = reg.backends[name]
        reason = availability(b)
        if reason is not None:
            if names:
                raise click.ClickException(f"backend {name} unavailable: {reason}")
            continue
        if not callable(getattr(b, "conv", None)) or not callable(getattr(b, "conv_backward", None)):
            if names:
                raise click.ClickException(f"backend {name} has no conv / conv_backward")
            continue
        chosen.append(b)
    if not chosen:
        raise click.ClickException("no available backend with conv and conv_backward")
    return chosen


def layer_bytes(layer, batch: int, itemsize: int) -> int:
    """What timing one conv layer at `batch` holds at once, estimated: x, w, the output and its gradient,
    the input and weight gradients, and an im2col workspace."""
    from math import prod

    x, w, _ = layer.shapes(batch)
    sizes = layer.out_sizes(1)  # the same at every batch
    out = batch * layer.c_out * prod(sizes)
    cols = batch * prod(sizes) * (layer.c_in // layer.groups) * prod(layer.kernel)
    return itemsize * (2 * prod(x) + 3 * prod(w) + 2 * out + cols)


def available_memory() -> int | None:
    """MemAvailable of /proc/meminfo, bytes (None where unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def parse_batches(values) -> int | dict | None:
    """--batch values -> bench.run's `batch`: one plain N sets every suite's CPU batch, SUITE=N one suite's
    (repeatable; a SUITE=N wins over a plain N for its suite)."""
    every, per = None, {}
    for v in values:
        name, sep, n = v.rpartition("=")
        try:
            n = int(n)
        except ValueError:
            n = 0
        if n < 1:
            raise click.BadParameter(f"{v!r}: expected N or SUITE=N with N >= 1", param_hint="--batch")
        if not sep:
            every = n
        elif name not in SUITE_CHOICES or name == "all":
            raise click.BadParameter(
                f"{v!r}: unknown suite {name!r}; expected one of {', '.join(c for c in SUITE_CHOICES if c != 'all')}",
                param_hint="--batch",
            )
        else:
            per[name] = n
    if not per:
        return every
    if every is not None:
        per = dict({name: every for name in SUITE_CHOICES if name != "all"}, **per)
    return per


def _check_memory(suites, batch, dtype) -> None:
    """Refuse, before allocating anything, a batch whose largest layer needs more memory than is free."""
    import numpy as np
    from convspec.conformance.bench.run import suite_batch

    free = available_memory()
    if free is None:
        return
    itemsize = np.dtype(dtype).itemsize
    for s in suites:
        b = suite_batch(s, batch)
        for layer in s.layers:
            need = layer_bytes(layer, b, itemsize)
            if need > 0.8 * free:
                hint = "--batch" if b != s.batch else f"--batch (suite {s.name}'s default batch is {s.batch})"
                raise click.BadParameter(
                    f"batch {b}: layer {s.name}/{layer.name} needs about {need / 2**30:.1f} GiB, "
                    f"but only {free / 2**30:.1f} GiB of memory is free; use a smaller {hint}",
                    param_hint="--batch",
                )


@click.command("bench")
@click.option(
    "-b",
    "--backend",
    "names",
    multiple=True,
    metavar="NAME",
    help="Backend to time (repeatable; default: every available one).",
)
@click.option(
    "--suite",
    "suites",
    multiple=True,
    type=click.Choice(SUITE_CHOICES),
    default=("all",),
    show_default=True,
    help="Layer suite (repeatable).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False), default="bench.json", show_default=True, help="JSON results file."
)
@click.option(
    "--markdown", "md_path", type=click.Path(dir_okay=False), help="Also write the tables as Markdown to this file."
)
@click.option(
    "--plot", "plot_path", type=click.Path(dir_okay=False), help="Also write the GFLOP/s plot (SVG) to this file."
)
@click.option(
    "--repeats",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    help="Interleaved timed rounds per layer (the median is reported).",
)
@click.option("--warmup", type=click.IntRange(0), default=1, show_default=True, help="Untimed rounds per layer first.")
@click.option(
    "--threads", type=click.IntRange(1), default=2, show_default=True, help="Threads for torch and for NumPy's BLAS."
)
@click.option(
    "--batch",
    "batch_values",
    multiple=True,
    metavar="N|SUITE=N",
    help="CPU batch: N for every suite, SUITE=N for one (repeatable; default: each suite's own).",
)
@click.option("--gpu-batch", type=click.IntRange(1), help="Override every suite's GPU batch.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--no-memory",
    is_flag=True,
    help="Skip the peak-memory pass (each backend's forward and backward in a forked child, peak RSS).",
)
@click.option(
    "--baseline",
    help="Backend the ratios are relative to (default: torch-cpu when it is timed, else the first backend).",
)
@click.option(
    "--load",
    "load",
    type=click.Choice(["none", "busy"]),
    default="none",
    show_default=True,
    help="busy: also time every round with a fixed competing load (1-thread matmul + streaming add) pinned "
    "to the last CPU, and report quiet and loaded figures side by side.",
)
@click.option(
    "--ops",
    "with_ops",
    is_flag=True,
    help="Also time LeNet-5's other ops (relu, max_pool, flatten, linear, "
    "cross_entropy), forward and backward, per backend.",
)
@click.option(
    "-p", "--plugin", multiple=True, metavar="MODULE", help="Load a plugin module that is not installed (repeatable)."
)
def COMMAND(
    names,
    suites,
    out,
    md_path,
    plot_path,
    repeats,
    warmup,
    threads,
    batch_values,
    gpu_batch,
    dtype,
    seed,
    no_memory,
    baseline,
    load,
    with_ops,
    plugin,
):
    """Time conv forward and backward per backend on network layer shapes, interleaved, and print
    GFLOP/s, the time ratio to the baseline (torch-cpu), the fraction of the machine's GEMM rate and the
    peak extra memory of one call (every CPU backend alike: peak RSS in a forked child)."""
    from pathlib import Path

    from convspec.conformance import bench
    from convspec.conformance.report import perf, plots
    from convspec.conformance.report.markdown import bench_markdown
    from rich.console import Console
    from rich.table import Table

    for hint, path in (("--out", out), ("--markdown", md_path), ("--plot", plot_path)):
        if path and not Path(path).resolve().parent.is_dir():  # fail now, not after the whole run
            raise click.BadParameter(f"the folder of {path} does not exist", param_hint=hint)
    backends = _backends(names, plugin)
    timed = [b.name for b in backends]
    if baseline is None:
        baseline = "torch-cpu" if "torch-cpu" in timed else timed[0]
    if baseline not in timed:
        raise click.BadParameter(
            f"{baseline!r} is not among the backends being timed ({', '.join(b.name for b in backends)})",
            param_hint="--baseline",
        )
    try:
        chosen = bench.resolve_suites(suites)
    except SpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--suite") from None
    batch = parse_batches(batch_values)
    _check_memory(chosen, batch, dtype)
    console = Console(stderr=True)
    console.print(f"bench: backends {', '.join(b.name for b in backends)}; suites {', '.join(s.name for s in chosen)}")

    def progress(suite, rec):
        parts = []
        for name, r in rec["results"].items():
            if "error" in r:
                parts.append(f"{name} error")
            elif "gflops" in r:
                parts.append(f"{name} {r['gflops']['total']:.1f} GF/s")
            else:
                parts.append(f"{name} {r['seconds']['total'] * 1e3:.2f} ms")
        console.print(f"  {suite.name if suite else 'ops':9s} {rec['name']:28s} " + "  ".join(parts))

    argv = sys.argv[1:]
    args = argv[argv.index("bench") + 1 :] if "bench" in argv else argv
    command = " ".join(["convspec", "bench"] + [shlex.quote(a) for a in args])
    try:
        result = bench.run(
            backends,
            chosen,
            repeats=repeats,
            warmup=warmup,
            seed=seed,
            dtype=dtype,
            threads=threads,
            batch=batch,
            gpu_batch=gpu_batch,
            memory=not no_memory,
            baseline=baseline,
            progress=progress,
            command=command,
            load=load,
            ops=with_ops,
        )
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None
    bench.dump(result, out)

    out_console = Console(width=None if sys.stdout.isatty() else 180)
    for line in perf.result_header_lines(result):
        out_console.print(line, highlight=False)
    for s in result["suites"]:
        t = Table(
            *perf.LAYER_HEADER,
            title=f"{s['name']}: {s['description']} (CPU batch {s['batch']}, load {s['load_before']})",
            title_justify="left",
        )
        for row in perf.layer_rows(s, baseline):
            t.add_row(*row)
        out_console.print(t)
    t = Table(
        *perf.BENCH_SUMMARY_HEADER,
        title="geometric means over each suite's layers (x = time / " + baseline + ")",
        title_justify="left",
    )
    for row in perf.bench_summary_rows(result):
        t.add_row(*row)
    out_console.print(t)
    from convspec.conformance.bench import tables

    extra = []
    if load != "none":
        extra.append(("quiet and loaded: " + tables.load_line(result), tables.loaded_summary_rows(result)))
        extra.append(("per layer: rounds' min / median / max (ms) and peak extra memory", tables.spread_rows(result)))
    if with_ops:
        extra.append((f"LeNet-5's other ops (x = time / {baseline}'s)", tables.ops_rows(result)))
    for title, (header, rows) in extra:
        t = Table(*header, title=title, title_justify="left")
        for row in rows:
            t.add_row(*row)
        out_console.print(t)
    if md_path:
        with open(md_path, "w") as f:
            f.write(bench_markdown(result, baseline) + "\n" + tables.extra_markdown(result))
        click.echo(f"markdown: {md_path}", err=True)
    if plot_path:
        svg = plots.bench_gflops(result)
        if svg is None:
            click.echo("plot: matplotlib not installed, no plot written", err=True)
        else:
            with open(plot_path, "w") as f:
                f.write(svg)
            click.echo(f"plot: {plot_path}", err=True)
    click.echo(f"results: {out}", err=True)
