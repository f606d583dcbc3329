"""Everything `apr pretrain` checks before it trains, resolved into one plan.

Nothing is written and no model is built until every flag, the ``--init`` checkpoint, the
Chinchilla gate, the tokenizer, the dataset and the run folder have been checked (safetensors'
"check everything before writing anything"). Mode defaults flip together (GATE-TRAIN-009):
``finetune`` means lr 5e-5, warmup 100, target 2.2; ``from-scratch`` means 3e-4, 1000, 3.0;
explicit flags win.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from apr.errors import OutputExistsError, UsageError
from apr.tokenizer import TokenizerRecord, read_tokenizer
from apr.train.batches import TokenSplit, split_tokens
from apr.format.digest import file_sha256
from apr.train.checkpoint import checkpoint_dir
from apr.train.chinchilla import ChinchillaVerdict, GateStatus, enforce_chinchilla_gate, evaluate_chinchilla_gate
from apr.train.config import ModelConfig
from apr.train.device import check_device_spec
from apr.train.init_checkpoint import InitCheckpoint, load_init_checkpoint
from apr.train.schedule import LrSchedule, default_lr_min
from apr.train.shards import open_dataset
from apr.train.train_state import TrainState

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModeDefaults:
    lr: float
    warmup_steps: int
    target_val_loss: float
    regime: str


MODE_DEFAULTS: dict[str, ModeDefaults] = {
    "finetune": ModeDefaults(lr=5e-5, warmup_steps=100, target_val_loss=2.2, regime="finetune"),
    "from-scratch": ModeDefaults(lr=3e-4, warmup_steps=1000, target_val_loss=3.0, regime="from_scratch"),
}


@dataclass(frozen=True, slots=True)
class PretrainOptions:
    """`apr pretrain`'s flags, as typed (aprender's names and defaults, §5.5)."""

    dataset: str
    run_dir: str
    tokenizer: str | None = None
    mode: str = "finetune"
    lr: float | None = None
    num_steps: int = 1000
    warmup_steps: int | None = None
    batch_size: int = 16
    seq_length: int = 1024
    steps_per_epoch: int = 100
    seed: int = 42
    target_val_loss: float | None = None
    device: str = "auto"
    init: str | None = None
    force_under_provisioned: bool = False
    val_shard: str | None = None
    config: str | None = None
    force: bool = False
    compile: bool = False
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    patience_epochs: int = 5
    min_epochs_before_early_stop: int = 3
    loss_chunk_rows: int | None = None
    resume: str | None = None  # a run folder, a checkpoint or its .state.json (apr.train.resume)
    save_every_steps: int | None = None
    keep_last: int | None = None
    allow_world_size_change: bool = False


@dataclass(frozen=True, slots=True)
class PretrainPlan:
    """A checked run: what to build, on what data, with which schedule."""

    options: PretrainOptions
    model_config: ModelConfig
    schedule: LrSchedule
    target_val_loss: float
    regime: str
    split: TokenSplit
    tokenizer: TokenizerRecord
    chinchilla: ChinchillaVerdict
    init: InitCheckpoint | None = field(default=None, repr=False)
    init_sha256: str | None = None
    warnings: tuple[str, ...] = ()
    fingerprint: dict[str, Any] = field(default_factory=dict, repr=False)  # what --resume compares
    resume: TrainState | None = field(default=None, repr=False)


def _check_flags(o: PretrainOptions) -> None:
    if o.mode not in MODE_DEFAULTS:
        raise UsageError(f"--mode {o.mode!r} is not finetune or from-scratch", field="--mode")
    for flag, value, minimum in (("--num-steps", o.num_steps, 0), ("--batch-size", o.batch_size, 1),
                                 ("--seq-length", o.seq_length, 1), ("--steps-per-epoch", o.steps_per_epoch, 1)):
        if value < minimum:
            raise UsageError(f"{flag} must be >= {minimum}, got {value}", field=flag)
    for flag, optional in (("--save-every-steps", o.save_every_steps), ("--keep-last", o.keep_last)):
        if optional is not None and optional < 1:
            raise UsageError(f"{flag} must be >= 1, got {optional}", field=flag)
    if o.resume is not None and o.num_steps == 0:
        raise UsageError("--resume continues training; --num-steps 0 trains nothing", field="--num-steps",
                         hint="to evaluate a checkpoint, use --init CKPT --num-steps 0")
    if o.target_val_loss is not None and not (math.isfinite(o.target_val_loss) and o.target_val_loss > 0):
        raise UsageError(f"--target-val-loss must be > 0, got {o.target_val_loss}", field="--target-val-loss")
    check_device_spec(o.device)


def plan_pretrain(options: PretrainOptions, *, world_size: int = 1) -> PretrainPlan:
    """Check a run completely and resolve it (no file written, no model built).

    Raises:
        UsageError, InitCheckpointError, ArchitectureMismatchError, ChinchillaGateError,
        TokenizerError, DatasetError, ModelConfigError, OutputExistsError: the first problem found;
            the ``--init`` checks come first, so a bad init never waits on anything else.
    """
    from apr.train.ddp import check_global_batch

    o = options
    _check_flags(o)
    check_global_batch(o.batch_size, world_size)
    warnings: list[str] = []
    target = ModelConfig.from_config_file(o.config) if o.config else None
    init = load_init_checkpoint(o.init, target=target) if o.init else None
    if init is None and target is None:
        raise UsageError("a from-scratch run needs the model's shape", field="--config",
                         hint="pass --config config.json (a Hugging Face llama/qwen2/qwen3 config), or --init FILE.apr")
    config = init.config if init is not None else target
    assert config is not None

    verdict = evaluate_chinchilla_gate(config, num_steps=o.num_steps, batch_size=o.batch_size,
                                       seq_length=o.seq_length, has_init=init is not None,
                                       force=o.force_under_provisioned)
    enforce_chinchilla_gate(verdict)
    if verdict.status is GateStatus.BYPASSED:
        warnings.append(verdict.message())
    if init is not None and o.mode == "from-scratch":
        warnings.append("--mode from-scratch with --init: the schedule is sized for a cold start "
                        "(apr-pretrain-from-init-v1 init_flag_signature)")

    tokenizer = _resolve_tokenizer(o, init)
    if tokenizer.vocab_size > config.vocab_size:
        raise UsageError(
            f"the tokenizer has {tokenizer.vocab_size} tokens but the model's vocab_size is {config.vocab_size}; "
            f"ids past {config.vocab_size - 1} would index outside the embedding", field="--tokenizer",
            hint="use the model's own tokenizer, or a config with a larger vocab_size",
        )
    if o.seq_length > config.max_position_embeddings:
        raise UsageError(f"--seq-length {o.seq_length} exceeds the model's max_position_embeddings "
                         f"{config.max_position_embeddings}", field="--seq-length")

    train_segments, dataset_vocab = open_dataset(o.dataset)
    _check_vocab(dataset_vocab, config, "--dataset")
    val_segments = None
    if o.val_shard:
        val_segments, val_vocab = open_dataset(o.val_shard)
        _check_vocab(val_vocab, config, "--val-shard")
    split = split_tokens(train_segments, val_segments, batch_size=o.batch_size, seq_length=o.seq_length)

    defaults = MODE_DEFAULTS[o.mode]
    lr = o.lr if o.lr is not None else defaults.lr
    schedule = LrSchedule(lr_max=lr, lr_min=default_lr_min(lr),
                          warmup_steps=o.warmup_steps if o.warmup_steps is not None else defaults.warmup_steps,
                          total_steps=o.num_steps)
    target_val_loss = o.target_val_loss if o.target_val_loss is not None else defaults.target_val_loss
    init_sha256 = file_sha256(o.init) if o.init else None
    fingerprint = _fingerprint(o, config, schedule, target_val_loss, init_sha256, world_size)
    resume = None
    if o.resume is not None:
        from apr.train.resume import resolve_resume

        resume = resolve_resume(o.resume, fingerprint=fingerprint, run_dir=o.run_dir, force=o.force,
                                allow_world_size_change=o.allow_world_size_change)
    _check_run_dir(o, resume)
    for message in warnings:
        logger.warning(message)
    return PretrainPlan(
        options=o, model_config=config, schedule=schedule, target_val_loss=target_val_loss,
        regime=defaults.regime, split=split, tokenizer=tokenizer, chinchilla=verdict, init=init,
        init_sha256=init_sha256, warnings=tuple(warnings), fingerprint=fingerprint, resume=resume,
    )


def _fingerprint(o: PretrainOptions, config: ModelConfig, schedule: LrSchedule, target_val_loss: float,
                 init_sha256: str | None, world_size: int) -> dict[str, Any]:
    """The run's identity for ``--resume`` (`apr.train.resume.run_fingerprint`)."""
    from apr.train.resume import run_fingerprint

    settings = {**asdict(o), "lr_max": schedule.lr_max, "lr_min": schedule.lr_min,
                "warmup_steps": schedule.warmup_steps, "target_val_loss": target_val_loss, "init_sha256": init_sha256}
    return run_fingerprint(model_config=config.to_dict(), dataset=o.dataset, val_shard=o.val_shard,
                           world_size=world_size, settings=settings)


def _resolve_tokenizer(o: PretrainOptions, init: InitCheckpoint | None) -> TokenizerRecord:
    if o.tokenizer:
        return read_tokenizer(o.tokenizer)
    if init is not None and init.tokenizer is not None:
        return init.tokenizer
    raise UsageError("no tokenizer: checkpoints must embed one", field="--tokenizer",
                     hint="pass --tokenizer DIR (the folder with tokenizer.json) or a checkpoint that embeds one")


def _check_vocab(vocab_size: int, config: ModelConfig, flag: str) -> None:
    if vocab_size > config.vocab_size:
        raise UsageError(f"{flag} was tokenized with a {vocab_size}-token vocabulary, larger than the model's "
                         f"{config.vocab_size}", field=flag, hint="re-tokenize with the model's tokenizer")


def _check_run_dir(o: PretrainOptions, resume: TrainState | None = None) -> None:
    """Existing checkpoints need --force, unless the run resumes from its own folder (the later ones
    were refused by `apr.train.resume.resolve_resume`)."""
    run_dir = Path(o.run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError("--run-dir exists and is not a folder", path=run_dir, field="--run-dir")
    existing = sorted(checkpoint_dir(run_dir).glob("*.apr"))  # nothing when there is no ckpt/ folder
    continues_here = resume is not None and resume.checkpoint.parent.resolve() == checkpoint_dir(run_dir).resolve()
    if existing and not o.force and not continues_here:
        raise OutputExistsError(
            f"--run-dir already holds {len(existing)} checkpoint(s) ({existing[0].name}, ...)",
            path=os.fspath(run_dir), field="--run-dir",
            hint="pick a new --run-dir, or pass --force to overwrite its checkpoints",
        )
