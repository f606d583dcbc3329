"""Gate results and the QA report: the records `apr qa` produces (reference/aprender.md §4.2).

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
    def skip(cls, name: str, reason: str) -> "GateResult":
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
        return [g for g in self.gates if not g.skipped]

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.executed if not g.passed]

    @property
    def passed(self) -> bool:
        return not self.failed and len(self.executed) >= self.min_executed

    @property
    def verdict(self) -> str:
        return "GO" if self.passed else "NO-GO"

    @property
    def summary(self) -> str:
        e, s = len(self.executed), len(self.gates) - len(self.executed)
        if self.failed:
            return "Failed gates: " + ", ".join(g.name for g in self.failed)
        if e < self.min_executed:
            return f"Insufficient gate execution: {e} < {self.min_executed} minimum"
        return f"All QA gates passed ({e} executed, {s} skipped)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
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
