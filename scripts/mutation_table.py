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
no longer exists. A listed name is only a number (mutmut numbers a function's mutants in order), so
each entry's reviewed change is kept in a lock (`LOCK`); a listed mutant whose change is not the
one reviewed, because an edit renumbered the function's mutants, counts as a survivor and is
reported, until someone reads it (``mutmut show NAME``), fixes its entry and rewrites the lock
(``--write-lock``, whose diff is reviewed with the list's).

Usage::

    python scripts/mutation_table.py [--json | --markdown] [--equivalents FILE] [--lock FILE]
                                     [--write-lock] [--times FILE] [--fail-under PCT] [MODULE ...]

MODULE is a source path (``apr/identity/quality.py``, or a folder ``apr/identity``) or a dotted
name or glob over mutant names (``apr.identity.quality``, ``falsifiers.*``). Without MODULE, every
module with at least one mutant that has run. Exit status: 0, or 1 with ``--fail-under`` when a
module's score is below PCT, 2 when mutmut (which reads the mutants' changes) is not installed, 3
when there are no results to show, 4 when the list or the lock is malformed.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.txt"
# The change each listed equivalent made when it was reviewed ("- old line", "+ new line"): mutmut
# numbers a function's mutants in order, so an edit above a listed mutant renumbers it, and the
# listed name then names another mutant, which may be a real survivor the list would hide.
LOCK = ROOT / "tests" / "mutation_equivalents.lock.json"
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


ChangeOf = Callable[[str, str], list[str]]  # (mutant name, source path) -> the lines it changes


def read_lock(path: Path) -> dict[str, list[str]]:
    """{mutant name: the change reviewed} from the lock file (empty when there is none)."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: list(lines) for name, lines in data.get("changes", {}).items()}


def write_lock(path: Path, changes: dict[str, list[str]]) -> None:
    """The lock file, sorted, one entry a name (reviewed in the same commit as the list)."""
    doc = {"about": "the change each entry of mutation_equivalents.txt names, as reviewed; "
                    "python scripts/mutation_table.py --write-lock rewrites it from mutants/",
           "changes": {name: changes[name] for name in sorted(changes)}}
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def mutmut_change_of(mutants_dir: Path) -> ChangeOf:
    """The lines a mutant changes, from mutmut's own diff of ``mutants/<source>`` (as `mutmut show`).

    Each line is ``"- old"`` or ``"+ new"`` with its indentation stripped, so re-indenting a function
    does not read as a different mutant.
    """
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # mutmut 3.8.1: the [mutation] extra

    if mutants_dir.name != "mutants":
        raise ValueError(f"{mutants_dir}: mutmut reads its mutants from a folder named 'mutants'")

    def change_of(name: str, source: str) -> list[str]:
        here = os.getcwd()
        os.chdir(mutants_dir.parent)  # mutmut opens mutants/<source> relative to the working folder
        try:
            diff = get_diff_for_mutant(name, path=source)
        finally:
            os.chdir(here)
        body = [line for line in diff.splitlines() if not line.startswith(("--- ", "+++ "))]
        return [f"{line[0]} {line[1:].strip()}" for line in body if line[:1] in ("-", "+")]

    return change_of


def unreviewed_equivalents(results: dict[str, dict[str, int | None]], equivalents: dict[str, str],
                           lock: dict[str, list[str]], change_of: ChangeOf) -> dict[str, str]:
    """Listed names whose mutant is not the one reviewed: {name: what differs}.

    They count as survivors, not equivalents, until someone reads the mutant and rewrites the lock.
    Only mutants that ran and were not killed are checked (a killed one is already stale).
    """
    source_by_name = {name: source for source, codes in results.items() for name in codes}
    found: dict[str, str] = {}
    for name in sorted(equivalents):
        source = source_by_name.get(name)
        if source is None or status_of(results[source][name]) in ("killed", "not checked"):
            continue
        now = change_of(name, source)
        reviewed = lock.get(name)
        if reviewed is None:
            found[name] = f"no reviewed change in the lock; now: {' | '.join(now)}"
        elif reviewed != now:
            found[name] = f"reviewed: {' | '.join(reviewed)}; now: {' | '.join(now)}"
    return found


def locked_changes(results: dict[str, dict[str, int | None]], equivalents: dict[str, str],
                   lock: dict[str, list[str]], change_of: ChangeOf) -> dict[str, list[str]]:
    """The lock to write: each listed mutant that mutmut generated, with its change now; entries of
    modules not generated here (a narrowed run) are kept; names no longer listed are dropped."""
    source_by_name = {name: source for source, codes in results.items() for name in codes}
    generated = {dotted_source(source) for source in results}
    changes: dict[str, list[str]] = {}
    for name in equivalents:
        if name in source_by_name:
            changes[name] = change_of(name, source_by_name[name])
        elif module_of(name) not in generated and name in lock:
            changes[name] = lock[name]
    return changes


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


def render_json(rows: list[Row], stale: list[str], unreviewed: dict[str, str]) -> str:
    def record(row: Row) -> dict[str, object]:
        data = asdict(row)
        data["score"] = None if row.score is None else round(row.score, 2)
        return data

    return json.dumps({"modules": [record(r) for r in rows], "total": record(_total(rows)),
                       "stale_equivalents": stale, "unreviewed_equivalents": unreviewed}, indent=2,
                      ensure_ascii=False)


def main(argv: list[str] | None = None, change_of: ChangeOf | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help="source path, folder, dotted module name or mutant-name glob (default: all run)")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON document on stdout")
    form.add_argument("--markdown", action="store_true", help="a Markdown table (for docs/testing.md)")
    parser.add_argument("--mutants-dir", type=Path, default=ROOT / "mutants", help="mutmut's folder (default: %(default)s)")
    parser.add_argument("--equivalents", type=Path, default=EQUIVALENTS, help="reviewed list (default: %(default)s)")
    parser.add_argument("--lock", type=Path, default=LOCK, help="the reviewed change of each listed mutant (default: %(default)s)")
    parser.add_argument("--write-lock", action="store_true",
                        help="rewrite the lock from mutants/ (after reading each changed entry: mutmut show NAME)")
    parser.add_argument("--times", type=Path, default=None, help="run times (default: MUTANTS_DIR/mutation-times.tsv)")
    parser.add_argument("--survivors", action="store_true", help="after the table, list each module's survivors")
    parser.add_argument("--fail-under", type=float, default=None, metavar="PCT",
                        help="exit 1 when a module's score is below PCT")
    args = parser.parse_args(argv)

    try:
        equivalents = read_equivalents(args.equivalents)
        lock = read_lock(args.lock)
    except (ValueError, OSError) as err:  # json.JSONDecodeError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 4
    results = read_results(args.mutants_dir)
    if not results:
        print(f"error: no mutmut results under {args.mutants_dir}\n  fix: scripts/mutation.sh MODULE", file=sys.stderr)
        return 3
    if change_of is None:
        try:
            change_of = mutmut_change_of(args.mutants_dir)
        except (ImportError, ValueError) as err:
            print(f"error: cannot read the mutants' changes: {err}\n  fix: pip install -e '.[mutation]'", file=sys.stderr)
            return 2
    if args.write_lock:
        changes = locked_changes(results, equivalents, lock, change_of)
        moved = sorted(n for n in changes if n in lock and lock[n] != changes[n])
        added = sorted(n for n in changes if n not in lock)
        write_lock(args.lock, changes)
        print(f"{args.lock}: {len(changes)} entries, {len(added)} new, {len(moved)} changed, "
              f"{len(set(lock) - set(changes))} dropped", file=sys.stderr)
        for name in moved:
            print(f"  changed: {name}: {' | '.join(changes[name])}", file=sys.stderr)
        return 0

    globs = [g for spec in args.modules for g in module_globs(spec)[1]]
    selected = {n: r for n, r in equivalents.items() if not globs or any(fnmatch.fnmatchcase(n, g) for g in globs)}
    unreviewed = unreviewed_equivalents(results, selected, lock, change_of)
    reviewed = {n: r for n, r in equivalents.items() if n not in unreviewed}
    rows = build_rows(results, args.modules, reviewed, read_times(args.times or args.mutants_dir / TIMES.name))
    if not rows:
        print(f"error: no mutmut results for {' '.join(args.modules) or 'any module'} under {args.mutants_dir}\n"
              f"  fix: scripts/mutation.sh {' '.join(args.modules) or 'MODULE'}", file=sys.stderr)
        return 3
    stale = stale_equivalents(results, equivalents)
    if args.json:
        print(render_json(rows, stale, unreviewed))
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
    for name, why in unreviewed.items():
        print(f"warning: {name} is listed as equivalent, but it is not the mutant reviewed ({why}); it counts as "
              f"a survivor until its entry is checked (mutmut show {name}) and the lock rewritten (--write-lock)",
              file=sys.stderr)
    if args.fail_under is not None:
        low = [r for r in rows if r.score is not None and r.score < args.fail_under]
        for row in low:
            print(f"error: {row.module}: score {row.score:.1f} % is below {args.fail_under:g} %", file=sys.stderr)
        return 1 if low else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
