"""`apr stamp`: patch a checkpoint's identity, provenance and tokenizer; tensor bytes untouched.

Example:
    >>> from apr.stamp import ProvenancePatch, stamp_file, validate_license
    >>> patch = ProvenancePatch(architecture="qwen2", hf_architecture="Qwen2ForCausalLM",
    ...                         license=validate_license("Apache-2.0"))
    >>> stamp_file("ckpt.apr", patch, output="stamped.apr").mode  # doctest: +SKIP
    'rewrite'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from apr.stamp.file import StampResult, recover_file, stamp_file
    from apr.stamp.journal import has_pending_journal, require_no_pending_journal
    from apr.stamp.patch import ProvenancePatch, apply_patch
    from apr.stamp.spdx import suggest_license, validate_data_license, validate_license

# Loaded on first use (PEP 562): every command that reads a checkpoint imports `apr.stamp.journal`
# to refuse a half-stamped file, and should not pay for the planner, the SPDX list and the rewriter.
_EXPORTS = {
    "StampResult": "apr.stamp.file", "recover_file": "apr.stamp.file", "stamp_file": "apr.stamp.file",
    "has_pending_journal": "apr.stamp.journal", "require_no_pending_journal": "apr.stamp.journal",
    "ProvenancePatch": "apr.stamp.patch", "apply_patch": "apr.stamp.patch",
    "suggest_license": "apr.stamp.spdx", "validate_license": "apr.stamp.spdx",
    "validate_data_license": "apr.stamp.spdx",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'apr.stamp' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

__all__ = [
    "ProvenancePatch",
    "StampResult",
    "apply_patch",
    "has_pending_journal",
    "recover_file",
    "require_no_pending_journal",
    "stamp_file",
    "suggest_license",
    "validate_data_license",
    "validate_license",
]
