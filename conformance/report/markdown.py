"""The report as GitHub-flavoured Markdown: the matrix, per-feature detail, bound ratios, LeNet-5
training, declared deviations, failures with their repro commands, and the environment of each run."""
from __future__ import annotations

from . import model as M
from .model import Report

MAX_FAILURES = 100  # beyond this the Markdown lists a count; the results files have them all


def _esc(text) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header, rows) -> list:
    out = ["| " + " | ".join(_esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(rows_cell for rows_cell in row) + " |" for row in rows]
    return out


def _cell(cell: M.Cell) -> str:
    return f"{M.SYMBOL.get(cell.kind, '')} {_esc(M.cell_text(cell))}".strip()


def _code(text) -> str:
    text = str(text)
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}sh\n{text}\n{fence}"


def render(report: Report, plot_names: dict | None = None) -> str:
    """plot_names: {anchor: caption} of the pictures the HTML version carries (mentioned, not embedded)."""
    cols = report.columns
    hosts = sorted({r.header["environment"].get("host", "?") for r in report.runs})
    lines = [
        f"# {report.title}",
        "",
        f"Spec version **{report.spec_version}** · {len(report.runs)} results file{'s' if len(report.runs) != 1 else ''} "
        f"from {', '.join(f'`{h}`' for h in hosts)} · backends: {', '.join(f'`{b}`' for b in cols) or '(none)'}",
        "",
    ]
    if report.notes:
        lines += ["> **Note**"] + [f"> - {_esc(n)}" for n in report.notes] + [""]

    lines += ["## Compatibility matrix", "", "Each cell counts the cases of an op on a backend by outcome.", ""]
    rows = []
    for group, ops in report.matrix:
        rows.append([f"**{_esc(group)}**"] + [""] * len(cols))
        for op, cells in ops:
            rows.append([f"`{op}`"] + [_cell(cells[b]) for b in cols])
    rows.append(["**all ops**"] + [f"**{_esc(M.cell_text(report.totals[b]))}**" for b in cols])
    lines += _table(["op"] + cols, rows) + [""]
    lines += ["Legend: " + "; ".join(f"{M.SYMBOL[k]} {k}: {w}" for k, w in M.KIND_WORDS.items()) + ".", ""]

    lines += ["## Per-feature detail", "", "Cases grouped by what they exercise (a case counts under every feature it has).", ""]
    lines += _table(["feature"] + cols, [[_esc(f)] + [_cell(cells[b]) for b in cols] for f, cells in report.features]) + [""]

    lines += [
        "## Bound ratios", "",
        "Largest and median of max |backend − reference| / error bound over each op's cases (1 is the bound; 0 is bit-exact).", "",
    ]
    ratio_rows = []
    for _, ops in report.matrix:
        for op, _cells in ops:
            per = report.ratios.get(op, {})
            if not per:
                continue
            row = [f"`{op}`"]
            for b in cols:
                s = M.ratio_summary(per.get(b, []))
                row.append("–" if s is None else f"{M.fmt_ratio(s[0])} / {M.fmt_ratio(s[1])}")
            ratio_rows.append(row)
    lines += (_table(["op (max / median)"] + cols, ratio_rows) if ratio_rows else ["No case recorded a bound ratio."]) + [""]

    if report.trains or report.reference_train:
        lines += ["## LeNet-5 training", ""]
        header, trows = M.train_table(report)
        lines += _table(header, [[_esc(v) for v in r] for r in trows]) + [""]
    if report.benches:
        lines += _performance(report)
    if plot_names:
        lines += [
            "The HTML version of this report draws: " + "; ".join(plot_names.values()) + ".", "",
        ]

    lines += ["## Declared deviations", ""]
    if report.deviations:
        lines += ["Where a backend declares that it differs from the spec, and the difference showed up.", ""]
        lines += _table(
            ["backend", "op", "reason", "cases", "example"],
            [[f"`{d['backend']}`", f"`{d['op']}`", _esc(d["reason"]), str(d["count"]), f"`{_esc(d['cases'][0]['case_id'])}`"] for d in report.deviations],
        ) + [""]
    else:
        lines += ["None showed up.", ""]

    lines += ["## Failures", ""]
    if not report.failures:
        lines += ["None: no case failed, raised, timed out or crashed.", ""]
    for c in report.failures[:MAX_FAILURES]:
        lines += [f"- **{c['status'].upper()}** `{c['backend']}` `{_esc(c['case_id'])}`: {_esc(M.first_problem(c))}", "", _indent(_code(c["repro"]))]
        mini = c.get("minimal")
        if mini and mini.get("case_id") != c["case_id"]:
            lines += ["", f"  smallest failing case found by shrinking: `{_esc(mini['case_id'])}`", "", _indent(_code(mini["repro"]))]
        lines += [""]
    if len(report.failures) > MAX_FAILURES:
        lines += [f"… and {len(report.failures) - MAX_FAILURES} more; every failure is in the results files with its repro command.", ""]

    if report.conflicts:
        lines += ["## Conflicting results", "", "The same backend gave different outcomes for a case in different files.", ""]
        lines += _table(
            ["backend", "case", "outcomes"],
            [[f"`{b}`", f"`{_esc(cid)}`", _esc("; ".join(f"{s} in {', '.join(files)}" for s, files in st.items()))] for b, cid, st in report.conflicts],
        ) + [""]

    if report.plugin_errors:
        lines += ["## Plugin errors", ""] + [f"- `{_esc(e['plugin'])}` ({_esc(e['_run'])}): {_esc(M.last_line(e['error']))}" for e in report.plugin_errors] + [""]

    lines += ["## Environment", ""]
    for run in report.runs:
        lines += [f"### {_esc(run.label)}", ""]
        lines += _table(["field", "value"], [[_esc(k), f"`{_esc(v)}`" if k == "command" else _esc(v)] for k, v in M.environment_rows(run)]) + [""]
        brows = M.backend_rows(run)
        if brows:
            lines += _table(["backend", "status", "version", "device", "dtypes", "plugin"], [[_esc(v) for v in r] for r in brows]) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _performance(report: Report) -> list:
    from . import perf

    lines = ["## Performance", "", "Conv forward and backward timings on network layer shapes (`convspec bench`). " + perf.HINT, ""]
    for run in report.benches:
        lines += [f"### {_esc(run.label)}", ""]
        lines += [f"- {_esc(t)}" for t in perf.header_lines(run)] + [""]
        lines += _table(perf.SUMMARY_HEADER, [[_esc(v) for v in r] for r in perf.summary_rows(run)]) + [""]
    return lines


def _indent(block: str) -> str:
    return "\n".join("  " + ln for ln in block.splitlines())
