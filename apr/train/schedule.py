"""The learning-rate schedule as a pure function of the step (nanoGPT's ``get_lr``).

Linear warmup to ``lr_max`` over ``warmup_steps``, then a cosine from ``lr_max`` down to
``lr_min`` over the remaining steps, then ``lr_min``. Warmup counts from ``step + 1`` so the first
step already trains (aprender's ``lr_max * step / warmup`` spends step 0 at lr 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from apr.errors import UsageError


def default_lr_min(lr_max: float) -> float:
    """aprender's floor: 1% of the peak, never below 1e-7."""
    return max(lr_max * 0.01, 1e-7)


@dataclass(frozen=True, slots=True)
class LrSchedule:
    """Warmup then cosine decay.

    Example:
        >>> s = LrSchedule(lr_max=1e-3, lr_min=1e-5, warmup_steps=10, total_steps=100)
        >>> s.at(9), round(s.at(100), 8)
        (0.001, 1e-05)
    """

    lr_max: float
    lr_min: float
    warmup_steps: int
    total_steps: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lr_max) and self.lr_max > 0):
            raise UsageError(f"--lr must be a positive number, got {self.lr_max!r}", field="--lr")
        if not (0 <= self.lr_min <= self.lr_max):
            raise UsageError(f"lr_min {self.lr_min!r} must lie in [0, lr {self.lr_max!r}]", field="--lr")
        if self.warmup_steps < 0:
            raise UsageError(f"--warmup-steps must be >= 0, got {self.warmup_steps}", field="--warmup-steps")
        if self.total_steps < 0:
            raise UsageError(f"--num-steps must be >= 0, got {self.total_steps}", field="--num-steps")

    def at(self, step: int) -> float:
        """Learning rate for optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return self.lr_max * (step + 1) / self.warmup_steps
        if step >= self.total_steps:
            return self.lr_min
        # here warmup_steps <= step < total_steps, so the decay window is not empty
        progress = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)  # in [0, 1)
        return self.lr_min + 0.5 * (1.0 + math.cos(math.pi * progress)) * (self.lr_max - self.lr_min)
