"""falsifiers.session's hooks on small fakes (issue 23): what a run prints at its end, which reports
it keeps, the ``--mutants`` progress it wires to the terminal, the selection options, and the receipt
written in UTF-8 whatever the locale.

`ContractsSession` is built with ``object.__new__`` and only the attributes each hook reads, so a
hook's own decisions are measured without a pytest run around them; every expected value is written
from the rule the hook states (the 50-line cap, the 80-column floor, one line per unbound failure).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from falsifiers import session
from falsifiers.corpus import corpus_key, discover, display_paths
from falsifiers.errors import SelectionError
from falsifiers.records import Contract, Corpus, Falsifier, Finding, Location, Severity
from falsifiers.session import PROPERTY, Scope, collected_scope

# --- the end of the run: the contract errors, the table, the receipt line ---------------------------


class _Terminal:
    """A terminal reporter that records each call in order, with its markup."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def write_sep(self, sep: str, title: str, **markup: Any) -> None:
        self.calls.append(("sep", sep, title, markup))

    def write_line(self, line: str, **markup: Any) -> None:
        self.calls.append(("line", line, markup))

    def write(self, text: str, **markup: Any) -> None:
        self.calls.append(("write", text, markup))


def _summary_session(monkeypatch: pytest.MonkeyPatch, *, findings: list[Finding] | None = None, fullwidth: int = 120,
                     markup: bool = False, verbose: int = 0, receipt_path: str | None = None) -> tuple[Any, list[Any]]:
    rendered: list[Any] = []

    def render(report: Any, **options: Any) -> str:
        rendered.append((report, options))
        return "TABLE\n"
    monkeypatch.setattr(session, "render_verdict", render)
    state = object.__new__(session.ContractsSession)
    state.is_worker = False
    state.report = SimpleNamespace(name="the report")
    state.table_to_caller = False
    state.corpus = Corpus.of([], findings or [])
    state.receipt_path = receipt_path
    state.config = SimpleNamespace(get_terminal_writer=lambda: SimpleNamespace(fullwidth=fullwidth, hasmarkup=markup),
                                   option=SimpleNamespace(verbose=verbose))
    return state, rendered


def _error(n: int) -> Finding:
    return Finding(Severity.ERROR, "schema", f"error {n}", Location("contracts/c.yaml", n, 1))


def test_a_clean_run_prints_the_table_under_its_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    state, rendered = _summary_session(monkeypatch)
    terminal = _Terminal()
    state.pytest_terminal_summary(terminal)
    assert terminal.calls == [("sep", "=", "contracts", {"bold": True}), ("write", "TABLE\n", {})]
    assert rendered == [(state.report, {"width": 120, "color": False, "verbose": False})]


def test_the_receipt_line_names_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    state, _ = _summary_session(monkeypatch, receipt_path="out/verdict.json")
    terminal = _Terminal()
    state.pytest_terminal_summary(terminal)
    assert terminal.calls[-1] == ("line", "contracts receipt written to out/verdict.json", {})


def test_contract_errors_come_first_in_red_at_most_50_and_only_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    warning = Finding(Severity.WARNING, "style", "only a warning", Location("contracts/c.yaml", 1, 1))
    errors = [_error(n) for n in range(1, 53)]
    state, _ = _summary_session(monkeypatch, findings=[warning, *errors])
    terminal = _Terminal()
    state.pytest_terminal_summary(terminal)
    assert terminal.calls[0] == ("sep", "-", "contract errors (52)", {"red": True})
    assert terminal.calls[1:51] == [("line", e.render(), {}) for e in errors[:50]]
    assert terminal.calls[51:] == [("sep", "=", "contracts", {"bold": True}), ("write", "TABLE\n", {})]


@pytest.mark.parametrize("count", [1, 49, 50, 51])
def test_the_error_section_lists_every_error_up_to_50(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    state, _ = _summary_session(monkeypatch, findings=[_error(n) for n in range(1, count + 1)])
    terminal = _Terminal()
    state.pytest_terminal_summary(terminal)
    lines = [c[1] for c in terminal.calls if c[0] == "line"]
    assert lines == [_error(n).render() for n in range(1, min(count, 50) + 1)]
    assert terminal.calls[0] == ("sep", "-", f"contract errors ({count})", {"red": True})


@pytest.mark.parametrize(("fullwidth", "markup", "verbose", "options"), [
    (79, False, 0, {"width": 80, "color": False, "verbose": False}),  # never narrower than 80 columns
    (80, True, 1, {"width": 80, "color": True, "verbose": True}),
    (81, False, 2, {"width": 81, "color": False, "verbose": True}),
    (200, True, -1, {"width": 200, "color": True, "verbose": False}),  # -q
])
def test_the_table_follows_the_terminal_and_the_verbosity(monkeypatch: pytest.MonkeyPatch, fullwidth: int,
                                                          markup: bool, verbose: int, options: dict[str, Any]) -> None:
    state, rendered = _summary_session(monkeypatch, fullwidth=fullwidth, markup=markup, verbose=verbose)
    state.pytest_terminal_summary(_Terminal())
    assert rendered == [(state.report, options)]


@pytest.mark.parametrize("case", ["worker", "no verdict", "worker without a verdict", "the caller prints it"])
def test_nothing_is_printed_without_a_verdict_on_a_worker_or_for_the_caller(monkeypatch: pytest.MonkeyPatch,
                                                                            case: str) -> None:
    state, rendered = _summary_session(monkeypatch, findings=[_error(1)], receipt_path="verdict.json")
    state.is_worker = case in ("worker", "worker without a verdict")
    if case in ("no verdict", "worker without a verdict"):
        state.report = None
    state.table_to_caller = case == "the caller prints it"
    terminal = _Terminal()
    state.pytest_terminal_summary(terminal)
    assert terminal.calls == [] and rendered == []


# --- the reports a run keeps ----------------------------------------------------------------------


def _logreport(nodeid: str, when: str, *, failed: bool, properties: list[tuple[str, Any]]) -> Any:
    return SimpleNamespace(nodeid=nodeid, when=when, failed=failed, user_properties=properties)


def _report_session(*, worker: bool) -> Any:
    state = object.__new__(session.ContractsSession)
    state.is_worker = worker
    state.phases = {}
    state.failed_tests = 0
    return state


def test_bound_reports_are_kept_by_test_and_phase_and_never_counted_as_unbound_failures() -> None:
    state = _report_session(worker=False)
    bound = [("other", "x"), (PROPERTY, "FALSIFY-A-001"), (PROPERTY, "FALSIFY-B-001")]
    reports = [_logreport("t::a", when, failed=when == "call", properties=bound) for when in ("setup", "call")]
    other = _logreport("t::b", "setup", failed=False, properties=[(PROPERTY, "FALSIFY-A-001")])
    for report in (*reports, other):
        state.pytest_runtest_logreport(report)
    assert state.phases == {"t::a": {"setup": reports[0], "call": reports[1]}, "t::b": {"setup": other}}
    assert state.failed_tests == 0


def test_each_failed_report_of_an_unbound_test_is_counted() -> None:
    state = _report_session(worker=False)
    for nodeid in ("t::x", "t::y", "t::z"):
        state.pytest_runtest_logreport(_logreport(nodeid, "call", failed=True, properties=[("other", PROPERTY)]))
    state.pytest_runtest_logreport(_logreport("t::ok", "call", failed=False, properties=[]))
    assert state.failed_tests == 3
    assert state.phases == {}


def test_a_worker_keeps_nothing() -> None:
    state = _report_session(worker=True)
    state.pytest_runtest_logreport(_logreport("t::a", "call", failed=True, properties=[(PROPERTY, "FALSIFY-A-001")]))
    state.pytest_runtest_logreport(_logreport("t::x", "call", failed=True, properties=[]))
    assert state.phases == {} and state.failed_tests == 0


# --- the scope note, the collected scope ------------------------------------------------------------


@pytest.mark.parametrize("scope", list(Scope))
def test_only_a_paths_run_carries_the_scope_note(scope: Scope) -> None:
    state = object.__new__(session.ContractsSession)
    state.scope = scope
    expected = ["scope: contracts with tests among the given paths (run without paths for the full verdict)"]
    assert state._scope_notes() == (expected if scope is Scope.PATHS else [])


def _config(tmp_path: Path, args: list[str], testpaths: list[str] | None) -> Any:
    return SimpleNamespace(args_source=pytest.Config.ArgsSource.ARGS, rootpath=tmp_path, args=args,
                           getini=lambda name: testpaths if name == "testpaths" else None,
                           invocation_params=SimpleNamespace(dir=tmp_path))


@given(name=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,11}", fullmatch=True))
@example(name="XX.XX")
def test_without_testpaths_one_folder_below_the_root_is_not_the_whole_suite(name: str) -> None:
    """pytest's default testpaths is the root folder: a folder below it is part of the suite only."""
    root = Path("/nonexistent-root")
    assert collected_scope(_config(root, [name], None)) is Scope.PATHS
    assert collected_scope(_config(root, [name], [])) is Scope.PATHS
    assert collected_scope(_config(root, [".", name], None)) is Scope.FULL


def test_an_argument_with_a_double_colon_is_a_node_id_even_where_a_folder_has_that_name(tmp_path: Path) -> None:
    # pytest reads `a::b` as the test b of the file a, never as the folder `a::b`
    assert collected_scope(_config(tmp_path, ["a::b"], ["a::b"])) is Scope.PATHS
    assert collected_scope(_config(tmp_path, ["a"], ["a"])) is Scope.FULL


# --- --falsifier / --contract ----------------------------------------------------------------------


def _contract(name: str, *ids: str) -> Contract:
    here = Location(f"contracts/{name}.yaml", 1, 1)
    falsifiers = tuple(Falsifier(i, name, (), "r", "p", "f", here) for i in ids)
    return Contract(name, here.path, "0" * 64, "1.0.0", None, "", (), (), falsifiers, True, here)


def _selection_session(ids: list[str] | None, names: list[str] | None) -> Any:
    state = object.__new__(session.ContractsSession)
    state.corpus = Corpus.of([_contract("alpha-v1", "FALSIFY-ALPHA-001", "FALSIFY-ALPHA-002"),
                              _contract("beta-v1", "FALSIFY-BETA-001")], [])
    options = {"apr_falsifier": ids, "apr_contract": names}
    state.config = SimpleNamespace(getoption=lambda name: options[name])
    return state


@pytest.mark.parametrize(("ids", "names", "chosen"), [
    (None, None, None),  # no option: no selection (the run's scope decides)
    ([], [], None),
    (["FALSIFY-BETA-001"], None, {"FALSIFY-BETA-001"}),
    (["FALSIFY-BETA-001", "FALSIFY-ALPHA-002"], [], {"FALSIFY-BETA-001", "FALSIFY-ALPHA-002"}),
    (None, ["alpha-v1"], {"FALSIFY-ALPHA-001", "FALSIFY-ALPHA-002"}),  # a contract: all its falsifiers
    (["FALSIFY-BETA-001"], ["alpha-v1"], {"FALSIFY-ALPHA-001", "FALSIFY-ALPHA-002", "FALSIFY-BETA-001"}),
    (None, ["alpha-v1", "beta-v1"], {"FALSIFY-ALPHA-001", "FALSIFY-ALPHA-002", "FALSIFY-BETA-001"}),
])
def test_the_selection_is_the_union_of_the_falsifiers_and_contracts_named(
        ids: list[str] | None, names: list[str] | None, chosen: set[str] | None) -> None:
    assert _selection_session(ids, names)._resolve_selection() == chosen


@pytest.mark.parametrize(("ids", "names", "message", "hint"), [
    (["FALSIFY-BETA-01"], None, "--falsifier FALSIFY-BETA-01: no contract declares it",
     "did you mean FALSIFY-BETA-001?"),
    (["FALSIFY-BETA-001", "NOTHING-LIKE-IT"], None, "--falsifier NOTHING-LIKE-IT: no contract declares it",
     "see `apr contracts list`"),
    (None, ["alpha-v2"], "--contract alpha-v2: no such contract", "did you mean alpha-v1?"),
    (["FALSIFY-BETA-001"], ["alpha-v1", "zzzzzzzzzz"], "--contract zzzzzzzzzz: no such contract",
     "see `apr contracts list`"),
])
def test_an_unknown_name_is_a_selection_error_with_the_nearest_name(
        ids: list[str] | None, names: list[str] | None, message: str, hint: str) -> None:
    with pytest.raises(SelectionError) as raised:
        _selection_session(ids, names)._resolve_selection()
    assert raised.value.message == message
    assert raised.value.hint == hint


# --- --mutants: the progress wired to the terminal -------------------------------------------------


class _Reporter:
    """A terminal reporter: ``isatty`` a method (as pytest's), an attribute, or absent."""

    def __init__(self, tty: Any = "absent") -> None:
        self.lines: list[Any] = []
        if tty != "absent":
            self.isatty = (lambda: tty) if isinstance(tty, bool) else tty

    def write_line(self, line: str) -> None:
        self.lines.append(line)

    def rewrite(self, line: str, erase: bool = False) -> None:
        self.lines.append(("rewrite", line, erase))


def _contracts_falsifier(contract: str) -> Any:
    return SimpleNamespace(falsifier=SimpleNamespace(contract=contract))


def _run_mutants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reporter: Any,
                 ticks: list[float] | None = None) -> tuple[Any, dict[str, Any]]:
    from falsifiers import mutant_runs
    from falsifiers.records import Falsifier as Declared
    from falsifiers.settings import Profile
    from falsifiers.verdict import FalsifierOutcome, Outcome, Verdict, VerdictReport

    seen: dict[str, Any] = {}
    planned = [_contracts_falsifier("a-v1"), _contracts_falsifier("a-v1"), _contracts_falsifier("b-v1")]

    def plan(falsifiers: Any, outcomes: Any, bindings: Any, durations: Any) -> Any:
        seen["falsifiers"] = falsifiers
        return planned, []

    def run(runs: Any, **options: Any) -> Any:
        seen.update(options, stored=json.loads(Path(options["corpus_snapshot"]).read_text(encoding="utf-8")))
        return []

    monkeypatch.setattr(mutant_runs, "plan_runs", plan)
    monkeypatch.setattr(mutant_runs, "run_mutants", run)
    contracts = tmp_path / "contracts"
    contracts.mkdir(exist_ok=True)
    (contracts / "a-v1.yaml").write_text("metadata: {}\n", encoding="utf-8")
    first = Declared("FALSIFY-A-001", "a-v1", ("INV-A-001",), "r", "p", "f", Location("a.yaml", 1, 1))
    second = Declared("FALSIFY-B-001", "b-v1", ("INV-B-001",), "r", "p", "f", Location("b.yaml", 1, 1))
    state = object.__new__(session.ContractsSession)
    state.report = VerdictReport(Verdict.GO, Profile("cpu"), tuple(
        FalsifierOutcome(f, Outcome.CORROBORATED, "ok", True, (), ("t::a",)) for f in (first, second)))
    state.phases = {}
    state.bindings = {}
    state.artifact = None
    state.corpus = Corpus.of([], [])
    state.settings = SimpleNamespace(contracts_dir=contracts, max_bytes=4321)
    state.profile = Profile("cpu")
    state.config = SimpleNamespace(getoption=lambda name: 2 if name == "apr_mutants_jobs" else None,
                                   pluginmanager=SimpleNamespace(get_plugin=lambda name: reporter
                                                                 if name == "terminalreporter" else None),
                                   rootpath=tmp_path)
    if ticks is not None:
        clock = iter(ticks)
        monkeypatch.setattr(session.time, "perf_counter", lambda: next(clock))
    state._run_mutants()
    seen["expected_falsifiers"] = [first, second]
    return state, seen


def _feed(progress: Any) -> None:
    from falsifiers.mutation import MutantStatus

    for done, (contract, status) in enumerate([("a-v1", MutantStatus.KILLED), ("b-v1", MutantStatus.SURVIVED),
                                               ("a-v1", MutantStatus.KILLED)], start=1):
        progress(SimpleNamespace(contract=contract, status=status), done, 3)


def test_the_planner_gets_every_falsifier_of_the_verdict_and_the_snapshot_its_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, seen = _run_mutants(tmp_path, monkeypatch, None)
    assert seen["falsifiers"] == seen["expected_falsifiers"]
    files = discover([tmp_path / "contracts"])
    assert seen["stored"]["key"] == corpus_key(files, display_paths(files, tmp_path), 4321)  # the settings' limit


def test_the_mutant_note_gives_the_seconds_the_runs_took(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state, _ = _run_mutants(tmp_path, monkeypatch, None, ticks=[100.0, 102.5])
    assert state.mutant_note == "mutants: 3 run in 2.5 s, 2 at a time"


@pytest.mark.parametrize("tty", [False, "absent", SimpleNamespace()], ids=["isatty-false", "no-isatty", "not-callable"])
def test_off_a_terminal_one_line_per_contract_once_its_last_mutant_ran(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tty: Any) -> None:
    reporter = _Reporter(tty=tty)
    _, seen = _run_mutants(tmp_path, monkeypatch, reporter)
    _feed(seen["progress"])
    assert reporter.lines[0] == "apr-contracts: running 3 mutant(s), 2 at a time"
    assert [line[:len("mutants: b-v1: 0/1 killed")] for line in reporter.lines[1:]] == [
        "mutants: b-v1: 0/1 killed", "mutants: a-v1: 2/2 killed"]


def test_on_a_terminal_one_status_line_rewritten_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reporter = _Reporter(tty=True)
    _, seen = _run_mutants(tmp_path, monkeypatch, reporter)
    _feed(seen["progress"])
    assert reporter.lines[0] == "apr-contracts: running 3 mutant(s), 2 at a time"
    rewritten = reporter.lines[1:-1]
    assert [(kind, line.split(",")[:2], erase) for kind, line, erase in rewritten] == [
        ("rewrite", ["mutants: 1/3 done", " 0 survived"], True),
        ("rewrite", ["mutants: 2/3 done", " 1 survived"], True),
        ("rewrite", ["mutants: 3/3 done", " 1 survived"], True)]
    assert reporter.lines[-1] == ""  # the status line ended once, at the end


# --- the receipt is UTF-8 whatever the locale -------------------------------------------------------


def test_the_receipt_is_utf8_here_and_under_an_ascii_locale(tmp_path: Path) -> None:
    """A run under LC_ALL=C (CI images, cron) must write the same bytes: consumers read UTF-8."""
    target = tmp_path / "verdict.json"
    expected = '{\n  "name": "Grüße ✓"\n}\n'.encode()
    here = tmp_path / "here.json"
    session._write_json(os.fspath(here), {"name": "Grüße ✓"})  # in-process too, so mutmut sees this test reach it
    assert here.read_bytes() == expected
    package_root = Path(session.__file__).resolve().parents[1]  # mutmut's copy when it runs a mutant
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONIOENCODING": "ascii", "PYTHONPATH": os.fspath(package_root)}
    code = ("import locale, sys; from falsifiers import session; "
            "print(locale.getpreferredencoding(False)); "
            "session._write_json(sys.argv[1], {'name': 'Gr\\u00fc\\u00dfe \\u2713'})")  # the command line must be ASCII here
    done = subprocess.run([sys.executable, "-c", code, os.fspath(target)], env=env, cwd=package_root,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "utf" not in done.stdout.lower(), f"the child ran under {done.stdout.strip()}, not a non-UTF-8 locale"
    assert target.read_bytes() == expected


# --- the verdict's inputs: what the session gathers for `compute_verdict` ---------------------------
# The module's rule: "this class only gathers their inputs and acts on their answers". So each case
# states the exact inputs gathered from the session's state; `compute_verdict` itself is measured in
# tests/harness/test_verdict_lattice.py.


def _in_scope_contract(name: str, *ids: str, valid: bool = True) -> Contract:
    here = Location(f"contracts/{name}.yaml", 1, 1)
    falsifiers = tuple(Falsifier(i, name, (), "r", "p", "f", here) for i in ids)
    return Contract(name, here.path, "0" * 64, "1.0.0", None, "", (), (), falsifiers, valid, here)


_ALPHA = _in_scope_contract("alpha-v1", "FALSIFY-ALPHA-001", "FALSIFY-ALPHA-002")
_BETA = _in_scope_contract("beta-v1", "FALSIFY-BETA-001")
_BROKEN = _in_scope_contract("broken-v1", "FALSIFY-BROKEN-001", valid=False)
_BROKEN_ERROR = Finding(Severity.ERROR, "schema", "bad key", Location("contracts/broken-v1.yaml", 4, 2))


def _verdict_session(monkeypatch: pytest.MonkeyPatch, *, scope: Scope, **state: Any) -> tuple[Any, list[Any]]:
    calls: list[Any] = []

    def compute(*args: Any, **options: Any) -> Any:
        calls.append((args, options))
        return "the report"
    monkeypatch.setattr(session.verdict, "compute_verdict", compute)
    ses = object.__new__(session.ContractsSession)
    defaults: dict[str, Any] = dict(
        corpus=Corpus.of([_ALPHA, _BETA, _BROKEN], [_BROKEN_ERROR]), selection=None, artifact_falsifiers=set(),
        claimed=set(), phases={}, problems=[], artifact=None, mutant_results=None, mutant_note="", mutant=None,
        bindings={"FALSIFY-ALPHA-001": ("t::a",)}, selected={"t::a"}, profile="the profile")
    for key, value in {**defaults, **state, "scope": scope}.items():
        setattr(ses, key, value)
    return ses, calls


def _pytest_session(shouldfail: Any = False, shouldstop: Any = False) -> Any:
    return SimpleNamespace(shouldfail=shouldfail, shouldstop=shouldstop)


def _ids(falsifiers: Any) -> list[str]:
    return [f.id for f in falsifiers]


def test_a_full_run_judges_every_contract_and_names_the_broken_one(monkeypatch: pytest.MonkeyPatch) -> None:
    phases = {"t::a": {"setup": SimpleNamespace(outcome="passed", duration=1.0)}}
    ses, calls = _verdict_session(monkeypatch, scope=Scope.FULL, phases=phases)
    assert ses._verdict(_pytest_session(), 0) == "the report"
    [(args, options)] = calls
    assert _ids(args[0]) == ["FALSIFY-ALPHA-001", "FALSIFY-ALPHA-002", "FALSIFY-BETA-001", "FALSIFY-BROKEN-001"]
    assert args[1:] == ({"FALSIFY-ALPHA-001": ("t::a",)}, {"t::a"}, session.results_of(phases), "the profile")
    assert options == {
        "invalid": [session.InvalidContract(_BROKEN, "contracts/broken-v1.yaml:4:2: bad key")],
        "problems": [], "stopped": None, "notes": [], "awaiting_artifact": set(), "artifact": None,
        "artifact_changed": None, "vacuous": None, "mutants": None}


def test_a_paths_run_judges_the_claimed_contracts_with_its_note(monkeypatch: pytest.MonkeyPatch) -> None:
    ses, calls = _verdict_session(monkeypatch, scope=Scope.PATHS, claimed={"beta-v1", "broken-v1"},
                                  artifact_falsifiers={"FALSIFY-BETA-001"})
    ses._verdict(_pytest_session(), 0)
    [(args, options)] = calls
    assert _ids(args[0]) == ["FALSIFY-BETA-001", "FALSIFY-BROKEN-001"]
    assert [i.contract.name for i in options["invalid"]] == ["broken-v1"]
    assert options["notes"] == ses._scope_notes() and len(options["notes"]) == 1
    assert options["awaiting_artifact"] == {"FALSIFY-BETA-001"}  # no --artifact: they wait for one


def test_a_selected_run_judges_the_selection_once_each(monkeypatch: pytest.MonkeyPatch) -> None:
    ses, calls = _verdict_session(monkeypatch, scope=Scope.SELECTED, selection={"FALSIFY-ALPHA-002", "FALSIFY-BETA-001"},
                                  claimed={"alpha-v1"})
    ses._verdict(_pytest_session(), 0)
    [(args, options)] = calls
    assert sorted(_ids(args[0])) == ["FALSIFY-ALPHA-002", "FALSIFY-BETA-001"]
    assert options["invalid"] == [] and options["notes"] == []


def test_an_artifact_run_judges_the_artifact_falsifiers_and_checks_the_file_again(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from falsifiers import artifact

    model = tmp_path / "m.apr"
    model.write_bytes(b"model")
    before = artifact.digest_artifact(model)
    ses, calls = _verdict_session(monkeypatch, scope=Scope.ARTIFACT, artifact=before,
                                  artifact_falsifiers={"FALSIFY-BETA-001", "FALSIFY-BROKEN-001"})
    ses._verdict(_pytest_session(), 0)
    model.write_bytes(b"changed")
    ses._verdict(_pytest_session(), 0)
    model.unlink()
    ses._verdict(_pytest_session(), 0)
    (args, unchanged), (_, changed), (_, gone) = calls
    assert _ids(args[0]) == ["FALSIFY-BETA-001", "FALSIFY-BROKEN-001"]
    assert [i.contract.name for i in unchanged["invalid"]] == ["broken-v1"]
    assert unchanged["artifact"] is before and unchanged["awaiting_artifact"] == ()
    assert unchanged["artifact_changed"] is None
    assert changed["artifact_changed"] == artifact.artifact_change(before, _changed_record(tmp_path, before))
    assert gone["artifact_changed"] == artifact.artifact_change(before, None)


def _changed_record(tmp_path: Path, before: Any) -> Any:
    from falsifiers import artifact

    again = tmp_path / "again.apr"
    again.write_bytes(b"changed")
    record = artifact.digest_artifact(again)
    return artifact.ArtifactRecord(before.path, record.sha256, record.size)


def test_nothing_in_scope_is_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    ses, calls = _verdict_session(monkeypatch, scope=Scope.PATHS, claimed=set())
    assert ses._verdict(_pytest_session(), 0) is None and calls == []
    only_broken = _in_scope_contract("broken-v1", valid=False)  # no falsifier, but an invalid contract: judged
    ses, calls = _verdict_session(monkeypatch, scope=Scope.FULL, corpus=Corpus.of([only_broken], []))
    assert ses._verdict(_pytest_session(), 0) == "the report"
    assert calls[0][0][0] == [] and calls[0][1]["invalid"] == [
        session.InvalidContract(only_broken, "its contract file has errors")]
    ses, calls = _verdict_session(monkeypatch, scope=Scope.FULL, corpus=Corpus.of([_BETA], []))
    ses._verdict(_pytest_session(), 0)
    assert _ids(calls[0][0][0]) == ["FALSIFY-BETA-001"] and calls[0][1]["invalid"] == []


@pytest.mark.parametrize(("problems", "shouldfail", "shouldstop", "exitstatus", "stopped"), [
    (["bad binding"], "x", "y", 2, "not run: binding errors at collection"),  # binding errors first
    ([], "stopping after 1 failures", False, 1, "the session stopped early: stopping after 1 failures"),
    ([], False, "Interrupted: keyboard", 2, "the session stopped early: Interrupted: keyboard"),
    ([], "failed first", "stop second", 2, "the session stopped early: failed first"),
    ([], False, False, 2, "the session was interrupted"),
    ([], False, False, 1, None),
])
def test_why_the_session_stopped(monkeypatch: pytest.MonkeyPatch, problems: list[str], shouldfail: Any,
                                 shouldstop: Any, exitstatus: int, stopped: str | None) -> None:
    ses, calls = _verdict_session(monkeypatch, scope=Scope.FULL, problems=problems)
    ses._verdict(_pytest_session(shouldfail, shouldstop), exitstatus)
    assert calls[0][1]["stopped"] == stopped
    assert calls[0][1]["problems"] is problems


def test_mutant_results_notes_and_the_applied_mutant(monkeypatch: pytest.MonkeyPatch) -> None:
    from falsifiers.mutation import MutantResult, MutantStatus
    from falsifiers.records import Mutant

    results = [MutantResult("FALSIFY-ALPHA-001", "alpha-v1", "off-by-one", "code", MutantStatus.SURVIVED)]
    applied = (_ALPHA.falsifiers[0], Mutant("off-by-one", "m.f", "m.g"))
    ses, calls = _verdict_session(monkeypatch, scope=Scope.PATHS, claimed={"alpha-v1"}, mutant_results=results,
                                  mutant_note="mutants: 1 run in 1.0 s, 1 at a time", mutant=applied)
    ses._verdict(_pytest_session(), 0)
    options = calls[0][1]
    assert options["vacuous"] == session.mutation.vacuous_reasons(results) and options["vacuous"]
    assert options["mutants"] is results
    assert options["notes"] == [*ses._scope_notes(), "mutants: 1 run in 1.0 s, 1 at a time",
                                "mutant applied: FALSIFY-ALPHA-001:off-by-one (a REFUTED outcome means killed)"]


# --- what a session starts from: options, environment, the worker's input -----------------------


_OPTIONS = {"apr_falsifier": None, "apr_contract": None, "apr_artifact": None, "apr_model_card": None,
            "apr_apply_mutant": None}


def _start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, worker: dict[str, Any] | None = None,
           cache: Any = "absent", **options: Any) -> tuple[Any, dict[str, Any]]:
    """A session built by its own constructor on a fake config; lint_cached records its arguments."""
    linted: dict[str, Any] = {}
    if "APR_CONTRACTS_TABLE" in os.environ:  # the constructor pops it: let monkeypatch put it back
        monkeypatch.setenv("APR_CONTRACTS_TABLE", os.environ["APR_CONTRACTS_TABLE"])

    def lint_cached(folder: Any, **keywords: Any) -> Corpus:
        linted.update(keywords, folder=folder)
        return Corpus.of([_ALPHA, _BETA], [])
    monkeypatch.setattr(session, "lint_cached", lint_cached)
    values = {**_OPTIONS, **options}
    config = SimpleNamespace(rootpath=os.fspath(tmp_path), getoption=lambda name: values[name],
                             args_source=pytest.Config.ArgsSource.TESTPATHS)
    if worker is not None:
        config.workerinput = worker
    if cache != "absent":
        config.cache = cache
    settings = SimpleNamespace(contracts_dir=tmp_path / "contracts", max_bytes=777)
    return session.ContractsSession(config, settings, "the profile"), linted  # type: ignore[arg-type]


def test_a_controller_starts_empty_with_the_whole_suite_in_scope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APR_CONTRACTS_TABLE", raising=False)
    monkeypatch.delenv(session.SNAPSHOT_ENV, raising=False)
    cache = SimpleNamespace(name="pytest's cache")
    ses, linted = _start(tmp_path, monkeypatch, cache=cache)
    assert linted == {"folder": tmp_path / "contracts", "relative_to": tmp_path, "max_bytes": 777, "cache": cache}
    assert ses.corpus.contract("alpha-v1") is _ALPHA
    assert ses.settings.max_bytes == 777 and ses.profile == "the profile" and ses.config.rootpath == os.fspath(tmp_path)
    assert (ses.is_worker, ses.table_to_caller, ses.collected, ses.scope) == (False, False, Scope.FULL, Scope.FULL)
    assert (ses.selection, ses.artifact, ses.mutant, ses.restore_hypothesis, ses.mutant_results) == (None,) * 5
    assert (ses.report, ses.receipt_path, ses.mutant_note, ses.failed_tests) == (None, None, "", 0)
    assert (ses.artifact_falsifiers, ses.bindings, ses.selected, ses.claimed, ses.problems, ses.phases) == (
        set(), {}, set(), set(), [], {})


@pytest.mark.parametrize(("value", "to_caller"), [("receipt", True), ("RECEIPT", False), ("", False)])
def test_the_table_goes_to_the_caller_only_when_it_asks_and_children_never_inherit_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, to_caller: bool) -> None:
    monkeypatch.setenv("APR_CONTRACTS_TABLE", value)
    ses, _ = _start(tmp_path, monkeypatch)
    assert ses.table_to_caller is to_caller
    assert "APR_CONTRACTS_TABLE" not in os.environ


def test_without_a_cache_a_mutant_child_reads_its_parents_snapshot(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(session.SNAPSHOT_ENV, raising=False)
    _, linted = _start(tmp_path, monkeypatch)
    assert linted["cache"] is None
    snapshot = tmp_path / "corpus.json"
    monkeypatch.setenv(session.SNAPSHOT_ENV, os.fspath(snapshot))
    _, linted = _start(tmp_path, monkeypatch)
    assert isinstance(linted["cache"], session.SnapshotCache) and linted["cache"].path == snapshot
    cache = SimpleNamespace(name="pytest's cache")
    _, linted = _start(tmp_path, monkeypatch, cache=cache)
    assert linted["cache"] is cache  # pytest's cache, when there is one, wins


def test_a_worker_reads_the_cache_only_and_takes_the_controllers_scope_and_artifact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from falsifiers.artifact import ArtifactRecord

    monkeypatch.delenv(session.SNAPSHOT_ENV, raising=False)
    record = ArtifactRecord(os.fspath(tmp_path / "m.apr"), "ab" * 32, 5, None)
    cache = SimpleNamespace(name="pytest's cache")
    ses, linted = _start(tmp_path, monkeypatch, cache=cache,
                         worker={"apr_contracts_mode": "paths", "apr_contracts_artifact": record.to_dict()})
    assert isinstance(linted["cache"], session._ReadOnlyCache) and linted["cache"]._cache is cache
    assert (ses.is_worker, ses.collected, ses.artifact, ses.scope) == (True, Scope.PATHS, record, Scope.ARTIFACT)
    ses, linted = _start(tmp_path, monkeypatch, worker={})
    assert linted["cache"] is None
    assert (ses.is_worker, ses.collected, ses.artifact, ses.scope) == (True, Scope.FULL, None, Scope.FULL)


def test_a_controller_given_an_artifact_digests_it_with_its_model_card(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from falsifiers import artifact

    digested: list[Any] = []
    monkeypatch.setattr(artifact, "digest_artifact", lambda *args: digested.append(args) or "the record")
    ses, _ = _start(tmp_path, monkeypatch, apr_artifact="m.apr", apr_model_card="card.md")
    assert digested == [("m.apr", "card.md")]
    assert (ses.artifact, ses.scope) == ("the record", Scope.ARTIFACT)


def test_an_applied_mutant_selects_its_falsifier_unless_a_selection_is_given(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from falsifiers import mutation
    from falsifiers.records import Mutant

    resolved: list[Any] = []
    target = (_BETA.falsifiers[0], Mutant("m", "a.b", "c.d"))

    def resolve(corpus: Corpus, spec: str) -> Any:
        resolved.append((corpus.contract("beta-v1"), spec))
        return target
    monkeypatch.setattr(mutation, "resolve_mutant", resolve)
    monkeypatch.setattr(mutation, "quiet_hypothesis", lambda: "the undo")
    ses, _ = _start(tmp_path, monkeypatch, apr_apply_mutant="FALSIFY-BETA-001:m")
    assert resolved == [(_BETA, "FALSIFY-BETA-001:m")]
    assert (ses.mutant, ses.restore_hypothesis, ses.selection, ses.scope) == (
        target, "the undo", {"FALSIFY-BETA-001"}, Scope.SELECTED)
    ses, _ = _start(tmp_path, monkeypatch, apr_apply_mutant="FALSIFY-BETA-001:m", apr_contract=["alpha-v1"])
    assert ses.selection == {"FALSIFY-ALPHA-001", "FALSIFY-ALPHA-002"}
