"""The command line: `convspec backends`, `convspec run`, and the commands later issues add."""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import click
from rich.console import Console

from convspec import SpecError

from . import registry
from .cases import DTYPES, Case
from .commands.common import availability, backend_rows, load_registry  # noqa: F401  (also imported from here)
from .evaluate import reference_result
from .lenet.check import lenet_record
from .plancache import plan_cases  # run.plan_cases, cached under the user cache dir
from .records import BAD, DISPLAY_ORDER, failure_text
from .results import ResultWriter, check_out, read_header, run_record
from .results import read as read_records
from .run import Plan, applies, execute, failure_signature


class _Group(click.Group):
    """Turns a convspec error that reaches the top (bad input found deep inside a command) into a
    clear one-line message and exit status 1, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SpecError as exc:
            raise click.ClickException(str(exc)) from None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    import convspec

    try:
        v = version("convspec")
    except PackageNotFoundError:
        v = "unknown"
    return f"convspec {v} (spec version {convspec.SPEC_VERSION})"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(message=_version(), package_name="convspec")
def main():
    """convspec: an executable specification of CNN layers and a conformance suite for backends."""


plugin_option = click.option(
    "-p", "--plugin", multiple=True, metavar="MODULE", help="Load a plugin module that is not installed (repeatable)."
)


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
    from rich.table import Table

    t = Table("backend", "status", "version", "device", "dtypes", "plugin")
    for r in rows:
        status = "available" if r["available"] else f"unavailable: {r['reason']}"
        t.add_row(r["name"], status, r["version"], r["device"], ",".join(r["dtypes"]), r["plugin"])
    stdout_console().print(t)


LENET_STEPS = 30  # the full profile's LeNet-5 training equivalence check
MAX_TIMEOUT = 3600.0  # seconds: the largest per-case --timeout


class UsageFail(click.ClickException):
    """A usage error shown as one line ("Error: FIELD: RULE"), exit status 2."""

    exit_code = 2


def _parse_shard(value: str) -> tuple:
    try:
        i, n = (int(v) for v in value.split("/"))
    except ValueError:
        raise click.BadParameter(f"must look like I/N (e.g. 2/4), got {value!r}", param_hint="--shard") from None
    if not 1 <= i <= n:
        raise click.BadParameter(f"needs 1 <= I <= N, got {value!r}", param_hint="--shard")
    return i, n


def _check_timeout(ctx, param, value):
    if value is not None and not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        raise click.BadParameter(f"must be a finite number of seconds, > 0 and at most {MAX_TIMEOUT:g}, got {value!r}")
    return value


def _check_memory(ctx, param, value):
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise click.BadParameter(f"must be a finite number of GiB >= 0 (0: no limit), got {value!r}")
    return value


def _explicit(ctx, name) -> bool:
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


class StopRun(Exception):
    """-x/--exitfirst: the first bad result stops the run."""


def _find_case(sources, profile, seed, case_id, plan_kw) -> Case:
    """The case with this id among the cases a run with this profile and seed plans (the short repro)."""
    op = case_id.split("[", 1)[0].rsplit(":", 1)[-1]
    if op not in registry.OPS:
        raise UsageFail(f"--case-id: {case_id!r} is not a case id (they look like source:op[...]#hash)")
    for c in plan_cases(Plan(profile=profile, seed=seed, ops=(op,), sources=sources, **plan_kw)):
        if c.id == case_id:
            return c
    raise UsageFail(
        f"--case-id: no case {case_id!r} in the {profile} profile with seed {seed} (check --profile and --seed: "
        f"the short repro needs the run's own)"
    )


@main.command()
@click.option(
    "-b",
    "--backend",
    "names",
    multiple=True,
    metavar="NAME",
    help="Backend to check (repeatable; default: every available one).",
)
@click.option(
    "--op",
    "ops",
    multiple=True,
    metavar="OP",
    help="Restrict to these ops (repeatable; 'lenet': the LeNet-5 check of the full profile).",
)
@click.option("--profile", type=click.Choice(["quick", "full"]), default="quick", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the property-based and random cases.")
@click.option(
    "-k",
    "keywords",
    multiple=True,
    metavar="PATTERN",
    help="Only cases whose id contains PATTERN (with * or ?: matches it); repeatable, any matches.",
)
@click.option(
    "--dtype", "dtypes", multiple=True, type=click.Choice(DTYPES), help="Only cases of this dtype (repeatable)."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Results file (JSON Lines) [default: results.jsonl; a --case/--case-id run prints its result and writes "
    "no file].",
)
@click.option(
    "--overwrite",
    "--force",
    "overwrite",
    is_flag=True,
    help="Replace an existing --out (otherwise refused: use --resume to continue it).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out: its options come from the file, recorded cases are skipped.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Parallel processes (backends x case shards).",
)
@click.option("--shard", default="1/1", show_default=True, help="Run shard I of N (split a run across machines).")
@click.option(
    "--timeout",
    type=float,
    default=60.0,
    show_default=True,
    callback=_check_timeout,
    help=f"Per-case timeout in seconds (at most {MAX_TIMEOUT:g}).",
)
@click.option(
    "--memory-limit",
    type=float,
    default=8.0,
    show_default=True,
    callback=_check_memory,
    metavar="GIB",
    help="Memory a backend's worker process may hold of its own (private resident), in GiB (0: no limit); a case "
    "over it is reported.",
)
@click.option("-x", "--exitfirst", is_flag=True, help="Stop at the first failing case.")
@click.option(
    "--list", "list_only", is_flag=True, help="List the cases the run would execute (backend and case id), run nothing."
)
@click.option(
    "--junit-xml",
    "junit_xml",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Also write JUnit XML for CI systems: one testcase per case and part (forward, indices, backward).",
)
@click.option(
    "--xfails",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Expected failures: case id patterns, one a line (the pytest plugin's format).",
)
@click.option("--case", "case_json", metavar="JSON", help="Run exactly one case (the repro command of a failure).")
@click.option(
    "--case-id",
    "case_id",
    metavar="ID",
    help="Run exactly the case with this id (with the run's --profile and --seed: the short repro).",
)
@click.option(
    "--max-examples",
    type=click.IntRange(1),
    default=None,
    help="Property source: hypothesis examples per op (default: the profile's).",
)
@click.option("--derandomize", is_flag=True, help="Property source: hypothesis derandomize mode.")
@click.option(
    "--shrink-seconds",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="Time to minimise failing property cases, per op and backend (shared by its kinds of failure; 0: off).",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@plugin_option
@click.pass_context
def run(
    ctx,
    names,
    ops,
    profile,
    seed,
    keywords,
    dtypes,
    out,
    overwrite,
    resume,
    jobs,
    shard,
    timeout,
    memory_limit,
    exitfirst,
    list_only,
    junit_xml,
    xfails,
    case_json,
    case_id,
    max_examples,
    derandomize,
    shrink_seconds,
    no_progress,
    plugin,
):
    """Check backends against the reference; exit status 1 on any failure."""
    reg = load_registry(plugin, names)
    known = list(reg.backends)
    if case_json is not None and case_id is not None:
        raise UsageFail("--case and --case-id: give one of them")
    single = case_json is not None or case_id is not None
    if out is None and not single:
        out = "results.jsonl"
    if resume and out is None:
        raise UsageFail("--resume: needs --out (the file to continue)")
    # --resume: the run's options come from the file's header, unless given again
    header = read_header(out) if resume and out else None
    if header is not None:
        profile = profile if _explicit(ctx, "profile") else header["profile"]
        seed = seed if _explicit(ctx, "seed") else header["seed"]
        shard = shard if _explicit(ctx, "shard") else f"{header['shard'][0]}/{header['shard'][1]}"
        if not _explicit(ctx, "ops"):
            ops = () if tuple(header["ops"]) == registry.names() else tuple(header["ops"])
    for op in ops:
        if op not in registry.OPS and op != "lenet":
            raise click.BadParameter(
                f"unknown op {op!r}; valid ops: {', '.join(registry.OPS)}, lenet", param_hint="--op"
            )
    if "lenet" in ops and profile != "full":
        raise click.BadParameter("the LeNet-5 check is part of --profile full", param_hint="--op lenet")
    plan_kw = {"max_examples": max_examples, "derandomize": derandomize}
    only = None
    if case_json is not None and not case_json.strip():
        raise UsageFail("--case: is empty; give a case's JSON (the --case '...' of a repro line)")
    if case_json is not None:
        try:
            only = Case.from_json(case_json)
        except (ValueError, TypeError) as exc:
            raise UsageFail(f"--case: {exc}") from None
    elif case_id is not None:
        only = _find_case(reg.case_sources, profile, seed, case_id, plan_kw)
    shard = _parse_shard(shard)
    case_ops = tuple(o for o in ops if o != "lenet")
    # the LeNet check: full profile, all ops (or --op lenet), once per backend (in shard 1 of a split run)
    lenet = (
        profile == "full"
        and (not ops or "lenet" in ops)
        and only is None
        and shard[0] == 1
        and not keywords
        and not dtypes
    )
    patterns = _read_xfails(xfails) if xfails else []
    plan = Plan(
        profile=profile,
        seed=seed,
        ops=case_ops if ops else registry.names(),
        shard=shard,
        timeout=timeout,
        jobs=jobs,
        only_case=only,
        sources=reg.case_sources,
        plugins=tuple(plugin),
        shrink_seconds=shrink_seconds,
        lenet_steps=LENET_STEPS if lenet else 0,
        memory_limit=memory_limit * 2**30 if memory_limit else None,
        keywords=tuple(keywords),
        dtypes=tuple(dtypes),
        **plan_kw,
    )

    selected = [reg.backends[n] for n in (names or known)]
    if only is not None:
        try:  # the case must be one the spec accepts
            reference_result(only)
        except SpecError as exc:
            raise UsageFail(f"--case: the spec rejects this case: {exc}") from None
    expect = {
        "profile": profile,
        "seed": seed,
        "shard": list(plan.shard),
        "ops": list(ops) if ops else list(registry.names()),
    }
    if out is not None and not list_only:
        try:  # refuse now (before anything runs) a file we must not or cannot write
            check_out(out, resume=resume, overwrite=overwrite, expect=expect)
        except SpecError as exc:
            raise UsageFail(f"{'--out/--resume' if resume else '--out'}: {exc}") from None
    if junit_xml is not None and not list_only:
        try:
            check_out(junit_xml, overwrite=True, option="--junit-xml")
        except SpecError as exc:
            raise UsageFail(f"--junit-xml: {exc}") from None

    err = Console(stderr=True)
    rows = backend_rows(reg, {b.name for b in selected})
    available = [reg.backends[r["name"]] for r in rows if r["available"]]
    for r in rows:
        if not r["available"]:
            click.echo(f"convspec: backend {r['name']} unavailable: {r['reason']}", err=True)
    if not available:  # nothing will run: the results file is not touched
        raise click.ClickException("no available backend to run")
    for b in available:  # answered in a child: now here too, so the workers forked from here inherit its imports
        try:
            b.availability()
        except Exception:
            pass

    if no_progress:
        cases = plan_cases(plan)
    else:
        with err.status("planning the cases (drawing the property-based ones) ..."):
            cases = plan_cases(plan)
    if list_only:
        previous = ResultWriter(None)
        if resume and out and header is not None:
            previous.done = {
                (r["backend"], r["case_id"]) for r in read_records(out, strict=False) if r.get("record") == "case"
            }
        for b in available:
            for c in cases:
                if applies(c, b) and (b.name, c.id) not in previous.done:
                    click.echo(f"{b.name}\t{c.id}")
            if plan.lenet_steps:
                click.echo(f"{b.name}\t{lenet_record(b, steps=plan.lenet_steps, seed=seed)['case_id']}")
        return

    try:
        writer = ResultWriter(out, resume=resume, expect=expect, overwrite=overwrite)
    except SpecError as exc:
        raise UsageFail(f"{'--out/--resume' if resume else '--out'}: {exc}") from None
    try:
        _run(
            _Job(
                writer=writer,
                plan=plan,
                reg=reg,
                selected=selected,
                rows=rows,
                available=available,
                cases=cases,
                expect=expect,
                seed=seed,
                profile=profile,
                out=out,
                names=names,
                plugin=plugin,
                patterns=patterns,
                exitfirst=exitfirst,
                no_progress=no_progress,
                err=err,
                single=single,
                junit_xml=junit_xml,
            )
        )
    finally:
        writer.close()


@dataclass
class _Job:
    """What `run` hands over to `_run`: the opened results file, the plan, the loaded plugins and the options."""

    writer: object
    plan: object
    reg: object
    selected: object
    rows: object
    available: object
    cases: object
    expect: object
    seed: object
    profile: object
    out: object
    names: object
    plugin: object
    patterns: object
    exitfirst: object
    no_progress: object
    err: object
    single: object
    junit_xml: object = None


def _run(job: _Job):
    if job.writer.header is None:
        job.writer.write(
            run_record(
                profile=job.profile,
                seed=job.seed,
                shard=job.plan.shard,
                ops=job.expect["ops"],
                backends=[b.name for b in job.selected],
                argv=sys.argv[1:],
            )
        )
    for e in job.reg.load_errors:
        job.writer.write({"record": "plugin_error", "plugin": e.plugin, "error": e.error})
    for row in job.rows:
        job.writer.write({"record": "backend", **row})

    todo = {
        b.name: [c for c in job.cases if (b.name, c.id) not in job.writer.done and applies(c, b)] for b in job.available
    }
    if job.plan.lenet_steps:  # on --resume, a recorded LeNet check is not run again
        job.plan.lenet_done = {
            b.name
            for b in job.available
            if (b.name, lenet_record(b, steps=job.plan.lenet_steps, seed=job.seed)["case_id"]) in job.writer.done
        }
    counts: dict = defaultdict(Counter)
    failures = []
    xfailed, xpassed = [], []
    short = "" if job.single else _short_repro_opts(job.plan, job.profile, job.seed)

    def account(rec):
        counts[(rec["backend"], rec["op"])][rec["status"]] += 1
        hit = next((p for p in job.patterns if p.matches(rec["case_id"])), None)
        if rec["status"] in BAD:
            if hit is not None:
                rec["xfail"] = hit.describe()
                xfailed.append(rec)
            else:
                failures.append(rec)
        elif hit is not None and rec["status"] == "pass":
            xpassed.append({**rec, "_xfail": hit})

    all_cases = list(job.writer.previous)  # the JUnit XML covers the whole file too
    for rec in job.writer.previous:  # a resumed run's summary and exit status cover the whole file
        account(rec)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=job.err,
        disable=job.no_progress,
    )
    lenet_pending = {b.name for b in job.available if job.plan.lenet_steps and b.name not in job.plan.lenet_done}
    tasks = {
        b.name: progress.add_task(b.name, total=len(todo[b.name]) + (b.name in lenet_pending)) for b in job.available
    }
    done_count = Counter()

    ref_seconds = [0.0]
    t_start = time.perf_counter()

    def emit(result):
        ref_seconds[0] += result.get("reference_seconds", 0.0)
        if (
            short
            and result["status"] in BAD
            and result.get("source") != "lenet"
            and "minimal" not in result.get("case_id", "")
        ):
            result["repro_short"] = f"convspec run{short} -b {result['backend']} --case-id '{result['case_id']}'"
        account(result)
        all_cases.append(result)
        job.writer.write(result)
        name = result["backend"]
        progress.advance(tasks[name])
        done_count[name] += 1
        if name in lenet_pending and done_count[name] == len(todo[name]):
            progress.update(tasks[name], description=f"{name}: LeNet-5 check")
        if job.exitfirst and result["status"] in BAD and "xfail" not in result:
            raise StopRun()

    stopped = None
    try:
        with progress:
            execute(job.plan, job.available, lambda b: todo[b.name], emit)
    except StopRun:
        stopped = "exitfirst"
    except KeyboardInterrupt:
        job.writer.close()
        n = sum(sum(c.values()) for c in counts.values())
        again = "convspec run" + "".join(f" -p {p}" for p in job.plugin) + "".join(f" -b {b}" for b in job.names)
        job.err.print(
            f"interrupted: the {n} results so far are kept in {job.out}" if job.out else "interrupted", highlight=False
        )
        if job.out:
            job.err.print(f"continue with: {again} --resume --out {job.out}", highlight=False, soft_wrap=True)
        sys.exit(130)
    total = Counter()
    for c in counts.values():
        total.update(c)
    wall = time.perf_counter() - t_start
    summary = {
        "record": "summary",
        "counts": dict(total),
        "finished": stopped is None,
        "seconds": round(wall, 3),
        "reference_seconds": round(ref_seconds[0], 3),
    }
    if stopped:
        summary["stopped"] = stopped
    job.writer.write(summary)
    if job.junit_xml:
        from .junit import write_junit

        write_junit(all_cases, job.junit_xml)

    console = stdout_console()
    _print_summary(console, job.available, counts, failures)
    if job.single and job.out is None:  # a --case run: its result, in full, on stdout
        for rec in job.writer.records:
            if rec.get("record") == "case":
                click.echo(
                    failure_text(rec)
                    if rec["status"] in BAD
                    else f"{rec['status'].upper()} {rec['backend']} {rec['case_id']}"
                )
                if rec.get("stdout"):
                    click.echo("  the backend printed:\n" + "\n".join("    " + ln for ln in rec["stdout"].splitlines()))
    strict_xpass = [r for r in xpassed if getattr(r["_xfail"], "strict", False)]
    for r in xpassed:
        r.pop("_xfail", None)
    if xfailed or xpassed:
        console.print(f"expected failures (--xfails): {len(xfailed)} xfailed, {len(xpassed)} xpassed", highlight=False)
    for r in strict_xpass:  # as pytest's strict xfail: a case expected to fail that passes fails the run
        console.print(
            f"XPASS(strict) {r['backend']} {r['case_id']}: passes, but --xfails expects it to fail", highlight=False
        )
    share = 100 * ref_seconds[0] / wall / max(1, job.plan.jobs) if wall else 0.0
    console.print(
        f"{sum(total.values())} results in {wall:.1f} s; reference computations {ref_seconds[0]:.1f} s "
        f"(~{share:.0f}% of the run, "
        f"each case's reference computed once and cached)",
        highlight=False,
    )
    if stopped:
        console.print("stopped at the first failure (-x)", highlight=False)
    if job.out:
        click.echo(f"results: {job.out}")
    if failures or strict_xpass:
        sys.exit(1)


def _short_repro_opts(plan, profile, seed) -> str:
    opts = "".join(f" -p {p}" for p in plan.plugins)
    opts += f" --seed {seed} --profile {profile}"
    if plan.max_examples:
        opts += f" --max-examples {plan.max_examples}"
    if plan.derandomize:
        opts += " --derandomize"
    return opts


def _read_xfails(path):
    """The --xfails file, in the pytest plugin's format (its parser)."""
    try:
        from .pytest_plugin import read_patterns
    except ImportError:
        raise UsageFail("--xfails: reading the file needs pytest (pip install pytest)") from None
    try:
        return read_patterns(path, "--xfails")
    except Exception as exc:  # pytest.UsageError: unreadable file
        raise UsageFail(str(exc)) from None


def stdout_console():
    from .commands.common import console

    return console()


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
    if not failures:
        return
    groups: dict = {}
    for r in failures:
        g = groups.setdefault(failure_signature(r), [0, r])
        g[0] += 1
    console.print(
        Text(
            f"{len(failures)} failures of {len(groups)} kinds (backend, op, check, kind of mismatch), one example each:"
        )
    )
    for (backend, op, check, kind), (n, r) in groups.items():
        console.print(
            Text.assemble((f"{n} x ", "bold"), (f"{backend} {op} {check}: {kind}", "bold red")), soft_wrap=True
        )
        lines = failure_text(r, brief=True).split("\n")
        if r.get("repro_short"):
            lines.insert(1, f"    short repro: {r['repro_short']}")
        console.print(Text("\n".join("  " + ln for ln in lines)), soft_wrap=True)


from .commands import register_commands  # noqa: E402  (sub-commands of other modules)

register_commands(main)
