"""Render a verdict or a lint result: a table for people, a versioned JSON document for machines.

One table renderer (`render_table`: rows in, plain text out) serves both a pytest run, which
renders its `VerdictReport` (`render_verdict`), and `apr contracts verify`, which renders the
receipt it read back (`render_receipt`): the two print the same text. Outcomes and verdicts are
their string values in the rows (``"CORROBORATED"``, ``"NO-GO"``); the enums of
`falsifiers.verdict` are ``str`` enums and look up the same.

The JSON documents carry a ``schema`` string that changes only when their shape does, and name the
exact harness and library versions that produced them (pv's stale-binary lesson). Versions are read
from package metadata, so writing a receipt never imports numpy or torch.
"""

from __future__ import annotations

import platform
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any

from falsifiers.mutation import mutant_summary
from falsifiers.records import Contract, Corpus, Finding, Severity
from falsifiers.verdict import FalsifierOutcome, Outcome, TestResult, Verdict, VerdictReport

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


# --- the table (both renderings share it) -------------------------------------------------------

STYLE = {
    "CORROBORATED": "green",
    "REFUTED": "bold red",
    "UNDETERMINED": "yellow",
    "GO": "bold green",
    "NO-GO": "bold red",
    "UNKNOWN": "bold yellow",
}
OUTCOMES = ("CORROBORATED", "REFUTED", "UNDETERMINED")  # the order of the summary's counts
_ANSI = {"green": "\x1b[32m", "bold red": "\x1b[1;31m", "yellow": "\x1b[33m", "bold green": "\x1b[1;32m",
         "bold yellow": "\x1b[1;33m", "red": "\x1b[31m", "dim": "\x1b[2m"}


def summary_text(verdict: str, counts: Mapping[str, int], profile: str, *, invalid: int = 0, problems: int = 0) -> str:
    """The last line of the table: ``verdict: GO (12 corroborated, 0 refuted, 0 undetermined; profile cpu)``."""
    tally = ", ".join(f"{counts.get(o, 0)} {o.lower()}" for o in OUTCOMES)
    extra = f", {invalid} invalid contract(s)" if invalid else ""
    extra += f", {problems} binding error(s)" if problems else ""
    return f"verdict: {verdict} ({tally}{extra}; profile {profile})"


def fold(entries: Iterable[tuple[str, str, int]]) -> dict[str, tuple[int, int]]:
    """(contract, outcome, tests) per falsifier -> contract: (falsifiers, tests) for each contract
    whose falsifiers (two or more) were all corroborated: one table row each."""
    seen: dict[str, tuple[int, int, bool]] = {}
    for contract, outcome, tests in entries:
        count, total, held = seen.get(contract, (0, 0, True))
        seen[contract] = (count + 1, total + tests, held and outcome == "CORROBORATED")
    return {name: (count, total) for name, (count, total, held) in seen.items() if count > 1 and held}


FOLD_AT = 3  # undetermined rows sharing one reason, from which on they are one line


def fold_same_reason(table: list[tuple[str, str, str, str, str]]) -> list[tuple[str, str, str, str, str]]:
    """Rows (contract, falsifier, outcome, style, detail) of undetermined falsifiers that share their
    outcome and reason, ``FOLD_AT`` or more of them, become one row with the count, where the
    first of them stood: a binding error at collection used to print 133 identical rows (issue 17).

    Example:
        >>> rows = [("c", f"F-{i}", "UNDETERMINED", "yellow", "did not run") for i in range(4)]
        >>> fold_same_reason(rows)
        [('4 falsifiers', 'F-0 … F-3', 'UNDETERMINED', 'yellow', 'did not run')]
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for index, (_contract, _falsifier, outcome, _style, detail) in enumerate(table):
        if outcome.startswith("UNDETERMINED"):
            groups.setdefault((outcome, detail), []).append(index)
    folded = {indices[0]: indices for indices in groups.values() if len(indices) >= FOLD_AT}
    dropped = {index for indices in folded.values() for index in indices[1:]}
    result = []
    for index, row in enumerate(table):
        if index in folded:
            indices = folded[index]
            first, last = table[indices[0]][1], table[indices[-1]][1]
            result.append((f"{len(indices)} falsifiers", f"{first} … {last}", row[2], row[3], row[4]))
        elif index not in dropped:
            result.append(row)
    return result


def render_table(rows: Sequence[dict[str, Any]], invalid: Sequence[dict[str, Any]], problems: Sequence[str],
                 notes: Sequence[str], summary: str, verdict: str, *, width: int, color: bool, verbose: bool,
                 artifact: dict[str, Any] | None = None, mutants: dict[str, Any] | None = None,
                 folded: dict[str, tuple[int, int]] | None = None) -> str:
    """A plain-text table (not rich: the plugin prints it on every run, so it must cost next to nothing).

    ``folded``: contract -> (falsifiers, tests) for contracts already folded by the caller (their
    falsifiers are not in ``rows``); when ``None``, folding is worked out from ``rows``.
    """

    def paint(text: str, style: str) -> str:
        return f"{_ANSI[style]}{text}\x1b[0m" if color else text

    table: list[tuple[str, str, str, str, str]] = []  # contract, falsifier, outcome, style, detail
    for item in invalid:
        table.append((item["name"], "-", "INVALID", "bold red", item["reason"]))
    if folded is None:
        folded = fold((r["contract"], r["outcome"], len(r.get("tests", []))) for r in rows) if not verbose else {}
        rows = [row for row in rows if row["contract"] not in folded]
    by_contract: dict[str, list[dict[str, Any]]] = {name: [] for name in folded}
    for row in sorted(rows, key=lambda r: (r["contract"], r["id"])):
        by_contract.setdefault(row["contract"], []).append(row)
    for contract, items in sorted(by_contract.items()):
        if contract in folded:
            falsifiers, tests = folded[contract]
            table.append((contract, f"all {falsifiers}", "CORROBORATED", "green", f"{tests} tests passed"))
            continue
        for row in items:
            outcome = row["outcome"]
            label = outcome + ("" if row.get("required", True) else " (tolerated)")
            table.append((contract, row["id"], label, STYLE[outcome], "\n".join(details(row))))
    if not verbose:
        table = fold_same_reason(table)
    lines: list[str] = []
    if table:
        headers = ("contract", "falsifier", "outcome")
        widths = [max([len(h)] + [len(r[i]) for r in table]) for i, h in enumerate(headers)]
        left = sum(widths) + 2 * len(widths)
        wrap_at = max(width - left, 30)
        lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + "  evidence / reason")
        widest = max([len("evidence / reason")] + [len(part) for *_, detail in table for part in detail.splitlines()])
        lines.append("-" * min(width, left + min(wrap_at, widest)))  # as wide as the table, not the console
        for contract, falsifier, outcome, style, detail in table:
            wrapped: list[str] = []
            for part in detail.splitlines() or [""]:
                wrapped += textwrap.wrap(part, wrap_at, break_long_words=True, replace_whitespace=False) or [""]
            head = f"{contract.ljust(widths[0])}  {falsifier.ljust(widths[1])}  "
            lines.append(head + paint(outcome.ljust(widths[2]), style) + "  " + wrapped[0])
            lines += [" " * left + more for more in wrapped[1:]]
    for problem in problems:
        lines.append(paint(problem.splitlines()[0], "red"))
    for note in notes:
        lines.append(paint(note, "dim"))
    if mutants:
        for name, row in sorted(mutants["contracts"].items()):
            text = (f"mutants: {name}: {row['killed']}/{row['declared']} killed"
                    + (f", {row['survived']} survived" if row["survived"] else "")
                    + (f", {row['not_run'] + row['error']} not run" if row["not_run"] + row["error"] else "")
                    + (f", {row['invalid']} invalid" if row.get("invalid") else "")
                    + f"; {row['with_killed_mutant']}/{row['falsifiers']} falsifiers have a killed mutant")
            lines.append(paint(text, "bold red" if row["survived"] or row.get("invalid") else "dim"))
        for item in mutants["results"]:
            if item["status"] in ("survived", "error", "invalid"):
                lines.append(paint(f"  {item['status']}: {item['falsifier']}:{item['name']} ({item['detail']})",
                                   "yellow" if item["status"] == "error" else "bold red"))
    if artifact:
        lines.append(f"artifact: {artifact['path']} sha256 {artifact['sha256']} ({artifact['size']} bytes)")
        if artifact.get("changed"):
            lines.append(paint(artifact["changed"], "bold red"))
    lines.append(paint(summary, STYLE[verdict]))
    return "\n".join(lines) + "\n"


def details(row: dict[str, Any]) -> list[str]:
    lines = [row["reason"]]
    if row["outcome"] == "REFUTED":
        for test in row.get("tests", []):
            if test.get("minimal_example"):
                lines.append(test["minimal_example"])
            replay = test.get("reproduce_failure") or test.get("seed")
            if replay:
                lines.append(f"replay: {replay}")
        if row.get("if_fails"):
            lines.append(f"if it fails: {row['if_fails']}")
    return lines


__all__ = ["LINT_SCHEMA", "RECEIPT_SCHEMA", "environment", "lint_document", "lint_failed", "package_version",
    "receipt", "render_findings", "render_receipt", "render_verdict", "summary_line", "FOLD_AT", "OUTCOMES",
    "STYLE", "details", "fold", "fold_same_reason", "render_table", "summary_text"]
