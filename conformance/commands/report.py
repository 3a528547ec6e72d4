"""`convspec report RESULTS ... [--bench BENCH.json ...] [--out reports/] [--name NAME]`: one compatibility
report from one or more results files (a directory stands for its *.jsonl files), with a Performance
section from `convspec bench --out` files."""

from __future__ import annotations

import re
import warnings

import click

from convspec import SpecError


@click.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="reports",
    show_default=True,
    help="Directory the report files go to.",
)
@click.option(
    "--name", default="compatibility", show_default=True, help="Report file name: writes NAME.md and NAME.html."
)
@click.option(
    "--bench",
    "bench",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A `convspec bench --out` JSON file for the Performance section (repeatable).",
)
@click.option("--title", default="convspec compatibility report", show_default=True, help="The report's heading.")
def COMMAND(results, out_dir, name, title, bench):
    """Merge results files (from one machine or several, or the shards of a split run) into one
    compatibility report: OUT/NAME.md (for GitHub) and OUT/NAME.html (self-contained, with plots).
    With --bench, a Performance section: per suite, each backend's time ratios to the bench's baseline
    (geometric means), GFLOP/s and GEMM rate, and in the HTML the GFLOP/s per layer plot."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise click.BadParameter(
            f"must be a plain file name (letters, digits, '.', '_', '-'), got {name!r}", param_hint="--name"
        )
    _check_out_dir(out_dir)
    try:
        from convspec.conformance.report import write_reports

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            written = write_reports(results, out_dir, name=name, title=title, bench=bench)
        for w in caught:
            if issubclass(w.category, UserWarning) and not issubclass(w.category, RuntimeWarning):
                click.echo(f"convspec: note: {w.message}", err=True)  # e.g. the plots left out
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None
    for p in written:
        click.echo(f"report: {p}")


class _UsageFail(click.ClickException):
    exit_code = 2


def _check_out_dir(out_dir) -> None:
    """Refuse now, in one line, an --out folder that cannot be created or written."""
    import os
    from pathlib import Path

    path = Path(out_dir)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if str(path.resolve()).startswith(("/proc/", "/sys/")):
        raise _UsageFail(f"--out: {out_dir}: cannot be written: /proc and /sys hold no files of ours")
    if not probe.is_dir():
        raise _UsageFail(f"--out: {out_dir}: cannot be written: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise _UsageFail(f"--out: {out_dir}: cannot be written: no write permission in {probe}")
