"""Evaluating one case on one backend: run the reference and the backend, compare forward, index and
every gradient, and return the case's result record (JSON-ready)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from convspec import SpecError
from convspec.api.backend import Unsupported, as_deviation, flushes_subnormals, product_roundoff

from . import registry, tolerance
from .cases import Case
from .compare import Check, compare
from .records import CaseResult, Status, format_exception
from .records import repro as repro  # noqa: PLC0414  (re-exported: the older import path)


@dataclass(frozen=True)
class Reference:
    """What the reference says about a case: its inputs in the case dtype, the forward, the index output,
    the incoming gradient, the gradients, and the error bounds of the forward and of each gradient."""

    inputs: list
    forward: np.ndarray
    indices: np.ndarray | None
    grad_out: np.ndarray
    grads: tuple
    forward_bound: object
    grad_bounds: list


def reference_result(case: Case, product_roundoff: float = 0.0, flush: bool = False) -> Reference:
    """The reference's result for `case`. product_roundoff, flush: see tolerance.bounds (a backend's
    TF32-like tier; a backend that flushes subnormals)."""
    info = registry.get(case.op)
    inputs = case.inputs()
    ref_in = [_float64(a) for a in inputs]
    y = info.forward(*ref_in, **case.params)
    idx = info.index(*ref_in, **case.params) if info.index_op else None
    g = g64 = None
    grads: tuple = ()
    if info.differentiable:
        g = case.grad_output(np.shape(y))
        g64 = g.astype(np.float64)
        grads = tuple(info.backward(g64, *ref_in, **case.params))
    fb, gb = tolerance.bounds(case.op, ref_in, case.params, g64, case.dtype, product_roundoff, flush)
    return Reference(inputs, y, idx, g, grads, fb, gb)


def _float64(a):
    """A reference input in float64 (sequences element by element; integer inputs as they are)."""
    if isinstance(a, (list, tuple)):
        return [_float64(x) for x in a]
    return None if a is None else (a.astype(np.float64) if a.dtype.kind == "f" else a)


def _to_backend(backend, a):
    if isinstance(a, (list, tuple)):
        return [_to_backend(backend, x) for x in a]
    return None if a is None else backend.from_numpy(a)


def _call(backend, info, part, args, params):
    fn = info.backend_call(backend, part)
    if fn is None:
        what = {"forward": info.name, "backward": info.backward_name, "indices": info.index_op}[part]
        needs = f" (it composes {', '.join(info.requires_for(part))})" if info.compose else ""
        raise Unsupported(f"backend has no {what}{needs}")
    out = fn(*args, **params)
    backend.synchronize()
    return out


def _to_numpy(backend, a):
    return None if a is None else backend.to_numpy(a)


def evaluate(backend, case: Case, reference=None, *, plugins=()) -> dict:
    """Run `case` on `backend`. `reference` may pass a precomputed reference_result(case) (or the
    SpecError it raised); otherwise it is computed here and its time is recorded. plugins: the run's -p
    modules, for the repro command."""
    t0 = time.perf_counter()
    ref_seconds = 0.0
    info = registry.get(case.op)
    checks: list[Check] = []

    def done(status, message="", deviation=None):
        return CaseResult(
            case,
            status,
            backend=backend.name,
            plugins=plugins,
            checks=checks,
            message=message,
            deviation=deviation,
            seconds=time.perf_counter() - t0,
            reference_seconds=ref_seconds,
        ).to_dict()

    if case.dtype not in backend.dtypes:
        return done(
            Status.UNSUPPORTED,
            f"dtype {case.dtype} not supported by {backend.name} (supports {', '.join(backend.dtypes)})",
        )
    if info.backend_call(backend, "forward") is None:
        needs = f" (it composes {', '.join(info.requires_for('forward'))})" if info.compose else ""
        return done(Status.UNSUPPORTED, f"op {case.op} not implemented{needs}")
    try:
        if reference is None:
            t_ref = time.perf_counter()
            reference = reference_result(case, product_roundoff(backend), flushes_subnormals(backend))
            ref_seconds = time.perf_counter() - t_ref
        if isinstance(reference, SpecError):
            raise reference
        ref: Reference = reference
    except SpecError as exc:
        return _rejects(backend, case, info, exc, checks, done)

    try:
        bx = [_to_backend(backend, a) for a in ref.inputs]
        raw = _call(backend, info, "forward", bx, case.params)
        if info.outputs:  # several outputs: a sequence of that length, each checked on its own
            if not isinstance(raw, (list, tuple)) or len(raw) != len(info.outputs):
                got_n = len(raw) if isinstance(raw, (list, tuple)) else f"a {type(raw).__name__}"
                checks.append(
                    Check(
                        "forward",
                        "fail",
                        message=f"returned {got_n}, expected {len(info.outputs)} outputs ({', '.join(info.outputs)})",
                    )
                )
                return _finish(backend, case, checks, done)
            outs = [_to_numpy(backend, a) for a in raw]
        else:
            outs = [_to_numpy(backend, raw)]
    except Unsupported as exc:
        return done(Status.UNSUPPORTED, str(exc) or f"{case.op} unsupported")
    except Exception as exc:
        return done(Status.ERROR, format_exception(exc))
    if info.outputs:
        for name, out, want, bound in zip(info.outputs, outs, ref.forward, ref.forward_bound):
            checks.append(compare(f"forward {name}", out, want, bound, case.dtype, exact=case.exact))
        return _finish(backend, case, checks, done)  # a state update: no gradient
    out = outs[0]
    forward = compare("forward", out, ref.forward, ref.forward_bound, case.dtype, exact=case.exact)
    checks.append(forward)
    shape_ok = np.shape(out) == np.shape(ref.forward) if forward.status == "fail" else True

    if info.index_op:
        try:
            got = _to_numpy(backend, _call(backend, info, "indices", bx, case.params))
            checks.append(compare("indices", got, ref.indices, 0, case.dtype, exact=True))
        except Unsupported as exc:
            checks.append(Check("indices", "unsupported", message=str(exc)))
        except Exception as exc:
            checks.append(Check("indices", "error", message=format_exception(exc)))

    if not shape_ok:  # the backward takes a gradient of the forward's shape: it cannot be asked
        checks.append(
            Check(
                "backward",
                "skipped",
                message=f"not run: the forward's output has shape "
                f"{np.shape(out)}, not {np.shape(ref.forward)}, so no gradient of its shape exists",
            )
        )
        return _finish(backend, case, checks, done)
    try:
        got_grads = tuple(_call(backend, info, "backward", [backend.from_numpy(ref.grad_out)] + bx, case.params))
        present = [_to_numpy(backend, a) for a in got_grads]
        names = info.gradient_names(ref.inputs)
        if len(present) != len(names):
            checks.append(
                Check(
                    "backward",
                    "fail",
                    message=f"returned {len(present)} gradients, expected {len(names)} ({', '.join(names)})",
                )
            )
        else:
            for name, ref_g, bound, got in zip(names, ref.grads, ref.grad_bounds, present):
                if ref_g is not None:
                    checks.append(compare(f"grad {name}", got, ref_g, bound, case.dtype, exact=case.exact))
    except Unsupported as exc:
        checks.append(Check("backward", "unsupported", message=str(exc)))
    except Exception as exc:
        checks.append(Check("backward", "error", message=format_exception(exc)))

    return _finish(backend, case, checks, done)


def _rejects(backend, case, info, spec_error, checks, done) -> dict:
    """A case the spec rejects: a conforming backend refuses it too (raises). One that computes a result
    instead fails the check "rejects" (a check of its own kind: error behaviour, not a numeric failure)."""
    if info.compose is not None:  # a block rejects what its ops reject: checked op by op
        return done(Status.INVALID, f"the spec rejects this case: {spec_error}")
    try:
        inputs = case.inputs()
        bx = [_to_backend(backend, a) for a in inputs]
        _call(backend, info, "forward", bx, case.params)
    except Unsupported as exc:
        return done(Status.UNSUPPORTED, str(exc) or f"{case.op} unsupported")
    except Exception as exc:  # any refusal will do: frameworks raise their own error classes
        unknown = [k for k in case.params if isinstance(exc, TypeError) and f"keyword argument '{k}'" in str(exc)]
        if unknown:  # refused for not taking the parameter at all (e.g. strict): that tells nothing
            return done(Status.UNSUPPORTED, f"{case.op} does not take the parameter {unknown[0]!r}: {exc}")
        checks.append(
            Check(
                "rejects",
                "pass",
                message=f"the spec rejects this case ({spec_error}); the backend "
                f"refused it too: {type(exc).__name__}: {str(exc)[:300]}",
            )
        )
        return _finish(backend, case, checks, done)
    checks.append(
        Check("rejects", "fail", message=f"the backend computed a result for a case the spec rejects: {spec_error}")
    )
    return _finish(backend, case, checks, done)


def _finish(backend, case, checks, done) -> dict:
    """The case's status from its checks, with a declared deviation applied."""
    statuses = {c.status for c in checks}
    if "error" in statuses:
        return done(Status.ERROR)
    if "fail" in statuses:
        declared = as_deviation(backend.deviation(case))
        if declared is None:
            return done(Status.FAIL)
        failed = {c.what for c in checks if c.status == "fail"}
        # a declared deviation excuses the checks it names (all, when it names none), nothing else
        if declared.checks is None or failed <= set(declared.checks):
            return done(Status.DEVIATION, deviation=declared.reason)
        return done(
            Status.FAIL,
            f"fails beyond the declared deviation (which covers "
            f"{', '.join(sorted(declared.checks))}): {', '.join(sorted(failed - set(declared.checks)))}",
            deviation=declared.reason,
        )
    if "unsupported" in statuses:
        return done(Status.UNSUPPORTED)
    return done(Status.PASS)
