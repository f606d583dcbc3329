"""Render a verdict or a lint result: a table for people, a versioned JSON document for machines.

The JSON documents carry a ``schema`` string that changes only when their shape does, and name the
exact harness and library versions that produced them (pv's stale-binary lesson). Versions are read
from package metadata, so writing a receipt never imports numpy or torch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

from falsifiers.records import Contract, Corpus
from falsifiers.table import fold, render_table, summary_text
from falsifiers.verdict import FalsifierOutcome, Outcome, TestResult, Verdict, VerdictReport

if TYPE_CHECKING:  # pragma: no cover
    from falsifiers.findings import Finding

RECEIPT_SCHEMA = "apr-contracts/verdict/1"
LINT_SCHEMA = "apr-contracts/lint/1"
HARNESS = "apr-contracts"



def package_version(name: str) -> str | None:
    """An installed distribution's version, or ``None`` (never imports the package)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Who produced a document: the harness and the libraries evidence depends on."""
    import platform  # ~2.5 ms to import; only receipts need it, not the table every run prints

    return {
        "harness": {"name": HARNESS, "version": package_version(HARNESS) or "0+unknown"},
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(terse=True),
        "pytest": package_version("pytest"),
        "hypothesis": package_version("hypothesis"),
        "numpy": package_version("numpy"),
        "torch": package_version("torch"),
    }


# --- verdict --------------------------------------------------------------------------------------


def summary_line(report: VerdictReport) -> str:
    """One line: the verdict, the counts, the profile."""
    return summary_text(report.verdict.value, {o.value: report.count(o) for o in Outcome}, report.profile.name,
                        invalid=len(report.invalid_contracts), problems=len(report.problems))


def render_verdict(report: VerdictReport, *, width: int = 120, color: bool = False, verbose: bool = False) -> str:
    """The verdict table (contract -> falsifier -> outcome -> why) and the summary line, as text.

    Contracts whose falsifiers were all corroborated fold into one row unless ``verbose``: like
    pytest's dots, the eye should land on what is not GO.
    """
    # Contracts that print as one "all N CORROBORATED" row are counted, not turned into rows.
    folded = {} if verbose else fold((o.falsifier.contract, o.outcome.value, len(o.tests)) for o in report.falsifiers)
    rows = [_falsifier_json(o) for o in report.falsifiers if o.falsifier.contract not in folded]
    invalid = [{"name": i.contract.name, "reason": i.reason} for i in report.invalid_contracts]
    return render_table(rows, invalid, report.problems, report.notes, summary_line(report), report.verdict.value,
                        width=width, color=color, verbose=verbose, artifact=_artifact_json(report),
                        mutants=_mutants_json(report), folded=folded)


def render_receipt(document: dict[str, Any], *, width: int = 120, color: bool = False, verbose: bool = False) -> str:
    """The same table rebuilt from a receipt (what `apr contracts verify` prints)."""
    verdict = Verdict(document["verdict"]).value
    invalid, problems = document.get("invalid_contracts", []), document.get("binding_errors", [])
    summary = summary_text(verdict, document.get("counts", {}), document["profile"]["name"],
                           invalid=len(invalid), problems=len(problems))
    return render_table(document.get("falsifiers", []), invalid, problems, document.get("notes", []), summary,
                        verdict, width=width, color=color, verbose=verbose, artifact=document.get("artifact"),
                        mutants=document.get("mutants"))


def receipt(
    report: VerdictReport,
    contracts: Sequence[Contract],
    *,
    scope: str,
    exit_code: int,
    pytest_exit: int | None = None,
    findings: Sequence[Finding] = (),
) -> dict[str, Any]:
    """The versioned JSON verdict (``--contracts-json``): everything needed to audit the verdict.

    Per falsifier: its contract, invariants, level, requirements, outcome, reason, whether the
    profile required it, every bound test's node id, status, duration and replay data.
    """
    return {
        "schema": RECEIPT_SCHEMA,
        "verdict": report.verdict.value,
        "exit_code": exit_code,
        "pytest_exit_code": pytest_exit,
        "profile": {"name": report.profile.name, "optional_requires": sorted(report.profile.optional_requires),
                    "allow_pending": report.profile.allow_pending},
        "scope": scope,
        "counts": {o.value: report.count(o) for o in Outcome},
        "environment": environment(),
        "contracts": [
            {"name": c.name, "path": c.path, "sha256": c.sha256, "version": c.version,
             "status": c.status.value if c.status else None, "valid": c.is_valid}
            for c in sorted(contracts, key=lambda c: c.name)
        ],
        "invalid_contracts": [{"name": i.contract.name, "path": i.contract.path, "reason": i.reason}
                              for i in report.invalid_contracts],
        "falsifiers": [_falsifier_json(o) for o in sorted(report.falsifiers, key=lambda o: o.falsifier.id)],
        "binding_errors": list(report.problems),
        "lint_errors": [f.to_dict() for f in findings if f.is_error],
        "notes": list(report.notes),
        "artifact": _artifact_json(report),
        "mutants": _mutants_json(report),
    }


def _mutants_json(report: VerdictReport) -> dict[str, Any] | None:
    """Per contract: mutants killed / declared; and every mutant run (``None`` without ``--mutants``)."""
    if report.mutants is None:
        return None
    from falsifiers.mutation import mutant_summary

    summary = mutant_summary([o.falsifier for o in report.falsifiers], report.mutants)
    return {"contracts": summary, "results": [m.to_dict() for m in report.mutants],
            "falsifiers_with_killed_mutant": sum(r["with_killed_mutant"] for r in summary.values()),
            "falsifiers": sum(r["falsifiers"] for r in summary.values())}


def _artifact_json(report: VerdictReport) -> dict[str, Any] | None:
    """The file the verdict is about: digest taken at session start, re-checked at its end."""
    if report.artifact is None:
        return None
    return {**report.artifact.to_dict(), "changed": report.artifact_changed}


def _falsifier_json(item: FalsifierOutcome) -> dict[str, Any]:
    f = item.falsifier
    return {
        "id": f.id,
        "contract": f.contract,
        "invariants": list(f.invariants),
        "if_fails": f.if_fails,
        "level": f.level.value,
        "requires": list(f.requires),
        "pending": f.pending,
        "outcome": item.outcome.value,
        "reason": item.reason,
        "required": item.required,
        "location": f.location.to_dict(),
        "nodeids": list(item.nodeids),
        "duration": round(item.duration, 6),
        "seed": next((t.seed for t in item.tests if t.seed), None),
        "tests": [_test_json(t) for t in item.tests],
        "mutants": [m.name for m in f.mutants],
        "vacuous": item.reason.startswith("VACUOUS"),
    }


def _test_json(test: TestResult) -> dict[str, Any]:
    return {
        "nodeid": test.nodeid,
        "status": test.status.value,
        "phase": test.phase,
        "duration": round(test.duration, 6),
        "reason": test.reason,
        "seed": test.seed,
        "reproduce_failure": test.reproduce,
        "minimal_example": test.example,
    }


# --- lint -----------------------------------------------------------------------------------------


def lint_document(corpus: Corpus, *, strict: bool = False) -> dict[str, Any]:
    """The ``apr contracts lint --json`` document."""
    from falsifiers.findings import Severity

    counts = {s.value: sum(1 for f in corpus.findings if f.severity is s) for s in Severity}
    return {
        "schema": LINT_SCHEMA,
        "ok": not lint_failed(corpus, strict=strict),
        "strict": strict,
        "counts": counts,
        "environment": environment(),
        "contracts": [
            {"name": c.name, "path": c.path, "sha256": c.sha256, "version": c.version, "style": c.style,
             "status": c.status.value if c.status else None, "valid": c.is_valid,
             "invariants": len(c.invariants), "falsifiers": len(c.falsifiers)}
            for c in corpus.contracts
        ],
        "findings": [f.to_dict() for f in corpus.findings],
    }


def lint_failed(corpus: Corpus, *, strict: bool = False) -> bool:
    """Whether lint should exit non-zero: any error (any warning too under ``--strict``)."""
    from falsifiers.findings import Severity

    bad = {Severity.ERROR, Severity.WARNING} if strict else {Severity.ERROR}
    return any(f.severity in bad for f in corpus.findings)


def render_findings(findings: Sequence[Finding], *, show_info: bool = True) -> str:
    """Compiler-style lines, one finding per block."""
    from falsifiers.findings import Severity

    return "\n".join(f.render() for f in findings if show_info or f.severity is not Severity.INFO)


__all__ = [
    "LINT_SCHEMA",
    "RECEIPT_SCHEMA",
    "environment",
    "lint_document",
    "lint_failed",
    "package_version",
    "receipt",
    "render_findings",
    "render_receipt",
    "render_verdict",
    "summary_line",
]
