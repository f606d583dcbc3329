"""The Chinchilla gate in its §87 form (chinchilla-gate-v1; docs/aprender-format.md §5.6).

With ``--init``, the planned training tokens D = num_steps x batch_size x seq_length must reach
20 x N, N estimated as aprender estimates it. Below that the run is refused, naming the smallest
``--num-steps`` that passes; ``--force-under-provisioned`` turns the refusal into a loud BYPASSED
warning; at or above 20 x N the gate is silent. Without ``--init`` it does not run
(INV-CHINCHILLA-003). The comparison is done in integers, so the boundary is exact.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from apr.errors import ChinchillaGateError
from apr.train.config import ModelConfig

TOKENS_PER_PARAM = 20  # Hoffmann et al. 2022 (arXiv:2203.15556): compute-optimal D = 20 N


def estimate_param_count(config: ModelConfig) -> int:
    """aprender's estimate: V*H + L*(4*H^2 + 3*H*I) + H (embedding once, GQA ignored)."""
    h = config.hidden_size
    return config.vocab_size * h + config.num_layers * (4 * h * h + 3 * h * config.intermediate_size) + h


def chinchilla_ratio(tokens: int, params: int) -> float:
    """D / N as reported (``inf`` for N = 0); the gate itself compares D with 20 N in integers."""
    return tokens / params if params else math.inf


class GateStatus(str, enum.Enum):
    PASSED = "PASSED"  # D >= 20 N: silent
    BYPASSED = "BYPASSED"  # D < 20 N with --force-under-provisioned: warned
    REJECTED = "REJECTED"  # D < 20 N: the run does not start
    SKIPPED = "SKIPPED"  # no --init


@dataclass(frozen=True, slots=True)
class ChinchillaVerdict:
    """The gate's decision and its numbers (reported in ``apr pretrain --json``)."""

    status: GateStatus
    params: int
    tokens: int
    suggested_steps: int

    @property
    def ratio(self) -> float:
        return chinchilla_ratio(self.tokens, self.params)

    def to_json(self) -> dict[str, object]:
        return {"status": self.status.value, "N": self.params, "D": self.tokens, "ratio": self.ratio,
                "threshold": TOKENS_PER_PARAM, "suggested_num_steps": self.suggested_steps}

    def message(self) -> str:
        d, n = self.tokens, self.params
        if self.status is GateStatus.REJECTED:
            return (
                f"[P0-J'] Chinchilla hard gate (chinchilla-gate-v1, FALSIFY-CHINCHILLA-001): train tokens "
                f"D = {d} ({d / 1e6:.1f}M) is {self.ratio:.3f}x param count N = {n} ({n / 1e6:.1f}M); the "
                f"compute-optimal target is D >= {TOKENS_PER_PARAM}*N (Hoffmann et al. 2022, arXiv:2203.15556). "
                f"Run REJECTED: increase --num-steps to {self.suggested_steps}, widen the corpus, or shrink the model."
            )
        if self.status is GateStatus.BYPASSED:
            return (
                f"[P0-J'] Chinchilla gate BYPASSED via --force-under-provisioned: D = {d} ({d / 1e6:.1f}M) is "
                f"{self.ratio:.3f}x N = {n} ({n / 1e6:.1f}M), under {TOKENS_PER_PARAM}x; --num-steps "
                f"{self.suggested_steps} would reach it. You explicitly opted in."
            )
        return ""


def suggested_num_steps(params: int, batch_size: int, seq_length: int) -> int:
    """The smallest step count with D >= 20 N (ceil-division, so the suggestion itself passes)."""
    per_step = batch_size * seq_length
    return -(-TOKENS_PER_PARAM * params // per_step)


def evaluate_chinchilla_gate(
    config: ModelConfig, *, num_steps: int, batch_size: int, seq_length: int, has_init: bool, force: bool
) -> ChinchillaVerdict:
    """Decide the gate (pure; `enforce_chinchilla_gate` raises on a rejection)."""
    params = estimate_param_count(config)
    tokens = num_steps * batch_size * seq_length
    suggested = suggested_num_steps(params, batch_size, seq_length)
    if not has_init:
        status = GateStatus.SKIPPED
    elif tokens >= TOKENS_PER_PARAM * params:
        status = GateStatus.PASSED
    else:
        status = GateStatus.BYPASSED if force else GateStatus.REJECTED
    return ChinchillaVerdict(status=status, params=params, tokens=tokens, suggested_steps=suggested)


def enforce_chinchilla_gate(verdict: ChinchillaVerdict) -> None:
    """Raise `ChinchillaGateError` for a rejected verdict (exit 5), naming the passing --num-steps."""
    if verdict.status is GateStatus.REJECTED:
        raise ChinchillaGateError(
            verdict.message(), ratio=verdict.ratio, suggested_steps=verdict.suggested_steps, field="--num-steps",
            hint=f"--num-steps {verdict.suggested_steps}, or --force-under-provisioned for an ablation or smoke run",
        )
