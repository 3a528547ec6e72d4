"""Compatibility reports: `convspec report RESULTS.jsonl ... [--bench BENCH.json] --out reports/` merges results
files (from one machine or several, or the shards of a split run) and writes reports/<name>.md (readable on
GitHub) and reports/<name>.html (one self-contained file with the plots).

    schema.py    the published JSON Schema (conformance/schema/results.schema.json); reading and
                 validating one results file
    load.py      read (through schema.py) and merge results files
    model.py     aggregation: the matrix, features, bound ratios, deviations, failures, training curves
    format.py    plain-text formatting of what model.py computes, and of one failure (failure_lines)
    perf.py      `convspec bench --out` files: read them (--bench), and their rows as tables
    markdown.py / html.py / plots.py   the renderings (markdown.py: the one Markdown table writer and the
                 bench's Markdown; plots.py: the one plot style and the bench's GFLOP/s plot)
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from convspec import SpecError

from . import html, markdown, plots
from .load import MergeError, load
from .model import Report, build
from .perf import load_bench

__all__ = ["MergeError", "Report", "atomic_write", "build", "load", "render", "write_reports"]


def render(report: Report) -> dict:
    """{'md': text, 'html': text}: both renderings, complete, before anything is written. Without matplotlib
    (an optional extra) the reports are complete but for their plots: a warning says so."""
    try:
        pics = plots.all_plots(report)
    except SpecError as exc:
        if exc.param != "matplotlib":
            raise
        warnings.warn(f"the report is written without its plots: {exc.rule}", stacklevel=2)
        pics = []
    return {"md": markdown.render(report, {a: cap for a, cap, _ in pics}), "html": html.render(report, pics)}


def atomic_write(path, text: str) -> None:
    """Write `text` to `path` so that a reader sees either the old file or the whole new one, never a
    part: write a temporary file beside it, flush it to disk, then rename it over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_reports(
    paths, out_dir, name: str = "compatibility", title: str = "convspec compatibility report", bench=()
) -> list:
    """Load, merge and render the results files (and the `convspec bench` JSON files in `bench`, for the
    Performance section), then write <out_dir>/<name>.md and .html. Returns the paths written. Nothing
    is written unless every file loaded and both renderings succeeded."""
    benches = [load_bench(p) for p in bench]
    report = build(load(paths), title=title)
    report.benches = benches
    texts = render(report)
    out = []
    for ext in ("md", "html"):
        target = Path(out_dir) / f"{name}.{ext}"
        atomic_write(target, texts[ext])
        out.append(target)
    return out
