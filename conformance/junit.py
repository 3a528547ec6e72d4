"""JUnit XML for CI systems (`convspec run --junit-xml FILE`): one <testcase> per case and part.

    write_junit(records, path, *, name="convspec")   # records: case records (dicts) of one or more backends

The layout follows the JUnit XML that pytest (`--junit-xml`), Jenkins, GitLab and GitHub test reporters
read: <testsuites> holding one <testsuite name="convspec[BACKEND]"> per backend, each holding one
<testcase classname="convspec[BACKEND].OP" name="CASE_ID::PART"> per case and part: the forward output,
the index output (ops that have one) and the backward (every gradient) -- the same parts and names as the
pytest plugin's items. A part's verdict decides what the testcase holds:

    pass                                 nothing
    fail                                 <failure>   the case's failure text (checks, mismatch, repro)
    error, timeout, crashed              <error>     the same, with the traceback
    deviation                            <skipped type="deviation">   the declared reason (an expected failure)
    unsupported, invalid, skipped,       <skipped>   why it was not checked
    or no verdict (not run)

Written with xml.etree (the standard library): no dependency, and the escaping of text and attributes is
the library's.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from .records import PARTS, failure_text, part_of, verdicts

FAILURE = ("fail",)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot hold
ERROR = ("error", "timeout", "crashed")
SKIPPED = ("deviation", "unsupported", "invalid", "skipped")


def parts_of(op: str, found=()) -> tuple:
    """The parts a case of `op` has, in PARTS order: the forward, the index output where the op has one,
    the backward where it has differentiable inputs; plus any part `found` in a record's verdicts."""
    from . import registry

    info = registry.OPS.get(op)
    have = {"forward"} | set(found)
    if info is not None:
        if getattr(info, "index_op", None):
            have.add("indices")
        if getattr(info, "differentiable", ()):
            have.add("backward")
    return tuple(p for p in PARTS if p in have)


def record_verdicts(record: dict) -> dict:
    """A case record's verdicts: as recorded, or derived from its checks (files written before records
    carried them)."""
    v = record.get("verdicts")
    return v if isinstance(v, dict) else verdicts(str(record.get("status", "")), record.get("checks", []))


def part_reason(record: dict, part: str) -> str:
    """Why a part was not checked, or what it reports when it was skipped: its checks' messages, else the
    case's message, else its status."""
    msgs = [
        str(c.get("message", "")).strip()
        for c in record.get("checks", [])
        if c.get("message") and part_of(c.get("what", "")) == part and c.get("status") != "pass"
    ]
    text = "; ".join(m for m in msgs if m) or str(record.get("message", "")).strip()
    if part != "forward" and part not in record_verdicts(record):
        why = _last_line(text) or str(record.get("status", ""))
        return f"not checked: the case ended at its forward ({record.get('status')}: {why})"
    return text or str(record.get("status", ""))


def _clean(text) -> str:
    """Text XML can hold: control characters (a traceback's terminal escapes) become U+FFFD."""
    return _NOT_XML.sub("\ufffd", str(text))


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def testcases(record: dict) -> list:
    """[(part, verdict or None)] of one case record: a part per verdict, and where the forward did not
    pass, also the op's other parts (parts_of), which were never checked (None)."""
    v = record_verdicts(record)
    if v.get("forward", "pass") != "pass":
        parts = parts_of(record.get("op", ""), v)
    else:
        parts = tuple(p for p in PARTS if p in v)
    return [(p, v.get(p)) for p in parts or ("forward",)]


def build(records, *, name: str = "convspec", hostname: str | None = None) -> ET.Element:
    """The <testsuites> element for these case records (other records are ignored)."""
    by_backend: dict = defaultdict(list)
    for r in records:
        if r.get("record", "case") == "case" and "case_id" in r:
            by_backend[r.get("backend", "?")].append(r)
    root = ET.Element("testsuites", name=name)
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    total_time = 0.0
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    host = hostname if hostname is not None else socket.gethostname()
    for backend, recs in by_backend.items():
        suite = ET.SubElement(root, "testsuite", name=f"{name}[{backend}]", timestamp=stamp, hostname=host)
        counts = dict.fromkeys(totals, 0)
        suite_time = 0.0
        for r in recs:
            cases = testcases(r)
            seconds = float(r.get("seconds") or 0.0)
            for part, verdict in cases:
                counts["tests"] += 1
                tc = ET.SubElement(
                    suite,
                    "testcase",
                    classname=_clean(f"{name}[{backend}].{r.get('op', '?')}"),
                    name=_clean(f"{r['case_id']}::{part}"),
                    time=f"{seconds / len(cases):.6f}",
                )
                if verdict == "pass":
                    continue
                if verdict in FAILURE or verdict in ERROR:
                    tag = "failure" if verdict in FAILURE else "error"
                    counts["failures" if tag == "failure" else "errors"] += 1
                    body = failure_text({**r, "backend": backend, "minimal": _own_minimal(r)})
                    msg = f"{part}: {verdict}: {_summary(r, part)}"[:1000]
                    el = ET.SubElement(tc, tag, message=_clean(msg), type=verdict)
                    el.text = _clean(body)
                else:
                    counts["skipped"] += 1
                    reason = r.get("deviation") if verdict == "deviation" else part_reason(r, part)
                    kind = verdict or "not run"
                    msg = f"{kind}: {_last_line(reason or '')}"[:1000]
                    el = ET.SubElement(tc, "skipped", message=_clean(msg), type=kind)
                    el.text = _clean(reason or kind)
            suite_time += seconds
        for k, n in counts.items():
            suite.set(k, str(n))
            totals[k] += n
        suite.set("time", f"{suite_time:.6f}")
        total_time += suite_time
    for k, n in totals.items():
        root.set(k, str(n))
    root.set("time", f"{total_time:.6f}")
    return root


def _own_minimal(record: dict):
    """The record's shrunk minimal case, only when it fails the same way (report.signature.reproduces)."""
    from .report.signature import reproduces

    return record.get("minimal") if reproduces(record) else None


def _summary(record: dict, part: str) -> str:
    """One line: the first bad check of this part and what went wrong, else the case's message."""
    from .records import check_line

    for c in record.get("checks", []):
        if part_of(c.get("what", "")) == part and c.get("status") not in ("pass", "skipped"):
            return " ".join(_last_line(check_line(c)).split())
    return _last_line(record.get("message", "")) or str(record.get("status", ""))


def to_string(records, **kw) -> str:
    """The JUnit XML document, as text."""
    root = build(records, **kw)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(records, path, *, name: str = "convspec") -> Path:
    """Write the JUnit XML of these case records to `path` (atomically: a reader never sees half a file).
    Returns the path."""
    path = Path(path)
    text = to_string(list(records), name=name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
