"""Conv forward/backward benchmark of every backend side by side (a thin script over `convspec bench`).

    python benchmarks/conv_bench.py [--backend NAME ...] [--suite lenet|resnet50|vgg|alphago|text1d|all]
                                    [--out bench.json] [--markdown FILE] [--plot FILE.svg] [--repeats 5]

Same options as `convspec bench --help`; the engine is convspec.conformance.bench.
"""

from __future__ import annotations

import sys

from convspec.conformance.commands.bench import COMMAND

if __name__ == "__main__":
    COMMAND.main(args=sys.argv[1:], prog_name="convspec bench")
