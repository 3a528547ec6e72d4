"""`convspec train`: LeNet-5 trained end to end on each backend and compared with the float64 reference.

Every backend starts from the same initial weights (from --seed), sees the same minibatches in the same
order and uses the same learning rate; the reference run uses convspec.reference in float64. For each
backend the command reports the first step where its loss leaves the tolerance, the final relative
weight difference and the test accuracy (see convspec.conformance.lenet.equivalence for the bounds).

Output: JSON Lines appended to --out. A new file starts with the usual "run" record (profile "train"),
so it is a valid convspec results file; then one record per training run:

    {"record": "train", "backend": "torch-cpu", "dtype": "float32", "dataset": {...}, "config": {...},
     "steps": 270, "losses": [per-step loss, ...], "epoch_accuracy": [test accuracy after each epoch],
     "test_accuracy": 0.97, "seconds": 12.3, "images_per_second": 3500.0,
     "equivalence": {"first_exceed_step": null, "max_loss_rel_diff": ..., "final_weight_rel_diff": ...,
                     "loss_rtol": ..., "weight_rtol": ..., "equivalent": true, ...}}

The reference's own record has "backend": "reference" and no "equivalence". A backend that is
unavailable or lacks the dtype gets {"record": "train", "backend": ..., "skipped": "<reason>"}.
Exit status 1 when a backend is not equivalent to the reference or (full runs, without --steps) a run's
test accuracy is below --min-accuracy.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import availability, load_registry

DEFAULT_OUT = "train.jsonl"


@click.command("train")
@click.option("-b", "--backend", "names", multiple=True, metavar="NAME", help="Backend to train on (repeatable; default: every available one).")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Epochs (default 6).")
@click.option("--steps", type=click.IntRange(1), default=None, help="Stop after this many SGD steps (a short equivalence run).")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.05, show_default=True, help="SGD learning rate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initial weights and of the minibatch order.")
@click.option("--dtype", default="float32", show_default=True, help="Precision of the backend runs (the reference is float64).")
@click.option("--mnist", "mnist_dir", type=click.Path(file_okay=False), default=None, help="Train on MNIST's IDX files in DIR instead of scikit-learn's digits.")
@click.option("--min-accuracy", type=click.FloatRange(0, 1), default=0.95, show_default=True, help="Test accuracy every full run must reach.")
@click.option("--out", type=click.Path(dir_okay=False), default=DEFAULT_OUT, show_default=True, help="Results file (JSON Lines, appended).")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("-p", "--plugin", multiple=True, metavar="MODULE", help="Load a plugin module that is not installed (repeatable).")
def COMMAND(names, epochs, steps, batch_size, lr, seed, dtype, mnist_dir, min_accuracy, out, no_progress, plugin):
    """Train LeNet-5 on each backend and compare it with the float64 reference."""
    from convspec import SpecError

    from ..lenet import data as D
    from ..lenet import equivalence as E
    from ..lenet import train as T
    from ..results import ResultWriter, run_record

    if dtype not in E.LOSS_RTOL:
        raise click.BadParameter(f"unknown dtype {dtype!r}; valid: {', '.join(E.LOSS_RTOL)}", param_hint="--dtype")
    reg = load_registry(plugin, names)
    try:
        dataset = D.load_mnist(mnist_dir) if mnist_dir else D.load_digits_32()
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None

    cfg = T.TrainConfig(epochs=epochs or T.TrainConfig.epochs, batch_size=batch_size, lr=lr, seed=seed, max_steps=steps)
    selected = [reg.backends[n] for n in (names or reg.backends)]
    runnable, skipped = [], []
    for b in selected:
        reason = availability(b)
        if reason is None and dtype not in getattr(b, "dtypes", ()):
            reason = f"dtype {dtype} not supported (supports {', '.join(b.dtypes)})"
        if reason is None:
            runnable.append(b)
        else:
            skipped.append((b.name, reason))
            if names:
                click.echo(f"convspec: backend {b.name} skipped: {reason}", err=True)
    if not runnable:
        raise click.ClickException("no available backend to train on" + "".join(f"\n  {n}: {r}" for n, r in skipped))

    new = not Path(out).exists() or Path(out).stat().st_size == 0
    writer = ResultWriter(out, resume=True)
    if new:
        writer.write(run_record(profile="train", seed=seed, shard=(1, 1), ops=("lenet",), backends=[b.name for b in runnable], argv=sys.argv[1:]))
    for name, reason in skipped:
        writer.write({"record": "train", "backend": name, "dtype": dtype, "skipped": reason})

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.table import Table

    console = Console(stderr=True)
    total = T.n_steps(len(dataset.y_train), cfg)
    progress = Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=no_progress)
    bad = []
    rows = []
    with progress:
        runs = [(T.ReferenceBackend(), "float64")] + [(b, dtype) for b in runnable]
        reference = None
        for b, dt in runs:
            task = progress.add_task(f"{b.name} {dt}", total=total, loss="-")
            res = T.train(b, dataset, cfg, dtype=dt, on_step=lambda s, loss, task=task: progress.update(task, advance=1, loss=f"{loss:.4f}"))
            rec = {"record": "train", "dataset": dataset.describe(), **res.record()}
            full = steps is None
            if reference is None:
                reference = res
            else:
                rec["equivalence"] = E.compare(res, reference)
                if not rec["equivalence"]["equivalent"]:
                    bad.append(f"{b.name}: not equivalent to the reference")
            if full and res.test_accuracy < min_accuracy:
                bad.append(f"{b.name}: test accuracy {res.test_accuracy:.4f} < {min_accuracy}")
            writer.write(rec)
            rows.append(rec)
    # the run finished: a summary record (it has no conformance cases, so its counts are empty)
    writer.write({"record": "summary", "counts": {}, "finished": True, "trained": [r["backend"] for r in rows], "problems": bad})
    writer.close()

    t = Table(title=f"LeNet-5 on {dataset.name}: {total} steps, batch {batch_size}, lr {lr}, seed {seed}")
    for col in ("backend", "dtype", "test acc", "final loss", "first step over tol", "max loss rel diff", "weight rel diff", "images/s"):
        t.add_column(col)
    for r in rows:
        eq = r.get("equivalence")
        t.add_row(r["backend"], r["dtype"], f"{r['test_accuracy']:.4f}", f"{r['losses'][-1]:.4f}" if r["losses"] else "-",
                  "-" if eq is None else ("none" if eq["first_exceed_step"] is None else str(eq["first_exceed_step"])),
                  "-" if eq is None else f"{eq['max_loss_rel_diff']:.2e}", "-" if eq is None else f"{eq['final_weight_rel_diff']:.2e}",
                  f"{r['images_per_second']:.0f}" if r.get("images_per_second") else "-")
    console.print(t)
    for msg in bad:
        console.print(f"[red]FAIL[/red] {msg}")
    click.echo(f"results: {out}", err=True)
    if bad:
        sys.exit(1)
