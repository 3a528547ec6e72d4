"""The command line: `convspec backends`, `convspec run`, and the commands later issues add."""
from __future__ import annotations

import json
import sys
import time
from collections import Counter, defaultdict

import click

from convspec import SpecError

from . import registry
from .cases import Case
from .evaluate import reference_result
from .lenet.check import lenet_record
from .records import BAD, DISPLAY_ORDER, failure_text
from .results import ResultWriter, run_record
from .commands.common import availability, backend_rows, load_registry  # noqa: F401  (also imported from here)
from .run import Plan, applies, execute, plan_cases


class _Group(click.Group):
    """Turns a convspec error that reaches the top (bad input found deep inside a command) into a
    clear one-line message and exit status 1, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SpecError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """convspec: an executable specification of CNN layers and a conformance suite for backends."""


plugin_option = click.option("-p", "--plugin", multiple=True, metavar="MODULE", help="Load a plugin module that is not installed (repeatable).")


@main.command()
@plugin_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def backends(plugin, as_json):
    """List every backend found, available or not, with its version and plugin."""
    reg = load_registry(plugin)
    rows = backend_rows(reg)
    if as_json:
        click.echo(json.dumps({"backends": rows, "plugin_errors": [vars(e) for e in reg.load_errors]}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("backend", "status", "version", "device", "dtypes", "plugin")
    for r in rows:
        status = "available" if r["available"] else f"unavailable: {r['reason']}"
        t.add_row(r["name"], status, r["version"], r["device"], ",".join(r["dtypes"]), r["plugin"])
    Console().print(t)


LENET_STEPS = 30  # the full profile's LeNet-5 training equivalence check


def _parse_shard(value: str) -> tuple:
    try:
        i, n = (int(v) for v in value.split("/"))
    except ValueError:
        raise click.BadParameter(f"must look like I/N (e.g. 2/4), got {value!r}", param_hint="--shard") from None
    if not 1 <= i <= n:
        raise click.BadParameter(f"needs 1 <= I <= N, got {value!r}", param_hint="--shard")
    return i, n


@main.command()
@click.option("-b", "--backend", "names", multiple=True, metavar="NAME", help="Backend to check (repeatable; default: every available one).")
@click.option("--op", "ops", multiple=True, metavar="OP", help="Restrict to these ops (repeatable).")
@click.option("--profile", type=click.Choice(["quick", "full"]), default="quick", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the property-based and random cases.")
@click.option("--out", type=click.Path(dir_okay=False), default="results.jsonl", show_default=True, help="Results file (JSON Lines).")
@click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True, help="Parallel processes (backends x case shards).")
@click.option("--shard", default="1/1", show_default=True, help="Run shard I of N (split a run across machines).")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=60.0, show_default=True, help="Per-case timeout in seconds.")
@click.option("--resume", is_flag=True, help="Append to --out, skipping cases already recorded there.")
@click.option("--case", "case_json", metavar="JSON", help="Run exactly one case (the repro command of a failure).")
@click.option("--shrink-seconds", type=click.FloatRange(0), default=30.0, show_default=True, help="Time to minimise a failing property case (per op and backend; 0: off).")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@plugin_option
def run(names, ops, profile, seed, out, jobs, shard, timeout, resume, case_json, shrink_seconds, no_progress, plugin):
    """Check backends against the reference; exit status 1 on any failure."""
    reg = load_registry(plugin, names)
    known = list(reg.backends)
    for op in ops:
        if op not in registry.OPS:
            raise click.BadParameter(f"unknown op {op!r}; valid ops: {', '.join(registry.OPS)}", param_hint="--op")
    only = None
    if case_json:
        try:
            only = Case.from_json(case_json)
        except (ValueError, TypeError) as exc:
            raise click.BadParameter(f"not a case: {exc}", param_hint="--case") from None
    shard = _parse_shard(shard)
    # the LeNet check: full profile, all ops, once per backend (in shard 1 of a split run)
    lenet = profile == "full" and not ops and only is None and shard[0] == 1
    plan = Plan(profile=profile, seed=seed, ops=tuple(ops) or registry.names(), shard=shard, timeout=timeout, jobs=jobs, only_case=only,
                sources=reg.case_sources, plugins=tuple(plugin), shrink_seconds=shrink_seconds, lenet_steps=LENET_STEPS if lenet else 0)

    selected = [reg.backends[n] for n in (names or known)]
    if only is not None:
        try:  # the case must be one the spec accepts
            reference_result(only)
        except SpecError as exc:
            raise click.BadParameter(f"the spec rejects this case: {exc}", param_hint="--case") from None
    try:
        writer = ResultWriter(out, resume=resume, expect={"profile": profile, "seed": seed, "shard": list(plan.shard), "ops": list(plan.ops)})
    except SpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--out/--resume") from None
    if writer.header is None:
        writer.write(run_record(profile=profile, seed=seed, shard=plan.shard, ops=plan.ops, backends=[b.name for b in selected], argv=sys.argv[1:]))
    for err in reg.load_errors:
        writer.write({"record": "plugin_error", "plugin": err.plugin, "error": err.error})
    available = []
    for row in backend_rows(reg, {b.name for b in selected}):
        writer.write({"record": "backend", **row})
        if row["available"]:
            available.append(reg.backends[row["name"]])
        else:
            click.echo(f"convspec: backend {row['name']} unavailable: {row['reason']}", err=True)
    if not available:
        writer.close()
        raise click.ClickException("no available backend to run")

    cases = plan_cases(plan)
    todo = {b.name: [c for c in cases if (b.name, c.id) not in writer.done and applies(c, b)] for b in available}
    if plan.lenet_steps:  # on --resume, a recorded LeNet check is not run again
        plan.lenet_done = {b.name for b in available if (b.name, lenet_record(b, steps=plan.lenet_steps, seed=seed)["case_id"]) in writer.done}
    counts: dict = defaultdict(Counter)
    failures = []
    for rec in writer.previous:  # a resumed run's summary and exit status cover the whole file
        counts[(rec["backend"], rec["op"])][rec["status"]] += 1
        if rec["status"] in BAD:
            failures.append(rec)

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, disable=no_progress)
    tasks = {b.name: progress.add_task(b.name, total=len(todo[b.name]) + (1 if plan.lenet_steps and b.name not in plan.lenet_done else 0)) for b in available}

    ref_seconds = [0.0]
    t_start = time.perf_counter()

    def emit(result):
        ref_seconds[0] += result.get("reference_seconds", 0.0)
        writer.write(result)
        counts[(result["backend"], result["op"])][result["status"]] += 1
        if result["status"] in BAD:
            failures.append(result)
        progress.advance(tasks[result["backend"]])

    with progress:
        execute(plan, available, lambda b: todo[b.name], emit)
    total = Counter()
    for c in counts.values():
        total.update(c)
    wall = time.perf_counter() - t_start
    writer.write({"record": "summary", "counts": dict(total), "finished": True, "seconds": round(wall, 3), "reference_seconds": round(ref_seconds[0], 3)})
    writer.close()

    _print_summary(console, available, counts, failures)
    share = 100 * ref_seconds[0] / wall / max(1, plan.jobs) if wall else 0.0
    console.print(f"{sum(total.values())} results in {wall:.1f} s; reference computations {ref_seconds[0]:.1f} s (~{share:.0f}% of the run, each case's reference computed once and cached)")
    click.echo(f"results: {out}", err=True)
    if failures:
        sys.exit(1)


def _print_summary(console, backends, counts, failures):
    from rich.table import Table
    from rich.text import Text

    t = Table(title="convspec conformance", show_lines=False)
    t.add_column("op")
    for b in backends:
        t.add_column(b.name)
    for op in (*registry.names(), "lenet"):
        cells = []
        for b in backends:
            c = counts.get((b.name, op))
            cells.append("-" if not c else " ".join(f"{s}:{c[s]}" for s in DISPLAY_ORDER if c[s]))
        if any(cell != "-" for cell in cells):
            t.add_row(op, *cells)
    console.print(t)
    for r in failures[:20]:
        head, *rest = failure_text(r, brief=True).split("\n")
        status = str(r["status"]).upper()
        console.print(Text.assemble((status, "bold red"), head[len(status):], *("\n" + ln for ln in rest)), soft_wrap=True)
    if len(failures) > 20:
        console.print(Text(f"... and {len(failures) - 20} more failures in the results file"))


from .commands import register_commands  # noqa: E402  (sub-commands of other modules)

register_commands(main)
