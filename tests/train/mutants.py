"""Deliberate faults for chinchilla-gate-v1 and training-v1: each must turn its falsifier's tests red."""

from __future__ import annotations

from typing import Any

from apr.train import chinchilla as _chinchilla

_real_evaluate = _chinchilla.evaluate_chinchilla_gate


def gate_never_raises(verdict: Any) -> None:
    """enforce_chinchilla_gate that lets every under-provisioned run through."""
    return None


def force_ignored(config: Any, *, force: bool, **kwargs: Any) -> Any:
    """evaluate_chinchilla_gate that ignores --force-under-provisioned."""
    return _real_evaluate(config, force=False, **kwargs)


def init_ignored(config: Any, *, has_init: bool, **kwargs: Any) -> Any:
    """evaluate_chinchilla_gate that gates runs without --init too."""
    return _real_evaluate(config, has_init=True, **kwargs)


def always_warns(self: Any) -> str:
    """ChinchillaVerdict.message that always has something to say."""
    return "under-provisioned (mutant)"


param_count_zero = property(lambda self: 0)  # ModelConfig.param_count


def constant_lr(self: Any, step: int) -> float:
    """LrSchedule.at without warmup or decay."""
    return self.lr_max


def _loss_off(*args: Any, **kwargs: Any) -> Any:
    from apr.train.loss import linear_cross_entropy

    return linear_cross_entropy(*args, **kwargs) * 1.01


loss_one_percent_high = _loss_off  # the model's fused loss, 1% too high


def no_rope(x: Any, cos: Any, sin: Any) -> Any:
    """apply_rope that leaves queries and keys unrotated."""
    return x


def init_path_unchecked(path: Any) -> Any:
    """check_init_path that neither checks existence nor the magic: failures come late, unexplained."""
    from pathlib import Path

    return Path(path)


def no_check(*args: Any, **kwargs: Any) -> None:
    """A validation step that checks nothing (the architecture gate, the tensor index check)."""
    return None

TOKENS_PER_PARAM_21 = 21  # the gate's boundary at 21 tokens per parameter instead of Chinchilla's 20


def always_two_bytes(vocab_size: int) -> int:
    """itemsize_for_vocab that stores every vocabulary in uint16 (ids >= 65536 wrap)."""
    return 2


def register_from_scratch_default(subparsers: Any) -> None:
    """`apr pretrain`'s parser with --mode defaulting to from-scratch instead of finetune."""
    from apr.cli import pretrain_cmd

    _real_register(subparsers)
    subparsers.choices["pretrain"].set_defaults(mode="from-scratch")
    _ = pretrain_cmd


def _capture_register() -> Any:
    from apr.cli import pretrain_cmd

    return pretrain_cmd.register


_real_register = _capture_register()
