"""The verdict lattice as tables (issue 23): every input condition alone and in pairs.

Two levels, both pure and in-process:

* one falsifier (`judge_falsifier`, `is_required`): which rule of `falsifiers.verdict`'s docstring
  decides, with the exact reason it shows (the reason is stored in the receipt);
* the whole run (`compute_verdict`, `fold_verdict`): GO / NO-GO / UNKNOWN and its exit code, from
  the conditions a run can meet (corroborated, refuted, undetermined, tolerated, awaiting an artifact,
  vacuous, invalid mutant, invalid contract, binding problem, artifact changed, nothing in scope).

Expected values come from the rules as the module docstring states them, never from the output.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from falsifiers.artifact import ArtifactRecord
from falsifiers.mutation import INVALID_MUTANT, MutantResult, MutantStatus
from falsifiers.records import Contract, Falsifier, Location
from falsifiers.settings import BUILTIN_PROFILES, Profile
from falsifiers.verdict import (
    FalsifierOutcome,
    InvalidContract,
    Outcome,
    TestResult,
    TestStatus,
    Verdict,
    compute_verdict,
    exit_code_of,
    fold_verdict,
    is_required,
    judge_falsifier,
    total_duration,
)

CPU = BUILTIN_PROFILES["cpu"]
RELEASE = BUILTIN_PROFILES["release"]


def falsifier(ident: str = "FALSIFY-L-001", contract: str = "l-v1", **extra) -> Falsifier:
    return Falsifier(ident, contract, ("INV-L-001",), "r", "p", "f", Location(f"contracts/{contract}.yaml", 3, 5),
                     **extra)


def broken_contract(name: str) -> Contract:
    """A contract whose file had errors (only its name matters to the verdict)."""
    return Contract(name, f"contracts/{name}.yaml", "0" * 64, None, None, "", (), (), (), False,
                    Location(f"contracts/{name}.yaml"))


def result(nodeid: str, status: TestStatus, **extra) -> TestResult:
    return TestResult(nodeid, status, **extra)


# --- one falsifier: each condition alone -------------------------------------------------------------

P, F, S = TestStatus.PASSED, TestStatus.FAILED, TestStatus.SKIPPED

# (case id, falsifier extras, bound node ids, selected node ids, results, contract_valid, stopped,
#  expected outcome, expected reason)
ALONE = [
    ("one passed", {}, ["t::a"], ["t::a"], [result("t::a", P)], True, None,
     Outcome.CORROBORATED, "1 test passed"),
    ("three passed", {}, ["t::a", "t::b", "t::c"], ["t::a", "t::b", "t::c"],
     [result("t::a", P), result("t::b", P), result("t::c", P)], True, None, Outcome.CORROBORATED, "3 tests passed"),
    ("failed in call", {}, ["t::a"], ["t::a"], [result("t::a", F, reason="AssertionError: 3 != 4")], True, None,
     Outcome.REFUTED, "t::a failed: AssertionError: 3 != 4"),
    # the failure's own text keeps its last characters (only the separator of an empty reason goes)
    ("failed, reason ends in X", {}, ["t::a"], ["t::a"], [result("t::a", F, reason="AssertionError: 0 != MAX")],
     True, None, Outcome.REFUTED, "t::a failed: AssertionError: 0 != MAX"),
    ("failed, no reason", {}, ["t::a"], ["t::a"], [result("t::a", F)], True, None, Outcome.REFUTED, "t::a failed"),
    ("failed in setup", {}, ["t::a"], ["t::a"], [result("t::a", F, phase="setup", reason="OSError: gone")], True,
     None, Outcome.REFUTED, "t::a failed (in setup): OSError: gone"),
    ("failed in teardown, no reason", {}, ["t::a"], ["t::a"], [result("t::a", F, phase="teardown")], True, None,
     Outcome.REFUTED, "t::a failed (in teardown)"),
    ("contract invalid", {}, ["t::a"], ["t::a"], [result("t::a", P)], False, None,
     Outcome.UNDETERMINED, "its contract file has errors (see `apr contracts lint`)"),
    ("pending, no test", {"pending": "needs a GPU"}, [], [], [], True, None,
     Outcome.UNDETERMINED, "pending: needs a GPU"),
    ("not collected", {}, [], [], [], True, None,
     Outcome.UNDETERMINED, "not collected: no test in this run claims it"),
    ("deselected", {}, ["t::a"], ["t::other"], [result("t::other", F)], True, None,
     Outcome.UNDETERMINED, "deselected: its tests were not selected to run"),
    ("selected, never ran", {}, ["t::a"], ["t::a"], [], True, None,
     Outcome.UNDETERMINED, "did not run (the session ended before its tests)"),
    ("selected, session stopped", {}, ["t::a"], ["t::a"], [], True, "interrupted by the user",
     Outcome.UNDETERMINED, "did not run (interrupted by the user)"),
    ("health check", {}, ["t::a"], ["t::a"], [result("t::a", TestStatus.HEALTH_CHECK, reason="too slow")], True,
     None, Outcome.UNDETERMINED, "Hypothesis health check in t::a: too slow"),
    ("skipped", {}, ["t::a"], ["t::a"], [result("t::a", S, reason="no data")], True, None,
     Outcome.UNDETERMINED, "skipped: no data"),
    ("skipped, no reason", {}, ["t::a"], ["t::a"], [result("t::a", S)], True, None,
     Outcome.UNDETERMINED, "skipped: t::a"),
    ("xfailed", {}, ["t::a"], ["t::a"], [result("t::a", TestStatus.XFAILED, reason="known")], True, None,
     Outcome.UNDETERMINED, "xfailed: known"),
    ("xpassed", {}, ["t::a"], ["t::a"], [result("t::a", TestStatus.XPASSED, reason="fixed?")], True, None,
     Outcome.UNDETERMINED, "xpassed: fixed?"),
    ("one of two skipped", {}, ["t::a", "t::b"], ["t::a", "t::b"], [result("t::a", P), result("t::b", S, reason="x")],
     True, None, Outcome.UNDETERMINED, "skipped (1 of 2 tests): x"),
    ("two of three skipped", {}, ["t::a", "t::b", "t::c"], ["t::a", "t::b", "t::c"],
     [result("t::a", S, reason="y"), result("t::b", S, reason="z"), result("t::c", P)], True, None,
     Outcome.UNDETERMINED, "skipped (2 of 3 tests): y"),
    ("one of two ran", {}, ["t::a", "t::b"], ["t::a", "t::b"], [result("t::a", P)], True, None,
     Outcome.UNDETERMINED, "1 of 2 bound tests did not run"),
    ("one of three ran", {}, ["t::a", "t::b", "t::c"], ["t::a", "t::b", "t::c"], [result("t::b", P)], True, None,
     Outcome.UNDETERMINED, "2 of 3 bound tests did not run"),
    # only the selected bound tests count: a failure of a deselected one says nothing
    ("deselected failure ignored", {}, ["t::a", "t::b"], ["t::a"], [result("t::a", P), result("t::b", F)], True,
     None, Outcome.CORROBORATED, "1 test passed"),
    # a pending falsifier whose test did run is judged by that test
    ("pending, test passed", {"pending": "later"}, ["t::a"], ["t::a"], [result("t::a", P)], True, None,
     Outcome.CORROBORATED, "1 test passed"),
    ("pending, test deselected", {"pending": "later"}, ["t::a"], [], [], True, None,
     Outcome.UNDETERMINED, "deselected: its tests were not selected to run"),
]


@pytest.mark.parametrize(("extra", "nodeids", "selected", "ran", "valid", "stopped", "outcome", "reason"),
                         [pytest.param(*row[1:], id=row[0]) for row in ALONE])
def test_each_condition_alone(extra, nodeids, selected, ran, valid, stopped, outcome, reason) -> None:
    results = {r.nodeid: r for r in ran}
    for chosen in (list(selected), set(selected), frozenset(selected)):
        got = judge_falsifier(falsifier(**extra), nodeids, chosen, results, contract_valid=valid, stopped=stopped)
        assert got == (outcome, reason)


def test_contract_is_valid_and_nothing_stopped_unless_said() -> None:
    results = {"t::a": result("t::a", P)}
    assert judge_falsifier(falsifier(), ["t::a"], ["t::a"], results) == (Outcome.CORROBORATED, "1 test passed")
    assert judge_falsifier(falsifier(), ["t::a"], ["t::a"], {}) == (
        Outcome.UNDETERMINED, "did not run (the session ended before its tests)")


# --- one falsifier: conditions in pairs -------------------------------------------------------------------


@dataclass
class Scene:
    """One falsifier's situation, built from conditions."""

    pending: str | None = None
    nodeids: list[str] = field(default_factory=list)
    selected: set[str] = field(default_factory=set)
    results: dict[str, TestResult] = field(default_factory=dict)
    valid: bool = True

    def test(self, name: str, status: TestStatus | None, *, selected: bool = True) -> None:
        nodeid = f"t::{name}"
        self.nodeids.append(nodeid)
        if selected:
            self.selected.add(nodeid)
        if status is not None:
            self.results[nodeid] = result(nodeid, status, reason=name)


# condition -> how it changes the scene
CONDITIONS: dict[str, Callable[[Scene], None]] = {
    "failed": lambda s: s.test("failed", F),
    "invalid-contract": lambda s: setattr(s, "valid", False),
    "health-check": lambda s: s.test("health", TestStatus.HEALTH_CHECK),
    "skipped": lambda s: s.test("skip", S),
    "xfailed": lambda s: s.test("xfail", TestStatus.XFAILED),
    "not-run": lambda s: s.test("late", None),  # selected, no result
    "passed": lambda s: s.test("ok", P),
    "deselected": lambda s: s.test("away", F, selected=False),  # its failure must not count
    "pending": lambda s: setattr(s, "pending", "later"),
}
RAN = {"failed", "health-check", "skipped", "xfailed", "passed"}  # conditions that add a test that ran


def _judge(names: tuple[str, ...]) -> tuple[Outcome, str]:
    scene = Scene()
    for name in names:
        CONDITIONS[name](scene)
    return judge_falsifier(falsifier(pending=scene.pending), scene.nodeids, scene.selected, scene.results,
                           contract_valid=scene.valid)


def _expected(names: set[str]) -> tuple[Outcome, str]:
    """Outcome and reason prefix, from the docstring's rules taken in their order."""
    if "failed" in names:
        return Outcome.REFUTED, "t::failed failed: failed"  # rule 1
    if "invalid-contract" in names:
        return Outcome.UNDETERMINED, "its contract file has errors"  # rule 2
    if not names & RAN:  # rule 3
        if "not-run" in names:
            return Outcome.UNDETERMINED, "did not run (the session ended before its tests)"
        if "deselected" in names:
            return Outcome.UNDETERMINED, "deselected: its tests were not selected to run"
        return Outcome.UNDETERMINED, "pending: later" if "pending" in names else "not collected"
    if "health-check" in names:  # rule 4
        return Outcome.UNDETERMINED, "Hypothesis health check in t::health: health"
    for word in ("skipped", "xfailed"):
        if word in names:
            return Outcome.UNDETERMINED, word
    if "not-run" in names:
        return Outcome.UNDETERMINED, "1 of 2 bound tests did not run"
    return Outcome.CORROBORATED, "1 test passed"  # rule 5


def test_each_condition_alone_by_the_rules() -> None:
    for name in CONDITIONS:
        outcome, reason = _judge((name,))
        expected_outcome, prefix = _expected({name})
        assert outcome is expected_outcome and reason.startswith(prefix), (name, reason)


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(CONDITIONS, 2)), ids="+".join)
def test_each_pair_of_conditions_is_decided_by_the_earlier_rule(a: str, b: str) -> None:
    outcome, reason = _judge((a, b))
    expected_outcome, prefix = _expected({a, b})
    assert outcome is expected_outcome
    assert reason.startswith(prefix), reason
    assert _judge((b, a))[0] is outcome  # the order the conditions were met in does not matter


def test_pair_reasons_count_only_the_selected_tests() -> None:
    # skipped + not-run: the skip decides; both selected tests are counted, the deselected one is not
    assert _judge(("skipped", "not-run", "deselected")) == (Outcome.UNDETERMINED, "skipped (1 of 2 tests): skip")
    assert _judge(("passed", "not-run", "deselected")) == (Outcome.UNDETERMINED, "1 of 2 bound tests did not run")
    assert _judge(("health-check", "skipped")) == (Outcome.UNDETERMINED, "Hypothesis health check in t::health: health")
    assert _judge(("passed", "deselected", "pending")) == (Outcome.CORROBORATED, "1 test passed")


# --- the selection may be any iterable, even a one-shot iterator ----------------------------------------

NODES = [f"t::n{k}" for k in range(4)]


@given(st.permutations(NODES), st.integers(1, 4), st.integers(0, 4), st.lists(st.sampled_from([P, S]), min_size=4,
                                                                              max_size=4))
@example(order=["t::n1", "t::n0", "t::n2", "t::n3"], bound=2, chosen=4, statuses=[P, P, P, P]).via(
    "bound tests met out of order: an iterator consumed by the first lookup would miss the second")
def test_selection_as_an_iterator_judges_like_a_set(order, bound, chosen, statuses) -> None:
    nodeids, selected = NODES[:bound], order[:chosen]
    results = {n: result(n, s) for n, s in zip(NODES, statuses, strict=True)}
    expected = judge_falsifier(falsifier(), nodeids, frozenset(selected), results)
    assert judge_falsifier(falsifier(), nodeids, iter(selected), results) == expected
    assert judge_falsifier(falsifier(), nodeids, list(selected), results) == expected
    ran = [n for n in nodeids if n in selected]
    assert expected[0] is (Outcome.CORROBORATED if ran and all(results[n].status is P for n in ran)
                           else Outcome.UNDETERMINED)


# --- is_required: which undetermined outcomes a profile tolerates --------------------------------------

TWO_OPTIONAL = Profile("edge", frozenset({"tpu", "cuda"}), True)


@pytest.mark.parametrize(("extra", "outcome", "reason", "profile", "awaits", "required", "shown"), [
    # decided outcomes always count, whatever else holds
    ({"requires": ("cuda",)}, Outcome.CORROBORATED, "1 test passed", CPU, True, True, "1 test passed"),
    ({"requires": ("cuda",)}, Outcome.REFUTED, "pending: x", CPU, True, True, "pending: x"),
    # alone
    ({}, Outcome.UNDETERMINED, "skipped: s", CPU, False, True, "skipped: s"),
    ({}, Outcome.UNDETERMINED, "skipped: s", CPU, True, False,
     "needs --artifact FILE; not required without one (skipped: s)"),
    ({"requires": ("cuda",)}, Outcome.UNDETERMINED, "skipped: s", CPU, False, False,
     "requires cuda; not required by profile cpu (skipped: s)"),
    ({"requires": ("cuda",)}, Outcome.UNDETERMINED, "skipped: s", BUILTIN_PROFILES["gpu"], False, True, "skipped: s"),
    ({"requires": ("x", "tpu", "cuda")}, Outcome.UNDETERMINED, "r", TWO_OPTIONAL, False, False,
     "requires cuda, tpu; not required by profile edge (r)"),
    ({}, Outcome.UNDETERMINED, "pending: later", CPU, False, False, "pending: later; tolerated by profile cpu"),
    ({}, Outcome.UNDETERMINED, "pending: later", RELEASE, False, True, "pending: later"),
    # near misses: a reason that merely mentions pending is not a pending falsifier
    ({}, Outcome.UNDETERMINED, "pending later", CPU, False, True, "pending later"),
    ({}, Outcome.UNDETERMINED, "skipped: pending: later", CPU, False, True, "skipped: pending: later"),
    # in pairs: awaiting an artifact comes first, then an optional capability, then pending
    ({"requires": ("cuda",)}, Outcome.UNDETERMINED, "pending: p", CPU, True, False,
     "needs --artifact FILE; not required without one (pending: p)"),
    ({"requires": ("cuda",)}, Outcome.UNDETERMINED, "pending: p", CPU, False, False,
     "requires cuda; not required by profile cpu (pending: p)"),
    ({"requires": ("cuda",)}, Outcome.UNDETERMINED, "pending: p", RELEASE, True, False,
     "needs --artifact FILE; not required without one (pending: p)"),
])
def test_is_required(extra, outcome, reason, profile, awaits, required, shown) -> None:
    assert is_required(falsifier(**extra), outcome, reason, profile, awaits_artifact=awaits) == (required, shown)


def test_nothing_awaits_an_artifact_unless_said() -> None:
    assert is_required(falsifier(), Outcome.UNDETERMINED, "skipped: s", CPU) == (True, "skipped: s")


# --- the whole run: each condition alone and in pairs -----------------------------------------------------


@dataclass
class Run:
    """The inputs of one `compute_verdict` call, built from conditions."""

    falsifiers: list[Falsifier] = field(default_factory=list)
    bindings: dict[str, list[str]] = field(default_factory=dict)
    results: dict[str, TestResult] = field(default_factory=dict)
    invalid: list[InvalidContract] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    awaiting: set[str] = field(default_factory=set)
    vacuous: dict[str, str] = field(default_factory=dict)
    mutants: list[MutantResult] = field(default_factory=list)
    artifact_changed: str | None = None

    def add(self, name: str, status: TestStatus | None, **extra) -> Falsifier:
        f = falsifier(f"FALSIFY-{name.upper()}-001", f"{name}-v1", **extra)
        self.falsifiers.append(f)
        if status is not None:
            self.bindings[f.id] = [f"t::{name}"]
            self.results[f"t::{name}"] = result(f"t::{name}", status, reason=name)
        return f

    def compute(self, profile: Profile = CPU):
        return compute_verdict(self.falsifiers, self.bindings, set(self.results), self.results, profile,
                               invalid=self.invalid, problems=self.problems, awaiting_artifact=self.awaiting,
                               artifact_changed=self.artifact_changed, vacuous=self.vacuous or None,
                               mutants=self.mutants or None)


def _vacuous(run: Run) -> None:
    f = run.add("vacuous", P)
    run.vacuous[f.id] = "VACUOUS: mutant m survived"


def _invalid_mutant(run: Run) -> None:
    f = run.add("broken", P)
    run.mutants.append(MutantResult(f.id, f.contract, "m", "code", MutantStatus.INVALID, "nothing at x.y"))


def _invalid_contract(run: Run) -> None:
    f = run.add("flawed", P)
    run.invalid.append(InvalidContract(broken_contract(f.contract), "2 errors"))


def _awaiting(run: Run) -> None:
    f = run.add("artifact", S)
    run.awaiting.add(f.id)


# condition -> (how it changes the run, the verdict it forces alone: its rank decides pairs)
RUN_CONDITIONS: dict[str, Callable[[Run], None]] = {
    "corroborated": lambda r: r.add("ok", P),
    "tolerated-pending": lambda r: r.add("later", None, pending="later"),
    "tolerated-cuda": lambda r: r.add("gpu", S, requires=("cuda",)),
    "awaiting-artifact": _awaiting,
    "refuted": lambda r: r.add("bad", F),
    "invalid-mutant": _invalid_mutant,
    "undetermined": lambda r: r.add("skip", S),
    "not-collected": lambda r: r.add("lost", None),
    "vacuous": _vacuous,
    "invalid-contract": _invalid_contract,
    "binding-problem": lambda r: r.problems.append("t.py: claims FALSIFY-X-009, which no contract declares"),
    "artifact-changed": lambda r: setattr(r, "artifact_changed", "sha256 changed during the run"),
}
NO_GO = {"refuted", "invalid-mutant"}
# a falsifier judged but not counted against the verdict (the cpu profile tolerates it)
NOT_REQUIRED = {"tolerated-pending", "tolerated-cuda", "awaiting-artifact"}


def _expected_verdict(names: set[str]) -> Verdict:
    """The overall rule of the module docstring, in its order."""
    if "artifact-changed" in names:
        return Verdict.UNKNOWN  # a verdict for one digest is never given to another
    if names & NO_GO:
        return Verdict.NO_GO
    if names - NO_GO - NOT_REQUIRED - {"corroborated"}:
        return Verdict.UNKNOWN  # a required undetermined falsifier, an invalid contract, a binding problem
    if "corroborated" not in names:
        return Verdict.UNKNOWN  # nothing in scope, or only tolerated ones: a decline, never an accept
    return Verdict.GO


EXIT = {Verdict.GO: 0, Verdict.NO_GO: 1, Verdict.UNKNOWN: 2}

# (outcome, required) each falsifier-level condition gives its own falsifier under the cpu profile
OWN_OUTCOME = {
    "corroborated": (Outcome.CORROBORATED, True, "1 test passed"),
    "tolerated-pending": (Outcome.UNDETERMINED, False, "pending: later; tolerated by profile cpu"),
    "tolerated-cuda": (Outcome.UNDETERMINED, False, "requires cuda; not required by profile cpu (skipped: gpu)"),
    "awaiting-artifact": (Outcome.UNDETERMINED, False,
                          "needs --artifact FILE; not required without one (skipped: artifact)"),
    "refuted": (Outcome.REFUTED, True, "t::bad failed: bad"),
    "invalid-mutant": (Outcome.REFUTED, True, f"{INVALID_MUTANT}: nothing at x.y (the declared fault cannot be "
                                              "applied; fix the mutant in the contract, see `apr contracts lint`)"),
    "undetermined": (Outcome.UNDETERMINED, True, "skipped: skip"),
    "not-collected": (Outcome.UNDETERMINED, True, "not collected: no test in this run claims it"),
    "vacuous": (Outcome.UNDETERMINED, True, "VACUOUS: mutant m survived"),
    "invalid-contract": (Outcome.UNDETERMINED, True, "its contract file has errors (see `apr contracts lint`)"),
}

SINGLES = [(n,) for n in RUN_CONDITIONS]
PAIRS = list(itertools.combinations(RUN_CONDITIONS, 2))


@pytest.mark.parametrize("names", SINGLES + PAIRS, ids="+".join)
def test_verdict_lattice_table(names: tuple[str, ...]) -> None:
    run = Run()
    for name in names:
        RUN_CONDITIONS[name](run)
    report = run.compute()
    expected = _expected_verdict(set(names))
    assert (report.verdict, report.exit_code) == (expected, EXIT[expected])
    assert exit_code_of(report.verdict) == EXIT[expected]
    # each falsifier is judged on its own evidence: its outcome is the one it has alone
    own = [OWN_OUTCOME[n] for n in names if n in OWN_OUTCOME and n != "invalid-contract"] + (
        [OWN_OUTCOME["invalid-contract"]] if "invalid-contract" in names else [])
    got = sorted(((o.outcome, o.required, o.reason) for o in report.falsifiers), key=repr)
    assert got == sorted(own, key=repr)
    counts = {o: sum(1 for x in own if x[0] is o) for o in Outcome}
    assert {o: report.count(o) for o in Outcome} == counts
    # the report keeps what it was decided from
    assert report.invalid_contracts == tuple(run.invalid)
    assert report.problems == tuple(run.problems)
    assert report.artifact_changed == run.artifact_changed
    assert report.mutants == (tuple(run.mutants) if run.mutants else None)


def test_invalid_contract_and_binding_problem_alone_make_an_otherwise_go_run_unknown() -> None:
    for extra in ({"invalid": [InvalidContract(broken_contract("other-v1"), "bad")]},
                  {"problems": ["a binding problem"]}):
        f = falsifier()
        results = {"t::a": result("t::a", P)}
        report = compute_verdict([f], {f.id: ["t::a"]}, {"t::a"}, results, CPU, **extra)
        assert report.falsifiers[0].outcome is Outcome.CORROBORATED  # the contract in error is another one
        assert (report.verdict, report.exit_code) == (Verdict.UNKNOWN, 2)


# --- mutant evidence: invalid before vacuous, and only over the falsifier it names ---------------------------


def test_an_invalid_mutant_refutes_whatever_the_tests_or_profile_said() -> None:
    later = falsifier("FALSIFY-L-002", pending="later")
    ok = falsifier("FALSIFY-L-003")
    broken = MutantResult(later.id, later.contract, "m", "code", MutantStatus.INVALID, "leaves the project")
    killed = MutantResult(ok.id, ok.contract, "k", "code", MutantStatus.KILLED)
    results = {"t::ok": result("t::ok", P)}
    report = compute_verdict([later, ok], {ok.id: ["t::ok"]}, {"t::ok"}, results, CPU, mutants=[broken, killed],
                             vacuous={later.id: "VACUOUS: v"})
    first, second = report.falsifiers
    assert (first.outcome, first.required) == (Outcome.REFUTED, True)
    assert first.reason.startswith(f"{INVALID_MUTANT}: leaves the project")
    assert (second.outcome, second.required, second.reason) == (Outcome.CORROBORATED, True, "1 test passed")
    assert (report.verdict, report.exit_code) == (Verdict.NO_GO, 1)
    assert report.mutants == (broken, killed)


def test_a_surviving_mutant_caps_only_a_corroborated_falsifier() -> None:
    passed, failed, tolerated = falsifier("FALSIFY-L-001"), falsifier("FALSIFY-L-002"), falsifier(
        "FALSIFY-L-003", pending="later")
    results = {"t::a": result("t::a", P), "t::b": result("t::b", F, reason="boom")}
    vacuous = {f.id: f"VACUOUS: {f.id}" for f in (passed, failed, tolerated)}
    report = compute_verdict([passed, failed, tolerated], {passed.id: ["t::a"], failed.id: ["t::b"]},
                             set(results), results, CPU, vacuous=vacuous)
    assert [(o.outcome, o.required, o.reason) for o in report.falsifiers] == [
        (Outcome.UNDETERMINED, True, "VACUOUS: FALSIFY-L-001"),
        (Outcome.REFUTED, True, "t::b failed: boom"),
        (Outcome.UNDETERMINED, False, "pending: later; tolerated by profile cpu"),
    ]
    alone = compute_verdict([passed], {passed.id: ["t::a"]}, {"t::a"}, results, CPU, vacuous=vacuous)
    assert (alone.verdict, alone.exit_code) == (Verdict.UNKNOWN, 2)


def test_mutants_that_are_not_invalid_change_no_outcome() -> None:
    f = falsifier()
    results = {"t::a": result("t::a", P)}
    runs = [MutantResult(f.id, f.contract, s.value, "code", s) for s in MutantStatus if s is not MutantStatus.INVALID]
    report = compute_verdict([f], {f.id: ["t::a"]}, {"t::a"}, results, CPU, mutants=runs)
    assert (report.falsifiers[0].outcome, report.verdict) == (Outcome.CORROBORATED, Verdict.GO)
    assert report.mutants == tuple(runs)
    assert compute_verdict([f], {f.id: ["t::a"]}, {"t::a"}, results, CPU, mutants=[]).mutants == ()
    assert compute_verdict([f], {f.id: ["t::a"]}, {"t::a"}, results, CPU).mutants is None


# --- what compute_verdict passes down, and what it keeps -------------------------------------------------------


def test_compute_verdict_passes_stopped_and_contract_validity_down() -> None:
    f, g = falsifier("FALSIFY-L-001", "l-v1"), falsifier("FALSIFY-L-002", "m-v1")
    results = {"t::b": result("t::b", P)}
    bad = InvalidContract(broken_contract("m-v1"), "1 error")
    report = compute_verdict([f, g], {f.id: ["t::a"], g.id: ["t::b"]}, {"t::a", "t::b"}, results, CPU,
                             invalid=[bad], stopped="stopped after 1 failure (-x)", notes=["n1", "n2"])
    assert [o.reason for o in report.falsifiers] == [
        "did not run (stopped after 1 failure (-x))", "its contract file has errors (see `apr contracts lint`)"]
    assert report.notes == ("n1", "n2")
    assert report.profile is CPU


def test_an_outcome_keeps_its_bound_node_ids_and_the_evidence_of_the_selected_ones() -> None:
    f = falsifier()
    results = {"t::a": result("t::a", P, duration=0.25), "t::b": result("t::b", P, duration=1.5),
               "t::c": result("t::c", P, duration=4.0)}
    report = compute_verdict([f], {f.id: ["t::c", "t::a", "t::b", "t::d"]}, ["t::a", "t::c", "t::d"], results, CPU)
    (outcome,) = report.falsifiers
    assert outcome.nodeids == ("t::c", "t::a", "t::b", "t::d")
    assert outcome.tests == (results["t::c"], results["t::a"])  # bound order; t::b not selected, t::d not run
    assert outcome.duration == 4.25
    assert (outcome.outcome, outcome.reason) == (Outcome.UNDETERMINED, "1 of 3 bound tests did not run")


def test_the_report_keeps_the_artifact_and_an_artifact_change_makes_a_go_run_unknown() -> None:
    f = falsifier()
    results = {"t::a": result("t::a", P)}
    record = ArtifactRecord("/models/m.apr", "ab" * 32, 1024)
    same = compute_verdict([f], {f.id: ["t::a"]}, {"t::a"}, results, CPU, artifact=record)
    assert (same.verdict, same.artifact, same.artifact_changed) == (Verdict.GO, record, None)
    changed = compute_verdict([f], {f.id: ["t::a"]}, {"t::a"}, results, CPU, artifact=record,
                              artifact_changed="sha256 at the end is not the start's")
    assert (changed.verdict, changed.exit_code, changed.artifact) == (Verdict.UNKNOWN, 2, record)
    assert changed.artifact_changed == "sha256 at the end is not the start's"
    assert changed.falsifiers[0].outcome is Outcome.CORROBORATED  # the tests held; the file did not
    assert compute_verdict([f], {f.id: ["t::a"]}, {"t::a"}, results, CPU).artifact is None


def test_total_duration_sums_every_phase() -> None:
    tests = [result("t::a", P, duration=0.5), result("t::b", F, duration=2.0, phase="setup")]
    assert total_duration(tests) == 2.5
    assert total_duration([]) == 0


# --- fold_verdict: the overall rule, on judged outcomes -----------------------------------------------------------


def _outcome(outcome: Outcome, required: bool = True) -> FalsifierOutcome:
    return FalsifierOutcome(falsifier(), outcome, "r", required, (), ())


C, R, U = Outcome.CORROBORATED, Outcome.REFUTED, Outcome.UNDETERMINED


@pytest.mark.parametrize(("outcomes", "flags", "verdict"), [
    ([], {}, Verdict.UNKNOWN),
    ([_outcome(C)], {}, Verdict.GO),
    ([_outcome(U, required=False)], {}, Verdict.UNKNOWN),  # only tolerated: nothing was checked
    ([_outcome(U, required=False), _outcome(U, required=False)], {}, Verdict.UNKNOWN),
    ([_outcome(C), _outcome(U, required=False)], {}, Verdict.GO),
    ([_outcome(U)], {}, Verdict.UNKNOWN),
    ([_outcome(R)], {}, Verdict.NO_GO),
    ([_outcome(C)], {"invalid": True}, Verdict.UNKNOWN),
    ([_outcome(C)], {"problems": True}, Verdict.UNKNOWN),
    ([_outcome(C)], {"invalid": True, "problems": True}, Verdict.UNKNOWN),
    ([_outcome(C)], {"artifact_changed": "sha256 differs"}, Verdict.UNKNOWN),
    ([_outcome(C)], {"artifact_changed": ""}, Verdict.GO),
    ([_outcome(R)], {"invalid": True}, Verdict.NO_GO),
    ([_outcome(R)], {"problems": True}, Verdict.NO_GO),
    ([_outcome(R), _outcome(U)], {}, Verdict.NO_GO),
    ([_outcome(R)], {"artifact_changed": "sha256 differs"}, Verdict.UNKNOWN),
    ([], {"invalid": True}, Verdict.UNKNOWN),
])
def test_fold_verdict(outcomes, flags, verdict) -> None:
    assert fold_verdict(outcomes, **flags) is verdict


def test_exit_codes() -> None:
    assert [(v.value, exit_code_of(v), v.exit_code) for v in Verdict] == [
        ("GO", 0, 0), ("NO-GO", 1, 1), ("UNKNOWN", 2, 2)]
