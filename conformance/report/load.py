"""Reading results files (one or more, from one machine or several) and merging them into one body of
results for a report.

Every file is read strictly: a line that is not JSON (a truncated or hand-edited file), a first record
that is not a `run` of schema convspec-results/1 (another convspec version), or a record that breaks the
published JSON Schema is an error naming the file and the line. Files of different spec versions are
not merged: a report compares backends against one version of the specification.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from convspec import SpecError

from ..records import verdicts
from . import schema as S

BAD = ("fail", "error", "timeout", "crashed")
# worst first: when the same case of the same backend appears in two files with different outcomes,
# the report shows the worse one and lists the conflict
SEVERITY = ("crashed", "timeout", "error", "fail", "invalid", "deviation", "unsupported", "pass")


class MergeError(SpecError):
    """Results files that cannot go into one report (different spec versions, nothing to read)."""


@dataclass
class RunFile:
    """One results file: its `run` header and all its records, in order."""

    path: Path
    records: list

    @property
    def header(self) -> dict:
        return self.records[0]

    def of(self, kind: str) -> list:
        return [r for r in self.records if r["record"] == kind]

    @property
    def finished(self) -> bool:
        return any(r["record"] == "summary" and r.get("finished") for r in self.records)

    @property
    def label(self) -> str:
        h = self.header
        i, n = h["shard"]
        shard = f", shard {i}/{n}" if n > 1 else ""
        return f"{self.path.name} ({h['environment'].get('host', '?')}{shard})"


@dataclass
class Merged:
    """Results of one or more runs, ready to aggregate."""

    runs: list
    spec_version: str
    cases: list  # one record per (backend, case_id): the worst outcome where files disagree
    backends: (
        dict  # name -> {"available": bool, "reasons": [...], "versions": [...], "devices": [...], "plugins": [...]}
    )
    trains: list
    plugin_errors: list
    conflicts: list = field(default_factory=list)  # (backend, case_id, {status: [file labels]})
    duplicates: int = 0  # cases seen in more than one file (same backend)
    notes: list = field(default_factory=list)  # things a reader should know (missing shards, unfinished runs)


def verdicts_of(record: dict) -> dict:
    """A case record's per-part verdicts {forward, indices, backward}: as recorded, or derived from its
    checks (records.verdicts) for files written before records carried them."""
    v = record.get("verdicts")
    return v if isinstance(v, dict) else verdicts(str(record.get("status", "")), record.get("checks", []))


def load_file(path) -> RunFile:
    """Read and validate one results file."""
    path = Path(path)
    return RunFile(path, S.read_valid(path))


def expand(paths) -> list:
    """Files as given; a directory stands for the *.jsonl files directly inside it."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.glob("*.jsonl") if q.is_file())
            if not found:
                raise MergeError(str(p), "is a directory holding no results files (*.jsonl)")
            out += found
        elif p.exists():
            out.append(p)
        else:
            raise MergeError(str(p), "does not exist")
    if not out:
        raise MergeError("RESULTS", "no results files given")
    seen, unique = set(), []
    for p in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique


def load(paths) -> Merged:
    """Read every file (directories expand to their *.jsonl) and merge them."""
    return merge([load_file(p) for p in expand(paths)])


def merge(runs: list) -> Merged:
    versions = defaultdict(list)
    for r in runs:
        versions[r.header["spec_version"]].append(r.path.name)
    if len(versions) > 1:
        which = "; ".join(f"spec {v}: {', '.join(files)}" for v, files in sorted(versions.items()))
        raise MergeError(
            "RESULTS",
            f"the files were checked against different spec versions ({which}); "
            "a report compares backends against one spec version, so report them separately",
        )

    backends: dict = {}

    def entry(name):
        return backends.setdefault(
            name, {"available": False, "reasons": [], "versions": [], "devices": [], "plugins": [], "runs": []}
        )

    for r in runs:
        for name in r.header.get("backends", []):
            entry(name)
        for b in r.of("backend"):
            e = entry(b["name"])
            e["runs"].append(r.label)
            if b["available"]:
                e["available"] = True
                for key, value in (("versions", b["version"]), ("devices", b["device"]), ("plugins", b["plugin"])):
                    if value and value not in e[key]:
                        e[key].append(value)
            else:
                why = f"{b['reason']} (on {r.header['environment'].get('host', '?')})"
                if why not in e["reasons"]:
                    e["reasons"].append(why)

    cases: dict = {}
    where: dict = defaultdict(lambda: defaultdict(list))
    duplicates = 0
    repeated: dict = defaultdict(int)  # run label -> cases repeated inside that one file
    for r in runs:
        seen_here = set()
        for c in r.of("case"):
            c.setdefault("verdicts", verdicts_of(c))  # files written before records carried verdicts
            key = (c["backend"], c["case_id"])
            entry(c["backend"])["available"] = True  # it ran
            where[key][c["status"]].append(r.label)
            if key in seen_here:
                repeated[r.label] += 1
            seen_here.add(key)
            if key in cases:
                duplicates += 1
                if SEVERITY.index(c["status"]) < SEVERITY.index(cases[key]["status"]):
                    cases[key] = c
            else:
                cases[key] = c
    conflicts = [(b, cid, dict(st)) for (b, cid), st in where.items() if len(st) > 1]
    duplicates -= sum(repeated.values())

    trains = [dict(t, _run=r.label) for r in runs for t in r.of("train")]
    for t in trains:
        entry(t["backend"])["available"] = True
    plugin_errors = [dict(e, _run=r.label) for r in runs for e in r.of("plugin_error")]
    return Merged(
        runs=runs,
        spec_version=next(iter(versions)),
        cases=list(cases.values()),
        backends=backends,
        trains=trains,
        plugin_errors=plugin_errors,
        conflicts=conflicts,
        duplicates=duplicates,
        notes=_notes(runs, duplicates, conflicts, repeated),
    )


def _notes(runs, duplicates, conflicts, repeated) -> list:
    notes = []
    for label, n in repeated.items():
        notes.append(
            f"{label} records {n} case{'s' if n != 1 else ''} more than once for the same backend; "
            "each case is counted once."
        )
    for r in runs:
        if not r.finished:
            notes.append(f"{r.label} has no final summary: the run was interrupted, so its results are partial.")
    split = defaultdict(set)
    for r in runs:
        i, n = r.header["shard"]
        if n > 1:
            split[(r.header["profile"], r.header["seed"], n)].add(i)
    for (profile, seed, n), have in sorted(split.items()):
        missing = sorted(set(range(1, n + 1)) - have)
        if missing:
            notes.append(
                f"Split run (profile {profile}, seed {seed}) has {len(have)} of {n} shards; "
                f"missing: {', '.join(f'{i}/{n}' for i in missing)}."
            )
    profiles = sorted({r.header["profile"] for r in runs} - {"train"})  # `convspec train` files hold no cases
    if len(profiles) > 1:
        notes.append(
            f"The runs used different profiles ({', '.join(profiles)}), "
            "so backends were checked on different case sets."
        )
    if duplicates:
        notes.append(
            f"{duplicates} results repeat a case already seen for the same backend in another file; "
            "each case is counted once."
        )
    if conflicts:
        notes.append(
            f"{len(conflicts)} cases have different outcomes in different files; "
            "the worse outcome is shown (see 'Conflicting results')."
        )
    return notes
