"""`apr pretrain`'s plan and schedule: every flag bound below/at/above, the mode defaults and which
explicit flag wins, the order of the checks, and the learning rate at its boundary steps (issue 23).
Uses the session's tokenizer and token shards (no training); the --init file is written by hand."""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from apr.errors import AprFileNotFoundError, ChinchillaGateError, OutputExistsError, UsageError
from apr.format import save_file
from apr.tokenizer import read_tokenizer
from apr.train.checkpoint import checkpoint_metadata
from apr.train.chinchilla import GateStatus
from apr.train.config import ModelConfig
from apr.train.plan import MODE_DEFAULTS, ModeDefaults, PretrainOptions, _check_vocab, plan_pretrain
from apr.train.schedule import LrSchedule, default_lr_min

from train_fixtures import TINY_CONFIG

# --- the schedule ---------------------------------------------------------------------------------


def sched(lr_max=1.0, lr_min=0.0, warmup_steps=0, total_steps=4) -> LrSchedule:
    return LrSchedule(lr_max=lr_max, lr_min=lr_min, warmup_steps=warmup_steps, total_steps=total_steps)


@pytest.mark.parametrize(("changes", "field", "text"), [
    ({"lr_max": 0.0}, "--lr", "--lr must be a positive number, got 0.0"),
    ({"lr_max": -1.0}, "--lr", "--lr must be a positive number, got -1.0"),
    ({"lr_max": math.inf}, "--lr", "--lr must be a positive number, got inf"),
    ({"lr_max": math.nan}, "--lr", "--lr must be a positive number, got nan"),
    ({"lr_min": -1e-12}, "--lr", "lr_min -1e-12 must lie in [0, lr 1.0]"),
    ({"lr_min": 1.5}, "--lr", "lr_min 1.5 must lie in [0, lr 1.0]"),
    ({"warmup_steps": -1}, "--warmup-steps", "--warmup-steps must be >= 0, got -1"),
    ({"total_steps": -1}, "--num-steps", "--num-steps must be >= 0, got -1"),
])
def test_schedule_refusals(changes: dict, field: str, text: str) -> None:
    with pytest.raises(UsageError) as info:
        sched(**changes)
    assert info.value.message == text and info.value.field == field


@pytest.mark.parametrize("changes", [{"lr_max": 5e-324}, {"lr_min": 0.0}, {"lr_min": 1.0}, {"warmup_steps": 0},
                                     {"total_steps": 0}])
def test_schedule_boundaries_accepted(changes: dict) -> None:
    assert sched(**changes).lr_max > 0


def test_warmup_values_exactly() -> None:
    s = sched(lr_max=1.0, lr_min=0.0, warmup_steps=4, total_steps=8)
    assert [s.at(step) for step in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert s.at(4) == 1.0  # the cosine starts at the peak


def test_cosine_values_exactly() -> None:
    s = sched(lr_max=3.0, lr_min=1.0, warmup_steps=0, total_steps=4)
    for step in range(4):
        assert s.at(step) == pytest.approx(1.0 + 0.5 * (1 + math.cos(math.pi * step / 4)) * 2.0, rel=1e-15)
    assert s.at(4) == 1.0 and s.at(10**6) == 1.0


def test_cosine_after_warmup_uses_the_decay_window() -> None:
    s = sched(lr_max=1.0, lr_min=0.0, warmup_steps=2, total_steps=6)
    assert s.at(4) == pytest.approx(0.5 * (1 + math.cos(math.pi * 2 / 4)), rel=1e-15)
    assert s.at(5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 4)), rel=1e-15)


def test_warmup_longer_than_the_run_wins() -> None:  # step < warmup is checked before the end
    s = sched(lr_max=1.0, lr_min=0.5, warmup_steps=10, total_steps=2)
    assert s.at(5) == 0.6 and s.at(9) == 1.0 and s.at(10) == 0.5


@pytest.mark.parametrize(("lr", "floor"), [(1.0, 0.01), (2e-5, 2e-7), (1e-5, 1e-7), (5e-6, 1e-7)])
def test_default_lr_min(lr: float, floor: float) -> None:
    assert default_lr_min(lr) == pytest.approx(floor, rel=1e-12)


# --- the plan -------------------------------------------------------------------------------------

def test_mode_defaults() -> None:
    assert MODE_DEFAULTS == {
        "finetune": ModeDefaults(lr=5e-5, warmup_steps=100, target_val_loss=2.2, regime="finetune"),
        "from-scratch": ModeDefaults(lr=3e-4, warmup_steps=1000, target_val_loss=3.0, regime="from_scratch"),
    }


def test_option_defaults() -> None:
    o = PretrainOptions(dataset="d", run_dir="r")
    assert (o.tokenizer, o.mode, o.lr, o.num_steps, o.warmup_steps, o.batch_size, o.seq_length, o.steps_per_epoch,
            o.seed, o.target_val_loss, o.device, o.init, o.force_under_provisioned, o.val_shard, o.config, o.force,
            o.compile, o.weight_decay, o.grad_clip, o.patience_epochs, o.min_epochs_before_early_stop,
            o.loss_chunk_rows) == (None, "finetune", None, 1000, None, 16, 1024, 100, 42, None, "auto", None, False,
                                   None, None, False, False, 0.01, 1.0, 5, 3, None)


@pytest.fixture()
def options(tmp_path: Path, dataset_dir: Path, tokenizer_dir: Path, config_path: Path) -> PretrainOptions:
    return PretrainOptions(dataset=str(dataset_dir), run_dir=str(tmp_path / "run"), tokenizer=str(tokenizer_dir),
                           config=str(config_path), num_steps=4, steps_per_epoch=1, batch_size=8, seq_length=64,
                           device="cpu")


@pytest.fixture()
def init_file(tmp_path: Path, tokenizer_dir: Path) -> Path:
    config = ModelConfig.from_hf_config(TINY_CONFIG)
    rng = np.random.default_rng(1)
    tensors = {name: (0.02 * rng.standard_normal(shape)).astype(np.float32)
               for name, shape in config.parameter_shapes().items()}
    metadata, flags = checkpoint_metadata(config, read_tokenizer(str(tokenizer_dir)))
    path = tmp_path / "init.apr"
    save_file(tensors, path, metadata, flags)
    return path


def usage(options: PretrainOptions, **changes) -> UsageError:
    with pytest.raises(UsageError) as info:
        plan_pretrain(replace(options, **changes))
    return info.value


@pytest.mark.parametrize(("flag", "attribute", "minimum"), [("--num-steps", "num_steps", 0),
                                                            ("--batch-size", "batch_size", 1),
                                                            ("--seq-length", "seq_length", 1),
                                                            ("--steps-per-epoch", "steps_per_epoch", 1)])
def test_integer_flags_below_their_minimum(options: PretrainOptions, flag: str, attribute: str,
                                           minimum: int) -> None:
    error = usage(options, **{attribute: minimum - 1})
    assert error.message == f"{flag} must be >= {minimum}, got {minimum - 1}" and error.field == flag


def test_flags_at_their_minimum(options: PretrainOptions) -> None:
    plan = plan_pretrain(replace(options, num_steps=0, steps_per_epoch=1))
    assert plan.schedule.total_steps == 0
    plan = plan_pretrain(replace(options, batch_size=1, seq_length=1))
    assert plan.split is not None


@pytest.mark.parametrize(("flag", "attribute"), [("--save-every-steps", "save_every_steps"),
                                               ("--keep-last", "keep_last")])
def test_optional_counts_below_one_are_refused(options: PretrainOptions, flag: str, attribute: str) -> None:
    for bad in (0, -3):
        error = usage(options, **{attribute: bad})
        assert (error.message, error.field) == (f"{flag} must be >= 1, got {bad}", flag)
    assert getattr(plan_pretrain(replace(options, **{attribute: 1})).options, attribute) == 1  # at the bound
    assert getattr(plan_pretrain(replace(options, **{attribute: None})).options, attribute) is None  # unset


def test_resume_with_no_steps_is_refused_with_the_evaluation_hint(options: PretrainOptions, tmp_path: Path) -> None:
    error = usage(options, resume=str(tmp_path / "run"), num_steps=0)
    assert (error.message, error.field, error.hint) == (
        "--resume continues training; --num-steps 0 trains nothing", "--num-steps",
        "to evaluate a checkpoint, use --init CKPT --num-steps 0")
    # one step is a run to continue: --resume goes on to look for the run (there is none here)
    with pytest.raises(AprFileNotFoundError):
        plan_pretrain(replace(options, resume=str(tmp_path / "run"), num_steps=1))
    assert plan_pretrain(replace(options, num_steps=0)).schedule.total_steps == 0  # no --resume: evaluation


def test_the_resume_fingerprint_holds_the_schedule_and_the_init(options: PretrainOptions, init_file: Path) -> None:
    """The keys `apr pretrain --resume` compares (apr.train.resume.RUN_SETTINGS), from the resolved plan."""
    plan = plan_pretrain(replace(options, init=str(init_file), config=None, warmup_steps=3,
                                 force_under_provisioned=True))
    run = plan.fingerprint["run"]
    assert run["warmup_steps"] == 3 == plan.schedule.warmup_steps
    assert run["lr_max"] == plan.schedule.lr_max and run["lr_min"] == plan.schedule.lr_min
    assert run["init_sha256"] == hashlib.sha256(init_file.read_bytes()).hexdigest()
    scratch = plan_pretrain(options)  # from scratch, the mode's warm-up: the resolved value, not the flag's None
    assert scratch.fingerprint["run"]["init_sha256"] is None
    assert options.warmup_steps is None
    assert scratch.fingerprint["run"]["warmup_steps"] == MODE_DEFAULTS[options.mode].warmup_steps


def test_unknown_mode(options: PretrainOptions) -> None:
    error = usage(options, mode="scratch")
    assert error.message == "--mode 'scratch' is not finetune or from-scratch" and error.field == "--mode"


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_target_val_loss_must_be_positive_and_finite(options: PretrainOptions, bad: float) -> None:
    error = usage(options, target_val_loss=bad)
    assert error.message == f"--target-val-loss must be > 0, got {bad}" and error.field == "--target-val-loss"


def test_device_text_is_checked(options: PretrainOptions) -> None:
    assert usage(options, device="gpu").field == "--device"


def test_global_batch_must_divide(options: PretrainOptions) -> None:
    with pytest.raises(UsageError) as info:
        plan_pretrain(replace(options, batch_size=9), world_size=2)
    assert info.value.field == "--batch-size"
    assert plan_pretrain(replace(options, batch_size=8), world_size=2).options.batch_size == 8


def test_a_run_needs_a_shape(options: PretrainOptions) -> None:
    error = usage(options, config=None)
    assert error.message == "a from-scratch run needs the model's shape" and error.field == "--config"
    assert error.hint == ("pass --config config.json (a Hugging Face llama/qwen2/qwen3 config), "
                          "or --init FILE.apr")


@pytest.mark.parametrize(("mode", "lr", "warmup", "target", "regime"), [("finetune", 5e-5, 100, 2.2, "finetune"),
                                                                       ("from-scratch", 3e-4, 1000, 3.0,
                                                                        "from_scratch")])
def test_mode_defaults_flip_together(options: PretrainOptions, mode: str, lr: float, warmup: int, target: float,
                                     regime: str) -> None:
    plan = plan_pretrain(replace(options, mode=mode))
    assert plan.schedule == LrSchedule(lr_max=lr, lr_min=default_lr_min(lr), warmup_steps=warmup, total_steps=4)
    assert (plan.target_val_loss, plan.regime) == (target, regime)
    assert plan.model_config == ModelConfig.from_hf_config(TINY_CONFIG)
    assert plan.init is None and plan.init_sha256 is None and plan.warnings == ()
    assert plan.chinchilla.status is GateStatus.SKIPPED
    assert plan.tokenizer.vocab_size == read_tokenizer(options.tokenizer).vocab_size


def test_explicit_flags_win(options: PretrainOptions) -> None:
    plan = plan_pretrain(replace(options, mode="from-scratch", lr=1e-2, warmup_steps=0, target_val_loss=1.5))
    assert plan.schedule == LrSchedule(lr_max=1e-2, lr_min=1e-4, warmup_steps=0, total_steps=4)
    assert plan.target_val_loss == 1.5 and plan.regime == "from_scratch"


def test_seq_length_up_to_the_context(options: PretrainOptions) -> None:
    context = TINY_CONFIG["max_position_embeddings"]
    error = usage(options, seq_length=context + 1)
    assert error.field == "--seq-length"
    assert error.message == f"--seq-length {context + 1} exceeds the model's max_position_embeddings {context}"
    assert plan_pretrain(replace(options, seq_length=context, batch_size=1)).options.seq_length == context


def test_tokenizer_larger_than_the_model(options: PretrainOptions, tmp_path: Path) -> None:
    vocab = read_tokenizer(options.tokenizer).vocab_size
    config = tmp_path / "small.json"
    config.write_text(__import__("json").dumps({**TINY_CONFIG, "vocab_size": vocab - 1}))
    error = usage(options, config=str(config))
    assert error.field == "--tokenizer"
    assert error.message == (f"the tokenizer has {vocab} tokens but the model's vocab_size is {vocab - 1}; "
                             f"ids past {vocab - 2} would index outside the embedding")
    assert error.hint == "use the model's own tokenizer, or a config with a larger vocab_size"


def test_check_vocab_at_and_past() -> None:
    config = ModelConfig.from_hf_config(TINY_CONFIG)
    _check_vocab(512, config, "--dataset")  # equal: fine
    with pytest.raises(UsageError) as info:
        _check_vocab(513, config, "--val-shard")
    assert info.value.field == "--val-shard"
    assert info.value.message == "--val-shard was tokenized with a 513-token vocabulary, larger than the model's 512"
    assert info.value.hint == "re-tokenize with the model's tokenizer"


def test_no_tokenizer_anywhere(options: PretrainOptions) -> None:
    error = usage(options, tokenizer=None)
    assert error.message == "no tokenizer: checkpoints must embed one" and error.field == "--tokenizer"
    assert error.hint == ("pass --tokenizer DIR (the folder with tokenizer.json) or a checkpoint that embeds one")


def test_val_shard_is_split_apart(options: PretrainOptions, val_dir: Path) -> None:
    without = plan_pretrain(options)
    with_val = plan_pretrain(replace(options, val_shard=str(val_dir)))
    # with a --val-shard the training split keeps every token of --dataset
    assert with_val.split.train_tokens > without.split.train_tokens


def test_run_dir_that_is_a_file(options: PretrainOptions, tmp_path: Path) -> None:
    (tmp_path / "run").write_text("x")
    error = usage(options)
    assert error.message == "--run-dir exists and is not a folder" and error.field == "--run-dir"
    assert error.path == options.run_dir


def test_run_dir_with_checkpoints(options: PretrainOptions, tmp_path: Path) -> None:
    ckpt = tmp_path / "run" / "ckpt"
    ckpt.mkdir(parents=True)
    (ckpt / "notes.txt").write_text("x")
    assert plan_pretrain(options).options is options  # no checkpoint: fine
    (ckpt / "epoch-002.apr").write_bytes(b"")
    (ckpt / "epoch-001.apr").write_bytes(b"")
    with pytest.raises(OutputExistsError) as info:
        plan_pretrain(options)
    assert info.value.message == "--run-dir already holds 2 checkpoint(s) (epoch-001.apr, ...)"
    assert info.value.field == "--run-dir" and info.value.path == options.run_dir
    assert info.value.hint == "pick a new --run-dir, or pass --force to overwrite its checkpoints"
    assert plan_pretrain(replace(options, force=True)).options.force


# --- with --init ----------------------------------------------------------------------------------

def test_init_under_provisioned_is_rejected(options: PretrainOptions, init_file: Path) -> None:
    with pytest.raises(ChinchillaGateError):
        plan_pretrain(replace(options, init=str(init_file), config=None))


def test_init_bypassed_warns_and_records(options: PretrainOptions, init_file: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="apr.train.plan"):
        plan = plan_pretrain(replace(options, init=str(init_file), config=None, tokenizer=None, mode="from-scratch",
                                     force_under_provisioned=True))
    assert plan.chinchilla.status is GateStatus.BYPASSED
    assert plan.init is not None and plan.model_config == plan.init.config
    assert plan.tokenizer == plan.init.tokenizer  # the embedded one
    assert plan.init_sha256 == hashlib.sha256(init_file.read_bytes()).hexdigest()
    assert plan.warnings == (plan.chinchilla.message(),
                             "--mode from-scratch with --init: the schedule is sized for a cold start "
                             "(apr-pretrain-from-init-v1 init_flag_signature)")
    assert [record.getMessage() for record in caplog.records if record.name == "apr.train.plan"] == list(plan.warnings)


def test_init_enough_tokens_passes_silently(options: PretrainOptions, init_file: Path) -> None:
    config = ModelConfig.from_hf_config(TINY_CONFIG)
    plan = plan_pretrain(replace(options, init=str(init_file), num_steps=10_000))  # D = 5.1M > 20 N
    assert plan.chinchilla.status is GateStatus.PASSED and plan.warnings == ()
    assert plan.model_config == config  # --config and --init agree


def test_init_and_a_different_config(options: PretrainOptions, init_file: Path, tmp_path: Path) -> None:
    from apr.errors import InitCheckpointError

    other = tmp_path / "other.json"
    other.write_text(__import__("json").dumps({**TINY_CONFIG, "num_hidden_layers": 3}))
    with pytest.raises(InitCheckpointError):
        plan_pretrain(replace(options, init=str(init_file), config=str(other), force_under_provisioned=True))


@pytest.mark.parametrize("flag", ["--dataset", "--val-shard"])
def test_each_shard_vocabulary_is_checked(options: PretrainOptions, val_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                          flag: str) -> None:
    import apr.train.plan as plan_module

    real = plan_module.open_dataset
    big = str(val_dir) if flag == "--val-shard" else options.dataset

    def opened(path: str):
        segments, vocab = real(path)
        return segments, (10**6 if path == big else vocab)

    monkeypatch.setattr(plan_module, "open_dataset", opened)
    error = usage(options, val_shard=str(val_dir))
    assert error.field == flag
    assert error.message == f"{flag} was tokenized with a 1000000-token vocabulary, larger than the model's 512"


def test_warmup_as_long_as_the_run() -> None:
    s = sched(lr_max=1.0, lr_min=0.25, warmup_steps=2, total_steps=2)
    assert [s.at(step) for step in range(4)] == [0.5, 1.0, 0.25, 0.25]


@pytest.mark.parametrize("target", [1e-9, 0.5, 1.0])
def test_small_positive_targets_are_accepted(options: PretrainOptions, target: float) -> None:
    assert plan_pretrain(replace(options, target_val_loss=target)).target_val_loss == target
