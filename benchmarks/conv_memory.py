"""Peak extra memory of the NumPy backend's conv forward and backward per benchmark layer.

    python benchmarks/conv_memory.py [SUITE ...] [--limit MIB]

For each layer: the tracemalloc peak of one conv / conv_backward call minus its results (NumPy reports
its buffers to tracemalloc), measured with the kernels' scratch cache emptied first so that the column
matrices are allocated inside the measured call; next to it the input size and the batch-chunk bound
(the col_limit on the column matrices; the padded input, g and the per-chunk input gradient come on
top of it). No timing: run it apart from the benchmark.
"""

from __future__ import annotations

import argparse

from convspec.backends._xp import conv as kernels
from convspec.backends.numpy_backend import NumpyBackend
from convspec.conformance.bench import layer_inputs, peak_extra, resolve_suites


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suites", nargs="*", default=["all"])
    ap.add_argument(
        "--limit", type=int, default=kernels.DEFAULT_LIMIT >> 20, help="column-matrix bound per batch chunk, MiB"
    )
    args = ap.parse_args()
    backend = NumpyBackend()
    backend.col_limit = args.limit << 20
    mib = 1 << 20
    print(f"| suite | layer | batch | input MiB | fwd extra MiB | bwd extra MiB |  (col_limit {args.limit} MiB)")
    print("|---|---|---|---|---|---|")
    for suite in resolve_suites(args.suites):
        for layer in suite.layers:
            x, w, b, g = layer_inputs(layer, suite.batch, 0, "float32")
            p = layer.params()
            fwd = peak_extra(lambda: backend.conv(x, w, b, **p), backend)  # the scratch cache emptied first
            bwd = peak_extra(lambda: backend.conv_backward(g, x, w, b, **p), backend)
            print(
                f"| {suite.name} | {layer.name} | {suite.batch} | {x.nbytes / mib:.1f} | {fwd / mib:.1f} "
                f"| {bwd / mib:.1f} |",
                flush=True,
            )
    kernels.release_scratch()


if __name__ == "__main__":
    main()
