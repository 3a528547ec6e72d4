"""How close can a GEMM-based NumPy conv get to torch-cpu? Per layer, side by side in one run: torch-cpu's
training step (its conv_backward, which re-runs the forward under autograd: the bench's baseline 'bwd'), the
NumPy backend's forward + backward, and the three dense products a conv is made of, timed alone at their
im2col shapes with the BLAS's own threads and nothing else (no column matrix, no copies, no adds):

    forward          (M, K) @ (K, F)     M = batch * output positions, K = C_in/groups * kernel taps
    weight gradient  (K, M) @ (M, F)     F = C_out/groups (per group; G products of each for G groups)
    input gradient   (M, F) @ (F, K)

Their sum ("GEMM bound") is the time an im2col-style kernel on this BLAS needs at least where the products
are compute-bound: a backend that builds the column matrix, or shifts taps, or splits the products over its
own threads only adds to it (a direct or Winograd-class algorithm is not bounded by it). bound / torch step
above 1 means that no such NumPy conv reaches torch-cpu's training step on that layer here; the NumPy
backend's own ratio beside it shows how much of its gap is the products and how much the rest. Products too
thin for the BLAS's GEMM rate (LeNet's, AlphaGo's 1x1 192-1, a matrix-vector product) are no bound: other
routes beat them there.

    python benchmarks/gemm_bound.py [--suite alphago --suite vgg ...] [--dtype float32] [--rounds 5]
        [--batch resnet50=16 --batch vgg=2] [--threads 2] [--json FILE] [--markdown FILE]

Each round times each of the three (torch step, NumPy f+b, GEMM bound) once, after its own untimed calls
(timing.prime: the previous library's threads stop spinning first); figures are medians over the rounds.
Needs torch and threadpoolctl: `pip install -c constraints/ci.txt -e ".[torch,bench]"`. measure() leaves the
process on `threads` threads (torch, the BLAS, CONVSPEC_TORCH_THREADS), as `convspec bench` does.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from math import prod
from pathlib import Path

import numpy as np


class Products:
    """The three products of one layer at its im2col shapes, on contiguous operands built once."""

    def __init__(self, layer, batch: int, dtype: str, seed: int = 0):
        rng = np.random.default_rng(seed)
        G = layer.groups
        M = batch * prod(layer.out_sizes(batch))
        K = layer.c_in // G * prod(layer.kernel)
        F = layer.c_out // G
        self.shape = (G, M, K, F)
        self.col = rng.standard_normal((G, M, K), dtype=np.float32).astype(dtype)
        self.colT = np.ascontiguousarray(self.col.transpose(0, 2, 1))
        self.w = rng.standard_normal((G, K, F), dtype=np.float32).astype(dtype)
        self.wT = np.ascontiguousarray(self.w.transpose(0, 2, 1))
        self.g = rng.standard_normal((G, M, F), dtype=np.float32).astype(dtype)
        self.y = np.empty((G, M, F), dtype=dtype)
        self.dw = np.empty((G, K, F), dtype=dtype)
        self.dcol = np.empty((G, M, K), dtype=dtype)

    def forward(self):
        np.matmul(self.col, self.w, out=self.y)

    def all(self):
        np.matmul(self.col, self.w, out=self.y)
        np.matmul(self.colT, self.g, out=self.dw)
        np.matmul(self.g, self.wT, out=self.dcol)


def measure(suites, batches: dict, dtype: str, rounds: int, threads: int, progress=None) -> dict:
    from convspec.conformance.bench import resolve_suites, suite_batch
    from convspec.conformance.bench.run import _Case
    from convspec.conformance.bench.timing import Gemm, blas_kernels, prime, set_threads, torch_threads
    from convspec.conformance.commands.common import load_registry

    thread_info = set_threads(threads)
    reg = load_registry((), ("numpy", "torch-cpu"))
    numpy_b, torch_b = reg.backends["numpy"], reg.backends["torch-cpu"]
    gemm = Gemm()
    start, t0 = os.getloadavg(), time.perf_counter()
    out_suites = []
    for suite in resolve_suites(suites):
        n = suite_batch(suite, batches)
        layers = []
        for layer in suite.layers:
            cases = {"torch": _Case(torch_b, layer, n, 0, dtype), "numpy": _Case(numpy_b, layer, n, 0, dtype)}
            prods = Products(layer, n, dtype)
            times = {"torch": [], "numpy": [], "bound": []}
            for r in range(rounds + 1):  # the first round untimed
                for name, case in cases.items():
                    prime(case.forward)
                    t = time.perf_counter()
                    if name == "torch":
                        case.backward()  # forward and backward under autograd
                    else:
                        case.forward()
                        case.backward()
                    if r:
                        times[name].append(time.perf_counter() - t)
                prime(prods.forward)
                t = time.perf_counter()
                prods.all()
                if r:
                    times["bound"].append(time.perf_counter() - t)
                gemm.sample()
            med = {k: statistics.median(v) for k, v in times.items()}
            layers.append(
                {
                    "name": layer.name,
                    "count": layer.count,
                    "batch": n,
                    "gemm_shape": dict(zip(("groups", "M", "K", "F"), prods.shape)),
                    "flops": layer.flops(n)["total"],
                    "seconds": med,
                    "samples": times,
                    "bound_over_torch": med["bound"] / med["torch"],
                    "numpy_over_torch": med["numpy"] / med["torch"],
                    "numpy_over_bound": med["numpy"] / med["bound"],
                }
            )
            for c in cases.values():
                c.release()
            del prods  # (VGG's 64-64 @224: 0.7 GB of operands)
            if progress:
                progress(suite.name, layers[-1])
        geo = {
            k: math.exp(statistics.fmean(math.log(rec[k]) for rec in layers))
            for k in ("bound_over_torch", "numpy_over_torch", "numpy_over_bound")
        }
        out_suites.append({"name": suite.name, "batch": n, "layers": layers, "geomean": geo})
    return {
        "schema": "convspec-gemm-bound/1",
        "dtype": dtype,
        "rounds": rounds,
        "threads": dict(thread_info, torch_after_run=torch_threads()),
        "kernels": blas_kernels(),
        "gemm": gemm.summary(),
        "load_average": {"start": [round(v, 2) for v in start], "end": [round(v, 2) for v in os.getloadavg()]},
        "seconds": time.perf_counter() - t0,
        "suites": out_suites,
    }


def render(res: dict) -> list:
    """Markdown lines: one table, a row per layer and a geometric-mean row per suite."""
    g = res["gemm"]["libraries"]
    blas = res["threads"].get("blas")
    if isinstance(blas, list):  # every BLAS threadpoolctl found in the process (torch may bring its own)
        blas = ", ".join(f"{b.get('library')} {b.get('threads')}" for b in blas)
    lines = [
        f"{res['dtype']}, {res['rounds']} rounds, medians; threads: torch {res['threads'].get('torch_after_run')} "
        f"(read back after the run), BLAS {blas}; float32 GEMM 1024^3: "
        + ", ".join(f"{k} {v['gflops']:.0f} GFLOP/s" for k, v in g.items())
        + f"; load average {res['load_average']['start']} -> {res['load_average']['end']}; {res['seconds']:.0f} s.",
        "",
        "| suite | layer | batch | GEMMs (M, K, F) | torch step ms | NumPy f+b ms | GEMM bound ms | bound / torch "
        "| NumPy / torch | NumPy / bound |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in res["suites"]:
        for rec in s["layers"]:
            sh, sec = rec["gemm_shape"], rec["seconds"]
            groups = f"{sh['groups']} x " if sh["groups"] > 1 else ""
            lines.append(
                f"| {s['name']} | {rec['name']} | {rec['batch']} | {groups}{sh['M']}, {sh['K']}, {sh['F']} "
                f"| {sec['torch'] * 1e3:.2f} | {sec['numpy'] * 1e3:.2f} | {sec['bound'] * 1e3:.2f} "
                f"| {rec['bound_over_torch']:.2f} | {rec['numpy_over_torch']:.2f} | {rec['numpy_over_bound']:.2f} |"
            )
        geo = s["geomean"]
        lines.append(
            f"| **{s['name']}** | geometric mean | | | | | | **{geo['bound_over_torch']:.2f}** "
            f"| **{geo['numpy_over_torch']:.2f}** | **{geo['numpy_over_bound']:.2f}** |"
        )
    return lines


def main() -> None:
    from performance_report import ALL_SUITES, parse_batches  # (benchmarks/: the script's own directory)

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", action="append", choices=ALL_SUITES, help="default: all five")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", action="append", metavar="SUITE=N", help="default: resnet50=16 vgg=2")
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--markdown", help="write the table here")
    args = ap.parse_args()
    batches = parse_batches(args.batch)  # the performance report's CPU batches unless given

    def progress(suite, rec):
        print(f"  {suite} {rec['name']}: bound / torch {rec['bound_over_torch']:.2f}", file=sys.stderr)

    res = measure(args.suite or list(ALL_SUITES), batches, args.dtype, args.rounds, args.threads, progress)
    lines = render(res)
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
