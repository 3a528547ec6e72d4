"""LeNet-5 training throughput (images/s) per backend, side by side in one run.

    python benchmarks/lenet_throughput.py                      # every available backend, float32
    python benchmarks/lenet_throughput.py -b numpy -b torch-cpu --steps 50 --threads 4 --json out.json
    python benchmarks/lenet_throughput.py -b numpy -b torch-cpu --rounds 3 --dtype float32 --dtype float64

Each backend trains the same LeNet-5 (convspec.conformance.lenet) with the same minibatches; the first
--warmup steps are not timed (allocations, autograd and kernel start-up), the next --steps are. A step
is forward, backward and SGD update, ending with the loss copied to the host (which also waits for a
GPU). --threads sets PyTorch's intra-op threads and NumPy's BLAS threads (threadpoolctl; the torch
backend's own default is 1). With --rounds R every backend trains R times, the backends interleaved and
their order rotating every round, and the median images/s is reported (so a drift of a shared machine's
load hits every backend alike). The float64 reference is included with --reference.

benchmarks/performance_report.py calls :func:`compare` (with a competing load as well) for its training
section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time


def time_training(backend, data, *, dtype: str, batch_size: int, steps: int, warmup: int) -> dict:
    """Train `backend` for warmup + steps minibatches; -> {images_per_second, ms_per_step, steps} of the
    timed steps (from the end of the last warm-up step to the end of the last step)."""
    from convspec.conformance.lenet import train as T

    cfg = T.TrainConfig(epochs=10_000, batch_size=batch_size, seed=0, max_steps=warmup + steps)
    stamps = []
    T.train(
        backend,
        data,
        cfg,
        dtype=dtype,
        evaluate_epochs=False,
        on_step=lambda s, loss: stamps.append(time.perf_counter()),
    )
    t0 = stamps[warmup - 1] if warmup else None
    timed = stamps[warmup:]
    if t0 is None:  # no warm-up: time from the first step's end, one step fewer
        t0, timed = timed[0], timed[1:]
    seconds = timed[-1] - t0 if timed else float("nan")
    return {
        "images_per_second": len(timed) * batch_size / seconds if seconds else float("nan"),
        "ms_per_step": 1000 * seconds / max(len(timed), 1),
        "steps": len(timed),
    }


def compare(
    backends,
    *,
    dtypes=("float32",),
    threads=(None,),
    batch_size: int = 32,
    steps: int = 30,
    warmup: int = 3,
    rounds: int = 1,
    load=None,
    progress=None,
) -> list:
    """Every backend trained side by side: per dtype and thread count, `rounds` interleaved rounds (the
    order rotating), each round once quiet and, with `load` (conformance.bench.load.Load), once with the
    competing load on. -> rows {backend, dtype, threads, batch_size, steps, images_per_second (median),
    samples, ms_per_step, loaded?: {images_per_second, samples}}. threads None: leave them as they are."""
    from convspec.conformance.bench.timing import set_threads
    from convspec.conformance.lenet import data as D

    data = D.load_digits_32()
    rows = []
    for dtype in dtypes:
        runs = [b for b in backends if dtype in getattr(b, "dtypes", (dtype,))]
        for n in threads:
            if n is not None:
                set_threads(n)
            samples = {b.name: {False: [], True: []} for b in runs}
            ms = {b.name: [] for b in runs}
            for r in range(rounds):
                order = runs[r % max(len(runs), 1) :] + runs[: r % max(len(runs), 1)]
                for loaded in (False, True) if load is not None else (False,):
                    for b in order:
                        if loaded:
                            load.on()
                        try:
                            t = time_training(b, data, dtype=dtype, batch_size=batch_size, steps=steps, warmup=warmup)
                        finally:
                            if loaded:
                                load.off()
                        samples[b.name][loaded].append(t["images_per_second"])
                        if not loaded:
                            ms[b.name].append(t["ms_per_step"])
                        if progress:
                            progress(b.name, dtype, n, loaded, t)
            for b in runs:
                row = {
                    "backend": b.name,
                    "dtype": dtype,
                    "threads": n,
                    "batch_size": batch_size,
                    "steps": steps,
                    "warmup": warmup,
                    "images_per_second": statistics.median(samples[b.name][False]),
                    "samples": samples[b.name][False],
                    "ms_per_step": statistics.median(ms[b.name]),
                }
                if load is not None:
                    row["loaded"] = {
                        "images_per_second": statistics.median(samples[b.name][True]),
                        "samples": samples[b.name][True],
                    }
                rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "-b", "--backend", action="append", default=[], help="backend name (repeatable; default: every available one)"
    )
    ap.add_argument("--dtype", action="append", default=[], help="float32 (default) or float64 (repeatable)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per backend")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds per backend (the median is reported)")
    ap.add_argument("--threads", type=int, default=None, help="PyTorch intra-op threads and NumPy's BLAS threads")
    ap.add_argument("--reference", action="store_true", help="also time the float64 reference")
    ap.add_argument(
        "-p", "--plugin", action="append", default=["convspec.backends.torch_backend"], help="plugin module to load"
    )
    ap.add_argument("--json", dest="json_out", default=None, help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1 or args.rounds < 1:
        ap.error("--steps, --rounds and --batch-size must be >= 1, --warmup >= 0")
    if args.threads is not None:
        os.environ["CONVSPEC_TORCH_THREADS"] = str(args.threads)
    dtypes = args.dtype or ["float32"]

    from convspec.conformance import plugins
    from convspec.conformance.lenet import train as T

    reg = plugins.load(tuple(dict.fromkeys(args.plugin)))
    unknown = [n for n in args.backend if n not in reg.backends]
    if unknown:
        ap.error(f"unknown backend(s) {', '.join(unknown)}; valid: {', '.join(reg.backends)}")
    runs = []
    for name in args.backend or list(reg.backends):
        b = reg.backends[name]
        reason = b.availability()
        if reason is None and not any(d in b.dtypes for d in dtypes):
            reason = f"no {' or '.join(dtypes)}"
        if reason:
            print(f"{name}: skipped ({reason})", file=sys.stderr)
            continue
        runs.append(b)

    def show(name, dtype, n, loaded, t):
        print(
            f"{name:>16} {dtype:<8} {t['images_per_second']:10.1f} images/s {t['ms_per_step']:9.2f} ms/step", flush=True
        )

    common = dict(batch_size=args.batch_size, steps=args.steps, warmup=args.warmup, rounds=args.rounds)
    threads = (args.threads,)
    rows = compare(runs, dtypes=dtypes, threads=threads, progress=show, **common)
    if args.reference:
        rows += compare([T.ReferenceBackend()], dtypes=("float64",), threads=threads, progress=show, **common)
    for row in rows:
        b = next((x for x in runs if x.name == row["backend"]), None)
        row["device"] = str(getattr(b, "device", ""))
        row["version"] = str(getattr(b, "version", ""))
    if args.rounds > 1:
        for row in rows:
            print(f"median {row['backend']:>9} {row['dtype']:<8} {row['images_per_second']:10.1f} images/s")

    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": os.environ.get("CONVSPEC_TORCH_THREADS", "1"),
    }
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"benchmark": "lenet_throughput", "environment": env, "results": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
