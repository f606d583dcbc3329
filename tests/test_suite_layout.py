"""The suite's own layout: pytest imports test files by basename where their folder has no
``__init__.py`` (rootdir-relative "rootdir/conftest" import mode), so two ``test_x.py`` in two such
folders make collection fail ("import file mismatch"), and with it every verdict (exit 2, UNKNOWN).
Two engineers adding ``test_mut_plan.py`` to tests/stamp and tests/train did exactly that."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_two_test_files_share_a_basename_outside_packages() -> None:
    loose = [p for p in TESTS.rglob("test_*.py") if not (p.parent / "__init__.py").exists() or p.parent == TESTS]
    clashes = sorted(name for name, n in Counter(p.name for p in loose).items() if n > 1)
    assert clashes == [], f"rename one of each: {clashes}"
