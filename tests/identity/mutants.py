"""Deliberate faults for apr-arch-identity-v1 and apr-quality-v1: each must turn its falsifier's tests red.

Where a test imports a function by name, the target is that name in the test module (the caller's
lookup); otherwise the name in the package module that calls it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from apr.identity import explain as _explain
from apr.identity import family as _family
from apr.identity import quality as _quality

_real_family = _family.family_from_tensor_names
_real_normalize = _family.normalize_metadata_arch_family
_real_salvage = _family.salvage_command
_real_score = _quality.score_quality

THRESHOLD_91 = 91  # ship-ready from 91: a score of exactly 90 is refused


def always_llama(names: Iterable[str]) -> str:
    """family_from_tensor_names that answers llama whatever the tensors say."""
    return "llama"


def first_name_decides(names: Iterable[str]) -> str:
    """family_from_tensor_names that looks only at the first name (order-dependent)."""
    listed = list(names)
    return _real_family(listed[:1])


def lowercase_claims(arch: str | None) -> str | None:
    """normalize_metadata_arch_family that lower-cases any string instead of using §5.2's table."""
    return arch.lower() if isinstance(arch, str) else None


def ignore_hf_classes(arch: str | None) -> str | None:
    """normalize_metadata_arch_family that no longer maps HF class names (…ForCausalLM)."""
    if isinstance(arch, str) and arch.endswith("ForCausalLM"):
        return None
    return _real_normalize(arch)


def gate_never_fires(*args: Any, **kwargs: Any) -> None:
    """validate_init_arch_matches_tensor_evidence that accepts every claim."""
    return None


def salvage_without_hf_identity(*args: Any, **kwargs: Any) -> str:
    """The salvage command forgets --hf-architecture and --hf-model-type."""
    return re.sub(r" --hf-(architecture|model-type) \S+", "", _real_salvage(*args, **kwargs))


def _score_plus_one(self: Any) -> int:
    return sum(self.breakdown.values()) + 1


score_plus_one = property(_score_plus_one)  # QualityScore.score off by one


def tokenizer_over_max(*, checksum_valid: bool, metadata: Any, flags: int) -> Any:
    """score_quality that gives an embedded tokenizer 16 points (MAXIMA says 15)."""
    score = _real_score(checksum_valid=checksum_valid, metadata=metadata, flags=flags)
    if score.breakdown["tokenizer"]:
        score.breakdown["tokenizer"] = 16
    return score


def present_if_not_none(value: Any) -> bool:
    """_present that counts an empty string as present."""
    return value is not None


def explain_nothing(*args: Any, **kwargs: Any) -> list[Any]:
    """explain_quality that lists no missing rule, so no command to reach the attainable score."""
    return []


_ = _explain  # imported so the target module is loaded before patching
