"""`convspec report RESULTS ... [--out reports/] [--name NAME]`: one compatibility report from one or
more results files (a directory stands for its *.jsonl files)."""
from __future__ import annotations

import re

import click

from convspec import SpecError


@click.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports", show_default=True, help="Directory the report files go to.")
@click.option("--name", default="compatibility", show_default=True, help="Report file name: writes NAME.md and NAME.html.")
@click.option("--title", default="convspec compatibility report", show_default=True, help="The report's heading.")
def COMMAND(results, out_dir, name, title):
    """Merge results files (from one machine or several, or the shards of a split run) into one
    compatibility report: OUT/NAME.md (for GitHub) and OUT/NAME.html (self-contained, with plots)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise click.BadParameter(f"must be a plain file name (letters, digits, '.', '_', '-'), got {name!r}", param_hint="--name")
    try:
        from convspec.conformance.report import write_reports

        written = write_reports(results, out_dir, name=name, title=title)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None
    for p in written:
        click.echo(f"report: {p}")
