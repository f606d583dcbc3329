"""Render a verdict or a lint result: a table for people, a versioned JSON document for machines.

The JSON documents carry a ``schema`` string that changes only when their shape does, and name the
exact harness and library versions that produced them (pv's stale-binary lesson). Versions are read
from package metadata, so writing a receipt never imports numpy or torch.
"""

from __future__ import annotations

import io
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from falsifiers.records import Contract, Corpus, Finding, Severity
from falsifiers.verdict import FalsifierOutcome, Outcome, TestResult, Verdict, VerdictReport

RECEIPT_SCHEMA = "apr-contracts/verdict/1"
LINT_SCHEMA = "apr-contracts/lint/1"
HARNESS = "apr-contracts"

_STYLE = {
    Outcome.CORROBORATED: "green",
    Outcome.REFUTED: "bold red",
    Outcome.UNDETERMINED: "yellow",
    Verdict.GO: "bold green",
    Verdict.NO_GO: "bold red",
    Verdict.UNKNOWN: "bold yellow",
}


def package_version(name: str) -> str | None:
    """An installed distribution's version, or ``None`` (never imports the package)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Who produced a document: the harness and the libraries evidence depends on."""
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
    counts = ", ".join(f"{report.count(o)} {o.value.lower()}" for o in Outcome)
    extra = f", {len(report.invalid_contracts)} invalid contract(s)" if report.invalid_contracts else ""
    extra += f", {len(report.problems)} binding error(s)" if report.problems else ""
    return f"verdict: {report.verdict.value} ({counts}{extra}; profile {report.profile.name})"


def render_verdict(report: VerdictReport, *, width: int = 120, color: bool = False) -> str:
    """The verdict table (contract -> falsifier -> outcome -> why) and the summary line, as text."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=None, show_lines=False, expand=False, pad_edge=False)
    table.add_column("contract", no_wrap=True)
    table.add_column("falsifier", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("evidence / reason", overflow="fold")
    for invalid in report.invalid_contracts:
        table.add_row(invalid.contract.name, "—", Text("INVALID", style="bold red"), invalid.reason)
    for item in sorted(report.falsifiers, key=lambda o: (o.falsifier.contract, o.falsifier.id)):
        outcome = item.outcome.value + ("" if item.required else " (tolerated)")
        table.add_row(item.falsifier.contract, item.falsifier.id, Text(outcome, style=_STYLE[item.outcome]),
                      _evidence(item))
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color, highlight=False,
                      color_system="standard" if color else None, soft_wrap=False)
    if report.falsifiers or report.invalid_contracts:
        console.print(table)
    for problem in report.problems:
        console.print(Text(problem.splitlines()[0], style="red"))
    for note in report.notes:
        console.print(Text(note, style="dim"))
    console.print(Text(summary_line(report), style=_STYLE[report.verdict]))
    return buffer.getvalue()


def _evidence(item: FalsifierOutcome) -> str:
    lines = [item.reason]
    if item.outcome is Outcome.REFUTED:
        for test in item.tests:
            if test.example:
                lines.append(test.example.strip())
            if test.reproduce:
                lines.append(f"replay: {test.reproduce.strip()}")
            elif test.seed:
                lines.append(f"replay: {test.seed}")
        if item.falsifier.if_fails:
            lines.append(f"if it fails: {item.falsifier.if_fails}")
    return "\n".join(lines)


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
    }


def _falsifier_json(item: FalsifierOutcome) -> dict[str, Any]:
    f = item.falsifier
    return {
        "id": f.id,
        "contract": f.contract,
        "invariants": list(f.invariants),
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


def render_receipt(document: dict[str, Any], *, width: int = 120, color: bool = False) -> str:
    """The verdict table rebuilt from a receipt (what `apr contracts verify` prints)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False, pad_edge=False)
    for name in ("contract", "falsifier", "outcome", "evidence / reason"):
        table.add_column(name, no_wrap=name != "evidence / reason", overflow="fold")
    for invalid in document.get("invalid_contracts", []):
        table.add_row(invalid["name"], "—", Text("INVALID", style="bold red"), invalid["reason"])
    for item in sorted(document.get("falsifiers", []), key=lambda f: (f["contract"], f["id"])):
        outcome = Outcome(item["outcome"])
        lines = [item["reason"]]
        if outcome is Outcome.REFUTED:
            for test in item.get("tests", []):
                if test.get("minimal_example"):
                    lines.append(test["minimal_example"])
                if test.get("reproduce_failure") or test.get("seed"):
                    lines.append(f"replay: {test.get('reproduce_failure') or test.get('seed')}")
        label = outcome.value + ("" if item.get("required", True) else " (tolerated)")
        table.add_row(item["contract"], item["id"], Text(label, style=_STYLE[outcome]), "\n".join(lines))
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color, highlight=False,
                      color_system="standard" if color else None)
    console.print(table)
    for problem in document.get("binding_errors", []):
        console.print(Text(problem.splitlines()[0], style="red"))
    counts = ", ".join(f"{n} {k.lower()}" for k, n in document.get("counts", {}).items())
    verdict = Verdict(document["verdict"])
    console.print(Text(f"verdict: {verdict.value} ({counts}; profile {document['profile']['name']})",
                       style=_STYLE[verdict]))
    return buffer.getvalue()


# --- lint -----------------------------------------------------------------------------------------


def lint_document(corpus: Corpus, *, strict: bool = False) -> dict[str, Any]:
    """The ``apr contracts lint --json`` document."""
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
    bad = {Severity.ERROR, Severity.WARNING} if strict else {Severity.ERROR}
    return any(f.severity in bad for f in corpus.findings)


def render_findings(findings: Sequence[Finding], *, show_info: bool = True) -> str:
    """Compiler-style lines, one finding per block."""
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
