"""Deliberate faults for publish-readiness-v1: a readiness gate that stops checking.

`apr.readiness.gates.GATES` holds the gate functions themselves, so a mutant replaces the whole
tuple with one where a single gate always passes.
"""

from __future__ import annotations

from typing import Any

from apr.qa.gate import GateResult
from apr.readiness import gates as _gates


def _waved(name: str) -> Any:
    def gate(path: str, options: Any, meta: dict[str, Any]) -> GateResult:
        return GateResult(name, True, False, "mutant: not checked")

    return gate


def _without(*names: str) -> tuple[tuple[str, Any], ...]:
    return tuple((name, _waved(name) if name in names else gate) for name, gate in _gates.GATES)


GATES_WITHOUT_VALIDATE = _without("validate")
GATES_WITHOUT_QUALITY = _without("quality")
GATES_WITHOUT_QA = _without("qa")
GATES_WITHOUT_MODEL_CARD = _without("model_card")
GATES_WITHOUT_SMOKE_RUN = _without("smoke_run")


def constant_digest(path: str, chunk: int = 0) -> str:
    """file_sha256 that gives every file the same digest."""
    return "0" * 64


def _hf_token_wrong_variable(path: str, options: Any, meta: dict[str, Any]) -> GateResult:
    """The hf_token gate reading HUGGING_FACE_HUB_TOKEN instead of HF_TOKEN."""
    import os

    if not options.require_token:
        return GateResult.skip("hf_token", "not required (pass --require-token to check HF_TOKEN)")
    token = os.environ.get("HUGGING_FACE_HUB_TOKEN", "")
    if token:
        return GateResult("hf_token", True, False, f"HF_TOKEN set (length={len(token)})")
    return GateResult("hf_token", False, False, "HF_TOKEN is not set", fix="export HF_TOKEN=<your token>")


GATES_HF_TOKEN_WRONG_VARIABLE = tuple((name, _hf_token_wrong_variable if name == "hf_token" else gate)
                                      for name, gate in _gates.GATES)
