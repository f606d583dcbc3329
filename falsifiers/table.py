"""The plain-text verdict table: rows in, text out, nothing else imported.

`falsifiers.report` turns a verdict, or the receipt `apr contracts verify` reads back, into rows
and calls this one renderer for both, so the table a pytest run prints and the one the CLI prints
from its receipt are the same text. Outcomes and verdicts are their string values here
(``"CORROBORATED"``, ``"NO-GO"``); the enums of `falsifiers.verdict` are ``str`` enums and look up
the same.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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


def passed_reason(count: int) -> str:
    """The reason a corroborated falsifier shows: ``"3 tests passed"``."""
    return f"{count} test{'s' if count != 1 else ''} passed"


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


__all__ = ["FOLD_AT", "OUTCOMES", "STYLE", "details", "fold", "fold_same_reason", "passed_reason", "render_table", "summary_text"]
