"""`convspec selftest`: the suite's mutation score. The catalogue of mutant backends (the NumPy backend with
one realistic semantic change each, convspec.conformance.selftest.mutants) runs through the engine on a
profile's cases; the command prints the score per profile and per op, what kills each mutant, and which
mutants each case kills, and optionally writes it all as Markdown (reports/mutation.md).

Exit status 1 when the suite falls short: a real mutant survives the full profile, the quick profile kills
fewer than 95% of them, or an equivalent mutant (a correct backend written differently) is flagged.
"""

from __future__ import annotations

import shlex
import sys

import click

#: the quick profile must kill at least this share of the real mutants (the full profile: all)
QUICK_MIN = 0.95


@click.command("selftest")
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    type=click.Choice(["quick", "full"]),
    help="Profile to score (repeatable; default quick).",
)
@click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True, help="Parallel processes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the property-based cases.")
@click.option("--op", "ops", multiple=True, metavar="OP", help="Only the mutants and cases of these ops (repeatable).")
@click.option("--mutant", "names", multiple=True, metavar="NAME", help="Only these mutants (repeatable).")
@click.option(
    "--first-kill",
    is_flag=True,
    help="Stop running a mutant at its first kill (faster; the per-case kill list is then partial).",
)
@click.option(
    "--in-process",
    is_flag=True,
    help="Evaluate each mutant in one process of a pool instead of the engine's per-case workers (faster).",
)
@click.option(
    "--cases/--no-cases", "show_cases", default=True, show_default=True, help="Print which mutants each case kills."
)
@click.option("--markdown", type=click.Path(dir_okay=False), default=None, help="Also write the report as Markdown.")
def COMMAND(profiles, jobs, seed, ops, names, first_kill, in_process, show_cases, markdown):
    """Run the mutant catalogue and print the suite's mutation score."""
    import warnings

    warnings.simplefilter("ignore", RuntimeWarning)  # NaN, inf and overflow are what many cases feed the mutants
    from rich.console import Console
    from rich.table import Table

    from .. import registry
    from ..selftest import mutants as M
    from ..selftest import score as S

    for op in ops:
        if op not in registry.OPS:
            raise click.BadParameter(f"unknown op {op!r}; valid ops: {', '.join(registry.OPS)}", param_hint="--op")
    for n in names:
        if n not in M.CATALOGUE:
            raise click.BadParameter(f"unknown mutant {n!r}; valid: {', '.join(M.CATALOGUE)}", param_hint="--mutant")
    chosen = [M.CATALOGUE[n] for n in names] if names else M.catalogue()
    if ops:
        chosen = [m for m in chosen if set(m.ops) & set(ops)]
    profiles = profiles or ("quick",)
    console = Console()
    scores = []
    for profile in profiles:
        s = S.mutation_score(
            profile,
            jobs=jobs,
            seed=seed,
            mutants=chosen,
            ops=ops or None,
            first_kill=first_kill,
            isolate=not in_process,
        )
        scores.append(s)
        for line in S.summary_lines(s):
            console.print(line, soft_wrap=True)
    t = Table(title="real mutants killed, per op")
    t.add_column("op")
    for s in scores:
        t.add_column(s.profile)
    for op in dict.fromkeys(op for s in scores for op in s.per_op()):
        t.add_row(op, *(f"{s.per_op().get(op, (0, 0))[0]}/{s.per_op().get(op, (0, 0))[1]}" for s in scores))
    console.print(t)
    t = Table(title="mutants: cases that kill them (the first one shown)")
    for col in ("mutant", "kind", *[s.profile for s in scores], "first killing case"):
        t.add_column(col, overflow="fold")
    for m in chosen:
        first = next((s.kills[m.name][0] for s in scores if s.kills.get(m.name)), "-")
        t.add_row(m.name, m.kind, *(str(len(s.kills.get(m.name, []))) for s in scores), first)
    console.print(t)
    if show_cases:
        for s in scores:
            kills = s.case_kills()
            console.print(f"which mutants each case kills ({s.profile} profile, {len(kills)} killing cases):")
            for cid in sorted(kills):
                console.print(f"  {cid}: {', '.join(sorted(kills[cid]))}", soft_wrap=True, highlight=False)
    problems = []
    for s in scores:
        for m in s.killed(M.EQUIVALENT):
            problems.append(f"equivalent mutant {m.name} flagged ({s.profile}) by {s.kills[m.name][0]}")
        need = 1.0 if s.profile == "full" else QUICK_MIN
        if s.ratio() < need:
            left = ", ".join(m.name for m in s.survivors())
            problems.append(
                f"{s.profile} profile kills {100 * s.ratio():.1f}% of the real mutants "
                f"(needs {100 * need:.0f}%); surviving: {left}"
            )
    if markdown:
        command = "convspec selftest " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else ""
        with open(markdown, "w", encoding="utf-8") as f:
            f.write(S.markdown(scores, command.strip() or "convspec selftest"))
        click.echo(f"markdown: {markdown}", err=True)
    for p in problems:
        console.print(f"[red]FAIL[/red] {p}", soft_wrap=True)
    if problems:
        sys.exit(1)
