#!/usr/bin/env python3
"""Per-module mutation table from mutmut 3's results (``mutants/<source path>.meta``).

mutmut 3.8.1 keeps one JSON file per mutated source file, ``mutants/apr/identity/quality.py.meta``,
whose ``exit_code_by_key`` maps each mutant name (``apr.identity.quality.x_score__mutmut_12``) to
the exit code of its test run, or ``null`` while it has not run. This script turns those codes into
statuses the way mutmut does (`STATUS_BY_EXIT_CODE` mirrors ``mutmut.stats.status_by_exit_code``),
subtracts the reviewed equivalent mutants (`EQUIVALENTS`) and prints one row per module:

    score = killed / (mutants - equivalents)

A timeout is not a kill here (it is reported in its own column). A mutant listed as equivalent that
a test kills after all is counted as killed and reported as a stale entry; so is a listed name that
no longer exists.

Usage::

    python scripts/mutation_table.py [--json | --markdown] [--equivalents FILE] [--times FILE]
                                     [--fail-under PCT] [MODULE ...]

MODULE is a source path (``apr/identity/quality.py``, or a folder ``apr/identity``) or a dotted
name or glob over mutant names (``apr.identity.quality``, ``falsifiers.*``). Without MODULE, every
module with at least one mutant that has run. Exit status: 0, or 1 with ``--fail-under`` when a
module's score is below PCT, or 3 when there are no results to show.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.txt"
TIMES = ROOT / "mutants" / "mutation-times.tsv"  # written by scripts/mutation.sh: path, seconds, date
SOURCE_ROOTS = ("apr", "falsifiers")  # [tool.mutmut] source_paths

# mutmut 3.8.1, mutmut/stats.py: status_by_exit_code (any other code is "suspicious"). Exit codes
# 1 and 3 are pytest's "tests failed" and "internal error", both kills; 33/34/35/36/37 are set by
# mutmut itself; negative codes are signals (SIGXCPU -24: the timeout; SIGKILL -9: the CPU limit's
# hard stop, which mutmut calls "segfault").
STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed", 3: "killed", 0: "survived", 5: "no tests", 2: "check was interrupted by user",
    None: "not checked", 33: "no tests", 34: "skipped", 35: "suspicious", 36: "timeout",
    37: "caught by type check", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
    -11: "segfault", -9: "segfault",
}
# Statuses folded into the table's "other" column (each still counts in "mutants").
OTHER = ("suspicious", "skipped", "segfault", "check was interrupted by user", "caught by type check")


def status_of(exit_code: int | None) -> str:
    """mutmut's status for a mutant's exit code."""
    return STATUS_BY_EXIT_CODE.get(exit_code, "suspicious")


@dataclass
class Row:
    """One module's counts. ``equivalents`` counts only listed mutants that were not killed."""

    module: str
    mutants: int = 0
    killed: int = 0
    survived: int = 0
    timeout: int = 0
    no_tests: int = 0
    other: int = 0
    not_checked: int = 0
    equivalents: int = 0
    seconds: float | None = None
    survivors: list[str] = field(default_factory=list)  # survived / no tests / timeout / other, minus equivalents

    @property
    def score(self) -> float | None:
        """killed / (mutants - equivalents), in percent; None for a module with no countable mutant."""
        denominator = self.mutants - self.equivalents
        return None if denominator <= 0 else 100.0 * self.killed / denominator

    def count(self, status: str, name: str, equivalent: bool) -> None:
        self.mutants += 1
        if status == "killed":
            self.killed += 1
            return
        if status == "not checked":
            self.not_checked += 1
            return
        if equivalent:
            self.equivalents += 1
        if status == "survived":
            self.survived += 1
        elif status == "timeout":
            self.timeout += 1
        elif status == "no tests":
            self.no_tests += 1
        else:
            self.other += 1
        if not equivalent:
            self.survivors.append(name)


# --- inputs -----------------------------------------------------------------------------------------


def read_equivalents(path: Path) -> dict[str, str]:
    """``NAME: reason`` per line (a line starting with ``#`` is a comment) -> {name: reason}.

    Raises:
        ValueError: a line without a reason, or a name listed twice (with its line number).
    """
    found: dict[str, str] = {}
    if not path.is_file():
        return found
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, reason = line.partition(":")
        name, reason = name.strip(), reason.strip()
        if not sep or not reason or " " in name:
            raise ValueError(f"{path}:{number}: expected 'MUTANT_NAME: why it is equivalent or harmless', got {raw!r}")
        if name in found:
            raise ValueError(f"{path}:{number}: {name} is listed twice")
        found[name] = reason
    return found


def read_times(path: Path) -> dict[str, float]:
    """The latest recorded run time per module path (``path<TAB>seconds<TAB>date`` lines)."""
    times: dict[str, float] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) >= 2:
                try:
                    times[parts[0]] = float(parts[1])
                except ValueError:
                    continue
    return times


def read_results(mutants_dir: Path) -> dict[str, dict[str, int | None]]:
    """{source path: {mutant name: exit code or None}} from every ``.meta`` file mutmut wrote."""
    results: dict[str, dict[str, int | None]] = {}
    for root in SOURCE_ROOTS:
        for meta in sorted((mutants_dir / root).rglob("*.py.meta")):
            data = json.loads(meta.read_text(encoding="utf-8"))
            source = meta.relative_to(mutants_dir).as_posix()[: -len(".meta")]
            results[source] = data.get("exit_code_by_key", {})
    return results


def module_globs(spec: str) -> tuple[str | None, list[str]]:
    """(path prefix or None, mutant-name globs) for one MODULE argument.

    ``apr/identity/quality.py`` -> ("apr/identity/quality.py", ["apr.identity.quality.*"]);
    ``apr/format/__init__.py`` -> its own functions only; a folder -> everything under it; a dotted
    name -> that module (``apr.stamp.spdx`` -> ``apr.stamp.spdx.*``); a glob is used as given.
    """
    if spec.endswith(".py"):
        dotted = spec[:-3].replace("/", ".")
        if dotted.endswith(".__init__"):
            package = dotted[: -len(".__init__")]
            return spec, [f"{package}.x_*", f"{package}.xǁ*"]
        return spec, [f"{dotted}.*"]
    if "/" in spec or (ROOT / spec).is_dir():
        folder = spec.rstrip("/")
        return folder + "/", [folder.replace("/", ".") + ".*"]
    return None, [spec if "*" in spec else f"{spec}.*"]


def build_rows(results: dict[str, dict[str, int | None]], specs: list[str], equivalents: dict[str, str],
               times: dict[str, float]) -> list[Row]:
    """One row per source file that has mutants matching ``specs`` (all files with results if empty)."""
    globs_by_spec = {spec: module_globs(spec)[1] for spec in specs}
    globs = [g for spec_globs in globs_by_spec.values() for g in spec_globs]
    selected: dict[str, list[str]] = {}
    for source, codes in sorted(results.items()):
        if globs:
            names = [n for n in codes if any(fnmatch.fnmatchcase(n, g) for g in globs)]
        else:
            names = list(codes) if any(code is not None for code in codes.values()) else []
        if names or source in specs:  # a file named outright gets its row, even with no mutants
            selected[source] = names
    # A time recorded under a MODULE argument belongs to the one file it selects (if it selects one).
    for spec, spec_globs in globs_by_spec.items():
        files = [s for s, names in selected.items() if any(fnmatch.fnmatchcase(n, g) for n in names for g in spec_globs)]
        if spec in times and len(files) == 1:
            times.setdefault(files[0], times[spec])
    rows = []
    for source, names in selected.items():
        codes = results[source]
        row = Row(source, seconds=times.get(source))
        for name in names:
            row.count(status_of(codes[name]), name, name in equivalents)
        rows.append(row)
    return rows


def count_mutants(globs: list[str], mutants_dir: Path = ROOT / "mutants") -> int:
    """How many generated mutants match ``globs``; -1 when mutmut has generated none yet."""
    results = read_results(mutants_dir)
    if not results:
        return -1
    return sum(1 for codes in results.values() for name in codes if any(fnmatch.fnmatchcase(name, g) for g in globs))


def module_of(name: str) -> str:
    """The dotted module a mutant name belongs to: ``apr.qa.gate.x_evaluate__mutmut_7`` -> ``apr.qa.gate``,
    ``apr.format.reader.xǁReader__read__mutmut_1`` -> ``apr.format.reader``."""
    match = re.match(r"^(.*?)\.(?:x_|xǁ)", name)
    return match.group(1) if match else name.rpartition(".")[0]


def dotted_source(source: str) -> str:
    """``apr/format/header.py`` -> ``apr.format.header``; a package's ``__init__.py`` -> the package."""
    dotted = source[: -len(".py")].replace("/", ".")
    return dotted[: -len(".__init__")] if dotted.endswith(".__init__") else dotted


def stale_equivalents(results: dict[str, dict[str, int | None]], equivalents: dict[str, str]) -> list[str]:
    """Listed names that no longer exist, or that a test now kills (the list should drop them).

    A name is judged only when mutmut generated its module here: a run narrowed with ``only_mutate``
    (or a partial ``mutants/``) has no mutants of the other modules, which is no sign of change.
    """
    codes = {name: code for per_file in results.values() for name, code in per_file.items()}
    generated = {dotted_source(source) for source in results}
    stale = []
    for name in sorted(equivalents):
        if name not in codes:
            if module_of(name) in generated:
                stale.append(f"{name}: no such mutant (the code changed?)")
        elif status_of(codes[name]) == "killed":
            stale.append(f"{name}: killed by a test, so not equivalent")
    return stale


# --- output -----------------------------------------------------------------------------------------

COLUMNS = ("module", "mutants", "killed", "survived", "timeout", "no tests", "other", "not run", "equiv.",
           "score", "time")


def _cells(row: Row) -> list[str]:
    score = "-" if row.score is None else f"{row.score:.1f} %"
    if row.not_checked and row.score is not None:
        score += " (partial)"
    seconds = "-" if row.seconds is None else f"{row.seconds:.0f} s"
    return [row.module, str(row.mutants), str(row.killed), str(row.survived), str(row.timeout), str(row.no_tests),
            str(row.other), str(row.not_checked), str(row.equivalents), score, seconds]


def _total(rows: list[Row]) -> Row:
    total = Row("total")
    for row in rows:
        for name in ("mutants", "killed", "survived", "timeout", "no_tests", "other", "not_checked", "equivalents"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    if rows and all(row.seconds is not None for row in rows):
        total.seconds = sum(row.seconds for row in rows if row.seconds is not None)
    return total


def render_text(rows: list[Row]) -> str:
    table = [list(COLUMNS)] + [_cells(r) for r in rows] + ([_cells(_total(rows))] if len(rows) > 1 else [])
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    out = []
    for i, line in enumerate(table):
        out.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths, strict=True))))
        if i == 0 or (len(rows) > 1 and i == len(table) - 2):
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def render_markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" if i == 0 else "--:" for i in range(len(COLUMNS))) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cells(row)) + " |")
    if len(rows) > 1:
        cells = _cells(_total(rows))
        lines.append("| " + " | ".join(f"**{c}**" for c in cells) + " |")
    return "\n".join(lines)


def render_json(rows: list[Row], stale: list[str]) -> str:
    def record(row: Row) -> dict[str, object]:
        data = asdict(row)
        data["score"] = None if row.score is None else round(row.score, 2)
        return data

    return json.dumps({"modules": [record(r) for r in rows], "total": record(_total(rows)),
                       "stale_equivalents": stale}, indent=2, ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help="source path, folder, dotted module name or mutant-name glob (default: all run)")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON document on stdout")
    form.add_argument("--markdown", action="store_true", help="a Markdown table (for docs/testing.md)")
    parser.add_argument("--mutants-dir", type=Path, default=ROOT / "mutants", help="mutmut's folder (default: %(default)s)")
    parser.add_argument("--equivalents", type=Path, default=EQUIVALENTS, help="reviewed list (default: %(default)s)")
    parser.add_argument("--times", type=Path, default=None, help="run times (default: MUTANTS_DIR/mutation-times.tsv)")
    parser.add_argument("--survivors", action="store_true", help="after the table, list each module's survivors")
    parser.add_argument("--fail-under", type=float, default=None, metavar="PCT",
                        help="exit 1 when a module's score is below PCT")
    args = parser.parse_args(argv)

    try:
        equivalents = read_equivalents(args.equivalents)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 4
    results = read_results(args.mutants_dir)
    rows = build_rows(results, args.modules, equivalents, read_times(args.times or args.mutants_dir / TIMES.name))
    if not rows:
        print(f"error: no mutmut results for {' '.join(args.modules) or 'any module'} under {args.mutants_dir}\n"
              f"  fix: scripts/mutation.sh {' '.join(args.modules) or 'MODULE'}", file=sys.stderr)
        return 3
    stale = stale_equivalents(results, equivalents)
    if args.json:
        print(render_json(rows, stale))
    else:
        print(render_markdown(rows) if args.markdown else render_text(rows))
        if args.survivors:
            for row in rows:
                if row.survivors:
                    print(f"\n{row.module}: {len(row.survivors)} not killed (mutmut show NAME)")
                    for name in row.survivors:
                        print(f"  {name}: {status_of(results[row.module][name])}")
    for line in stale:
        print(f"warning: stale equivalent {line}", file=sys.stderr)
    if args.fail_under is not None:
        low = [r for r in rows if r.score is not None and r.score < args.fail_under]
        for row in low:
            print(f"error: {row.module}: score {row.score:.1f} % is below {args.fail_under:g} %", file=sys.stderr)
        return 1 if low else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
