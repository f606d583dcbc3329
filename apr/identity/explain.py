"""`apr inspect --explain`: for each missing quality point, what is missing and the stamp that earns it.

Values are filled in where the file itself proves them (the family from tensor names and its HF
class and model_type); elsewhere a placeholder the user must choose (a license is a decision,
not a guess).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from apr.identity.family import HF_CLASS_FOR_FAMILY, HF_MODEL_TYPE_FOR_FAMILY, family_from_tensor_names
from apr.identity.quality import QualityScore

_FLAG = {
    "architecture": "--architecture",
    "hf_architecture": "--hf-architecture",
    "hf_model_type": "--hf-model-type",
    "license": "--license",
    "data_source": "--data-source",
    "data_license": "--data-license",
    "tokenizer": "--tokenizer",
}


@dataclass(frozen=True, slots=True)
class Advice:
    part: str
    points: int
    what: str
    command: str | None  # None: no stamp can earn these points
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"part": self.part, "points": self.points, "what": self.what, "command": self.command, "note": self.note}


def _suggested_value(field: str, family: str) -> str:
    """What to stamp for ``field``: the value the tensors prove, else a placeholder the user replaces."""
    if field == "architecture" and family != "unknown":
        return family
    if field == "hf_architecture":
        known = HF_CLASS_FOR_FAMILY.get(family)
        return known or "<HFClassForCausalLM>"
    if field == "hf_model_type":
        return HF_MODEL_TYPE_FOR_FAMILY.get(family) or "<model_type>"
    if field in ("license", "data_license"):
        return "<SPDX-ID>"
    if field == "data_source":
        return "<DATASET-ID|teacher-only>"
    if field == "tokenizer":
        return "<TOKENIZER_DIR>"
    return f"<{field}>"


def explain_quality(
    score: QualityScore, *, path: str, tensor_names: Iterable[str]
) -> list[Advice]:
    """One `Advice` per missing rule, each with the exact `apr stamp` command where one exists."""
    family = family_from_tensor_names(tensor_names)
    advice = []
    for miss in score.missing:
        if miss.field is None:
            note = (
                "restore the file from its source: the header was damaged"
                if miss.part == "physics"
                else "re-import the model from its Hugging Face folder (config.json carries the dimensions)"
            )
            advice.append(Advice(miss.part, miss.points, miss.what, None, note))
            continue
        value = _suggested_value(miss.field, family)
        command = f"apr stamp {shlex.quote(path)} {_FLAG[miss.field]} {shlex.quote(value) if not value.startswith('<') else value} --in-place"
        advice.append(Advice(miss.part, miss.points, miss.what, command))
    return advice


def license_notes(metadata: Mapping[str, Any]) -> list[str]:
    """What a reader of the file should know about its licenses beyond the score: a license or
    data license stored as free text (aprender accepts it, and it earns its points) is not an SPDX
    expression, so the Hub and SPDX tools cannot read it.

    Example:
        >>> license_notes({"data_license": "Apache-2.0 / permissive-aggregate"})[0][:58]
        "data_license 'Apache-2.0 / permissive-aggregate' is free t"
        >>> license_notes({"license": "MIT", "data_license": None})
        []
    """
    from apr.stamp.spdx import is_spdx_expression

    notes = []
    for key, flag in (("license", "--license"), ("data_license", "--data-license")):
        value = metadata.get(key)
        if isinstance(value, str) and value.strip() and not is_spdx_expression(value):
            notes.append(f"{key} {value!r} is free text, not an SPDX expression: the Hub and SPDX tools cannot "
                         f"read it (stamp {flag} with an SPDX expression or a LicenseRef- id if one applies)")
    return notes


def attainable_score(score: QualityScore) -> int:
    """The score the file reaches once every stampable field is stamped."""
    return score.score + sum(m.points for m in score.missing if m.field is not None)


__all__ = ["Advice", "attainable_score", "explain_quality", "license_notes"]
