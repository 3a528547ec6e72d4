"""Evaluating one case on one backend: run the reference and the backend, compare forward, index and
every gradient, and return a plain-dict result (JSON-ready)."""
from __future__ import annotations

import time
import traceback

import numpy as np

from convspec import SpecError
from convspec import reference as R

from . import tolerance
from convspec.api.backend import Unsupported, as_deviation, product_roundoff
from .cases import Case
from .compare import Check, compare
from .ops import OPS


def repro(backend_name: str, case: Case, plugins=()) -> str:
    """The one-line command that re-runs exactly this case (with the -p plugins the run loaded)."""
    opts = "".join(f" -p {p}" for p in plugins)
    return f"convspec run{opts} --backend {backend_name} --case '{case.to_json()}'"


def reference_result(case: Case, product_roundoff: float = 0.0):
    """(inputs in the case dtype, float64 reference inputs, forward, index output, grad_out, grads,
    forward bound, gradient bounds). product_roundoff: see tolerance.bounds (a backend's TF32-like
    tier)."""
    info = OPS[case.op]
    inputs = case.inputs()
    ref_in = [None if a is None else (a.astype(np.float64) if a.dtype.kind == "f" else a) for a in inputs]
    y = getattr(R, case.op)(*ref_in, **case.params)
    idx = getattr(R, info.index_op)(*ref_in, **case.params) if info.index_op else None
    g = case.grad_output(np.shape(y))
    g64 = g.astype(np.float64)
    grads = getattr(R, case.op + "_backward")(g64, *ref_in, **case.params)
    fb, gb = tolerance.bounds(case.op, ref_in, case.params, g64, case.dtype, product_roundoff)
    return inputs, y, idx, g, grads, fb, gb


def _call(backend, name, args, params):
    fn = getattr(backend, name, None)
    if not callable(fn):
        raise Unsupported(f"backend has no {name}")
    out = fn(*args, **params)
    backend.synchronize()
    return out


def _to_numpy(backend, a):
    return None if a is None else backend.to_numpy(a)


def evaluate(backend, case: Case, reference=None) -> dict:
    """Run `case` on `backend`. `reference` may pass a precomputed reference_result(case) (or the
    SpecError it raised); otherwise it is computed here and its time is recorded."""
    t0 = time.perf_counter()
    ref_seconds = 0.0
    info = OPS[case.op]
    res = {"case_id": case.id, "op": case.op, "source": case.source, "dtype": case.dtype, "case": case.spec(), "repro": repro(backend.name, case)}
    checks: list[Check] = []

    def done(status, message=""):
        res["status"] = status
        if message:
            res["message"] = message
        res["checks"] = [c.to_dict() for c in checks]
        ratios = [c.bound_ratio for c in checks if c.bound_ratio is not None]
        # a failed check without a finite ratio (shape, dtype, NaN where a number was due) leaves the
        # case's ratio unknown rather than 0
        res["bound_ratio"] = max(ratios) if ratios and all(np.isfinite(r) for r in ratios) else None
        res["seconds"] = round(time.perf_counter() - t0, 6)
        res["reference_seconds"] = round(ref_seconds, 6)
        return res

    if case.dtype not in backend.dtypes:
        return done("unsupported", f"dtype {case.dtype} not supported by {backend.name} (supports {', '.join(backend.dtypes)})")
    if not callable(getattr(backend, case.op, None)):
        return done("unsupported", f"op {case.op} not implemented")
    try:
        if reference is None:
            t_ref = time.perf_counter()
            reference = reference_result(case, product_roundoff(backend))
            ref_seconds = time.perf_counter() - t_ref
        if isinstance(reference, SpecError):
            raise reference
        inputs, y, idx, g, grads, fb, gb = reference
    except SpecError as exc:
        return done("invalid", f"the spec rejects this case: {exc}")

    try:
        bx = [None if a is None else backend.from_numpy(a) for a in inputs]
        out = _to_numpy(backend, _call(backend, case.op, bx, case.params))
    except Unsupported as exc:
        return done("unsupported", str(exc) or f"{case.op} unsupported")
    except Exception as exc:
        return done("error", _trace(exc))
    checks.append(compare("forward", out, y, fb, case.dtype, exact=case.exact))

    if info.index_op:
        try:
            got = _to_numpy(backend, _call(backend, info.index_op, bx, case.params))
            checks.append(compare("indices", got, idx, 0, case.dtype, exact=True))
        except Unsupported as exc:
            checks.append(Check("indices", "unsupported", message=str(exc)))
        except Exception as exc:
            checks.append(Check("indices", "error", message=_trace(exc)))

    try:
        got_grads = _call(backend, case.op + "_backward", [backend.from_numpy(g)] + bx, case.params)
        got_grads = tuple(got_grads)
        want = [(name, grads[i], gb[i]) for i, name in enumerate(info.differentiable) if grads[i] is not None]
        present = [_to_numpy(backend, a) for a in got_grads]
        if len(present) != len(info.differentiable):
            checks.append(Check("backward", "fail", message=f"returned {len(present)} gradients, expected {len(info.differentiable)} ({', '.join(info.differentiable)})"))
        else:
            for (name, ref_g, bound), got in zip(want, [p for p, r in zip(present, grads) if r is not None]):
                checks.append(compare(f"grad {name}", got, ref_g, bound, case.dtype, exact=case.exact))
    except Unsupported as exc:
        checks.append(Check("backward", "unsupported", message=str(exc)))
    except Exception as exc:
        checks.append(Check("backward", "error", message=_trace(exc)))

    statuses = {c.status for c in checks}
    if "error" in statuses:
        status = "error"
    elif "fail" in statuses:
        status = "fail"
        declared = as_deviation(backend.deviation(case))
        if declared is not None:
            res["deviation"] = declared.reason
            failed = {c.what for c in checks if c.status == "fail"}
            # a declared deviation excuses the checks it names (all, when it names none), nothing else
            if declared.checks is None or failed <= set(declared.checks):
                status = "deviation"
            else:
                res["message"] = f"fails beyond the declared deviation (which covers {', '.join(sorted(declared.checks))}): {', '.join(sorted(failed - set(declared.checks)))}"
    elif "unsupported" in statuses:
        status = "unsupported"
    else:
        status = "pass"
    return done(status)


def _trace(exc) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]
