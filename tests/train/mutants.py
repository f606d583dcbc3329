"""Deliberate faults for chinchilla-gate-v1 and training-v1: each must turn its falsifier's tests red."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from apr.train import chinchilla as _chinchilla
from apr.train.checkpoint import model_tensors as _real_model_tensors
from falsifiers import loader as _loader

_real_evaluate = _chinchilla.evaluate_chinchilla_gate
_real_load_bytes = _loader.load_bytes


def gate_never_raises(verdict: Any) -> None:
    """enforce_chinchilla_gate that lets every under-provisioned run through."""
    return


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
    return

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


# --- training-v1 and apr-pretrain-from-init-v1, second round (issue 9) -----------------------------


def weights_not_loaded(model: Any, tensors: Any) -> None:
    """load_weights that forgets to copy the --init tensors: the model keeps its seeded random init
    (the SPEC §86 symptom: a resumed run silently starts from scratch)."""
    return


def _real_checkpoint_metadata() -> Any:
    from apr.train.checkpoint import checkpoint_metadata

    return checkpoint_metadata


def metadata_without_tokenizer(config: Any, tokenizer: Any, **kwargs: Any) -> Any:
    """checkpoint_metadata called without the tokenizer: no tokenizer.* keys, no HAS_VOCAB."""
    return _real_checkpoint_metadata()(config, None, **kwargs)


def metadata_without_inherited(config: Any, tokenizer: Any, *, inherited: Any = None, **kwargs: Any) -> Any:
    """checkpoint_metadata that ignores the --init metadata: license and data provenance are lost."""
    return _real_checkpoint_metadata()(config, tokenizer, inherited=None, **kwargs)


def sidecar_without_grad_norm_max(path: Any, record: Any) -> None:
    """write_sidecar that drops grad_norm_max from the epoch's .metadata.json."""
    from apr.train.checkpoint import write_sidecar

    write_sidecar(path, {k: v for k, v in record.items() if k != "grad_norm_max"})


class _MathIsfiniteAlwaysTrue:
    """The `math` module as apr.train.loop sees it, with an isfinite that lets NaN and Inf through."""

    def __getattr__(self, name: str) -> Any:
        import math

        return getattr(math, name)

    @staticmethod
    def isfinite(x: Any) -> bool:
        return True


math_isfinite_always_true = _MathIsfiniteAlwaysTrue()  # the NaN guard checks nothing

DIVERGENCE_FACTOR_3 = 3.0  # GATE-TRAIN-005 fires at 3x the previous val_loss instead of 2x


def rope_interleaved(x: Any, cos: Any, sin: Any) -> Any:
    """apply_rope with GPT-J's interleaved pairs (2i, 2i+1) instead of rotate-half (i, i + D/2)."""
    import torch

    rotated = torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).flatten(-2)
    return x * cos + rotated * sin


def seed_without_torch(seed: int) -> None:
    """seed_everything that seeds Python and numpy but forgets torch: model init is not reproducible."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (1 << 32))


def _mode_defaults_scratch_warmup_100() -> Any:
    from apr.train.plan import MODE_DEFAULTS

    return {**MODE_DEFAULTS, "from-scratch": replace(MODE_DEFAULTS["from-scratch"], warmup_steps=100)}


MODE_DEFAULTS_SCRATCH_WARMUP_100 = _mode_defaults_scratch_warmup_100()  # finetune's warmup left in from-scratch


def batch_ignores_step(split: Any, *, seed: int, step: int, batch_size: int) -> Any:
    """train_batch that draws the step-0 batch at every step (the step is not mixed into the draw)."""
    from apr.train.batches import train_batch

    return train_batch(split, seed=seed, step=0, batch_size=batch_size)


def tokenizer_without_merges(record: Any) -> Any:
    """record_to_metadata that embeds the vocabulary but drops the BPE merges."""
    from apr.tokenizer import record_to_metadata

    keys = record_to_metadata(record)
    keys["tokenizer.merges"] = []
    return keys


def optimizer_maximizes(model: Any, *, lr: float, weight_decay: float, device: Any) -> Any:
    """make_optimizer with the update's sign flipped (AdamW(maximize=True)): training climbs the loss."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, maximize=True, **extra)


def optimizer_decays_everything(model: Any, *, lr: float, weight_decay: float, device: Any) -> Any:
    """make_optimizer with weight decay on every parameter, norms and biases included (one param group)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=weight_decay, **extra)


def tensors_in_bf16(model: Any) -> Any:
    """model_tensors that writes the weights rounded through bf16 (autocast precision), not the fp32 masters."""
    import torch

    rounded = {}
    for name, array in _real_model_tensors(model).items():
        rounded[name] = torch.from_numpy(array).to(torch.bfloat16).to(torch.float32).numpy().copy()
    return rounded


def no_config_differences(a: Any, b: Any) -> list[Any]:
    """config_differences that reports none: an --init whose dims differ from --config is accepted."""
    return []


def register_undocumented_flag(subparsers: Any) -> None:
    """`apr pretrain`'s parser with a flag added to the code but not to docs/training.md."""
    _real_register(subparsers)
    subparsers.choices["pretrain"].add_argument("--grad-accum-steps", type=int, default=1)


def _capture_load_weights() -> Any:
    from apr.train.loop import load_weights

    return load_weights


_real_load_weights = _capture_load_weights()


def load_weights_via_bf16(model: Any, tensors: Any) -> None:
    """load_weights that reads the --init tensors in bf16 (the autocast dtype) before copying them into
    the fp32 model: the loaded weights are rounded, no longer the file's bit for bit."""
    import torch

    rounded = {name: torch.from_numpy(array).to(torch.bfloat16).to(torch.float32).numpy() for name, array in tensors.items()}
    _real_load_weights(model, rounded)


def contract_read_after_unlogged_edit(raw: bytes, path: str, **kwargs: Any) -> Any:
    """falsifiers.loader.load_bytes reading a contract whose metadata.version was bumped without
    a changelog entry (the commonest spec-author slip): lint must call the contract invalid."""
    import re

    edited = re.sub(rb"(?m)^(  version: )(\S+)$", rb"\g<1>99.0.0", raw, count=1)
    return _real_load_bytes(edited, path, **kwargs)
