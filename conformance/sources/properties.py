"""Property-based cases: the registry's hypothesis strategy of each op, drawn deterministically from the
run seed; failing configurations are minimised by shrink()."""

from __future__ import annotations

import contextlib
import threading

from hypothesis import HealthCheck, given, seed, settings

from .. import registry
from .strategies import is_valid, strategy

__all__ = ["source", "shrink", "draw_cases", "profile_cases", "strategy", "is_valid"]


def _settings(n, derandomize=False):
    return settings(
        max_examples=n, database=None, deadline=None, derandomize=derandomize, suppress_health_check=list(HealthCheck)
    )


_LOCK = threading.RLock()  # re-entrant: a shrink predicate may plan cases itself


@contextlib.contextmanager
def _process_independent():
    """Hypothesis' draws without its pool of "local constants": since 6.1xx it mixes into generated
    values (5% of draws) the literals of every module it deems local (outside site-packages and the
    standard library) that is imported at the time, so the same seed drew different cases depending on
    which modules a process had loaded (planning the quick profile before the full one changed 33 of the
    full profile's cases) and on how convspec is installed (an editable install is local, a regular one
    is not). The pool is emptied while our cases are drawn, and the cache of constants built from it is
    cleared before and after, so other hypothesis users in the process see theirs again. Hypothesis
    versions without the pool are left alone."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover  (a hypothesis without this module: nothing to do)
        yield
        return
    get, cache, empty = (getattr(providers, n, None) for n in ("_get_local_constants", "CONSTANTS_CACHE", "Constants"))
    if get is None or cache is None or empty is None:
        yield
        return
    none = empty()
    with _LOCK:
        cache.cache.clear()
        providers._get_local_constants = lambda: none
        try:
            yield
        finally:
            providers._get_local_constants = get
            cache.cache.clear()


def draw_cases(op: str, n: int, run_seed: int, derandomize: bool = False) -> list:
    """n configurations for op, deterministic for a given run seed (derandomize: hypothesis' own
    derandomized search, the same whatever the seed), whatever else the process has imported or drawn
    (_process_independent)."""
    out = []

    def collect(case):
        out.append(case)

    test = given(strategy(op))(collect)
    test = _settings(n, derandomize)(test)
    with _process_independent():
        (test if derandomize else seed(run_seed)(test))()
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
        with _process_independent():
            return find(strategy(op), fails, settings=_settings(max_examples), random=random.Random(run_seed))
    except HypothesisException:  # NoSuchExample, or Flaky when a time budget cut the search short
        return None


#: property cases per op and profile
EXAMPLES = {"quick": 6, "full": 60}


def profile_cases(op: str, profile: str, run_seed: int, examples=None, derandomize: bool = False) -> list:
    """The cases of a profile for op. The full profile is a superset of the quick one: hypothesis draws
    differently for 6 and for 60 examples, so full is quick's draw followed by its own (duplicates once)."""
    examples = examples or EXAMPLES
    cases = draw_cases(op, examples["quick"], run_seed, derandomize)
    if profile != "quick":
        seen = {c.to_json() for c in cases}
        cases += [c for c in draw_cases(op, examples[profile], run_seed, derandomize) if c.to_json() not in seen]
    return cases


def source(profile: str, run_seed: int, ops, *, max_examples: int | None = None, derandomize: bool = False):
    """max_examples: examples per op instead of the profile's (`convspec run --max-examples`);
    derandomize: hypothesis' derandomized draw (`--derandomize`)."""
    examples = {"quick": max_examples, profile: max_examples} if max_examples else None
    for op in ops:
        if registry.get(op).compose is None:  # a block's cases come from the blocks source (full profile)
            yield from profile_cases(op, profile, run_seed, examples, derandomize)


#: the run options (convspec.conformance.run.Plan fields) this source takes
source.options = ("max_examples", "derandomize")
