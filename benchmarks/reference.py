"""Time the reference's LeNet-5 forward + backward on a batch of 64 32x32 images (float64).

    python benchmarks/reference.py [--batch 64] [--repeats 20] [--blas-threads N]

Prints the median ms per batch and the per-layer share, so a slow op in the spec is visible. The
reference is written to be read, but the conformance run calls it for every case: the goal is
< 100 ms per batch on a 2-core machine.

--blas-threads limits OpenBLAS's threads (threadpoolctl): on a shared 2-core machine whose other core
is busy, a 2-thread BLAS can take 100x longer on these small products than a 1-thread one, so the
figure is worth reading both ways. The load average is printed with the result.
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
    shapes = {"c1w": (6, 1, 5, 5), "c1b": (6,), "c3w": (16, 6, 5, 5), "c3b": (16,), "f5w": (120, 400), "f5b": (120,),
              "f6w": (84, 120), "f6b": (84,), "f7w": (10, 84), "f7b": (10,)}
    return {k: rng.standard_normal(s) * 0.1 for k, s in shapes.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--blas-threads", type=int, help="limit BLAS threads (needs threadpoolctl)")
    args = ap.parse_args()
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads, user_api="blas")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 1, 32, 32))
    labels = rng.integers(0, 10, args.batch)
    p = params(rng)
    lenet_step(x, labels, p, defaultdict(float))  # warm-up
    times, per_op = [], defaultdict(float)
    for _ in range(args.repeats):
        t = time.perf_counter()
        lenet_step(x, labels, p, per_op)
        times.append(time.perf_counter() - t)
    med = statistics.median(times) * 1e3
    total = sum(per_op.values())
    threads = args.blas_threads or "default"
    print(f"reference LeNet-5 forward+backward, batch {args.batch}, float64: median {med:.1f} ms per batch "
          f"(min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f}, {args.repeats} repeats; BLAS threads {threads}; "
          f"load average {os.getloadavg()[0]:.2f}); goal < 100 ms")
    for op, t in sorted(per_op.items(), key=lambda kv: -kv[1]):
        print(f"  {op:<24} {100 * t / total:5.1f} %")


if __name__ == "__main__":
    main()
