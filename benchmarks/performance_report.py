"""Regenerate reports/performance.md, .json and .svg in one run: the conformance suite's wall time and where
it goes, the reference's LeNet-5 step, and `convspec bench` (NumPy against torch-cpu, quiet and with a
fixed competing load, per layer and per LeNet op), with the machine's load and GEMM rate measured in the
same run.

    python benchmarks/performance_report.py [--suite lenet --suite resnet50 ...] [--repeats 3] [--out-dir reports]
                                            [--profiles quick full] [--reuse-bench reports/performance.json]

Every figure is measured side by side in this one run (never a timed test). On a shared machine read the
ratios and the CPU times; wall times move with the load, which is printed with every section.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# the CLI with the planned-case cache (conformance/plancache.py) in front of plan_cases, whether or not
# the CLI already calls it; CONVSPEC_PLAN_CACHE=0 turns the cache off for the "cold" runs
CLI = (
    "import sys; from convspec.conformance import cli, plancache; cli.plan_cases = plancache.plan_cases; "
    "sys.argv[0] = 'convspec'; cli.main()"
)


def load() -> list:
    return [round(v, 2) for v in os.getloadavg()]


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_suite(profile: str, jobs: int, cache: bool, out: Path, env: dict) -> dict:
    """One `convspec run -b numpy` from the shell: wall and CPU time (with its workers), and from its
    results file the backend's and the reference's seconds."""
    env = dict(env, CONVSPEC_PLAN_CACHE="1" if cache else "0")
    plans = Path(env["CONVSPEC_CACHE_DIR"]) / "plans"
    before = set(plans.glob("*.pickle")) if plans.is_dir() else set()
    cmd = [
        sys.executable,
        "-c",
        CLI,
        "run",
        "-b",
        "numpy",
        "--profile",
        profile,
        "-j",
        str(jobs),
        "--out",
        str(out),
        "--overwrite",
        "--no-progress",
    ]
    cpu0, t0 = _child_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    wall, cpu = time.perf_counter() - t0, _child_cpu() - cpu0
    backend = reference = 0.0
    cases = 0
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("record") == "case":
            cases += 1
            backend += rec.get("seconds") or 0.0
            reference += rec.get("reference_seconds") or 0.0
    # a warm run that wrote a new entry missed: the code planning reads changed since the cache was filled
    missed = cache and bool(set(plans.glob("*.pickle")) - before)
    return {
        "profile": profile,
        "jobs": jobs,
        "cache": cache,
        "wall": wall,
        "cpu": cpu,
        "cases": cases,
        "backend": backend,
        "reference": reference,
        "rc": proc.returncode,
        "missed": missed,
    }


def import_breakdown() -> dict:
    """python -X importtime of the CLI: total and the heavy packages (cumulative microseconds -> s)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import convspec.conformance.cli"], capture_output=True, text=True
    )
    cum = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            cum[m.group(4)] = max(cum.get(m.group(4), 0), int(m.group(2)) / 1e6)
    names = [
        "numpy",
        "hypothesis",
        "rich.console",
        "click",
        "pluggy",
        "convspec.reference",
        "convspec.conformance.sources.strategies",
        "jsonschema",
    ]
    return {"total": cum.get("convspec.conformance.cli"), "parts": {n: cum[n] for n in names if n in cum}}


def plan_times() -> dict:
    """In-process: drawing the cases of each profile afresh and from the planned-case cache."""
    from convspec.conformance import plancache, registry
    from convspec.conformance import run as R
    from convspec.conformance.commands.common import load_registry

    reg = load_registry((), ("numpy",))
    out = {}
    with tempfile.TemporaryDirectory() as d:
        os.environ["CONVSPEC_CACHE_DIR"] = d
        for profile in ("quick", "full"):
            plan = R.Plan(profile=profile, seed=0, ops=registry.names(), sources=reg.case_sources)
            per_source = {}
            for name, src in plan.sources.items():
                t = time.perf_counter()
                per_source[name] = len(list(R.as_source(src).cases(profile, 0, plan.ops)))
                per_source[name] = (per_source[name], time.perf_counter() - t)
            t0 = time.perf_counter()
            plancache.plan_cases(plan)  # draws and stores
            t1 = time.perf_counter()
            cases = plancache.plan_cases(plan)  # reads
            t2 = time.perf_counter()
            out[profile] = {"fresh": t1 - t0, "cached": t2 - t1, "cases": len(cases), "per_source": per_source}
        del os.environ["CONVSPEC_CACHE_DIR"]
    return out


def reference_times(repeats: int) -> dict:
    import numpy as np

    sys.path.insert(0, str(HERE))
    import reference as B  # benchmarks/reference.py

    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((64, 1, 32, 32)), rng.integers(0, 10, 64)
    p = B.params(rng)
    res = B._measure(x, labels, p, repeats, [None, 1])
    return {
        ("default" if t is None else str(t)): {
            "wall": statistics.median(r["wall"]),
            "cpu": statistics.median(r["cpu"]),
            "wall_max": max(r["wall"]),
        }
        for t, r in res.items()
    }


def ms(v) -> str:
    return f"{v * 1e3:.0f}" if v >= 0.1 else f"{v * 1e3:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", action="append", help="bench suites (default: lenet, resnet50)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out-dir", default=str(ROOT / "reports"))
    ap.add_argument("--profiles", nargs="+", default=["quick", "full"], help="suite profiles to time")
    ap.add_argument(
        "--reuse-bench",
        metavar="JSON",
        help="take section 3 from this earlier bench result (a run of this script) instead of running it",
    )
    args = ap.parse_args()
    suites = args.suite or ["lenet", "resnet50"]
    out_dir = Path(args.out_dir)
    command = "python benchmarks/performance_report.py " + " ".join(sys.argv[1:])
    started, load_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load()
    env = dict(os.environ, CONVSPEC_CACHE_DIR=tempfile.mkdtemp(prefix="convspec-perf-cache-"))

    # 1. the suite
    print("suite timings ...", file=sys.stderr)
    imports = import_breakdown()
    plans = plan_times()
    tmp = Path(tempfile.mkdtemp(prefix="convspec-perf-"))
    for profile in args.profiles:  # fill the cache (the warm runs read it)
        run_suite(profile, 1, True, tmp / "warm.jsonl", env)
    suite_load = load()
    runs = []
    for profile in args.profiles:
        for jobs in (1, 2):
            for cache in (False, True):
                runs.append(run_suite(profile, jobs, cache, tmp / f"{profile}-{jobs}-{cache}.jsonl", env))
                print(f"  {profile} -j {jobs} cache {cache}: {runs[-1]['wall']:.2f} s", file=sys.stderr)
    suite_load_end = load()

    # 2. the reference
    print("reference ...", file=sys.stderr)
    ref_load = load()
    ref = reference_times(20)
    ref_load_end = load()

    # 3. the bench
    print("bench ...", file=sys.stderr)
    from convspec.conformance import bench
    from convspec.conformance.bench import tables
    from convspec.conformance.commands.common import load_registry
    from convspec.conformance.report import plots
    from convspec.conformance.report.markdown import bench_markdown

    if args.reuse_bench:
        result = json.loads(Path(args.reuse_bench).read_text())
        suites = [s["name"] for s in result["suites"]]
    else:
        reg = load_registry((), ("numpy", "torch-cpu"))
        backends = [reg.backends["numpy"], reg.backends["torch-cpu"]]
        result = bench.run(
            backends,
            bench.resolve_suites(suites),
            repeats=args.repeats,
            warmup=1,
            load="busy",
            ops=True,
            command=command,
            progress=lambda s, r: print(f"  {r['name']}", file=sys.stderr),
        )
        bench.dump(result, out_dir / "performance.json")
    svg = plots.bench_gflops(result)
    if svg:
        (out_dir / "performance.svg").write_text(svg)
    load_end = load()

    # 4. the report
    lines = [
        "# Performance: the suite, the reference, and conv against torch-cpu",
        "",
        f"Regenerated by one command, `{command.strip()}` ({started}, {result['seconds']:.0f} s of bench), on "
        f"this project's development machine ({os.cpu_count()} CPUs, shared with other engineers' jobs). Load "
        f"average at the start {load_start}, at the end {load_end}. Every comparison below is side by side in this "
        "run; on a loaded machine wall times are inflated (the process waits for a core), so CPU times are given "
        "beside them and the ratios are what to read.",
        "",
        "## 1. The conformance suite: `convspec run -b numpy`",
        "",
        f"Each row is one run from the shell (`python -c '<the CLI with the planned-case cache>' run -b numpy "
        f"--profile P -j J`; cold: `CONVSPEC_PLAN_CACHE=0`, warm: the cache filled by an earlier run), wall "
        f"clock and CPU time of the process and its workers; backend and reference are the sums of the cases' "
        f"recorded seconds. Load {suite_load} -> {suite_load_end}.",
        "",
        "| profile | -j | plan cache | cases | wall s | CPU s | backend s | reference s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        state = ("warm (missed: code changed)" if r["missed"] else "warm") if r["cache"] else "cold"
        lines.append(
            f"| {r['profile']} | {r['jobs']} | {state} | {r['cases']} | "
            f"{r['wall']:.2f} | {r['cpu']:.2f} | {r['backend']:.2f} | {r['reference']:.2f} |"
        )
    q, f = plans["quick"], plans["full"]
    parts = ", ".join(f"{k} {v:.2f}" for k, v in imports["parts"].items())
    lines += [
        "",
        "Where the time goes (measured in the same run):",
        "",
        f"- **Import** of the CLI (`python -X importtime -c 'import convspec.conformance.cli'`): "
        f"{imports['total'] or 0:.2f} s, of which (cumulative s) {parts}. hypothesis is imported only to draw the "
        "property cases (conformance/ops.py registers the strategies at import); with the plan cached it is dead "
        "weight: making `convspec.conformance.sources.strategies`/`properties` import it lazily (on first draw) "
        "would save its share.",
        f"- **Planning** (drawing the cases, in-process): quick {q['cases']} cases {q['fresh']:.2f} s fresh, "
        f"{q['cached'] * 1e3:.0f} ms from the cache; full {f['cases']} cases {f['fresh']:.2f} s fresh, "
        f"{f['cached'] * 1e3:.0f} ms cached. Per source (full, fresh): "
        + ", ".join(f"{k} {n} cases {t:.2f} s" for k, (n, t) in f["per_source"].items())
        + ". Nearly all of it is hypothesis generating the property, exact and half-precision cases; the cache "
        "(conformance/plancache.py) keys the list by the plan's case-choosing fields, the sources, the versions and "
        "the contents of the package's code, under the user cache directory.",
        "- **Reference and backend**: the columns above (each case's reference is computed once per run and "
        "cached); the rest of the wall time is start-up (import, above), planning (cold rows), the forked "
        "workers' round trips, generating the inputs, the comparisons and writing the results.",
        "- **Workers (-j)**: -j 2 forks a second worker process per backend shard; on 2 cores shared with other "
        "jobs it helps the full profile only as far as a core is free.",
        "",
        "## 2. The reference: LeNet-5 forward + backward, batch 64, float64",
        "",
        f"`python benchmarks/reference.py` (20 rounds, BLAS default and 1 thread interleaved); load {ref_load} -> "
        f"{ref_load_end}.",
        "",
        "| BLAS threads | wall median ms | wall max ms | CPU median ms |",
        "|---|---|---|---|",
    ]
    for t, v in ref.items():
        lines.append(f"| {t} | {ms(v['wall'])} | {ms(v['wall_max'])} | {ms(v['cpu'])} |")
    lines += [
        "",
        "The fast forms carry the speed; the literal loops (`<op>_literal`) are unchanged and "
        "tests/test_reference_literal.py proves them equal. conv: one matrix product per group over the whole batch "
        "on a channels-first column matrix (was one small product per sample), the input gradient's col2im on a "
        "channel-major buffer (no transpose of the columns); max_pool on float data: one pass per kernel tap over "
        "all windows (first NaN, else first maximum, padding never chosen: bit-exact to the literal), and for "
        "non-overlapping windows a backward of one masked assignment per tap. With a threaded BLAS on a busy "
        "machine the small products stall (the default-threads row); the CPU time is the work itself.",
        "",
        "## 3. Conv forward+backward: NumPy against torch-cpu, quiet and loaded",
        "",
        (
            ""
            if not args.reuse_bench
            else f"From [performance.json](performance.json), written by `{result['command']}` "
            f"at {result['started']} (load {result['load_average']['start']} -> {result['load_average']['end']}): the "
            "bench part of this script, run before the sections above were measured again. "
        )
        + "`convspec bench -b numpy -b torch-cpu --suite "
        + " --suite ".join(suites)
        + f" --repeats {args.repeats} --load busy --ops` (run here through the same engine). Every round is run "
        "quiet and then again with the fixed competing load on (`--load busy`: one process pinned to the last CPU "
        "running a 1-thread 256^3 float64 matmul and an 8 MiB streaming add); x = time / torch-cpu's (> 1: "
        "slower); 'f+b / baseline bwd' compares NumPy's forward+backward with torch's backward alone (which re-runs "
        "its forward under autograd: the fair training-step comparison).",
        "",
        "What changed in the NumPy backend (backends/_xp/conv.py): inside a conv call the BLAS runs on one thread "
        "and every large GEMM is cut into fixed blocks (the inner dimension for the thin weight-gradient products, "
        "else the longer output dimension) that a pool of as many threads as the BLAS had picks up in turn. "
        "OpenBLAS's own threads spin until all are done, so one descheduled thread stalled a whole product: "
        "ResNet's 1x1 64-64 weight gradient took 274 ms median and 4.5 s worst with 2 OpenBLAS threads at load "
        "20, 10 ms in blocks. Block boundaries depend on the shapes only: results are deterministic.",
        "",
        bench_markdown(result, "torch-cpu"),
        tables.extra_markdown(result),
    ]
    (out_dir / "performance.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out_dir / 'performance.md'}, performance.json, performance.svg", file=sys.stderr)


if __name__ == "__main__":
    main()
