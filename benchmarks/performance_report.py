"""Regenerate reports/performance.md, .json and .svg in one run: the conformance suite's wall time and where
it goes, the reference's LeNet-5 step, `convspec bench` (NumPy against torch-cpu on every suite, in float32
and float64, quiet and with a fixed competing load, per layer with each backend's peak extra memory, and
LeNet-5's other ops), LeNet-5 training images/s of both backends and float32 conv's GEMM bound
(benchmarks/gemm_bound.py), with the machine's load, GEMM rate and compute kernels (OpenBLAS's kernel set,
torch's CPU capability) measured in the same run.

    python benchmarks/performance_report.py                 # everything below: ~12 min on the 2-CPU dev machine
        [--suite lenet --suite resnet50 ...]                # default: lenet resnet50 vgg alphago text1d
        [--dtype float32 --dtype float64]                   # default: both
        [--repeats 3] [--warmup 1]                          # bench rounds per layer (each quiet, then loaded)
        [--batch resnet50=16 --batch vgg=2 ...]             # CPU batches (default: these two, the rest their own)
        [--train-rounds 3] [--train-steps 20] [--train-threads 2 1]
        [--profiles quick full] [--bound-rounds 5] [--out-dir reports]
        [--reuse-bench reports/performance.json]            # re-render: take every section that file holds

Defaults are sized to keep the whole regeneration short on this project's 2-CPU machine (measured at load
0.8-1.5 on 2026-11-30: 715 s; suite timings 61 s, reference 1 s, GEMM kernels 2 s, bench float32 183 s and
float64 318 s, training 12 s, GEMM bound 138 s; more when other jobs share the machine): the bench runs
ResNet-50's layers at batch 16 (suite default 32) and VGG-16's at batch 2 (default 4), 1 warm-up and 3 timed
rounds. `--suite tiny --repeats 1 --train-rounds 1 --profiles quick --reference-rounds 2 --bound-rounds 1`
makes a smoke run of about a minute.

performance.json is the first dtype's bench result (schema convspec-bench/1, so `convspec report --bench
reports/performance.json` reads it) with the other sections beside it: "other_dtypes" (the other dtypes'
bench results), "training", "suite_timings", "reference", "gemm_kernels", "gemm_bound" and "regeneration". --reuse-bench
FILE takes every section FILE holds from it and measures only the missing ones (none: nothing is measured).

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
    lines = out.read_text().splitlines() if proc.returncode in (0, 1) and out.is_file() else []
    for line in lines:
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
        # exit 1 = some case failed (the timings stand); anything else: the run itself failed
        "error": "" if proc.returncode in (0, 1) else (proc.stderr.strip().splitlines() or ["?"])[-1][:200],
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


ALL_SUITES = ["lenet", "resnet50", "vgg", "alphago", "text1d"]
# CPU batches that fit the whole regeneration into ~20 minutes on the 2-CPU machine (the others: the suite's own)
DEFAULT_BATCHES = {"resnet50": 16, "vgg": 2}
BASELINE = "torch-cpu"

# one float32 GEMM per OpenBLAS kernel set, each in a fresh interpreter (OpenBLAS reads OPENBLAS_CORETYPE
# once, when it loads): what the kernel choice alone is worth on this CPU
GEMM_PROBE = (
    "import json, time, numpy as np; from threadpoolctl import threadpool_info, threadpool_limits;"
    "threadpool_limits(THREADS, user_api='blas');"
    "a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32); b = a.copy(); o = np.empty_like(a)\n"
    "for _ in range(3): np.matmul(a, b, out=o)\n"
    "t = []\n"
    "for _ in range(15):\n"
    "    t0 = time.perf_counter(); np.matmul(a, b, out=o); t.append(time.perf_counter() - t0)\n"
    "arch = [p.get('architecture') for p in threadpool_info() if p.get('user_api') == 'blas']\n"
    "print(json.dumps({'gflops': 2 * 1024**3 / min(t) / 1e9, 'architecture': arch}))"
)


def gemm_kernels(rounds: int = 3, threads: int = 2) -> dict:
    """float32 GEMM 1024^3 GFLOP/s (the best of 15 calls: on a shared machine the best call is the kernel's
    speed, the median the neighbours') with OPENBLAS_CORETYPE unset (the kernels OpenBLAS picks for this CPU),
    Haswell (AVX2) and SkylakeX (AVX-512), each in a subprocess, interleaved `rounds` times; -> {"in use":
    this process's OPENBLAS_CORETYPE, "threads", "rounds", "settings": {setting: {gflops (median of the
    rounds), samples, architecture}}}."""
    settings = {"unset": None, "Haswell": "Haswell", "SkylakeX": "SkylakeX"}
    out = {k: {"samples": [], "architecture": None} for k in settings}
    code = GEMM_PROBE.replace("THREADS", str(threads))
    for _ in range(rounds):
        for name, coretype in settings.items():
            env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
            if coretype:
                env["OPENBLAS_CORETYPE"] = coretype
            proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
            if proc.returncode == 0:
                rec = json.loads(proc.stdout.strip().splitlines()[-1])
                out[name]["samples"].append(rec["gflops"])
                out[name]["architecture"] = ", ".join(a or "?" for a in rec["architecture"])
            else:
                out[name]["error"] = (proc.stderr.strip().splitlines() or ["failed"])[-1]
    for v in out.values():
        v["gflops"] = statistics.median(v["samples"]) if v["samples"] else None
    return {"in use": os.environ.get("OPENBLAS_CORETYPE"), "threads": threads, "rounds": rounds, "settings": out}


def parse_batches(values) -> dict:
    out = dict(DEFAULT_BATCHES)
    for v in values or []:
        name, sep, n = v.partition("=")
        if name not in ALL_SUITES or not sep or not n.isdigit() or int(n) < 1:
            raise SystemExit(f"--batch {v!r}: expected SUITE=N with SUITE one of {', '.join(ALL_SUITES)}, N >= 1")
        out[name] = int(n)
    return out


def run_bench(suites, dtype, batches, args, command) -> dict:
    from convspec.conformance import bench
    from convspec.conformance.commands.common import load_registry

    reg = load_registry((), ("numpy", BASELINE))
    backends = [reg.backends["numpy"], reg.backends[BASELINE]]
    t0 = time.perf_counter()

    def progress(suite, rec):
        label = suite.name if suite else "ops"
        print(f"  [{time.perf_counter() - t0:6.0f} s] {dtype} {label} {rec['name']}", file=sys.stderr)

    return bench.run(
        backends,
        bench.resolve_suites(suites),
        repeats=args.repeats,
        warmup=args.warmup,
        dtype=dtype,
        batch={k: v for k, v in batches.items() if k in suites},
        load="busy",
        ops=True,
        baseline=BASELINE,
        command=command,
        progress=progress,
    )


def run_training(args) -> dict:
    sys.path.insert(0, str(HERE))
    import lenet_throughput as LT  # benchmarks/lenet_throughput.py
    from convspec.conformance.bench.load import Load
    from convspec.conformance.bench.timing import set_threads
    from convspec.conformance.commands.common import load_registry

    reg = load_registry((), ("numpy", BASELINE))
    backends = [reg.backends["numpy"], reg.backends[BASELINE]]
    started = load()

    def progress(name, dtype, n, loaded, t):
        print(
            f"  {dtype} threads {n} {'loaded' if loaded else 'quiet'} {name}: {t['images_per_second']:.0f} images/s",
            file=sys.stderr,
        )

    with Load() as competing:
        rows = LT.compare(
            backends,
            dtypes=args.dtype,
            threads=args.train_threads,
            batch_size=args.train_batch,
            steps=args.train_steps,
            warmup=args.train_warmup,
            rounds=args.train_rounds,
            load=competing,
            progress=progress,
        )
        described = competing.describe()
    set_threads(2)
    return {
        "rows": rows,
        "rounds": args.train_rounds,
        "steps": args.train_steps,
        "warmup": args.train_warmup,
        "batch_size": args.train_batch,
        "load_average": {"start": started, "end": load()},
        "competing_load": described,
    }


def _gemm_bound_module():
    sys.path.insert(0, str(HERE))
    import gemm_bound  # benchmarks/gemm_bound.py

    return gemm_bound


def run_gemm_bound(suites, batches, args) -> dict:
    def progress(suite, rec):
        print(f"  {suite} {rec['name']}: bound / torch {rec['bound_over_torch']:.2f}", file=sys.stderr)

    return _gemm_bound_module().measure(suites, batches, "float32", args.bound_rounds, 2, progress)


def gemm_bound_section(gb: dict) -> list:
    return [
        "## 5. The products alone: how close a GEMM-based conv gets to torch-cpu (float32)",
        "",
        "`benchmarks/gemm_bound.py`, run here: per layer, torch-cpu's training step (forward and backward under "
        "autograd), the NumPy backend's forward + backward, and the three dense products a conv is made of "
        "(forward, weight gradient, input gradient) at the layer's im2col shapes, timed alone with OpenBLAS's own "
        "threads on operands built beforehand: no column matrix, no copies, no adds. Where the products are "
        "compute-bound their sum is the least time an im2col-style kernel needs on this BLAS, so 'bound / torch' "
        "above 1 means no GEMM-based NumPy conv reaches torch's step on that layer here (a direct or "
        "Winograd-class kernel is not bounded by it), and 'NumPy / bound' is what the backend's copies, tap "
        "shifts, blocks over its own threads and adds cost on top. Matrix-vector-thin products (LeNet's, AlphaGo's "
        "1x1 192-1) are no bound: other routes beat them.",
        "",
        *_gemm_bound_module().render(gb),
        "",
    ]


def run_suite_timings(args, env) -> dict:
    imports = import_breakdown()
    plans = plan_times()
    tmp = Path(tempfile.mkdtemp(prefix="convspec-perf-"))
    for profile in args.profiles:  # fill the cache (the warm runs read it)
        run_suite(profile, 1, True, tmp / "warm.jsonl", env)
    start = load()
    runs = []
    for profile in args.profiles:
        for jobs in (1, 2):
            for cache in (False, True):
                runs.append(run_suite(profile, jobs, cache, tmp / f"{profile}-{jobs}-{cache}.jsonl", env))
                print(f"  {profile} -j {jobs} cache {cache}: {runs[-1]['wall']:.2f} s", file=sys.stderr)
    return {"imports": imports, "plans": plans, "runs": runs, "load": [start, load()]}


def run_reference(rounds: int) -> dict:
    start = load()
    return {"rounds": rounds, "times": reference_times(rounds), "load": [start, load()]}


# ------------------------------------------------------------------------------------------------ rendering
def _x(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def _mib(b) -> str:
    return "-" if b is None else f"{b / 2**20:.1f}"


def machine_line(result: dict, kernels: dict | None) -> str:
    from convspec.conformance.report.perf import kernel_notes

    env = result["environment"]
    numpy_txt, torch_txt = kernel_notes(env.get("kernels"))
    line = (
        f"{env['processor']} ({env.get('cpus_usable', env['cpus'])} usable CPUs), numpy {env['numpy']}{numpy_txt}, "
        f"torch {env.get('torch', '-')}{torch_txt}, Python {env['python']}"
    )
    if kernels:
        parts = []
        for name, v in kernels["settings"].items():
            label = f"OPENBLAS_CORETYPE unset (OpenBLAS picks {v['architecture']})" if name == "unset" else name
            parts.append(f"{label} {'-' if v['gflops'] is None else format(v['gflops'], '.1f')}")
        line += (
            f". float32 GEMM 1024^3 by OpenBLAS kernel set (a fresh interpreter each, {kernels['threads']} threads, "
            f"best of 15 calls, median of {kernels['rounds']} interleaved rounds, GFLOP/s): " + ", ".join(parts)
        )
        used = kernels.get("in use")
        line += f"; this run's NumPy used {used + ' (OPENBLAS_CORETYPE set in the environment)' if used else 'unset'}"
    return line


def suite_section(st: dict) -> list:
    lines = [
        "## 1. The conformance suite: `convspec run -b numpy`",
        "",
        "Each row is one run from the shell (`python -c '<the CLI with the planned-case cache>' run -b numpy "
        "--profile P -j J`; cold: `CONVSPEC_PLAN_CACHE=0`, warm: the cache filled by an earlier run), wall "
        "clock and CPU time of the process and its workers; backend and reference are the sums of the cases' "
        f"recorded seconds. Load {st['load'][0]} -> {st['load'][1]}.",
        "",
        "| profile | -j | plan cache | cases | wall s | CPU s | backend s | reference s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in st["runs"]:
        state = ("warm (missed: code changed)" if r["missed"] else "warm") if r["cache"] else "cold"
        if r.get("error"):
            state += f"; failed, exit {r['rc']}: {r['error']}"
        lines.append(
            f"| {r['profile']} | {r['jobs']} | {state} | {r['cases']} | "
            f"{r['wall']:.2f} | {r['cpu']:.2f} | {r['backend']:.2f} | {r['reference']:.2f} |"
        )
    imports, plans = st["imports"], st["plans"]
    q, f = plans["quick"], plans["full"]
    parts = ", ".join(f"{k} {v:.2f}" for k, v in imports["parts"].items())
    return lines + [
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
        "(conformance/plancache.py) keys the list by the plan's case-choosing fields, the sources, the versions "
        "and the contents of the package's code, under the user cache directory.",
        "- **Reference and backend**: the columns above (each case's reference is computed once per run and "
        "cached); the rest of the wall time is start-up (import, above), planning (cold rows), the forked "
        "workers' round trips, generating the inputs, the comparisons and writing the results.",
        "- **Workers (-j)**: -j 2 forks a second worker process per backend shard; on 2 cores shared with other "
        "jobs it helps the full profile only as far as a core is free.",
        "",
    ]


def reference_section(ref: dict) -> list:
    lines = [
        "## 2. The reference: LeNet-5 forward + backward, batch 64, float64",
        "",
        f"`python benchmarks/reference.py` ({ref['rounds']} rounds, BLAS default and 1 thread interleaved); load "
        f"{ref['load'][0]} -> {ref['load'][1]}.",
        "",
        "| BLAS threads | wall median ms | wall max ms | CPU median ms |",
        "|---|---|---|---|",
    ]
    for t, v in ref["times"].items():
        lines.append(f"| {t} | {ms(v['wall'])} | {ms(v['wall_max'])} | {ms(v['cpu'])} |")
    return lines + [
        "",
        "The fast forms carry the speed; the literal loops (`<op>_literal`) are unchanged and "
        "tests/test_reference_literal.py proves them equal. conv: one matrix product per group over the whole batch "
        "on a channels-first column matrix (was one small product per sample), the input gradient's col2im on a "
        "channel-major buffer (no transpose of the columns); max_pool on float data: one pass per kernel tap over "
        "all windows (first NaN, else first maximum, padding never chosen: bit-exact to the literal), and for "
        "non-overlapping windows a backward of one masked assignment per tap. With a threaded BLAS on a busy "
        "machine the small products stall (the default-threads row); the CPU time is the work itself.",
        "",
    ]


OVERVIEW_HEADER = [
    "suite",
    "dtype",
    "CPU batch",
    "backend",
    "f+b x quiet",
    "f+b x loaded",
    f"f+b / {BASELINE}'s training step, quiet / loaded (worst layer quiet / loaded)",
    "worst layer quiet (f+b x)",
    "network GF/s",
    "max extra MiB",
    f"layers with peak > {BASELINE}'s (fwd / bwd / either)",
    "peak x fwd / bwd (geomean)",
]


def overview_rows(results: list) -> list:
    """Per suite, dtype and backend: the quiet and loaded geometric means and the memory summary."""
    from convspec.conformance.bench.records import vs_baseline_backward
    from convspec.conformance.report.perf import above_text

    def step(s, backend):
        if backend == BASELINE:
            return "-"
        q, lo = (vs_baseline_backward(s, backend, BASELINE, loaded=loaded) for loaded in (False, True))
        if q is None:
            return "-"
        if lo is None:
            return f"{q[0]:.2f} ({q[1]} {q[2]:.2f})"
        return f"{q[0]:.2f} / {lo[0]:.2f} ({q[1]} {q[2]:.2f} / {lo[1]} {lo[2]:.2f})"

    rows = []
    names = [s["name"] for s in results[0]["suites"]]
    for name in names:
        for res in results:
            s = next(x for x in res["suites"] if x["name"] == name)
            for backend, e in s["summary"].items():
                above, geo = e.get("peak_above_baseline"), e.get("geomean_peak_ratio") or {}
                worst = e.get("worst_layer")
                rows.append(
                    [
                        name,
                        res["settings"]["dtype"],
                        str(s["batch"]),
                        backend,
                        _x(e.get("geomean_ratio_total")),
                        _x((e.get("loaded") or {}).get("geomean_ratio_total")),
                        step(s, backend),
                        "-" if not worst else f"{worst['name']} ({worst['ratio_total']:.2f})",
                        "-" if e.get("network_gflops_total") is None else f"{e['network_gflops_total']:.1f}",
                        _mib(e.get("max_peak_extra_bytes")),
                        above_text(above),
                        "-" if not geo else f"{_x(geo.get('forward'))} / {_x(geo.get('backward'))}",
                    ]
                )
    for res in results:
        for backend, e in ((res.get("ops") or {}).get("summary") or {}).items():
            rows.append(
                [
                    "LeNet other ops",
                    res["settings"]["dtype"],
                    str(res["ops"]["batch"]),
                    backend,
                    _x(e.get("geomean_ratio_total")),
                    _x(e.get("loaded_geomean_ratio_total")),
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                ]
            )
    return rows


def md_table(header, rows) -> list:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(str(c) for c in r) + " |" for r in rows
    ]


def bench_section(results: list, reused: str | None) -> list:
    from convspec.conformance.bench import SUITES, tables
    from convspec.conformance.report.markdown import bench_markdown

    first = results[0]
    st = first["settings"]
    suites = [s["name"] for s in first["suites"]]
    batch_txt = ", ".join(
        f"{s['name']} {s['batch']}"
        + (
            f" (suite default {SUITES[s['name']].batch})"
            if s["name"] in SUITES and SUITES[s["name"]].batch != s["batch"]
            else ""
        )
        for s in first["suites"]
    )
    batch_args = "".join(
        f" --batch {s['name']}={s['batch']}"
        for s in first["suites"]
        if s["name"] in SUITES and SUITES[s["name"]].batch != s["batch"]
    )
    cmd = (
        f"convspec bench -b numpy -b {BASELINE} --suite " + " --suite ".join(suites) + f" --dtype DTYPE --repeats "
        f"{st['repeats']} --warmup {st['warmup']}{batch_args} --load busy --ops"
    )
    lines = [
        "## 3. Conv forward+backward: NumPy against torch-cpu, float32 and float64, quiet and loaded",
        "",
        (f"From `{reused}` (bench started {first['started']}), not measured again. " if reused else "")
        + f"`{cmd}` for each dtype ({', '.join(r['settings']['dtype'] for r in results)}), run here through the "
        f"same engine. CPU batches: {batch_txt}; {st['warmup']} warm-up round, then {st['repeats']} rounds, each "
        "quiet and then again with the fixed competing load on (`--load busy`: one process pinned to the last CPU "
        "running a 1-thread 256^3 float64 matmul and an 8 MiB streaming add); medians. x = time / torch-cpu's "
        "(> 1: slower); 'f+b / baseline bwd' compares NumPy's forward+backward with torch's backward alone (which "
        "re-runs its forward under autograd: the fair training-step comparison).",
        "",
        "**Peak extra memory** (the 'extra MiB' and 'peak x' columns), every backend measured the same way: after "
        "a layer's timed rounds, one forward and one backward call each run in a forked child, after one "
        "untimed warm-up call there, the backend's cached work buffers released (NumPy's scratch) and glibc's "
        "free memory returned to the kernel (`malloc_trim(0)`); the child resets the kernel's peak-RSS mark "
        "(writes 5 to `/proc/self/clear_refs`) and reads VmHWM - VmRSS from `/proc/self/status` around the call, "
        "less the bytes of the arrays the call returns. The RSS sees torch's C++ allocations (oneDNN, autograd's "
        "saved tensors), which the tracemalloc figure used before could not; for NumPy both are recorded (the "
        "'NumPy cross-check' in each dtype's header lines gives their largest difference: RSS counts whole "
        "pages) and the method is checked at the start of each bench on calls of known size ('calibration'). "
        "'peak x' = the backend's figure / "
        "torch-cpu's for the same layer and pass (> 1: more memory); 'layers with peak > torch-cpu's' counts the "
        "layers where NumPy's forward, backward, or either peak is the larger, and in parentheses how many of "
        "those are larger by less than 0.1 MiB in every pass (the tables' precision: a call's Python objects and "
        "a thread's malloc arena touch some tens of KiB after `malloc_trim`, where a C++ call can touch none). "
        "Memory torch keeps between calls (none that the layer needs: its CPU allocator does not cache) and "
        "pages never touched are not in these "
        "figures.",
        "",
        "What changed in the NumPy backend (backends/_xp/conv.py): inside a conv call the BLAS runs on one thread "
        "and every large GEMM is cut into fixed blocks (the inner dimension for the thin weight-gradient products, "
        "else the longer output dimension) that a pool of as many threads as the BLAS had picks up in turn. "
        "OpenBLAS's own threads spin until all are done, so one descheduled thread stalled a whole product: "
        "ResNet's 1x1 64-64 weight gradient took 274 ms median and 4.5 s worst with 2 OpenBLAS threads at load "
        "20, 10 ms in blocks. Block boundaries depend on the shapes only: results are deterministic.",
        "",
        "**Threads and turns** (fixed on 2026-11-30; every earlier report is affected). torch-cpu now runs on the "
        "threads the bench sets (read back after the run, in each dtype's 'threads' line): before, the torch "
        "backend's first import reset torch to 1 thread (CONVSPEC_TORCH_THREADS' default), so torch was timed on 1 "
        "thread against NumPy's 2 and its GEMM rate read about 105 GFLOP/s instead of about 205. And each "
        "backend's turn now starts after this process's threads stop spinning, with untimed forwards for at least "
        "20 ms, so that the timed calls run back to back: right after a threaded GEMM OpenBLAS's threads spin about "
        "0.1 s (a torch conv took 20.9 ms there against 8.6 ms back to back), after torch's calls its OpenMP threads "
        "spin tens of ms (NumPy's GEMM ran at 219-229 GFLOP/s there against 393-434 later), and a thread that has "
        "just slept may wake on the loaded CPU and wait a scheduler tick (LeNet's C3 loaded: 5.95 ms median with "
        "one 0.5 ms untimed call, 1.72 ms with 20 ms of them). Under the load torch's two OpenMP threads stall at "
        "their barriers (LeNet's C1 and C3 float32: 2.7 -> 88 ms and 1.3 -> 112 ms median, quiet -> loaded, in "
        "the run of 2026-11-30 04:33 UTC).",
        "",
        "### Overview: every suite in every dtype (geometric means over each suite's layers)",
        "",
        *md_table(OVERVIEW_HEADER, overview_rows(results)),
        "",
    ]
    for res in results:
        dtype = res["settings"]["dtype"]
        lines += [
            f"### {dtype}: bench started {res['started']}, {res['seconds']:.0f} s",
            "",
            bench_markdown(res, BASELINE).replace("\n### ", f"\n#### {dtype} · "),
            tables.extra_markdown(res).replace("### ", f"#### {dtype} · "),
        ]
    return lines


def training_section(tr: dict) -> list:
    cl = tr.get("competing_load") or {}
    rate = cl.get("iterations_per_second")
    lines = [
        "## 4. LeNet-5 training: images/s, NumPy against torch-cpu",
        "",
        f"`benchmarks/lenet_throughput.py`'s `compare()`: each backend trains the same LeNet-5 on the same digits "
        f"(batch {tr['batch_size']}, SGD; a step is forward, backward, update and the loss copied out), "
        f"{tr['warmup']} untimed steps then {tr['steps']} timed ones, {tr['rounds']} rounds with the backends "
        "interleaved (order rotating), each round once quiet and once with the competing load of section 3 on"
        + (f" ({rate:.0f} iterations/s)" if rate else "")
        + "; medians of the rounds [min - max]. threads: torch's intra-op threads and NumPy's BLAS threads "
        f"(threadpoolctl). Load {tr['load_average']['start']} -> {tr['load_average']['end']}.",
        "",
        "| dtype | threads | backend | images/s quiet [min - max] | ms/step | images/s loaded [min - max] "
        f"| NumPy / {BASELINE} quiet | loaded |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = tr["rows"]
    for r in rows:
        twin = next(
            (o for o in rows if o["backend"] == BASELINE and o["dtype"] == r["dtype"] and o["threads"] == r["threads"]),
            None,
        )
        quiet = loaded = "-"
        if twin and r["backend"] != BASELINE:
            quiet = _x(r["images_per_second"] / twin["images_per_second"])
            if "loaded" in r and "loaded" in twin:
                loaded = _x(r["loaded"]["images_per_second"] / twin["loaded"]["images_per_second"])
        lo = r.get("loaded")
        lines.append(
            f"| {r['dtype']} | {r['threads']} | {r['backend']} | {r['images_per_second']:.0f} "
            f"[{min(r['samples']):.0f} - {max(r['samples']):.0f}] | {r['ms_per_step']:.1f} | "
            + (
                "-"
                if not lo
                else f"{lo['images_per_second']:.0f} [{min(lo['samples']):.0f} - {max(lo['samples']):.0f}]"
            )
            + f" | {quiet} | {loaded} |"
        )
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", action="append", help="bench suites (repeatable; default: " + " ".join(ALL_SUITES) + ")")
    ap.add_argument("--dtype", action="append", choices=["float32", "float64"], help="default: float32 and float64")
    ap.add_argument("--repeats", type=int, default=3, help="bench rounds per layer, each quiet and loaded (default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed bench rounds per layer first (default 1)")
    ap.add_argument(
        "--batch",
        action="append",
        metavar="SUITE=N",
        help="a suite's CPU batch (repeatable; default: "
        + " ".join(f"{k}={v}" for k, v in DEFAULT_BATCHES.items())
        + ", the others their suite's own)",
    )
    ap.add_argument("--train-rounds", type=int, default=3, help="LeNet-5 training rounds per backend (default 3)")
    ap.add_argument("--train-steps", type=int, default=20, help="timed training steps per round (default 20)")
    ap.add_argument("--train-warmup", type=int, default=3, help="untimed training steps first (default 3)")
    ap.add_argument("--train-batch", type=int, default=32, help="training minibatch (default 32)")
    ap.add_argument(
        "--train-threads", type=int, nargs="+", default=[2, 1], help="thread counts to train with (default: 2 1)"
    )
    ap.add_argument("--reference-rounds", type=int, default=20, help="rounds of the reference's LeNet-5 step")
    ap.add_argument("--bound-rounds", type=int, default=5, help="rounds of benchmarks/gemm_bound.py (default 5)")
    ap.add_argument("--out-dir", default=str(ROOT / "reports"))
    ap.add_argument("--profiles", nargs="+", default=["quick", "full"], help="suite profiles to time")
    ap.add_argument(
        "--reuse-bench",
        metavar="JSON",
        help="take every section this earlier performance.json holds from it, measuring only the missing ones",
    )
    args = ap.parse_args()
    suites = args.suite or list(ALL_SUITES)
    args.dtype = args.dtype or ["float32", "float64"]
    batches = parse_batches(args.batch)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python benchmarks/performance_report.py"] + sys.argv[1:])
    t_start = time.perf_counter()
    started, load_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load()
    env = dict(os.environ, CONVSPEC_CACHE_DIR=tempfile.mkdtemp(prefix="convspec-perf-cache-"))
    old = json.loads(Path(args.reuse_bench).read_text()) if args.reuse_bench else {}
    seconds = dict((old.get("regeneration") or {}).get("seconds") or {})
    reused = []

    def section(key, label, measure):
        if key in old:
            reused.append(key)
            return old[key]
        print(f"{label} ...", file=sys.stderr)
        t = time.perf_counter()
        value = measure()
        seconds[key] = time.perf_counter() - t
        print(f"{label}: {seconds[key]:.0f} s", file=sys.stderr)
        return value

    # 1. the suite, 2. the reference, the kernel check
    suite_timings = section("suite_timings", "suite timings", lambda: run_suite_timings(args, env))
    ref = section("reference", "reference", lambda: run_reference(args.reference_rounds))
    kernels = section("gemm_kernels", "GEMM per OpenBLAS kernel set", gemm_kernels)

    # 3. the bench, one result per dtype
    results = []
    if old.get("schema"):
        reused.append("bench")
        results = [{k: v for k, v in old.items() if k not in SECTIONS}] + list(old.get("other_dtypes") or [])
    for dtype in args.dtype:
        if any(r["settings"]["dtype"] == dtype for r in results):
            continue
        t = time.perf_counter()
        print(f"bench {dtype} ...", file=sys.stderr)
        results.append(run_bench(suites, dtype, batches, args, command))
        seconds[f"bench {dtype}"] = time.perf_counter() - t
    from convspec.conformance.bench import dump
    from convspec.conformance.report import plots

    # 4. training
    training = section("training", "LeNet-5 training", lambda: run_training(args))
    # 5. the products alone
    bound = section("gemm_bound", "GEMM bound", lambda: run_gemm_bound(suites, batches, args))

    total = time.perf_counter() - t_start
    bundle = dict(
        results[0],
        other_dtypes=results[1:],
        training=training,
        suite_timings=suite_timings,
        reference=ref,
        gemm_kernels=kernels,
        gemm_bound=bound,
        regeneration=(
            old["regeneration"]  # nothing measured now: the file's own
            if old.get("regeneration") and seconds == old["regeneration"].get("seconds")
            else {
                "command": command,
                "started": started,
                "seconds": seconds,
                "load_average": {"start": load_start, "end": load()},
            }
        ),
    )
    dump(bundle, out_dir / "performance.json")
    svg = plots.bench_gflops(results[0])
    if svg:
        (out_dir / "performance.svg").write_text(svg)

    regen = bundle["regeneration"]
    secs = regen["seconds"]
    lines = [
        "# Performance: the suite, the reference, conv and LeNet-5 training against torch-cpu",
        "",
        f"Regenerated by one command, `{regen['command']}` (started {regen['started']}; "
        f"{sum(secs.values()):.0f} s measured: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in secs.items())
        + "), on this project's development machine, shared with other engineers' jobs. Load average at the "
        f"start {regen['load_average']['start']}, at the end {regen['load_average']['end']}. Every comparison "
        "below is side by side in this run; on a loaded machine wall times are inflated (the process waits for "
        "a core), so CPU times are given beside them and the ratios are what to read."
        + (
            f" Re-rendered by `{command}` ({total:.0f} s) from {args.reuse_bench}: {', '.join(reused)}."
            if reused
            else ""
        ),
        "",
        f"- machine: {machine_line(results[0], kernels)}",
        f"- settings: bench {', '.join(r['settings']['dtype'] for r in results)}, {results[0]['settings']['warmup']} "
        f"warm-up + {results[0]['settings']['repeats']} rounds per layer (each quiet and loaded), CPU batches "
        + ", ".join(f"{s['name']} {s['batch']}" for s in results[0]["suites"])
        + f", threads {results[0]['settings']['threads']}; training {training['rounds']} rounds x "
        f"{training['steps']} steps of batch {training['batch_size']}, threads "
        + " and ".join(str(t) for t in sorted({r["threads"] for r in training["rows"]}, key=str)),
        "",
        *suite_section(suite_timings),
        *reference_section(ref),
        *bench_section(results, args.reuse_bench if "bench" in reused else None),
        *training_section(training),
        *gemm_bound_section(bound),
    ]
    (out_dir / "performance.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out_dir / 'performance.md'}, performance.json, performance.svg ({total:.0f} s)", file=sys.stderr)


SECTIONS = ("other_dtypes", "training", "suite_timings", "reference", "gemm_kernels", "gemm_bound", "regeneration")


if __name__ == "__main__":
    main()
