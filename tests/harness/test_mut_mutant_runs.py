"""The declared-mutant runner in-process (issue 23): planning, the child's arguments, how one run's
result is recorded (killed / survived / not run / error / invalid), the job slots, and the zygote's
protocol, wait loop and child side called here, where mutmut's coverage sees them.

The zygote normally runs in its own process (``python -m falsifiers.mutant_runs``) and forks a
child per run; a mutant of that code is invisible to mutmut unless the functions are called in the
test process. So `serve`, `_wait`, `_child` and `main` are called here with ``os.fork``,
``os._exit``, ``os.setsid``, ``pytest.main`` or the clock replaced, and the real descriptors saved
and restored around the redirections.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from falsifiers import mutant_runs
from falsifiers.corpus import SNAPSHOT_ENV
from falsifiers.mutant_runs import (
    DEFAULT_TIMEOUT,
    DISABLE_ENV,
    MutantRun,
    Zygote,
    child_args,
    child_command,
    plan_runs,
    run_mutants,
    serve,
    supported,
    thread_env,
)
from falsifiers.mutation import UNCHECKED, UNRESOLVED, MutantResult, MutantStatus, Problem
from falsifiers.records import Falsifier, Location, Mutant

CODE = Mutant("rename", "falsifiers.report.HARNESS", "falsifiers.mutation:VACUOUS")
ARTIFACT = Mutant("zero", artifact="zero_tensor")


def _falsifier(number: int, *mutants: Mutant, contract: str = "a") -> Falsifier:
    return Falsifier(f"FALSIFY-A-00{number}", contract, (f"INV-A-00{number}",), "r", "p", "f", Location("a.yaml"),
                     mutants=mutants)


def _no_problem(mutant: Mutant) -> None:
    return None


# --- plan_runs -------------------------------------------------------------------------------------


def test_a_corroborated_falsifier_gets_one_run_per_mutant_with_its_tests_fastest_first_and_its_estimate() -> None:
    falsifier = _falsifier(1, CODE, ARTIFACT)
    bindings = {falsifier.id: ["t.py::slow", "t.py::unknown", "t.py::fast"]}
    runs, skipped = plan_runs([falsifier], {falsifier.id: "CORROBORATED"}, bindings,
                              {"t.py::slow": 2.5, "t.py::fast": 0.5, "t.py::other": 100.0}, check=_no_problem)
    assert skipped == []
    # a test without a duration goes last (it may be the slow one); it adds nothing to the estimate
    assert runs == [MutantRun(falsifier, CODE, ("t.py::fast", "t.py::slow", "t.py::unknown"), 3.0),
                    MutantRun(falsifier, ARTIFACT, ("t.py::fast", "t.py::slow", "t.py::unknown"), 3.0)]


def test_without_durations_the_bound_order_is_kept_and_the_estimate_is_zero() -> None:
    falsifier = _falsifier(1, CODE)
    runs, _ = plan_runs([falsifier], {falsifier.id: "CORROBORATED"}, {falsifier.id: ["t.py::b", "t.py::a"]},
                        check=_no_problem)
    assert runs == [MutantRun(falsifier, CODE, ("t.py::b", "t.py::a"), 0.0)]
    runs, _ = plan_runs([falsifier], {falsifier.id: "CORROBORATED"}, {}, check=_no_problem)
    assert runs == [MutantRun(falsifier, CODE, (), 0.0)]  # no bound test: an empty run (the child says so)


@pytest.mark.parametrize("outcome", ["UNDETERMINED", "REFUTED", None])
def test_a_falsifier_that_is_not_corroborated_has_its_mutants_recorded_as_not_run(outcome: str | None) -> None:
    falsifier = _falsifier(2, CODE, ARTIFACT, contract="c")
    outcomes = {falsifier.id: outcome} if outcome else {}
    runs, skipped = plan_runs([falsifier], outcomes, {falsifier.id: ["t.py::t"]}, check=_no_problem)
    said = outcome or "not in scope"
    detail = f"the falsifier is {said}, not corroborated: its tests are not rerun"
    assert runs == []
    assert skipped == [MutantResult("FALSIFY-A-002", "c", "rename", "code", MutantStatus.NOT_RUN, detail),
                       MutantResult("FALSIFY-A-002", "c", "zero", "artifact", MutantStatus.NOT_RUN, detail)]


@pytest.mark.parametrize(("code", "outcome", "status"), [
    (UNRESOLVED, "CORROBORATED", MutantStatus.INVALID),
    (UNRESOLVED, "UNDETERMINED", MutantStatus.INVALID),   # a broken declaration is invalid whatever the outcome
    (UNRESOLVED, None, MutantStatus.INVALID),
    ("mutant-namespace", "UNDETERMINED", MutantStatus.INVALID),
    (UNCHECKED, "CORROBORATED", MutantStatus.INVALID),    # its falsifier ran: the mutant must be checkable
    (UNCHECKED, "UNDETERMINED", MutantStatus.NOT_RUN),    # the outcome already says the package is missing
    (UNCHECKED, None, MutantStatus.NOT_RUN),
])
def test_a_mutant_that_does_not_resolve_is_invalid_except_unchecked_for_a_falsifier_not_corroborated(
        code: str, outcome: str | None, status: MutantStatus) -> None:
    falsifier = _falsifier(3, CODE, contract="k")
    seen: list[Mutant] = []

    def check(mutant: Mutant) -> Problem:
        seen.append(mutant)
        return Problem(code, f"mutant {mutant.name!r}: the message", "the hint")

    runs, skipped = plan_runs([falsifier], {falsifier.id: outcome} if outcome else {}, {falsifier.id: ["t.py::t"]},
                              check=check)
    assert runs == [] and seen == [CODE]
    assert [(r.falsifier, r.contract, r.name, r.kind, r.status) for r in skipped] == [
        ("FALSIFY-A-003", "k", "rename", "code", status)]
    if status is MutantStatus.INVALID:
        assert skipped[0].detail == "mutant 'rename': the message"  # the problem's own message, as lint says it
    else:
        assert skipped[0].detail.startswith("the falsifier is ")


def test_an_invalid_mutant_does_not_stop_the_falsifiers_next_mutants_or_falsifiers() -> None:
    first, second = _falsifier(1, CODE, ARTIFACT), _falsifier(2, ARTIFACT)

    def check(mutant: Mutant) -> Problem | None:
        return Problem(UNRESOLVED, "bad", "h") if mutant is CODE else None

    runs, skipped = plan_runs([first, second], {first.id: "CORROBORATED", second.id: "CORROBORATED"}, {}, check=check)
    assert [(r.falsifier.id, r.mutant.name) for r in runs] == [("FALSIFY-A-001", "zero"), ("FALSIFY-A-002", "zero")]
    assert [(r.falsifier, r.name, r.status) for r in skipped] == [("FALSIFY-A-001", "rename", MutantStatus.INVALID)]
    runs, skipped = plan_runs([first, second], {second.id: "CORROBORATED"}, {}, check=_no_problem)
    assert [r.mutant.name for r in runs] == ["zero"] and [r.name for r in skipped] == ["rename", "zero"]


def test_the_default_check_resolves_each_mutant_in_this_process() -> None:
    broken = Mutant("broken", "falsifiers.report.NO_SUCH_NAME_HERE", "falsifiers.mutation:VACUOUS")
    falsifier = _falsifier(4, CODE, broken)
    runs, skipped = plan_runs([falsifier], {falsifier.id: "CORROBORATED"}, {falsifier.id: ["t.py::t"]})
    assert [r.mutant for r in runs] == [CODE]
    assert [(r.name, r.status) for r in skipped] == [("broken", MutantStatus.INVALID)]
    assert "NO_SUCH_NAME_HERE" in skipped[0].detail


def test_plans_keep_the_order_of_falsifiers_and_mutants() -> None:
    first, second = _falsifier(1, CODE, ARTIFACT), _falsifier(2, ARTIFACT, CODE)
    runs, _ = plan_runs([first, second], {first.id: "CORROBORATED", second.id: "CORROBORATED"}, {}, check=_no_problem)
    assert [(r.falsifier.id, r.mutant.name) for r in runs] == [
        ("FALSIFY-A-001", "rename"), ("FALSIFY-A-001", "zero"), ("FALSIFY-A-002", "zero"), ("FALSIFY-A-002", "rename")]


# --- the child's command line ----------------------------------------------------------------------


def test_the_child_runs_only_the_bound_tests_under_the_mutant_and_writes_its_receipt() -> None:
    run = MutantRun(_falsifier(1, CODE), CODE, ("t.py::fast", "t.py::slow"))
    receipt = Path("/tmp/r/0.json")
    expected = ["-p", "falsifiers.plugin", "t.py::fast", "t.py::slow", "--falsifier=FALSIFY-A-001",
                "--apply-mutant=FALSIFY-A-001:rename", "--contracts-json=/tmp/r/0.json", "--contracts-profile=gpu",
                "-x", "-q", "--no-header", "-p", "no:cacheprovider", "-p", "no:xdist",
                "-W", "ignore::pytest.PytestUnknownMarkWarning", "--artifact=m.apr", "-s"]
    assert child_args(run, receipt, profile="gpu", extra=("--artifact=m.apr", "-s")) == expected
    assert child_command(run, receipt, profile="gpu", extra=("--artifact=m.apr", "-s")) == [
        sys.executable, "-m", "pytest", *expected]
    assert child_args(run, receipt, profile="cpu")[-1] == "ignore::pytest.PytestUnknownMarkWarning"  # no extra


# --- thread_env, supported ------------------------------------------------------------------------


def test_each_child_gets_its_share_of_the_cpus_unless_the_user_chose() -> None:
    env = {"A": "1"}
    shared = thread_env(env, jobs=3, cpus=8)
    assert shared == {"A": "1", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    assert env == {"A": "1"}  # a copy
    assert thread_env({}, jobs=3, cpus=2)["OPENBLAS_NUM_THREADS"] == "1"  # never 0 threads
    assert thread_env({"A": "1"}, jobs=1, cpus=8) == {"A": "1"}
    for chosen in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        assert thread_env({chosen: "5"}, jobs=2, cpus=8) == {chosen: "5"}


def test_without_a_cpu_count_the_machine_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert thread_env({}, jobs=2)["OMP_NUM_THREADS"] == "3"
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert thread_env({}, jobs=2)["OMP_NUM_THREADS"] == "1"


def test_the_zygote_is_used_on_linux_with_fork_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "fork", lambda: 0, raising=False)
    assert supported({}) and supported({DISABLE_ENV: "1"}) and supported({DISABLE_ENV: "yes"})
    assert not supported({DISABLE_ENV: "0"})
    monkeypatch.setattr(sys, "platform", "darwin")
    assert not supported({})
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delattr(os, "fork")
    assert not supported({})


# --- one run: how it is recorded -------------------------------------------------------------------


class _FakeZygote:
    """Answers like a zygote, writing the receipt and log a child would have written."""

    def __init__(self, answer: tuple[int, bool] | None, receipt: dict[str, Any] | None = None, log: str = "") -> None:
        self.answer, self.receipt, self.log = answer, receipt, log
        self.calls: list[tuple[list[str], str, float]] = []

    def run(self, args: list[str], *, log: str, timeout: float) -> tuple[int, bool] | None:
        self.calls.append((list(args), os.fspath(log), timeout))
        receipt = next(a.split("=", 1)[1] for a in args if a.startswith("--contracts-json="))
        if self.receipt is not None:
            Path(receipt).write_text(json.dumps(self.receipt), encoding="utf-8")
        if self.log:
            Path(log).write_text(self.log, encoding="utf-8")
        return self.answer


def _receipt(outcome: str, reason: str = "", falsifier: str = "FALSIFY-A-001") -> dict[str, Any]:
    return {"falsifiers": [{"id": "FALSIFY-A-000", "outcome": "CORROBORATED", "reason": "another one"},
                           {"id": falsifier, "outcome": outcome, "reason": reason}]}


def _run(tmp_path: Path, zygote: Any, *, timeout: float = 30.0, extra: tuple[str, ...] = ()) -> MutantResult:
    run = MutantRun(_falsifier(1, CODE, contract="ct"), CODE, ("t.py::t",))
    return mutant_runs._run_one(run, tmp_path / "7.json", tmp_path, "cpu", extra, {"K": "V"}, timeout, zygote)


@pytest.mark.parametrize(("outcome", "reason", "status", "detail"), [
    ("REFUTED", "test_x failed: assert 1 == 2", MutantStatus.KILLED, "test_x failed: assert 1 == 2"),
    ("CORROBORATED", "all passed", MutantStatus.SURVIVED, "every bound test passed with the fault in"),
    ("UNDETERMINED", "skipped under the mutant", MutantStatus.NOT_RUN, "skipped under the mutant"),
])
def test_the_childs_receipt_decides_killed_survived_or_not_run(tmp_path: Path, outcome: str, reason: str,
                                                               status: MutantStatus, detail: str) -> None:
    zygote = _FakeZygote((1 if outcome == "REFUTED" else 0, False), _receipt(outcome, reason))
    result = _run(tmp_path, zygote, timeout=12.0, extra=("-s",))
    assert (result.falsifier, result.contract, result.name, result.kind) == ("FALSIFY-A-001", "ct", "rename", "code")
    assert (result.status, result.detail) == (status, detail)
    assert 0.0 <= result.seconds < 60.0
    run = MutantRun(_falsifier(1, CODE, contract="ct"), CODE, ("t.py::t",))
    assert zygote.calls == [(child_args(run, tmp_path / "7.json", profile="cpu", extra=("-s",)),
                             os.fspath(tmp_path / "7.log"), 12.0)]


def test_a_receipt_without_the_falsifier_is_an_error_not_a_survivor(tmp_path: Path) -> None:
    result = _run(tmp_path, _FakeZygote((0, False), _receipt("REFUTED", "x", falsifier="FALSIFY-B-001")))
    assert (result.status, result.detail) == (MutantStatus.ERROR, "the run ended without a verdict")
    result = _run(tmp_path, _FakeZygote((0, False), {"verdict": "GO"}))
    assert (result.status, result.detail) == (MutantStatus.ERROR, "the run ended without a verdict")


def test_a_long_reason_is_cut_to_400_characters(tmp_path: Path) -> None:
    result = _run(tmp_path, _FakeZygote((1, False), _receipt("REFUTED", "x" * 1000)))
    assert (result.status, result.detail) == (MutantStatus.KILLED, "x" * 400)


def test_a_child_that_times_out_is_an_error_whatever_it_wrote(tmp_path: Path) -> None:
    result = _run(tmp_path, _FakeZygote((-9, True), _receipt("CORROBORATED")), timeout=29.6)
    assert (result.status, result.detail) == (MutantStatus.ERROR, "timed out after 30 s")


def test_a_child_without_a_receipt_is_an_error_quoting_the_last_lines_of_its_log(tmp_path: Path) -> None:
    log = "first\nsecond\nthird\nfourth\n\n"
    result = _run(tmp_path, _FakeZygote((4, False), None, log))
    assert (result.status, result.detail) == (MutantStatus.ERROR,
                                              "pytest exited 4 without a verdict: second | third | fourth")
    result = _run(tmp_path, _FakeZygote((3, False), None, "y" * 1000))
    assert result.detail == ("pytest exited 3 without a verdict: " + "y" * 1000)[:400]
    assert len(result.detail) == 400
    (tmp_path / "7.log").unlink()
    result = _run(tmp_path, _FakeZygote((5, False), None))  # no log either
    assert (result.status, result.detail) == (MutantStatus.ERROR, "pytest exited 5 without a verdict: ")


@pytest.mark.parametrize(("zygote", "status"), [
    (_FakeZygote((1, False), _receipt("REFUTED", "r")), MutantStatus.KILLED),
    (_FakeZygote((-9, True)), MutantStatus.ERROR),        # timed out
    (_FakeZygote((3, False)), MutantStatus.ERROR),        # no receipt
], ids=["receipt", "timeout", "no-receipt"])
def test_the_time_a_run_took_is_recorded_whatever_its_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          zygote: _FakeZygote, status: MutantStatus) -> None:
    ticks = iter([100.0, 102.5])
    monkeypatch.setattr(mutant_runs, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    result = _run(tmp_path, zygote)
    assert (result.status, result.seconds) == (status, 2.5)


def test_a_log_that_is_not_utf8_is_still_quoted(tmp_path: Path) -> None:
    zygote = _FakeZygote((1, False))
    (tmp_path / "7.log").write_bytes(b"collected 1 item\nE   bad byte \xff here\n")
    result = _run(tmp_path, zygote)
    assert result.detail == "pytest exited 1 without a verdict: collected 1 item | E   bad byte \ufffd here"


def _fake_subprocess_run(calls: list[dict[str, Any]], *, receipt: dict[str, Any] | None = None,
                         stdout: str = "", code: int = 0, raise_timeout: bool = False) -> Any:
    def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        calls.append({"command": command, **options})
        if raise_timeout:
            raise subprocess.TimeoutExpired(command, options["timeout"])
        if receipt is not None:
            path = next(a.split("=", 1)[1] for a in command if a.startswith("--contracts-json="))
            Path(path).write_text(json.dumps(receipt), encoding="utf-8")
        return subprocess.CompletedProcess(command, code, stdout=stdout)

    return run


@pytest.mark.parametrize("zygote", [None, _FakeZygote(None)], ids=["no-zygote", "zygote-died"])
def test_without_a_zygote_a_fresh_interpreter_runs_the_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             zygote: Any) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(subprocess, "run", _fake_subprocess_run(calls, receipt=_receipt("REFUTED", "died")))
    result = _run(tmp_path, zygote, timeout=11.0, extra=("-s",))
    assert (result.status, result.detail) == (MutantStatus.KILLED, "died")
    run = MutantRun(_falsifier(1, CODE, contract="ct"), CODE, ("t.py::t",))
    assert calls == [{"command": child_command(run, tmp_path / "7.json", profile="cpu", extra=("-s",)),
                      "cwd": tmp_path, "env": {"K": "V"}, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT,
                      "text": True, "errors": "replace", "timeout": 11.0, "check": False}]


def test_a_fresh_interpreter_without_a_receipt_is_an_error_quoting_its_output(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(subprocess, "run", _fake_subprocess_run(calls, stdout="a\nb\nImportError: x\n", code=2))
    result = _run(tmp_path, None)
    assert (result.status, result.detail) == (MutantStatus.ERROR, "pytest exited 2 without a verdict: a | b | ImportError: x")


def test_a_fresh_interpreter_that_times_out_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(subprocess, "run", _fake_subprocess_run(calls, raise_timeout=True))
    result = _run(tmp_path, None, timeout=7.4)
    assert (result.status, result.detail) == (MutantStatus.ERROR, "timed out after 7 s")


# --- run_mutants: job slots, order, progress, environment -----------------------------------------


class _Recorder:
    """Stands in for `Zygote`: records starts, runs (in the order they happen) and closes."""

    def __init__(self, *, start_fails: bool = False) -> None:
        self.started: list[dict[str, Any]] = []
        self.ran: list[str] = []
        self.closed = 0
        self.start_fails = start_fails

    def start(self, *, cwd: Any, env: dict[str, str]) -> Any:
        if self.start_fails:
            return None
        self.started.append({"cwd": cwd, "env": dict(env)})
        recorder = self

        class _Slot:
            def run(self, args: list[str], *, log: str, timeout: float) -> tuple[int, bool]:
                falsifier = next(a.split("=", 1)[1] for a in args if a.startswith("--falsifier="))
                mutant = next(a.split(":", 1)[1] for a in args if a.startswith("--apply-mutant="))
                receipt = next(a.split("=", 1)[1] for a in args if a.startswith("--contracts-json="))
                recorder.ran.append(f"{falsifier}:{mutant}")
                outcome = "REFUTED" if mutant.startswith("k") else "CORROBORATED"
                Path(receipt).write_text(json.dumps(_receipt(outcome, f"{mutant} {timeout}", falsifier)),
                                         encoding="utf-8")
                return (1, False)

            def close(self) -> None:
                recorder.closed += 1

        return _Slot()


def _runs() -> list[MutantRun]:
    fast, slow, middle = Mutant("k-fast", "a.b", "c:d"), Mutant("s-slow", "a.b", "c:d"), Mutant("k-mid", "a.b", "c:d")
    return [MutantRun(_falsifier(1, fast), fast, ("t::a",), 1.0), MutantRun(_falsifier(2, slow), slow, ("t::b",), 9.0),
            MutantRun(_falsifier(3, middle, contract="b"), middle, ("t::c",), 4.0)]


def test_runs_start_longest_first_and_results_come_back_in_the_planned_order(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(mutant_runs, "Zygote", recorder)
    monkeypatch.setattr(mutant_runs, "supported", lambda env: True)
    seen: list[tuple[str, int, int]] = []
    results = run_mutants(_runs(), rootdir=tmp_path, profile="cpu", jobs=1, timeout=5.0,
                          progress=lambda result, done, total: seen.append((result.name, done, total)))
    assert recorder.ran == ["FALSIFY-A-002:s-slow", "FALSIFY-A-003:k-mid", "FALSIFY-A-001:k-fast"]
    assert [(r.falsifier, r.name, r.status) for r in results] == [
        ("FALSIFY-A-001", "k-fast", MutantStatus.KILLED), ("FALSIFY-A-002", "s-slow", MutantStatus.SURVIVED),
        ("FALSIFY-A-003", "k-mid", MutantStatus.KILLED)]
    assert results[0].detail == "k-fast 5.0"  # the timeout reached the child
    assert seen == [("s-slow", 1, 3), ("k-mid", 2, 3), ("k-fast", 3, 3)]  # done counts 1..total, in finishing order
    assert len(recorder.started) == 1 and recorder.closed == 1  # one slot, closed at the end


def test_one_zygote_per_job_slot_never_more_than_runs_and_each_closed(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mutant_runs, "supported", lambda env: True)
    for jobs, runs, started in [(2, _runs(), 2), (5, _runs(), 3), (0, _runs(), 1), (-3, _runs()[:1], 1)]:
        recorder = _Recorder()
        monkeypatch.setattr(mutant_runs, "Zygote", recorder)
        results = run_mutants(runs, rootdir=tmp_path, profile="cpu", jobs=jobs)
        assert len(recorder.started) == started and recorder.closed == started, jobs
        assert sorted(recorder.ran) == sorted(f"{r.falsifier.id}:{r.mutant.name}" for r in runs)
        assert [r.name for r in results] == [r.mutant.name for r in runs]
    recorder = _Recorder()
    monkeypatch.setattr(mutant_runs, "Zygote", recorder)
    assert run_mutants([], rootdir=tmp_path, profile="cpu", jobs=2) == [] and recorder.started == []
    run_mutants(_runs(), rootdir=tmp_path, profile="cpu")  # one job by default
    assert len(recorder.started) == 1 and recorder.ran[0] == "FALSIFY-A-002:s-slow"


def test_the_switch_in_the_environment_chooses_zygote_or_fresh_interpreters(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(subprocess, "run", _fake_subprocess_run(calls, receipt=_receipt("REFUTED", "r")))
    recorder = _Recorder()
    monkeypatch.setattr(mutant_runs, "Zygote", recorder)
    run = _runs()[0]  # killed in the zygote (_Recorder) and by the fresh interpreter (the fake receipt)
    monkeypatch.setenv(DISABLE_ENV, "0")
    assert [r.status for r in run_mutants([run], rootdir=tmp_path, profile="cpu")] == [MutantStatus.KILLED]
    assert recorder.started == [] and len(calls) == 1
    monkeypatch.setenv(DISABLE_ENV, "1")
    assert [r.status for r in run_mutants([run], rootdir=tmp_path, profile="cpu")] == [MutantStatus.KILLED]
    assert len(recorder.started) == int(supported({})) and len(calls) == 2 - int(supported({}))


def test_as_many_threads_as_job_slots_so_runs_start_longest_first(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread more than there are slots would wait on the slot queue with a shorter run in hand,
    and which waiting thread gets a freed slot is not defined: longest-first would be lost."""
    from concurrent.futures import ThreadPoolExecutor

    sizes: list[int | None] = []

    class _Pool(ThreadPoolExecutor):
        def __init__(self, max_workers: int | None = None, **kwargs: Any) -> None:
            sizes.append(max_workers)
            super().__init__(max_workers=max_workers, **kwargs)

    monkeypatch.setattr(mutant_runs, "ThreadPoolExecutor", _Pool)
    monkeypatch.setattr(mutant_runs, "supported", lambda env: True)
    monkeypatch.setattr(mutant_runs, "Zygote", _Recorder())
    for jobs in (1, 3, 0):
        run_mutants(_runs(), rootdir=tmp_path, profile="cpu", jobs=jobs)
    assert sizes == [1, 3, 1]


def test_the_childrens_environment_drops_pytests_own_and_carries_the_snapshot_and_thread_share(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith(("PYTEST_", "OMP_", "MKL_", "OPENBLAS_")) or k == SNAPSHOT_ENV]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "t.py::t (call)")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x")
    monkeypatch.setenv("PYTEST_THEME", "kept")  # only pytest's per-process variables are dropped
    monkeypatch.setenv("APR_PROBE", "kept")
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(mutant_runs, "supported", lambda env: True)
    recorder = _Recorder()
    monkeypatch.setattr(mutant_runs, "Zygote", recorder)
    run_mutants(_runs()[:2], rootdir=tmp_path, profile="cpu", jobs=2, corpus_snapshot=tmp_path / "snap.json")
    env = recorder.started[0]["env"]
    assert recorder.started[0]["cwd"] == tmp_path
    assert not {"PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS"} & set(env)
    assert env["PYTEST_THEME"] == env["APR_PROBE"] == "kept"
    assert env[SNAPSHOT_ENV] == os.fspath(tmp_path / "snap.json")
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"
    run_mutants(_runs()[:1], rootdir=tmp_path, profile="cpu", jobs=1)
    assert SNAPSHOT_ENV not in recorder.started[-1]["env"] and "OMP_NUM_THREADS" not in recorder.started[-1]["env"]


def test_where_the_zygote_is_not_supported_or_fails_to_start_fresh_interpreters_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(subprocess, "run", _fake_subprocess_run(calls, receipt=_receipt("REFUTED", "r")))
    monkeypatch.setenv("APR_PROBE", "reaches the child")
    recorder = _Recorder()
    monkeypatch.setattr(mutant_runs, "Zygote", recorder)
    monkeypatch.setattr(mutant_runs, "supported", lambda env: False)
    run = MutantRun(_falsifier(1, CODE), CODE, ("t.py::t",))
    results = run_mutants([run], rootdir=tmp_path, profile="release", extra=("-s",), timeout=3.0)
    assert recorder.started == [] and [r.status for r in results] == [MutantStatus.KILLED]
    assert calls[0]["cwd"] == tmp_path and calls[0]["timeout"] == 3.0
    assert calls[0]["env"]["APR_PROBE"] == "reaches the child"
    assert "--contracts-profile=release" in calls[0]["command"] and calls[0]["command"][-1] == "-s"
    monkeypatch.setattr(mutant_runs, "supported", lambda env: True)
    monkeypatch.setattr(mutant_runs, "Zygote", _Recorder(start_fails=True))
    assert [r.status for r in run_mutants([run], rootdir=tmp_path, profile="cpu")] == [MutantStatus.KILLED]
    assert len(calls) == 2 and calls[1]["timeout"] == DEFAULT_TIMEOUT == 300.0


def test_the_receipts_live_in_a_temporary_folder_that_is_gone_afterwards(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(subprocess, "run", _fake_subprocess_run(calls, receipt=_receipt("REFUTED", "r")))
    monkeypatch.setattr(mutant_runs, "supported", lambda env: False)
    run_mutants(_runs()[:1] + _runs()[1:2], rootdir=tmp_path, profile="cpu")
    receipts = [Path(next(a.split("=", 1)[1] for a in c["command"] if a.startswith("--contracts-json=")))
                for c in calls]
    assert sorted(p.name for p in receipts) == ["0.json", "1.json"]
    assert receipts[0].parent == receipts[1].parent and receipts[0].parent.name.startswith("apr-mutants-")
    assert not receipts[0].parent.exists()


# --- Zygote: the parent's side of the protocol -----------------------------------------------------


class _Pipe(io.StringIO):
    def __init__(self, text: str = "", *, fail: type[BaseException] | None = None) -> None:
        super().__init__(text)
        self.fail = fail

    def write(self, text: str) -> int:
        if self.fail is not None:
            raise self.fail()
        return super().write(text)


def _zygote(answer: str, *, fail: type[BaseException] | None = None) -> tuple[Zygote, _Pipe]:
    stdin = _Pipe(fail=fail)
    return Zygote(SimpleNamespace(stdin=stdin, stdout=io.StringIO(answer))), stdin  # type: ignore[arg-type]


@pytest.mark.parametrize(("answer", "expected"), [
    ('{"code": 3, "timed_out": false}\n', (3, False)),
    ('{"code": -9, "timed_out": true}\n', (-9, True)),
    ('{"timed_out": false, "code": 0}\n', (0, False)),
    ("", None),                                       # it died: the read is empty
    ("a library said hello\n", None),                 # it said something else
    ('{"code": 1}\n', None),                          # half an answer
    ('{"code": null, "timed_out": false}\n', None),
    ('["code", 1]\n', None),
])
def test_the_zygote_is_asked_one_json_line_and_its_answer_is_read_strictly(tmp_path: Path, answer: str,
                                                                            expected: tuple[int, bool] | None) -> None:
    zygote, stdin = _zygote(answer)
    assert zygote.run(["-q", "t.py::t"], log=tmp_path / "1.log", timeout=2.5) == expected
    line = stdin.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == {"args": ["-q", "t.py::t"], "log": os.fspath(tmp_path / "1.log"), "timeout": 2.5}


def test_a_zygote_without_both_pipes_is_a_programming_error(tmp_path: Path) -> None:
    for stdin, stdout in ((io.StringIO(), None), (None, io.StringIO("{}"))):
        with pytest.raises(AssertionError):
            Zygote(SimpleNamespace(stdin=stdin, stdout=stdout)).run([], log=tmp_path / "l", timeout=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("error", [BrokenPipeError, OSError])
def test_a_zygote_whose_pipe_broke_reads_as_none(tmp_path: Path, error: type[BaseException]) -> None:
    zygote, _ = _zygote('{"code": 0, "timed_out": false}\n', fail=error)
    assert zygote.run(["-q"], log=tmp_path / "x.log", timeout=1.0) is None


class _Process:
    def __init__(self, *, running: bool, hangs: bool = False) -> None:
        self.running, self.hangs = running, hangs
        self.stdin = io.StringIO()
        self.events: list[Any] = []

    def poll(self) -> int | None:
        return None if self.running else 0

    def wait(self, timeout: float | None = None) -> int:
        self.events.append(("wait", timeout))
        if self.hangs and timeout is not None:
            raise subprocess.TimeoutExpired("zygote", timeout)
        return 0

    def kill(self) -> None:
        self.events.append("kill")


def test_closing_a_zygote_closes_its_input_and_waits_then_kills_one_that_hangs() -> None:
    process = _Process(running=True)
    Zygote(process).close()  # type: ignore[arg-type]
    assert process.stdin.closed and process.events == [("wait", 10)]
    process = _Process(running=True, hangs=True)
    Zygote(process).close()  # type: ignore[arg-type]
    assert process.events == [("wait", 10), "kill", ("wait", None)]
    process = _Process(running=False)
    Zygote(process).close()  # type: ignore[arg-type]
    assert not process.stdin.closed and process.events == []  # already gone: nothing to do


def test_a_zygote_is_this_module_run_as_a_program_in_the_project(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], dict[str, Any]]] = []

    def popen(command: list[str], **options: Any) -> str:
        calls.append((command, options))
        return "process"

    monkeypatch.setattr(subprocess, "Popen", popen)
    env = {"A": "1"}
    zygote = Zygote.start(cwd=tmp_path, env=env)
    assert zygote is not None and zygote.process == "process"
    [(command, options)] = calls
    assert command == [sys.executable, "-m", "falsifiers.mutant_runs"]
    assert options["cwd"] == tmp_path and options["env"] == env and options["env"] is not env
    assert (options["stdin"], options["stdout"], options["stderr"]) == (subprocess.PIPE, subprocess.PIPE,
                                                                         subprocess.DEVNULL)
    assert options["text"] is True

    def cannot(command: list[str], **options: Any) -> str:
        raise OSError("no python here")

    monkeypatch.setattr(subprocess, "Popen", cannot)
    assert Zygote.start(cwd=tmp_path, env=env) is None


# --- the zygote's own side, in this process --------------------------------------------------------


def _sleeper(seconds: float, code: int = 0) -> subprocess.Popen[bytes]:
    """A child in its own process group (as the zygote's children are) that exits with ``code``."""
    return subprocess.Popen([sys.executable, "-c", f"import time, sys; time.sleep({seconds}); sys.exit({code})"],
                            start_new_session=True)


class _Clock:
    """A fake clock for `_wait`: sleeping advances it, and each sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if len(self.sleeps) > 100:  # a wait loop that never reaches its deadline fails here, not by hanging
            raise AssertionError(f"no deadline after {len(self.sleeps)} polls: {self.sleeps[:8]}...")


def test_wait_returns_a_childs_exit_code_as_soon_as_it_ends() -> None:
    child = _sleeper(0.0, code=3)
    start = time.monotonic()
    assert mutant_runs._wait(child.pid, 60.0) == (3, False)
    child.returncode = 3  # reaped by _wait: keep Popen from waiting on it
    assert time.monotonic() - start < 30.0


def test_wait_polls_at_5_ms_doubling_to_at_most_50_ms_and_kills_the_group_at_the_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(mutant_runs, "time", clock)
    child = _sleeper(600.0)
    timeout = 0.0 + 0.005 + 0.01 + 0.02 + 0.04 + 0.05 + 0.05  # the deadline falls exactly on a poll
    assert mutant_runs._wait(child.pid, timeout) == (-int(signal.SIGKILL), True)
    assert clock.sleeps == [0.005, 0.01, 0.02, 0.04, 0.05, 0.05]
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)  # reaped by _wait
    child.returncode = -9  # reaped already: keep Popen from waiting on it


def test_wait_kills_the_childs_whole_process_group(tmp_path: Path) -> None:
    note = tmp_path / "grandchild.pid"
    child = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen(['sleep', '600'])\n"
        f"open({os.fspath(note)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(600)\n")], start_new_session=True)
    deadline = time.monotonic() + 60
    while not (note.is_file() and note.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(note.read_text())
    assert mutant_runs._wait(child.pid, 0.2) == (-9, True)
    child.returncode = -9
    deadline = time.monotonic() + 30
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in "ZX"


def test_wait_at_the_deadline_of_a_child_that_leads_no_group_still_reaps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])  # not a group leader
    assert mutant_runs._wait(child.pid, 0.0) == (-9, True)  # killpg found no group; the child was still reaped
    child.returncode = 0
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)


def test_serve_forks_a_child_per_request_and_answers_each_with_its_exit_code(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    started = [_sleeper(0.0, code=0), _sleeper(0.0, code=5), _sleeper(600.0)]
    children = iter(started)
    forked: list[int] = []

    def fork() -> int:
        pid = next(children).pid
        forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    requests = io.StringIO("".join(json.dumps({"args": ["-q", str(n)], "log": f"{n}.log", "timeout": t}) + "\n"
                                   for n, t in enumerate([60, 60.0, 0.3])))
    answers = io.StringIO()
    serve(requests, answers)
    assert answers.getvalue().splitlines() == ['{"code": 0, "timed_out": false}', '{"code": 5, "timed_out": false}',
                                               '{"code": -9, "timed_out": true}']
    assert forked == [child.pid for child in started]
    for child in started:
        child.returncode = 0  # reaped by serve: keep Popen from waiting on them


def test_serve_turns_the_forked_child_into_the_requested_pytest_run(monkeypatch: pytest.MonkeyPatch) -> None:
    became: list[tuple[list[str], str]] = []

    class _Became(Exception):
        pass

    def child(args: list[str], log: str) -> None:
        became.append((args, log))
        raise _Became  # the real one never returns

    monkeypatch.setattr(os, "fork", lambda: 0)
    monkeypatch.setattr(mutant_runs, "_child", child)
    with pytest.raises(_Became):
        serve(io.StringIO(json.dumps({"args": ["-x", "t.py"], "log": "/l/0.log", "timeout": 1}) + "\n"), io.StringIO())
    assert became == [(["-x", "t.py"], "/l/0.log")]


class _Exited(BaseException):
    def __init__(self, code: int) -> None:
        self.code = code


@pytest.fixture
def in_child(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Run `_child` here: ``os._exit`` raises `_Exited`, ``os.setsid`` is recorded, and the real
    descriptors 0-2, ``sys.std*`` and ``sys.argv`` are restored afterwards."""
    calls: list[str] = []

    def exit_(code: int) -> None:
        raise _Exited(code)

    monkeypatch.setattr(os, "_exit", exit_)
    monkeypatch.setattr(os, "setsid", lambda: calls.append("setsid"))
    streams = (sys.stdin, sys.stdout, sys.stderr)
    for name in ("stdin", "stdout", "stderr", "argv"):
        monkeypatch.setattr(sys, name, getattr(sys, name))
    saved = {fd: os.dup(fd) for fd in (0, 1, 2)}
    read, write = os.pipe()  # the zygote's stdin holds requests: the child must not read them
    os.write(write, b"a request for the zygote\n")
    os.close(write)
    os.dup2(read, 0)
    os.close(read)
    try:
        yield calls
    finally:
        for stream in (sys.stdin, sys.stdout, sys.stderr):
            if all(stream is not before for before in streams):  # opened by the child on fds 0-2
                stream.close()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


def _main_of(result: Any = 0, *, effect: Any = None) -> Any:
    seen: list[list[str]] = []

    def main(args: list[str]) -> Any:
        seen.append(list(args))
        print("to stdout")
        sys.stderr.write("to stderr\n")
        os.write(1, b"fd 1\n")
        os.write(2, b"fd 2\n")
        assert sys.stdin.read() == "" and os.read(0, 10) == b""  # stdin is /dev/null
        if effect is not None:
            raise effect
        return result

    main.seen = seen  # type: ignore[attr-defined]
    return main


@pytest.mark.parametrize(("result", "effect", "code"), [
    (0, None, 0), (1, None, 1), (pytest.ExitCode.NO_TESTS_COLLECTED, None, 5),
    (None, SystemExit(3), 3), (None, SystemExit("a message"), 1),
    (None, RuntimeError("the plugin broke"), 70), (None, KeyboardInterrupt(), 70),
])
def test_the_child_becomes_a_pytest_run_writing_to_its_log_and_exits_with_its_code(
        in_child: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, result: Any, effect: Any,
        code: int) -> None:
    log = tmp_path / "0.log"
    if code:  # a log left by an earlier run is replaced, not appended to
        log.write_text("an old log, longer than what the child will write " * 20)
    main = _main_of(result, effect=effect)
    monkeypatch.setattr(pytest, "main", main)
    with pytest.raises(_Exited) as exited:
        mutant_runs._child(["-q", "t.py::t"], os.fspath(log))
    assert exited.value.code == code
    assert main.seen == [["-q", "t.py::t"]]
    assert in_child == ["setsid"]  # its own process group: a timeout kills it and what it started
    assert sys.argv == [os.path.join(os.path.dirname(pytest.__file__), "__main__.py"), "-q", "t.py::t"]
    text = log.read_text()
    assert text.startswith("to stdout\nto stderr\nfd 1\nfd 2\n")  # line-buffered, both streams, truncated
    assert ("Traceback" in text) == (code == 70)
    assert "an old log" not in text
    if not code:
        assert (log.stat().st_mode & 0o777) == 0o600  # a new log is private


def test_closing_the_childs_streams_leaves_its_descriptors_open(in_child: list[str], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def main(args: list[str]) -> int:
        for stream in (sys.stdin, sys.stdout, sys.stderr):
            stream.close()
        for fd in (0, 1, 2):
            os.fstat(fd)  # raises if closing the stream closed the process's descriptor
        return 0

    monkeypatch.setattr(pytest, "main", main)
    with pytest.raises(_Exited) as exited:
        mutant_runs._child([], os.fspath(tmp_path / "0.log"))
    assert exited.value.code == 0


def test_a_child_whose_log_cannot_be_opened_still_exits_with_70(in_child: list[str], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytest, "main", _main_of(0))
    with pytest.raises(_Exited) as exited:
        mutant_runs._child(["-q"], os.fspath(tmp_path / "no" / "such" / "folder.log"))
    assert exited.value.code == 70


def test_the_zygote_answers_on_a_private_copy_of_stdout_and_sends_fd_1_where_stderr_goes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = tmp_path / "out", tmp_path / "err"
    served: list[Any] = []
    preloaded: list[bool] = []

    def fake_serve(requests: Any, answers: Any) -> None:
        served.append(requests)
        print("a library printed this")
        os.write(1, b"and this\n")
        answers.write("the answer\n")
        answers.close()

    monkeypatch.setattr(mutant_runs, "serve", fake_serve)
    monkeypatch.setattr(mutant_runs, "_preload", lambda: preloaded.append(True))
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        with open(out, "wb") as o, open(err, "wb") as e:
            os.dup2(o.fileno(), 1)
            os.dup2(e.fileno(), 2)
        with open(2, "w", closefd=False, buffering=1) as stderr:
            monkeypatch.setattr(sys, "stderr", stderr)
            mutant_runs.main()
            sys.stdout.flush()
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
    assert preloaded == [True] and served == [sys.stdin]
    assert out.read_text() == "the answer\n"
    assert err.read_text() == "a library printed this\nand this\n"


def test_preloading_skips_what_is_missing_and_imports_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "pytest" in mutant_runs.PRELOAD and "torch" in mutant_runs.PRELOAD
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    monkeypatch.delitem(sys.modules, "this_module_does_not_exist_anywhere", raising=False)
    monkeypatch.setattr(mutant_runs, "PRELOAD", ("this_module_does_not_exist_anywhere", "colorsys"))
    mutant_runs._preload()
    assert "colorsys" in sys.modules


# --- progress --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.99, "59s"), (60, "1m00s"), (65.2, "1m05s"),
                                               (3599, "59m59s"), (3600, "60m00s")])
def test_elapsed_time_reads_as_minutes_and_seconds(seconds: float, text: str) -> None:
    assert mutant_runs._clock_text(seconds) == text


def _done(contract: str, status: MutantStatus) -> MutantResult:
    return MutantResult("F", contract, "m", "code", status)


def test_progress_counts_kills_and_survivors_only_and_reports_each_contract_once_complete() -> None:
    lines: list[str] = []
    ticks = iter([10.0, 11.0, 12.0, 13.0, 74.0])
    progress = mutant_runs.MutantProgress(["a", "a", "a", "b"], lines.append, clock=lambda: next(ticks))
    progress(_done("a", MutantStatus.ERROR), 1, 4)
    progress(_done("b", MutantStatus.NOT_RUN), 2, 4)
    progress(_done("a", MutantStatus.KILLED), 3, 4)
    assert lines == ["mutants: b: 0/1 killed (2/4 done, 2s)"]
    progress(_done("a", MutantStatus.KILLED), 4, 4)
    assert lines[1:] == ["mutants: a: 2/3 killed (4/4 done, 1m04s)"]


def test_on_a_terminal_errors_and_runs_not_made_are_no_survivors() -> None:
    rewritten: list[str] = []
    written: list[str] = []
    ticks = iter([0.0, 1.0, 2.0, 3.0])
    progress = mutant_runs.MutantProgress(["a", "a", "a"], written.append, rewritten.append,
                                          clock=lambda: next(ticks))
    progress(_done("a", MutantStatus.ERROR), 1, 3)
    progress(_done("a", MutantStatus.SURVIVED), 2, 3)
    assert written == []  # nothing but the status line until the end
    progress(_done("a", MutantStatus.NOT_RUN), 3, 3)
    assert rewritten == ["mutants: 1/3 done, 0 survived, 1s", "mutants: 2/3 done, 1 survived, 2s",
                         "mutants: 3/3 done, 1 survived, 3s"]
    assert written == [""]
