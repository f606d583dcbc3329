"""The mutant phase shows progress (issue 17, part 6)."""

from __future__ import annotations

from types import SimpleNamespace

from falsifiers.mutant_runs import MutantProgress
from falsifiers.mutation import MutantStatus


def _result(contract: str, status: MutantStatus):
    return SimpleNamespace(contract=contract, status=status)


def test_off_a_terminal_one_line_per_contract_when_its_last_mutant_ends():
    lines: list[str] = []
    ticks = iter([0.0, 5.0, 20.0, 65.0])
    progress = MutantProgress(["a", "b", "a"], lines.append, clock=lambda: next(ticks))
    progress(_result("a", MutantStatus.KILLED), 1, 3)
    assert lines == []  # a has another mutant
    progress(_result("b", MutantStatus.SURVIVED), 2, 3)
    progress(_result("a", MutantStatus.SURVIVED), 3, 3)
    assert lines == ["mutants: b: 0/1 killed (2/3 done, 20s)", "mutants: a: 1/2 killed (3/3 done, 1m05s)"]


def test_on_a_terminal_one_line_rewritten_with_done_total_and_survivors():
    rewritten: list[str] = []
    written: list[str] = []
    ticks = iter([0.0, 3.0, 9.0])
    progress = MutantProgress(["a", "a"], written.append, rewritten.append, clock=lambda: next(ticks))
    progress(_result("a", MutantStatus.SURVIVED), 1, 2)
    progress(_result("a", MutantStatus.KILLED), 2, 2)
    assert rewritten == ["mutants: 1/2 done, 1 survived, 3s", "mutants: 2/2 done, 1 survived, 9s"]
    assert written == [""]  # the status line is ended once, at the end
