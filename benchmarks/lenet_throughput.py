"""LeNet-5 training throughput (images/s) per backend, side by side in one run.

    python benchmarks/lenet_throughput.py                      # every available backend, float32
    python benchmarks/lenet_throughput.py -b numpy -b torch-cpu --steps 50 --threads 4 --json out.json

Each backend trains the same LeNet-5 (convspec.conformance.lenet) with the same minibatches; the first
--warmup steps are not timed (allocations, autograd and kernel start-up), the next --steps are. A step
is forward, backward and SGD update, ending with the loss copied to the host (which also waits for a
GPU). --threads sets PyTorch's intra-op threads (CONVSPEC_TORCH_THREADS; the backend's default is 1).
The float64 reference is included with --reference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "-b", "--backend", action="append", default=[], help="backend name (repeatable; default: every available one)"
    )
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per backend")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=None, help="PyTorch intra-op threads")
    ap.add_argument("--reference", action="store_true", help="also time the float64 reference")
    ap.add_argument(
        "-p", "--plugin", action="append", default=["convspec.backends.torch_backend"], help="plugin module to load"
    )
    ap.add_argument("--json", dest="json_out", default=None, help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        ap.error("--steps and --batch-size must be >= 1, --warmup >= 0")
    if args.threads is not None:
        os.environ["CONVSPEC_TORCH_THREADS"] = str(args.threads)

    from convspec.conformance import plugins
    from convspec.conformance.lenet import data as D
    from convspec.conformance.lenet import train as T

    reg = plugins.load(tuple(dict.fromkeys(args.plugin)))
    unknown = [n for n in args.backend if n not in reg.backends]
    if unknown:
        ap.error(f"unknown backend(s) {', '.join(unknown)}; valid: {', '.join(reg.backends)}")
    runs = [(T.ReferenceBackend(), "float64")] if args.reference else []
    for name in args.backend or list(reg.backends):
        b = reg.backends[name]
        reason = b.availability()
        if reason is None and args.dtype not in b.dtypes:
            reason = f"no {args.dtype}"
        if reason:
            print(f"{name}: skipped ({reason})", file=sys.stderr)
            continue
        runs.append((b, args.dtype))

    data = D.load_digits_32()
    cfg = T.TrainConfig(epochs=10_000, batch_size=args.batch_size, seed=0, max_steps=args.warmup + args.steps)
    rows = []
    for b, dtype in runs:
        stamps = []
        T.train(
            b, data, cfg, dtype=dtype, evaluate_epochs=False, on_step=lambda s, loss: stamps.append(time.perf_counter())
        )
        t0 = stamps[args.warmup - 1] if args.warmup else None
        timed = stamps[args.warmup :]
        if t0 is None:  # no warm-up: time from the first step's end, one step fewer
            t0, timed = timed[0], timed[1:]
        seconds = timed[-1] - t0 if timed else float("nan")
        images = len(timed) * args.batch_size
        rows.append(
            {
                "backend": b.name,
                "dtype": dtype,
                "device": getattr(b, "device", ""),
                "version": str(getattr(b, "version", "")),
                "images_per_second": images / seconds if seconds else float("nan"),
                "ms_per_step": 1000 * seconds / max(len(timed), 1),
                "steps": len(timed),
                "batch_size": args.batch_size,
            }
        )
        print(
            f"{b.name:>16} {dtype:<8} {rows[-1]['images_per_second']:10.1f} images/s "
            f"{rows[-1]['ms_per_step']:9.2f} ms/step",
            flush=True,
        )

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
