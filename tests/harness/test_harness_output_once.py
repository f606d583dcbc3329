"""Output you can read (issue 17, part 6): the verdict table once, same-reason rows folded, rules
as wide as the table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from falsifiers.report import FOLD_AT, fold_same_reason

ROOT = Path(__file__).resolve().parents[2]


def _row(falsifier: str, outcome: str = "UNDETERMINED", detail: str = "did not run (binding errors)"):
    return ("c", falsifier, outcome, "yellow", detail)


def test_rows_sharing_a_reason_fold_from_the_threshold_on():
    below = [_row(f"F-{i}") for i in range(FOLD_AT - 1)]
    assert fold_same_reason(below) == below
    at = [_row(f"F-{i}") for i in range(FOLD_AT)]
    assert fold_same_reason(at) == [(f"{FOLD_AT} falsifiers", f"F-0 … F-{FOLD_AT - 1}", "UNDETERMINED", "yellow",
                                     "did not run (binding errors)")]


def test_only_undetermined_rows_with_the_same_outcome_and_reason_fold_in_place():
    table = [_row("A", "REFUTED", "x"), _row("B", "REFUTED", "x"), _row("C", "REFUTED", "x"),
             _row("D"), _row("E", "UNDETERMINED (tolerated)"), _row("F"), _row("G", detail="other"), _row("H")]
    folded = fold_same_reason(table)
    assert folded[:3] == table[:3]  # refuted rows are never folded
    assert folded[3] == ("3 falsifiers", "D … H", "UNDETERMINED", "yellow", "did not run (binding errors)")
    assert folded[4:] == [table[4], table[6]]  # another outcome, another reason: kept


def test_apr_contracts_verify_prints_the_table_once_and_no_wider_than_it(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n[tool.apr-contracts]\n'
                                             '[tool.pytest.ini_options]\naddopts = "-p no:cacheprovider"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    for name in ("alpha-v1", "beta-v1"):
        subprocess.run([sys.executable, "-m", "apr.cli.main", "contracts", "new", name], cwd=tmp_path, env=env,
                       check=True, capture_output=True)
    for test in (tmp_path / "tests").glob("test_*.py"):
        test.write_text(test.read_text().replace("pytest.fail(", "assert True or pytest.fail("))
    done = subprocess.run([sys.executable, "-m", "apr.cli.main", "contracts", "verify"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text
    assert text.count("verdict: GO") == 1 and text.count("contract  falsifier") == 1
    rule = next(line for line in text.splitlines() if set(line) == {"-"})
    assert len(rule) == max(len(line) for line in text.splitlines() if "FALSIFY-" in line or "evidence" in line)
