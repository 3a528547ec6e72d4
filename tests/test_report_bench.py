"""`convspec report --bench FILE`: a Performance section in the Markdown and HTML reports from the JSON of
`convspec bench --out`, built here by running conformance.bench on a one-layer suite with one round; and
clear errors for files that are not bench results."""

from __future__ import annotations

import base64
import json
import re

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
