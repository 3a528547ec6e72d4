"""Half-precision cases (float16): the property configurations again, for the backends that declare
float16 (e.g. torch-cuda). They are run only on such backends: half precision is an optional tier,
so a backend without it is not reported "unsupported" for each of them. The bounds are the same
Higham bounds with float16's unit roundoff (2**-11). bfloat16 has no NumPy dtype, so no bfloat16
cases exist yet."""

from __future__ import annotations

import dataclasses

from .. import registry
from ..cases import EXP_LIMIT
from . import properties

HALF_DTYPES = ("float16",)


def source(profile, run_seed, ops):
    for op in ops:
        if registry.get(op).compose is not None:
            continue  # blocks: float32 and float64 only (the blocks source)
        seen = set()
        for case in properties.profile_cases(op, profile, run_seed + 29, {"quick": 2, "full": 12}):
            # float16's own exp thresholds (overflow above 11.09) for the "large" data kind
            scale = EXP_LIMIT["float16"] if case.data == "large" else min(case.scale, 4.0)
            case = dataclasses.replace(case, dtype="float16", source="half", scale=scale)
            if case.to_json() not in seen:
                seen.add(case.to_json())
                yield case
