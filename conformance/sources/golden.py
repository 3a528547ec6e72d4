"""The golden cases (convspec.reference.lectures: the lectures' worked examples and the papers' constants) that
are op evaluations, as conformance cases: their own numbers as inputs, in float32 and float64. Exact
(Fraction) parameters become the nearest floats; the backend is compared with the reference on those."""

from __future__ import annotations

from fractions import Fraction

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
            elif name == info.variadic:  # a sequence of arrays: one shape and one value list per array
                arrays = [np.asarray(v, dtype=object).astype(np.float64) for v in value]
                shapes[name], values[name] = [list(a.shape) for a in arrays], [a.tolist() for a in arrays]
            else:
                a = np.asarray(value, dtype=object).astype(np.float64)
                shapes[name], values[name] = list(a.shape), a.tolist()
        for name in info.arrays[len(g.inputs) :]:
            shapes[name] = None
        # strict included: it reaches the backend
        params = {k: float(v) if isinstance(v, Fraction) else v for k, v in g.params.items()}
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
