"""The short LeNet-5 equivalence check of `convspec run --profile full`: a few SGD steps of LeNet-5 on
one backend against the float64 reference, as one "case" record (op "lenet", source "lenet")."""

from __future__ import annotations

import time
from dataclasses import dataclass

from convspec.api.backend import Unsupported

from ..records import CaseResult, format_exception
from . import data as D
from . import equivalence as E
from . import train as T

_REFERENCE_CACHE: dict = {}


def _reference(cfg, dataset):
    key = (cfg, dataset.name)
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = T.train(T.ReferenceBackend(), dataset, cfg, dtype="float64", evaluate_epochs=False)
    return _REFERENCE_CACHE[key]


@dataclass(frozen=True)
class LenetCase:
    """The identity of one LeNet check: a case kind of its own (op "lenet", source "lenet"), whose repro
    command is `convspec train`."""

    steps: int
    seed: int
    batch_size: int
    dtype: str
    op: str = "lenet"
    source: str = "lenet"

    @classmethod
    def for_backend(cls, backend, *, steps=30, seed=0, batch_size=16, dtype=None) -> "LenetCase":
        dtype = dtype or ("float32" if "float32" in getattr(backend, "dtypes", ()) else backend.dtypes[0])
        return cls(steps, seed, batch_size, dtype)

    @property
    def id(self) -> str:
        return f"lenet:lenet5[digits,steps={self.steps},batch={self.batch_size},seed={self.seed},{self.dtype}]"

    def spec(self) -> dict:
        return {
            "op": "lenet",
            "steps": self.steps,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "dtype": self.dtype,
        }

    def repro_command(self, backend: str, plugins=()) -> str:
        opts = "".join(f" -p {p}" for p in plugins)
        return (
            f"convspec train{opts} --backend {backend} --steps {self.steps} --batch-size {self.batch_size} "
            f"--seed {self.seed} --dtype {self.dtype}"
        )


def lenet_record(
    backend,
    *,
    steps: int = 30,
    seed: int = 0,
    batch_size: int = 16,
    dtype: str | None = None,
    status: str = "",
    message: str = "",
    seconds: float = 0.0,
) -> dict:
    """One LeNet check's case record (without an outcome when status is empty: the engine uses that to
    skip a recorded check on --resume)."""
    case = LenetCase.for_backend(backend, steps=steps, seed=seed, batch_size=batch_size, dtype=dtype)
    return CaseResult(case, status, backend=backend.name, message=message, seconds=seconds).to_dict()


def equivalence_check(
    backend, *, steps: int = 30, seed: int = 0, batch_size: int = 16, dtype: str | None = None, dataset=None
) -> dict:
    """Train `steps` SGD steps on `backend` (in `dtype`, default float32 when supported, else its first
    dtype) and on the reference; pass when every step's loss and the final weights agree within the
    tolerances of convspec.conformance.lenet.equivalence."""
    t0 = time.perf_counter()
    case = LenetCase.for_backend(backend, steps=steps, seed=seed, batch_size=batch_size, dtype=dtype)
    dtype = case.dtype

    def done(status, message="", checks=(), **extra):
        return CaseResult(
            case,
            status,
            backend=backend.name,
            checks=list(checks),
            message=message,
            seconds=time.perf_counter() - t0,
            extra=extra,
        ).to_dict()

    if dtype not in E.LOSS_RTOL:
        return done("unsupported", f"no LeNet tolerance for dtype {dtype}")
    missing = [
        op
        for op in ("conv", "relu", "max_pool", "flatten", "linear", "cross_entropy")
        if not callable(getattr(backend, op, None)) or not callable(getattr(backend, op + "_backward", None))
    ]
    if missing:
        return done("unsupported", f"LeNet-5 needs {', '.join(o + '/' + o + '_backward' for o in missing)}")
    try:
        dataset = dataset or D.load_digits_32()
        cfg = T.TrainConfig(epochs=1, batch_size=batch_size, lr=0.05, seed=seed, max_steps=steps)
        ref = _reference(cfg, dataset)
        run = T.train(backend, dataset, cfg, dtype=dtype, evaluate_epochs=False)
    except Unsupported as exc:  # an op the backend has but does not support yet (a fresh scaffold's stubs)
        return done("unsupported", f"LeNet-5 needs an op the backend does not support: {exc}")
    except Exception as exc:
        return done("error", format_exception(exc))
    eq = E.compare(run, ref)
    loss_ok = eq["first_exceed_step"] is None or eq["first_exceed_step"] > eq["track_steps"]
    checks = [
        {
            "what": f"loss per step (first {eq['track_steps']})",
            "status": "pass" if loss_ok else "fail",
            "bound_ratio": eq["max_loss_rel_diff_tracked"] / eq["loss_rtol"],
        }
    ]
    if eq["weight_checked"]:
        checks.append(
            {
                "what": "final weights",
                "status": "pass" if eq["final_weight_rel_diff"] <= eq["weight_rtol"] else "fail",
                "bound_ratio": eq["final_weight_rel_diff"] / eq["weight_rtol"],
            }
        )
    for c in checks:
        if c["status"] == "fail":
            c["mismatch"] = {
                "first_exceed_step": eq["first_exceed_step"],
                "final_weight_rel_diff": eq["final_weight_rel_diff"],
            }
    status = "pass" if eq["equivalent"] else "fail"
    message = "" if status == "pass" else "LeNet-5 training leaves the reference: " + "; ".join(eq["failures"])
    return done(status, message, checks, lenet=eq)
