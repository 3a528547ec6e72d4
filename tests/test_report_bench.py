"""`convspec report --bench FILE`: a Performance section in the Markdown and HTML reports from the JSON of
`convspec bench --out`, built here by running conformance.bench on a one-layer suite with one round; and
clear errors for files that are not bench results."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from convspec.backends.numpy_backend import NumpyBackend
from convspec.conformance import bench
from convspec.conformance.cli import main
from convspec.conformance.report import perf, write_reports


class Renamed(NumpyBackend):
    name = "numpy-two"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("rb")
    suite = bench.Suite("one", "one 3x3 layer", 2, 2, (bench.tiny_suite().layers[0],))
    result = bench.run(
        [NumpyBackend(), Renamed()],
        [suite],
        repeats=1,
        warmup=0,
        threads=1,
        baseline="numpy",
        memory=False,
        command="convspec bench --suite one",
    )
    bench.dump(result, d / "bench.json")
    res = CliRunner().invoke(main, ["run", "--no-progress", "-b", "numpy", "--op", "relu", "--out", str(d / "r.jsonl")])
    assert res.exit_code == 0, res.output
    return d, result


def test_markdown_and_html_have_the_performance_section(files, tmp_path):
    d, result = files
    written = write_reports([d / "r.jsonl"], tmp_path, name="rep", bench=[d / "bench.json"])
    md, html = (p.read_text() for p in written)
    layer = result["suites"][0]["layers"][0]["results"]
    two = layer["numpy-two"]["seconds"]
    fair = two["total"] / layer["numpy"]["seconds"]["backward"]  # one layer: the geometric mean is the ratio
    r = layer["numpy-two"]["ratio_to_baseline"]
    assert "## Performance" in md
    assert "| suite | backend | fwd x | bwd x | f+b x | f+b / baseline bwd |" in md
    row = (
        f"| one | numpy-two | {r['forward']:.2f} | {r['backward']:.2f} | {r['total']:.2f} "
        f"| {fair:.2f} (worst 3x3 3-4 @8 {fair:.2f}) |"
    )
    assert row in md
    assert "| one | numpy | 1.00 | 1.00 | 1.00 | - |" in md
    rate = result["gemm"]["machine_gflops"]
    assert f"machine rate {rate:.1f}" in md and "load average: start" in md
    # the section sits before the declared deviations, and the HTML draws the plot as an embedded SVG
    assert md.index("## Performance") < md.index("## Declared deviations")
    assert '<section id="performance">' in html and 'id="perf-table-1"' in html
    m = re.search(
        r'<figure id="plot-perf-1"><img class="plot" alt="[^"]*" src="data:image/svg\+xml;base64,([^"]+)"', html
    )
    assert m, "the GFLOP/s plot is embedded"
    svg = base64.b64decode(m.group(1)).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg


def test_report_without_bench_has_no_performance_section(files, tmp_path):
    d, _ = files
    md = write_reports([d / "r.jsonl"], tmp_path, name="plain")[0].read_text()
    assert "## Performance" not in md


def test_cli_bench_option(files, tmp_path):
    d, _ = files
    res = CliRunner().invoke(
        main,
        [
            "report",
            str(d / "r.jsonl"),
            "--bench",
            str(d / "bench.json"),
            "--bench",
            str(d / "bench.json"),
            "--out",
            str(tmp_path),
            "--name",
            "c",
        ],
    )
    assert res.exit_code == 0, res.output
    md = (tmp_path / "c.md").read_text()
    assert md.count("### bench.json (") == 2  # repeatable: one subsection per file
    assert 'id="plot-perf-2"' in (tmp_path / "c.html").read_text()


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not JSON (line 1"),
        ('{"schema": "convspec-results/1"}', "must be a bench result of schema 'convspec-bench/1'"),
        ("[1, 2]", "got schema 'list'"),
        ('{"schema": "convspec-bench/1", "settings": {"baseline": "numpy"}}', "the file has no 'environment' field"),
    ],
)
def test_bad_bench_file_is_a_clear_error(files, tmp_path, content, message):
    d, _ = files
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(perf.BenchFileError, match=re.escape(message)) as exc:
        write_reports([d / "r.jsonl"], tmp_path / "out", bench=[bad])
    assert str(bad) in str(exc.value)
    assert not (tmp_path / "out").exists()  # nothing written
    res = CliRunner().invoke(main, ["report", str(d / "r.jsonl"), "--bench", str(bad), "--out", str(tmp_path / "out2")])
    assert res.exit_code != 0 and message in res.output and "--bench" in res.output


def test_truncated_structure_names_the_field(files, tmp_path):
    d, result = files
    broken = json.loads(json.dumps(result))
    del broken["suites"][0]["layers"][0]["results"]
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps(broken))
    with pytest.raises(perf.BenchFileError, match=r"suites\[0\]\.layers\[0\] has no 'results' field"):
        perf.load_bench(bad)


def test_missing_bench_file_is_a_usage_error(files, tmp_path):
    d, _ = files
    res = CliRunner().invoke(
        main, ["report", str(d / "r.jsonl"), "--bench", str(tmp_path / "nope.json"), "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and "--bench" in res.output


# ------------------------------------------------------------------------------------------- performance report
def _script(name):
    """A module of benchmarks/ (not a package): imported from its file."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"convspec_benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_training_compare_rows():
    """benchmarks/lenet_throughput.compare: every backend trained side by side, medians of the rounds."""
    lt = _script("lenet_throughput")
    rows = lt.compare([NumpyBackend(), Renamed()], dtypes=("float32",), batch_size=8, steps=1, warmup=1, rounds=2)
    assert [(r["backend"], r["dtype"], r["threads"]) for r in rows] == [
        ("numpy", "float32", None),
        ("numpy-two", "float32", None),
    ]
    for r in rows:
        assert len(r["samples"]) == 2 and min(r["samples"]) <= r["images_per_second"] <= max(r["samples"])
        assert r["ms_per_step"] > 0 and "loaded" not in r


def _gemm_bound_record() -> dict:
    layer = {
        "name": "k3 2-3 @9",
        "count": 1,
        "batch": 4,
        "gemm_shape": {"groups": 1, "M": 28, "K": 6, "F": 3},
        "flops": 1,
        "seconds": {"torch": 0.002, "numpy": 0.003, "bound": 0.001},
        "samples": {},
        "bound_over_torch": 0.5,
        "numpy_over_torch": 1.5,
        "numpy_over_bound": 3.0,
    }
    geo = {"bound_over_torch": 0.5, "numpy_over_torch": 1.5, "numpy_over_bound": 3.0}
    return {
        "schema": "convspec-gemm-bound/1",
        "dtype": "float32",
        "rounds": 1,
        "threads": {"torch_after_run": 2, "blas": [{"library": "openblas", "threads": 2}]},
        "kernels": {},
        "gemm": {"libraries": {"numpy": {"gflops": 450.0, "samples": 1}}},
        "load_average": {"start": [1.0, 1.0, 1.0], "end": [1.0, 1.0, 1.0]},
        "seconds": 1.0,
        "suites": [{"name": "one", "batch": 4, "layers": [layer], "geomean": geo}],
    }


def test_gemm_bound_times_the_im2col_products(monkeypatch):
    """benchmarks/gemm_bound.py on the tiny suite: per layer the three products at the layer's im2col shapes
    (M = batch * output positions, K = C_in/groups * taps, F = C_out/groups, one set per group), torch-cpu's
    step and NumPy's forward + backward, each timed once per round, and the ratios of their medians."""
    torch = pytest.importorskip("torch")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    gb = _script("gemm_bound")
    monkeypatch.setenv("CONVSPEC_TORCH_THREADS", "1")  # (measure sets it: restored after the test)
    torch_threads = torch.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=None):  # the BLAS threads measure sets, restored on exit
        try:
            res = gb.measure(["tiny"], {}, "float32", rounds=2, threads=1)
        finally:
            torch.set_num_threads(torch_threads)
    (suite,) = res["suites"]
    assert suite["name"] == "tiny" and res["threads"]["torch_after_run"] == 1
    for rec, layer in zip(suite["layers"], bench.resolve_suites(["tiny"])[0].layers):
        n = rec["batch"]
        G = layer.groups
        want = {"groups": G, "M": n * int(np.prod(layer.out_sizes(n)))}
        want.update(K=layer.c_in // G * int(np.prod(layer.kernel)), F=layer.c_out // G)
        assert rec["gemm_shape"] == want, layer.name
        for k in ("torch", "numpy", "bound"):
            assert len(rec["samples"][k]) == 2 and rec["seconds"][k] == np.median(rec["samples"][k]) > 0
        assert rec["bound_over_torch"] == rec["seconds"]["bound"] / rec["seconds"]["torch"]
    p = gb.Products(suite_layer := bench.resolve_suites(["tiny"])[0].layers[0], 3, "float64")
    p.all()  # the products are the im2col products of the operands it holds
    np.testing.assert_allclose(p.y, p.col @ p.w)
    np.testing.assert_allclose(p.dw, p.col.transpose(0, 2, 1) @ p.g)
    np.testing.assert_allclose(p.dcol, p.g @ p.w.transpose(0, 2, 1))
    assert p.shape[1] == 3 * int(np.prod(suite_layer.out_sizes(3)))
    md = "\n".join(gb.render(res))
    assert md.count("| tiny |") == len(suite["layers"]) and "| **tiny** | geometric mean |" in md


def test_performance_report_rerenders_from_its_json(files, tmp_path, monkeypatch):
    """benchmarks/performance_report.py --reuse-bench FILE: every section FILE holds is rendered from it and
    nothing is measured; the bench of each dtype, the overview with the memory columns, the training table and
    the machine line with the BLAS kernels and torch's CPU capability are in the Markdown."""
    import sys

    pr = _script("performance_report")
    d, result = files
    f64 = json.loads(json.dumps(result))
    f64["settings"]["dtype"] = "float64"
    row = {"dtype": "float32", "threads": 2, "batch_size": 32, "steps": 5, "warmup": 1, "ms_per_step": 10.0}
    training = {
        "rows": [
            dict(
                row,
                backend="numpy",
                images_per_second=300.0,
                samples=[300.0],
                loaded={"images_per_second": 100.0, "samples": [100.0]},
            ),
            dict(
                row,
                backend="torch-cpu",
                images_per_second=600.0,
                samples=[600.0],
                loaded={"images_per_second": 400.0, "samples": [400.0]},
            ),
        ],
        "rounds": 1,
        "steps": 5,
        "warmup": 1,
        "batch_size": 32,
        "load_average": {"start": [1, 1, 1], "end": [1, 1, 1]},
        "competing_load": {"iterations_per_second": 100.0},
    }
    plan = {"fresh": 1.0, "cached": 0.01, "cases": 10, "per_source": {"golden": [10, 0.1]}}
    bundle = dict(
        result,
        other_dtypes=[f64],
        training=training,
        suite_timings={
            "imports": {"total": 0.3, "parts": {"numpy": 0.1}},
            "plans": {"quick": plan, "full": plan},
            "runs": [
                {
                    "profile": "quick",
                    "jobs": 1,
                    "cache": False,
                    "wall": 1.0,
                    "cpu": 1.0,
                    "cases": 10,
                    "backend": 0.1,
                    "reference": 0.1,
                    "rc": 0,
                    "missed": False,
                    "error": "",
                }
            ],
            "load": [[1, 1, 1], [1, 1, 1]],
        },
        reference={"rounds": 2, "times": {"1": {"wall": 0.05, "cpu": 0.05, "wall_max": 0.06}}, "load": [[1], [1]]},
        gemm_kernels={
            "in use": None,
            "threads": 2,
            "rounds": 1,
            "settings": {
                "unset": {"gflops": 450.0, "samples": [450.0], "architecture": "SkylakeX"},
                "Haswell": {"gflops": 250.0, "samples": [250.0], "architecture": "Haswell"},
                "SkylakeX": {"gflops": 450.0, "samples": [450.0], "architecture": "SkylakeX"},
            },
        },
        gemm_bound=_gemm_bound_record(),
        regeneration={
            "command": "python benchmarks/performance_report.py",
            "started": "then",
            "seconds": {"bench float32": 1.0},
            "load_average": {"start": [1], "end": [1]},
        },
    )
    src = tmp_path / "in.json"
    bench.dump(bundle, src)

    def measured(*a, **k):
        raise AssertionError("--reuse-bench measured a section the file holds")

    for name in ("run_suite_timings", "run_reference", "gemm_kernels", "run_bench", "run_training", "run_gemm_bound"):
        monkeypatch.setattr(pr, name, measured)
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["performance_report.py", "--reuse-bench", str(src), "--out-dir", str(out)])
    pr.main()
    md = (out / "performance.md").read_text()
    for heading in (
        "## 1. The conformance suite",
        "## 2. The reference",
        "## 3. Conv forward+backward",
        "### Overview: every suite in every dtype",
        "### float32: bench",
        "### float64: bench",
        "## 4. LeNet-5 training",
        "## 5. The products alone",
    ):
        assert heading in md, heading
    assert f"From `{src}`" in md and "Re-rendered by" in md
    assert "OPENBLAS_CORETYPE unset (OpenBLAS picks SkylakeX) 450.0, Haswell 250.0, SkylakeX 450.0" in md
    assert "CPU capability" in md or "torch_cpu_capability" not in result["environment"].get("kernels", {})
    assert "| one | float32 | 2 | numpy-two |" in md and "| one | float64 | 2 | numpy-two |" in md
    assert "| float32 | 2 | numpy | 300 [300 - 300] | 10.0 | 100 [100 - 100] | 0.50 | 0.25 |" in md
    assert "| one | k3 2-3 @9 | 4 | 28, 6, 3 | 2.00 | 3.00 | 1.00 | 0.50 | 1.50 | 3.00 |" in md
    assert "| **one** | geometric mean | | | | | | **0.50** | **1.50** | **3.00** |" in md
    again = json.loads((out / "performance.json").read_text())
    assert again["schema"] == "convspec-bench/1" and again["other_dtypes"][0]["settings"]["dtype"] == "float64"
    perf.load_bench(out / "performance.json")  # still a bench file for `convspec report --bench`
