"""Property-based cases: the registry's hypothesis strategy of each op, drawn deterministically from the
run seed; failing configurations are minimised by shrink()."""
from __future__ import annotations

from hypothesis import HealthCheck, given, seed, settings

from .strategies import is_valid, strategy

__all__ = ["source", "shrink", "draw_cases", "strategy", "is_valid"]


def _settings(n):
    return settings(max_examples=n, database=None, deadline=None, derandomize=False, suppress_health_check=list(HealthCheck))


def draw_cases(op: str, n: int, run_seed: int) -> list:
    """n configurations for op, deterministic for a given run seed."""
    out = []

    @seed(run_seed)
    @_settings(n)
    @given(strategy(op))
    def collect(case):
        out.append(case)

    collect()
    seen, unique = set(), []
    for c in out:
        key = c.to_json()
        if key not in seen:
            seen.add(key)
            unique.append(c)
    return unique


def shrink(op: str, fails, run_seed: int, max_examples: int = 200):
    """The minimal configuration for which fails(case) is true, or None if hypothesis finds none
    (or gives up: `fails` is expected to be deterministic, e.g. memoised)."""
    import random

    from hypothesis import find
    from hypothesis.errors import HypothesisException

    try:
        return find(strategy(op), fails, settings=_settings(max_examples), random=random.Random(run_seed))
    except HypothesisException:  # NoSuchExample, or Flaky when a time budget cut the search short
        return None


def source(profile: str, run_seed: int, ops):
    n = {"quick": 6, "full": 60}[profile]
    for op in ops:
        for case in draw_cases(op, n, run_seed):
            yield case


