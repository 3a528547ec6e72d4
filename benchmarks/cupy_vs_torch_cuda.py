"""Conv forward and backward of the ``cupy`` backend against ``torch-cuda`` (cuDNN, TF32 off), on the
benchmark shape suites of ``convspec bench`` (LeNet-5, ResNet-50, VGG-16, AlphaGo, a 1-D text CNN).
Needs a CUDA device, cupy and torch with CUDA.

    python benchmarks/cupy_vs_torch_cuda.py [--suite all] [--dtype float32] [--repeats 7] [--warmup 2]
        [--out reports/cupy-vs-torch-cuda.json] [--md reports/cupy-vs-torch-cuda.md] [--goal 2.0]

Both backends are driven through the backend contract by convspec.conformance.bench, which times every
call with CUDA events (cupy.cuda.Event / torch.cuda.Event) after warm-up calls, round robin between
the two backends, median over the rounds, at each suite's GPU batch. TF32 is off for torch twice
over: the torch-cuda backend switches it off around its ops, and this script switches it off globally.
cuDNN's algorithm search (``torch.backends.cudnn.benchmark``) stays at PyTorch's default (off) unless
``--cudnn-benchmark`` is given. The goal of the issue is cupy within 2x of cuDNN's time per layer;
the script prints every layer's ratio (cupy time / torch time), the geometric means and the layers
that miss the goal, and always exits 0 when it could run (the ratios are the result).
"""

from __future__ import annotations

import argparse
import math
import sys

from convspec.conformance import bench
from convspec.conformance.report.markdown import table as markdown_table


def _backends():
    from convspec.backends.cupy_backend import CupyBackend
    from convspec.backends.torch_backend import TorchBackend

    cupy_b = CupyBackend()
    reason = cupy_b.availability()  # first: its probe forks before this process touches CUDA
    if reason:
        sys.exit(f"cupy backend unavailable: {reason}")
    torch_b = TorchBackend("torch-cuda", "cuda")
    reason = torch_b.availability()
    if reason:
        sys.exit(f"torch-cuda backend unavailable: {reason}")
    return cupy_b, torch_b


def _fmt_ms(rec, phase):
    s = rec.get("seconds", {}).get(phase)
    return f"{s * 1e3:9.3f}" if s is not None else "      n/a"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--suite",
        action="append",
        choices=sorted(bench.SUITES) + ["all", "tiny"],
        help="suite (repeatable; default all)",
    )
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--gpu-batch", type=int, default=None, help="override every suite's GPU batch")
    ap.add_argument("--goal", type=float, default=2.0, help="cupy time / cuDNN time to meet per layer")
    ap.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="let cuDNN search its algorithms (torch.backends.cudnn.benchmark)",
    )
    ap.add_argument("--out", default=None, help="JSON result (convspec-bench schema)")
    ap.add_argument("--md", default=None, help="Markdown summary")
    args = ap.parse_args(argv)

    cupy_b, torch_b = _backends()
    import cupy
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = bool(args.cudnn_benchmark)
    suites = bench.resolve_suites(args.suite or ["all"])
    device = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    device = device.decode() if isinstance(device, bytes) else device
    print(
        f"device {device}; cupy {cupy.__version__}; torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
        f"TF32 off, cudnn.benchmark={torch.backends.cudnn.benchmark}; dtype {args.dtype}",
        flush=True,
    )

    def progress(suite, rec):
        c, t = rec["results"].get("cupy", {}), rec["results"].get("torch-cuda", {})
        err = c.get("error") or t.get("error")
        if err:
            print(f"  {suite.name:9s} {rec['name']:28s} error: {err}", flush=True)
            return
        rf = c["seconds"]["forward"] / t["seconds"]["forward"]
        rb = c["seconds"]["backward"] / t["seconds"]["backward"]
        print(
            f"  {suite.name:9s} {rec['name']:28s} cupy fwd {_fmt_ms(c, 'forward')} ms "
            f"bwd {_fmt_ms(c, 'backward')} ms | "
            f"cuDNN fwd {_fmt_ms(t, 'forward')} ms bwd {_fmt_ms(t, 'backward')} ms | x{rf:6.2f} fwd x{rb:6.2f} bwd",
            flush=True,
        )

    result = bench.run(
        [cupy_b, torch_b],
        suites,
        repeats=args.repeats,
        warmup=args.warmup,
        dtype=args.dtype,
        gpu_batch=args.gpu_batch,
        memory=False,
        baseline="torch-cuda",
        progress=progress,
        command="python benchmarks/cupy_vs_torch_cuda.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    result["environment"]["gpu"] = device
    result["environment"]["cupy"] = cupy.__version__
    result["environment"]["cudnn"] = torch.backends.cudnn.version()
    result["settings"]["tf32"] = False
    result["settings"]["cudnn_benchmark"] = bool(args.cudnn_benchmark)

    lines = [
        f"# cupy vs torch-cuda (cuDNN, TF32 off): conv forward and backward, {args.dtype}",
        "",
        f"Device {device}; cupy {cupy.__version__}; torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}; "
        f"cudnn.benchmark={bool(args.cudnn_benchmark)}; median of {args.repeats} rounds after {args.warmup} warm-up, "
        "CUDA events. "
        f"Ratio = cupy time / cuDNN time (goal: <= {args.goal:g}).",
        "",
    ]
    header = ["suite", "layer", "batch", "cupy fwd ms", "cuDNN fwd ms", "fwd x", "cupy bwd ms", "cuDNN bwd ms", "bwd x"]
    rows, misses, ratios = [], [], {"forward": [], "backward": []}
    for s in result["suites"]:
        for lr in s["layers"]:
            c, t = lr["results"].get("cupy", {}), lr["results"].get("torch-cuda", {})
            if "seconds" not in c or "seconds" not in t:
                rows.append([s["name"], lr["name"], "", f"error: {c.get('error') or t.get('error')}"] + [""] * 5)
                misses.append((s["name"], lr["name"], "error"))
                continue
            r = {p: c["seconds"][p] / t["seconds"][p] for p in ("forward", "backward")}
            for p in r:
                ratios[p].append(r[p])
            if max(r.values()) > args.goal:
                misses.append((s["name"], lr["name"], f"fwd x{r['forward']:.2f}, bwd x{r['backward']:.2f}"))
            rows.append(
                [
                    s["name"],
                    lr["name"],
                    c["batch"],
                    f"{c['seconds']['forward'] * 1e3:.3f}",
                    f"{t['seconds']['forward'] * 1e3:.3f}",
                    f"{r['forward']:.2f}",
                    f"{c['seconds']['backward'] * 1e3:.3f}",
                    f"{t['seconds']['backward'] * 1e3:.3f}",
                    f"{r['backward']:.2f}",
                ]
            )
    lines += markdown_table(header, rows)

    def geo(v):
        return math.exp(sum(map(math.log, v)) / len(v)) if v else float("nan")

    summary = (
        f"geometric mean of cupy/cuDNN over {len(ratios['forward'])} layers: forward x{geo(ratios['forward']):.2f}, "
        f"backward x{geo(ratios['backward']):.2f}; "
        f"{len(ratios['forward']) - len([m for m in misses if m[2] != 'error'])} "
        f"of {len(ratios['forward'])} layers within x{args.goal:g} in both directions"
    )
    lines += ["", summary, ""]
    if misses:
        lines += [f"Layers missing the goal (x{args.goal:g}):", ""] + [f"- {a} / {b}: {c}" for a, b, c in misses]
    print(summary)
    for a, b, c in misses:
        print(f"  misses goal: {a} / {b}: {c}")
    if args.out:
        bench.dump(result, args.out)
    if args.md:
        with open(args.md, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
