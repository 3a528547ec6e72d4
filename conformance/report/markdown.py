"""The report as GitHub-flavoured Markdown: the matrix, per-feature detail, bound ratios, LeNet-5
training, declared deviations, failures with their repro commands, and the environment of each run; and
the Markdown of one `convspec bench` result (`convspec bench --markdown`). :func:`table` is the one
Markdown table writer."""

from __future__ import annotations

from . import format as F
from . import perf
from .model import Cell, Report, ratio_summary

MAX_GROUPS = 200  # kinds of failure shown (one example each); beyond this a count; the results files have all


def esc(text) -> str:
    """`text` safe inside a Markdown table cell or line: backslashes and pipes escaped, newlines folded."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table(header, rows) -> list:
    """A Markdown table as lines: the header cells escaped, the row cells as given (already Markdown)."""
    out = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _cell(cell: Cell) -> str:
    return f"{F.SYMBOL.get(cell.kind, '')} {esc(F.cell_text(cell))}".strip()


def _part(kind: str, text: str) -> str:
    return f"{F.SYMBOL.get(kind, '')} {esc(text)}".strip()


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
        f"Spec version **{report.spec_version}** · {len(report.runs)} "
        f"results file{'s' if len(report.runs) != 1 else ''} "
        f"from {', '.join(f'`{h}`' for h in hosts)} · backends: {', '.join(f'`{b}`' for b in cols) or '(none)'}",
        "",
    ]
    if report.notes:
        lines += ["> **Note**"] + [f"> - {esc(n)}" for n in report.notes] + [""]

    lines += [
        "## Compatibility matrix",
        "",
        "Each cell counts the cases of an op on a backend by the verdict of one part: the forward output "
        "(and the index output, where the op has one) and the backward (every gradient). A backend that "
        "computes only forwards gets its forward passes counted.",
        "",
    ]
    rows = []
    for group, ops in report.matrix:
        rows.append([f"**{esc(group)}**"] + [""] * (len(F.MATRIX_PARTS) * len(cols)))
        for op, cells in ops:
            rows.append([f"`{op}`"] + [_part(k, t) for b in cols for k, t in F.part_cells(op, cells[b])])
    rows.append(["**all ops**"] + [f"**{esc(t)}**" for b in cols for _, t in F.part_cells("", report.totals[b])])
    lines += table(["op"] + [f"{b} {p}" for b in cols for p in F.MATRIX_PARTS], rows) + [""]
    lines += [
        "Legend: " + "; ".join(f"{F.SYMBOL[k]} {k}: {w}" for k, w in F.KIND_WORDS.items()) + "; – : the op "
        "has no such part, or no case got that far.",
        "",
    ]
    lines += ["Whole cases (a case passes when every part passes) and the verdicts of each part, per backend:", ""]
    totals = [[f"**`{b}`**", esc(F.cell_text(report.totals[b])), esc(F.part_totals(report.totals[b]))] for b in cols]
    lines += table(["totals", "whole cases", "verdicts per part"], totals) + [""]

    lines += [
        "## Per-feature detail",
        "",
        "Cases grouped by what they exercise (a case counts under every feature it has).",
        "",
    ]
    lines += table(["feature"] + cols, [[esc(f)] + [_cell(cells[b]) for b in cols] for f, cells in report.features]) + [
        ""
    ]

    lines += [
        "## Bound ratios",
        "",
        "Largest and median of max |backend − reference| / error bound over each op's cases "
        "(1 is the bound; 0 is bit-exact).",
        "",
    ]
    ratio_rows = []
    for _, ops in report.matrix:
        for op, _cells in ops:
            per = report.ratios.get(op, {})
            if not per:
                continue
            row = [f"`{op}`"]
            for b in cols:
                s = ratio_summary(per.get(b, []))
                row.append("–" if s is None else f"{F.fmt_ratio(s[0])} / {F.fmt_ratio(s[1])}")
            ratio_rows.append(row)
    lines += (
        table(["op (max / median)"] + cols, ratio_rows) if ratio_rows else ["No case recorded a bound ratio."]
    ) + [""]

    if report.trains or report.reference_train:
        lines += ["## LeNet-5 training", "", F.TRAIN_SPEED_NOTE, ""]
        header, trows = F.train_table(report)
        lines += table(header, [[esc(v) for v in r] for r in trows]) + [""]
    if report.benches:
        lines += _performance(report)
    if plot_names:
        lines += [
            "The HTML version of this report draws: " + "; ".join(plot_names.values()) + ".",
            "",
        ]

    lines += ["## Declared deviations", ""]
    if report.deviations:
        lines += ["Where a backend declares that it differs from the spec, and the difference showed up.", ""]
        lines += table(
            ["backend", "op", "reason", "cases", "example"],
            [
                [
                    f"`{d['backend']}`",
                    f"`{d['op']}`",
                    esc(d["reason"]),
                    str(d["count"]),
                    f"`{esc(d['cases'][0]['case_id'])}`",
                ]
                for d in report.deviations
            ],
        ) + [""]
    else:
        lines += ["None showed up.", ""]

    lines += ["## Failures", ""]
    if not report.failures:
        lines += ["None: no case failed, raised, timed out or crashed.", ""]
    else:
        lines += _failures(report)

    if report.conflicts:
        lines += [
            "## Conflicting results",
            "",
            "The same backend gave different outcomes for a case in different files.",
            "",
        ]
        lines += table(
            ["backend", "case", "outcomes"],
            [
                [f"`{b}`", f"`{esc(cid)}`", esc("; ".join(f"{s} in {', '.join(files)}" for s, files in st.items()))]
                for b, cid, st in report.conflicts
            ],
        ) + [""]

    if report.plugin_errors:
        lines += (
            ["## Plugin errors", ""]
            + [
                f"- `{esc(e['plugin'])}` ({esc(e['_run'])}): {esc(F.last_line(e['error']))}"
                for e in report.plugin_errors
            ]
            + [""]
        )

    lines += ["## Environment", ""]
    for run in report.runs:
        lines += [f"### {esc(run.label)}", ""]
        lines += table(
            ["field", "value"],
            [[esc(k), f"`{esc(v)}`" if k == "command" else esc(v)] for k, v in F.environment_rows(run)],
        ) + [""]
        brows = F.backend_rows(run)
        if brows:
            lines += table(
                ["backend", "status", "version", "device", "dtypes", "plugin"], [[esc(v) for v in r] for r in brows]
            ) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _failures(report: Report) -> list:
    """The failures grouped by signature (backend, op, check, kind of mismatch): a table with each group's
    count, then one example of each with its repro command."""
    groups = report.failure_groups
    n = len(report.failures)
    lines = [
        f"{n} failure{'s' if n != 1 else ''} of {len(groups)} kind{'s' if len(groups) != 1 else ''}, grouped by "
        "backend, op, check and kind of mismatch, with one example each; every failure is in the results files "
        "with its repro command.",
        "",
    ]
    lines += table(
        ["backend", "op", "check", "kind", "cases", "example"],
        [
            [f"`{b}`", f"`{op}`", esc(check), esc(kind), str(len(recs)), f"{i}. `{esc(recs[0]['case_id'])}`"]
            for i, ((b, op, check, kind), recs) in enumerate(groups[:MAX_GROUPS], 1)
        ],
    ) + [""]
    for i, ((b, op, check, kind), recs) in enumerate(groups[:MAX_GROUPS], 1):
        c = recs[0]
        head, repro, *mini = F.failure_lines(
            c, strong=lambda s: f"**{s}**", code=lambda s: f"`{esc(s)}`", block=lambda s: _indent(_code(s)), text=esc
        )
        more = f" (and {len(recs) - 1} more like it)" if len(recs) > 1 else ""
        lines += [f"### {i}. {esc(b)} · {esc(op)} · {esc(check)} · {esc(kind)}{more}", "", f"- {head}", "", repro]
        if mini:
            lines += ["", f"  {mini[0]}", "", mini[1]]
        lines += [""]
    if len(groups) > MAX_GROUPS:
        lines += [f"… and {len(groups) - MAX_GROUPS} more kinds of failure; every failure is in the results files.", ""]
    return lines


def _performance(report: Report) -> list:
    lines = [
        "## Performance",
        "",
        "Conv forward and backward timings on network layer shapes (`convspec bench`). " + perf.HINT,
        "",
    ]
    for run in report.benches:
        lines += [f"### {esc(run.label)}", ""]
        lines += [f"- {esc(t)}" for t in perf.header_lines(run)] + [""]
        lines += table(perf.SUMMARY_HEADER, [[esc(v) for v in r] for r in perf.summary_rows(run)]) + [""]
    return lines


def bench_markdown(result: dict, baseline: str) -> str:
    """One `convspec bench` result as Markdown (`convspec bench --markdown`): the machine and settings, the
    per-suite summary, then each suite's per-layer table. Cells are written as they are, unescaped."""
    parts = [
        "\n".join(f"- {line}" for line in perf.result_header_lines(result)),
        "",
        "### Summary (geometric mean over each suite's layers)",
        "",
        "\n".join(table(perf.BENCH_SUMMARY_HEADER, perf.bench_summary_rows(result))),
    ]
    for s in result["suites"]:
        parts += [
            "",
            f"### {s['name']}: {s['description']} (CPU batch {s['batch']}, GPU batch {s['gpu_batch']}, "
            f"load before {s['load_before']})",
            "",
            "\n".join(table(perf.LAYER_HEADER, perf.layer_rows(s, baseline))),
        ]
    return "\n".join(parts) + "\n"


def _indent(block: str) -> str:
    return "\n".join("  " + ln for ln in block.splitlines())
