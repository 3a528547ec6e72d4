"""Formatting a report's aggregates as plain text, shared by the Markdown and HTML renderings: cell texts
and symbols, numbers, the training table, the environment and backend rows of a run, and one failure.

:func:`failure_lines` is the one place that renders an individual failure (what went wrong, the repro
command, the smallest failing case); its markup comes from the caller, plain text by default.
"""

from __future__ import annotations

from ..records import PARTS
from .model import NO_PART, NOT_RUN, UNAVAILABLE, Cell, Report
from .signature import reproduces


def fmt_num(v, spec: str = ".2f") -> str:
    """`v` formatted with `spec`, or '-' for None."""
    return "-" if v is None else format(v, spec)


def mib(n) -> str:
    """Bytes as MiB with one decimal."""
    return f"{n / 2**20:.1f}"


def _same(text: str) -> str:
    return text


def failure_lines(case: dict, *, strong=_same, code=_same, block=_same, text=_same) -> list:
    """The lines that show one failed case record (status fail/error/timeout/crashed/invalid):

        [head, block(repro)] + [minimal, block(minimal repro)] when shrinking found a smaller case that
                                                           fails the same way (signature.reproduces)

    head is ``strong(STATUS) code(backend) code(case_id): text(problem)``, the problem being
    :func:`first_problem` (the first failing check and its first mismatching element, else the message's
    last line). The callbacks add markup and escaping, each given the plain string: ``strong`` the status,
    ``code`` a backend or case id, ``block`` a repro command, ``text`` other prose; plain text by default."""
    head = f"{strong(case['status'].upper())} {code(case['backend'])} {code(case['case_id'])}: "
    lines = [head + text(first_problem(case)), block(case["repro"])]
    mini = case.get("minimal")
    # only a minimal case that fails the same way (same check, same kind of mismatch) is this failure's
    if mini and mini.get("case_id") != case["case_id"] and reproduces(case):
        lines += [f"{text('smallest failing case found by shrinking:')} {code(mini['case_id'])}", block(mini["repro"])]
    return lines


def first_problem(c: dict) -> str:
    """One line saying what went wrong in a failed case: the first failing check and its mismatch."""
    for chk in c.get("checks", []):
        if chk.get("status") != "pass":
            m = chk.get("mismatch")
            if m:
                return (
                    f"{chk['what']}: {m['count']} of {m['of']} elements off; at {tuple(m['index'])} "
                    f"expected {m['expected']}, "
                    f"got {m['got']} (bound {m['bound']})"
                )
            msg = last_line(chk.get("message", ""))
            return f"{chk['what']}: {chk['status']}" + (f": {msg}" if msg else "")
    return last_line(c.get("message", "")) or c["status"]


def last_line(text) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


SYMBOL = {
    "pass": "✅",
    "fail": "❌",
    "deviation": "⚠️",
    "unsupported": "➖",
    "skipped": "↷",
    "unavailable": "⛔",
    "invalid": "🚫",
    NOT_RUN: "·",
    NO_PART: "",
    "ran": "ℹ️",
}
KIND_WORDS = {
    "pass": "every case within its error bound (or bit-exact where required)",
    "fail": "at least one case failed, raised, timed out or crashed",
    "deviation": "differs from the spec where the backend declares a known deviation",
    "unsupported": "the backend does not implement the op, a parameter or a dtype",
    "skipped": "not checked, because a part it depends on failed (a backward after a forward of the wrong shape)",
    "unavailable": "the backend could not run on that machine",
    "invalid": "the spec rejects the case itself (a bug in the suite's case generation)",
    NOT_RUN: "no case of this op was run on this backend",
}


def cell_text(cell: Cell) -> str:
    """'fail 3 · pass 81', 'unavailable', 'not run', '–' (a part the op does not have)."""
    if cell.kind == NO_PART:
        return "–"
    if cell.kind in (UNAVAILABLE, NOT_RUN):
        return cell.kind
    return " · ".join(f"{s} {n}" for s, n in cell.parts)


#: the matrix's columns per backend: the forward (and index output) verdicts, and the backward verdicts
MATRIX_PARTS = ("forward", "backward")


def part_cells(op: str, cell: Cell) -> list:
    """[(kind, text)] of one op on one backend for the matrix's MATRIX_PARTS columns: the forward column
    counts the forward verdicts, then the index output's ('; indices: pass 8') where the op has one, its
    kind the worse of the two; the backward column counts the backward verdicts. The LeNet check (one
    verdict for the whole training) shows its case counts in both columns."""
    if op == "lenet" or cell.kind in (UNAVAILABLE, NOT_RUN):
        return [(cell.kind, cell_text(cell))] * 2
    fwd, bwd = cell.part("forward"), cell.part("backward")
    texts = [cell_text(fwd)] if fwd.counts else []
    kinds = [fwd.kind] if fwd.counts else []
    for p in PARTS:  # the index output; the error behaviour ("errors": a case the spec rejects is refused)
        extra = cell.part(p)
        if p not in MATRIX_PARTS and extra.counts:
            texts.append(f"{p}: {cell_text(extra)}")
            kinds.append(extra.kind)
    if not kinds:
        return [(fwd.kind, cell_text(fwd)), (bwd.kind, cell_text(bwd))]
    kind = min(kinds, key=lambda k: _KIND_RANK.index(k) if k in _KIND_RANK else len(_KIND_RANK))
    return [(kind, "; ".join(texts)), (bwd.kind, cell_text(bwd))]


_KIND_RANK = ("fail", "invalid", "deviation", "unsupported", "skipped", "pass")


def part_totals(cell: Cell) -> str:
    """'forward pass 80 · fail 1; indices pass 8; backward unsupported 81': one backend's verdicts."""
    out = []
    for p in PARTS:
        c = cell.part(p)
        if c.counts:
            out.append(f"{p} {cell_text(c)}")
    return "; ".join(out) if out else cell_text(cell)


def fmt_ratio(v) -> str:
    if v is None:
        return "–"
    if v == 0:
        return "0"
    return f"{v:.2g}" if v < 100 else f"{v:.3g}"


def train_table(report: Report) -> tuple:
    """(header, rows) summarising each training run: steps, first/final loss, the reference's final
    loss, the largest weight difference, then every scalar field any record carries."""
    extra = []
    for c in report.trains:
        for k in c.scalars:
            if k not in extra:
                extra.append(k)
    fixed = ["backend", "steps", "first loss", "final loss", "reference final loss", "max weight diff"]
    extra = [k for k in extra if k not in fixed]  # e.g. a record's own 'steps' count
    header = fixed + extra
    ref_final = report.reference_train[-1][1] if report.reference_train else None
    rows = []
    for c in report.trains:
        ref = c.reference[-1][1] if c.reference else ref_final
        rows.append(
            [
                c.backend,
                str(len(c.losses)) if c.losses else "–",
                f"{c.losses[0][1]:.4g}" if c.losses else "–",
                f"{c.losses[-1][1]:.4g}" if c.losses else "–",
                f"{ref:.4g}" if ref is not None else "–",
                f"{max(y for _, y in c.weight_diff):.3g}" if c.weight_diff else "–",
            ]
            + [_plain(c.scalars.get(k, "–")) for k in extra]
        )
    return header, rows


def _plain(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def environment_rows(run) -> list:
    """[(key, value)] describing one run: where, what software, which profile and shard."""
    h = run.header
    env = h.get("environment", {})
    i, n = h["shard"]
    rows = [("file", run.path.name), ("host", env.get("host", "?"))]
    rows += [(k, str(v)) for k, v in env.items() if k != "host"]
    rows += [
        ("spec version", h["spec_version"]),
        ("profile", h["profile"]),
        ("seed", str(h["seed"])),
        ("shard", f"{i}/{n}"),
        ("started", h["started"]),
        ("finished", "yes" if run.finished else "no (interrupted: partial results)"),
        ("command", "convspec " + " ".join(h.get("argv", []))),
    ]
    return rows


def backend_rows(run) -> list:
    """[(name, status, version, device, dtypes, plugin)] of the backend records of one run."""
    out = []
    for b in run.of("backend"):
        status = "available" if b["available"] else f"unavailable: {b['reason']}"
        out.append((b["name"], status, b["version"], b["device"], ", ".join(b["dtypes"]), b["plugin"]))
    return out


#: what the training tables' images/s are (and are not)
TRAIN_SPEED_NOTE = (
    "images/s: each backend as `convspec train` runs it, on its own default threads (torch-cpu on 1 intra-op "
    "thread unless CONVSPEC_TORCH_THREADS says otherwise; NumPy's BLAS on its default, every CPU): a record "
    "that the training ran, not a speed comparison. reports/performance.md compares training speed at equal "
    "threads."
)
