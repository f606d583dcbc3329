"""The 100-point quality score of `apr inspect --quality` (docs/aprender-format.md §3.1, SPEC §84).

Same sub-scores, maxima, rules and threshold as aprender, so our numbers equal aprender's on the
same file: physics 20 (header CRC valid), structural 20 (architecture, hidden_size, num_layers,
num_heads: 5 each), provenance 25 (license 9, data_source 8, data_license 8), hf_identity 20
(hf_architecture 12, hf_model_type 8), tokenizer 15 (the HAS_VOCAB flag). Ship-ready at ≥ 90.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apr.format.header import Flags

THRESHOLD = 90
MAXIMA: dict[str, int] = {"physics": 20, "structural": 20, "provenance": 25, "hf_identity": 20, "tokenizer": 15}


@dataclass(frozen=True, slots=True)
class Missing:
    """One way the file loses points, and the field a stamp would set to earn them back."""

    part: str
    points: int
    what: str
    field: str | None  # the `apr stamp` flag's field, None when a stamp cannot fix it


@dataclass(frozen=True, slots=True)
class QualityScore:
    breakdown: dict[str, int]
    missing: tuple[Missing, ...]

    @property
    def score(self) -> int:
        return total_score(self.breakdown)

    @property
    def ship_ready(self) -> bool:
        return is_ship_ready(self.score)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "ship_ready": self.ship_ready,
            "threshold": THRESHOLD,
            "breakdown": dict(self.breakdown),
        }


def total_score(breakdown: Mapping[str, int]) -> int:
    """The 0-100 score: the sum of the five parts (a plain function, so mutation testing sees it)."""
    return sum(breakdown.values())


def is_ship_ready(score: int) -> bool:
    """AC-SHIP2-007: ship-ready at ``THRESHOLD`` (90) points or more."""
    return score >= THRESHOLD


def _present(value: Any) -> bool:
    return value is not None and value != ""


def score_quality(*, checksum_valid: bool, metadata: Mapping[str, Any], flags: int) -> QualityScore:
    """Score a checkpoint from its header checksum validity, metadata and flags.

    Example:
        >>> score_quality(checksum_valid=True, metadata={}, flags=0).score
        20
    """
    missing: list[Missing] = []

    def part(name: str, rules: list[tuple[bool, int, str, str | None]]) -> int:
        total = 0
        for ok, points, what, field in rules:
            if ok:
                total += points
            else:
                missing.append(Missing(name, points, what, field))
        return total

    arch = metadata.get("architecture")
    arch_ok = isinstance(arch, str) and arch != "" and arch != "unknown"
    breakdown = {
        "physics": part("physics", [(checksum_valid, 20, "header checksum is invalid", None)]),
        "structural": part(
            "structural",
            [
                (arch_ok, 5, "architecture (family slug) is missing", "architecture"),
                (metadata.get("hidden_size") is not None, 5, "hidden_size is missing", None),
                (metadata.get("num_layers") is not None, 5, "num_layers is missing", None),
                (metadata.get("num_heads") is not None, 5, "num_heads is missing", None),
            ],
        ),
        "provenance": part(
            "provenance",
            [
                (_present(metadata.get("license")), 9, "license is missing", "license"),
                (_present(metadata.get("data_source")), 8, "data_source is missing", "data_source"),
                (_present(metadata.get("data_license")), 8, "data_license is missing", "data_license"),
            ],
        ),
        "hf_identity": part(
            "hf_identity",
            [
                (_present(metadata.get("hf_architecture")), 12, "hf_architecture is missing", "hf_architecture"),
                (_present(metadata.get("hf_model_type")), 8, "hf_model_type is missing", "hf_model_type"),
            ],
        ),
        "tokenizer": part(
            "tokenizer",
            [(bool(flags & Flags.HAS_VOCAB), 15, "no embedded tokenizer (HAS_VOCAB flag unset)", "tokenizer")],
        ),
    }
    return QualityScore(breakdown=breakdown, missing=tuple(missing))


__all__ = ["MAXIMA", "THRESHOLD", "Missing", "QualityScore", "is_ship_ready", "score_quality", "total_score"]
