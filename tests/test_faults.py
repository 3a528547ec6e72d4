"""Fault isolation and data safety (issue 13): backends that raise, hang, exit, segfault, leak memory,
return junk, mutate their inputs or print cost one case each, are reported as such, and never cost the
run, the results file, or a process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from convspec.conformance.cli import main
from convspec.conformance.commands import common
from convspec.conformance.report.schema import validate_file
from convspec.conformance.results import ResultWriter

TESTS = Path(__file__).parent


def run_cli(tmp_path, *args, name="r.jsonl", command="run"):
    out = tmp_path / name
    result = CliRunner().invoke(
        main, [command, "-p", "fault_plugins", "--no-progress", "--out", str(out), *args], catch_exceptions=False
    )
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    if records and command == "run" and result.exit_code in (0, 1):
        validate_file(out)
    return result, records


def cases(records, backend=None):
    return [r for r in records if r["record"] == "case" and (backend is None or r["backend"] == backend)]


def n_cases(op="relu"):
    """How many cases of `op` a quick run has (--list)."""
    r = CliRunner().invoke(main, ["run", "-p", "fault_plugins", "-b", "ref", "--op", op, "--list"])
    return len(r.stdout.splitlines())


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def _cli(*args):
    return [sys.executable, "-c", "from convspec.conformance.cli import main; main()", *args]


# -- the results file ----------------------------------------------------------------------------------


def test_an_existing_results_file_is_never_replaced_silently(tmp_path):
    first, _ = run_cli(tmp_path, "-b", "ref", "--op", "relu")
    assert first.exit_code == 0
    before = (tmp_path / "r.jsonl").read_text()
    again, _ = run_cli(tmp_path, "-b", "ref", "--op", "relu")
    assert again.exit_code == 2
    assert "--resume" in again.output and "--overwrite" in again.output
    assert (tmp_path / "r.jsonl").read_text() == before
    # no available backend: the file is not touched, even with --overwrite
    unavailable = CliRunner().invoke(
        main,
        [
            "run",
            "-p",
            "engine_plugins",
            "-b",
            "unavailable",
            "--overwrite",
            "--no-progress",
            "--out",
            str(tmp_path / "r.jsonl"),
        ],
    )
    assert unavailable.exit_code == 1 and "no available backend" in unavailable.output
    assert (tmp_path / "r.jsonl").read_text() == before
    replaced, _ = run_cli(tmp_path, "-b", "ref", "--op", "add", "--overwrite")
    assert replaced.exit_code == 0 and (tmp_path / "r.jsonl").read_text() != before


def test_case_runs_write_no_file_by_default_and_an_empty_case_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results.jsonl").write_text("precious\n")
    case = '{"op":"relu","params":{},"shapes":{"x":[3]}}'
    r = CliRunner().invoke(main, ["run", "-p", "fault_plugins", "-b", "ref", "--case", case, "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "PASS ref property:relu" in r.stdout
    assert (tmp_path / "results.jsonl").read_text() == "precious\n"
    empty = CliRunner().invoke(main, ["run", "-p", "fault_plugins", "-b", "ref", "--case", "", "--no-progress"])
    assert empty.exit_code == 2 and "--case: is empty" in empty.output
    assert (tmp_path / "results.jsonl").read_text() == "precious\n"


def test_a_second_writer_of_the_same_file_is_refused(tmp_path):
    held = ResultWriter(tmp_path / "r.jsonl")
    try:
        r, _ = run_cli(tmp_path, "-b", "ref", "--op", "relu", "--overwrite")
        assert r.exit_code == 2
        assert "being written by another convspec run" in r.output
    finally:
        held.close()
    r, _ = run_cli(tmp_path, "-b", "ref", "--op", "relu", "--overwrite")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    "where,why",
    [
        ("/proc/x/r.jsonl", "cannot be written"),
        ("FILE/r.jsonl", "is not a folder"),
        ("DIR", "is a folder|is a directory"),
    ],
)
def test_unwritable_outputs_are_one_line_errors(tmp_path, where, why):
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    path = where.replace("FILE", str(tmp_path / "FILE")).replace("DIR", str(tmp_path / "DIR"))
    for command, extra in (("run", ["-b", "ref", "--op", "relu"]), ("train", ["-b", "ref", "--steps", "1"])):
        r = CliRunner().invoke(main, [command, "-p", "fault_plugins", "--no-progress", "--out", path, *extra])
        assert r.exit_code == 2, (command, r.output)
        assert any(w in r.output for w in why.split("|")) and "Traceback" not in r.output
    if where != "DIR":
        r = CliRunner().invoke(main, ["report", str(TESTS / "fault_plugins.py"), "--out", path])
        assert r.exit_code == 2 and any(w in r.output for w in why.split("|")), r.output


def test_resume_names_a_missing_field_and_what_a_foreign_file_is(tmp_path):
    run_cli(tmp_path, "-b", "ref", "--op", "relu")
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    case = json.loads(lines[3])
    del case["backend"]
    (tmp_path / "bad.jsonl").write_text("\n".join(lines[:3] + [json.dumps(case)]) + "\n")
    r, _ = run_cli(tmp_path, "--resume", "-b", "ref", name="bad.jsonl")
    assert r.exit_code == 2 and "line 4: case record without backend" in r.output, r.output
    (tmp_path / "bench.json").write_text(json.dumps({"suites": [], "results": []}))
    r, _ = run_cli(tmp_path, "--resume", "-b", "ref", name="bench.json")
    assert r.exit_code == 2 and "convspec bench file" in r.output, r.output


# -- time limits ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "3e6", "0", "-1"])
def test_timeout_must_be_finite_positive_and_bounded(tmp_path, value):
    r, records = run_cli(tmp_path, "-b", "ref", "--op", "relu", "--timeout", value)
    assert r.exit_code == 2 and "--timeout" in r.output and records == []


def test_a_hanging_availability_check_is_bounded_and_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "AVAILABILITY_TIMEOUT", 3.0)
    t = time.monotonic()
    r = CliRunner().invoke(main, ["backends", "-p", "fault_plugins", "--json"])
    assert r.exit_code == 0
    rows = {row["name"]: row for row in json.loads(r.stdout)["backends"]}
    assert (
        not rows["fault-avail-hangs"]["available"]
        and "did not answer within 3 s" in rows["fault-avail-hangs"]["reason"]
    )
    assert rows["ref"]["available"]
    r, records = run_cli(tmp_path, "-b", "fault-avail-hangs", "-b", "ref", "--op", "relu")
    assert r.exit_code == 0
    row = next(x for x in records if x["record"] == "backend" and x["name"] == "fault-avail-hangs")
    assert "did not answer" in row["reason"]
    assert time.monotonic() - t < 60


def test_consecutive_timeouts_in_an_op_skip_its_other_cases_visibly(tmp_path):
    r, records = run_cli(tmp_path, "-b", "fault-hangs", "-b", "ref", "--op", "relu", "--timeout", "0.5")
    assert r.exit_code == 1
    hung = cases(records, "fault-hangs")
    assert len(hung) == len(cases(records, "ref")) > 3
    assert [x["status"] for x in hung] == ["timeout"] * len(hung)
    not_run = [x for x in hung if x.get("not_run")]
    assert len(not_run) == len(hung) - 3
    assert all("not run: 3 consecutive timeouts in op relu" in x["message"] for x in not_run)
    assert "not run (consecutive timeouts)" in r.stdout


# -- processes -----------------------------------------------------------------------------------------


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _sig_ignored(pid: int) -> str:
    """The signals process `pid` ignores and blocks (SigIgn, SigBlk in /proc/PID/status), for a failure
    message."""
    try:
        with open(f"/proc/{pid}/status") as f:
            masks = {k: int(v, 16) for k, v in (line.split() for line in f if line.startswith(("SigIgn:", "SigBlk:")))}
    except (OSError, ValueError) as exc:
        return f"unknown ({exc})"
    valid = signal.valid_signals()
    return "; ".join(
        f"{k} " + ", ".join(signal.Signals(n).name for n in range(1, 65) if m >> (n - 1) & 1 and n in valid)
        for k, m in masks.items()
    )


def _sigint_as_from_a_terminal():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _wait_for(predicate, seconds=60):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_workers_and_their_children_die_with_the_parent(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**_env(), "CONVSPEC_FAULT_PIDS": str(pids), "CONVSPEC_FAULT_SLEEP": "3600"}
    p = subprocess.Popen(
        _cli(
            "run",
            "-p",
            "fault_plugins",
            "-b",
            "fault-slow",
            "--op",
            "relu",
            "-j",
            "2",
            "--no-progress",
            "--out",
            str(tmp_path / "r.jsonl"),
        ),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_for(lambda: len(list(pids.iterdir())) >= 2), "the workers never started"
    finally:
        p.kill()
        p.wait()
    workers = [int(f.name) for f in pids.iterdir()]
    assert _wait_for(lambda: not any(_alive(pid) for pid in workers), 10), "worker processes outlived their parent"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups")
def test_ctrl_c_stops_cleanly_keeps_the_results_and_says_how_to_resume(tmp_path):
    out = tmp_path / "r.jsonl"
    p = subprocess.Popen(
        _cli("run", "-p", "fault_plugins", "-b", "fault-slow", "--op", "relu", "--no-progress", "--out", str(out)),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # as from a terminal: Ctrl-C neither ignored nor blocked (a process inherits both from its parent, e.g.
        # a shell's `cmd &` or a thread of the test runner; Python then installs no handler, or never sees it)
        preexec_fn=_sigint_as_from_a_terminal,
    )
    try:
        assert _wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 5)
        lines = len(out.read_text().splitlines())
        sigign = _sig_ignored(p.pid)
        os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        stdout, stderr = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130, (
        f"{lines} lines when SIGINT was sent; the run's ignored and blocked signals then: {sigign}; "
        f"stdout: {stdout[-2000:]}; stderr: {stderr[-2000:]}; SIGINT in this process: {signal.getsignal(signal.SIGINT)}"
    )
    assert "Traceback" not in stderr + stdout and "Aborted" not in stderr
    assert "--resume --out " + str(out) in stderr
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(cases(kept)) >= 2
    r, records = run_cli(tmp_path, "--resume", "-b", "fault-slow")
    assert r.exit_code == 0, r.output
    ids = [x["case_id"] for x in cases(records)]
    assert len(ids) == len(set(ids)) == n_cases()


# -- verdicts ------------------------------------------------------------------------------------------


def test_exits_segfaults_and_raises_cost_one_case_each(tmp_path):
    r, records = run_cli(
        tmp_path, "-b", "fault-exits", "-b", "fault-segv", "-b", "fault-raises", "--op", "relu", "--shrink-seconds", "0"
    )
    assert r.exit_code == 1
    assert {x["status"] for x in cases(records, "fault-exits")} == {"crashed"}
    assert "exit code 0" in cases(records, "fault-exits")[0]["message"]
    assert "signal 11" in cases(records, "fault-segv")[0]["message"]
    assert {x["status"] for x in cases(records, "fault-raises")} == {"error"}
    assert records[-1]["record"] == "summary"


@pytest.mark.parametrize("backend,typename", [("fault-list", "list"), ("fault-none", "NoneType"), ("fault-str", "str")])
def test_outputs_that_are_not_arrays_fail_naming_the_type(tmp_path, backend, typename):
    r, records = run_cli(tmp_path, "-b", backend, "--op", "relu", "--shrink-seconds", "0")
    assert r.exit_code == 1
    got = cases(records, backend)
    assert {x["status"] for x in got} == {"fail"}
    assert all(f"relu returned {typename}, not an array of the backend's type" in x["message"] for x in got)
    assert "output not an array" in r.stdout


def test_input_mutation_is_reported_in_forward_and_backward(tmp_path):
    r, records = run_cli(
        tmp_path, "-b", "fault-mutates", "-b", "fault-mutates-bw", "--op", "relu", "--shrink-seconds", "0"
    )
    assert r.exit_code == 1
    fwd = [x for x in cases(records, "fault-mutates") if x["status"] == "fail"]
    assert fwd and all("relu modified its input x in place" in x["message"] for x in fwd)
    bwd = [x for x in cases(records, "fault-mutates-bw") if x["status"] == "fail"]
    assert bwd and all("relu_backward modified its input grad_out in place" in x["message"] for x in bwd)
    assert all(x["verdicts"]["backward"] == "fail" for x in bwd)


def test_a_worker_over_the_memory_limit_is_reported_and_the_run_goes_on(tmp_path):
    r, records = run_cli(tmp_path, "-b", "fault-leaks", "--op", "relu", "--memory-limit", "1", "--shrink-seconds", "0")
    assert r.exit_code == 1
    got = cases(records, "fault-leaks")
    over = [x for x in got if "--memory-limit" in x.get("message", "")]
    assert over and len(got) == n_cases()
    assert any(x["status"] == "pass" for x in got)  # a fresh worker takes over


def test_backend_stdout_is_captured_per_case(tmp_path):
    r, records = run_cli(tmp_path, "-b", "fault-prints", "--op", "relu")
    assert r.exit_code == 0
    got = cases(records, "fault-prints")
    assert all(x["stdout"] == "JUNK from the backend\nC-level junk\n" for x in got)
    assert "JUNK" not in r.output


# -- convspec train ------------------------------------------------------------------------------------


def test_train_isolates_each_backend_and_finishes_the_others(tmp_path):
    r, records = run_cli(
        tmp_path,
        "-b",
        "numpy",
        "-b",
        "fault-train-exits",
        "-b",
        "fault-train-hangs",
        "-b",
        "fault-half",
        "--steps",
        "2",
        "--timeout",
        "15",
        command="train",
    )
    assert r.exit_code == 1, r.output
    trained = {x["backend"]: x for x in records if x["record"] == "train"}
    assert (
        trained["fault-train-exits"]["status"] == "crashed" and "sys.exit(0)" in trained["fault-train-exits"]["message"]
    )
    assert trained["fault-train-hangs"]["status"] == "timeout"
    assert (
        trained["fault-half"]["status"] == "unsupported"
        and "linear is not written yet" in trained["fault-half"]["message"]
    )
    assert "losses" in trained["numpy"] and trained["numpy"]["verdict"] == "equivalent"
    assert records[-1]["record"] == "summary"
    for name in ("fault-train-exits", "fault-train-hangs", "fault-half", "numpy"):
        assert name in r.stdout
