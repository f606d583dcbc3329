"""Tensors stored in another type than asked, grouped by reason, so a report says it once.

Why: a q4_k export of SmolLM2-135M printed 210 ``note:`` lines (one per tensor whose 576-value
rows do not split into 256-value blocks), and a quantized import printed each line twice (a log
warning and the report's note). The reports keep the per-tensor list (``fallbacks`` in JSON);
what a person reads is one line per reason with a count and an example (issue 15, part 5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FallbackGroup:
    """Every tensor that fell back for one reason."""

    reason: str  # e.g. "rows of 576 values: stored Q5_0, not Q4_K"
    tensors: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.tensors)

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "count": self.count, "tensors": list(self.tensors)}

    def line(self) -> str:
        """One readable line: count, reason, an example tensor."""
        noun = "tensor" if self.count == 1 else "tensors"
        return f"{self.count} {noun} fell back ({self.reason}), e.g. {self.tensors[0]}"


def group_fallbacks(notes: Iterable[str]) -> list[FallbackGroup]:
    """Group ``"tensor: reason"`` notes by reason, in order of first appearance.

    Tensor names hold no ``": "``, so the reason is everything after the first one.

    Example:
        >>> [g.line() for g in group_fallbacks(["a: rows of 5: F16", "b: rows of 5: F16", "c: rows of 7: F16"])]
        ['2 tensors fell back (rows of 5: F16), e.g. a', '1 tensor fell back (rows of 7: F16), e.g. c']
    """
    groups: dict[str, list[str]] = {}
    for note in notes:
        name, sep, reason = note.partition(": ")
        if not sep:
            name, reason = "", note
        groups.setdefault(reason, []).append(name)
    return [FallbackGroup(reason, tuple(names)) for reason, names in groups.items()]


__all__ = ["FallbackGroup", "group_fallbacks"]
