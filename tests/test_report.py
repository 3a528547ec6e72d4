"""Compatibility reports: the results JSON Schema, merging results files, the Markdown and HTML
renderings, bad input, atomic writes, and the HTML in a real (headless) browser.

The results files are real: a module fixture runs the suite (`convspec run`) on a few ops with the
numpy backend and three small plugin backends written here: one that declares a deviation, one with a
bug, and one that is unavailable."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from convspec.conformance import report as rep
from convspec.conformance.cli import main
from convspec.conformance.records import PARTS
from convspec.conformance.report import html as report_html
from convspec.conformance.report import schema as S
from convspec.conformance.report.format import failure_lines
from convspec.conformance.report.load import MergeError, load, load_file
from convspec.conformance.report.model import build, features
from convspec.conformance.results import ResultFileError

PLUGIN = textwrap.dedent('''
    """Backends for the report tests: -p report_test_plugins."""
    from convspec import hookimpl
    from convspec import reference as R
    from convspec.conformance.backend import Backend


    class Ref(Backend):
        name = "rep-ref"
        version = "spec"

        def __getattr__(self, op):
            if op.startswith("_"):
                raise AttributeError(op)
            return getattr(R, op)


    class Deviant(Ref):
        """tanh with the sign flipped, declared as a known deviation."""
        name = "rep-deviant"

        def deviation(self, case):
            return "tanh sign flipped on purpose" if case.op == "tanh" else None

        def tanh(self, x):
            return -R.tanh(x)


    class Broken(Ref):
        """relu that lets negative values through: an undeclared bug."""
        name = "rep-broken"

        def relu(self, x):
            return x.copy()


    class Gone(Ref):
        name = "rep-gone"

        def availability(self):
            return "needs a device this machine lacks"


    @hookimpl
    def register_backends(register):
        for cls in (Deviant, Broken, Gone):
            register(cls())
''')

OPS = ("relu", "tanh", "max_pool")


def _run(out: Path, *args) -> None:
    result = CliRunner().invoke(main, ["run", "--no-progress", "--out", str(out), *args], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    assert out.exists()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real results files: a mixed run (four backends, failures, a deviation, an unavailable one), and a
    numpy run on two ops in full and as two shards."""
    d = tmp_path_factory.mktemp("runs")
    (d / "report_test_plugins.py").write_text(PLUGIN)
    sys.path.insert(0, str(d))
    try:
        ops = [a for op in OPS for a in ("--op", op)]
        _run(
            d / "mixed.jsonl",
            "-p",
            "report_test_plugins",
            "-b",
            "numpy",
            "-b",
            "rep-deviant",
            "-b",
            "rep-broken",
            "-b",
            "rep-gone",
            *ops,
        )
        two = ["-b", "numpy", "--op", "relu", "--op", "max_pool"]
        _run(d / "full.jsonl", *two)
        _run(d / "shards" / "s1.jsonl", *two, "--shard", "1/2")
        _run(d / "shards" / "s2.jsonl", *two, "--shard", "2/2")
    finally:
        sys.path.remove(str(d))
        sys.modules.pop("report_test_plugins", None)
    return d


def records(path) -> list:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def cases(path) -> list:
    return [r for r in records(path) if r["record"] == "case"]


# ------------------------------------------------------------------------------------------ the schema


def test_schema_is_a_valid_2020_12_schema_loaded_as_package_data():
    import jsonschema

    doc = S.schema()
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(doc)
    assert isinstance(S.validator(), jsonschema.Draft202012Validator)
    assert set(doc["properties"]["record"]["enum"]) == {"run", "plugin_error", "backend", "case", "summary", "train"}


def test_every_record_the_suite_writes_validates(runs):
    for f in sorted(runs.rglob("*.jsonl")):
        recs = records(f)
        for i, r in enumerate(recs, 1):
            assert S.problems(r) == [], f"{f.name} line {i}"
        assert S.validate_file(f) == len(recs)
        kinds = Counter(r["record"] for r in recs)
        assert kinds["run"] == 1 and kinds["summary"] == 1 and kinds["case"] > 0
    mixed = records(runs / "mixed.jsonl")
    assert {r["status"] for r in mixed if r["record"] == "case"} >= {"pass", "fail", "deviation"}
    (gone,) = [r for r in mixed if r["record"] == "backend" and r["name"] == "rep-gone"]
    assert gone["available"] is False


def _edited(runs, status="fail"):
    return dict(next(r for r in records(runs / "mixed.jsonl") if r["record"] == "case" and r["status"] == status))


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda r: r.update(status="passed"), "'passed' is not one of"),
        (lambda r: r.pop("repro"), "'repro' is a required property"),
        (lambda r: r.update(bound_ratio=-1.0), "-1.0 is less than the minimum of 0"),
        (lambda r: r["checks"][0].update(status="ok"), "checks[0].status: 'ok' is not one of"),
        (lambda r: r.update(status="deviation"), "'deviation' is a required property"),
        (lambda r: r.update(record="cases"), "'cases' is not one of"),
    ],
)
def test_schema_rejects_hand_edited_records_saying_where(runs, edit, expected):
    rec = _edited(runs)
    edit(rec)
    found = S.problems(rec)
    assert found and any(expected in p for p in found), found


def test_unavailable_backend_must_say_why(runs):
    rec = next(r for r in records(runs / "mixed.jsonl") if r["record"] == "backend" and r["name"] == "rep-gone")
    assert S.problems(rec) == []
    rec["reason"] = None
    assert any("reason" in p for p in S.problems(rec))


def test_train_records_are_provisional_but_need_a_backend():
    assert S.problems({"record": "train", "backend": "numpy", "losses": [2.3, 1.1], "anything": {"x": 1}}) == []
    assert any("'backend' is a required property" in p for p in S.problems({"record": "train", "losses": []}))


# ------------------------------------------------------------------------------------------ bad input


def test_truncated_file_is_named_with_its_line(runs, tmp_path):
    lines = (runs / "mixed.jsonl").read_text().splitlines()
    bad = tmp_path / "cut.jsonl"
    bad.write_text("\n".join(lines[:7]) + "\n" + lines[7][:50])
    with pytest.raises(ResultFileError, match=r"cut\.jsonl: line 8 is not valid JSON .*truncated"):
        load_file(bad)


def test_hand_edited_file_is_refused_with_the_broken_rule(runs, tmp_path):
    lines = (runs / "mixed.jsonl").read_text().splitlines()
    edited = tmp_path / "edited.jsonl"
    k = next(i for i, line in enumerate(lines) if '"record":"case"' in line)
    assert '"status":"pass","checks"' in lines[k]
    lines[k] = lines[k].replace(
        '"status":"pass","checks"', '"status":"PASS","checks"'
    )  # the case's status, not a check's
    edited.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ResultFileError,
        match=rf"edited\.jsonl: line {k + 1} \(case record\) breaks the results schema: status: 'PASS' is not one of",
    ):
        load_file(edited)
    broken = tmp_path / "broken.jsonl"
    lines[k + 1] = lines[k + 1][: len(lines[k + 1]) // 2]  # damage in the middle of the file
    broken.write_text("\n".join(lines) + "\n")
    with pytest.raises(ResultFileError, match=rf"line {k + 2} is not valid JSON .*edited or is corrupt"):
        load_file(broken)


def test_other_schema_version_is_refused(runs, tmp_path):
    recs = records(runs / "full.jsonl")
    recs[0]["schema"] = "convspec-results/2"
    f = tmp_path / "v2.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(ResultFileError, match=r"schema 'convspec-results/2'; this convspec reads 'convspec-results/1'"):
        load_file(f)
    f.write_text("".join(json.dumps(r) + "\n" for r in recs[1:]))  # no run header: not a results file
    with pytest.raises(
        ResultFileError, match=r"line 1 is a 'backend' record, but a results file starts with a 'run' record"
    ):
        load_file(f)


def test_empty_directory_empty_file_and_missing_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MergeError, match=r"empty: is a directory holding no results files \(\*\.jsonl\)"):
        load([tmp_path / "empty"])
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(ResultFileError, match=r"e\.jsonl: is empty"):
        load([tmp_path / "e.jsonl"])
    res = CliRunner().invoke(main, ["report", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1 and "holding no results files" in res.output
    assert not (tmp_path / "out").exists()
    res = CliRunner().invoke(main, ["report", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_merge_refuses_different_spec_versions(runs, tmp_path):
    recs = records(runs / "full.jsonl")
    recs[0]["spec_version"] = "2.0"
    other = tmp_path / "newer.jsonl"
    other.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(
        MergeError, match=r"different spec versions \(spec 1\.0: full\.jsonl; spec 2\.0: newer\.jsonl\)"
    ):
        load([runs / "full.jsonl", other])
    res = CliRunner().invoke(main, ["report", str(runs / "full.jsonl"), str(other), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1 and "report them separately" in res.output
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ merging


def test_two_shards_merge_into_the_full_run(runs):
    full = load([runs / "full.jsonl"])
    merged = load([runs / "shards"])  # a directory stands for its *.jsonl files
    assert len(merged.runs) == 2
    assert sorted(c["case_id"] for c in merged.cases) == sorted({c["case_id"] for c in full.cases})
    a, b = build(full), build(merged)
    assert {op: {k: v.counts for k, v in row.items()} for _, rows in a.matrix for op, row in rows} == {
        op: {k: v.counts for k, v in row.items()} for _, rows in b.matrix for op, row in rows
    }
    assert not any("shards" in n for n in merged.notes)
    one = load([runs / "shards" / "s1.jsonl"])
    assert any("has 1 of 2 shards; missing: 2/2" in n for n in one.notes)


def test_merging_the_same_results_twice_counts_each_case_once(runs, tmp_path):
    shutil.copy(runs / "full.jsonl", tmp_path / "copy.jsonl")
    merged = load([runs / "full.jsonl", tmp_path / "copy.jsonl"])
    n = len({c["case_id"] for c in cases(runs / "full.jsonl")})
    assert len(merged.cases) == n and merged.duplicates == n and not merged.conflicts


def test_conflicting_outcomes_show_the_worse_and_are_listed(runs, tmp_path):
    recs = records(runs / "full.jsonl")
    k = next(i for i, r in enumerate(recs) if r["record"] == "case" and r["op"] == "relu")
    recs[k]["status"] = "fail"
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    merged = load([runs / "full.jsonl", tmp_path / "b.jsonl"])
    (conflict,) = merged.conflicts
    assert conflict[1] == recs[k]["case_id"] and set(conflict[2]) == {"pass", "fail"}
    cell = dict(dict(build(merged).matrix)["activations"])["relu"]["numpy"]
    assert cell.counts["fail"] == 1 and cell.kind == "fail"


# ------------------------------------------------------------------------------------------ content


@pytest.fixture(scope="module")
def mixed_report(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    written = rep.write_reports([runs / "mixed.jsonl"], out, name="mixed")
    assert [p.name for p in written] == ["mixed.md", "mixed.html"]
    return out / "mixed.md", out / "mixed.html"


def _row(md: str, first: str) -> list:
    line = next(ln for ln in md.splitlines() if ln.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def _cell_text(counts: Counter) -> str:
    order = ("fail", "error", "timeout", "crashed", "invalid", "deviation", "unsupported", "skipped", "pass")
    return " · ".join(f"{s} {counts[s]}" for s in order if counts[s])


def test_markdown_matrix_counts_every_part_of_every_case_of_every_backend(runs, mixed_report):
    md = mixed_report[0].read_text()
    header = _row(md, "op")
    backends = ["numpy", "rep-deviant", "rep-broken", "rep-gone"]
    assert header == ["op"] + [f"{b} {p}" for b in backends for p in ("forward", "backward")]
    recs = cases(runs / "mixed.jsonl")
    for op in OPS:
        row = _row(md, f"`{op}`")
        for col, cell in zip(header[1:], row[1:]):
            backend, part = col.split()
            if backend == "rep-gone":
                assert cell == "⛔ unavailable"
                continue
            mine = [c for c in recs if c["op"] == op and c["backend"] == backend]
            counts = Counter(c["verdicts"][part] for c in mine if part in c["verdicts"])
            assert counts, (op, backend, part)
            text = _cell_text(counts)
            if part == "forward":  # the index output's verdicts (and any other part's) follow the forward's
                for other in (p for p in PARTS if p not in ("forward", "backward")):
                    more = Counter(c["verdicts"][other] for c in mine if other in c["verdicts"])
                    text += f"; {other}: {_cell_text(more)}" if more else ""
            assert cell.endswith(text), (op, col, cell)
    assert _row(md, "`relu`")[5].startswith("❌ fail")  # the undeclared relu bug, in its forward
    assert _row(md, "`tanh`")[3].startswith("⚠️ deviation")  # the declared tanh deviation
    tanh = [c for c in recs if c["op"] == "tanh" and c["backend"] == "numpy"]
    assert _row(md, "`tanh`")[1] == f"✅ pass {len(tanh)}" == _row(md, "`tanh`")[2]
    # whole cases and per-part verdicts per backend
    got = Counter(c["status"] for c in recs if c["backend"] == "rep-broken")
    assert _row(md, "**`rep-broken`**")[1] == _cell_text(got)
    # grouped rows: pooling before activations, as in the op table
    assert (
        md.index("| **pooling** |")
        < md.index("| `max_pool` |")
        < md.index("| **activations** |")
        < md.index("| `relu` |")
    )


def test_markdown_detail_sections(runs, mixed_report):
    md = mixed_report[0].read_text()
    recs = cases(runs / "mixed.jsonl")
    # per-feature rows count exactly the cases that have the feature
    for feature in ("ceil_mode", "stride > 1", "dtype float32", "data: ties"):
        have = Counter(c["status"] for c in recs if c["backend"] == "numpy" and feature in features(c))
        assert have, feature
        assert _row(md, feature)[1].endswith(_cell_text(have))
    # deviations with their reason and count
    devs = [c for c in recs if c["status"] == "deviation"]
    assert _row(md, "`rep-deviant`")[1:4] == ["`tanh`", "tanh sign flipped on purpose", str(len(devs))]
    # failures with the first mismatch and their repro command
    fails = [c for c in recs if c["status"] == "fail"]
    assert fails and all(c["backend"] == "rep-broken" and c["op"] == "relu" for c in fails)
    section = md[md.index("## Failures") : md.index("## Environment")]
    # grouped by kind (rep-broken's relu forward: not the exact value, an infinity), counted, one example each
    groups = [
        [c.strip() for c in ln.strip("|").split(" | ")]
        for ln in section.splitlines()
        if ln.startswith("| `rep-broken` |")
    ]
    assert groups and all(g[1:3] == ["`relu`", "forward"] for g in groups)
    assert {g[3] for g in groups} <= {"not exact", "outside bound", "infinity", "NaN"}
    assert sum(int(g[4]) for g in groups) == len(fails)
    shown = re.findall(r"- \*\*FAIL\*\* `rep-broken` `([^`]+)`: forward: \d+ of \d+ elements off", section)
    assert len(shown) == len(groups) and set(shown) <= {c["case_id"] for c in fails}
    assert all(next(c["repro"] for c in fails if c["case_id"] == cid) in section for cid in shown)
    # environment of the run, and the unavailable backend's reason
    env = md[md.index("## Environment") :]
    host = records(runs / "mixed.jsonl")[0]["environment"]["host"]
    assert f"| host | {host} |" in env and "| profile | quick |" in env
    assert "| rep-gone | unavailable: needs a device this machine lacks |" in env
    # bound ratios: the numpy column holds the real largest ratio of its tanh cases
    from convspec.conformance.report.format import fmt_ratio

    tanh = [c["bound_ratio"] for c in recs if c["op"] == "tanh" and c["backend"] == "numpy"]
    assert max(tanh) > 0
    ratio_row = next(ln for ln in md[md.index("## Bound ratios") :].splitlines() if ln.startswith("| `tanh` |"))
    assert ratio_row.split(" | ")[1].startswith(fmt_ratio(max(tanh)) + " / ")


def test_failure_lines_render_one_failure_plain_or_with_markup(runs):
    fail = next(r for r in records(runs / "mixed.jsonl") if r["record"] == "case" and r["status"] == "fail")
    head, repro, *mini = failure_lines(fail)
    assert head.startswith(f"FAIL {fail['backend']} {fail['case_id']}: ") and repro == fail["repro"]
    assert len(mini) in (0, 2)
    marked = failure_lines(fail, strong=lambda s: f"**{s}**", code=lambda s: f"`{s}`", block=lambda s: f"$ {s}")
    assert (
        marked[0].startswith(f"**FAIL** `{fail['backend']}` `{fail['case_id']}`: ")
        and marked[1] == "$ " + fail["repro"]
    )


def test_html_is_self_contained_with_matrix_and_plot(runs, mixed_report):
    page = mixed_report[1].read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "<script" not in page
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith(("data:image/svg+xml;base64,", "#")) for r in refs), [
        r[:40] for r in refs if not r.startswith(("data:", "#"))
    ]
    assert not re.search(r"url\((?!#)", page) and "@import" not in page
    assert '<table id="matrix"' in page and page.count('<tr class="op"') == len(OPS)
    assert 'id="plot-bound-ratio"' in page
    import base64

    svg = base64.b64decode(
        re.search(r'id="plot-bound-ratio"><img [^>]*src="data:image/svg\+xml;base64,([^"]+)"', page).group(1)
    ).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    # nothing the SVG would fetch: every link is to a fragment inside it (namespace URIs are names, not fetched)
    links = re.findall(r'(?:href|src)="([^"]*)"', svg) + re.findall(r"url\(([^)]*)\)", svg)
    assert links and all(link.startswith("#") for link in links), [x for x in links if not x.startswith("#")][:5]


def test_train_records_render_loss_and_weight_difference(runs, tmp_path):
    recs = records(runs / "full.jsonl")
    ref = [2.3 * 0.98**i for i in range(50)]
    recs.insert(-1, {"record": "train", "backend": "reference", "losses": ref})
    recs.insert(
        -1,
        {
            "record": "train",
            "backend": "numpy",
            "losses": [v * 1.001 for v in ref],
            "weight_diff": [{"step": i, "max_abs": 1e-9 * (i + 1)} for i in range(0, 50, 5)],
            "accuracy": 0.97,
            "steps": 50,
            "config": {"epochs": 1},
        },
    )
    recs.insert(
        -1,
        {
            "record": "case",
            "backend": "numpy",
            "case_id": "lenet:train[float32]",
            "op": "lenet",
            "source": "lenet",
            "dtype": "float32",
            "case": {"op": "lenet"},
            "repro": "convspec train --backend numpy",
            "status": "pass",
            "checks": [],
            "bound_ratio": None,
            "seconds": 1.0,
        },
    )
    f = tmp_path / "train.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    md_path, html_path = rep.write_reports([f], tmp_path / "out", name="t")
    md = md_path.read_text()
    assert _row(md, "**LeNet**") and _row(md, "`lenet`")[1] == "✅ pass 1"
    row = _row(md, "numpy")
    header = _row(md, "backend")
    assert len(header) == len(set(header)) == len(row)
    got = dict(zip(header, row))
    assert (
        got["steps"] == "50"
        and got["final loss"] == f"{ref[-1] * 1.001:.4g}"
        and got["reference final loss"] == f"{ref[-1]:.4g}"
    )
    assert got["max weight diff"] == "4.6e-08" and got["accuracy"] == "0.97"
    page = html_path.read_text()
    assert 'id="plot-loss"' in page and 'id="plot-weight-diff"' in page


# ------------------------------------------------------------------------------------------ writing


def test_report_is_written_atomically(runs, tmp_path, monkeypatch):
    out = tmp_path / "out"
    rep.write_reports([runs / "full.jsonl"], out, name="r")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {"r.md", "r.html"}

    def broken(*a, **k):
        raise RuntimeError("renderer died")

    monkeypatch.setattr(report_html, "render", broken)
    with pytest.raises(RuntimeError):
        rep.write_reports([runs / "mixed.jsonl"], out, name="r")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing half-written, nothing left over
    monkeypatch.undo()

    def no_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_disk)
    with pytest.raises(OSError, match="No space left"):
        rep.atomic_write(out / "r.md", "# new\n" * 1000)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_cli_writes_both_files_and_checks_the_name(runs, tmp_path):
    res = CliRunner().invoke(main, ["report", str(runs / "shards"), "--out", str(tmp_path / "r"), "--name", "cpu"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["cpu.html", "cpu.md"]
    assert "report: " in res.output
    res = CliRunner().invoke(main, ["report", str(runs / "full.jsonl"), "--name", "../x"])
    assert res.exit_code == 2 and "--name" in res.output


# ------------------------------------------------------------------------------------------ a browser

CHROMIUM = "/usr/bin/chromium"

PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const box = document.querySelector("table#matrix").getBoundingClientRect();
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    images: imgs.map(i => ({id: i.parentElement.id, ok: i.complete && i.naturalWidth > 100 && i.naturalHeight > 100})),
    matrixRows: document.querySelectorAll("table#matrix tr.op").length,
    matrixHeight: box.height,
    cellsColoured: Array.from(document.querySelectorAll("table#matrix td")).filter(td => \
getComputedStyle(td).backgroundColor !== "rgba(0, 0, 0, 0)").length,
  });
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"Chromium not installed ({CHROMIUM} absent; Debian: "
    "apt-get install chromium): the HTML report is not checked in a browser",
)
def test_html_report_renders_in_headless_chromium(mixed_report, tmp_path):
    page = mixed_report[1].read_text().replace("</body>", PROBE + "\n</body>")
    probe = tmp_path / "probe.html"
    probe.write_text(page)
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--mute-audio",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        probe.as_uri(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.S)
    assert m, res.stdout[-2000:]
    import html as stdhtml

    got = json.loads(stdhtml.unescape(m.group(1)))
    assert got["matrixRows"] == len(OPS) and got["matrixHeight"] > 100
    assert got["cellsColoured"] >= len(OPS) * 4  # every op x backend cell has its status colour
    assert got["images"] == [{"id": "plot-bound-ratio", "ok": True}]


# ------------------------------------------------------------------------------------------ verdicts and signatures
# synthetic records (merge() without the schema): a forward-only backend and failures of several kinds


def _header(backends):
    return {
        "record": "run",
        "schema": "convspec-results/1",
        "spec_version": "1.0",
        "backends": backends,
        "profile": "quick",
        "seed": 0,
        "shard": [1, 1],
        "started": "2026-01-01T00:00:00Z",
        "argv": ["run"],
        "environment": {"host": "h"},
    }


def _case(backend, op, n, status, checks, **kw):
    return {
        "record": "case",
        "backend": backend,
        "case_id": f"property:{op}[n={n}]#{n:08x}",
        "op": op,
        "source": "property",
        "dtype": "float32",
        "case": {"op": op, "params": {}, "shapes": {}},
        "repro": f"REPRO-{backend}-{n}",
        "status": status,
        "checks": checks,
        "bound_ratio": None,
        "seconds": 0.0,
        **kw,
    }


def _mismatch(got, expected=1.0, bound=1e-6):
    return {"index": [0, 0, 1], "expected": expected, "got": got, "bound": bound, "count": 1, "of": 8}


def _synthetic():
    from convspec.conformance.records import verdicts
    from convspec.conformance.report.load import RunFile, merge

    fwd = {"what": "forward", "status": "pass", "bound_ratio": 0.1}
    recs = [_header(["ort", "bad"])]
    no_grads = {"what": "backward", "status": "unsupported", "message": "no grads"}
    recs += [_case("ort", "conv", i, "unsupported", [fwd, no_grads]) for i in range(5)]
    recs.append(
        _case(
            "ort",
            "max_pool",
            9,
            "unsupported",
            [fwd, {"what": "indices", "status": "pass"}, {"what": "backward", "status": "unsupported"}],
        )
    )
    for r in recs[1:]:
        r.pop("verdicts", None)  # written before records carried verdicts: derived when merged
    shrunk = {
        "case_id": "property:conv[small]#1",
        "case": {"op": "conv"},
        "repro": "MINI-REPRO",
        "checks": [{"what": "forward", "status": "fail", "mismatch": _mismatch(3.0)}],
    }
    bad = [
        _case(
            "bad",
            "conv",
            10 + i,
            "fail",
            [{"what": "forward", "status": "fail", "mismatch": _mismatch(2.0)}, {"what": "grad x", "status": "pass"}],
        )
        for i in range(3)
    ]
    bad.append(
        _case(
            "bad",
            "conv",
            20,
            "fail",
            [{"what": "forward", "status": "fail", "mismatch": _mismatch("nan")}],
            minimal=shrunk,
        )
    )  # a NaN: the shrunk case (outside the bound) is not this failure's
    bad.append(
        _case(
            "bad",
            "conv",
            21,
            "fail",
            [{"what": "forward", "status": "fail", "mismatch": _mismatch(5.0)}],
            minimal=shrunk,
        )
    )
    shape = {"what": "forward", "status": "fail", "message": "shape (1, 2) != expected (1, 3)"}
    skipped = {"what": "backward", "status": "skipped", "message": "not run"}
    bad.append(_case("bad", "relu", 30, "fail", [shape, skipped]))
    raised = "Traceback (most recent call last):\n  File x\nValueError: boom"
    bad.append(_case("bad", "relu", 31, "error", [], message=raised))
    bad.append(_case("ort", "tanh", 40, "timeout", [], message="no result within 10 s"))
    for r in bad:
        r["verdicts"] = verdicts(r["status"], r["checks"])
    return build(merge([RunFile(Path("synthetic.jsonl"), recs + bad + [{"record": "summary", "finished": True}])]))


def test_forward_only_backend_gets_its_forward_passes_counted():
    from convspec.conformance.report import format as F

    report = _synthetic()
    conv = dict(dict(report.matrix)["convolution"])["conv"]["ort"]
    assert conv.counts == Counter(unsupported=5)  # as whole cases: unsupported (no backward)
    assert F.part_cells("conv", conv) == [("pass", "pass 5"), ("unsupported", "unsupported 5")]
    pool = dict(dict(report.matrix)["pooling"])["max_pool"]["ort"]
    assert F.part_cells("max_pool", pool)[0] == ("pass", "pass 1; indices: pass 1")
    assert F.part_totals(report.totals["ort"]) == "forward timeout 1 · pass 6; indices pass 1; backward unsupported 6"
    texts = rep.render(report)
    assert "| `conv` | ✅ pass 5 | ➖ unsupported 5 | ❌ fail 5 | ✅ pass 3 |" in texts["md"]
    assert '<td class="k-pass" data-backend="ort" data-part="forward">pass 5</td>' in texts["html"]


def test_old_results_without_verdicts_load_with_derived_verdicts(runs, tmp_path):
    recs = records(runs / "mixed.jsonl")
    for r in recs:
        r.pop("verdicts", None)
    f = tmp_path / "old.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    old = {(c["backend"], c["case_id"]): c["verdicts"] for c in load([f]).cases}
    new = {(c["backend"], c["case_id"]): c["verdicts"] for c in load([runs / "mixed.jsonl"]).cases}
    assert old == new and len(old) > 50


def test_failures_are_grouped_by_signature_with_every_backend_shown():
    from convspec.conformance.report.signature import signature

    report = _synthetic()
    assert [(s, len(r)) for s, r in report.failure_groups] == [
        (("ort", "tanh", "case", "timeout"), 1),
        (("bad", "conv", "forward", "NaN"), 1),
        (("bad", "conv", "forward", "outside bound"), 4),
        (("bad", "relu", "forward", "shape"), 1),
        (("bad", "relu", "forward", "error: ValueError"), 1),
    ]
    assert all(signature(r) == s for s, recs in report.failure_groups for r in recs)
    texts = rep.render(report)
    md = texts["md"][texts["md"].index("## Failures") :]
    assert "8 failures of 5 kinds" in md
    assert "| `bad` | `conv` | forward | outside bound | 4 | 3. `property:conv[n=21]#00000015` |" in md
    assert "### 3. bad · conv · forward · outside bound (and 3 more like it)" in md
    for html_or_md in (md, texts["html"]):
        assert "REPRO-ort-40" in html_or_md and "REPRO-bad-31" in html_or_md  # every backend's failures appear
    assert 'id="failure-groups"' in texts["html"] and 'id="failure-5"' in texts["html"]


def test_a_minimal_case_is_shown_only_with_the_failures_it_reproduces():
    from convspec.conformance.report.signature import reproduces

    report = _synthetic()
    groups = dict(report.failure_groups)
    (nan,) = groups["bad", "conv", "forward", "NaN"]
    assert nan.get("minimal") and not reproduces(nan)
    assert failure_lines(nan)[2:] == []  # its shrunk case fails another way: not claimed
    example = groups["bad", "conv", "forward", "outside bound"][0]
    assert reproduces(example) and example["case_id"] == "property:conv[n=21]#00000015"  # the group shows it
    shown = failure_lines(example)[2:]
    assert shown == ["smallest failing case found by shrinking: property:conv[small]#1", "MINI-REPRO"]
    texts = rep.render(report)
    for text in texts.values():
        assert text.count("MINI-REPRO") == 1


def test_signature_kinds():
    from convspec.conformance.report.signature import check_kind, signature

    def kind(**check):
        return check_kind({"what": "forward", "status": "fail", **check})

    assert kind(mismatch=_mismatch(2.0)) == "outside bound"
    assert kind(mismatch=_mismatch(2.0, bound=0.0)) == "not exact"
    assert kind(mismatch=_mismatch("nan")) == "NaN" and kind(mismatch=_mismatch(1.0, expected="nan")) == "missing NaN"
    assert kind(mismatch=_mismatch("-inf")) == "infinity"
    assert check_kind({"what": "indices", "status": "fail", "mismatch": _mismatch(3, 2, 0)}) == "index mismatch"
    assert kind(message="shape (1,) != expected (2,)") == "shape"
    assert kind(message="dtype float64 != expected float32") == "dtype"
    assert kind(message="returned 1 gradients, expected 3 (x, w, b)") == "gradient count"
    raised = {"what": "grad w", "status": "error", "message": "x\nRuntimeError: oops"}
    assert check_kind(raised) == "error: RuntimeError"
    assert signature(_case("b", "conv", 1, "crashed", [])) == ("b", "conv", "case", "crashed")
    assert signature(_case("b", "conv", 1, "error", [], message="op raised")) == ("b", "conv", "forward", "error")


def test_report_without_matplotlib_is_written_without_plots(runs, tmp_path, monkeypatch):
    """`convspec report` works after the README's first install (no matplotlib): the reports are whole but
    for their plots, and a note says why."""
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    res = CliRunner().invoke(main, ["report", str(runs / "mixed.jsonl"), "--out", str(tmp_path), "--name", "np"])
    assert res.exit_code == 0, res.output
    assert "written without its plots" in res.output and "pip install matplotlib" in res.output
    md = (tmp_path / "np.md").read_text()
    html_text = (tmp_path / "np.html").read_text()
    assert "numpy" in md and md.count("\n|") > 10  # the matrix and the tables are there
    assert "data:image/svg+xml" not in html_text
