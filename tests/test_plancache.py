"""The planned-case cache: the same cases as a fresh draw, under the cache directory only, keyed so that
a different plan or different code draws again, and off with CONVSPEC_PLAN_CACHE=0."""

from __future__ import annotations

import pickle

from convspec.conformance import plancache
from convspec.conformance import run as R
from convspec.conformance.cases import Case


def _source(profile, seed, ops):
    for i in range(3 if profile == "quick" else 5):
        yield Case("relu", {"x": [2, i + 1]}, {}, seed=seed + i, source="toy")


def _plan(**kw):
    return R.Plan(ops=("relu",), sources={"toy": _source}, **kw)


def test_cached_equals_fresh_and_lives_in_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSPEC_CACHE_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    fresh = R.plan_cases(_plan())
    first = plancache.plan_cases(_plan())
    entries = list((tmp_path / "plans").glob("quick-*.pickle"))
    assert len(entries) == 1 and first == fresh
    # a second call reads the entry (proved by planting a marker in it)
    with open(entries[0], "rb") as f:
        entry = pickle.load(f)
    entry["cases"] = entry["cases"][:1]
    with open(entries[0], "wb") as f:
        pickle.dump(entry, f)
    assert plancache.plan_cases(_plan()) == fresh[:1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plans"]  # nothing else written


def test_key_follows_the_plan(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSPEC_CACHE_DIR", str(tmp_path))
    base = plancache.key(_plan())
    assert plancache.key(_plan()) == base
    for kw in (
        {"seed": 1},
        {"profile": "full"},
        {"dtypes": ("float32",)},
        {"keywords": ("x",)},
        {"shard": (1, 2)},
        {"max_examples": 3},
        {"derandomize": True},
    ):
        assert plancache.key(_plan(**kw)) != base, kw
    assert plancache.key(R.Plan(ops=("relu",), sources={"other": _source})) != base
    assert len(plancache.plan_cases(_plan(profile="full"))) == 5


def test_corrupt_entry_and_disabled_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSPEC_CACHE_DIR", str(tmp_path))
    fresh = plancache.plan_cases(_plan())
    (entry,) = (tmp_path / "plans").glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    assert plancache.plan_cases(_plan()) == fresh
    monkeypatch.setenv("CONVSPEC_PLAN_CACHE", "0")
    entry.unlink()
    assert plancache.plan_cases(_plan()) == fresh
    assert not list((tmp_path / "plans").glob("*.pickle"))
