"""What `apr stamp` changes: a `ProvenancePatch` and its pure application to metadata and flags.

A field left ``None`` is left unchanged; a string replaces the value; an empty string clears the
field (aprender's ``Some("")``; the CLI refuses an empty license, see `apr.stamp.spdx`). A
tokenizer replaces every ``tokenizer.*`` key the file had (so no key of an older tokenizer
survives next to the new one) and sets ``HAS_VOCAB``. Nothing here touches a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from apr.format.header import Flags
from apr.tokenizer.embed import record_to_metadata  # the submodules: the package loads the BPE builder too
from apr.tokenizer.record import TokenizerRecord

# The string fields of a patch, in the order `apr stamp` prints them (aprender §2.4, then ours).
STRING_FIELDS: tuple[str, ...] = (
    "license",
    "data_source",
    "data_license",
    "hf_architecture",
    "hf_model_type",
    "architecture",
    "name",
    "description",
)
TOKENIZER_PREFIX = "tokenizer."


@dataclass(frozen=True, slots=True)
class ProvenancePatch:
    """The fields one `apr stamp` sets (aprender's ``ProvenancePatch``, §2.2, plus name/description).

    Attributes:
        license: SPDX expression of the weights' license, e.g. ``"Apache-2.0"``.
        data_source: the training data, e.g. ``"bigcode/the-stack-dedup"`` or ``"teacher-only"``.
        data_license: SPDX expression of the data's license.
        hf_architecture: the Hugging Face class, e.g. ``"Qwen2ForCausalLM"``.
        hf_model_type: config.json ``model_type``, e.g. ``"qwen2"``.
        architecture: the lowercase family slug `apr pretrain --init` dispatches on, e.g. ``"qwen2"``.
        name: the model's name.
        description: one line about the model.
        tokenizer: a tokenizer to embed (read with `apr.tokenizer.read_tokenizer_dir`).
    """

    license: str | None = None
    data_source: str | None = None
    data_license: str | None = None
    hf_architecture: str | None = None
    hf_model_type: str | None = None
    architecture: str | None = None
    name: str | None = None
    description: str | None = None
    tokenizer: TokenizerRecord | None = None

    def has_any(self) -> bool:
        """True iff at least one field is set (an empty patch is refused: nothing to write)."""
        return any(getattr(self, f.name) is not None for f in fields(self))


def apply_patch(metadata: Mapping[str, Any], flags: int, patch: ProvenancePatch) -> tuple[dict[str, Any], int]:
    """The metadata and header flags after ``patch``: pure, deterministic, idempotent.

    Flags keep every bit they had, gain ``HAS_VOCAB`` when a tokenizer is embedded, and always
    ``LAYOUT_ROW_MAJOR`` (as aprender's writer does).

    Example:
        >>> meta, flags = apply_patch({"architecture": "LlamaForCausalLM"}, 0x0400,
        ...                           ProvenancePatch(architecture="qwen2"))
        >>> meta["architecture"], hex(flags)
        ('qwen2', '0x400')
    """
    result = dict(metadata)
    for name in STRING_FIELDS:
        value = getattr(patch, name)
        if value is None:
            continue
        if value == "":
            result.pop(name, None)
        else:
            result[name] = value
    new_flags = int(flags) | Flags.LAYOUT_ROW_MAJOR
    if patch.tokenizer is not None:
        for key in [k for k in result if k.startswith(TOKENIZER_PREFIX)]:
            del result[key]
        result.update(record_to_metadata(patch.tokenizer))
        new_flags |= Flags.HAS_VOCAB
    return result, int(new_flags)


__all__ = ["STRING_FIELDS", "ProvenancePatch", "apply_patch"]
