"""Gate results and the QA report: the records `apr qa` produces (docs/aprender-format.md §4.2).

A gate either ran (passed or failed, with its measured value and threshold) or was skipped with
a reason. A skipped gate is never counted as passed: the verdict is GO only when no executed gate
failed and at least ``min_executed`` gates ran — aprender's readiness script read a ``verdict``
key its `apr qa` never wrote, so its gate could never pass; ours writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class GateResult:
    name: str
    passed: bool
    skipped: bool
    message: str
    value: float | None = None
    threshold: float | None = None
    duration_ms: float = 0.0
    fix: str | None = None  # the command that removes this blocker, when one exists
    unit: str | None = None  # what ``value`` and ``threshold`` count, where it is not obvious (throughput)

    @classmethod
    def skip(cls, name: str, reason: str) -> GateResult:
        return cls(name=name, passed=False, skipped=True, message=f"Skipped: {reason}")

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "passed": self.passed,
            "skipped": self.skipped,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
            "duration_ms": round(self.duration_ms, 3),
        }
        if self.fix:
            doc["fix"] = self.fix
        if self.unit:
            doc["unit"] = self.unit
        return doc


def executed_gates(gates: list[GateResult]) -> list[GateResult]:
    """The gates that ran (a skipped gate neither passes nor fails)."""
    return [g for g in gates if not g.skipped]


def failed_gates(gates: list[GateResult]) -> list[GateResult]:
    """The gates that ran and did not pass: the blockers, in run order."""
    return [g for g in executed_gates(gates) if not g.passed]


def qa_passed(gates: list[GateResult], min_executed: int) -> bool:
    """GO: no executed gate failed and at least ``min_executed`` gates ran."""
    return not failed_gates(gates) and len(executed_gates(gates)) >= min_executed


def verdict_word(passed: bool) -> str:
    """The ``verdict`` key of `apr qa --json` and `apr readiness --json`."""
    return "GO" if passed else "NO-GO"


def qa_summary(gates: list[GateResult], min_executed: int) -> str:
    """One line for the report: the failed gates, too few gates run, or the counts."""
    failed = failed_gates(gates)
    e = len(executed_gates(gates))
    if failed:
        return "Failed gates: " + ", ".join(g.name for g in failed)
    if e < min_executed:
        return f"Insufficient gate execution: {e} < {min_executed} minimum"
    return f"All QA gates passed ({e} executed, {len(gates) - e} skipped)"


@dataclass
class QaReport:
    model: str
    sha256: str
    gates: list[GateResult] = field(default_factory=list)
    min_executed: int = 0
    system_info: dict[str, Any] = field(default_factory=dict)
    registered: tuple[str, ...] = ()

    @property
    def executed(self) -> list[GateResult]:
        return executed_gates(self.gates)

    @property
    def failed(self) -> list[GateResult]:
        return failed_gates(self.gates)

    @property
    def passed(self) -> bool:
        return qa_passed(self.gates, self.min_executed)

    @property
    def verdict(self) -> str:
        return verdict_word(self.passed)

    @property
    def summary(self) -> str:
        return qa_summary(self.gates, self.min_executed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.model,
            "sha256": self.sha256,
            "passed": self.passed,
            "verdict": self.verdict,
            "gates": [g.to_dict() for g in self.gates],
            "gates_executed": len(self.executed),
            "gates_skipped": len(self.gates) - len(self.executed),
            "gates_registered": list(self.registered),
            "summary": self.summary,
            "system_info": self.system_info,
        }
