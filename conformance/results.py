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


#: the fields a case record must have for --resume to count it
CASE_FIELDS = ("backend", "case_id", "op", "status")
#: options of a run that its header records and --resume takes from it
RUN_OPTIONS = ("profile", "seed", "shard", "ops")


def lock_path(path) -> Path:
    """The lock file that keeps a second writer off a results file: .NAME.lock next to it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def check_out(path, *, resume: bool = False, overwrite: bool = False, option: str = "--out", expect=None) -> None:
    """Refuse, before anything runs, a results path that cannot be written or that holds results a run
    would replace (without --resume or --overwrite). Touches nothing."""
    path = Path(path)
    if path.is_dir():
        raise ResultFileError(str(path), f"is a folder; {option} takes a file name")
    parent = path.parent if str(path.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ResultFileError(str(path), f"cannot be written: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ResultFileError(str(path), f"cannot be written: no write permission in {probe}")
    if str(path.resolve()).startswith(("/proc/", "/sys/")):
        raise ResultFileError(str(path), "cannot be written: /proc and /sys hold no files of ours")
    if path.exists() and path.stat().st_size and not resume and not overwrite:
        raise ResultFileError(
            str(path),
            f"already holds results: add --resume to continue that run, --overwrite to "
            f"replace it, or choose another {option}",
        )
    if resume and expect is not None and path.exists() and path.stat().st_size:
        resume_state(path, expect)


def describe_file(path) -> str:
    """What a file that is not a convspec results file seems to be, for the error that refuses it."""
    try:
        head = Path(path).read_bytes()[:4096]
    except OSError as exc:
        return f"an unreadable file ({exc.strerror or exc})"
    if not head.strip():
        return "an empty file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file"
    t = text.lstrip()
    if t.startswith("<"):
        return "an XML/HTML file"
    if t.startswith("#") or t.startswith("|"):
        return "a Markdown/text file"
    first = t.splitlines()[0] if t.splitlines() else ""
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:
        try:
            obj = json.loads(Path(path).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            return "a text file that is not JSON Lines"
    if isinstance(obj, dict):
        if obj.get("record") == "run":
            return f"a results file of schema {obj.get('schema')!r}, not {SCHEMA!r}"
        if "record" in obj:
            return f"a JSON Lines file whose first record is a {obj['record']!r} record, not the 'run' header"
        if {"results", "suites"} & set(obj) or "gemm" in obj:
            return "a convspec bench file (JSON), not a results file"
        return f"a JSON file (keys: {', '.join(sorted(map(str, obj))[:6])}), not a results file"
    return f"a JSON file holding a {type(obj).__name__}, not a results file"


def resume_state(path, expect: dict | None = None) -> tuple:
    """(run header, [(line, record)]) of a results file to resume, checked: a results file of this
    schema, written by a run with the `expect`ed options, every case record complete."""
    path = Path(path)
    try:
        records = read_numbered(path, strict=False)
    except ResultFileError as exc:
        raise ResultFileError(
            str(path), f"{exc.rule}: it is {describe_file(path)}; refusing to resume into it"
        ) from None
    if not records or records[0][1].get("record") != "run" or records[0][1].get("schema") != SCHEMA:
        raise ResultFileError(str(path), f"is {describe_file(path)}: refusing to resume into it")
    header = records[0][1]
    for key, value in (expect or {}).items():
        if header.get(key) != value:
            raise ResultFileError(
                str(path),
                f"was written by a run with {key}={header.get(key)!r}, not {value!r}: resume "
                f"with the same options (or none: --resume takes them from the file), or "
                f"write to another --out",
            )
    for line, rec in records:
        if rec.get("record") == "case":
            missing = [f for f in CASE_FIELDS if not isinstance(rec.get(f), str)]
            if missing:
                raise ResultFileError(
                    str(path),
                    f"line {line}: case record without {', '.join(missing)} (a case record "
                    f"needs {', '.join(CASE_FIELDS)}): the file was edited or is corrupt, "
                    f"refusing to resume",
                )
    return header, records


class ResultWriter:
    """Appends records to a JSON Lines file, flushing each one, under a lock that refuses a second
    writer. path None: records are kept in memory only (a --case run without --out)."""

    def __init__(self, path, *, resume: bool = False, expect: dict | None = None, overwrite: bool = True):
        """resume: keep the file's records and append; its run header must match `expect` (the new
        run's profile, seed, shard, ops), so one file never mixes two different runs. overwrite: False
        refuses to replace a file that holds records."""
        self.done: set = set()
        self.previous: list = []  # case records already in the file (resume)
        self.records: list = []  # what this writer wrote
        self.header = None
        self._lock = None
        self._f = None
        if path is None:
            self.path = None
            return
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultFileError(str(self.path), f"cannot be written: {exc.strerror or exc}") from None
        self._lock = self._acquire()
        try:
            self._open(resume, expect, overwrite)
        except BaseException:
            self._lock.release()
            raise

    def _acquire(self):
        from filelock import FileLock, Timeout

        lock = FileLock(str(lock_path(self.path)), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise ResultFileError(
                str(self.path),
                f"is being written by another convspec run (it holds "
                f"{lock_path(self.path)}): wait for it to finish, or choose "
                f"another --out",
            ) from None
        except OSError as exc:
            raise ResultFileError(str(self.path), f"cannot be written: {exc.strerror or exc}") from None
        return lock

    def _open(self, resume, expect, overwrite):
        exists = self.path.exists() and self.path.stat().st_size
        if exists and not resume and not overwrite:
            raise ResultFileError(
                str(self.path),
                "already holds results: add --resume to continue that run, "
                "--overwrite to replace it, or choose another --out",
            )
        if resume and exists:
            self.header, records = resume_state(self.path, expect)
            for _, rec in records:
                if rec.get("record") == "case":
                    self.done.add((rec["backend"], rec["case_id"]))
                    self.previous.append(rec)
            # drop a torn last line (a crash mid-write) and the old summary before appending
            kept = [json.dumps(r, separators=(",", ":")) for _, r in records if r.get("record") != "summary"]
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            os.replace(tmp, self.path)
        try:
            self._f = open(self.path, "a" if resume else "w", encoding="utf-8")
        except OSError as exc:
            raise ResultFileError(str(self.path), f"cannot be written: {exc.strerror or exc}") from None

    def write(self, record: dict) -> None:
        line = json.dumps(jsonable(record), separators=(",", ":"), default=_default, allow_nan=False)
        if self._f is None:
            self.records.append(record)
        else:
            self._f.write(line + "\n")
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def read_header(path) -> dict | None:
    """The run record of a results file, or None when it has none (missing, empty, another kind)."""
    try:
        with open(path, encoding="utf-8") as f:
            first = json.loads(f.readline())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return first if isinstance(first, dict) and first.get("record") == "run" and first.get("schema") == SCHEMA else None


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
        "record": "run",
        "schema": SCHEMA,
        "spec_version": convspec.SPEC_VERSION,
        "profile": profile,
        "seed": seed,
        "shard": list(shard),
        "ops": list(ops),
        "backends": list(backends),
        "argv": list(argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": environment(),
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
            raise ResultFileError(
                str(path), f"line {i} is not valid JSON ({exc.msg} at column {exc.colno}); {why}"
            ) from None
        if not isinstance(rec, dict) or "record" not in rec:
            raise ResultFileError(str(path), f"line {i} is not a convspec record (a JSON object with a 'record' field)")
        out.append((i, rec))
    if strict:
        if not out:
            raise ResultFileError(str(path), "is empty: no records")
        first_line, first = out[0]
        if first["record"] != "run":
            raise ResultFileError(
                str(path),
                f"line {first_line} is a {first['record']!r} record, but a results file starts with a 'run' record",
            )
        if first.get("schema") != SCHEMA:
            raise ResultFileError(
                str(path),
                f"is of results schema {first.get('schema')!r}; this convspec reads {SCHEMA!r} (the file was written "
                f"by another convspec version)",
            )
    return out


def read(path, *, strict: bool = True) -> list:
    """All records of a results file (see read_numbered)."""
    return [rec for _, rec in read_numbered(path, strict=strict)]
