"""The "blocks" case source: a few cases per block (two drawn configurations, each in float32 and float64),
in the full profile only. Registered as a plugin (its register_case_sources hook) like the built-in sources;
failures shrink through the block's strategy like property cases."""

from __future__ import annotations

import dataclasses

from convspec.api.hookspecs import hookimpl

from .. import registry
from ..sources import Source, properties

CONFIGS = {"quick": 0, "full": 2}
SEED_OFFSET = 43


def source(profile, run_seed, ops):
    n = CONFIGS[profile]
    for op in ops:
        if not n or registry.get(op).group != "blocks":
            continue
        seen = set()
        for case in properties.draw_cases(op, n, run_seed + SEED_OFFSET):
            for dtype in ("float32", "float64"):
                c = dataclasses.replace(case, dtype=dtype, source="blocks")
                if c.to_json() not in seen:
                    seen.add(c.to_json())
                    yield c


@hookimpl
def register_case_sources(register):
    register("blocks", Source(source, properties.shrink))
