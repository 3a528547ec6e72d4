"""Failure signatures: what kind of failure a bad case record is, so that failures can be grouped (the
report's failure summary, the console's) and a shrunk "minimal" case attached only to the failures it
reproduces.

    signature(record) -> (backend, op, check, kind)

check is the first check that did not pass ("forward", "indices", "grad x", "backward"), or the part the
whole case stopped at ("forward" when the backend raised before any check, "case" for a timeout or a
crash); kind is one of KINDS, an error's kind naming its exception type ("error: ValueError").
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

#: the kinds of mismatch, in the order a summary lists them
KINDS = (
    "shape",
    "dtype",
    "not an array",
    "gradient count",
    "index mismatch",
    "NaN",
    "missing NaN",
    "infinity",
    "not exact",
    "outside bound",
    "fail",
    "error",
    "timeout",
    "crashed",
    "invalid",
)
_BAD = ("fail", "error", "timeout", "crashed", "invalid")


def _num(v):
    """A mismatch value as a float: results files store NaN and infinities as strings."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _exception_type(message: str) -> str:
    """The exception class a traceback ends in ('ValueError'), or '' when the text names none."""
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    m = re.match(r"^((?:[A-Za-z_]\w*\.)*[A-Z]\w*)(?::|$)", lines[-1]) if lines else None
    return m.group(1).rsplit(".", 1)[-1] if m else ""


def check_kind(check: dict) -> str:
    """The kind of one check that did not pass (see KINDS)."""
    status = check.get("status", "fail")
    if status == "error":
        exc = _exception_type(check.get("message", ""))
        return f"error: {exc}" if exc else "error"
    if status != "fail":
        return status
    m = check.get("mismatch")
    if m:
        if check.get("what") == "indices":
            return "index mismatch"
        exp, got, bound = _num(m.get("expected")), _num(m.get("got")), _num(m.get("bound"))
        if got is not None and math.isnan(got) and not (exp is not None and math.isnan(exp)):
            return "NaN"
        if exp is not None and math.isnan(exp):
            return "missing NaN"
        if got is not None and math.isinf(got) and got != exp:
            return "infinity"
        if bound == 0:
            return "not exact"
        return "outside bound"
    msg = str(check.get("message", ""))
    for prefix, kind in (
        ("shape ", "shape"),
        ("dtype ", "dtype"),
        ("output is not an array", "not an array"),
        ("returned ", "gradient count"),
    ):
        if msg.startswith(prefix):
            return kind
    return "fail"


def first_bad_check(record: dict):
    """The first check of a record that failed or errored (CHECK_ORDER's bad statuses), or None."""
    bad = [c for c in record.get("checks", []) if c.get("status") in _BAD]
    return bad[0] if bad else None


def signature(record: dict) -> tuple:
    """(backend, op, check, kind) of a bad case record: what a failure summary groups by."""
    backend, op = record.get("backend", "?"), record.get("op", (record.get("case") or {}).get("op", "?"))
    status = str(record.get("status", "fail"))
    check = first_bad_check(record)
    if check is not None:
        return (backend, op, check["what"], check_kind(check))
    if status in ("timeout", "crashed"):
        return (backend, op, "case", status)
    if status == "error":  # the backend raised before any check (in the forward call)
        exc = _exception_type(record.get("message", ""))
        return (backend, op, "forward", f"error: {exc}" if exc else "error")
    return (backend, op, "case", status)


def minimal_signature(record: dict):
    """The signature of a record's shrunk "minimal" case (same backend and op), or None without one."""
    mini = record.get("minimal")
    if not mini:
        return None
    statuses = {c.get("status") for c in mini.get("checks", [])}
    status = "error" if "error" in statuses or not mini.get("checks") else "fail"
    return signature({**mini, "backend": record.get("backend"), "op": record.get("op"), "status": status})


def reproduces(record: dict) -> bool:
    """True when the record's minimal case fails the same way (same check, same kind) as the record."""
    mini = minimal_signature(record)
    return mini is not None and mini == signature(record)


def group(records, order=None) -> list:
    """[(signature, [records])] of bad records, grouped by signature; order: a sort key of a signature
    (default: as first seen). Records keep their given order inside a group."""
    groups: dict = defaultdict(list)
    for r in records:
        groups[signature(r)].append(r)
    keys = list(groups)
    if order is not None:
        keys.sort(key=order)
    return [(k, groups[k]) for k in keys]


__all__ = ["KINDS", "check_kind", "first_bad_check", "group", "minimal_signature", "reproduces", "signature"]
