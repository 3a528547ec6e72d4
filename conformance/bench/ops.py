"""`convspec bench --ops`: LeNet-5's other ops (relu, max_pool, flatten, linear, cross_entropy), forward and
backward, on every backend side by side at the network's batch-64 shapes, the same way as the conv layers:
through the backend contract only (inputs converted outside the clock, synchronize() inside it), the
backends interleaved with the order rotating each round, after warm-up calls, medians and [min, median,
max] of the rounds, and the rounds repeated with the competing load on when the run has one.

The result's ``ops`` is a list of ``{name, op, params, shapes, results: {backend: {seconds, samples, spread,
ratio_to_baseline, loaded?}}}``, plus per backend the geometric mean of the forward+backward time ratios.
"""

from __future__ import annotations

import math

import numpy as np

from .records import timing_record
from .timing import prime, timer_for

BATCH = 64

#: (label, op, input shapes by role, keyword parameters): LeNet-5's non-conv layers at batch 64
OPS = (
    ("C1 relu 6@28", "relu", {"x": (BATCH, 6, 28, 28)}, {}),
    ("S2 max_pool 2x2/2 6@28", "max_pool", {"x": (BATCH, 6, 28, 28)}, {"kernel_size": 2, "stride": 2}),
    ("C3 relu 16@10", "relu", {"x": (BATCH, 16, 10, 10)}, {}),
    ("S4 max_pool 2x2/2 16@10", "max_pool", {"x": (BATCH, 16, 10, 10)}, {"kernel_size": 2, "stride": 2}),
    ("flatten 16x5x5", "flatten", {"x": (BATCH, 16, 5, 5)}, {}),
    ("F5 linear 400-120", "linear", {"x": (BATCH, 400), "w": (120, 400), "b": (120,)}, {}),
    ("F6 linear 120-84", "linear", {"x": (BATCH, 120), "w": (84, 120), "b": (84,)}, {}),
    ("OUT linear 84-10", "linear", {"x": (BATCH, 84), "w": (10, 84), "b": (10,)}, {}),
    ("cross_entropy 10", "cross_entropy", {"z": (BATCH, 10)}, {}),
)


def _inputs(op, shapes, params, seed, dtype):
    """Seeded NumPy inputs of the op, its grad_out and the call's forward and backward argument lists."""
    from convspec import reference as R

    rng = np.random.default_rng(seed)
    arrays = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    if op == "cross_entropy":
        labels = rng.integers(0, shapes["z"][1], shapes["z"][0])
        return [arrays["z"], labels], [np.asarray(1.0, dtype=dtype), arrays["z"], labels]
    args = list(arrays.values())
    y = getattr(R, op)(*[a.astype(np.float64) for a in args], **params)
    g = rng.standard_normal(np.shape(y)).astype(dtype)
    return args, [g] + args


class _OpCase:
    def __init__(self, backend, op, shapes, params, seed, dtype):
        fwd, bwd = _inputs(op, shapes, params, seed, dtype)
        conv = backend.from_numpy
        self.backend, self.params = backend, params
        self.fwd_args, self.bwd_args = [conv(a) for a in fwd], [conv(a) for a in bwd]
        self.fwd_fn, self.bwd_fn = getattr(backend, op), getattr(backend, op + "_backward")
        self.timer = timer_for(backend)
        self.times = {False: {"forward": [], "backward": []}, True: {"forward": [], "backward": []}}

    def run(self, record: bool, loaded: bool = False):
        prime(lambda: self.fwd_fn(*self.fwd_args, **self.params))  # the timed calls back to back (timing.prime)
        for phase, fn, args in (("forward", self.fwd_fn, self.fwd_args), ("backward", self.bwd_fn, self.bwd_args)):
            t = self.timer(lambda: fn(*args, **self.params))
            if record:
                self.times[loaded][phase].append(t)


def _geomean(values):
    vals = [v for v in values if v and v > 0 and math.isfinite(v)]
    return math.exp(sum(map(math.log, vals)) / len(vals)) if vals else None


def bench_ops(backends, *, repeats, warmup, seed, dtype, baseline, load=None, progress=None) -> dict:
    """Time LeNet-5's other ops on every backend, interleaved (see the module docstring)."""
    records = []
    for label, op, shapes, params in OPS:
        cases, errors = [], {}
        for bk in backends:
            if not (callable(getattr(bk, op, None)) and callable(getattr(bk, op + "_backward", None))):
                errors[bk.name] = f"no {op} / {op}_backward"
                continue
            cases.append(_OpCase(bk, op, shapes, params, seed, dtype))
        for _ in range(warmup):
            for c in cases:
                if c.backend.name not in errors:
                    try:
                        c.run(record=False)
                    except Exception as exc:  # noqa: BLE001  (one backend failing must not stop the others)
                        errors[c.backend.name] = f"{type(exc).__name__}: {exc}"
        for r in range(repeats):
            order = cases[r % max(len(cases), 1) :] + cases[: r % max(len(cases), 1)]
            for loaded in (False, True) if load is not None else (False,):
                if loaded:
                    load.on()
                try:
                    for c in order:
                        if c.backend.name not in errors:
                            try:
                                c.run(record=True, loaded=loaded)
                            except Exception as exc:  # noqa: BLE001
                                errors[c.backend.name] = f"{type(exc).__name__}: {exc}"
                finally:
                    if loaded:
                        load.off()
        results = {name: {"error": e} for name, e in errors.items()}
        nothing = {"forward": 0, "backward": 0, "total": 0}
        for c in cases:
            name = c.backend.name
            if name in errors:
                continue
            results[name] = timing_record(BATCH, c.timer.kind, c.times[False], nothing)
            results[name].pop("gflops")
            if load is not None:
                results[name]["loaded"] = timing_record(BATCH, c.timer.kind, c.times[True], nothing)
                results[name]["loaded"].pop("gflops")
        for which in ("quiet", "loaded"):
            base = results.get(baseline, {})
            base = base.get("loaded", {}) if which == "loaded" else base
            for rec in results.values():
                rec = rec.get("loaded", {}) if which == "loaded" else rec
                if "seconds" in rec and "seconds" in base:
                    rec["ratio_to_baseline"] = {k: v / base["seconds"][k] for k, v in rec["seconds"].items()}
        records.append(
            {
                "name": label,
                "op": op,
                "params": params,
                "shapes": {k: list(v) for k, v in shapes.items()},
                "results": results,
            }
        )
        if progress:
            progress(None, records[-1])
    summary = {}
    for bk in backends:
        ratios = [r["results"].get(bk.name, {}).get("ratio_to_baseline") for r in records]
        loaded = [(r["results"].get(bk.name, {}).get("loaded") or {}).get("ratio_to_baseline") for r in records]
        summary[bk.name] = {
            "geomean_ratio_total": _geomean(x["total"] for x in ratios if x),
            "loaded_geomean_ratio_total": _geomean(x["total"] for x in loaded if x),
        }
    return {"batch": BATCH, "baseline": baseline, "layers": records, "summary": summary}
