"""`convspec bench` and its engine (convspec.conformance.bench): suite shapes and FLOP counts, the JSON
result's structure on a tiny suite with one round, the peak-memory method (known allocations, failures,
ratios), per-suite batches, the recorded kernels, the CLI's files and errors; and the NumPy conv
kernel paths the benchmark drove (pointwise, channels-first, channels-last, input gradient as a conv
or by col2im, scratch reuse, batch chunking) against the reference. Timings are never asserted."""

from __future__ import annotations

import json

import click
import conv_checks as C
import numpy as np
import pytest
from click.testing import CliRunner
from convspec.backends._xp import conv as K
from convspec.backends._xp.geometry import Conv
from convspec.backends.numpy_backend import NumpyBackend
from convspec.conformance import bench
from convspec.conformance.cli import main

from convspec import SpecError
from convspec import reference as R


# ------------------------------------------------------------------------------------------- suites
def test_forward_flops_of_known_layers():
    # 2 * N * C_out * H_out * W_out * C_in * k * k
    conv1 = bench.SUITES["resnet50"].layers[0]
    assert conv1.name.startswith("conv1") and conv1.out_sizes(32) == (112, 112)
    assert conv1.flops(32) == {
        "forward": 2 * 32 * 64 * 112 * 112 * 3 * 49,
        "backward": 4 * 32 * 64 * 112 * 112 * 3 * 49,
        "total": 6 * 32 * 64 * 112 * 112 * 3 * 49,
    }
    c3 = bench.SUITES["lenet"].layers[1]
    assert c3.flops(64)["forward"] == 2 * 64 * 16 * 10 * 10 * 6 * 25
    wide = bench.SUITES["text1d"].layers[-1]  # 'full' padding: 64 + 5 - 1 outputs
    assert wide.out_sizes() == (68,) and wide.flops(50)["forward"] == 2 * 50 * 100 * 68 * 300 * 5


def test_resnet50_suite_covers_the_network():
    layers = bench.SUITES["resnet50"].layers
    assert (
        len({(layer.c_in, layer.c_out, layer.size, layer.kernel, layer.stride) for layer in layers})
        == len(layers)
        == 23
    )
    assert sum(layer.count for layer in layers) == 53  # ResNet-50's conv layers (49 + 4 downsample projections)
    fwd = sum(layer.count * layer.flops(1)["forward"] for layer in layers)
    assert 8.1e9 < fwd < 8.3e9  # ~4.1 G multiply-adds per 224x224 image


def test_alphago_suite_is_the_lecture_network():
    a = bench.SUITES["alphago"].layers
    assert [(layer.c_in, layer.c_out, layer.kernel, layer.padding, layer.count) for layer in a] == [
        (48, 192, (5, 5), 2, 1),
        (192, 192, (3, 3), 1, 11),
        (192, 1, (1, 1), 0, 1),
    ]
    assert all(layer.out_sizes() == (19, 19) for layer in a)


def test_unknown_suite_is_a_spec_error():
    with pytest.raises(SpecError, match="suite: unknown suite 'nope'"):
        bench.resolve_suites(["nope"])
    assert [s.name for s in bench.resolve_suites(["lenet", "all"])] == list(bench.SUITES)


# ------------------------------------------------------------------------------------------- engine
class Renamed(NumpyBackend):
    """A second backend so that the result has two columns and a baseline that is not itself."""

    name = "numpy-b"


@pytest.fixture(scope="module")
def tiny_result():
    return bench.run(
        [NumpyBackend(), Renamed()], [bench.tiny_suite()], repeats=1, warmup=0, threads=1, baseline="numpy"
    )


def test_result_structure(tiny_result):
    r = tiny_result
    assert r["schema"] == "convspec-bench/1"
    memory = r["settings"].pop("memory")
    assert r["settings"] == {
        "repeats": 1,
        "warmup": 0,
        "seed": 0,
        "dtype": "float32",
        "threads": 1,
        "baseline": "numpy",
        "primed": True,
    }
    assert memory["method"] == "rss" and memory["unavailable"] is None
    cal = memory["calibration"]  # the method checked on known calls at the start of the run
    assert abs(cal["numpy"] - cal["expected"]) < 4 << 20 and cal["noop"] < 1 << 20
    assert [b["name"] for b in r["backends"]] == ["numpy", "numpy-b"]
    assert r["gemm"]["libraries"]["numpy"]["samples"] == 3 + 2  # 3 before the layers, one per layer round
    # a wait for idle threads before each GEMM sample (5 per library: numpy, torch when installed) and each
    # backend's turn (2 layers x 2 backends)
    waits = 5 * len(r["gemm"]["libraries"]) + 4
    assert r["settle"]["waits"] == waits and 0 <= r["settle"]["capped"] <= waits
    assert r["settle"]["seconds"] >= r["settle"]["waits"] * 0.004
    assert r["gemm"]["machine_gflops"] == max(v["gflops"] for v in r["gemm"]["libraries"].values())
    assert len(r["load_average"]["start"]) == 3
    (suite,) = r["suites"]
    assert (
        suite["name"] == "tiny"
        and suite["batch"] == 2
        and [lr["name"] for lr in suite["layers"]] == ["3x3 3-4 @8", "k3/2 2-3 @9"]
    )
    first = suite["layers"][0]
    assert first["flops_per_sample"]["forward"] == 2 * 4 * 8 * 8 * 3 * 9
    for lr in suite["layers"]:
        for name in ("numpy", "numpy-b"):
            rec = lr["results"][name]
            assert rec["batch"] == 2 and rec["timer"] == "perf_counter"
            assert [len(rec["samples"][k]) for k in ("forward", "backward")] == [1, 1]
            assert rec["seconds"]["forward"] == rec["samples"]["forward"][0]
            assert rec["gflops"]["forward"] == pytest.approx(
                2 * lr["flops_per_sample"]["forward"] / rec["seconds"]["forward"] / 1e9
            )
            assert rec["gemm_fraction"]["total"] == pytest.approx(rec["gflops"]["total"] / r["gemm"]["machine_gflops"])
            peak = rec["peak_extra_bytes"]
            assert set(peak) == {"forward", "backward", "input", "method", "results", "traced"}
            assert peak["method"] == "rss" and peak["input"] == 2 * lr["c_in"] * np.prod(lr["size"]) * 4
            # the RSS figure and tracemalloc's count the same NumPy buffers (RSS in whole pages)
            for k in ("forward", "backward"):
                assert abs(peak[k] - peak["traced"][k]) < 1 << 20
        assert lr["results"]["numpy"]["ratio_to_baseline"] == {"forward": 1.0, "backward": 1.0, "total": 1.0}
        assert set(lr["results"]["numpy-b"]["peak_ratio_to_baseline"]) == {"forward", "backward"}
    assert suite["summary"]["numpy"]["geomean_ratio_total"] == pytest.approx(1.0)
    assert json.loads(json.dumps(r))["suites"][0]["layers"][1]["out_size"] == [4]


# ------------------------------------------------------------------------------------------- peak memory
def test_rss_peak_measures_known_allocations_and_sees_torch():
    """The method on calls of known size, through the fork server: a 64 MiB NumPy array and a 64 MiB torch
    tensor made and dropped inside the measured call measure 64 MiB (within a few MiB), a no-op ~0; and
    tracemalloc, the method before, sees the NumPy array but not torch's tensor (why it was replaced)."""
    from convspec.conformance.bench import memory as M

    if M.rss_unavailable():
        pytest.skip(M.rss_unavailable())
    size = 64 << 20
    with M.MemoryServer() as server:
        noop = M.extra(server.measure(M.Noop()))
        numpy_alloc = M.extra(server.measure(M.Alloc("numpy", size)))
        assert noop < 1 << 20
        assert abs(numpy_alloc - size) < 3 << 20
        torch = pytest.importorskip("torch")
        torch_alloc = M.extra(server.measure(M.Alloc("torch", size)))
        assert abs(torch_alloc - size) < 3 << 20
        # the returned arrays are what the caller keeps: not extra
        rec = server.measure(M.LayerCall(NumpyBackend(), bench.tiny_suite().layers[0], 2, 0, "float32", "forward"))
        assert rec["results"] == 2 * 4 * 8 * 8 * 4 and rec["peak"] >= rec["results"]
    assert abs(bench.peak_extra(lambda: np.ones(size // 8).sum()) - size) < 1 << 20
    assert bench.peak_extra(lambda: torch.ones(size // 4).sum()) < 1 << 20  # invisible to tracemalloc


class Raises(NumpyBackend):
    """A backend whose conv fails (module level: the measuring process unpickles it by name)."""

    name = "raises"

    def conv(self, *a, **k):
        raise RuntimeError("conv broke")


def test_rss_peak_failures_give_reasons(monkeypatch):
    from convspec.conformance.bench import memory as M

    if M.rss_unavailable():
        pytest.skip(M.rss_unavailable())

    with M.MemoryServer() as server:
        with pytest.raises(M.Unavailable, match="the call failed in the measuring child: RuntimeError: conv broke"):
            server.measure(M.LayerCall(Raises(), bench.tiny_suite().layers[0], 2, 0, "float32", "forward"))
        with pytest.raises(M.Unavailable, match="cannot be sent to the measuring process"):
            server.measure(lambda: None)  # not picklable
        assert M.extra(server.measure(M.Noop())) < 1 << 20  # the server carries on
    # a machine without the kernel's peak-RSS reset: a reason instead of a figure, in the record and the tables
    monkeypatch.setattr(M, "CLEAR_REFS", "/proc/self/no-such-file")
    assert "Linux >= 4.0" in M.rss_unavailable()
    r = bench.run([NumpyBackend(), Renamed()], [bench.tiny_suite()], repeats=1, warmup=0, threads=1, baseline="numpy")
    peak = r["suites"][0]["layers"][0]["results"]["numpy-b"]["peak_extra_bytes"]
    assert "forward" not in peak and "Linux >= 4.0" in peak["unavailable"]
    assert r["settings"]["memory"]["calibration"] == {"unavailable": peak["unavailable"]}
    from convspec.conformance.report import perf

    header = "\n".join(perf.result_header_lines(r))
    assert "not measured for numpy, numpy-b: /proc/self/no-such-file is missing" in header
    assert perf.layer_rows(r["suites"][0])[0][-2:] == ["-", "-"]


def test_memory_ratios_and_layers_above_the_baseline():
    """Per layer the peak ratio to the baseline's; per suite on how many layers the peak is the larger."""

    def res():
        return {"batch": 1, "gflops": {"forward": 1.0, "backward": 1.0, "total": 1.0}, "seconds": {"total": 1.0}}

    layers = []
    for (nf, nb), (tf, tb) in [((4, 8), (2, 8)), ((1, 1), (2, 2)), ((6, 3), (0, 6))]:
        one, two = res(), res()
        one["peak_extra_bytes"] = {"forward": nf << 20, "backward": nb << 20, "input": 1}
        two["peak_extra_bytes"] = {"forward": tf << 20, "backward": tb << 20, "input": 1}
        layers.append(
            {"name": f"L{len(layers)}", "count": 1, "flops_per_sample": {"total": 1}, "results": {"np": one, "t": two}}
        )
    for lr in layers:
        bench.add_ratios(lr, 1.0, baseline="t")
    assert layers[0]["results"]["np"]["peak_ratio_to_baseline"] == {"forward": 2.0, "backward": 1.0}
    assert layers[2]["results"]["np"]["peak_ratio_to_baseline"] == {"forward": None, "backward": 0.5}
    summary = bench.summarize({"layers": layers}, baseline="t")
    assert summary["np"]["peak_above_baseline"] == {
        "forward": 2,
        "backward": 0,
        "either": 2,
        "of": 3,
        "under_0.1_mib": 0,
    }
    assert summary["np"]["max_peak_extra_bytes"] == 8 << 20 and "peak_above_baseline" not in summary["t"]
    from convspec.conformance.report import perf

    row = perf.bench_summary_rows(
        {"settings": {"baseline": "t"}, "suites": [dict(name="s", layers=layers, summary=summary)]}
    )
    assert row[0][-3:] == ["8.0", "2 / 0 / 2 of 3", f"{(2.0 * 0.5) ** 0.5:.2f} / {(1.0 * 0.5 * 0.5) ** (1 / 3):.2f}"]


def test_peak_above_baseline_by_less_than_the_tables_precision():
    """Layers above the baseline by < 0.1 MiB in every pass that is above are counted apart, and shown."""

    def rec(fwd, bwd):
        return {"batch": 1, "seconds": {"total": 1.0}, "peak_extra_bytes": {"forward": fwd, "backward": bwd}}

    kib = 1 << 10
    pairs = [  # (np, t): above by 48 KiB forward only; by 48 KiB and 2 MiB; below; above by 100 KiB backward
        ((48 * kib, 0), (0, 5 << 20)),
        ((48 * kib, 3 << 20), (0, 1 << 20)),
        ((0, 0), (kib, kib)),
        ((kib, 101 * kib), (kib, kib)),
    ]
    layers = [
        {"name": f"L{i}", "count": 1, "flops_per_sample": {"total": 1}, "results": {"np": rec(*a), "t": rec(*b)}}
        for i, (a, b) in enumerate(pairs)
    ]
    above = bench.summarize({"layers": layers}, baseline="t")["np"]["peak_above_baseline"]
    assert above == {"forward": 2, "backward": 2, "either": 3, "of": 4, "under_0.1_mib": 2}
    from convspec.conformance.report import perf

    assert perf.above_text(above) == "2 / 2 / 3 of 4 (2 by < 0.1 MiB)"
    assert perf.above_text(dict(above, **{"under_0.1_mib": 0})) == "2 / 2 / 3 of 4"


def test_per_suite_batches():
    r = bench.run(
        [NumpyBackend()],
        [bench.tiny_suite()],
        repeats=1,
        warmup=0,
        threads=1,
        baseline="numpy",
        memory=False,
        batch={"tiny": 3, "lenet": 5},
    )
    assert r["suites"][0]["batch"] == 3 and r["suites"][0]["layers"][0]["results"]["numpy"]["batch"] == 3
    from convspec.conformance.commands.bench import parse_batches

    assert parse_batches(()) is None and parse_batches(("7",)) == 7
    assert parse_batches(("resnet50=16", "vgg=2")) == {"resnet50": 16, "vgg": 2}
    both = parse_batches(("8", "vgg=2"))
    assert both["vgg"] == 2 and both["lenet"] == 8 and both["tiny"] == 8
    for bad in ("vgg=0", "nosuch=3", "x"):
        with pytest.raises(click.BadParameter):
            parse_batches((bad,))
    with pytest.raises(SpecError, match="batch: must be a positive integer"):
        bench.run([NumpyBackend()], [bench.tiny_suite()], repeats=1, memory=False, batch={"tiny": 0})


def test_kernels_are_recorded(tiny_result):
    k = tiny_result["environment"]["kernels"]
    assert isinstance(k["openblas_env"], dict) and "torch_cpu_capability" in k
    from convspec.conformance.report import perf

    numpy_txt, torch_txt = perf.kernel_notes(k)
    assert "OPENBLAS_CORETYPE" in numpy_txt and torch_txt.startswith(" (CPU capability ")
    if isinstance(k["blas"], list) and k["blas"] and k["blas"][0].get("architecture"):
        assert f"{k['blas'][0]['architecture']} kernels" in numpy_txt
    assert perf.kernel_notes({"blas": [], "openblas_env": {"OPENBLAS_CORETYPE": "SkylakeX"}}) == (
        " (OPENBLAS_CORETYPE=SkylakeX)",
        "",
    )


def test_each_backends_turn_is_primed_by_an_untimed_forward(monkeypatch):
    """The other backend's threads still spin right after its calls (timing.prime): every turn of a backend
    opens with one untimed forward, then the timed forward and backward run back to back."""
    calls, timed = [], []

    class Logged(NumpyBackend):
        name = "logged"

        def conv(self, *a, **k):
            calls.append("conv")
            return super().conv(*a, **k)

        def conv_backward(self, *a, **k):
            calls.append("conv_backward")
            return super().conv_backward(*a, **k)

    class Timer:
        kind = "perf_counter"

        def __init__(self, backend):
            pass

        def __call__(self, fn):
            timed.append(len(calls))  # calls made before this timed one
            fn()
            return 1e-3

    import sys

    monkeypatch.setattr(sys.modules["convspec.conformance.bench.run"], "timer_for", Timer)
    monkeypatch.setattr(sys.modules["convspec.conformance.bench.timing"], "PRIME_SECONDS", 0.0)  # one untimed call
    suite = bench.tiny_suite()
    bench.run([Logged()], [suite], repeats=2, warmup=1, threads=1, memory=False, baseline="logged")
    turns = len(suite.layers) * (1 + 2)  # warm-up + timed rounds, per layer
    assert calls == ["conv", "conv", "conv_backward"] * turns
    assert timed == [i for t in range(turns) for i in (3 * t + 1, 3 * t + 2)]  # never the turn's first call


def test_the_untimed_calls_last_prime_seconds():
    """prime() repeats the untimed call until PRIME_SECONDS have passed (at least once), after waiting for
    the process's threads to be idle."""
    import time

    from convspec.conformance.bench import timing

    calls = []
    start = time.perf_counter()
    timing.prime(lambda: calls.append(time.perf_counter()))
    assert len(calls) >= 2 and calls[-1] - calls[0] < timing.PRIME_SECONDS + 0.05
    assert calls[-1] - start >= timing.PRIME_SECONDS - 1e-3 or calls[-1] - calls[0] >= timing.PRIME_SECONDS - 1e-3
    slow = []
    timing.prime(lambda: slow.append(time.sleep(timing.PRIME_SECONDS)))
    assert len(slow) == 1  # a call as long as PRIME_SECONDS runs once


def test_settle_gives_up_on_threads_that_never_idle_and_says_so(monkeypatch):
    """settle() waits for this process's threads to go idle, at most SETTLE_MAX seconds; a thread that keeps
    a CPU busy makes it give up, counted in SETTLE_LOG and shown in the bench header."""
    import threading

    from convspec.conformance.bench import timing
    from convspec.conformance.report import perf

    monkeypatch.setattr(timing, "SETTLE_MAX", 0.05)
    monkeypatch.setattr(timing, "SETTLE_LOG", {"waits": 0, "capped": 0, "seconds": 0.0})
    assert timing.settle() < 0.05 and timing.SETTLE_LOG["capped"] == 0  # an idle process
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            sum(range(1000))

    t = threading.Thread(target=spin)
    t.start()
    try:
        waited = timing.settle()
    finally:
        stop.set()
        t.join()
    assert waited >= 0.05 and timing.SETTLE_LOG["waits"] == 2 and timing.SETTLE_LOG["capped"] == 1
    assert perf.settle_text(timing.SETTLE_LOG) == " (**1 of 2 waits for idle threads gave up after 1 s**)"
    assert perf.settle_text({"waits": 9, "capped": 0, "seconds": 0.1}) == "" and perf.settle_text(None) == ""


TORCH_THREADS_PROBE = """
import json, sys
import torch
from convspec.conformance import bench
from convspec.conformance.commands.common import load_registry
reg = load_registry((), ("torch-cpu",))
seen = []
class Probe(type(reg.backends["torch-cpu"])):  # torch's threads as each timed call finds them
    def conv(self, *a, **k):
        seen.append(torch.get_num_threads())
        return super().conv(*a, **k)
r = bench.run([Probe()], [bench.tiny_suite()], repeats=1, warmup=0, threads=2, memory=False, baseline="torch-cpu")
print(json.dumps({"seen": seen, "threads": r["environment"]["threads"]}))
"""


def test_torch_is_timed_on_the_threads_asked_for(tmp_path):
    """The torch backends set torch's threads from CONVSPEC_TORCH_THREADS (default 1) when they first import
    torch: the bench's thread setting must survive that, or torch is timed on 1 thread against NumPy's 2 (as
    every bench before this test did). A fresh interpreter, so that torch is first imported by the backend."""
    pytest.importorskip("torch")
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "CONVSPEC_TORCH_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", TORCH_THREADS_PROBE], capture_output=True, text=True, env=env, timeout=300, check=True
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["seen"] and set(got["seen"]) == {2}, got
    assert got["threads"]["torch"] == 2 and got["threads"]["torch_after_run"] == 2
    from convspec.conformance.report import perf

    assert perf.torch_threads_text({"torch": 2, "torch_after_run": 2}) == "2 (read back after the run)"
    assert "**1 in use after the run**" in perf.torch_threads_text({"torch": 2, "torch_after_run": 1})
    assert perf.torch_threads_text({"torch": 2}) == "2"  # files from before the check


def test_failing_backend_is_recorded_not_fatal():
    class Broken(NumpyBackend):
        name = "broken"

        def conv_backward(self, *a, **k):
            raise RuntimeError("no backward here")

    r = bench.run(
        [NumpyBackend(), Broken()], [bench.tiny_suite()], repeats=1, warmup=1, threads=1, baseline="numpy", memory=False
    )
    lr = r["suites"][0]["layers"][0]
    assert lr["results"]["broken"]["error"] == "RuntimeError: no backward here"
    assert "peak_extra_bytes" not in lr["results"]["numpy"]
    assert r["suites"][0]["summary"]["broken"]["errors"] == ["3x3 3-4 @8", "k3/2 2-3 @9"]


def test_competing_load_and_ops(tmp_path):
    """--load busy: every round also run with the load on, recorded as each result's "loaded" twin with its
    spread and ratio; --ops: LeNet-5's other ops per backend; the extra Markdown tables name them."""
    from convspec.conformance.bench import tables

    r = bench.run(
        [NumpyBackend(), Renamed()],
        [bench.tiny_suite()],
        repeats=2,
        warmup=0,
        threads=1,
        baseline="numpy",
        memory=False,
        load="busy",
        ops=True,
    )
    assert r["settings"]["load"] == "busy"
    cl = r["competing_load"]
    assert cl["kind"] == "busy" and cl["seconds_on"] > 0 and cl["iterations_per_second"] > 0
    assert cl["gemm"]["libraries"]["numpy"]["samples"] == 2 * 2  # one per loaded round, 2 layers x 2 rounds
    for lr in r["suites"][0]["layers"]:
        rec = lr["results"]["numpy-b"]
        assert [len(rec["loaded"]["samples"][k]) for k in ("forward", "backward")] == [2, 2]
        lo, med, hi = rec["loaded"]["spread"]["total"]
        assert lo <= med <= hi and rec["spread"]["forward"][0] == min(rec["samples"]["forward"])
        assert set(rec["loaded"]["ratio_to_baseline"]) == {"forward", "backward", "total"}
    assert r["suites"][0]["summary"]["numpy"]["loaded"]["geomean_ratio_total"] == pytest.approx(1.0)
    ops = r["ops"]
    assert [o["op"] for o in ops["layers"]] == [
        "relu",
        "max_pool",
        "relu",
        "max_pool",
        "flatten",
        "linear",
        "linear",
        "linear",
        "cross_entropy",
    ]
    pool = ops["layers"][1]["results"]["numpy-b"]
    assert len(pool["samples"]["forward"]) == 2 and "loaded" in pool and "ratio_to_baseline" in pool
    assert ops["summary"]["numpy"]["geomean_ratio_total"] == pytest.approx(1.0)
    md = tables.extra_markdown(json.loads(json.dumps(r)))
    assert "### Quiet and loaded" in md and "competing load (--load busy)" in md
    assert "| tiny | 3x3 3-4 @8 | numpy |" in md and "| S2 max_pool 2x2/2 6@28 | numpy-b |" in md
    with pytest.raises(SpecError, match="load: must be 'none' or 'busy'"):
        bench.run([NumpyBackend()], [bench.tiny_suite()], load="heavy")


def test_quiet_run_has_spread_and_no_load_keys(tiny_result):
    rec = tiny_result["suites"][0]["layers"][0]["results"]["numpy"]
    assert rec["spread"]["total"] == [rec["seconds"]["total"]] * 3 and "loaded" not in rec
    assert "competing_load" not in tiny_result and "ops" not in tiny_result and "load" not in tiny_result["settings"]


def test_bad_settings():
    with pytest.raises(SpecError, match="repeats: must be >= 1, got 0"):
        bench.run([NumpyBackend()], [bench.tiny_suite()], repeats=0)


def test_rendering_names_moved_to_report_still_import_from_bench():
    from convspec.conformance.bench import SUMMARY_HEADER, layer_rows, markdown_table, plot_svg, summary_rows
    from convspec.conformance.report import perf, plots

    assert layer_rows is perf.layer_rows and summary_rows is perf.bench_summary_rows and plot_svg is plots.bench_gflops
    assert SUMMARY_HEADER == perf.BENCH_SUMMARY_HEADER
    assert markdown_table(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_cli_writes_json_markdown_and_plot(tmp_path):
    out, md, svg = tmp_path / "b.json", tmp_path / "b.md", tmp_path / "b.svg"
    res = CliRunner().invoke(
        main,
        [
            "bench",
            "-b",
            "numpy",
            "--baseline",
            "numpy",
            "--suite",
            "tiny",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--out",
            str(out),
            "--markdown",
            str(md),
            "--plot",
            str(svg),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["suites"][0]["summary"]["numpy"]["geomean_ratio_forward"] == pytest.approx(1.0)
    assert "| tiny | numpy | 1.00 | 1.00 | 1.00 |" in md.read_text()
    assert "<svg" in svg.read_text()
    assert "float32 GEMM 1024^3" in res.output


def test_cli_errors(tmp_path):
    res = CliRunner().invoke(main, ["bench", "-b", "nosuch", "--suite", "tiny", "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "unknown backend 'nosuch'" in res.output
    res = CliRunner().invoke(main, ["bench", "--suite", "huge"])
    assert res.exit_code == 2 and "'huge' is not one of" in res.output
    res = CliRunner().invoke(main, ["bench", "--repeats", "0"])
    assert res.exit_code == 2 and "--repeats" in res.output


# ------------------------------------------------------------------------------------------- kernel paths
def _check(x_shape, w_shape, expect, **params):
    """The backend against the reference (float64) on one configuration that takes the `expect` path;
    float32 results are deterministic and unchanged by batch chunking."""
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    x, w, b = C.inputs(rng, x_shape, w_shape)
    geo = Conv(
        x_shape,
        w_shape,
        b.shape,
        stride=params.get("stride", 1),
        padding=params.get("padding", 0),
        dilation=params.get("dilation", 1),
        groups=params.get("groups", 1),
    )
    path = "pointwise" if K.pointwise(geo) else "channels-first" if K.prefer_channels_first(geo) else "channels-last"
    assert (path, K.dx_as_conv(geo)) == expect
    g = rng.standard_normal(R.conv(x, w, b, **params).shape)
    C.assert_matches_reference(x, w, b, g, params, atol_forward=1e-12, atol_backward=1e-11)
    B = NumpyBackend()
    one, again = C.float32_runs(x, w, b, g, params, B), C.float32_runs(x, w, b, g, params, B)
    chunked = C.float32_runs(x, w, b, g, params, C.chunked_backend())
    for a, b_, c in zip(one, again, chunked):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b_)
        np.testing.assert_allclose(c, a, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize(
    "x_shape, w_shape, params, expect",
    [
        ((3, 5, 9, 8), (4, 5, 1, 1), {"stride": 2}, ("pointwise", False)),
        ((2, 4, 7), (6, 4, 1), {}, ("pointwise", False)),
        ((3, 1, 12, 12), (4, 1, 5, 5), {}, ("channels-first", False)),  # LeNet C1-like: widening, col2im
        ((3, 3, 11, 11), (4, 3, 3, 3), {"stride": 2, "padding": 1}, ("channels-first", False)),
        ((2, 6, 7, 7), (8, 6, 5, 5), {"padding": ((0, 2), (1, 0))}, ("channels-first", False)),
        ((2, 4, 9, 9), (3, 4, 3, 3), {"dilation": 2, "padding": "same"}, ("channels-first", True)),
        ((2, 12, 8, 8), (12, 12, 3, 3), {"padding": 1}, ("channels-last", True)),
        ((2, 12, 8, 8), (30, 12, 3, 3), {"padding": 1}, ("channels-last", False)),
        ((2, 12, 9), (10, 12, 3), {"padding": "full"}, ("channels-last", True)),
        ((2, 16, 5, 5), (20, 16, 5, 5), {}, ("channels-last", False)),  # LeNet C5-like: 1x1 output
        ((2, 8, 6, 6), (4, 4, 3, 3), {"groups": 2, "padding": 1}, ("channels-last", True)),
    ],
)
def test_conv_paths_match_the_reference(x_shape, w_shape, params, expect):
    _check(x_shape, w_shape, expect, **params)


@pytest.mark.parametrize(
    "w_shape, params",
    [
        ((2, 1, 1), {"dilation": 2, "output_padding": 1, "padding": "full"}),
        ((2, 3, 1), {"stride": 2, "output_padding": 1}),
        ((2, 1, 3), {"dilation": 2, "output_padding": 1, "padding": 1}),
    ],
)
def test_conv_transpose_through_the_paths(w_shape, params):
    """conv_transpose runs the input-gradient products with out_sizes shorter than the conv's own
    (output_padding): positions no window reads must come out as the bias alone."""
    rng = np.random.default_rng(5)
    y, w, b = rng.standard_normal((2, 2, 5)), rng.standard_normal(w_shape), rng.standard_normal(w_shape[1])
    want = R.conv_transpose(y, w, b, **params)
    B = NumpyBackend()
    for _ in range(3):  # recycled memory full of NaN: a position left unwritten would show
        junk = [np.full(want.shape, np.nan) for _ in range(8)]
        del junk
        np.testing.assert_allclose(B.conv_transpose(y, w, b, **params), want, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(want.shape)
    for got, ref in zip(
        B.conv_transpose_backward(g, y, w, b, **params), R.conv_transpose_backward(g, y, w, b, **params)
    ):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_scratch_reuses_numpy_buffers_and_never_numpy_results():
    a = K.scratch(np, "t-slot", (4, 5), np.float32, zero=True)
    b = K.scratch(np, "t-slot", (2, 3), np.float32)
    assert np.shares_memory(a, b) and not a.any()
    big = K.scratch(np, "t-slot", (K.SCRATCH_CACHE // 4 + 1,), np.float32)
    assert np.shares_memory(big, K.scratch(np, "t-slot", (8,), np.float32))  # within one call
    K.trim_scratch()  # a conv call's end: buffers above SCRATCH_CACHE are dropped
    assert not np.shares_memory(big, K.scratch(np, "t-slot", (8,), np.float32))
    assert K.release_scratch() > 0 and K.release_scratch() == 0
    B = NumpyBackend()
    x, w = np.ones((2, 3, 6, 6), np.float32), np.ones((4, 3, 3, 3), np.float32)
    y1 = B.conv(x, w)
    y2 = B.conv(2 * x, w)
    assert not np.shares_memory(y1, y2) and (y1 == 27).all() and (y2 == 54).all()


def test_split_gemm_blocks_are_deterministic_and_restore_the_blas():
    """mm(): blocks along the inner dimension (thin products) or the longer output dimension, the same
    result on every call and within rounding of one matmul; inside a conv call the BLAS runs on one thread
    and gets its thread count back afterwards."""
    rng = np.random.default_rng(0)
    thin_a, thin_b = rng.standard_normal((16, 5 * K.K_BLOCK)), rng.standard_normal((5 * K.K_BLOCK, 8))
    wide_a, wide_b = rng.standard_normal((24, 400)), rng.standard_normal((400, 3 * K.N_BLOCK + 5))
    with K._blas_split(np):
        first = [K.mm(np, thin_a, thin_b), K.mm(np, wide_a, wide_b)]
        again = [K.mm(np, thin_a, thin_b), K.mm(np, wide_a, wide_b.copy())]
        out = np.empty((24, wide_b.shape[1]))
        assert K.mm(np, wide_a, wide_b, out=out) is out
    for a, b, (one, two) in zip((thin_a, wide_a), (thin_b, wide_b), zip(first, again)):
        assert np.array_equal(one, two)
        np.testing.assert_allclose(one, a @ b, rtol=1e-12, atol=1e-10)
    assert np.array_equal(out, first[1])
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return
    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    x = rng.standard_normal((2, 32, 12, 12)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    NumpyBackend().conv_backward(np.ones((2, 32, 10, 10), np.float32), x, w, None)
    assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == before
