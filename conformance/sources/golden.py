"""The lecture golden cases (convspec.reference.lectures) that are op evaluations, as conformance
cases: the lecture's own numbers as inputs, in float32 and float64."""

from __future__ import annotations

import numpy as np

from ..cases import Case
from ..registry import OPS


def cases() -> list:
    from convspec.reference.lectures import CASES, expects_error

    out = []
    for g in CASES:
        info = OPS.get(g.op)
        if info is None or expects_error(g) or len(g.inputs) > len(info.arrays):
            continue  # size / parameter-count examples: checked by the reference's own tests
        shapes, values = {}, {}
        for name, value in zip(info.arrays, g.inputs):
            if value is None:
                shapes[name] = None
                continue
            a = np.asarray(value, dtype=object).astype(np.float64)
            shapes[name], values[name] = list(a.shape), a.tolist()
        for name in info.arrays[len(g.inputs) :]:
            shapes[name] = None
        params = dict(g.params)  # strict included: it reaches the backend
        for dt in ("float32", "float64"):
            out.append(
                Case(
                    op=g.op,
                    shapes=shapes,
                    params=params,
                    dtype=dt,
                    data="explicit",
                    values=values,
                    source="golden",
                    name=g.id,
                )
            )
    return out


def source(profile, run_seed, ops):
    wanted = set(ops)
    yield from (c for c in cases() if c.op in wanted)
