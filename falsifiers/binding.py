"""Pure: the claims collected tests make x the falsifiers contracts declare -> bindings and problems.

`read_claim` reads a test's ``@pytest.mark.falsifies`` marks once at collection (a `RawClaim`:
plain tuples, since every test is read); `to_claims` turns them into `Claim` records, and
`bind_falsifiers` (the one binding rule) matches them to the declared falsifiers.

Both directions are checked (pv checked neither): every id a test claims must be declared, and —
when the whole suite was collected — every declared falsifier must be claimed by at least one test
unless it carries a ``pending`` reason. A problem names both sides: the test's file and line, and
the contract's ``file:line:col`` with the nearest id.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from falsifiers.records import Falsifier, Invariant, Level, Location

MARK = "falsifies"
FIXTURE = "apr_artifact"  # the fixture through which a test receives the --artifact file

# (claimed ids in mark order without repeats, reprs of non-string mark arguments, test file, 1-based line)
RawClaim = tuple[tuple[str, ...], tuple[str, ...], str, "int | None"]


@dataclass(frozen=True, slots=True)
class Claim:
    """One collected test and the falsifier ids its ``@pytest.mark.falsifies`` marks name."""

    nodeid: str
    ids: tuple[str, ...]
    location: Location
    bad_args: tuple[str, ...] = ()  # reprs of mark arguments that are not strings


@dataclass(frozen=True, slots=True)
class BindingProblem:
    """A broken link between contracts and tests; the plugin makes each one a collection error."""

    code: str  # unknown-id | unbound | bad-mark
    nodeid: str  # what pytest shows as "ERROR collecting <nodeid>"
    message: str


@dataclass(frozen=True, slots=True)
class Bindings:
    """falsifier id -> node ids of the tests that claim it, plus the problems found."""

    tests: dict[str, tuple[str, ...]]
    problems: tuple[BindingProblem, ...]


def bind_falsifiers(
    declared: Mapping[str, Falsifier],
    claims: Iterable[Claim],
    *,
    invariants: Mapping[str, Invariant] | None = None,
    require_all: bool = True,
    unchecked_contracts: frozenset[str] = frozenset(),
) -> Bindings:
    """Match claims to declared falsifiers and report what does not match.

    Args:
        declared: every declared falsifier by id (from valid and invalid contracts alike).
        claims: one per collected test that carries the mark.
        invariants: declared invariants, to explain a test that claims an ``INV-…`` id.
        require_all: report declared, non-pending falsifiers that no test claims (true when the
            whole suite was collected; a run narrowed to some paths cannot know).
        unchecked_contracts: contracts whose falsifiers are not required to be bound (invalid ones:
            they are UNDETERMINED anyway, and their ids may be salvaged guesses).

    Returns:
        `Bindings` with node ids sorted, and problems in a stable order (xdist compares them as text).

    Example:
        >>> f = Falsifier("FALSIFY-A-001", "a", ("INV-A-001",), "r", "p", "f", Location("a.yaml", 9, 5))
        >>> b = bind_falsifiers({f.id: f}, [Claim("t.py::t", ("FALSIFY-A-01",), Location("t.py", 3))])
        >>> [p.code for p in b.problems]
        ['unbound', 'unknown-id']
    """
    tests: dict[str, list[str]] = {}
    problems: list[BindingProblem] = []
    for claim in claims:
        test_file = claim.nodeid.partition("::")[0]
        for bad in claim.bad_args:
            problems.append(
                BindingProblem(
                    "bad-mark",
                    test_file,
                    f"{claim.location}: {claim.nodeid} has @pytest.mark.{MARK}({bad}); "
                    "falsifier ids are strings\n  fix: write @pytest.mark.falsifies(\"FALSIFY-…-NNN\")",
                )
            )
        if not claim.ids and not claim.bad_args:
            problems.append(
                BindingProblem("bad-mark", test_file,
                               f"{claim.location}: {claim.nodeid} has @pytest.mark.{MARK}() with no id\n"
                               "  fix: name the falsifier(s) it checks: @pytest.mark.falsifies(\"FALSIFY-…-NNN\")")
            )
        for ident in claim.ids:
            if ident in declared:
                tests.setdefault(ident, []).append(claim.nodeid)
            else:
                problems.append(BindingProblem("unknown-id", test_file, _unknown(claim, ident, declared, invariants)))
    if require_all:
        for ident in sorted(declared):
            falsifier = declared[ident]
            if ident in tests or falsifier.pending or falsifier.contract in unchecked_contracts:
                continue
            problems.append(
                BindingProblem(
                    "unbound",
                    falsifier.location.path,
                    f"{falsifier.location}: falsifier {ident} (contract {falsifier.contract}) has no test: "
                    f"no collected test carries @pytest.mark.{MARK}(\"{ident}\")\n"
                    f"  fix: add the mark to the test that checks it, or declare `pending: \"why\"` "
                    "in the contract until that test exists",
                )
            )
    problems.sort(key=lambda p: (p.code, p.nodeid, p.message))
    return Bindings({k: tuple(sorted(v)) for k, v in tests.items()}, tuple(problems))


def nearest_id(ident: str, candidates: Sequence[str] | Mapping[str, object]) -> str | None:
    """The declared id closest to a mistyped one (difflib ratio ≥ 0.6)."""
    match = difflib.get_close_matches(ident, list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def _unknown(
    claim: Claim, ident: str, declared: Mapping[str, Falsifier], invariants: Mapping[str, Invariant] | None
) -> str:
    text = f"{claim.location}: {claim.nodeid} claims falsifier {ident}, which no contract declares"
    if invariants and ident in invariants:
        attackers = sorted(f.id for f in declared.values() if ident in f.invariants)
        fix = (
            f"{ident} is an invariant; claim its falsifier instead: "
            + (", ".join(attackers) if attackers else "(none declared yet)")
        )
        return f"{text}\n  fix: {fix}"
    nearest = nearest_id(ident, declared)
    if nearest:
        where = declared[nearest].location
        return f"{text}\n  did you mean {nearest}? (declared at {where})\n  fix: use @pytest.mark.{MARK}(\"{nearest}\")"
    return f"{text}\n  fix: declare {ident} in a contract under contracts/, or correct the id"


# --- reading claims at collection -----------------------------------------------------------------


def read_claim(item: Any) -> RawClaim | None:
    """The falsifier ids a collected test claims (its own marks, then its class's and module's)."""
    marks = list(item.iter_markers(name=MARK))
    if not marks:
        return None
    ids: list[str] = []
    bad: list[str] = []
    for mark in marks:
        for arg in mark.args:
            values = arg if isinstance(arg, list | tuple) else [arg]
            for value in values:
                (ids.append(value) if isinstance(value, str) else bad.append(repr(value)))
    path, lineno, _ = item.location
    return tuple(dict.fromkeys(ids)), tuple(bad), path, lineno + 1 if lineno is not None else None


def to_claims(claims: Mapping[str, RawClaim]) -> list[Claim]:
    """The records `falsifiers.binding.bind_falsifiers` takes, one per claiming test."""
    return [Claim(nodeid, ids, Location(path, line), bad) for nodeid, (ids, bad, path, line) in claims.items()]


def artifact_falsifiers(items: Iterable[Any], claims: Mapping[str, RawClaim],
                        declared: Mapping[str, Falsifier]) -> set[str]:
    """Artifact-level falsifiers with a bound test that takes the ``apr_artifact`` fixture.

    Only these are about a *given* file; other ``level: artifact`` falsifiers build their own files.
    """
    found: set[str] = set()
    for item in items:
        claim = claims.get(item.nodeid)
        if claim is None or FIXTURE not in getattr(item, "fixturenames", ()):
            continue
        for ident in claim[0]:
            known = declared.get(ident)
            if known is not None and known.level is Level.ARTIFACT:
                found.add(ident)
    return found


__all__ = ["FIXTURE", "MARK", "BindingProblem", "Bindings", "Claim", "RawClaim", "artifact_falsifiers",
           "bind_falsifiers", "nearest_id", "read_claim", "to_claims"]
