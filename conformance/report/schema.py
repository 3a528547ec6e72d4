"""Validating results records against the published JSON Schema (conformance/schema/results.schema.json).

The schema is package data: it is loaded with importlib.resources, so validation works from a checkout
and from an installed wheel alike. Validation uses the `jsonschema` library (the `report` extra).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..results import ResultFileError, read_numbered

SCHEMA_FILE = "results.schema.json"


def schema_text() -> str:
    """The schema document, as published."""
    return resources.files("convspec.conformance").joinpath("schema").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(schema_text())


@lru_cache(maxsize=1)
def validator():
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - depends on the environment
        raise ResultFileError(
            "jsonschema",
            "validating results needs the jsonschema package: pip install jsonschema (a core dependency of convspec)",
        ) from None
    cls = jsonschema.validators.validator_for(schema())
    cls.check_schema(schema())
    return cls(schema())


def _inline(node, defs, depth=0):
    """The schema with every local '#/$defs/NAME' reference replaced by its definition (the schema has
    no recursion), so that checking a valid record needs no reference lookups."""
    if depth > 20:
        raise RecursionError("results schema: $ref nesting too deep")
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            target = _inline(defs[ref[len("#/$defs/") :]], defs, depth + 1)
            return {"allOf": [target, _inline(rest, defs, depth + 1)]} if rest else target
        return {k: _inline(v, defs, depth + 1) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs, depth + 1) for v in node]
    return node


@lru_cache(maxsize=None)
def _fast(kind: str):
    """A validator of one record kind: the fast path for valid records (about 4x quicker than the
    whole schema, whose if/then chain and references dominate)."""
    s = schema()
    if kind not in s["properties"]["record"]["enum"]:
        return None
    sub = _inline(s["$defs"][kind], s["$defs"])
    cls = type(validator())
    return cls({"$schema": s["$schema"], **sub})


def is_valid(record) -> bool:
    fast = _fast(record.get("record")) if isinstance(record, dict) and isinstance(record.get("record"), str) else None
    if fast is not None:
        return fast.is_valid(record)
    return validator().is_valid(record)


def problems(record: dict) -> list[str]:
    """Every way `record` breaks the schema, most relevant first, each as 'where: what'; [] if valid."""
    import jsonschema

    if is_valid(record):
        return []
    v = validator()
    errors = sorted(v.iter_errors(record), key=jsonschema.exceptions.relevance)
    out = []
    for e in errors:
        where = (
            "".join(
                f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(e.absolute_path)
            )
            or "(record)"
        )
        out.append(f"{where}: {e.message}")
    return out


def validate_record(record: dict, *, path="(record)", line: int | None = None) -> None:
    """Raise ResultFileError naming the file, the line, the record kind and the first problem."""
    found = problems(record)
    if found:
        kind = record.get("record", "?") if isinstance(record, dict) else "?"
        at = f"line {line} ({kind} record)" if line is not None else f"{kind} record"
        more = f" (and {len(found) - 1} more problem{'s' if len(found) > 2 else ''})" if len(found) > 1 else ""
        raise ResultFileError(
            str(path),
            f"{at} breaks the results schema: {found[0]}{more}; "
            "the file was edited or written by an incompatible convspec",
        )


def validate_records(records, path="(records)") -> None:
    """Validate a sequence of records (line numbers are 1-based positions)."""
    for i, rec in enumerate(records, 1):
        validate_record(rec, path=path, line=i)


def read_valid(path) -> list:
    """Every record of one results file, read strictly and validated: a line that is not JSON, a first
    record that is not a `run` of this schema version, a record that breaks the schema, or a second `run`
    record (two files concatenated) is a ResultFileError naming the file and the line."""
    path = Path(path)
    records = read_numbered(path)
    for i, rec in records:
        validate_record(rec, path=path, line=i)
    extra_runs = [i for i, rec in records[1:] if rec["record"] == "run"]
    if extra_runs:
        raise ResultFileError(
            str(path),
            f"line {extra_runs[0]} starts a second run: two results files were concatenated; pass them separately",
        )
    return [rec for _, rec in records]


def validate_file(path) -> int:
    """Validate every line of a results file; returns the number of records. Uses the same reader
    as `convspec report` (load.load_file), so truncation and schema-version errors read the same."""
    return len(read_valid(path))
