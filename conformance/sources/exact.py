"""Exact cases: small-integer data (values in [-3, 3]) on which every partial sum is exactly
representable in float32 and float64, so forward and backward must equal the reference bit for bit,
whatever the summation order."""

from __future__ import annotations

import dataclasses

from .. import registry
from . import properties


def source(profile, run_seed, ops):
    for op in ops:
        if not registry.get(op).exact:  # only ops that add, multiply or select are exact on ints
            continue
        seen = set()
        for case in properties.profile_cases(op, profile, run_seed + 17, {"quick": 3, "full": 20}):
            case = dataclasses.replace(case, data="ints", scale=1.0, exact=True, source="exact")
            if case.to_json() not in seen:  # two draws may differ only in the scale ints ignore
                seen.add(case.to_json())
                yield case
