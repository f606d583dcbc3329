"""falsifiers.report in-process (issue 23, after the harness restructuring of issue 18): the verdict
receipt and the lint document key by key, the table the plugin and `apr contracts verify` print,
and the small rules it is built from (summary line, folding, details, colours).

Every expected value is written from the rule in the module's docstrings, never read back from the
function under test. JSON keys are interface (consumers read them), so each is asserted by name.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

import pytest

from falsifiers import report
from falsifiers.artifact import ArtifactRecord
from falsifiers.mutation import MutantResult, MutantStatus
from falsifiers.records import Contract, Corpus, Falsifier, Finding, Level, Location, Mutant, Severity, Status
from falsifiers.report import (
    LINT_SCHEMA,
    RECEIPT_SCHEMA,
    details,
    environment,
    fold,
    lint_document,
    lint_failed,
    package_version,
    receipt,
    render_findings,
    render_receipt,
    render_table,
    render_verdict,
    summary_line,
    summary_text,
)
from falsifiers.settings import Profile
from falsifiers.verdict import (
    FalsifierOutcome,
    InvalidContract,
    Outcome,
    TestResult,
    TestStatus,
    Verdict,
    VerdictReport,
)

GREEN, BOLD_RED, YELLOW, BOLD_GREEN, BOLD_YELLOW, RED, DIM, RESET = (
    "\x1b[32m", "\x1b[1;31m", "\x1b[33m", "\x1b[1;32m", "\x1b[1;33m", "\x1b[31m", "\x1b[2m", "\x1b[0m")


def contract(name: str, *, valid: bool = True, status: Status | None = Status.FUNCTIONAL, style: str = "canonical",
             invariants: int = 0, falsifiers: int = 0) -> Contract:
    inv = tuple(_invariant(name, n) for n in range(invariants))
    fal = tuple(_falsifier(f"FALSIFY-{name.upper()}-{n:03d}", name) for n in range(falsifiers))
    return Contract(name, f"contracts/{name}.yaml", "ab" * 32, "1.2.0", status, "d", (), inv, fal, valid,
                    Location(f"contracts/{name}.yaml", 1, 1), style=style)


def _invariant(name: str, n: int) -> Any:
    from falsifiers.records import Invariant
    return Invariant(f"INV-{name.upper()}-{n:03d}", "s", name, Location(f"contracts/{name}.yaml", 2, 3))


def _falsifier(ident: str, contract_name: str = "c-v1", **extra: Any) -> Falsifier:
    return Falsifier(ident, contract_name, ("INV-X-001", "INV-X-002"), "r", "p", "the tensors are wrong",
                     Location(f"contracts/{contract_name}.yaml", 7, 5), **extra)


def finding(severity: Severity, code: str = "x", line: int = 3) -> Finding:
    return Finding(severity, code, f"{code} happened", Location("contracts/a.yaml", line, 2), f"fix {code}")


# --- the lint document ----------------------------------------------------------------------------


@pytest.mark.parametrize(("severities", "strict", "failed"), [
    ((), False, False),
    ((), True, False),
    ((Severity.INFO,), False, False),
    ((Severity.INFO,), True, False),
    ((Severity.WARNING,), False, False),
    ((Severity.WARNING,), True, True),
    ((Severity.ERROR,), False, True),
    ((Severity.ERROR,), True, True),
    ((Severity.INFO, Severity.WARNING), False, False),
    ((Severity.INFO, Severity.ERROR), False, True),
])
def test_lint_fails_on_an_error_and_under_strict_on_a_warning_never_on_info(
        severities: tuple[Severity, ...], strict: bool, failed: bool) -> None:
    corpus = Corpus.of([], [finding(s, f"c{i}") for i, s in enumerate(severities)])
    assert lint_failed(corpus, strict=strict) is failed
    assert lint_document(corpus, strict=strict)["ok"] is (not failed)


def test_lint_failed_is_not_strict_by_default() -> None:
    assert lint_failed(Corpus.of([], [finding(Severity.WARNING)])) is False
    assert lint_document(Corpus.of([], [finding(Severity.WARNING)]))["ok"] is True


def test_lint_document_key_by_key() -> None:
    one = contract("one-v1", invariants=2, falsifiers=3, style="pv")
    two = contract("two-v1", valid=False, status=None)
    findings = [finding(Severity.ERROR, "e1"), finding(Severity.WARNING, "w1"), finding(Severity.WARNING, "w2"),
                finding(Severity.INFO, "i1")]
    document = lint_document(Corpus.of([one, two], findings), strict=True)
    assert list(document) == ["schema", "ok", "strict", "counts", "environment", "contracts", "findings"]
    assert document["schema"] == "apr-contracts/lint/1" == LINT_SCHEMA
    assert document["ok"] is False
    assert document["strict"] is True
    assert document["counts"] == {"error": 1, "warning": 2, "info": 1}
    assert document["environment"] == environment()
    assert document["contracts"] == [
        {"name": "one-v1", "path": "contracts/one-v1.yaml", "sha256": "ab" * 32, "version": "1.2.0", "style": "pv",
         "status": "FUNCTIONAL", "valid": True, "invariants": 2, "falsifiers": 3},
        {"name": "two-v1", "path": "contracts/two-v1.yaml", "sha256": "ab" * 32, "version": "1.2.0",
         "style": "canonical", "status": None, "valid": False, "invariants": 0, "falsifiers": 0},
    ]
    assert document["findings"] == [f.to_dict() for f in findings]
    assert lint_document(Corpus.of([], []))["strict"] is False


def test_render_findings_one_block_per_finding_and_info_only_when_asked() -> None:
    error, info, warning = finding(Severity.ERROR, "e"), finding(Severity.INFO, "i"), finding(Severity.WARNING, "w")
    blocks = [error.render(), info.render(), warning.render()]
    assert render_findings([error, info, warning]) == "\n".join(blocks)
    assert render_findings([error, info, warning], show_info=True) == "\n".join(blocks)
    assert render_findings([error, info, warning], show_info=False) == "\n".join([blocks[0], blocks[2]])
    assert render_findings([]) == ""


# --- who produced a document ------------------------------------------------------------------------


def test_package_version_is_the_installed_distributions_or_none() -> None:
    assert package_version("pytest") == metadata.version("pytest")
    assert package_version("no-such-distribution-apr-contracts-test") is None


def test_environment_key_by_key(monkeypatch: pytest.MonkeyPatch) -> None:
    env = environment()
    assert env == {
        "harness": {"name": "apr-contracts", "version": metadata.version("apr-contracts")},
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(terse=True),
        "pytest": metadata.version("pytest"),
        "hypothesis": metadata.version("hypothesis"),
        "numpy": metadata.version("numpy"),
        "torch": metadata.version("torch"),
    }
    monkeypatch.setattr(report, "package_version", lambda name: None)
    assert environment()["harness"] == {"name": "apr-contracts", "version": "0+unknown"}
    assert environment()["torch"] is None


# --- the summary line, folding, details -------------------------------------------------------------


@pytest.mark.parametrize(("invalid", "problems", "tail"), [
    (0, 0, ""),
    (2, 0, ", 2 invalid contract(s)"),
    (0, 3, ", 3 binding error(s)"),
    (1, 1, ", 1 invalid contract(s), 1 binding error(s)"),
])
def test_summary_text(invalid: int, problems: int, tail: str) -> None:
    counts = {"CORROBORATED": 4, "REFUTED": 1, "UNDETERMINED": 2, "OTHER": 9}
    assert summary_text("NO-GO", counts, "cpu", invalid=invalid, problems=problems) == \
        f"verdict: NO-GO (4 corroborated, 1 refuted, 2 undetermined{tail}; profile cpu)"


def test_summary_text_counts_a_missing_outcome_as_zero() -> None:
    assert summary_text("GO", {"CORROBORATED": 1}, "gpu") == \
        "verdict: GO (1 corroborated, 0 refuted, 0 undetermined; profile gpu)"


def test_fold_keeps_only_contracts_of_two_or_more_all_corroborated() -> None:
    entries = [
        ("a", "CORROBORATED", 2), ("a", "CORROBORATED", 3),  # folds: 2 falsifiers, 5 tests
        ("b", "CORROBORATED", 1),  # one falsifier: a row of its own
        ("c", "CORROBORATED", 1), ("c", "REFUTED", 1), ("c", "CORROBORATED", 1),  # one not corroborated
        ("d", "UNDETERMINED", 0), ("d", "UNDETERMINED", 0),
        ("e", "CORROBORATED", 0), ("e", "CORROBORATED", 4), ("e", "CORROBORATED", 1),
    ]
    assert fold(entries) == {"a": (2, 5), "e": (3, 5)}
    assert fold([]) == {}


def _row(outcome: str, reason: str = "why", **extra: Any) -> dict[str, Any]:
    return {"id": "F-1", "contract": "c", "outcome": outcome, "reason": reason, **extra}


def test_details_of_a_refuted_row_list_examples_replays_and_what_a_failure_means() -> None:
    tests = [{"minimal_example": "f(x=0)", "reproduce_failure": "@reproduce_failure('6', b'AA')", "seed": "@seed(3)"},
             {"minimal_example": None, "reproduce_failure": None, "seed": "@seed(7)"},
             {"minimal_example": "", "reproduce_failure": "", "seed": None},
             {}]
    assert details(_row("REFUTED", tests=tests, if_fails="the tensors are wrong")) == [
        "why", "f(x=0)", "replay: @reproduce_failure('6', b'AA')", "replay: @seed(7)",
        "if it fails: the tensors are wrong"]
    assert details(_row("REFUTED")) == ["why"]
    assert details(_row("REFUTED", if_fails="")) == ["why"]


@pytest.mark.parametrize("outcome", ["CORROBORATED", "UNDETERMINED"])
def test_details_of_other_rows_are_the_reason_alone(outcome: str) -> None:
    tests = [{"minimal_example": "f(x=0)", "seed": "@seed(3)"}]
    assert details(_row(outcome, tests=tests, if_fails="bad")) == ["why"]


# --- the verdict receipt ----------------------------------------------------------------------------

PROFILE = Profile("cpu", frozenset({"network", "cuda"}), False)
SEEDED = TestResult("t.py::a", TestStatus.FAILED, 1.23456789, "call", "assert 1 == 2", "@seed(42)",
                    "@reproduce_failure('6.0', b'AA')", "Falsifying example: f(x=1)")
PLAIN = TestResult("t.py::b", TestStatus.PASSED, 0.5, "setup")
REFUTED_F = _falsifier("FALSIFY-C-002", "c-v1", level=Level.ARTIFACT, requires=("cuda",),
                       mutants=(Mutant("m1", "apr.x.y", "tests.z:w"), Mutant("m2", artifact="truncate")))
PENDING_F = _falsifier("FALSIFY-C-001", "c-v1", pending="later")


def _report(**extra: Any) -> VerdictReport:
    outcomes = (
        FalsifierOutcome(REFUTED_F, Outcome.REFUTED, "t.py::a failed: assert 1 == 2", True, (PLAIN, SEEDED),
                         ("t.py::b", "t.py::a")),
        FalsifierOutcome(PENDING_F, Outcome.UNDETERMINED, "VACUOUS: mutant 'm' survived", False, (), ()),
    )
    return VerdictReport(Verdict.NO_GO, PROFILE, outcomes, **extra)


def test_receipt_key_by_key() -> None:
    bad = contract("b-v1", valid=False, status=None)
    artifact = ArtifactRecord("/m.apr", "cd" * 32, 1234, None)
    mutants = (MutantResult("FALSIFY-C-002", "c-v1", "m1", "code", MutantStatus.KILLED, "x", 1.0),)
    report_ = _report(invalid_contracts=(InvalidContract(bad, "duplicate key"),), problems=("p1\nmore",),
                      notes=("n1",), artifact=artifact, artifact_changed="changed!", mutants=mutants)
    error, warning = finding(Severity.ERROR, "e"), finding(Severity.WARNING, "w")
    document = receipt(report_, [contract("z-v1"), bad], scope="tests/x", exit_code=1, pytest_exit=1,
                       findings=[warning, error])
    assert list(document) == ["schema", "verdict", "exit_code", "pytest_exit_code", "profile", "scope", "counts",
                              "environment", "contracts", "invalid_contracts", "falsifiers", "binding_errors",
                              "lint_errors", "notes", "artifact", "mutants"]
    assert document["schema"] == "apr-contracts/verdict/1" == RECEIPT_SCHEMA
    assert document["verdict"] == "NO-GO"
    assert document["exit_code"] == 1 and document["pytest_exit_code"] == 1
    assert document["profile"] == {"name": "cpu", "optional_requires": ["cuda", "network"], "allow_pending": False}
    assert document["scope"] == "tests/x"
    assert document["counts"] == {"CORROBORATED": 0, "REFUTED": 1, "UNDETERMINED": 1}
    assert document["environment"] == environment()
    assert document["contracts"] == [  # sorted by name
        {"name": "b-v1", "path": "contracts/b-v1.yaml", "sha256": "ab" * 32, "version": "1.2.0", "status": None,
         "valid": False},
        {"name": "z-v1", "path": "contracts/z-v1.yaml", "sha256": "ab" * 32, "version": "1.2.0",
         "status": "FUNCTIONAL", "valid": True},
    ]
    assert document["invalid_contracts"] == [{"name": "b-v1", "path": "contracts/b-v1.yaml",
                                              "reason": "duplicate key"}]
    assert [f["id"] for f in document["falsifiers"]] == ["FALSIFY-C-001", "FALSIFY-C-002"]  # sorted by id
    assert document["falsifiers"][1] == {
        "id": "FALSIFY-C-002", "contract": "c-v1", "invariants": ["INV-X-001", "INV-X-002"],
        "if_fails": "the tensors are wrong", "level": "artifact", "requires": ["cuda"], "pending": None,
        "outcome": "REFUTED", "reason": "t.py::a failed: assert 1 == 2", "required": True,
        "location": {"path": "contracts/c-v1.yaml", "line": 7, "col": 5}, "nodeids": ["t.py::b", "t.py::a"],
        "duration": 1.734568, "seed": "@seed(42)",
        "tests": [
            {"nodeid": "t.py::b", "status": "passed", "phase": "setup", "duration": 0.5, "reason": "", "seed": None,
             "reproduce_failure": None, "minimal_example": None},
            {"nodeid": "t.py::a", "status": "failed", "phase": "call", "duration": 1.234568,
             "reason": "assert 1 == 2", "seed": "@seed(42)", "reproduce_failure": "@reproduce_failure('6.0', b'AA')",
             "minimal_example": "Falsifying example: f(x=1)"},
        ],
        "mutants": ["m1", "m2"], "vacuous": False,
    }
    pending = document["falsifiers"][0]
    assert (pending["pending"], pending["required"], pending["vacuous"], pending["seed"], pending["tests"],
            pending["level"], pending["duration"]) == ("later", False, True, None, [], "algorithm", 0.0)
    assert document["binding_errors"] == ["p1\nmore"]
    assert document["lint_errors"] == [error.to_dict()]  # warnings are not lint errors
    assert document["notes"] == ["n1"]
    assert document["artifact"] == {"path": "/m.apr", "sha256": "cd" * 32, "size": 1234, "model_card": None,
                                    "changed": "changed!"}
    assert document["mutants"] == {
        "contracts": {"c-v1": {"declared": 2, "killed": 1, "survived": 0, "not_run": 0, "error": 0, "invalid": 0,
                               "falsifiers": 2, "without_mutant": 1, "with_killed_mutant": 1}},
        "results": [{"falsifier": "FALSIFY-C-002", "contract": "c-v1", "name": "m1", "kind": "code",
                     "status": "killed", "detail": "x", "seconds": 1.0}],
        "falsifiers_with_killed_mutant": 1, "falsifiers": 2,
    }


def test_receipt_without_artifact_mutants_or_pytest_exit() -> None:
    document = receipt(_report(), [], scope="all", exit_code=2)
    assert document["pytest_exit_code"] is None
    assert document["artifact"] is None and document["mutants"] is None
    assert document["lint_errors"] == [] and document["binding_errors"] == [] and document["notes"] == []
    assert document["invalid_contracts"] == [] and document["contracts"] == []


def test_the_first_seed_among_a_falsifiers_tests_is_its_seed() -> None:
    first = TestResult("t.py::c", TestStatus.PASSED, seed="@seed(1)")
    outcome = FalsifierOutcome(PENDING_F, Outcome.CORROBORATED, "3 tests passed", True,
                               (PLAIN, first, SEEDED), ("t.py::b", "t.py::c", "t.py::a"))
    document = receipt(VerdictReport(Verdict.GO, PROFILE, (outcome,)), [], scope="all", exit_code=0)
    assert document["falsifiers"][0]["seed"] == "@seed(1)"
    assert document["falsifiers"][0]["duration"] == 1.734568


def test_mutants_summary_adds_up_every_contract() -> None:
    other = _falsifier("FALSIFY-D-001", "d-v1", mutants=(Mutant("k", "apr.a.b", "tests.c:d"),))
    outcomes = (FalsifierOutcome(REFUTED_F, Outcome.REFUTED, "r", True, (), ()),
                FalsifierOutcome(other, Outcome.REFUTED, "r", True, (), ()),
                FalsifierOutcome(PENDING_F, Outcome.UNDETERMINED, "r", True, (), ()))
    results = (MutantResult("FALSIFY-C-002", "c-v1", "m1", "code", MutantStatus.KILLED),
               MutantResult("FALSIFY-D-001", "d-v1", "k", "code", MutantStatus.KILLED))
    mutants = receipt(VerdictReport(Verdict.NO_GO, PROFILE, outcomes, mutants=results), [], scope="all",
                      exit_code=1)["mutants"]
    assert (mutants["falsifiers_with_killed_mutant"], mutants["falsifiers"]) == (2, 3)
    assert receipt(VerdictReport(Verdict.NO_GO, PROFILE, outcomes, mutants=()), [], scope="all",
                   exit_code=1)["mutants"]["falsifiers_with_killed_mutant"] == 0


# --- the table ------------------------------------------------------------------------------------

ROWS = [
    {"id": "FALSIFY-A-002", "contract": "a-v1", "outcome": "CORROBORATED", "reason": "2 tests passed",
     "tests": [{}, {}]},
    {"id": "FALSIFY-A-001", "contract": "a-v1", "outcome": "CORROBORATED", "reason": "1 test passed", "tests": [{}]},
    {"id": "FALSIFY-B-002", "contract": "b-v1", "outcome": "UNDETERMINED", "reason": "requires cuda",
     "required": False},
    {"id": "FALSIFY-B-001", "contract": "b-v1", "outcome": "REFUTED", "reason": "t.py::a failed: assert 1 == 2",
     "if_fails": "the tensors are wrong", "tests": [{"minimal_example": "f(x=1)", "seed": "@seed(4)"}]},
]
INVALID = [{"name": "bad-v1", "reason": "duplicate key"}]
MUTANTS = {
    "contracts": {
        "b-v1": {"declared": 5, "killed": 1, "survived": 1, "not_run": 1, "error": 1, "invalid": 1, "falsifiers": 2,
                 "with_killed_mutant": 1},
        "a-v1": {"declared": 2, "killed": 2, "survived": 0, "not_run": 0, "error": 0, "falsifiers": 2,
                 "with_killed_mutant": 2},
        "c-v1": {"declared": 1, "killed": 0, "survived": 0, "not_run": 0, "error": 0, "invalid": 1, "falsifiers": 1,
                 "with_killed_mutant": 0},
    },
    "results": [
        {"status": "killed", "falsifier": "FALSIFY-A-001", "name": "k", "detail": "d0"},
        {"status": "survived", "falsifier": "FALSIFY-B-001", "name": "s", "detail": "d1"},
        {"status": "error", "falsifier": "FALSIFY-B-001", "name": "e", "detail": "d2"},
        {"status": "invalid", "falsifier": "FALSIFY-B-002", "name": "i", "detail": "d3"},
        {"status": "not-run", "falsifier": "FALSIFY-B-002", "name": "n", "detail": "d4"},
    ],
}
ARTIFACT = {"path": "/m.apr", "sha256": "cd", "size": 12, "changed": "the file changed during the run"}
# widths: contract 8 ("contract"), falsifier 13, outcome 24 ("UNDETERMINED (tolerated)"): 51 columns before
# the evidence, which wraps at max(70 - 51, 30) = 30; the rule is min(70, 51 + min(30, 34)) = 70 wide.
HEAD = "contract  falsifier      outcome                   evidence / reason"
INDENT = " " * 51


def _table(**extra: Any) -> str:
    arguments: dict[str, Any] = {"width": 70, "color": False, "verbose": False, "artifact": ARTIFACT,
                                 "mutants": MUTANTS, **extra}
    return render_table(ROWS, INVALID, ["p1\nsecond line", "p2"], ["n1"], "verdict: NO-GO (x)", "NO-GO", **arguments)


def test_the_table_in_plain_text() -> None:
    assert _table().splitlines() == [
        HEAD,
        "-" * 70,
        "bad-v1    -              INVALID                   duplicate key",
        "a-v1      all 2          CORROBORATED              3 tests passed",
        "b-v1      FALSIFY-B-001  REFUTED                   t.py::a failed: assert 1 == 2",
        INDENT + "f(x=1)",
        INDENT + "replay: @seed(4)",
        INDENT + "if it fails: the tensors are",
        INDENT + "wrong",
        "b-v1      FALSIFY-B-002  UNDETERMINED (tolerated)  requires cuda",
        "p1",  # a binding problem's first line only
        "p2",
        "n1",
        "mutants: a-v1: 2/2 killed; 2/2 falsifiers have a killed mutant",
        "mutants: b-v1: 1/5 killed, 1 survived, 2 not run, 1 invalid; 1/2 falsifiers have a killed mutant",
        "mutants: c-v1: 0/1 killed, 1 invalid; 0/1 falsifiers have a killed mutant",
        "  survived: FALSIFY-B-001:s (d1)",
        "  error: FALSIFY-B-001:e (d2)",
        "  invalid: FALSIFY-B-002:i (d3)",
        "artifact: /m.apr sha256 cd (12 bytes)",
        "the file changed during the run",
        "verdict: NO-GO (x)",
    ]
    assert _table().endswith("verdict: NO-GO (x)\n")


def test_the_table_in_colour() -> None:
    lines = _table(color=True).splitlines()
    assert lines[:4] == [HEAD, "-" * 70,
                         f"bad-v1    -              {BOLD_RED}INVALID                 {RESET}  duplicate key",
                         f"a-v1      all 2          {GREEN}CORROBORATED            {RESET}  3 tests passed"]
    assert lines[4] == f"b-v1      FALSIFY-B-001  {BOLD_RED}REFUTED                 {RESET}  t.py::a failed: assert 1 == 2"
    assert lines[9] == f"b-v1      FALSIFY-B-002  {YELLOW}UNDETERMINED (tolerated){RESET}  requires cuda"
    assert lines[10:] == [
        f"{RED}p1{RESET}", f"{RED}p2{RESET}", f"{DIM}n1{RESET}",
        f"{DIM}mutants: a-v1: 2/2 killed; 2/2 falsifiers have a killed mutant{RESET}",
        f"{BOLD_RED}mutants: b-v1: 1/5 killed, 1 survived, 2 not run, 1 invalid; 1/2 falsifiers have a killed "
        f"mutant{RESET}",
        f"{BOLD_RED}mutants: c-v1: 0/1 killed, 1 invalid; 0/1 falsifiers have a killed mutant{RESET}",
        f"{BOLD_RED}  survived: FALSIFY-B-001:s (d1){RESET}",
        f"{YELLOW}  error: FALSIFY-B-001:e (d2){RESET}",
        f"{BOLD_RED}  invalid: FALSIFY-B-002:i (d3){RESET}",
        "artifact: /m.apr sha256 cd (12 bytes)",
        f"{BOLD_RED}the file changed during the run{RESET}",
        f"{BOLD_RED}verdict: NO-GO (x){RESET}",
    ]


@pytest.mark.parametrize(("verdict", "colour"), [("GO", BOLD_GREEN), ("NO-GO", BOLD_RED), ("UNKNOWN", BOLD_YELLOW)])
def test_the_summary_line_takes_the_verdicts_colour(verdict: str, colour: str) -> None:
    assert render_table([], [], [], [], "S", verdict, width=80, color=True, verbose=False) == f"{colour}S{RESET}\n"
    assert render_table([], [], [], [], "S", verdict, width=80, color=False, verbose=False) == "S\n"


def test_verbose_lists_every_falsifier_and_folds_nothing() -> None:
    same = [{"id": f"FALSIFY-U-00{n}", "contract": "u-v1", "outcome": "UNDETERMINED", "reason": "did not run"}
            for n in range(1, 4)]
    text = render_table(ROWS + same, [], [], [], "S", "GO", width=70, color=False, verbose=True)
    assert text.splitlines()[2:4] == ["a-v1      FALSIFY-A-001  CORROBORATED              1 test passed",
                                      "a-v1      FALSIFY-A-002  CORROBORATED              2 tests passed"]
    assert [line.split()[1] for line in text.splitlines() if line.startswith("u-v1")] == \
        ["FALSIFY-U-001", "FALSIFY-U-002", "FALSIFY-U-003"]
    quiet = render_table(ROWS + same, [], [], [], "S", "GO", width=70, color=False, verbose=False)
    assert "3 falsifiers  FALSIFY-U-001 … FALSIFY-U-003  UNDETERMINED" in quiet
    assert "FALSIFY-U-002" not in quiet


def test_a_narrow_table_has_a_rule_as_wide_as_itself_and_a_wide_one_wraps_at_30() -> None:
    rows = [{"id": "F-1", "contract": "c", "outcome": "GO", "reason": "ok"}]
    rows[0]["outcome"] = "CORROBORATED"
    text = render_table(rows, [], [], [], "S", "GO", width=200, color=False, verbose=True)
    # widths 8, 9, 12: 35 columns before the evidence; the widest evidence is the header's 17
    assert text.splitlines()[:3] == ["contract  falsifier  outcome       evidence / reason", "-" * 52,
                                     "c         F-1        CORROBORATED  ok"]
    long = [{**rows[0], "reason": "word " * 10}]
    wrapped = render_table(long, [], [], [], "S", "GO", width=40, color=False, verbose=True).splitlines()
    assert wrapped[1] == "-" * 40  # never wider than the console
    assert wrapped[2:] == ["c         F-1        CORROBORATED  word word word word word word",
                           " " * 35 + "word word word word", "S"]
    exact = [{**rows[0], "reason": "a" * 25 + " bbbbb"}]  # 31 characters: one more than the floor of 30
    assert render_table(exact, [], [], [], "S", "GO", width=40, color=False, verbose=True).splitlines()[2:4] == \
        ["c         F-1        CORROBORATED  " + "a" * 25, " " * 35 + "bbbbb"]


def test_a_row_with_no_reason_is_one_line_and_a_folded_contract_is_given_by_the_caller() -> None:
    row = {"id": "F-1", "contract": "c", "outcome": "UNDETERMINED", "reason": ""}
    text = render_table([row], [], [], [], "S", "UNKNOWN", width=80, color=False, verbose=False,
                        folded={"z": (4, 9)})
    assert text.splitlines()[2:] == ["c         F-1        UNDETERMINED  ", "z         all 4      CORROBORATED  9 tests passed",
                                     "S"]


def test_an_artifact_without_a_change_prints_one_line() -> None:
    text = render_table([], [], [], [], "S", "GO", width=80, color=True, verbose=False,
                        artifact={"path": "/a", "sha256": "ef", "size": 0, "changed": None})
    assert text == f"artifact: /a sha256 ef (0 bytes)\n{BOLD_GREEN}S{RESET}\n"


# --- the two ways in: a report and a receipt --------------------------------------------------------


def test_summary_line_of_a_report() -> None:
    report_ = _report(invalid_contracts=(InvalidContract(contract("b-v1"), "x"),), problems=("p", "q"))
    assert summary_line(report_) == \
        "verdict: NO-GO (0 corroborated, 1 refuted, 1 undetermined, 1 invalid contract(s), 2 binding error(s); " \
        "profile cpu)"


def test_render_verdict_and_render_receipt_print_the_same_table() -> None:
    artifact = ArtifactRecord("/m.apr", "cd" * 32, 7)
    mutants = (MutantResult("FALSIFY-C-002", "c-v1", "m1", "code", MutantStatus.SURVIVED, "x"),)
    report_ = _report(problems=("p1\nmore",), notes=("n1",), artifact=artifact, artifact_changed="changed!",
                      mutants=mutants)
    document = receipt(report_, [], scope="all", exit_code=1)
    for verbose in (False, True):
        for color in (False, True):
            text = render_verdict(report_, width=90, color=color, verbose=verbose)
            assert text == render_receipt(document, width=90, color=color, verbose=verbose)
    text = render_verdict(report_, width=90)
    assert "c-v1      FALSIFY-C-002  REFUTED" in text and "FALSIFY-C-001  UNDETERMINED (tolerated)" in text
    assert "mutants: c-v1: 0/2 killed, 1 survived; 0/2 falsifiers have a killed mutant" in text
    assert f"artifact: /m.apr sha256 {'cd' * 32} (7 bytes)\nchanged!\n" in text
    assert text.endswith("verdict: NO-GO (0 corroborated, 1 refuted, 1 undetermined, 1 binding error(s); "
                         "profile cpu)\n")
    assert "\x1b[" not in text and "\x1b[" in render_verdict(report_, width=90, color=True)


def test_render_verdict_folds_an_all_corroborated_contract_unless_verbose() -> None:
    outcomes = tuple(FalsifierOutcome(_falsifier(f"FALSIFY-G-00{n}", "g-v1"), Outcome.CORROBORATED, "1 test passed",
                                      True, (PLAIN,), ("t.py::b",)) for n in (1, 2))
    report_ = VerdictReport(Verdict.GO, PROFILE, outcomes)
    assert render_verdict(report_, width=90).splitlines()[2] == \
        "g-v1      all 2      CORROBORATED  2 tests passed"
    assert [line.split()[1] for line in render_verdict(report_, width=90, verbose=True).splitlines()[2:4]] == \
        ["FALSIFY-G-001", "FALSIFY-G-002"]


def test_render_receipt_reads_a_minimal_document() -> None:
    document = {"verdict": "UNKNOWN", "profile": {"name": "release"}}
    assert render_receipt(document) == \
        "verdict: UNKNOWN (0 corroborated, 0 refuted, 0 undetermined; profile release)\n"
    assert render_receipt(document, color=True) == \
        f"{BOLD_YELLOW}verdict: UNKNOWN (0 corroborated, 0 refuted, 0 undetermined; profile release){RESET}\n"
    with pytest.raises(ValueError):
        render_receipt({"verdict": "MAYBE", "profile": {"name": "cpu"}})
    counted = {**document, "counts": {"REFUTED": 2}, "invalid_contracts": [{"name": "x", "reason": "r"}],
               "binding_errors": ["b"]}
    assert render_receipt(counted).splitlines()[-1] == \
        "verdict: UNKNOWN (0 corroborated, 2 refuted, 0 undetermined, 1 invalid contract(s), 1 binding error(s); " \
        "profile release)"


def test_both_renderings_default_to_120_columns_folded_and_plain() -> None:
    """A console is assumed 120 wide: a long reason wraps there and the rule stops there."""
    outcomes = tuple(FalsifierOutcome(_falsifier(f"FALSIFY-G-00{n}", "g-v1"), Outcome.CORROBORATED, "1 test passed",
                                      True, (PLAIN,), ("t.py::b",)) for n in (1, 2)) + (
        FalsifierOutcome(_falsifier("FALSIFY-H-001", "h-v1"), Outcome.REFUTED, "x" * 200, True, (), ()),)
    report_ = VerdictReport(Verdict.NO_GO, PROFILE, outcomes)
    document = receipt(report_, [], scope="all", exit_code=1)
    for text in (render_verdict(report_), render_receipt(document)):
        lines = text.splitlines()
        assert lines[1] == "-" * 120
        assert lines[2].startswith("g-v1      all 2          CORROBORATED")  # folded: not verbose
        assert max(len(line) for line in lines) == 120  # the 200 x's wrap at the console's width
        assert "\x1b[" not in text


def test_the_platform_is_asked_for_in_its_short_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """On Linux `platform.platform` ignores ``terse``; elsewhere it shortens the string: asked for by name."""
    monkeypatch.setattr(report.platform, "platform", lambda terse=False, aliased=False: f"terse={terse!r}")
    assert environment()["platform"] == "terse=True"


def test_render_verdict_verbose_folds_no_same_reason_rows() -> None:
    outcomes = tuple(FalsifierOutcome(_falsifier(f"FALSIFY-U-00{n}", "u-v1"), Outcome.UNDETERMINED, "did not run",
                                      True, (), ()) for n in (1, 2, 3))
    report_ = VerdictReport(Verdict.UNKNOWN, PROFILE, outcomes)
    assert [line.split()[1] for line in render_verdict(report_, width=90, verbose=True).splitlines()[2:5]] == \
        ["FALSIFY-U-001", "FALSIFY-U-002", "FALSIFY-U-003"]
    assert render_verdict(report_, width=90).splitlines()[2].startswith("3 falsifiers  FALSIFY-U-001 … FALSIFY-U-003")
