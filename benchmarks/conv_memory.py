"""Peak extra memory of conv forward and backward per benchmark layer, NumPy's and torch-cpu's side by side.

    python benchmarks/conv_memory.py [SUITE ...] [-b numpy -b torch-cpu] [--dtype float32] [--batch N]
                                     [--limit MIB]

For each layer and backend: the peak extra resident memory of one conv / conv_backward call, measured as
`convspec bench` does for every backend (convspec.conformance.bench.memory: a forked child makes the
inputs, warms up, releases cached buffers, resets the kernel's peak-RSS mark and reads VmHWM - VmRSS
around the call, less the arrays the call returns); for the NumPy backend also tracemalloc's figure
(which sees NumPy's buffers only, so it must agree) and the batch-chunk bound (col_limit, --limit) on its
column matrices. No timing: run it apart from the benchmark.
"""

from __future__ import annotations

import argparse

from convspec.backends._xp import conv as kernels
from convspec.conformance.bench import layer_inputs, peak_extra, resolve_suites, suite_batch
from convspec.conformance.bench import memory as M
from convspec.conformance.commands.common import load_registry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suites", nargs="*", default=["all"])
    ap.add_argument("-b", "--backend", action="append", help="backend (repeatable; default: numpy and torch-cpu)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--batch", type=int, help="every suite's CPU batch (default: each suite's own)")
    ap.add_argument(
        "--limit",
        type=int,
        default=kernels.DEFAULT_LIMIT >> 20,
        help="NumPy's column-matrix bound per batch chunk, MiB",
    )
    args = ap.parse_args()
    names = args.backend or ["numpy", "torch-cpu"]
    reg = load_registry((), tuple(names))
    backends = [reg.backends[n] for n in names]
    for b in backends:
        if hasattr(b, "col_limit"):
            b.col_limit = args.limit << 20
    mib = 1 << 20
    print("| suite | layer | batch | input MiB | backend | fwd extra MiB | bwd extra MiB | tracemalloc fwd / bwd MiB |")
    print(f"|---|---|---|---|---|---|---|---|  ({args.dtype}, NumPy col_limit {args.limit} MiB)")
    with M.MemoryServer() as server:
        for suite in resolve_suites(args.suites):
            batch = suite_batch(suite, args.batch)
            for layer in suite.layers:
                x, w, b, g = layer_inputs(layer, batch, 0, args.dtype)
                p = layer.params()
                for bk in backends:
                    cells = []
                    for phase in ("forward", "backward"):
                        try:
                            rec = server.measure(M.LayerCall(bk, layer, batch, 0, args.dtype, phase))
                            cells.append(f"{M.extra(rec) / mib:.1f}")
                        except M.Unavailable as exc:
                            cells.append(f"- ({exc})")
                    traced = "-"
                    if bk.name == "numpy":  # the scratch cache emptied first (release_memory)
                        fwd = peak_extra(lambda: bk.conv(x, w, b, **p), bk)
                        bwd = peak_extra(lambda: bk.conv_backward(g, x, w, b, **p), bk)
                        traced = f"{fwd / mib:.1f} / {bwd / mib:.1f}"
                    print(
                        f"| {suite.name} | {layer.name} | {batch} | {x.nbytes / mib:.1f} | {bk.name} | {cells[0]} "
                        f"| {cells[1]} | {traced} |",
                        flush=True,
                    )
    kernels.release_scratch()


if __name__ == "__main__":
    main()
