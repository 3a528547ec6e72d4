"""Result files: JSON Lines, one record per line, written and flushed as results arrive, so a crash
loses nothing and `--resume` can skip what is already there.

Records (field "record"): "run" (first line: schema, spec version, profile, seed, shard, environment),
"plugin_error", "backend" (availability, version, device, plugin), "case" (one case on one backend),
"summary" (last line of a finished run). The schema is conformance/schema/results.schema.json.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

import convspec

from .cases import jsonable
from .environment import environment  # noqa: F401  (the one environment(), re-exported: results.environment)

SCHEMA = "convspec-results/1"


class ResultWriter:
    """Appends records to a JSON Lines file, flushing each one."""

    def __init__(self, path, *, resume: bool = False, expect: dict | None = None):
        """resume: keep the file's records and append; its run header must match `expect` (the new
        run's profile, seed, shard, ops), so one file never mixes two different runs."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: set = set()
        self.previous: list = []  # case records already in the file (resume)
        self.header = None
        if resume and self.path.exists() and self.path.stat().st_size:
            records = read(self.path, strict=False)
            if not records or records[0].get("record") != "run" or records[0].get("schema") != SCHEMA:
                raise ResultFileError(str(self.path), f"is not a {SCHEMA} results file (no run header): refusing to resume into it")
            self.header = records[0]
            for key, value in (expect or {}).items():
                if self.header.get(key) != value:
                    raise ResultFileError(str(self.path), f"was written by a run with {key}={self.header.get(key)!r}, not {value!r}: resume with the same options, or write to another --out")
            for rec in records:
                if rec.get("record") == "case":
                    self.done.add((rec["backend"], rec["case_id"]))
                    self.previous.append(rec)
            # drop a torn last line (a crash mid-write) and the old summary before appending
            kept = [json.dumps(r, separators=(",", ":")) for r in records if r.get("record") != "summary"]
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            os.replace(tmp, self.path)
        self._f = open(self.path, "a" if resume else "w", encoding="utf-8")

    def write(self, record: dict) -> None:
        line = json.dumps(jsonable(record), separators=(",", ":"), default=_default, allow_nan=False)
        self._f.write(line + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (tuple, set)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def run_record(*, profile, seed, shard, ops, backends, argv) -> dict:
    return {
        "record": "run", "schema": SCHEMA, "spec_version": convspec.SPEC_VERSION, "profile": profile, "seed": seed,
        "shard": list(shard), "ops": list(ops), "backends": list(backends), "argv": list(argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "environment": environment(),
    }


class ResultFileError(convspec.SpecError):
    """A results file that cannot be read: truncated, hand-edited, or of another schema."""


def read_numbered(path, *, strict: bool = True) -> list:
    """[(line number, record)] of a results file. strict: a malformed line is an error naming the
    line, and the file must start with a run record of this schema; otherwise a truncated last line
    (a crash mid-write) is skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ResultFileError(str(path), "is not UTF-8 text: not a convspec results file") from None
    except OSError as exc:
        raise ResultFileError(str(path), f"cannot be read ({exc.strerror or exc})") from None
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            last = i == len(lines) and not text.endswith("\n")
            if last and not strict:
                break
            why = "the file is truncated (the run stopped mid-write?)" if last else "the file was edited or is corrupt"
            raise ResultFileError(str(path), f"line {i} is not valid JSON ({exc.msg} at column {exc.colno}); {why}") from None
        if not isinstance(rec, dict) or "record" not in rec:
            raise ResultFileError(str(path), f"line {i} is not a convspec record (a JSON object with a 'record' field)")
        out.append((i, rec))
    if strict:
        if not out:
            raise ResultFileError(str(path), "is empty: no records")
        first_line, first = out[0]
        if first["record"] != "run":
            raise ResultFileError(str(path), f"line {first_line} is a {first['record']!r} record, but a results file starts with a 'run' record")
        if first.get("schema") != SCHEMA:
            raise ResultFileError(str(path), f"is of results schema {first.get('schema')!r}; this convspec reads {SCHEMA!r} (the file was written by another convspec version)")
    return out


def read(path, *, strict: bool = True) -> list:
    """All records of a results file (see read_numbered)."""
    return [rec for _, rec in read_numbered(path, strict=strict)]
