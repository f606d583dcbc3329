"""falsifiers.session's plain functions in-process (issue 23, after issue 18 folded the evidence and
phase helpers into `session`): the scope, the exit status, the receipt write, a failure's replay
data and a bound test's reports to one `TestResult`.

Reports, calls and items are small fakes carrying only what pytest's objects would; every expected
value is written from the rule in the function's docstring.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from falsifiers import session
from falsifiers.records import Corpus, Finding, Location, Severity
from falsifiers.session import (
    EVIDENCE_ATTR,
    PROPERTY,
    Scope,
    attach_evidence,
    collected_scope,
    decide_scope,
    failure_evidence,
    passed_cleanly,
    reports_duration,
    result_of,
    results_of,
)
from falsifiers.verdict import TestResult, TestStatus


def test_scope_values_are_the_receipt_strings() -> None:
    assert [s.value for s in Scope] == ["full", "paths", "selected", "artifact"]


@pytest.mark.parametrize(("collected", "selected", "artifact", "scope"), [
    (Scope.FULL, False, False, Scope.FULL),
    (Scope.PATHS, False, False, Scope.PATHS),
    (Scope.FULL, True, False, Scope.SELECTED),
    (Scope.PATHS, False, True, Scope.ARTIFACT),
    (Scope.FULL, True, True, Scope.SELECTED),  # a selection wins over --artifact
])
def test_decide_scope(collected: Scope, selected: bool, artifact: bool, scope: Scope) -> None:
    assert decide_scope(collected, selected=selected, artifact=artifact) is scope


def _config(tmp_path: Path, args: list[str], *, source: Any = pytest.Config.ArgsSource.ARGS,
            testpaths: list[str] | None = None) -> Any:
    return SimpleNamespace(args_source=source, rootpath=tmp_path, args=args,
                           getini=lambda name: testpaths if name == "testpaths" else None,
                           invocation_params=SimpleNamespace(dir=tmp_path))


@pytest.mark.parametrize(("args", "testpaths", "scope"), [
    (["tests"], ["tests"], Scope.FULL),
    (["."], ["tests"], Scope.FULL),  # a folder above testpaths covers it
    (["tests/harness"], ["tests"], Scope.PATHS),
    (["tests/a.py::test_x"], ["tests"], Scope.PATHS),  # a node id is never the whole suite
    (["tests", "docs"], ["tests", "docs"], Scope.FULL),
    (["tests"], ["tests", "docs"], Scope.PATHS),  # every testpath must be covered
    (["."], None, Scope.FULL),  # no testpaths: the root
    (["sub"], None, Scope.PATHS),
])
def test_collected_scope(tmp_path: Path, args: list[str], testpaths: list[str] | None, scope: Scope) -> None:
    assert collected_scope(_config(tmp_path, args, testpaths=testpaths)) is scope


def test_collected_scope_without_arguments_is_the_whole_suite(tmp_path: Path) -> None:
    for source in (pytest.Config.ArgsSource.TESTPATHS, pytest.Config.ArgsSource.INVOCATION_DIR):
        assert collected_scope(_config(tmp_path, ["tests/harness"], source=source, testpaths=["tests"])) is Scope.FULL


@pytest.mark.parametrize(("status", "verdict_exit", "failed", "final"), [
    (pytest.ExitCode.INTERNAL_ERROR, 0, 0, 3),
    (pytest.ExitCode.USAGE_ERROR, 1, 2, 4),  # pytest could not run: its status, whatever the verdict
    (pytest.ExitCode.OK, 0, 0, 0),  # GO
    (pytest.ExitCode.OK, 1, 0, 1),  # NO-GO
    (pytest.ExitCode.TESTS_FAILED, 0, 1, 1),  # a test bound to nothing failed
    (pytest.ExitCode.OK, 2, 0, 2),  # UNKNOWN
    (pytest.ExitCode.TESTS_FAILED, 2, 3, 1),  # a failure outranks UNKNOWN
    (pytest.ExitCode.NO_TESTS_COLLECTED, 0, 0, 5),  # GO keeps pytest's own complaint
    (pytest.ExitCode.INTERRUPTED, 0, 0, 2),
])
def test_final_exit(status: int, verdict_exit: int, failed: int, final: int) -> None:
    assert session._final_exit(status, verdict_exit, failed) == final


def test_first_error_is_the_first_error_located_in_that_file() -> None:
    here, there = Location("c/a.yaml", 3, 4), Location("c/b.yaml", 5, 6)
    corpus = Corpus.of([], [Finding(Severity.WARNING, "w", "only a warning", here),
                            Finding(Severity.ERROR, "e", "elsewhere", there),
                            Finding(Severity.ERROR, "e", "nowhere"),
                            Finding(Severity.ERROR, "e", "the first", here),
                            Finding(Severity.ERROR, "e", "the second", here)])
    assert session._first_error(corpus, "c/a.yaml") == "c/a.yaml:3:4: the first"
    assert session._first_error(corpus, "c/z.yaml") == "its contract file has errors"


def test_write_json_writes_the_whole_document_or_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "new" / "folder" / "verdict.json"
    session._write_json(os.fspath(target), {"verdict": "GO", "name": "ü", "path": Path("/x")})
    assert target.read_text(encoding="utf-8") == '{\n  "verdict": "GO",\n  "name": "ü",\n  "path": "/x"\n}\n'
    with pytest.raises(TypeError):
        session._write_json(os.fspath(target), {("not", "a", "string"): 1})
    assert json.loads(target.read_text(encoding="utf-8"))["verdict"] == "GO"
    assert sorted(p.name for p in target.parent.iterdir()) == ["verdict.json"]  # no temporary left


# --- a failure's replay data -------------------------------------------------------------------------


class FailedHealthCheck(Exception):
    """Named as Hypothesis's: the class name is what marks a health check."""


class Derived(FailedHealthCheck):
    pass


def _item(*, seed_option: Any = None, obj: Any = None, properties: list[tuple[str, Any]] | None = None) -> Any:
    config = SimpleNamespace(getoption=lambda name, default=None: seed_option if name == "hypothesis_seed" else default)
    return SimpleNamespace(config=config, obj=obj, user_properties=properties or [])


def _call(exc: BaseException | None) -> Any:
    return SimpleNamespace(excinfo=SimpleNamespace(value=exc) if exc is not None else None)


def _report(sections: list[tuple[str, str]] | None = None, failed: bool = True) -> Any:
    return SimpleNamespace(sections=sections or [], failed=failed)


def test_failure_evidence_from_notes_and_the_hypothesis_section() -> None:
    exc = AssertionError("assert 1 == 2\nmore detail")
    exc.add_note("  Falsifying example: f(\n    x=1,\n)")
    exc.add_note("unrelated note")
    sections = [("Captured stdout call", "@reproduce_failure('0.0', b'ZZ') @seed(1)"),
                ("Hypothesis", "You can reproduce this example by temporarily adding "
                               "@reproduce_failure('6.1', b'AXic') as a decorator")]
    assert failure_evidence(_item(), _call(exc), _report(sections)) == {
        "health_check": False,
        "reason": "AssertionError: assert 1 == 2",
        "example": "Falsifying example: f(\n    x=1,\n)",
        "reproduce": "@reproduce_failure('6.1', b'AXic')",
        "seed": None,
    }


@pytest.mark.parametrize("prefix", ["Falsifying example", "Failing test case", "Falsifying explicit example"])
def test_every_example_prefix_is_recognised(prefix: str) -> None:
    exc = ValueError("v")
    exc.add_note("Trying example: not this one")
    exc.add_note(f"{prefix}: g(y=2)")
    assert failure_evidence(_item(), _call(exc), _report())["example"] == f"{prefix}: g(y=2)"


def test_long_examples_and_blobs_are_cut_at_2000_characters() -> None:
    exc = ValueError("v")
    exc.add_note("Falsifying example: " + "x" * 3000)
    exc.add_note("@reproduce_failure('6', b'" + "A" * 3000 + "')")
    evidence = failure_evidence(_item(), _call(exc), _report())
    assert evidence["example"] == ("Falsifying example: " + "x" * 3000)[:2000]
    assert evidence["reproduce"] == ("@reproduce_failure('6', b'" + "A" * 3000 + "')")[:2000]


def test_a_health_check_is_known_by_its_class_name_even_in_a_subclass() -> None:
    assert failure_evidence(_item(), _call(Derived("too slow")), _report())["health_check"] is True
    assert failure_evidence(_item(), _call(FailedHealthCheck("x")), _report())["reason"] == "FailedHealthCheck: x"


def test_a_failure_without_an_exception() -> None:
    assert failure_evidence(_item(), _call(None), _report()) == {
        "health_check": False, "reason": "failed", "example": None, "reproduce": None, "seed": None}


@pytest.mark.parametrize(("exc", "line"), [
    (ValueError("  first\nsecond  "), "ValueError: first"),
    (ValueError(""), "ValueError"),
    (ValueError("   "), "ValueError"),
    (KeyError("k"), "KeyError: 'k'"),
    (ValueError("y" * 400), ("ValueError: " + "y" * 400)[:300]),
])
def test_first_line(exc: BaseException, line: str) -> None:
    assert session._first_line(exc) == line


def _hypothesis_function(**attributes: Any) -> Any:
    def test() -> None:
        pass
    for name, value in attributes.items():
        setattr(test, name, value)
    return test


@pytest.mark.parametrize(("text", "item", "seed"), [
    ("... @seed(123) ...", _item(seed_option=9), "@seed(123)"),  # printed in the failure: first
    ("run with --hypothesis-seed=77 to replay", _item(seed_option=9), "--hypothesis-seed=77"),
    ("", _item(seed_option=9), "--hypothesis-seed=9"),  # the command line's seed
    ("", _item(seed_option=0), "--hypothesis-seed=0"),  # zero is a seed
    ("", _item(obj=_hypothesis_function(_hypothesis_internal_use_generated_seed=5,
                                        _hypothesis_internal_use_seed=6)), "--hypothesis-seed=5"),
    ("", _item(obj=_hypothesis_function(_hypothesis_internal_use_generated_seed=0)), "--hypothesis-seed=0"),
    ("", _item(obj=_hypothesis_function(_hypothesis_internal_use_seed=6)), "@seed(6)"),
    ("", _item(obj=_hypothesis_function(_hypothesis_internal_use_seed=0)), "@seed(0)"),
    ("", _item(obj=_hypothesis_function(hypothesis=object(),
                                        _hypothesis_internal_use_settings=SimpleNamespace(derandomize=True))),
     "derandomize=True: rerunning replays it"),
    ("", _item(obj=_hypothesis_function(hypothesis=object(),
                                        _hypothesis_internal_use_settings=SimpleNamespace(derandomize=False))), None),
    ("", _item(obj=_hypothesis_function(hypothesis=object(), _hypothesis_internal_use_settings=SimpleNamespace())),
     None),
    ("", _item(obj=_hypothesis_function(_hypothesis_internal_use_settings=SimpleNamespace(derandomize=True))),
     None),  # not a Hypothesis test
    ("", _item(), None),
    ("", SimpleNamespace(), None),  # an item without a config
])
def test_seed(text: str, item: Any, seed: str | None) -> None:
    assert session._seed(item, text) == seed


def test_seed_falls_back_to_the_default_profile() -> None:
    from hypothesis import settings

    item = _item(obj=_hypothesis_function(hypothesis=object()))
    previous = getattr(settings, "_current_profile", None) or "default"
    settings.register_profile("mut-session-derandomized", derandomize=True)
    settings.register_profile("mut-session-random", derandomize=False, database=None)
    try:
        settings.load_profile("mut-session-derandomized")
        assert session._seed(item, "") == "derandomize=True: rerunning replays it"
        settings.load_profile("mut-session-random")
        assert session._seed(item, "") is None
    finally:
        settings.load_profile(previous)


def test_evidence_is_attached_only_to_failed_reports_of_bound_tests() -> None:
    bound = _item(properties=[("other", 1), (PROPERTY, "FALSIFY-X-001")])
    report = _report()
    attach_evidence(bound, _call(ValueError("v")), report)
    assert getattr(report, EVIDENCE_ATTR)["reason"] == "ValueError: v"
    for item, rep in ((bound, _report(failed=False)), (_item(properties=[("other", PROPERTY)]), _report())):
        attach_evidence(item, _call(ValueError("v")), rep)
        assert not hasattr(rep, EVIDENCE_ATTR)


# --- a bound test's reports -> one TestResult --------------------------------------------------------


def _phase(outcome: str, duration: float | None = 0.5, **extra: Any) -> Any:
    return SimpleNamespace(outcome=outcome, duration=duration, **extra)


def _clean(**overrides: Any) -> dict[str, Any]:
    phases = {"setup": _phase("passed", 0.25), "call": _phase("passed", 1.0), "teardown": _phase("passed", 0.125)}
    phases.update(overrides)
    return phases


def test_reports_duration_counts_a_missing_or_none_duration_as_zero() -> None:
    assert reports_duration({"setup": _phase("passed", 0.25), "call": _phase("passed", None),
                             "teardown": SimpleNamespace(outcome="passed")}) == 0.25
    assert reports_duration({}) == 0.0


def test_passed_cleanly() -> None:
    assert passed_cleanly(_clean()) is True
    assert passed_cleanly(_clean(call=_phase("failed"))) is False
    assert passed_cleanly(_clean(setup=_phase("failed"))) is False
    assert passed_cleanly(_clean(teardown=_phase("failed"))) is False
    assert passed_cleanly(_clean(call=_phase("passed", wasxfail="why"))) is False  # an xpass
    phases = _clean()
    del phases["teardown"]
    assert passed_cleanly(phases) is False  # the teardown has not reported yet
    del phases["call"]
    assert passed_cleanly(phases) is False


def test_a_clean_pass_adds_up_its_three_phases() -> None:
    assert results_of({"t::a": _clean()}) == {"t::a": TestResult("t::a", TestStatus.PASSED, 1.375, "call")}


@pytest.mark.parametrize(("phases", "expected"), [
    # the first failed phase decides, with its evidence
    (_clean(setup=_phase("failed", **{EVIDENCE_ATTR: {"reason": "E: boom", "seed": "@seed(1)", "reproduce": "@r",
                                                       "example": "Falsifying example: f()"}})),
     TestResult("t", TestStatus.FAILED, 1.625, "setup", "E: boom", "@seed(1)", "@r", "Falsifying example: f()")),
    (_clean(call=_phase("failed"), teardown=_phase("failed")), TestResult("t", TestStatus.FAILED, 1.25, "call", "failed")),
    (_clean(teardown=_phase("failed", **{EVIDENCE_ATTR: {"reason": ""}})),
     TestResult("t", TestStatus.FAILED, 1.75, "teardown", "failed")),
    (_clean(call=_phase("failed", **{EVIDENCE_ATTR: {"health_check": True, "reason": "FailedHealthCheck: slow"}})),
     TestResult("t", TestStatus.HEALTH_CHECK, 0.875, "call", "FailedHealthCheck: slow")),
    (_clean(call=_phase("failed", **{EVIDENCE_ATTR: {"health_check": False}})),
     TestResult("t", TestStatus.FAILED, 0.875, "call", "failed")),
    # skips: the reason without pytest's prefix; an xfail is its own status
    ({"setup": _phase("skipped", longrepr=("f.py", 3, "Skipped: needs cuda"))},
     TestResult("t", TestStatus.SKIPPED, 0.5, "setup", "needs cuda")),
    ({"setup": _phase("passed"), "call": _phase("skipped", longrepr=("f.py", 3, "no prefix"))},
     TestResult("t", TestStatus.SKIPPED, 1.0, "call", "no prefix")),
    ({"setup": _phase("skipped", longrepr="not a tuple")}, TestResult("t", TestStatus.SKIPPED, 0.5, "setup", "")),
    ({"setup": _phase("passed"), "call": _phase("skipped", wasxfail="known bug")},
     TestResult("t", TestStatus.XFAILED, 1.0, "call", "known bug")),
    ({"setup": _phase("passed"), "call": _phase("skipped", wasxfail="")},
     TestResult("t", TestStatus.XFAILED, 1.0, "call", "xfail")),
    ({"setup": _phase("passed"), "call": _phase("passed", wasxfail="fixed?"), "teardown": _phase("passed")},
     TestResult("t", TestStatus.XPASSED, 1.5, "call", "fixed?")),
    ({"setup": _phase("passed"), "call": _phase("passed", wasxfail=""), "teardown": _phase("passed")},
     TestResult("t", TestStatus.XPASSED, 1.5, "call", "xpass")),
    # a pass whose teardown has not reported yet is still a pass
    ({"setup": _phase("passed"), "call": _phase("passed")}, TestResult("t", TestStatus.PASSED, 1.0, "call")),
    # nothing reached the body
    ({"setup": _phase("passed")}, TestResult("t", TestStatus.SKIPPED, 0.5, "setup", "did not reach the test body")),
    ({}, TestResult("t", TestStatus.SKIPPED, 0.0, "setup", "did not reach the test body")),
])
def test_result_of(phases: dict[str, Any], expected: TestResult) -> None:
    assert result_of("t", phases) == expected
    assert results_of({"t": phases}) == {"t": expected}


def test_a_skip_in_teardown_after_a_pass_is_a_pass() -> None:
    phases = {"setup": _phase("passed"), "call": _phase("passed"), "teardown": _phase("skipped")}
    assert result_of("t", phases) == TestResult("t", TestStatus.PASSED, 1.5, "call")


def test_the_read_only_cache_reads_through_and_drops_writes() -> None:
    store: dict[str, Any] = {"k": 1}
    backing = SimpleNamespace(get=lambda key, default: store.get(key, default),
                              set=lambda key, value: store.__setitem__(key, value))
    cache = session._ReadOnlyCache(backing)
    assert cache.get("k", None) == 1 and cache.get("missing", "d") == "d"
    cache.set("k", 2)
    assert store == {"k": 1}


def test_the_seed_of_a_failure_comes_from_its_item() -> None:
    assert failure_evidence(_item(seed_option=5), _call(ValueError("v")), _report())["seed"] == "--hypothesis-seed=5"


# --- --mutants: what the session hands the planner and the runner ----------------------------------


class _Reporter:
    def __init__(self, tty: bool) -> None:
        self.lines: list[str] = []
        self.tty = tty

    def write_line(self, line: str) -> None:
        self.lines.append(line)

    def rewrite(self, line: str, erase: bool = False) -> None:
        self.lines.append(f"rewrite:{line}")

    def isatty(self) -> bool:
        return self.tty


def _mutant_session(tmp_path: Path, *, jobs: int | None, reporter: Any, artifact: Any = None) -> Any:
    from falsifiers.records import Falsifier
    from falsifiers.settings import Profile
    from falsifiers.verdict import FalsifierOutcome, Outcome, Verdict, VerdictReport

    falsifier = Falsifier("FALSIFY-M-001", "m-v1", ("INV-M-001",), "r", "p", "f", Location("m.yaml", 1, 1))
    contracts = tmp_path / "contracts"
    contracts.mkdir(exist_ok=True)
    state = object.__new__(session.ContractsSession)
    state.report = VerdictReport(Verdict.GO, Profile("cpu"), (FalsifierOutcome(falsifier, Outcome.CORROBORATED, "ok",
                                                                                True, (), ("t::a",)),))
    state.phases = {"t::a": {"setup": _phase("passed", 0.25), "call": _phase("passed", 1.0)}}
    state.bindings = {"FALSIFY-M-001": ("t::a",)}
    state.artifact = artifact
    state.corpus = Corpus.of([], [])
    state.settings = SimpleNamespace(contracts_dir=contracts, max_bytes=1000)
    state.profile = Profile("gpu")
    state.config = SimpleNamespace(getoption=lambda name: jobs if name == "apr_mutants_jobs" else None,
                                   pluginmanager=SimpleNamespace(get_plugin=lambda name: reporter
                                                                 if name == "terminalreporter" else None),
                                   rootpath=tmp_path)
    return state


def test_run_mutants_hands_over_durations_jobs_artifact_and_a_snapshot(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from falsifiers import mutant_runs
    from falsifiers.artifact import ArtifactRecord
    from falsifiers.mutation import MutantResult, MutantStatus

    seen: dict[str, Any] = {}
    planned = [SimpleNamespace(falsifier=SimpleNamespace(contract="m-v1"))]
    skipped = MutantResult("FALSIFY-X-001", "x-v1", "n", "code", MutantStatus.NOT_RUN)
    ran = MutantResult("FALSIFY-M-001", "m-v1", "k", "code", MutantStatus.KILLED)

    def plan(falsifiers: Any, outcomes: Any, bindings: Any, durations: Any) -> Any:
        seen.update(outcomes=outcomes, bindings=bindings, durations=durations)
        return planned, [skipped]

    def run(runs: Any, **options: Any) -> Any:
        snapshot = Path(options["corpus_snapshot"])
        seen.update(runs=runs, options=options, snapshot=snapshot.name, folder=snapshot.parent.name,
                    stored=json.loads(snapshot.read_text(encoding="utf-8")))
        return [ran]

    monkeypatch.setattr(mutant_runs, "plan_runs", plan)
    monkeypatch.setattr(mutant_runs, "run_mutants", run)
    reporter = _Reporter(tty=False)
    card = ArtifactRecord("/m.apr", "ab", 1, "/card.md")
    state = _mutant_session(tmp_path, jobs=3, reporter=reporter, artifact=card)
    assert state._run_mutants() == [ran, skipped]
    assert seen["outcomes"] == {"FALSIFY-M-001": "CORROBORATED"}
    assert seen["bindings"] == {"FALSIFY-M-001": ("t::a",)}
    assert seen["durations"] == {"t::a": 1.25}
    assert seen["runs"] is planned
    options = seen["options"]
    assert (options["rootdir"], options["profile"], options["jobs"]) == (tmp_path, "gpu", 3)
    assert options["extra"] == ["--artifact=/m.apr", "--model-card=/card.md"]
    assert seen["snapshot"] == "corpus.json" and seen["folder"].startswith("apr-corpus-")
    assert set(seen["stored"]) == {"key", "corpus"}
    assert reporter.lines == ["apr-contracts: running 1 mutant(s), 3 at a time"]
    assert options["progress"] is not None
    assert state.mutant_note.startswith("mutants: 1 run in ") and state.mutant_note.endswith(" s, 3 at a time")


def test_run_mutants_defaults_to_one_job_per_cpu_and_writes_nothing_without_a_reporter(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from falsifiers import mutant_runs
    from falsifiers.artifact import ArtifactRecord

    seen: dict[str, Any] = {}
    monkeypatch.setattr(mutant_runs, "plan_runs", lambda *a: ([], []))
    monkeypatch.setattr(mutant_runs, "run_mutants", lambda runs, **options: seen.update(options) or [])
    monkeypatch.setattr(session.os, "cpu_count", lambda: 6)
    state = _mutant_session(tmp_path, jobs=None, reporter=None, artifact=ArtifactRecord("/m.apr", "ab", 1))
    assert state._run_mutants() == []
    assert seen["jobs"] == 6 and seen["progress"] is None
    assert seen["extra"] == ["--artifact=/m.apr"]  # no model card: no flag
    monkeypatch.setattr(session.os, "cpu_count", lambda: None)
    state._run_mutants()
    assert seen["jobs"] == 1


def test_the_receipt_is_written_through_a_hidden_temporary_beside_it(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Beside it, so the final rename never crosses file systems."""
    made: list[dict[str, Any]] = []
    real = session.tempfile.mkstemp

    def spy(**options: Any) -> Any:
        made.append(options)
        return real(**options)
    monkeypatch.setattr(session.tempfile, "mkstemp", spy)
    session._write_json(os.fspath(tmp_path / "verdict.json"), {"verdict": "GO"})
    assert made == [{"dir": tmp_path, "prefix": ".verdict.json.", "suffix": ".tmp"}]


def test_a_config_without_the_hypothesis_seed_option_gives_no_seed() -> None:
    def getoption(name: str, *default: Any) -> Any:
        if default:
            return default[0]
        raise ValueError(f"no option named {name!r}")  # as pytest's, for an option no plugin added
    item = SimpleNamespace(config=SimpleNamespace(getoption=getoption), obj=None)
    assert session._seed(item, "") is None


def test_attached_evidence_reads_the_item() -> None:
    bound = _item(seed_option=8, properties=[(PROPERTY, "FALSIFY-X-001")])
    report = _report()
    attach_evidence(bound, _call(ValueError("v")), report)
    assert getattr(report, EVIDENCE_ATTR)["seed"] == "--hypothesis-seed=8"


class _Item(pytest.Item):
    def runtest(self) -> None:  # never run: the hook only asks what kind of node it is
        raise NotImplementedError


@pytest.mark.parametrize(("node", "report", "worker", "attached"), [
    (object.__new__(_Item), pytest.TestReport("t::a", ("t.py", 1, "a"), {}, "failed", None, "call"), False, True),
    (object.__new__(_Item), pytest.TestReport("t::a", ("t.py", 1, "a"), {}, "failed", None, "call"), True, False),
    (SimpleNamespace(), pytest.TestReport("t::a", ("t.py", 1, "a"), {}, "failed", None, "call"), False, False),
    (object.__new__(_Item), pytest.CollectReport("t.py", "failed", None, []), False, False),
])
def test_exception_interact_attaches_evidence_to_test_reports_on_the_controller(
        monkeypatch: pytest.MonkeyPatch, node: Any, report: Any, worker: bool, attached: bool) -> None:
    calls: list[tuple[Any, Any, Any]] = []
    monkeypatch.setattr(session, "attach_evidence", lambda *a: calls.append(a))
    state = object.__new__(session.ContractsSession)
    state.is_worker = worker
    call = _call(ValueError("v"))
    state.pytest_exception_interact(node, call, report)
    assert calls == ([(node, call, report)] if attached else [])
