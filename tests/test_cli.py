"""The command line as a pytest/hypothesis/CI user expects it (issue 16): whole tables without a
terminal, results on stdout, failures grouped by signature, a short repro, --resume from the file's
options, --version, -x, -k, --dtype, --list, --xfails, --op lenet, train verdicts."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from convspec.conformance.cli import main
from convspec.conformance.commands import common
from convspec.conformance.run import failure_signature


@pytest.fixture(autouse=True)
def _short_availability_timeout(monkeypatch):
    monkeypatch.setattr(common, "AVAILABILITY_TIMEOUT", 3.0)  # fault-avail-hangs is among the backends


def invoke(*args, env=None):
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)


def run(tmp_path, *args, name="r.jsonl", env=None):
    out = tmp_path / name
    r = invoke("run", "-p", "fault_plugins", "--no-progress", "--out", str(out), *args, env=env)
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return r, records


def cases(records, backend=None):
    return [r for r in records if r["record"] == "case" and (backend is None or r["backend"] == backend)]


def test_version():
    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.startswith("convspec ") and "spec version" in r.stdout


def test_tables_stay_whole_at_80_columns_without_a_terminal(tmp_path):
    env = {"COLUMNS": "80"}
    r = invoke("backends", "-p", "fault_plugins", env=env)
    assert r.exit_code == 0
    assert "convspec.backends.numpy_backend" in r.stdout and "…" not in r.stdout
    r, _ = run(tmp_path, "-b", "fault-two-ways", "-b", "ref", "--op", "relu", "--shrink-seconds", "0", env=env)
    assert r.exit_code == 1
    assert "…" not in r.stdout and "fault-two-ways" in r.stdout


def test_results_on_stdout_notes_on_stderr(tmp_path):
    r, _ = run(tmp_path, "-b", "ref", "-b", "fault-avail-hangs", "--op", "relu")
    assert "convspec conformance" in r.stdout and "results: " in r.stdout
    assert "fault-avail-hangs unavailable" in r.stderr and "convspec conformance" not in r.stderr


def test_failures_are_grouped_by_signature_with_a_count_and_one_example(tmp_path):
    r, records = run(tmp_path, "-b", "fault-two-ways", "--op", "relu", "--shrink-seconds", "0")
    bad = [x for x in cases(records) if x["status"] == "fail"]
    kinds = {failure_signature(x)[3] for x in bad}
    assert kinds == {"wrong shape", "values outside the bound"}
    for kind in kinds:
        n = sum(failure_signature(x)[3] == kind for x in bad)
        assert r.stdout.count(f"{n} x fault-two-ways relu forward: {kind}") == 1
    assert f"{len(bad)} failures of 2 kinds" in r.stdout
    assert r.stdout.count("repro: convspec run") == 2 * 2  # the short and the JSON form of each example


def test_shrinking_is_per_signature_and_a_minimal_config_reproduces_its_failure(tmp_path):
    r, records = run(tmp_path, "-b", "fault-two-ways", "--op", "relu", "--shrink-seconds", "5")
    shrunk = [x for x in cases(records) if x.get("minimal")]
    assert shrunk
    for x in shrunk:
        m = x["minimal"]
        again = {
            "status": "fail",
            "op": "relu",
            "backend": x["backend"],
            "checks": m["checks"],
            "message": m.get("message", ""),
        }
        assert failure_signature(again) == failure_signature(x)


def test_short_repro_reruns_the_same_case(tmp_path):
    r, records = run(tmp_path, "-b", "fault-two-ways", "--op", "relu", "--seed", "5", "--shrink-seconds", "0")
    bad = next(x for x in cases(records) if x["status"] == "fail" and x["source"] == "property")
    assert bad["repro_short"] == (
        f"convspec run -p fault_plugins --seed 5 --profile quick -b fault-two-ways --case-id '{bad['case_id']}'"
    )
    again = invoke(
        "run",
        "-p",
        "fault_plugins",
        "--seed",
        "5",
        "--profile",
        "quick",
        "-b",
        "fault-two-ways",
        "--case-id",
        bad["case_id"],
        "--no-progress",
    )
    assert again.exit_code == 1 and bad["case_id"] in again.stdout
    wrong = invoke("run", "-p", "fault_plugins", "-b", "ref", "--case-id", "property:relu[float64,normal]#00000000")
    assert wrong.exit_code == 2 and "no case" in wrong.output


def test_resume_takes_the_run_options_from_the_file(tmp_path):
    first, records = run(tmp_path, "-b", "ref", "--op", "relu", "--op", "tanh", "--seed", "7")
    assert first.exit_code == 0
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    (tmp_path / "r.jsonl").write_text("\n".join(lines[:6]) + "\n")  # an interrupted run
    again, resumed = run(tmp_path, "-b", "ref", "--resume")
    assert again.exit_code == 0, again.output
    assert sorted(x["case_id"] for x in cases(resumed)) == sorted(x["case_id"] for x in cases(records))


def test_exitfirst_stops_at_the_first_failure(tmp_path):
    r, records = run(tmp_path, "-b", "fault-two-ways", "--op", "relu", "-x", "--shrink-seconds", "0")
    assert r.exit_code == 1
    got = cases(records)
    assert [x["status"] for x in got].count("fail") == 1 and got[-1]["status"] == "fail"
    assert (
        records[-1]["record"] == "summary"
        and records[-1]["finished"] is False
        and records[-1]["stopped"] == "exitfirst"
    )


def test_select_by_pattern_and_dtype_and_list_without_running(tmp_path):
    r, records = run(tmp_path, "-b", "ref", "--op", "relu", "--op", "tanh", "-k", "corner:", "--dtype", "float32")
    got = cases(records)
    assert got and all(x["case_id"].startswith("corner:") and x["dtype"] == "float32" for x in got)
    r, records = run(tmp_path, "-b", "ref", "--op", "relu", "-k", "relu[*float64*", name="k.jsonl")
    assert cases(records) and all("float64" in x["case_id"] for x in cases(records))
    listed = invoke(
        "run", "-p", "fault_plugins", "-b", "ref", "--op", "relu", "--list", "--out", str(tmp_path / "l.jsonl")
    )
    assert listed.exit_code == 0 and not (tmp_path / "l.jsonl").exists()
    lines = listed.stdout.splitlines()
    full, _ = run(tmp_path, "-b", "ref", "--op", "relu", name="full.jsonl")
    assert sorted(ln.split("\t")[1] for ln in lines) == sorted(x["case_id"] for x in cases(_))


def test_op_lenet_selects_the_lenet_check_of_the_full_profile(tmp_path):
    listed = invoke("run", "-p", "fault_plugins", "-b", "ref", "--profile", "full", "--op", "lenet", "--list")
    assert listed.exit_code == 0, listed.output
    assert [ln.split("\t")[1].split(":")[0] for ln in listed.stdout.splitlines()] == ["lenet"]
    quick = invoke("run", "-p", "fault_plugins", "-b", "ref", "--op", "lenet", "--list")
    assert quick.exit_code == 2 and "--profile full" in quick.output


def test_xfails_file_expects_failures(tmp_path):
    xf = tmp_path / "xfails.txt"
    xf.write_text("# known\nproperty:relu* # wrong values\ncorner:* # also\ngolden:* # and\nexact:*\n")
    r, records = run(tmp_path, "-b", "fault-two-ways", "--op", "relu", "--xfails", str(xf), "--shrink-seconds", "0")
    assert r.exit_code == 0, r.stdout
    assert "xfailed" in r.stdout
    assert all(x.get("xfail") for x in cases(records) if x["status"] == "fail")


def test_train_shows_a_verdict_per_backend_and_fails_when_not_equivalent(tmp_path):
    out = tmp_path / "t.jsonl"
    r = invoke(
        "train",
        "-p",
        "fault_plugins",
        "-b",
        "numpy",
        "-b",
        "fault-train-wrong",
        "--steps",
        "2",
        "--no-progress",
        "--out",
        str(out),
        env={"COLUMNS": "80"},
    )
    assert r.exit_code == 1
    assert "verdict" in r.stdout and "not equivalent" in r.stdout and "…" not in r.stdout
    rec = {x["backend"]: x for x in map(json.loads, out.read_text().splitlines()) if x["record"] == "train"}
    assert rec["fault-train-wrong"]["verdict"] == "not equivalent" and rec["numpy"]["verdict"] == "equivalent"


def test_bench_refuses_a_batch_that_does_not_fit_in_memory_before_allocating():
    r = invoke(
        "bench", "-b", "numpy", "--suite", "lenet", "--batch", "100000000", "--out", "/nonexistent-never-written.json"
    )
    assert r.exit_code == 2 and "--batch" in r.output and "GiB" in r.output


def test_install_hints_work_from_a_checkout(monkeypatch):
    import builtins

    from convspec.conformance.lenet import data as D

    real = builtins.__import__

    def no_sklearn(name, *args, **kw):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(D.DataError) as err:
        D.load_digits_32()
    assert 'pip install ".[digits]"' in str(err.value) and "convspec[digits]" not in str(err.value)


def test_junit_xml_has_a_testcase_per_case_and_part(tmp_path):
    import xml.etree.ElementTree as ET

    r, records = run(
        tmp_path,
        "-b",
        "fault-two-ways",
        "--op",
        "relu",
        "--shrink-seconds",
        "0",
        "--junit-xml",
        str(tmp_path / "j.xml"),
    )
    assert r.exit_code == 1
    root = ET.parse(tmp_path / "j.xml").getroot()
    testcases = root.findall(".//testcase")
    n = len(cases(records))
    assert len(testcases) == 2 * n  # forward and backward
    assert len(root.findall(".//failure")) >= sum(x["status"] == "fail" for x in cases(records))


def test_xfails_strict_patterns_fail_the_run_when_the_case_passes(tmp_path):
    xf = tmp_path / "xfails.txt"
    xf.write_text("corner:* # expected to fail\n")
    r, _ = run(tmp_path, "-b", "ref", "--op", "relu", "--xfails", str(xf))
    assert r.exit_code == 1 and "XPASS(strict) ref corner:" in r.stdout
    xf.write_text("~corner:* # may pass\n")
    r, _ = run(tmp_path, "-b", "ref", "--op", "relu", "--xfails", str(xf), "--overwrite")
    assert r.exit_code == 0 and "xpassed" in r.stdout


def test_an_engine_failure_is_not_blamed_on_the_backend(tmp_path, monkeypatch):
    from convspec.conformance import worker

    def broken(*args, **kw):
        raise KeyError("an engine bug")

    monkeypatch.setattr(worker, "evaluate", broken)  # the forked worker inherits it
    r, records = run(tmp_path, "-b", "ref", "--op", "relu")
    got = cases(records)
    assert got and all(x["status"] == "error" for x in got)
    assert all("convspec engine error (not the backend's fault)" in x["message"] for x in got)


def test_train_model_resnet_trains_the_small_resnet(tmp_path):
    """`convspec train --model resnet`: the small ResNet (batch norm in training mode) on each backend, with
    LeNet's report."""
    import json

    from click.testing import CliRunner
    from convspec.conformance.cli import main

    out = tmp_path / "train.jsonl"
    res = CliRunner().invoke(
        main, ["train", "--model", "resnet", "-b", "numpy", "--steps", "3", "--out", str(out), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert "small ResNet" in res.output and "batch 8" in res.output
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert recs[0]["record"] == "run" and recs[0]["ops"] == ["resnet"]
    (numpy_run,) = [r for r in recs if r.get("backend") == "numpy"]
    assert numpy_run["verdict"] == "equivalent" and numpy_run["config"]["model"] == "resnet"
    assert len(numpy_run["losses"]) == 3
