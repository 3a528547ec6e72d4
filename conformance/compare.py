"""Comparing a backend's array with the reference's under an error bound."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Check:
    """The outcome of one comparison (a forward output, an index output, or one gradient)."""

    what: str  # "forward", "indices", "grad x", ...
    status: str  # pass | fail | unsupported | error
    bound_ratio: float | None = None  # max |got - expected| / bound (0 when exact and equal)
    mismatch: dict | None = None  # first mismatching element: index, expected, got, bound
    message: str = ""

    def to_dict(self) -> dict:
        d = {"what": self.what, "status": self.status}
        if self.bound_ratio is not None:
            d["bound_ratio"] = _num(self.bound_ratio)
        if self.mismatch:
            d["mismatch"] = self.mismatch
        if self.message:
            d["message"] = self.message
        return d


def _num(v):
    v = float(v)
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def compare(what: str, got, expected: np.ndarray, bound, dtype: str, *, exact: bool = False) -> Check:
    """got within bound of expected, elementwise. NaN must meet NaN, infinities must be equal.

    exact: got must equal expected rounded to dtype, bit for bit (index outputs, exact cases)."""
    expected = np.asarray(expected)
    try:
        got = np.asarray(got)
    except Exception as exc:  # a backend returning something that is not an array
        return Check(what, "fail", message=f"output is not an array: {exc!r}")
    if got.shape != expected.shape:
        return Check(what, "fail", message=f"shape {got.shape} != expected {expected.shape}")
    if expected.dtype.kind in "iu":  # index outputs: integers, equal
        if got.dtype.kind not in "iu":
            return Check(what, "fail", message=f"dtype {got.dtype}: indices must be integers")
        bad = got != expected
        return _result(what, bad, got, expected, np.zeros(expected.shape), ratio=0.0 if not bad.any() else np.inf)
    if got.dtype != np.dtype(dtype):
        return Check(what, "fail", message=f"dtype {got.dtype} != expected {dtype}")
    exp = expected.astype(np.float64)
    g64 = got.astype(np.float64)
    nan_e, nan_g = np.isnan(exp), np.isnan(g64)
    if exact:
        target = exp.astype(dtype).astype(np.float64)
        bad = (nan_e != nan_g) | (~nan_e & (g64 != target))
        return _result(what, bad, g64, target, np.zeros(exp.shape), ratio=0.0 if not bad.any() else np.inf)
    bnd = np.broadcast_to(np.asarray(bound, dtype=np.float64), exp.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(g64 - exp)
        inf_e = np.isinf(exp)
        err = np.where(inf_e | nan_e, np.where((g64 == exp) | (nan_e & nan_g), 0.0, np.inf), err)
        # a NaN or an infinity where the spec has a finite number fails whatever the bound
        err = np.where(~np.isfinite(g64) & np.isfinite(exp), np.inf, err)
        bad = (err > bnd) | np.isinf(err)
        ratio = np.where(bnd > 0, err / np.where(bnd > 0, bnd, 1), np.where(err > 0, np.inf, 0.0))
    return _result(what, bad, g64, exp, bnd, ratio=float(ratio.max()) if ratio.size else 0.0)


def _result(what, bad, got, expected, bound, *, ratio) -> Check:
    if not bad.any():
        return Check(what, "pass", bound_ratio=ratio)
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return Check(
        what,
        "fail",
        bound_ratio=ratio,
        mismatch={
            "index": list(idx),
            "expected": _num(expected[idx]),
            "got": _num(got[idx]),
            "bound": _num(bound[idx]),
            "count": int(bad.sum()),
            "of": int(bad.size),
        },
    )
