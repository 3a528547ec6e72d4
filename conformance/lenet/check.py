"""The short LeNet-5 equivalence check of `convspec run --profile full`: a few SGD steps of LeNet-5 on
one backend against the float64 reference, as one "case" record (op "lenet", source "lenet")."""
from __future__ import annotations

import time
import traceback

from . import data as D
from . import equivalence as E
from . import train as T

_REFERENCE_CACHE: dict = {}


def _reference(cfg, dataset):
    key = (cfg, dataset.name)
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = T.train(T.ReferenceBackend(), dataset, cfg, dtype="float64", evaluate_epochs=False)
    return _REFERENCE_CACHE[key]


def lenet_record(backend, *, steps: int = 30, seed: int = 0, batch_size: int = 16, dtype: str | None = None) -> dict:
    """The identity of one LeNet check on `backend`: its case record without an outcome (the engine
    also uses it for a check that timed out or crashed, and to skip a recorded one on --resume)."""
    dtype = dtype or ("float32" if "float32" in getattr(backend, "dtypes", ()) else backend.dtypes[0])
    return {
        "record": "case", "backend": backend.name, "case_id": f"lenet:lenet5[digits,steps={steps},batch={batch_size},seed={seed},{dtype}]",
        "op": "lenet", "source": "lenet", "dtype": dtype,
        "case": {"op": "lenet", "steps": steps, "batch_size": batch_size, "seed": seed, "dtype": dtype},
        "repro": f"convspec train --backend {backend.name} --steps {steps} --batch-size {batch_size} --seed {seed} --dtype {dtype}",
    }


def equivalence_check(backend, *, steps: int = 30, seed: int = 0, batch_size: int = 16, dtype: str | None = None, dataset=None) -> dict:
    """Train `steps` SGD steps on `backend` (in `dtype`, default float32 when supported, else its first
    dtype) and on the reference; pass when every step's loss and the final weights agree within the
    tolerances of convspec.conformance.lenet.equivalence."""
    t0 = time.perf_counter()
    rec = lenet_record(backend, steps=steps, seed=seed, batch_size=batch_size, dtype=dtype)
    dtype = rec["dtype"]

    def done(status, message="", checks=(), ratio=None, **extra):
        rec.update(status=status, checks=list(checks), bound_ratio=ratio, seconds=round(time.perf_counter() - t0, 6), **extra)
        if message:
            rec["message"] = message
        return rec

    if dtype not in E.LOSS_RTOL:
        return done("unsupported", f"no LeNet tolerance for dtype {dtype}")
    missing = [op for op in ("conv", "relu", "max_pool", "flatten", "linear", "cross_entropy") if not callable(getattr(backend, op, None)) or not callable(getattr(backend, op + "_backward", None))]
    if missing:
        return done("unsupported", f"LeNet-5 needs {', '.join(o + '/' + o + '_backward' for o in missing)}")
    try:
        dataset = dataset or D.load_digits_32()
        cfg = T.TrainConfig(epochs=1, batch_size=batch_size, lr=0.05, seed=seed, max_steps=steps)
        ref = _reference(cfg, dataset)
        run = T.train(backend, dataset, cfg, dtype=dtype, evaluate_epochs=False)
    except Exception as exc:
        return done("error", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:])
    eq = E.compare(run, ref)
    loss_ok = eq["first_exceed_step"] is None or eq["first_exceed_step"] > eq["track_steps"]
    checks = [{"what": f"loss per step (first {eq['track_steps']})", "status": "pass" if loss_ok else "fail",
               "bound_ratio": eq["max_loss_rel_diff_tracked"] / eq["loss_rtol"]}]
    if eq["weight_checked"]:
        checks.append({"what": "final weights", "status": "pass" if eq["final_weight_rel_diff"] <= eq["weight_rtol"] else "fail",
                       "bound_ratio": eq["final_weight_rel_diff"] / eq["weight_rtol"]})
    for c in checks:
        if c["status"] == "fail":
            c["mismatch"] = {"first_exceed_step": eq["first_exceed_step"], "final_weight_rel_diff": eq["final_weight_rel_diff"]}
    status = "pass" if eq["equivalent"] else "fail"
    message = "" if status == "pass" else "LeNet-5 training leaves the reference: " + "; ".join(eq["failures"])
    return done(status, message, checks, max(c["bound_ratio"] for c in checks), lenet=eq)
