"""scripts/mutation_table.py: the per-module mutation table that docs/testing.md's figures come from.

The table is the suite's own measure of strength (issue 23), so its arithmetic is stated here by
example: how mutmut's exit codes become statuses, how equivalents leave the denominator, which
listed equivalents are stale, and the exit codes a caller (``--fail-under``) relies on.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_table", ROOT / "scripts" / "mutation_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def write_meta(mutants: Path, source: str, codes: dict[str, int | None]) -> None:
    """One mutmut 3.8.1 result file, ``mutants/<source>.meta``."""
    meta = mutants / f"{source}.meta"
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes}), encoding="utf-8")


@pytest.mark.parametrize(("code", "status"), [
    (1, "killed"), (3, "killed"), (0, "survived"), (5, "no tests"), (33, "no tests"), (None, "not checked"),
    (36, "timeout"), (-24, "timeout"), (24, "timeout"), (-9, "segfault"), (-11, "segfault"), (34, "skipped"),
    (37, "caught by type check"), (2, "check was interrupted by user"), (99, "suspicious"), (-6, "suspicious"),
])
def test_exit_codes_map_to_mutmut_statuses(table: ModuleType, code: int | None, status: str) -> None:
    assert table.status_of(code) == status


def test_a_row_counts_each_status_once_and_equivalents_leave_the_denominator(table: ModuleType) -> None:
    results = {"apr/x/y.py": {"apr.x.y.x_f__mutmut_1": 1, "apr.x.y.x_f__mutmut_2": 0, "apr.x.y.x_f__mutmut_3": None,
                              "apr.x.y.x_f__mutmut_4": 36, "apr.x.y.x_f__mutmut_5": 33, "apr.x.y.x_f__mutmut_6": -9,
                              "apr.x.y.x_f__mutmut_7": 1}}
    equivalents = {"apr.x.y.x_f__mutmut_2": "wording", "apr.x.y.x_f__mutmut_7": "listed, but killed"}
    [row] = table.build_rows(results, ["apr/x/y.py"], equivalents, {})
    assert (row.mutants, row.killed, row.survived, row.timeout, row.no_tests, row.other, row.not_checked,
            row.equivalents) == (7, 2, 1, 1, 1, 1, 1, 1)
    # a killed mutant counts as killed even when listed; only the unkilled listed one leaves the denominator
    assert row.score == pytest.approx(100.0 * 2 / 6)
    assert row.survivors == ["apr.x.y.x_f__mutmut_4", "apr.x.y.x_f__mutmut_5", "apr.x.y.x_f__mutmut_6"]


def test_score_is_none_only_without_a_countable_mutant(table: ModuleType) -> None:
    assert table.Row("m").score is None
    assert table.Row("m", mutants=2, equivalents=2).score is None
    assert table.Row("m", mutants=3, killed=2, equivalents=1).score == 100.0
    assert table.Row("m", mutants=10, killed=9).score == 90.0


@pytest.mark.parametrize(("spec", "expected"), [
    ("apr/identity/quality.py", ("apr/identity/quality.py", ["apr.identity.quality.*"])),
    ("apr/format/__init__.py", ("apr/format/__init__.py", ["apr.format.x_*", "apr.format.xǁ*"])),
    ("apr/identity", ("apr/identity/", ["apr.identity.*"])),
    ("apr.stamp.spdx", (None, ["apr.stamp.spdx.*"])),
    ("apr.stamp.*", (None, ["apr.stamp.*"])),
])
def test_module_arguments_select_mutant_names(table: ModuleType, spec: str, expected: tuple) -> None:
    assert table.module_globs(spec) == expected


def test_rows_select_only_the_named_modules(table: ModuleType) -> None:
    results = {"apr/a.py": {"apr.a.x_f__mutmut_1": 1}, "apr/b.py": {"apr.b.x_g__mutmut_1": 0},
               "apr/c.py": {"apr.c.x_h__mutmut_1": None}}
    assert [r.module for r in table.build_rows(results, ["apr/b.py"], {}, {})] == ["apr/b.py"]
    # without MODULE: every file with a mutant that has run
    assert [r.module for r in table.build_rows(results, [], {}, {})] == ["apr/a.py", "apr/b.py"]


@pytest.mark.parametrize(("name", "module"), [
    ("apr.qa.gate.x_evaluate__mutmut_7", "apr.qa.gate"),
    ("apr.format.reader.xǁReader__read__mutmut_1", "apr.format.reader"),
    ("apr.format.x_save_file__mutmut_2", "apr.format"),
])
def test_module_of_a_mutant_name(table: ModuleType, name: str, module: str) -> None:
    assert table.module_of(name) == module


def test_stale_equivalents_are_killed_or_gone_from_a_generated_module(table: ModuleType) -> None:
    results = {"apr/qa/gate.py": {"apr.qa.gate.x_f__mutmut_1": 1, "apr.qa.gate.x_f__mutmut_2": 0},
               "apr/format/__init__.py": {"apr.format.x_g__mutmut_1": 0}}
    equivalents = {
        "apr.qa.gate.x_f__mutmut_1": "killed after all",
        "apr.qa.gate.x_f__mutmut_2": "still equivalent",
        "apr.qa.gate.x_f__mutmut_9": "the code changed",
        "apr.format.x_g__mutmut_4": "gone from a package's own functions",
        "apr.stamp.spdx.x_h__mutmut_1": "module not generated here (a narrowed run): no sign of change",
    }
    assert table.stale_equivalents(results, equivalents) == [
        "apr.format.x_g__mutmut_4: no such mutant (the code changed?)",
        "apr.qa.gate.x_f__mutmut_1: killed by a test, so not equivalent",
        "apr.qa.gate.x_f__mutmut_9: no such mutant (the code changed?)",
    ]


def test_equivalents_need_a_reason_and_are_listed_once(table: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "eq.txt"
    path.write_text("# comment\n\napr.a.x_f__mutmut_1: wording only\n", encoding="utf-8")
    assert table.read_equivalents(path) == {"apr.a.x_f__mutmut_1": "wording only"}
    path.write_text("apr.a.x_f__mutmut_1: why\napr.a.x_f__mutmut_1: again\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"eq.txt:2: apr.a.x_f__mutmut_1 is listed twice"):
        table.read_equivalents(path)
    path.write_text("apr.a.x_f__mutmut_1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"eq.txt:1: expected 'MUTANT_NAME: why"):
        table.read_equivalents(path)
    assert table.read_equivalents(tmp_path / "absent.txt") == {}


def test_times_keep_the_latest_run_per_module(table: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "times.tsv"
    path.write_text("apr/a.py\t12e-3\t2026-01-01\t\napr/a.py\t7.5\t2026-01-02\tstopped\nbad\napr/b.py\tx\n",
                    encoding="utf-8")
    assert table.read_times(path) == {"apr/a.py": 7.5}


def _main(table: ModuleType, tmp_path: Path, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    eq = tmp_path / "eq.txt"
    if not eq.exists():
        eq.write_text("apr.m.x_f__mutmut_2: wording\n", encoding="utf-8")
    lock = tmp_path / "lock.json"
    if not lock.exists():
        table.write_lock(lock, {"apr.m.x_f__mutmut_2": ["- 'x'", "+ 'XXxXX'"]})
    code = table.main([*argv, "--mutants-dir", str(tmp_path / "mutants"), "--equivalents", str(eq), "--lock", str(lock)],
                      change_of=fake_change_of)
    out, err = capsys.readouterr()
    return code, out, err


def test_fail_under_exits_1_just_below_and_0_at_the_threshold(table: ModuleType, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # 9 killed, 1 survived, 1 equivalent: 9 / 10 = 90 %
    codes: dict[str, int | None] = {f"apr.m.x_f__mutmut_{i}": 1 for i in range(3, 12)}
    codes |= {"apr.m.x_f__mutmut_1": 0, "apr.m.x_f__mutmut_2": 0}
    write_meta(tmp_path / "mutants", "apr/m.py", codes)
    assert _main(table, tmp_path, "--fail-under", "90", capsys=capsys)[0] == 0
    code, _, err = _main(table, tmp_path, "--fail-under", "90.1", capsys=capsys)
    assert code == 1
    assert "error: apr/m.py: score 90.0 % is below 90.1 %" in err


def test_json_output_and_survivor_listing(table: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_meta(tmp_path / "mutants", "apr/m.py", {"apr.m.x_f__mutmut_1": 0, "apr.m.x_f__mutmut_2": 0,
                                                  "apr.m.x_f__mutmut_3": 1})
    code, out, _ = _main(table, tmp_path, "--json", capsys=capsys)
    assert code == 0
    doc = json.loads(out)
    [module] = doc["modules"]
    assert (module["module"], module["mutants"], module["killed"], module["survived"], module["equivalents"],
            module["score"]) == ("apr/m.py", 3, 1, 2, 1, 50.0)
    assert module["survivors"] == ["apr.m.x_f__mutmut_1"]
    assert doc["stale_equivalents"] == []
    code, out, _ = _main(table, tmp_path, "--survivors", "apr/m.py", capsys=capsys)
    assert code == 0
    assert "apr/m.py: 1 not killed (mutmut show NAME)\n  apr.m.x_f__mutmut_1: survived" in out
    assert "50.0 %" in out


def test_no_results_exits_3_and_a_bad_list_exits_4(table: ModuleType, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _main(table, tmp_path, "apr/absent.py", capsys=capsys)
    assert code == 3
    assert "error: no mutmut results under" in err
    write_meta(tmp_path / "mutants", "apr/m.py", {"apr.m.x_f__mutmut_1": 0})
    code, _, err = _main(table, tmp_path, "apr/absent.py", capsys=capsys)
    assert code == 3
    assert "error: no mutmut results for apr/absent.py" in err
    assert "fix: scripts/mutation.sh apr/absent.py" in err
    (tmp_path / "eq.txt").write_text("no reason here\n", encoding="utf-8")
    assert _main(table, tmp_path, capsys=capsys)[0] == 4


def test_the_committed_equivalents_list_is_well_formed(table: ModuleType) -> None:
    """Every reviewed entry has a reason and appears once (the table refuses the file otherwise)."""
    listed = table.read_equivalents(table.EQUIVALENTS)
    assert listed
    assert all(table.module_of(name).split(".")[0] in table.SOURCE_ROOTS for name in listed)


# --- the lock: a listed name must still name the mutant that was reviewed ------------------------------

CHANGES = {"apr.m.x_f__mutmut_1": ["- a < b", "+ a <= b"], "apr.m.x_f__mutmut_2": ["- 'x'", "+ 'XXxXX'"],
           "apr.m.x_f__mutmut_3": ["- n += 1", "+ n = 1"]}


def fake_change_of(name: str, source: str) -> list[str]:
    assert source == "apr/m.py"
    return CHANGES[name]


def test_a_listed_mutant_whose_change_moved_counts_as_a_survivor(table: ModuleType) -> None:
    results = {"apr/m.py": {"apr.m.x_f__mutmut_1": 0, "apr.m.x_f__mutmut_2": 0, "apr.m.x_f__mutmut_3": 1}}
    equivalents = {"apr.m.x_f__mutmut_1": "renumbered", "apr.m.x_f__mutmut_2": "wording",
                   "apr.m.x_f__mutmut_3": "killed: left to the stale check"}
    lock = {"apr.m.x_f__mutmut_1": ["- n += 1", "+ n = 1"], "apr.m.x_f__mutmut_2": ["- 'x'", "+ 'XXxXX'"]}
    assert table.unreviewed_equivalents(results, equivalents, lock, fake_change_of) == {
        "apr.m.x_f__mutmut_1": "reviewed: - n += 1 | + n = 1; now: - a < b | + a <= b"}
    # a listed survivor with no reviewed change at all is not trusted either
    assert table.unreviewed_equivalents(results, equivalents, {}, fake_change_of) == {
        "apr.m.x_f__mutmut_1": "no reviewed change in the lock; now: - a < b | + a <= b",
        "apr.m.x_f__mutmut_2": "no reviewed change in the lock; now: - 'x' | + 'XXxXX'"}


def test_a_mutant_not_yet_run_is_not_judged(table: ModuleType) -> None:
    results = {"apr/m.py": {"apr.m.x_f__mutmut_1": None}}
    assert table.unreviewed_equivalents(results, {"apr.m.x_f__mutmut_1": "r"}, {}, fake_change_of) == {}


def test_the_written_lock_keeps_other_modules_and_drops_unlisted_names(table: ModuleType) -> None:
    results = {"apr/m.py": {"apr.m.x_f__mutmut_1": 0, "apr.m.x_f__mutmut_2": 1}}
    equivalents = {"apr.m.x_f__mutmut_1": "r", "apr.m.x_f__mutmut_2": "r", "apr.other.x_g__mutmut_4": "r",
                   "apr.m.x_f__mutmut_9": "gone"}
    lock = {"apr.other.x_g__mutmut_4": ["- kept"], "apr.m.x_f__mutmut_9": ["- dropped"], "apr.unlisted.x_h__mutmut_1": ["- x"]}
    assert table.locked_changes(results, equivalents, lock, fake_change_of) == {
        "apr.m.x_f__mutmut_1": ["- a < b", "+ a <= b"],
        "apr.m.x_f__mutmut_2": ["- 'x'", "+ 'XXxXX'"],
        "apr.other.x_g__mutmut_4": ["- kept"],
    }


def test_main_counts_a_moved_equivalent_as_a_survivor_until_the_lock_is_rewritten(
        table: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_meta(tmp_path / "mutants", "apr/m.py", {"apr.m.x_f__mutmut_1": 0, "apr.m.x_f__mutmut_3": 1})
    (tmp_path / "eq.txt").write_text("apr.m.x_f__mutmut_1: the < / <= boundary no input reaches\n", encoding="utf-8")
    lock = tmp_path / "lock.json"
    table.write_lock(lock, {"apr.m.x_f__mutmut_1": ["- n += 1", "+ n = 1"]})

    def run(*argv: str) -> tuple[int, str, str]:
        code = table.main([*argv, "--mutants-dir", str(tmp_path / "mutants"), "--equivalents", str(tmp_path / "eq.txt"),
                           "--lock", str(lock)], change_of=fake_change_of)
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = run("--json")
    [row] = json.loads(out)["modules"]
    assert (row["equivalents"], row["score"], row["survivors"]) == (0, 50.0, ["apr.m.x_f__mutmut_1"])
    assert json.loads(out)["unreviewed_equivalents"] == {
        "apr.m.x_f__mutmut_1": "reviewed: - n += 1 | + n = 1; now: - a < b | + a <= b"}
    assert "apr.m.x_f__mutmut_1 is listed as equivalent, but it is not the mutant reviewed" in err
    assert run("--fail-under", "90")[0] == 1

    code, _, err = run("--write-lock")
    assert code == 0
    assert "1 entries, 0 new, 1 changed, 0 dropped" in err
    assert "changed: apr.m.x_f__mutmut_1: - a < b | + a <= b" in err
    assert json.loads(lock.read_text(encoding="utf-8"))["changes"] == {"apr.m.x_f__mutmut_1": ["- a < b", "+ a <= b"]}
    code, out, _ = run("--json", "--fail-under", "90")
    assert code == 0
    assert json.loads(out)["modules"][0]["score"] == 100.0


def test_a_malformed_lock_exits_4(table: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_meta(tmp_path / "mutants", "apr/m.py", {"apr.m.x_f__mutmut_1": 0})
    (tmp_path / "lock.json").write_text("{not json", encoding="utf-8")
    code = table.main(["--mutants-dir", str(tmp_path / "mutants"), "--lock", str(tmp_path / "lock.json")],
                      change_of=fake_change_of)
    assert code == 4
    assert "error:" in capsys.readouterr().err


def test_the_committed_lock_names_only_listed_mutants(table: ModuleType) -> None:
    """Every reviewed change belongs to an entry of the list, and each entry has its change."""
    listed = table.read_equivalents(table.EQUIVALENTS)
    assert set(table.read_lock(table.LOCK)) == set(listed)
