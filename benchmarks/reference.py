"""Time the reference's LeNet-5 forward + backward on a batch of 64 32x32 images (float64).

    python benchmarks/reference.py [--batch 64] [--repeats 20] [--blas-threads N ...]

Prints the median ms per batch (wall clock and this process's CPU time) and the per-op share, so a slow
op in the spec is visible. The reference is written to be read, but the conformance run calls it for
every case: the goal is <= 50 ms per batch on a 2-core machine.

--blas-threads N (repeatable; 0 = the library's default) limits OpenBLAS's threads (threadpoolctl): on a
shared 2-core machine whose other core is busy, a 2-thread BLAS can take 100x longer on these small
products than a 1-thread one, so by default both settings are timed, interleaved round by round in the
same run. The load average before and after is printed with the result; on a loaded machine the CPU
time is the steadier figure (the wall time includes waiting for a core).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict

import numpy as np

from convspec import reference as R


def lenet_step(x, labels, p, timings):
    """One forward + backward pass; timings[op] accumulates seconds."""

    def timed(name, fn, *args, **kw):
        t = time.perf_counter()
        out = fn(*args, **kw)
        timings[name] += time.perf_counter() - t
        return out

    a1 = timed("conv", R.conv, x, p["c1w"], p["c1b"])
    r1 = timed("relu", R.relu, a1)
    s2 = timed("max_pool", R.max_pool, r1, 2)
    a3 = timed("conv", R.conv, s2, p["c3w"], p["c3b"])
    r3 = timed("relu", R.relu, a3)
    s4 = timed("max_pool", R.max_pool, r3, 2)
    f = timed("flatten", R.flatten, s4)
    h5 = timed("linear", R.linear, f, p["f5w"], p["f5b"])
    r5 = timed("relu", R.relu, h5)
    h6 = timed("linear", R.linear, r5, p["f6w"], p["f6b"])
    r6 = timed("relu", R.relu, h6)
    z = timed("linear", R.linear, r6, p["f7w"], p["f7b"])
    loss = timed("cross_entropy", R.cross_entropy, z, labels)

    (gz,) = timed("cross_entropy_backward", R.cross_entropy_backward, 1.0, z, labels)
    g6, _, _ = timed("linear_backward", R.linear_backward, gz, r6, p["f7w"], p["f7b"])
    (g6,) = timed("relu_backward", R.relu_backward, g6, h6)
    g5, _, _ = timed("linear_backward", R.linear_backward, g6, r5, p["f6w"], p["f6b"])
    (g5,) = timed("relu_backward", R.relu_backward, g5, h5)
    gf, _, _ = timed("linear_backward", R.linear_backward, g5, f, p["f5w"], p["f5b"])
    (g4,) = timed("flatten_backward", R.flatten_backward, gf, s4)
    (g3,) = timed("max_pool_backward", R.max_pool_backward, g4, r3, 2)
    (g3,) = timed("relu_backward", R.relu_backward, g3, a3)
    g2, _, _ = timed("conv_backward", R.conv_backward, g3, s2, p["c3w"], p["c3b"])
    (g1,) = timed("max_pool_backward", R.max_pool_backward, g2, r1, 2)
    (g1,) = timed("relu_backward", R.relu_backward, g1, a1)
    timed("conv_backward", R.conv_backward, g1, x, p["c1w"], p["c1b"])
    return loss


def params(rng):
    shapes = {
        "c1w": (6, 1, 5, 5),
        "c1b": (6,),
        "c3w": (16, 6, 5, 5),
        "c3b": (16,),
        "f5w": (120, 400),
        "f5b": (120,),
        "f6w": (84, 120),
        "f6b": (84,),
        "f7w": (10, 84),
        "f7b": (10,),
    }
    return {k: rng.standard_normal(s) * 0.1 for k, s in shapes.items()}


def _measure(x, labels, p, repeats, blas_threads):
    """Interleaved rounds: for each repeat, one step per BLAS setting in `blas_threads` (None: the default).
    -> {setting: {"wall": [s], "cpu": [s], "per_op": {op: s}}}; cpu is this process's CPU time (all threads)."""
    from contextlib import nullcontext

    limits = {}
    if any(t is not None for t in blas_threads):
        from threadpoolctl import threadpool_limits

        limits = {t: (lambda t=t: threadpool_limits(t, user_api="blas")) for t in blas_threads if t is not None}
    out = {t: {"wall": [], "cpu": [], "per_op": defaultdict(float)} for t in blas_threads}
    for t in blas_threads:  # warm-up
        with limits.get(t, nullcontext)():
            lenet_step(x, labels, p, defaultdict(float))
    for r in range(repeats):
        order = blas_threads[r % len(blas_threads) :] + blas_threads[: r % len(blas_threads)]
        for t in order:
            with limits.get(t, nullcontext)():
                w0, c0 = time.perf_counter(), time.process_time()
                lenet_step(x, labels, p, out[t]["per_op"])
                out[t]["cpu"].append(time.process_time() - c0)
                out[t]["wall"].append(time.perf_counter() - w0)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument(
        "--blas-threads",
        type=int,
        action="append",
        help="BLAS thread setting to time (repeatable; 0: the default; default: 0 and 1, interleaved)",
    )
    args = ap.parse_args()
    settings = [None if t == 0 else t for t in (args.blas_threads or [0, 1])]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 1, 32, 32))
    labels = rng.integers(0, 10, args.batch)
    p = params(rng)
    load0 = os.getloadavg()
    res = _measure(x, labels, p, args.repeats, settings)
    load1 = os.getloadavg()
    print(
        f"reference LeNet-5 forward+backward, batch {args.batch}, float64, {args.repeats} interleaved repeats; "
        f"load average {load0[0]:.2f} -> {load1[0]:.2f} on {os.cpu_count()} CPUs; goal <= 50 ms"
    )
    for t, r in res.items():
        wall, cpu = [v * 1e3 for v in r["wall"]], [v * 1e3 for v in r["cpu"]]
        print(
            f"  BLAS threads {t or 'default'}: wall median {statistics.median(wall):.1f} ms (min {min(wall):.1f}, "
            f"max {max(wall):.1f}); CPU time median {statistics.median(cpu):.1f} ms"
        )
    per_op = res[settings[-1]]["per_op"]
    total = sum(per_op.values())
    print(f"  share of wall time per op (BLAS threads {settings[-1] or 'default'}):")
    for op, t in sorted(per_op.items(), key=lambda kv: -kv[1]):
        print(f"    {op:<24} {100 * t / total:5.1f} %")


if __name__ == "__main__":
    main()
