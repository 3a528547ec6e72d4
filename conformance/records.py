"""Typed results: the statuses a case can end in, the case-result record (built in one place), the repro
command, and the one rendering of a failure that the CLI, the pytest plugin and the reports share."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Status(str, Enum):
    """How one case ended on one backend. Its value is what result files store."""

    PASS = "pass"
    FAIL = "fail"  # a check is outside its bound (or a shape/dtype/index mismatch)
    ERROR = "error"  # the backend raised (or the engine could not finish the case)
    TIMEOUT = "timeout"  # no result within the per-case timeout: the worker was killed
    CRASHED = "crashed"  # the process running the case died
    INVALID = "invalid"  # the spec rejects the case's configuration
    DEVIATION = "deviation"  # a failure the backend declared, with its reason
    UNSUPPORTED = "unsupported"  # the backend lacks the op, the dtype or the configuration

    def __str__(self) -> str:
        return self.value

    @property
    def bad(self) -> bool:
        return self.value in BAD


#: the statuses that make a run fail (exit status 1)
BAD = frozenset({"fail", "error", "timeout", "crashed"})
#: the order of the console's count columns
DISPLAY_ORDER = ("pass", "fail", "error", "deviation", "unsupported", "timeout", "crashed", "invalid")
#: worst first: the order of the reports' status columns and of merged statuses
SEVERITY = ("crashed", "timeout", "error", "fail", "invalid", "deviation", "unsupported", "pass")
#: worst first, for one check: a check can also be "skipped" (it depends on a part that failed)
CHECK_ORDER = ("crashed", "timeout", "error", "fail", "invalid", "deviation", "unsupported", "skipped", "pass")
#: the reports' order: what needs attention first
REPORT_ORDER = ("fail", "error", "timeout", "crashed", "invalid", "deviation", "unsupported", "pass")


def repro(backend_name: str, case, plugins=()) -> str:
    """The one-line command that re-runs exactly this case (with the -p plugins the run loaded)."""
    opts = "".join(f" -p {p}" for p in plugins)
    return f"convspec run{opts} --backend {backend_name} --case '{case.to_json()}'"


def format_exception(exc: BaseException, limit: int = 4000) -> str:
    """A traceback as text, keeping its end (where the error is) when it is long."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-limit:]


@dataclass
class CaseResult:
    """One case on one backend: the record a results file stores (record "case")."""

    case: object  # a convspec.conformance.cases.Case
    status: str
    backend: str | None = None
    plugins: tuple = ()  # the -p modules of the run, repeated in the repro command
    checks: list = field(default_factory=list)  # Check objects or their dicts
    message: str = ""
    deviation: str | None = None
    seconds: float = 0.0
    reference_seconds: float | None = None
    extra: dict = field(default_factory=dict)  # fields of a special case kind (the LeNet check's "lenet")

    def to_dict(self) -> dict:
        c = self.case
        checks = [ch if isinstance(ch, dict) else ch.to_dict() for ch in self.checks]
        d = {"case_id": c.id, "op": c.op, "source": c.source, "dtype": c.dtype, "case": c.spec()}
        if self.backend is not None:
            d = {"record": "case", "backend": self.backend, **d}
            own = getattr(c, "repro_command", None)  # a case kind with its own command (the LeNet check)
            d["repro"] = own(self.backend, self.plugins) if own else repro(self.backend, c, self.plugins)
        d["status"] = str(self.status)
        if self.message:
            d["message"] = self.message
        if self.deviation is not None:
            d["deviation"] = self.deviation
        d["checks"] = checks
        d["verdicts"] = verdicts(str(self.status), checks)
        d["bound_ratio"] = case_ratio(checks)
        d["seconds"] = round(self.seconds, 6)
        if self.reference_seconds is not None:
            d["reference_seconds"] = round(self.reference_seconds, 6)
        d.update(self.extra)
        return d


#: the parts of a case that get a verdict of their own: the forward output, the index output, the gradients,
#: and the error behaviour (a case the spec rejects must be refused: the check "rejects")
PARTS = ("forward", "indices", "backward", "errors")


def part_of(check_name: str) -> str:
    """The part a check belongs to: "forward", "indices", "errors" ("rejects") or "backward" (every
    "grad <input>")."""
    head = check_name.split(" ", 1)[0]  # "forward mean" (an op with several outputs) is the forward
    if head == "rejects":
        return "errors"
    return head if head in ("forward", "indices") else "backward"


def verdicts(status: str, checks) -> dict:
    """The verdict of each part of a case: the worst status of its checks (SEVERITY order). A part
    without checks gets the case's status when nothing was checked (the backend lacks the op, raised,
    or the spec rejects the case), and no verdict otherwise (the op has no index output; the
    backward was skipped because the forward failed: see the "backward" check's message)."""
    out: dict = {}
    for c in checks:
        part = part_of(c["what"])
        st = c["status"]
        if part not in out or CHECK_ORDER.index(st) < CHECK_ORDER.index(out[part]):
            out[part] = st
    if not checks and status:
        out["forward"] = status
    if status == "deviation":  # the declared deviation excuses the failing parts it covers
        out = {k: ("deviation" if v == "fail" else v) for k, v in out.items()}
    return out


def case_ratio(checks) -> float | None:
    """The case's bound ratio: the worst of its checks'. A failed check without a finite ratio (shape,
    dtype, NaN where a number was due) leaves it unknown rather than 0."""
    ratios = [c.get("bound_ratio") for c in checks if c.get("bound_ratio") is not None]
    if not ratios or not all(isinstance(r, (int, float)) and np.isfinite(r) for r in ratios):
        return None
    return max(ratios)


# -- rendering ------------------------------------------------------------------------------------------


def fmt_number(v) -> str:
    """Enough significant digits to tell two close float64 values apart (17), trimmed when shorter."""
    if isinstance(v, float):
        return repr(v) if np.isfinite(v) else str(v)
    return str(v)


def check_line(c: dict) -> str:
    """One check of a result, as a line: pass with its ratio, or the first mismatching element."""
    what = f"{c['what']:<10}"
    ratio = c.get("bound_ratio")
    if c["status"] == "pass":
        return f"{what} pass" + (f" (worst |error| / bound = {fmt_number(ratio)})" if ratio is not None else "")
    m = c.get("mismatch")
    if m and "index" in m:
        return (
            f"{what} {c['status'].upper()}: {m['count']} of {m['of']} elements outside the bound; first at index "
            f"{m['index']}: expected {fmt_number(m['expected'])}, got {fmt_number(m['got'])}, bound "
            f"{fmt_number(m['bound'])} (worst |error| / bound = {fmt_number(ratio)})"
        )
    if m:
        return f"{what} {c['status'].upper()}: " + ", ".join(f"{k} {fmt_number(v)}" for k, v in m.items())
    return f"{what} {c['status'].upper()}" + _block(c.get("message", ""), 4)


def failure_text(result: dict, *, brief: bool = False) -> str:
    """A bad result explained: status, backend and case, each check (the first mismatching element and
    its bound), the message, the repro command and the minimal failing configuration. brief: one line
    for the status and the first failing check, then the repro lines (the console's form)."""
    status, backend = str(result["status"]).upper(), result.get("backend", "?")
    bad = [c for c in result.get("checks", []) if c["status"] != "pass"]
    if brief:
        detail = check_line(bad[0]).strip() if bad else last_line(result.get("message", ""))
        lines = [f"{status} {backend} {result['case_id']} {detail}".rstrip()]
    else:
        lines = [f"backend {backend} {status} on {result['case_id']}"]
        lines += ["  " + check_line(c) for c in result.get("checks", [])]
        if result.get("message"):
            lines.append(f"  {result['status']}" + _block(result["message"], 4))
    lines.append(f"    repro: {result['repro']}")
    minimal = result.get("minimal")
    if minimal:
        lines.append(f"    minimal failing config: {minimal['case_id']}")
        lines.append(f"    minimal repro: {minimal['repro']}")
    elif result.get("source") == "property" and not brief:
        lines.append("    (a hypothesis-drawn case: its repro runs exactly this configuration)")
    return "\n".join(lines)


def last_line(text: str) -> str:
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _block(text: str, indent: int) -> str:
    text = str(text).rstrip()
    if "\n" not in text:
        return f": {text}" if text else ""
    pad = " " * indent
    return ":\n" + "\n".join(pad + ln for ln in text.splitlines())
