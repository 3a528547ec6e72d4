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

from ..worker import run_isolated
from .common import availabilities, console, load_registry


class UsageFail(click.ClickException):
    exit_code = 2


DEFAULT_OUT = "train.jsonl"


@click.command("train")
@click.option(
    "-b",
    "--backend",
    "names",
    multiple=True,
    metavar="NAME",
    help="Backend to train on (repeatable; default: every available one).",
)
@click.option("--epochs", type=click.IntRange(1), default=None, help="Epochs (default 6).")
@click.option(
    "--steps", type=click.IntRange(1), default=None, help="Stop after this many SGD steps (a short equivalence run)."
)
@click.option(
    "--model",
    type=click.Choice(["lenet", "resnet"]),
    default="lenet",
    show_default=True,
    help="LeNet-5, or the small ResNet (two basic blocks with batch norm in training mode).",
)
@click.option(
    "--batch-size", type=click.IntRange(1), default=None, help="Minibatch size [default: 32 for lenet, 8 for resnet]."
)
@click.option(
    "--lr", type=click.FloatRange(min=0, min_open=True), default=0.05, show_default=True, help="SGD learning rate."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the initial weights and of the minibatch order."
)
@click.option(
    "--dtype", default="float32", show_default=True, help="Precision of the backend runs (the reference is float64)."
)
@click.option(
    "--mnist",
    "mnist_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Train on MNIST's IDX files in DIR instead of scikit-learn's digits.",
)
@click.option(
    "--min-accuracy",
    type=click.FloatRange(0, 1),
    default=0.95,
    show_default=True,
    help="Test accuracy every full run must reach.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=DEFAULT_OUT,
    show_default=True,
    help="Results file (JSON Lines, appended).",
)
@click.option(
    "--timeout", type=float, default=3600.0, show_default=True, help="Seconds one backend's training may take."
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option(
    "-p", "--plugin", multiple=True, metavar="MODULE", help="Load a plugin module that is not installed (repeatable)."
)
def COMMAND(
    names, epochs, steps, model, batch_size, lr, seed, dtype, mnist_dir, min_accuracy, out, timeout, no_progress, plugin
):
    """Train LeNet-5 (or the small ResNet) on each backend and compare it with the float64 reference."""
    import math

    from convspec import SpecError

    from ..lenet import data as D
    from ..lenet import equivalence as E
    from ..lenet import train as T
    from ..results import ResultWriter, check_out, run_record

    if dtype not in E.LOSS_RTOL:
        raise click.BadParameter(f"unknown dtype {dtype!r}; valid: {', '.join(E.LOSS_RTOL)}", param_hint="--dtype")
    if not (math.isfinite(timeout) and 0 < timeout <= 86400):
        raise click.BadParameter(
            f"must be a finite number of seconds, > 0 and at most 86400, got {timeout!r}", param_hint="--timeout"
        )
    try:  # appended to, never truncated; refused now if it cannot be written
        check_out(out, resume=True)
    except SpecError as exc:
        raise UsageFail(f"--out: {exc}") from None
    reg = load_registry(plugin, names)
    try:
        dataset = D.load_mnist(mnist_dir) if mnist_dir else D.load_digits_32()
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None

    # the small ResNet's float32 runs stay within LeNet's loss tolerance at batch 8 (at 32, relu sign flips
    # after batch norm leave it within ~15 steps even on accurate backends: conformance/blocks/resnet_small.py)
    batch_size = batch_size or (8 if model == "resnet" else 32)
    train_fn, title = _MODELS[model]
    cfg = T.TrainConfig(epochs=epochs or T.TrainConfig.epochs, batch_size=batch_size, lr=lr, seed=seed, max_steps=steps)
    selected = [reg.backends[n] for n in (names or reg.backends)]
    runnable, skipped = [], []
    reasons = availabilities(selected)
    for b in selected:
        reason = reasons[b.name]
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
    try:
        writer = ResultWriter(out, resume=True)
    except SpecError as exc:
        raise UsageFail(f"--out: {exc}") from None
    if new:
        writer.write(
            run_record(
                profile="train",
                seed=seed,
                shard=(1, 1),
                ops=(model,),
                backends=[b.name for b in runnable],
                argv=sys.argv[1:],
            )
        )
    for name, reason in skipped:
        writer.write({"record": "train", "backend": name, "dtype": dtype, "skipped": reason})

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    err = console(stderr=True)
    total = T.n_steps(len(dataset.y_train), cfg)
    progress = Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=no_progress,
    )
    bad = []
    rows = []
    try:
        with progress:
            task = progress.add_task("reference float64", total=total, loss="-")
            reference = train_fn()(
                T.ReferenceBackend(),
                dataset,
                cfg,
                dtype="float64",
                on_step=lambda s, loss: progress.update(task, advance=1, loss=f"{loss:.4f}"),
            )
            rec = {"record": "train", "dataset": dataset.describe(), **reference.record(), "verdict": "reference"}
            writer.write(rec)
            rows.append(rec)
            for b in runnable:
                task = progress.add_task(f"{b.name} {dtype}", total=total, loss="-")
                kind, payload = run_isolated(
                    _train_one,
                    (b, dataset, cfg, dtype, model),
                    timeout,
                    on_message=lambda m, task=task: progress.update(task, advance=1, loss=f"{m:.4f}"),
                    capture=True,
                )
                if kind != "ok":
                    message = payload if kind != "error" else payload.strip().splitlines()[-1]
                    rec = {
                        "record": "train",
                        "backend": b.name,
                        "dtype": dtype,
                        "status": kind,
                        "verdict": kind,
                        "message": message,
                    }
                    if kind == "error":
                        rec["traceback"] = payload
                    if kind != "unsupported":
                        bad.append(f"{b.name}: {kind}: {message}")
                    writer.write(rec)
                    rows.append(rec)
                    continue
                res, printed = payload
                rec = {"record": "train", "dataset": dataset.describe(), **res.record()}
                if printed:
                    rec["stdout"] = printed
                rec["equivalence"] = E.compare(
                    res, reference, track=E.RESNET_TRACK_STEPS if model == "resnet" else None
                )
                ok = rec["equivalence"]["equivalent"]
                rec["verdict"] = "equivalent" if ok else "not equivalent"
                if not ok:
                    bad.append(f"{b.name}: not equivalent to the reference")
                if steps is None and res.test_accuracy < min_accuracy:
                    rec["verdict"] += f", accuracy < {min_accuracy}"
                    bad.append(f"{b.name}: test accuracy {res.test_accuracy:.4f} < {min_accuracy}")
                writer.write(rec)
                rows.append(rec)
    except KeyboardInterrupt:
        writer.close()
        err.print(f"interrupted: the {len(rows)} training runs finished so far are kept in {out}", highlight=False)
        sys.exit(130)
    # the run finished: a summary record (it has no conformance cases, so its counts are empty)
    writer.write(
        {"record": "summary", "counts": {}, "finished": True, "trained": [r["backend"] for r in rows], "problems": bad}
    )
    writer.close()

    t = Table(title=f"{title} on {dataset.name}: {total} steps, batch {batch_size}, lr {lr}, seed {seed}")
    for col in (
        "backend",
        "dtype",
        "verdict",
        "test acc",
        "final loss",
        "first step over tol",
        "max loss rel diff",
        "weight rel diff",
        "images/s",
    ):
        t.add_column(col)
    for r in rows:
        eq = r.get("equivalence")
        if "losses" not in r:
            t.add_row(r["backend"], r["dtype"], f"[red]{r['verdict']}[/red]: {r['message']}", *("-",) * 6)
            continue
        verdict = r["verdict"] if r["verdict"] in ("reference", "equivalent") else f"[red]{r['verdict']}[/red]"
        t.add_row(
            r["backend"],
            r["dtype"],
            verdict,
            f"{r['test_accuracy']:.4f}",
            f"{r['losses'][-1]:.4f}" if r["losses"] else "-",
            "-" if eq is None else ("none" if eq["first_exceed_step"] is None else str(eq["first_exceed_step"])),
            "-" if eq is None else f"{eq['max_loss_rel_diff']:.2e}",
            "-" if eq is None else f"{eq['final_weight_rel_diff']:.2e}",
            f"{r['images_per_second']:.0f}" if r.get("images_per_second") else "-",
        )
    out_console = console()
    out_console.print(t)
    for msg in bad:
        out_console.print(f"[red]FAIL[/red] {msg}", highlight=False)
    click.echo(f"results: {out}")
    if bad:
        sys.exit(1)


def _lenet():
    from ..lenet import train as T

    return T.train


def _resnet():
    from ..blocks import resnet_small as RS

    return RS.train


#: model -> (the training function, its name in the table)
_MODELS = {"lenet": (_lenet, "LeNet-5"), "resnet": (_resnet, "small ResNet")}
_NEEDS = {
    "lenet": ("conv", "relu", "max_pool", "flatten", "linear", "cross_entropy"),
    "resnet": ("conv", "batch_norm", "relu", "add", "avg_pool", "flatten", "linear", "cross_entropy"),
}


def _train_one(backend, dataset, cfg, dtype, model, send):
    """One backend's training, in its isolated worker (send(loss) after each step: the progress bar)."""
    from convspec.api.backend import Unsupported

    missing = [
        op
        for op in _NEEDS[model]
        if not callable(getattr(backend, op, None)) or not callable(getattr(backend, op + "_backward", None))
    ]
    if missing:
        what = _MODELS[model][1]
        raise Unsupported(f"{what} needs {', '.join(o + '/' + o + '_backward' for o in missing)}")
    return _MODELS[model][0]()(backend, dataset, cfg, dtype=dtype, on_step=lambda step, loss: send(loss))
