"""Declared mutants: resolve them safely, apply them in the test process, judge what their runs showed.

A falsifier whose tests cannot fail is worse than none: it reads as evidence. Each falsifier may
declare ``mutants:``, small named faults that must turn its bound tests red. ``--mutants`` reruns
a falsifier's bound tests once per mutant, each in its own child pytest (`falsifiers.mutant_runs`),
with ``--apply-mutant FALSIFIER:NAME``; that child patches the fault in around each bound test
(`apply_mutant`) and restores it afterwards. While it is patched, ``APR_CONTRACTS_MUTANT`` names it,
so a pytest the test starts itself (a pytester subprocess, xdist workers) patches the same fault
in at configure time (`install_inherited_mutant`): tests that check the harness through child
runs can be killed too.

Nothing read from a contract is ever executed or evaluated: a ``target`` is an attribute path and a
``replacement`` a ``module:attribute`` name, and both must lie in the project's own packages
(`ALLOWED_NAMESPACES`) at every step (`falsifiers.mutant_resolution`); the only code that runs is
what those modules already define. A declared mutant that cannot be applied (it does not resolve,
or it reaches outside the project) is ``invalid``: it is never run, and it makes the verdict NO-GO
(`invalid_mutant_reasons`), since a falsifier whose declared fault does not exist shows nothing.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import sys
from pathlib import Path
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from falsifiers.errors import SelectionError
from falsifiers.mutant_resolution import (
    ALLOWED_NAMESPACES,
    mutant_problem,
    namespace_problem,
    resolve_replacement,
    resolve_target,
)
from falsifiers.records import Corpus, Falsifier, Mutant

VACUOUS = "VACUOUS"
INVALID_MUTANT = "INVALID MUTANT"
INHERIT_ENV = "APR_CONTRACTS_MUTANT"


class MutantStatus(str, enum.Enum):
    """What one mutant run showed about its falsifier's tests."""

    KILLED = "killed"  # a bound test failed with the fault in: the tests can fail
    SURVIVED = "survived"  # every bound test passed with the fault in: the falsifier is vacuous
    NOT_RUN = "not-run"  # the falsifier was not corroborated, or its tests were skipped under the mutant
    ERROR = "error"  # its run ended without a verdict (a timeout, a crash)
    INVALID = "invalid"  # the declaration cannot be applied: it does not resolve, or leaves the project


@dataclass(frozen=True, slots=True)
class MutantResult:
    """One mutant's run (plain data: it goes into the receipt)."""

    falsifier: str
    contract: str
    name: str
    kind: str
    status: MutantStatus
    detail: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"falsifier": self.falsifier, "contract": self.contract, "name": self.name, "kind": self.kind,
                "status": self.status.value, "detail": self.detail, "seconds": round(self.seconds, 3)}


@contextlib.contextmanager
def apply_mutant(mutant: Mutant) -> Iterator[None]:
    """Patch a code mutant in for the block and restore the original after (artifact mutants: no-op here).

    Raises:
        SelectionError: the mutant names something outside the allowed packages, or nothing at all.
    """
    patch = patch_in(mutant)
    try:
        yield
    finally:
        patch_out(patch)


@dataclass(frozen=True, slots=True)
class Patch:
    """What `patch_in` replaced, so that `patch_out` can put it back."""

    owner: Any
    name: str
    original: Any
    inherited: str | None  # APR_CONTRACTS_MUTANT before the patch (None: it was unset)


def patch_in(mutant: Mutant) -> Patch | None:
    """Set a code mutant's replacement on its target and announce it in ``APR_CONTRACTS_MUTANT``.

    The body of `apply_mutant` (a plain function, so mutation testing measures it).

    Returns:
        What `patch_out` needs to undo it; ``None`` for an artifact mutant (nothing is patched).

    Raises:
        SelectionError: the mutant names something outside the allowed packages, or nothing at all.
    """
    if mutant.artifact:
        return None
    problem = namespace_problem(mutant)
    if problem:
        raise SelectionError(problem, hint=f"targets and replacements must start with one of "
                             f"{', '.join(n + '.' for n in ALLOWED_NAMESPACES)}")
    assert mutant.target is not None and mutant.replacement is not None  # the schema's oneOf
    owner, name = resolve_target(mutant.target)
    replacement = resolve_replacement(mutant.replacement)
    original = owner.__dict__[name] if isinstance(owner, type) and name in owner.__dict__ else getattr(owner, name)
    inherited = os.environ.get(INHERIT_ENV)
    setattr(owner, name, replacement)
    os.environ[INHERIT_ENV] = json.dumps({"name": mutant.name, "target": mutant.target,
                                          "replacement": mutant.replacement,
                                          "paths": _import_roots(mutant.target, mutant.replacement)})
    return Patch(owner, name, original, inherited)


def patch_out(patch: Patch | None) -> None:
    """Undo `patch_in`: the original attribute back, ``APR_CONTRACTS_MUTANT`` as it was before."""
    if patch is None:
        return
    setattr(patch.owner, patch.name, patch.original)
    if patch.inherited is None:
        os.environ.pop(INHERIT_ENV, None)
    else:
        os.environ[INHERIT_ENV] = patch.inherited


def _import_roots(*specs: str) -> list[str]:
    """The folders from which the top packages of ``specs`` were imported (for a child's sys.path)."""
    roots = []
    for spec in specs:
        package = sys.modules.get(spec.split(":", 1)[0].split(".", 1)[0])
        location = getattr(package, "__file__", None)
        if location:
            root = os.fspath(Path(location).resolve().parent.parent)
            if root not in roots:
                roots.append(root)
    return roots


def install_inherited_mutant() -> Mutant | None:
    """In a pytest started while a mutant was applied: patch the same fault in for the whole process.

    Called by the plugin's ``pytest_configure`` when ``APR_CONTRACTS_MUTANT`` is set (only
    `apply_mutant` sets it). The target and replacement are checked against
    `ALLOWED_NAMESPACES` again, and the patch is never undone: the process exists for this run.

    Raises:
        SelectionError: the variable is malformed or names something outside the project.
    """
    raw = os.environ.get(INHERIT_ENV)
    if not raw:
        return None
    try:
        spec = json.loads(raw)
        mutant = Mutant(name=str(spec["name"]), target=str(spec["target"]), replacement=str(spec["replacement"]))
        paths = [str(p) for p in spec.get("paths", ())]
    except (ValueError, KeyError, TypeError) as err:
        raise SelectionError(f"{INHERIT_ENV} is not a mutant this harness wrote: {err}",
                             hint=f"unset {INHERIT_ENV}") from err
    problem = namespace_problem(mutant)
    if problem:
        raise SelectionError(f"{INHERIT_ENV}: {problem}", hint=f"unset {INHERIT_ENV}")
    sys.path.extend(p for p in paths if p not in sys.path)  # after the child's own entries
    assert mutant.target is not None and mutant.replacement is not None
    owner, name = resolve_target(mutant.target)
    setattr(owner, name, resolve_replacement(mutant.replacement))
    return mutant


def find_mutant(falsifiers: Mapping[str, Falsifier], spec: str) -> tuple[Falsifier, Mutant]:
    """``FALSIFY-X-001:name`` -> (the falsifier, its mutant).

    Raises:
        SelectionError: no such falsifier, or it declares no mutant of that name.
    """
    ident, _, name = spec.partition(":")
    falsifier = falsifiers.get(ident)
    if falsifier is None:
        raise SelectionError(f"--apply-mutant {spec}: no contract declares {ident!r}",
                             hint="write FALSIFIER:MUTANT, e.g. FALSIFY-APR-FORMAT-004:skip-header-checksum")
    for mutant in falsifier.mutants:
        if mutant.name == name:
            return falsifier, mutant
    names = ", ".join(m.name for m in falsifier.mutants) or "none"
    raise SelectionError(f"--apply-mutant {spec}: {ident} declares no mutant {name!r}", hint=f"its mutants: {names}")


def resolve_mutant(corpus: Corpus, spec: str) -> tuple[Falsifier, Mutant]:
    """``--apply-mutant FALSIFIER:NAME``, checked now (a bad name is a usage error, not a failing test)."""
    falsifier, mutant = find_mutant(corpus.falsifiers, spec)
    if mutant.artifact:
        from falsifiers.artifact_mutants import MUTATORS

        if mutant.artifact not in MUTATORS:
            raise SelectionError(f"--apply-mutant {spec}: no artifact mutator {mutant.artifact!r}",
                                 hint=f"built-in mutators: {', '.join(sorted(MUTATORS))}")
        return falsifier, mutant
    problem = namespace_problem(mutant)
    if problem:
        raise SelectionError(problem)
    assert mutant.target is not None and mutant.replacement is not None
    resolve_target(mutant.target)
    resolve_replacement(mutant.replacement)
    return falsifier, mutant


def quiet_hypothesis() -> Callable[[], None]:
    """In a mutant's child run: derandomized, no shrinking, no example database (if Hypothesis is installed).

    A mutant needs one failing example, not the smallest, and its failures must not be replayed
    by later plain runs. Derandomized whatever the session's profile, so a mutant killed on a
    laptop is killed in CI too: a survivor is a weak test, not a bad draw. Loaded before
    collection, so tests' own ``settings(...)`` inherit it.

    Returns:
        A function that loads the previous profile again (the session calls it at its end, so an
        in-process run, e.g. under pytester, leaves the global profile as it found it).
    """
    import importlib.util

    if importlib.util.find_spec("hypothesis") is None:
        return lambda: None
    from hypothesis import Phase, settings

    previous = getattr(settings, "_current_profile", None) or "default"
    settings.register_profile("apr-contracts-mutant", phases=[Phase.explicit, Phase.reuse, Phase.generate],
                              database=None, derandomize=True)
    settings.load_profile("apr-contracts-mutant")
    return lambda: settings.load_profile(previous)


def judge_mutant(outcome: str | None, reason: str) -> tuple[MutantStatus, str]:
    """A child run's outcome for the falsifier (from its receipt) -> killed / survived / not-run / error."""
    if outcome == "REFUTED":
        return MutantStatus.KILLED, reason
    if outcome == "CORROBORATED":
        return MutantStatus.SURVIVED, "every bound test passed with the fault in"
    if outcome == "UNDETERMINED":
        return MutantStatus.NOT_RUN, reason
    return MutantStatus.ERROR, reason or "the run ended without a verdict"


def vacuous_reasons(results: Sequence[MutantResult]) -> dict[str, str]:
    """Falsifier id -> the VACUOUS reason, for each falsifier with a surviving mutant."""
    reasons: dict[str, str] = {}
    for result in results:
        if result.status is MutantStatus.SURVIVED and result.falsifier not in reasons:
            reasons[result.falsifier] = (f"{VACUOUS}: mutant {result.name!r} survived (its tests pass with the "
                                         f"fault in; they cannot fail for it)")
    return reasons


def invalid_mutant_reasons(results: Sequence[MutantResult]) -> dict[str, str]:
    """Falsifier id -> the reason, for each falsifier with a mutant that cannot be applied.

    Such a falsifier is REFUTED (`falsifiers.verdict.compute_verdict`), so the verdict is NO-GO:
    a declared fault that does not exist, or that names something outside the project, is a broken
    contract, and it would otherwise sit in the report as an error while the verdict stays GO.
    """
    reasons: dict[str, str] = {}
    for result in results:
        if result.status is MutantStatus.INVALID and result.falsifier not in reasons:
            reasons[result.falsifier] = (f"{INVALID_MUTANT}: {result.detail} (the declared fault cannot be applied; "
                                         "fix the mutant in the contract, see `apr contracts lint`)")
    return reasons


def mutant_summary(falsifiers: Sequence[Falsifier], results: Sequence[MutantResult]) -> dict[str, dict[str, int]]:
    """Per contract: mutants declared, killed, survived, and falsifiers without any mutant."""
    summary: dict[str, dict[str, int]] = {}
    for falsifier in falsifiers:
        row = summary.setdefault(falsifier.contract, {"declared": 0, "killed": 0, "survived": 0, "not_run": 0,
                                                      "error": 0, "invalid": 0, "falsifiers": 0, "without_mutant": 0,
                                                      "with_killed_mutant": 0})
        row["falsifiers"] += 1
        row["declared"] += len(falsifier.mutants)
        row["without_mutant"] += not falsifier.mutants
        mine = [r for r in results if r.falsifier == falsifier.id]
        row["with_killed_mutant"] += any(r.status is MutantStatus.KILLED for r in mine)
        for result in mine:
            row[result.status.value.replace("-", "_")] += 1
    return summary


__all__ = [
    "ALLOWED_NAMESPACES",
    "INVALID_MUTANT",
    "VACUOUS",
    "MutantResult",
    "MutantStatus",
    "apply_mutant",
    "find_mutant",
    "invalid_mutant_reasons",
    "judge_mutant",
    "mutant_problem",
    "mutant_summary",
    "namespace_problem",
    "quiet_hypothesis",
    "resolve_mutant",
    "resolve_replacement",
    "resolve_target",
    "vacuous_reasons",
]
