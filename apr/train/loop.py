"""The training loop, visible in one place and in the order things happen (nanoGPT's train.py).

`run_pretrain` is a generator: it yields an `InitEvaluated` record (the val_loss of the starting
weights, before any step), one `StepMetrics` per optimizer step, one `EpochEnd` per epoch checkpoint (yielded
just before the checkpoint is written), and a final `Finished`. The CLI turns them into a progress bar and a ``--json`` report; tests read them
directly. Guards raise `TrainingAbortedError` (nothing is checkpointed after a guard fires).

Per step: set the learning rate, take the step's batch, forward and backward (bf16 autocast on
CUDA), clip gradients to 1.0, check loss and gradient norm are finite, step AdamW, zero grads.
Per epoch: evaluate on the fixed validation windows, check for divergence, decide on early
stopping, write the checkpoint and its training state. Every ``--save-every-steps`` steps in
between: a step checkpoint with its training state. ``--keep-last`` prunes after each write.

The loop's bookkeeping lives in one `Progress` record and the data stream in one `DataCursor`, the
two things a checkpoint's training state carries besides weights, AdamW and the generators; so
``--resume`` (`apr.train.resume`) continues with the same decisions, batches and random draws as
the uninterrupted run. The decisions are plain functions of that record (`is_epoch_end`,
`is_save_step`, `close_epoch`, `stop_decision`).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from apr.errors import TrainingAbortedError
from apr.format.digest import file_sha256
from apr.train.batches import TokenSplit, train_batch, val_batches
from apr.train.checkpoint import (
    checkpoint_dir,
    checkpoint_metadata,
    epoch_checkpoint_path,
    init_checkpoint_path,
    model_tensors,
    optimizer_state_sha,
    sidecar_path,
    step_checkpoint_path,
    write_checkpoint,
    write_sidecar,
)
from apr.train.ddp import DistContext, init_distributed, mean_across, shutdown, wrap_model
from apr.train.device import autocast, configure_backends, make_optimizer, seed_everything
from apr.train.model import CausalLM
from apr.train.plan import PretrainPlan
from apr.train.resume import on_resume, restore_training
from apr.train.retention import prune_checkpoints
from apr.train.shards import check_token_ids
from apr.train.train_state import DataCursor, Progress, restore_rng, write_train_state

DIVERGENCE_FACTOR = 2.0  # GATE-TRAIN-005: val[N] > 2 x val[N-1] aborts
FINETUNE_EPOCH0_CAP = 10.0  # GATE-TRAIN-005 regime finetune; from-scratch uses 2 ln(V)


@dataclass(frozen=True, slots=True)
class InitEvaluated:
    """The starting weights measured before any step (resume continuity, FALSIFY-006)."""

    val_loss: float
    optimizer_state_entries: int  # 0: AdamW starts fresh (FALSIFY-APR-PRETRAIN-INIT-009)
    scheduler_step: int
    param_count: int
    device: str
    world_size: int
    resumed_from: str | None = None  # --resume: the checkpoint the run continues from
    start_step: int = 0  # the first step this process runs (> 0 when resumed)


@dataclass(frozen=True, slots=True)
class StepMetrics:
    """training-loop-pretrain-v1 per-step metrics (gpu_util_pct is not sampled: None)."""

    step: int
    train_loss: float
    grad_norm: float
    lr: float
    tokens_per_sec: float
    wall_ms: float
    tokens_seen: int
    gpu_util_pct: float | None = None


@dataclass(frozen=True, slots=True)
class EpochEnd:
    """One completed epoch and its checkpoint (the sidecar's fields)."""

    epoch: int
    train_loss: float
    val_loss: float
    grad_norm_max: float
    tokens_seen: int
    wall_seconds: float
    optimizer_state_sha: str
    checkpoint: str | None


@dataclass(frozen=True, slots=True)
class Finished:
    """How the run ended."""

    status: str  # "OK" | "EARLY_STOP"
    detail: str
    init_val_loss: float
    final_val_loss: float
    best_val_loss: float
    epochs_completed: int
    steps_recorded: int
    tokens_seen: int
    wall_seconds: float
    val_loss_history: tuple[float, ...] = ()
    checkpoints: tuple[str, ...] = field(default=())


TrainEvent = InitEvaluated | StepMetrics | EpochEnd | Finished


def evaluate(model: CausalLM, split: TokenSplit, *, batch_size: int, device: torch.device,
             loss_chunk_rows: int | None = None) -> float:
    """Mean next-token loss over the fixed validation windows (token-weighted, so it does not
    depend on how the windows are batched). A plain function with ``no_grad`` inside rather than
    a decorated one, so mutation testing measures it."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for rows in val_batches(split, batch_size=batch_size):
            batch = torch.from_numpy(rows).to(device)  # (b, T+1)
            with autocast(device):
                loss = model(batch[:, :-1], batch[:, 1:], loss_chunk_rows=loss_chunk_rows)
            n = batch[:, 1:].numel()
            total += float(loss) * n
            count += n
    model.train(was_training)
    return total / count


def load_weights(model: CausalLM, tensors: dict[str, np.ndarray]) -> None:
    """Copy F32 weights into the model, every parameter accounted for (no partial load)."""
    state = {name: torch.from_numpy(array) for name, array in tensors.items()}
    if model.config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:  # the init gate checked names already; this is a bug, not bad input
        raise RuntimeError(f"weight load mismatch: missing {missing}, unexpected {unexpected}")


def build_model(plan: PretrainPlan, device: torch.device) -> CausalLM:
    """Seeded init (identical on every rank and device), then the --init weights if any."""
    seed_everything(plan.options.seed)
    model = CausalLM(plan.model_config)
    if plan.init is not None:
        load_weights(model, plan.init.tensors)
    return model.to(device)


def _epoch0_cap(plan: PretrainPlan) -> float:
    return FINETUNE_EPOCH0_CAP if plan.regime == "finetune" else 2.0 * math.log(plan.model_config.vocab_size)


def _check_divergence(plan: PretrainPlan, epoch: int, val_loss: float, history: list[float]) -> None:
    if not math.isfinite(val_loss):
        raise TrainingAbortedError(
            f"GATE-TRAIN-007 NaN/Inf guard fired: NUMERICAL_INSTABILITY at epoch {epoch}: val_loss = {val_loss}",
            reason="NUMERICAL_INSTABILITY", epoch=epoch, hint="lower --lr by 10x; check the data")
    if epoch == 0 and val_loss > _epoch0_cap(plan):
        raise TrainingAbortedError(
            f"GATE-TRAIN-005 ship-blocker fired: DIVERGENCE at epoch 0: val_loss {val_loss:.4f} > "
            f"{_epoch0_cap(plan):.4f} ({plan.regime} cap)", reason="DIVERGENCE", epoch=0,
            hint="lower --lr by 10x, or use --mode from-scratch for a cold start")
    if history and val_loss > DIVERGENCE_FACTOR * history[-1]:
        raise TrainingAbortedError(
            f"GATE-TRAIN-005 ship-blocker fired: DIVERGENCE at epoch {epoch}: val_loss {val_loss:.4f} > "
            f"2.0 x {history[-1]:.4f} (ratio {val_loss / history[-1]:.2f})", reason="DIVERGENCE", epoch=epoch,
            hint="lower --lr by 10x; the last good checkpoint is the previous epoch's")


def _training_facts(plan: PretrainPlan, ctx: DistContext, **facts: object) -> dict[str, object]:
    """Deterministic facts for checkpoint metadata (no wall time: same weights, same bytes)."""
    o = plan.options
    return {"mode": o.mode, "seed": o.seed, "lr": plan.schedule.lr_max, "batch_size": o.batch_size,
            "seq_length": o.seq_length, "num_steps": o.num_steps, "world_size": ctx.world_size,
            "init_sha256": plan.init_sha256, **facts}


def _save(plan: PretrainPlan, model: CausalLM, path: Path, training: dict[str, object]) -> None:
    inherited = plan.init.metadata if plan.init is not None else None
    metadata, flags = checkpoint_metadata(plan.model_config, plan.tokenizer, inherited=inherited, training=training)
    write_checkpoint(path, model_tensors(model), metadata, flags)


def is_epoch_end(step: int, steps_per_epoch: int, num_steps: int) -> bool:
    """Whether step ``step`` (0-based) closes an epoch: every ``steps_per_epoch`` steps, and the last step."""
    return (step + 1) % steps_per_epoch == 0 or step + 1 == num_steps


def is_save_step(step: int, save_every_steps: int | None) -> bool:
    """Whether step ``step`` (0-based) ends with a ``--save-every-steps`` checkpoint (when no epoch closes there)."""
    return save_every_steps is not None and (step + 1) % save_every_steps == 0


def stop_decision(progress: Progress, val_loss: float, *, num_steps: int, min_epochs: int, patience_epochs: int,
                  target_val_loss: float) -> tuple[str, str] | None:
    """Early stopping after an epoch closed: ``("EARLY_STOP", why)`` or None to go on.

    Never before ``min_epochs`` epochs, never after the last step (the run ends "OK" there).
    """
    if progress.step >= num_steps or progress.epoch < min_epochs:
        return None
    if val_loss <= target_val_loss:
        return "EARLY_STOP", f"val_loss {val_loss:.4f} reached --target-val-loss {target_val_loss}"
    if progress.patience > patience_epochs:
        return "EARLY_STOP", f"no val_loss improvement for {progress.patience} epochs (best {progress.best:.4f})"
    return None


def close_epoch(progress: Progress, val_loss: float, plan: PretrainPlan) -> tuple[int, float, float]:
    """Record a checked epoch in ``progress`` (history, best, patience, the stop decision) and open
    the next; returns ``(epoch, train_loss, grad_norm_max)`` of the epoch closed."""
    o = plan.options
    epoch, train_loss, grad_norm_max = progress.epoch, float(np.mean(progress.epoch_losses)), progress.grad_norm_max
    progress.history.append(val_loss)
    if val_loss < progress.best:
        progress.best, progress.patience = val_loss, 0
    else:
        progress.patience += 1
    progress.epoch += 1
    progress.epoch_losses, progress.grad_norm_max = [], 0.0
    decision = stop_decision(progress, val_loss, num_steps=o.num_steps, min_epochs=o.min_epochs_before_early_stop,
                             patience_epochs=o.patience_epochs, target_val_loss=plan.target_val_loss)
    if decision is not None:
        progress.stop_status, progress.stop_detail = decision
    return epoch, train_loss, grad_norm_max


def run_pretrain(plan: PretrainPlan, *, ctx: DistContext | None = None) -> Iterator[TrainEvent]:
    """Train as planned, yielding what happens. See the module docstring for the order."""
    own_ctx = ctx is None
    ctx = ctx or init_distributed(plan.options.device)
    try:
        yield from _run(plan, ctx)
    finally:
        if own_ctx:
            shutdown(ctx)


def check_split_ids(plan: PretrainPlan) -> None:
    """Every training and validation id must index the model's embedding: refused before the model
    is built, not as an index error at whichever step first samples it."""
    vocab = plan.model_config.vocab_size
    for segment in plan.split.train:
        check_token_ids(segment, vocab)
    check_token_ids(plan.split.val_windows.reshape(-1), vocab)


class _Saver:
    """Rank 0's checkpoint writes: the ``.apr``, then its training state, then retention."""

    def __init__(self, plan: PretrainPlan, ctx: DistContext, model: CausalLM, optimizer: torch.optim.Optimizer,
                 run_id: str) -> None:
        self.plan, self.ctx, self.model, self.optimizer, self.run_id = plan, ctx, model, optimizer, run_id

    def save(self, path: Path, kind: str, progress: Progress, cursor: DataCursor, *, epoch: int | None,
             val_loss: float | None) -> None:
        if not self.ctx.is_main:
            return
        o = self.plan.options
        _save(self.plan, self.model, path, _training_facts(self.plan, self.ctx, epoch=epoch, step=progress.step,
                                                           tokens_seen=progress.tokens_seen, val_loss=val_loss))
        write_train_state(path, apr_sha256=file_sha256(path), run_id=self.run_id, kind=kind, progress=progress,
                          cursor=cursor, optimizer=self.optimizer, fingerprint=self.plan.fingerprint,
                          val_loss=val_loss)
        if o.keep_last is not None:
            prune_checkpoints(checkpoint_dir(o.run_dir), run_id=self.run_id, keep_last=o.keep_last)

    def epoch(self, event: EpochEnd, path: Path, progress: Progress, cursor: DataCursor, *, step: int,
              lr: float) -> Iterator[EpochEnd]:
        """Report a closed epoch, then write its checkpoint, training state and JSON sidecar.

        The order is the point: the consumer writes the evaluation's ``metrics.jsonl`` row (fsynced)
        when it receives the event, before the checkpoint exists. A kill in between leaves a row
        past the last checkpoint, which ``--resume`` cuts back (`apr.train.metrics_log.continue_log`);
        the other order leaves a checkpoint whose evaluation row no resume can bring back.
        """
        yield event
        self.save(path, "epoch", progress, cursor, epoch=event.epoch, val_loss=event.val_loss)
        if self.ctx.is_main:
            train_loss, val_loss = event.train_loss, event.val_loss
            write_sidecar(sidecar_path(path), {
                "epoch": event.epoch, "train_loss": train_loss, "val_loss": val_loss,
                "train_ppl": math.exp(min(train_loss, 700.0)), "val_ppl": math.exp(min(val_loss, 700.0)),
                "optimizer_state_sha": event.optimizer_state_sha, "wall_seconds": event.wall_seconds,
                "tokens_seen": event.tokens_seen, "grad_norm_max": event.grad_norm_max, "step": step, "lr": lr,
            })


def _run(plan: PretrainPlan, ctx: DistContext) -> Iterator[TrainEvent]:
    o, device, resume = plan.options, ctx.device, plan.resume
    check_split_ids(plan)
    configure_backends(device)
    started = time.perf_counter()
    model = build_model(plan, device)
    optimizer = make_optimizer(model, lr=plan.schedule.at(0), weight_decay=o.weight_decay, device=device)
    if resume is not None:  # weights and AdamW before DDP wraps the model (it broadcasts rank 0's)
        progress, cursor = restore_training(resume, model, optimizer)
    else:
        progress, cursor = Progress(), DataCursor(o.seed)
    forward: Callable[..., torch.Tensor] = wrap_model(model, ctx)  # or its compiled form
    if o.compile:
        forward = torch.compile(forward)
    chunk = o.loss_chunk_rows

    # --- step 0 (or the resume point): measure the weights before anything changes them ---------
    init_val = evaluate(model, plan.split, batch_size=o.batch_size, device=device, loss_chunk_rows=chunk)
    yield InitEvaluated(val_loss=init_val, optimizer_state_entries=len(optimizer.state), scheduler_step=progress.step,
                        param_count=model.num_parameters(), device=str(device), world_size=ctx.world_size,
                        resumed_from=str(resume.checkpoint) if resume is not None else None,
                        start_step=progress.step)
    if o.num_steps == 0:  # evaluate-and-re-emit: the loaded weights, checkpointed unchanged
        path = init_checkpoint_path(o.run_dir)
        if ctx.is_main:
            _save(plan, model, path, _training_facts(plan, ctx, epoch=None, step=0, tokens_seen=0, val_loss=init_val))
            write_sidecar(sidecar_path(path), {"epoch": None, "train_loss": None, "val_loss": init_val,
                                               "train_ppl": None, "val_ppl": math.exp(init_val),
                                               "optimizer_state_sha": optimizer_state_sha(optimizer),
                                               "wall_seconds": time.perf_counter() - started, "tokens_seen": 0,
                                               "grad_norm_max": None})
        yield Finished(status="OK", detail="--num-steps 0: initial weights evaluated and re-emitted",
                       init_val_loss=init_val, final_val_loss=init_val, best_val_loss=init_val, epochs_completed=0,
                       steps_recorded=0, tokens_seen=0, wall_seconds=time.perf_counter() - started,
                       checkpoints=(str(path),))
        return

    if resume is None:
        progress.init_val_loss = init_val
        run_id = uuid.uuid4().hex
    else:
        run_id = resume.run_id
        if ctx.is_main:
            on_resume(o.run_dir, progress.step)
        restore_rng(resume.document["rng"], resume.tensors)  # last: nothing above may draw after it
    saver = _Saver(plan, ctx, model, optimizer, run_id)
    rows_per_rank = o.batch_size // ctx.world_size
    tokens_per_step = o.batch_size * o.seq_length
    epoch_started = time.perf_counter()
    model.train()
    while progress.stop_status is None and progress.step < o.num_steps:
        step, t0 = progress.step, time.perf_counter()
        # 1. learning rate for this step (a pure function of the step)
        lr = plan.schedule.at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # 2. this rank's rows of the step's global batch, where the data cursor stands
        rows = train_batch(plan.split, seed=cursor.seed, step=cursor.position, batch_size=o.batch_size)
        cursor = cursor.advanced()
        rows = rows[ctx.rank * rows_per_rank:(ctx.rank + 1) * rows_per_rank]
        batch = torch.from_numpy(rows).to(device, non_blocking=True)  # (b, T+1)
        # 3. forward and backward
        with autocast(device):
            loss = forward(batch[:, :-1], batch[:, 1:], loss_chunk_rows=chunk)
        loss.backward()
        # 4. clip, then refuse to apply a non-finite update (GATE-TRAIN-007)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip))
        loss_value = float(mean_across(loss.detach(), ctx))  # .item(): a host-device sync, once a step
        if not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
            field_name, value = ("train_loss", loss_value) if not math.isfinite(loss_value) else ("grad_norm", grad_norm)
            raise TrainingAbortedError(
                f"GATE-TRAIN-007 NaN/Inf guard fired: NUMERICAL_INSTABILITY at step {step}: {field_name} = {value}",
                reason="NUMERICAL_INSTABILITY", step=step, hint="lower --lr by 10x; check the data")
        # 5. update and reset
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        progress.step += 1
        progress.tokens_seen += tokens_per_step
        progress.epoch_losses.append(loss_value)
        progress.grad_norm_max = max(progress.grad_norm_max, grad_norm)
        elapsed = time.perf_counter() - t0
        yield StepMetrics(step=step, train_loss=loss_value, grad_norm=grad_norm, lr=lr,
                          tokens_per_sec=tokens_per_step / elapsed if elapsed > 0 else 0.0,
                          wall_ms=elapsed * 1000.0, tokens_seen=progress.tokens_seen)

        # 6. epoch boundary: evaluate, guard, decide, checkpoint; or a mid-epoch checkpoint
        if is_epoch_end(step, o.steps_per_epoch, o.num_steps):
            val_loss = evaluate(model, plan.split, batch_size=o.batch_size, device=device, loss_chunk_rows=chunk)
            _check_divergence(plan, progress.epoch, val_loss, progress.history)
            epoch, train_loss, grad_norm_max = close_epoch(progress, val_loss, plan)
            path = epoch_checkpoint_path(o.run_dir, epoch)
            progress.checkpoints.append(str(path))
            sha, wall = optimizer_state_sha(optimizer), time.perf_counter() - epoch_started
            yield from saver.epoch(EpochEnd(epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                                            grad_norm_max=grad_norm_max, tokens_seen=progress.tokens_seen,
                                            wall_seconds=wall, optimizer_state_sha=sha, checkpoint=str(path)),
                                   path, progress, cursor, step=step + 1, lr=lr)
            epoch_started = time.perf_counter()
        elif is_save_step(step, o.save_every_steps):
            saver.save(step_checkpoint_path(o.run_dir, progress.step), "step", progress, cursor, epoch=None,
                       val_loss=None)
    history = progress.history
    yield Finished(status=progress.stop_status or "OK", detail=progress.stop_detail or f"completed {o.num_steps} steps",
                   init_val_loss=progress.init_val_loss if progress.init_val_loss is not None else init_val,
                   final_val_loss=history[-1], best_val_loss=min(history), epochs_completed=len(history),
                   steps_recorded=progress.step, tokens_seen=progress.tokens_seen,
                   wall_seconds=time.perf_counter() - started, val_loss_history=tuple(history),
                   checkpoints=tuple(progress.checkpoints))
