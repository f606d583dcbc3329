"""`apr stamp`: patch a checkpoint's identity, provenance and tokenizer; tensor bytes untouched.

Example:
    >>> from apr.stamp import ProvenancePatch, stamp_file, validate_license
    >>> patch = ProvenancePatch(architecture="qwen2", hf_architecture="Qwen2ForCausalLM",
    ...                         license=validate_license("Apache-2.0"))
    >>> stamp_file("ckpt.apr", patch, output="stamped.apr").mode  # doctest: +SKIP
    'rewrite'
"""

from apr.stamp.file import StampResult, recover_file, stamp_file
from apr.stamp.journal import has_pending_journal, require_no_pending_journal
from apr.stamp.patch import ProvenancePatch, apply_patch
from apr.stamp.spdx import suggest_license, validate_license

__all__ = [
    "ProvenancePatch",
    "StampResult",
    "apply_patch",
    "has_pending_journal",
    "recover_file",
    "require_no_pending_journal",
    "stamp_file",
    "suggest_license",
    "validate_license",
]
