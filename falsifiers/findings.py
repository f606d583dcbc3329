"""Lint findings: one problem in one place, with the remedy (``path:line:col: error[code]: message``).

Kept apart from `falsifiers.records`: the plugin's warm runs read a cached corpus whose findings
are usually none, so they need not create these classes at all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from falsifiers.records import Location


class Severity(str, enum.Enum):
    """How much a finding matters. Only ``ERROR`` makes lint exit non-zero (``--strict`` adds ``WARNING``)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in one place, with the remedy.

    Attributes:
        severity: error, warning or info.
        code: a stable kebab-case rule name, e.g. ``duplicate-key``, ``unknown-key``.
        message: what is wrong, naming the thing the author typed.
        location: where; ``None`` only for problems that have no place (an empty corpus).
        hint: how to fix it.
        related: other places involved (the first occurrence of a duplicate id).
    """

    severity: Severity
    code: str
    message: str
    location: Location | None = None
    hint: str | None = None
    related: tuple[Location, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def render(self) -> str:
        """The compiler-style text form: ``path:line:col: error[code]: message`` plus fix lines."""
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{self.severity.value}[{self.code}]: {self.message}"
        for other in self.related:
            text += f"\n  see also: {other}"
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The inverse of `to_dict` (the plugin caches schema findings by file hash)."""
        loc = data.get("location")
        return cls(
            Severity(data["severity"]), data["code"], data["message"],
            Location(loc["path"], loc.get("line"), loc.get("col")) if loc else None,
            data.get("hint"), tuple(Location(r["path"], r.get("line"), r.get("col")) for r in data.get("related", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "location": self.location.to_dict() if self.location else None,
            "hint": self.hint,
            "related": [loc.to_dict() for loc in self.related],
        }


__all__ = ["Finding", "Severity"]
