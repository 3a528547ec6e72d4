"""The conformance engine itself: it must catch real semantic bugs, survive backends that raise, hang
or crash, record everything it computed, and find plugins the ways the docs say."""

from __future__ import annotations

import json
import os
import textwrap

import engine_plugins
import numpy as np
from click.testing import CliRunner
from convspec.conformance import plugins
from convspec.conformance.cases import Case
from convspec.conformance.cli import main
from convspec.conformance.evaluate import evaluate
from convspec.conformance.report.schema import validate_file


def run_cli(tmp_path, *args, name="r.jsonl"):
    out = tmp_path / name
    result = CliRunner().invoke(
        main, ["run", "-p", "engine_plugins", "--no-progress", "--out", str(out), *args], catch_exceptions=False
    )
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    if records:
        validate_file(out)  # every results file the engine writes follows the published schema
    return result, records


def cases_of(records, backend=None):
    return [r for r in records if r["record"] == "case" and (backend is None or r["backend"] == backend)]


EXPECTED_CATCH = {
    "bug-ties-larger": {"max_pool", "kmax_pool"},
    "bug-ceil-sizing": {"conv"},
    "bug-same-pad-start": {"conv"},
    "bug-flipped-kernel": {"conv"},
    "bug-relu-grad-at-0": {"relu"},
    "bug-bias-grad": {"conv"},
}


def test_quick_profile_catches_each_semantic_bug(tmp_path):
    args = ["-j", "2", "--shrink-seconds", "2", "-b", "ref"] + [a for name in EXPECTED_CATCH for a in ("-b", name)]
    result, records = run_cli(tmp_path, *args)
    assert result.exit_code == 1, result.output
    assert {r["status"] for r in cases_of(records, "ref")} == {"pass"}, (
        "the reference as a backend must pass everything"
    )
    for name, ops in EXPECTED_CATCH.items():
        failed = {r["op"] for r in cases_of(records, name) if r["status"] == "fail"}
        assert ops <= failed, f"{name}: expected failures in {ops}, got {failed}"
        assert failed <= ops, f"{name}: unexpected failures in {failed - ops}"
    relu = [r for r in cases_of(records, "bug-relu-grad-at-0") if r["status"] == "fail"]
    assert any(c["what"] == "grad x" and c["status"] == "fail" for r in relu for c in r["checks"])
    bias = [r for r in cases_of(records, "bug-bias-grad") if r["status"] == "fail"]
    assert all({c["what"] for c in r["checks"] if c["status"] == "fail"} == {"grad b"} for r in bias)
    assert records[-1]["record"] == "summary"


def test_failure_records_first_mismatch_minimal_config_and_repro(tmp_path):
    result, records = run_cli(tmp_path, "-b", "bug-flipped-kernel", "--op", "conv")
    fails = [r for r in cases_of(records) if r["status"] == "fail"]
    assert fails
    prop = next(r for r in fails if r["source"] == "property")
    small = prop["minimal"]["case"]["shapes"]
    size = lambda shapes: sum(int(np.prod(v)) for v in shapes.values() if v)  # noqa: E731
    # hypothesis shrank it (within the time budget: at least smaller than every failing case found,
    # and, unless the machine is very slow, down to a 2-tap kernel on a tiny input)
    assert size(small) <= min(size(r["case"]["shapes"]) for r in fails if r["source"] == "property"), small
    assert max(small["w"][2:]) == 2 and small["w"][:2] == [1, 1], small
    exact = next(r for r in fails if r["source"] in ("corner", "exact") and any(c.get("mismatch") for c in r["checks"]))
    mismatch = next(c["mismatch"] for c in exact["checks"] if c.get("mismatch"))
    assert {"index", "expected", "got", "bound"} <= set(mismatch)
    # the repro command re-runs exactly that case
    case_json = prop["repro"].split("--case ", 1)[1].strip("'")
    again, rec2 = run_cli(tmp_path, "-b", "bug-flipped-kernel", "--case", case_json, name="again.jsonl")
    assert again.exit_code == 1
    (only,) = cases_of(rec2)
    assert only["case_id"] == prop["case_id"] and only["status"] == "fail" and only["checks"] == prop["checks"]


def test_raising_hanging_and_crashing_backends_are_recorded_and_the_run_completes(tmp_path):
    result, records = run_cli(
        tmp_path, "-b", "raises", "-b", "hangs", "-b", "crashes", "-b", "ref", "--op", "relu", "--timeout", "2"
    )
    assert result.exit_code == 1
    by = {b: {r["status"] for r in cases_of(records, b)} for b in ("raises", "hangs", "crashes", "ref")}
    assert by["raises"] == {"error"}
    assert "timeout" in by["hangs"] and by["hangs"] <= {"timeout", "pass"}
    # after 3 consecutive timeouts in relu, its other cases are recorded as not run, visibly
    hung = cases_of(records, "hangs")
    assert len(hung) == len(cases_of(records, "ref"))
    assert all("not run: 3 consecutive timeouts" in r["message"] for r in hung if r.get("not_run"))
    assert by["crashes"] == {"crashed", "pass"}
    assert by["ref"] == {"pass"}
    err = next(r for r in cases_of(records, "raises"))
    assert "backend exploded" in err["message"] and "Traceback" in err["message"]
    assert records[-1]["record"] == "summary"


def test_unknown_names_list_the_valid_ones(tmp_path):
    result = CliRunner().invoke(main, ["run", "-b", "nope", "--out", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and "unknown backend 'nope'" in result.output and "numpy" in result.output
    result = CliRunner().invoke(main, ["run", "--op", "convolution", "--out", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and "unknown op 'convolution'" in result.output and "conv_transpose" in result.output


def test_unavailable_backend_is_recorded_with_its_reason(tmp_path):
    result, records = run_cli(tmp_path, "-b", "unavailable", "-b", "ref", "--op", "relu")
    assert result.exit_code == 0, result.output
    (rec,) = [r for r in records if r["record"] == "backend" and r["name"] == "unavailable"]
    assert rec["available"] is False and rec["reason"] == "no such device"
    assert not cases_of(records, "unavailable")


def test_resume_skips_recorded_cases_after_a_crash_mid_write(tmp_path):
    result, full = run_cli(tmp_path, "-b", "ref", "--op", "kmax_pool", name="full.jsonl")
    ids = [r["case_id"] for r in cases_of(full)]
    lines = (tmp_path / "full.jsonl").read_text().splitlines()
    first_case = next(i for i, line in enumerate(lines) if '"record":"case"' in line)
    cut = lines[: first_case + 5] + [lines[first_case + 5][:40]]  # a torn last line
    (tmp_path / "part.jsonl").write_text("\n".join(cut))
    result, resumed = run_cli(tmp_path, "-b", "ref", "--op", "kmax_pool", "--resume", name="part.jsonl")
    got = [r["case_id"] for r in cases_of(resumed)]
    assert sorted(got) == sorted(ids) and len(set(got)) == len(got)


def test_shards_partition_the_cases(tmp_path):
    _, a = run_cli(tmp_path, "-b", "ref", "--op", "add", "--shard", "1/2", name="a.jsonl")
    _, b = run_cli(tmp_path, "-b", "ref", "--op", "add", "--shard", "2/2", name="b.jsonl")
    _, full = run_cli(tmp_path, "-b", "ref", "--op", "add", name="full.jsonl")
    ia, ib = {r["case_id"] for r in cases_of(a)}, {r["case_id"] for r in cases_of(b)}
    assert ia and ib and not ia & ib and ia | ib == {r["case_id"] for r in cases_of(full)}


class _Partial(engine_plugins.ReferenceBackend):
    name = "partial"
    relu = None  # lacks relu entirely

    def deviation(self, case):
        return "flips every sign on purpose" if case.op == "tanh" else None

    def tanh(self, x):
        return -super().__getattr__("tanh")(x)


def test_missing_op_is_unsupported_and_declared_deviation_is_reported():
    b = _Partial()
    relu = Case(op="relu", shapes={"x": [2, 3]}, params={})
    tanh = Case(op="tanh", shapes={"x": [2, 3]}, params={})
    assert evaluate(b, relu)["status"] == "unsupported"
    r = evaluate(b, tanh)
    assert r["status"] == "deviation" and r["deviation"] == "flips every sign on purpose"
    ok = evaluate(b, Case(op="sigmoid", shapes={"x": [2, 3]}, params={}, dtype="float32"))
    assert ok["status"] == "pass" and 0 <= ok["bound_ratio"] < 1


def _install_fake_distribution(root, name, module_src, ep_target):
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(module_src))
    dist = root / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[convspec]\n{name} = {ep_target}\n")


PLUGIN_SRC = """
from convspec import hookimpl
from convspec.conformance.backend import Backend

class Mine(Backend):
    name = "from-entry-point"

@hookimpl
def register_backends(register):
    register(Mine())
"""


def test_entry_point_discovery_autoload_switch_and_broken_plugins(tmp_path, monkeypatch):
    _install_fake_distribution(tmp_path, "convspec_ep_plugin", PLUGIN_SRC, "convspec_ep_plugin")
    _install_fake_distribution(
        tmp_path, "convspec_broken_plugin", "import no_such_module_anywhere\n", "convspec_broken_plugin"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.AUTOLOAD_ENV, raising=False)
    reg = plugins.load()
    assert reg.origins.get("from-entry-point") == "convspec_ep_plugin", (reg.load_errors, reg.origins)
    assert "numpy" in reg.backends  # the other plugins still load
    (err,) = [e for e in reg.load_errors if e.plugin == "convspec_broken_plugin"]
    assert "no_such_module_anywhere" in err.error
    monkeypatch.setenv(plugins.AUTOLOAD_ENV, "1")
    reg = plugins.load()
    assert "from-entry-point" not in reg.backends and "numpy" in reg.backends
    # `convspec backends` reports the broken plugin and still lists the rest
    monkeypatch.delenv(plugins.AUTOLOAD_ENV)
    out = CliRunner().invoke(main, ["backends", "--json"])
    data = json.loads(out.stdout)
    assert {"from-entry-point", "numpy"} <= {b["name"] for b in data["backends"]}
    assert any(e["plugin"] == "convspec_broken_plugin" for e in data["plugin_errors"])


def test_parallel_jobs_give_the_same_results_as_serial(tmp_path):
    _, serial = run_cli(tmp_path, "-b", "ref", "-b", "numpy", "--op", "avg_pool", name="s.jsonl")
    _, par = run_cli(tmp_path, "-b", "ref", "-b", "numpy", "--op", "avg_pool", "-j", "2", name="p.jsonl")
    key = lambda recs: sorted((r["backend"], r["case_id"], r["status"]) for r in cases_of(recs))  # noqa: E731
    assert key(serial) == key(par) and len(key(par)) > 20


def test_full_profile_lenet_check_runs_in_the_worker_and_is_recorded():
    from convspec.conformance.plugins import load
    from convspec.conformance.run import Plan, run_unit

    got = []
    numpy_backend = load(autoload=False).backends["numpy"]
    run_unit(Plan(profile="full", lenet_steps=4, timeout=120), numpy_backend, [], got.append, lenet=True)
    (rec,) = got
    assert rec["op"] == "lenet" and rec["source"] == "lenet" and rec["backend"] == "numpy"
    assert rec["status"] == "pass", rec.get("message")
    assert 0 <= rec["bound_ratio"] < 1 and rec["repro"].startswith("convspec train --backend numpy")


def test_half_precision_tier_runs_only_on_backends_that_declare_it(tmp_path):
    result, records = run_cli(tmp_path, "-b", "ref-half", "-b", "ref", "--op", "conv", "--op", "softmax")
    assert result.exit_code == 0, result.output
    half = [r for r in cases_of(records) if r["dtype"] == "float16"]
    assert half and {r["backend"] for r in half} == {"ref-half"} and {r["status"] for r in half} == {"pass"}
    assert all(0 <= r["bound_ratio"] < 1 for r in half if r["bound_ratio"] is not None)


def test_tf32_like_tier_is_checked_against_its_own_product_bound():
    tier = engine_plugins.TF32Simulated()
    case = Case(
        op="conv",
        shapes={"x": [2, 8, 6, 6], "w": [4, 8, 3, 3], "b": [4]},
        params={"padding": 1},
        dtype="float32",
        seed=3,
    )
    r = evaluate(tier, case)
    fwd = next(c for c in r["checks"] if c["what"] == "forward")
    assert fwd["status"] == "pass" and 0.01 < fwd["bound_ratio"] < 1  # the TF32 rounding is visible, within its bound
    tier.product_roundoff = 0.0  # judged by plain float32 bounds, the same arithmetic fails
    strict = evaluate(tier, case)
    assert (
        strict["status"] == "fail" and next(c for c in strict["checks"] if c["what"] == "forward")["status"] == "fail"
    )


def test_a_shrink_budget_that_runs_out_keeps_the_smallest_failure_and_the_run_completes(tmp_path):
    result, records = run_cli(tmp_path, "-b", "bug-flipped-kernel", "--op", "conv", "--shrink-seconds", "0.2")
    assert result.exit_code == 1 and records[-1]["record"] == "summary"
    fails = [r for r in cases_of(records) if r["status"] == "fail"]
    assert len(cases_of(records)) == len({r["case_id"] for r in cases_of(records)}) > 40
    assert all(r["source"] != "property" or "minimal" in r for r in fails)


def test_invalid_case_through_the_worker_and_a_crash_names_its_exit_code(tmp_path):
    from convspec.conformance.worker import Worker

    w = Worker(engine_plugins.ReferenceBackend(), timeout=30)
    bad = Case(op="conv", shapes={"x": [1, 1, 5], "w": [1, 1, 2]}, params={"stride": 0})
    from convspec.conformance.run import CACHE

    ref, _ = CACHE.get(bad)  # the SpecError crosses the pipe
    r = w.run(bad, ref)
    w.close()
    # the spec rejects it, the case still reaches the backend, which must refuse it too (it does)
    (check,) = r["checks"]
    assert r["status"] == "pass" and check["what"] == "rejects" and "stride: must be >= 1" in check["message"]
    crash = Worker(engine_plugins.Crashes(), timeout=30)
    r = crash.run(
        Case(op="relu", shapes={"x": [2, 2]}, params={}, data="explicit", values={"x": [[0.0, 1.0], [2.0, 3.0]]})
    )
    crash.close()
    assert r["status"] == "crashed" and "exit code 3" in r["message"]
    # a user's --case the spec rejects is a usage error
    out = CliRunner().invoke(main, ["run", "-b", "numpy", "--out", str(tmp_path / "x.jsonl"), "--case", bad.to_json()])
    assert out.exit_code == 2 and "the spec rejects this case: stride" in out.output


def test_resume_refuses_another_run_and_files_that_are_not_results(tmp_path):
    run_cli(tmp_path, "-b", "ref", "--op", "relu", name="r.jsonl")
    out = CliRunner().invoke(
        main,
        ["run", "-p", "engine_plugins", "-b", "ref", "--op", "tanh", "--resume", "--out", str(tmp_path / "r.jsonl")],
    )
    assert out.exit_code == 2 and "ops=" in out.output and "--out/--resume" in out.output
    other = tmp_path / "notes.txt"
    other.write_text("hello world\n")
    out = CliRunner().invoke(main, ["run", "-b", "numpy", "--op", "relu", "--resume", "--out", str(other)])
    assert out.exit_code == 2 and "notes.txt: line 1 is not valid JSON" in out.output
    assert other.read_text() == "hello world\n"  # untouched


def test_resumed_run_exit_status_counts_failures_already_in_the_file(tmp_path):
    result, first = run_cli(tmp_path, "-b", "bug-relu-grad-at-0", "--op", "relu", "--shrink-seconds", "0")
    assert result.exit_code == 1
    again = CliRunner().invoke(
        main,
        [
            "run",
            "-p",
            "engine_plugins",
            "-b",
            "bug-relu-grad-at-0",
            "--op",
            "relu",
            "--resume",
            "--no-progress",
            "--out",
            str(tmp_path / "r.jsonl"),
        ],
    )
    assert again.exit_code == 1  # nothing new ran, but the file holds failures


def test_nan_values_are_written_as_strict_json_and_reproduce(tmp_path):
    result, records = run_cli(tmp_path, "-b", "numpy", "--op", "max_pool")
    text = (tmp_path / "r.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    nan_case = next(r for r in cases_of(records) if r["case_id"].startswith("corner:maxpool-nan:"))
    case = Case.from_json(nan_case["repro"].split("--case ", 1)[1].strip("'"))
    assert case.id == nan_case["case_id"] and np.isnan(case.inputs()[0]).sum() == 5  # the NaNs survive the round trip


def test_a_unit_process_that_dies_leaves_crashed_records(tmp_path, monkeypatch):
    from convspec.conformance import run as run_mod

    real = run_mod.run_unit

    def dying(plan, backend, cases, emit, lenet=False):
        if backend.name == "ref" and any(c.op == "relu" for c in cases):
            emit_first = cases[:2]
            real(plan, backend, emit_first, emit, lenet)
            os._exit(7)  # the unit process itself dies
        return real(plan, backend, cases, emit, lenet)

    monkeypatch.setattr(run_mod, "run_unit", dying)
    got = []
    plan = run_mod.Plan(jobs=2, ops=("relu",), sources=plugins.load(("engine_plugins",), autoload=False).case_sources)
    cases = run_mod.plan_cases(plan)
    run_mod.execute(plan, [engine_plugins.ReferenceBackend()], lambda b: cases, got.append)
    statuses = [r["status"] for r in got]
    assert len(got) == len(cases) and "crashed" in statuses and statuses.count("pass") >= 2
    crashed = next(r for r in got if r["status"] == "crashed")
    assert "exit code 7" in crashed["message"]
