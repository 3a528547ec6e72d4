"""List the benchmark suites: every layer's shapes, multiplicity in its network and GFLOP counts.

    python benchmarks/suites.py [SUITE ...]

The suites themselves are defined in convspec.conformance.bench (SUITES) so that `convspec bench` and
these scripts time the same layers.
"""

from __future__ import annotations

import sys

from convspec.conformance.bench import resolve_suites


def main(argv) -> None:
    for suite in resolve_suites(argv or ["all"]):
        total = sum(layer.flops(suite.batch)["total"] * layer.count for layer in suite.layers)
        print(
            f"{suite.name}: {suite.description}; CPU batch {suite.batch}, GPU batch {suite.gpu_batch}; "
            f"{total / 1e9:.1f} GFLOP forward + backward over the network's conv layers at the CPU batch"
        )
        for layer in suite.layers:
            x, w, _ = layer.shapes(suite.batch)
            f = layer.flops(suite.batch)
            print(
                f"  {layer.name:28s} x{layer.count:<3d} x {x} w {w} stride {layer.stride} padding {layer.padding!r} "
                f"-> out {layer.out_sizes(suite.batch)}; fwd {f['forward'] / 1e9:.3f} GFLOP, "
                f"bwd {f['backward'] / 1e9:.3f}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
