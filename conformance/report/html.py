"""The report as one self-contained HTML file: inline CSS, the plots embedded as SVG data URIs, no
script and no reference to anything outside the file (it opens offline, and in a mail attachment).
The content is the Markdown report's, plus the pictures."""

from __future__ import annotations

import base64
from html import escape
from string import Template

from . import format as F
from . import perf
from .model import Cell, Report, ratio_summary

MAX_GROUPS = 300  # kinds of failure shown, one example each

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="convspec report">
<title>$title</title>
<style>
$css
</style>
</head>
<body>
<header>
<h1>$title</h1>
<p class="meta">$meta</p>
<nav>$nav</nav>
</header>
<main>
$body
</main>
</body>
</html>
""")

CSS = """
:root { --pass: #e3f4e1; --fail: #fbdcdc; --deviation: #fff1c9; --unsupported: #eceff3; --unavailable: #e2e2e2;
        --invalid: #f3defa; --ink: #1d2430; --muted: #5d6675; --line: #d5dae1; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0 auto; padding: 1.5rem 2rem 4rem; max-width: 1200px; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; padding-bottom: .25rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
.meta, .hint, figcaption { color: var(--muted); }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f4f6f8; }
tr.group th { background: #e9edf2; text-transform: capitalize; }
tr.total td, tr.total th { font-weight: 600; border-top: 2px solid #9aa3ae; }
td.k-pass { background: var(--pass); } td.k-fail { background: var(--fail); }
td.k-deviation { background: var(--deviation); } td.k-unsupported { background: var(--unsupported); }
td.k-unavailable { background: var(--unavailable); color: var(--muted); } td.k-invalid { background: var(--invalid); }
td.k-not-run, td.k-none, td.k-skipped { color: var(--muted); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: .5rem .7rem; overflow-x: auto; white-space: pre-wrap;
      word-break: break-all; margin: .3rem 0 .8rem; }
.notes { background: #fff8e5; border-left: 4px solid #e0b000; padding: .5rem 1rem; }
.failure { margin-bottom: 1rem; }
.status { font-weight: 700; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: white; }
.legend span { display: inline-block; margin-right: 1rem; }
.swatch { display: inline-block; width: .9em; height: .9em; vertical-align: -.1em; \
border: 1px solid var(--line); margin-right: .3em; }
"""


def _e(v) -> str:
    return escape(str(v), quote=True)


def _kind_class(kind: str) -> str:
    return "k-" + kind.replace(" ", "-")


def _cell(cell: Cell) -> str:
    return f'<td class="{_kind_class(cell.kind)}" title="{_e(cell.unavailable or "")}">{_e(F.cell_text(cell))}</td>'


def _part(kind: str, text: str, backend: str, part: str) -> str:
    return f'<td class="{_kind_class(kind)}" data-backend="{_e(backend)}" data-part="{_e(part)}">{_e(text)}</td>'


def _parts(cols, cells_of) -> str:
    """The matrix's part cells of one row: cells_of(backend) -> [(kind, text)] in MATRIX_PARTS order."""
    return "".join(_part(k, t, b, p) for b in cols for p, (k, t) in zip(F.MATRIX_PARTS, cells_of(b)))


def _table(header, rows_html, *, tid: str = "", cls: str = "") -> str:
    attrs = (f' id="{tid}"' if tid else "") + (f' class="{cls}"' if cls else "")
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f"<table{attrs}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows_html) + "\n</tbody>\n</table>"


def _img(anchor: str, caption: str, svg: str) -> str:
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (
        f'<figure id="{anchor}"><img class="plot" alt="{_e(caption)}" src="data:image/svg+xml;base64,{data}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _outcomes(st: dict) -> str:
    return "; ".join(f"{s} in {', '.join(files)}" for s, files in st.items())


def render(report: Report, plots: list) -> str:
    """plots: [(anchor, caption, svg)] from plots.all_plots(report)."""
    cols = report.columns
    plot = {a: (cap, svg) for a, cap, svg in plots}
    hosts = sorted({r.header["environment"].get("host", "?") for r in report.runs})
    meta = (
        f"Spec version <strong>{_e(report.spec_version)}</strong> · "
        f"{len(report.runs)} results file{'s' if len(report.runs) != 1 else ''} "
        f"from {', '.join(f'<code>{_e(h)}</code>' for h in hosts)} · backends: "
        f"{', '.join(f'<code>{_e(b)}</code>' for b in cols) or '(none)'}"
    )
    sections = []  # (anchor, title, html)

    parts = []
    if report.notes:
        parts.append(
            '<div class="notes"><strong>Note</strong><ul>'
            + "".join(f"<li>{_e(n)}</li>" for n in report.notes)
            + "</ul></div>"
        )
    nparts = len(F.MATRIX_PARTS)
    rows = []
    for group, ops in report.matrix:
        rows.append(f'<tr class="group"><th colspan="{nparts * len(cols) + 1}">{_e(group)}</th></tr>')
        for op, cells in ops:
            rows.append(
                f'<tr class="op" data-op="{_e(op)}"><th><code>{_e(op)}</code></th>'
                + _parts(cols, lambda b, op=op, cells=cells: F.part_cells(op, cells[b]))
                + "</tr>"
            )
    total = _parts(cols, lambda b: F.part_cells("", report.totals[b]))
    rows.append(f'<tr class="total"><th>all ops</th>{total}</tr>')
    parts.append(
        '<p class="hint">Each cell counts the cases of an op on a backend by the verdict of one part: the '
        "forward output (and the index output, where the op has one) and the backward (every gradient). A "
        "backend that computes only forwards gets its forward passes counted.</p>"
    )
    head = (
        '<tr><th rowspan="2">op</th>'
        + "".join(f'<th colspan="{nparts}">{_e(b)}</th>' for b in cols)
        + "</tr>\n<tr>"
        + "".join(f"<th>{_e(p)}</th>" for _ in cols for p in F.MATRIX_PARTS)
        + "</tr>"
    )
    parts.append(
        f'<table id="matrix" class="matrix">\n<thead>{head}</thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )
    parts.append(
        '<p class="hint">Whole cases (a case passes when every part passes) and the verdicts of each part, '
        "per backend:</p>"
    )
    parts.append(
        _table(
            ["totals", "whole cases", "verdicts per part"],
            [
                f"<tr><th><code>{_e(b)}</code></th>{_cell(report.totals[b])}<td>{_e(F.part_totals(report.totals[b]))}</td></tr>"
                for b in cols
            ],
            tid="verdicts-table",
        )
    )
    parts.append(
        '<p class="legend">'
        + "".join(
            f'<span><span class="swatch {_kind_class(k)}" style="background: '
            f'var(--{k.replace(" ", "-")}, white)"></span>'
            f"<strong>{_e(k)}</strong>: {_e(w)}</span>"
            for k, w in F.KIND_WORDS.items()
        )
        + "</p>"
    )
    sections.append(("matrix-section", "Compatibility matrix", "\n".join(parts)))

    frows = [f"<tr><th>{_e(f)}</th>" + "".join(_cell(cells[b]) for b in cols) + "</tr>" for f, cells in report.features]
    sections.append(
        (
            "features",
            "Per-feature detail",
            '<p class="hint">Cases grouped by what they exercise (a case counts under every feature it has).</p>\n'
            + _table(["feature"] + cols, frows, tid="feature-table"),
        )
    )

    rrows = []
    for _, ops in report.matrix:
        for op, _cells in ops:
            per = report.ratios.get(op, {})
            if not per:
                continue
            tds = []
            for b in cols:
                s = ratio_summary(per.get(b, []))
                tds.append("<td>–</td>" if s is None else f"<td>{F.fmt_ratio(s[0])} / {F.fmt_ratio(s[1])}</td>")
            rrows.append(f"<tr><th><code>{_e(op)}</code></th>" + "".join(tds) + "</tr>")
    ratio_html = (
        '<p class="hint">Largest and median of max |backend − reference| / error bound over each op\'s cases '
        "(1 is the bound; 0 is bit-exact).</p>\n"
    )
    if "plot-bound-ratio" in plot:
        ratio_html += _img("plot-bound-ratio", *plot["plot-bound-ratio"]) + "\n"
    ratio_html += (
        _table(["op (max / median)"] + cols, rrows, tid="ratio-table")
        if rrows
        else "<p>No case recorded a bound ratio.</p>"
    )
    sections.append(("bound-ratios", "Bound ratios", ratio_html))

    if report.trains or report.reference_train:
        header, trows = F.train_table(report)
        body = f"<p>{_e(F.TRAIN_SPEED_NOTE.replace('`', ''))}</p>\n"
        for anchor in ("plot-loss", "plot-weight-diff"):
            if anchor in plot:
                body += _img(anchor, *plot[anchor]) + "\n"
        body += _table(
            header, ["<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r) + "</tr>" for r in trows], tid="train-table"
        )
        sections.append(("lenet", "LeNet-5 training", body))

    if report.benches:
        body = (
            '<p class="hint">Conv forward and backward timings on network layer shapes (<code>convspec bench</code>). '
            f"{_e(perf.HINT)}</p>"
        )
        for i, run in enumerate(report.benches):
            body += (
                f"\n<h3>{_e(run.label)}</h3>\n<ul>"
                + "".join(f"<li>{_e(t)}</li>" for t in perf.header_lines(run))
                + "</ul>\n"
            )
            body += _table(
                perf.SUMMARY_HEADER,
                ["<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r) + "</tr>" for r in perf.summary_rows(run)],
                tid=f"perf-table-{i + 1}",
            )
            if f"plot-perf-{i + 1}" in plot:
                body += "\n" + _img(f"plot-perf-{i + 1}", *plot[f"plot-perf-{i + 1}"])
        sections.append(("performance", "Performance", body))

    if report.deviations:
        drows = [
            f"<tr><td><code>{_e(d['backend'])}</code></td><td><code>{_e(d['op'])}</code></td><td>{_e(d['reason'])}</td>"
            f"<td>{d['count']}</td><td><code>{_e(d['cases'][0]['case_id'])}</code></td></tr>"
            for d in report.deviations
        ]
        dev = (
            '<p class="hint">Where a backend declares that it differs from the spec, '
            "and the difference showed up.</p>\n"
            + _table(["backend", "op", "reason", "cases", "example"], drows, tid="deviations-table")
        )
    else:
        dev = "<p>None showed up.</p>"
    sections.append(("deviations", "Declared deviations", dev))

    if report.failures:
        groups = report.failure_groups
        n = len(report.failures)
        kinds = f"{len(groups)} kind{'s' if len(groups) != 1 else ''}"
        fail = (
            f'<p class="hint">{n} failure{"s" if n != 1 else ""} of {kinds}, '
            "grouped by backend, op, check and kind of mismatch, with one example each; every failure is in the "
            "results files with its repro command.</p>\n"
        )
        fail += _table(
            ["backend", "op", "check", "kind", "cases", "example"],
            [
                f"<tr><td><code>{_e(b)}</code></td><td><code>{_e(op)}</code></td><td>{_e(check)}</td><td>{_e(kind)}</td>"
                f'<td>{len(recs)}</td><td><a href="#failure-{i}"><code>{_e(recs[0]["case_id"])}</code></a></td></tr>'
                for i, ((b, op, check, kind), recs) in enumerate(groups[:MAX_GROUPS], 1)
            ],
            tid="failure-groups",
        )
        items = []
        for i, ((b, op, check, kind), recs) in enumerate(groups[:MAX_GROUPS], 1):
            lines = F.failure_lines(
                recs[0],
                strong=lambda s: f'<span class="status">{_e(s)}</span>',
                code=lambda s: f"<code>{_e(s)}</code>",
                block=lambda s: f"<pre>{_e(s)}</pre>",
                text=_e,
            )
            more = f" (and {len(recs) - 1} more like it)" if len(recs) > 1 else ""
            items.append(
                f'<div class="failure" id="failure-{i}"><h3>{i}. {_e(b)} · {_e(op)} · {_e(check)} · {_e(kind)}'
                f"{_e(more)}</h3>" + "".join(lines) + "</div>"
            )
        if len(groups) > MAX_GROUPS:
            items.append(
                f"<p>… and {len(groups) - MAX_GROUPS} more kinds of failure; every failure is in the results files.</p>"
            )
        fail += "\n".join(items)
    else:
        fail = "<p>None: no case failed, raised, timed out or crashed.</p>"
    sections.append(("failures", "Failures", fail))

    if report.conflicts:
        crows = [
            f"<tr><td><code>{_e(b)}</code></td><td><code>{_e(cid)}</code></td><td>{_e(_outcomes(st))}</td></tr>"
            for b, cid, st in report.conflicts
        ]
        sections.append(("conflicts", "Conflicting results", _table(["backend", "case", "outcomes"], crows)))
    if report.plugin_errors:
        sections.append(
            (
                "plugin-errors",
                "Plugin errors",
                "<ul>"
                + "".join(
                    f"<li><code>{_e(e['plugin'])}</code> ({_e(e['_run'])}): {_e(F.last_line(e['error']))}</li>"
                    for e in report.plugin_errors
                )
                + "</ul>",
            )
        )

    env = []
    for run in report.runs:
        env.append(f"<h3>{_e(run.label)}</h3>")
        env.append(
            _table(
                ["field", "value"], [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in F.environment_rows(run)]
            )
        )
        brows = F.backend_rows(run)
        if brows:
            env.append(
                _table(
                    ["backend", "status", "version", "device", "dtypes", "plugin"],
                    ["<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r) + "</tr>" for r in brows],
                )
            )
    sections.append(("environment", "Environment", "\n".join(env)))

    nav = " ".join(f'<a href="#{a}">{_e(t)}</a>' for a, t, _ in sections)
    body = "\n".join(f'<section id="{a}">\n<h2>{_e(t)}</h2>\n{h}\n</section>' for a, t, h in sections)
    return PAGE.substitute(title=_e(report.title), meta=meta, nav=nav, css=CSS.strip(), body=body)
