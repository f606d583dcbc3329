"""Pure: test outcomes -> one outcome per falsifier -> GO / NO-GO / UNKNOWN.

The rules, in the order they are applied to a falsifier:

1. any bound test failed (in any phase) ............................ REFUTED
   (unless the failure is a Hypothesis health check: that says nothing about the invariant)
2. its contract file has errors .................................... UNDETERMINED
3. no test ran: pending / not collected / deselected / stopped ...... UNDETERMINED
4. a health check fired, a test was skipped, xfailed or xpassed, or some
   bound tests did not run ......................................... UNDETERMINED
5. every bound test that was selected ran and passed ................ CORROBORATED

Under ``--mutants``, two more: a falsifier with a declared mutant that cannot be applied (it does
not resolve, or it reaches outside the project) is REFUTED, whatever its tests did (its declared
evidence is broken: the verdict must be NO-GO, not GO beside a listed error); one with a surviving
mutant is capped at UNDETERMINED (VACUOUS).

A skip is never a pass. Overall: any REFUTED -> NO-GO (exit 1); else any UNDETERMINED the profile
requires, an invalid contract, a binding problem, or no CORROBORATED falsifier at all -> UNKNOWN
(exit 2); else GO (exit 0). An
UNDETERMINED falsifier is *not required* only when the profile says so — it allows pending ones,
or the falsifier ``requires`` a capability the profile lists as optional (``cuda`` under ``cpu``);
it is still reported, with that reason.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from falsifiers import mutation
from falsifiers.records import Contract, Falsifier
from falsifiers.settings import Profile

if TYPE_CHECKING:  # pragma: no cover
    from falsifiers.artifact import ArtifactRecord


class Outcome(str, enum.Enum):
    CORROBORATED = "CORROBORATED"
    REFUTED = "REFUTED"
    UNDETERMINED = "UNDETERMINED"


class Verdict(str, enum.Enum):
    GO = "GO"
    NO_GO = "NO-GO"
    UNKNOWN = "UNKNOWN"

    @property
    def exit_code(self) -> int:
        return exit_code_of(self)


def exit_code_of(verdict: Verdict) -> int:
    """The process exit code for a verdict: GO 0, NO-GO 1, UNKNOWN 2 (a plain function: mutmut measures it)."""
    return {Verdict.GO: 0, Verdict.NO_GO: 1, Verdict.UNKNOWN: 2}[verdict]


class TestStatus(str, enum.Enum):
    """What happened to one test, all phases combined."""

    __test__ = False  # not a pytest test class

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    HEALTH_CHECK = "health-check"


@dataclass(frozen=True, slots=True)
class TestResult:
    """One bound test's evidence (plain data: it crosses from xdist workers as JSON)."""

    __test__ = False

    nodeid: str
    status: TestStatus
    duration: float = 0.0
    phase: str = "call"
    reason: str = ""  # skip reason, or the failure's first line
    seed: str | None = None  # how to replay: "--hypothesis-seed=N", "@seed(N)", "derandomize"
    reproduce: str | None = None  # Hypothesis @reproduce_failure(...) text
    example: str | None = None  # Hypothesis "Falsifying example: ..." (the minimal example)


@dataclass(frozen=True, slots=True)
class FalsifierOutcome:
    """One falsifier judged: its outcome, why, whether the profile requires it, and the evidence."""

    falsifier: Falsifier
    outcome: Outcome
    reason: str
    required: bool
    tests: tuple[TestResult, ...]
    nodeids: tuple[str, ...]  # every bound test collected, whether or not it ran

    @property
    def duration(self) -> float:
        return total_duration(self.tests)


def total_duration(tests: Iterable[TestResult]) -> float:
    """Seconds spent in a falsifier's tests, all phases."""
    return sum(t.duration for t in tests)


@dataclass(frozen=True, slots=True)
class InvalidContract:
    """A contract in scope whose file has errors: none of its falsifiers can be corroborated."""

    contract: Contract
    reason: str


@dataclass(frozen=True, slots=True)
class VerdictReport:
    """The verdict and everything it was decided from (the table and the receipt are built from it)."""

    verdict: Verdict
    profile: Profile
    falsifiers: tuple[FalsifierOutcome, ...]
    invalid_contracts: tuple[InvalidContract, ...] = ()
    problems: tuple[str, ...] = ()  # binding problems (collection errors), as rendered
    notes: tuple[str, ...] = ()
    artifact: ArtifactRecord | None = None  # the file an artifact-level run is about (--artifact)
    artifact_changed: str | None = None  # why the file's digest at the end is not the start's
    mutants: tuple[mutation.MutantResult, ...] | None = None  # None: --mutants was not run

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code

    def count(self, outcome: Outcome) -> int:
        return sum(1 for f in self.falsifiers if f.outcome is outcome)


def passed_reason(count: int) -> str:
    """The reason a corroborated falsifier shows: ``"3 tests passed"``."""
    return f"{count} test{'s' if count != 1 else ''} passed"


def judge_falsifier(
    falsifier: Falsifier,
    nodeids: Sequence[str],
    selected: Iterable[str],
    results: Mapping[str, TestResult],
    *,
    contract_valid: bool = True,
    stopped: str | None = None,
) -> tuple[Outcome, str]:
    """Outcome and reason for one falsifier (rules 1-5 of the module docstring)."""
    if not isinstance(selected, (set, frozenset)):
        selected = set(selected)
    chosen = [n for n in nodeids if n in selected]
    ran = [results[n] for n in chosen if n in results]
    if ran and len(ran) == len(chosen) and all(t.status is TestStatus.PASSED for t in ran) and contract_valid:
        return Outcome.CORROBORATED, passed_reason(len(ran))  # the common case, decided at once
    failed = [t for t in ran if t.status is TestStatus.FAILED]
    if failed:
        first = failed[0]
        where = "" if first.phase == "call" else f" (in {first.phase})"
        return Outcome.REFUTED, f"{first.nodeid} failed{where}: {first.reason}".rstrip(": ")
    if not contract_valid:
        return Outcome.UNDETERMINED, "its contract file has errors (see `apr contracts lint`)"
    if not ran:
        if falsifier.pending and not nodeids:
            return Outcome.UNDETERMINED, f"pending: {falsifier.pending}"
        if not nodeids:
            return Outcome.UNDETERMINED, "not collected: no test in this run claims it"
        if not chosen:
            return Outcome.UNDETERMINED, "deselected: its tests were not selected to run"
        return Outcome.UNDETERMINED, f"did not run ({stopped or 'the session ended before its tests'})"
    health = [t for t in ran if t.status is TestStatus.HEALTH_CHECK]
    if health:
        return Outcome.UNDETERMINED, f"Hypothesis health check in {health[0].nodeid}: {health[0].reason}"
    skipped = [t for t in ran if t.status in (TestStatus.SKIPPED, TestStatus.XFAILED, TestStatus.XPASSED)]
    if skipped:
        first = skipped[0]
        word = first.status.value
        more = f" ({len(skipped)} of {len(chosen)} tests)" if len(chosen) > 1 else ""
        return Outcome.UNDETERMINED, f"{word}{more}: {first.reason or first.nodeid}"
    # Every test that ran passed, in a valid contract: had all of them run, the first check above
    # would have corroborated it (rule 5), so some did not (len(ran) < len(chosen) here).
    return Outcome.UNDETERMINED, f"{len(chosen) - len(ran)} of {len(chosen)} bound tests did not run"


def is_required(falsifier: Falsifier, outcome: Outcome, reason: str, profile: Profile, *,
                awaits_artifact: bool = False) -> tuple[bool, str]:
    """Whether an outcome counts against the verdict under ``profile``, and the reason to show.

    ``awaits_artifact``: the falsifier is about a given file (its tests take the ``apr_artifact``
    fixture) and the run was given none; in every profile it is then listed, not required: a run
    without ``--artifact`` makes no claim about any file.
    """
    if outcome is not Outcome.UNDETERMINED:
        return True, reason
    if awaits_artifact:
        return False, f"needs --artifact FILE; not required without one ({reason})"
    optional = sorted(set(falsifier.requires) & profile.optional_requires)
    if optional:
        return False, f"requires {', '.join(optional)}; not required by profile {profile.name} ({reason})"
    if reason.startswith("pending:") and profile.allow_pending:
        return False, f"{reason}; tolerated by profile {profile.name}"
    return True, reason


def compute_verdict(
    falsifiers: Sequence[Falsifier],
    bindings: Mapping[str, Sequence[str]],
    selected: Iterable[str],
    results: Mapping[str, TestResult],
    profile: Profile,
    *,
    invalid: Sequence[InvalidContract] = (),
    problems: Sequence[str] = (),
    stopped: str | None = None,
    notes: Sequence[str] = (),
    awaiting_artifact: Collection[str] = (),
    artifact: ArtifactRecord | None = None,
    artifact_changed: str | None = None,
    vacuous: Mapping[str, str] | None = None,
    mutants: Sequence[mutation.MutantResult] | None = None,
) -> VerdictReport:
    """Judge every falsifier in scope and fold them into one verdict.

    Args:
        falsifiers: the falsifiers in scope, in report order.
        bindings: falsifier id -> node ids of every collected test that claims it.
        selected: node ids that were selected to run (after -k/-m/--falsifier deselection).
        results: node id -> what happened to that test.
        profile: which undetermined outcomes are tolerated.
        invalid: contracts in scope whose files have errors.
        problems: binding problems; any makes the verdict at best UNKNOWN.
        stopped: why the session ended early, if it did.
        awaiting_artifact: ids of artifact falsifiers that wait for a file the run was not given.
        artifact: the file the run is about (recorded in the report).
        artifact_changed: why the file's digest at the end differs from the start's: the verdict is
            then UNKNOWN, whatever the tests said (a verdict for one digest is never given another).
        vacuous: falsifier id -> reason, for falsifiers with a surviving mutant: a corroborated one
            is capped at UNDETERMINED (required in every profile).
        mutants: every mutant run's result (``--mutants``), kept in the report; a falsifier with an
            ``invalid`` one (a declaration that cannot be applied) is REFUTED, so the verdict is NO-GO.

    Example:
        >>> from falsifiers.records import Location
        >>> f = Falsifier("FALSIFY-A-001", "a", ("INV-A-001",), "r", "p", "f", Location("a.yaml"))
        >>> skip = TestResult("t.py::t", TestStatus.SKIPPED, reason="no data")
        >>> v = compute_verdict([f], {f.id: ["t.py::t"]}, ["t.py::t"], {"t.py::t": skip}, Profile("cpu"))
        >>> v.verdict.value, v.falsifiers[0].outcome.value
        ('UNKNOWN', 'UNDETERMINED')
    """
    chosen = set(selected)
    invalid_names = {i.contract.name for i in invalid}
    broken = _invalid_mutants(mutants)
    outcomes = []
    for falsifier in falsifiers:
        nodeids = tuple(bindings.get(falsifier.id, ()))
        outcome, reason = judge_falsifier(
            falsifier, nodeids, chosen, results, contract_valid=falsifier.contract not in invalid_names, stopped=stopped
        )
        required, reason = is_required(falsifier, outcome, reason, profile,
                                       awaits_artifact=falsifier.id in awaiting_artifact)
        if falsifier.id in broken:
            outcome, reason, required = Outcome.REFUTED, broken[falsifier.id], True
        elif vacuous and falsifier.id in vacuous and outcome is Outcome.CORROBORATED:
            outcome, reason, required = Outcome.UNDETERMINED, vacuous[falsifier.id], True
        tests = tuple([results[n] for n in nodeids if n in results and n in chosen])
        outcomes.append(FalsifierOutcome(falsifier, outcome, reason, required, tests, nodeids))
    verdict = fold_verdict(outcomes, invalid=bool(invalid), problems=bool(problems), artifact_changed=artifact_changed)
    return VerdictReport(verdict, profile, tuple(outcomes), tuple(invalid), tuple(problems), tuple(notes), artifact,
                         artifact_changed, tuple(mutants) if mutants is not None else None)


def fold_verdict(outcomes: Sequence[FalsifierOutcome], *, invalid: bool = False, problems: bool = False,
                 artifact_changed: str | None = None) -> Verdict:
    """The one verdict for judged falsifiers (the overall rule of the module docstring).

    In this order: the artifact changed during the run -> UNKNOWN; any REFUTED -> NO-GO; an invalid
    contract, a binding problem or a required UNDETERMINED -> UNKNOWN; nothing corroborated (none
    judged, or only tolerated UNDETERMINED ones) -> UNKNOWN; else GO.
    """
    if artifact_changed:
        return Verdict.UNKNOWN
    if any(o.outcome is Outcome.REFUTED for o in outcomes):
        return Verdict.NO_GO
    if invalid or problems or any(o.outcome is Outcome.UNDETERMINED and o.required for o in outcomes):
        return Verdict.UNKNOWN
    if not any(o.outcome is Outcome.CORROBORATED for o in outcomes):
        # nothing promised was checked (none judged, or every one tolerated as not run): a decline,
        # never an accept; a GO must rest on at least one falsifier that was attacked and held
        return Verdict.UNKNOWN
    return Verdict.GO


def _invalid_mutants(mutants: Sequence[mutation.MutantResult] | None) -> dict[str, str]:
    if not mutants:
        return {}
    return mutation.invalid_mutant_reasons(mutants)  # looked up on the module: a declared mutant patches it


__all__ = [
    "FalsifierOutcome",
    "InvalidContract",
    "Outcome",
    "TestResult",
    "TestStatus",
    "Verdict",
    "VerdictReport",
    "compute_verdict",
    "exit_code_of",
    "fold_verdict",
    "is_required",
    "judge_falsifier",
    "passed_reason",
    "total_duration",
]
