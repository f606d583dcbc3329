"""The training loop, visible in one place and in the order things happen (nanoGPT's train.py).

`run_pretrain` is a generator: it yields an `InitEvaluated` record (the val_loss of the starting
weights, before any step), one `StepMetrics` per optimizer step, one `EpochEnd` per checkpoint, and
a final `Finished`. The CLI turns them into a progress bar and a ``--json`` report; tests read them
directly. Guards raise `TrainingAbortedError` (nothing is checkpointed after a guard fires).

Per step: set the learning rate, take the step's batch, forward and backward (bf16 autocast on
CUDA), clip gradients to 1.0, check loss and gradient norm are finite, step AdamW, zero grads.
Per epoch: evaluate on the fixed validation windows, check for divergence, write the checkpoint,
decide on early stopping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from apr.errors import TrainingAbortedError
from apr.train.batches import TokenSplit, train_batch, val_batches
from apr.train.checkpoint import (
    checkpoint_metadata,
    epoch_checkpoint_path,
    init_checkpoint_path,
    model_tensors,
    optimizer_state_sha,
    sidecar_path,
    write_checkpoint,
    write_sidecar,
)
from apr.train.ddp import DistContext, init_distributed, mean_across, shutdown, wrap_model
from apr.train.device import autocast, configure_backends, make_optimizer, seed_everything
from apr.train.model import CausalLM
from apr.train.plan import PretrainPlan
from apr.train.shards import check_token_ids

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


@torch.no_grad()
def evaluate(model: CausalLM, split: TokenSplit, *, batch_size: int, device: torch.device,
             loss_chunk_rows: int | None = None) -> float:
    """Mean next-token loss over the fixed validation windows (token-weighted, so it does not
    depend on how the windows are batched)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
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


def _run(plan: PretrainPlan, ctx: DistContext) -> Iterator[TrainEvent]:
    o, device = plan.options, ctx.device
    check_split_ids(plan)
    configure_backends(device)
    started = time.perf_counter()
    model = build_model(plan, device)
    optimizer = make_optimizer(model, lr=plan.schedule.at(0), weight_decay=o.weight_decay, device=device)
    forward: Callable[..., torch.Tensor] = wrap_model(model, ctx)  # or its compiled form
    if o.compile:
        forward = torch.compile(forward)
    chunk = o.loss_chunk_rows

    # --- step 0: measure the starting weights before anything changes them -------------------
    init_val = evaluate(model, plan.split, batch_size=o.batch_size, device=device, loss_chunk_rows=chunk)
    yield InitEvaluated(val_loss=init_val, optimizer_state_entries=len(optimizer.state), scheduler_step=0,
                        param_count=model.num_parameters(), device=str(device), world_size=ctx.world_size)
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

    rows_per_rank = o.batch_size // ctx.world_size
    tokens_per_step = o.batch_size * o.seq_length
    history: list[float] = []
    checkpoints: list[str] = []
    best, patience, tokens_seen = math.inf, 0, 0
    epoch, epoch_losses, grad_norm_max, epoch_started = 0, [], 0.0, time.perf_counter()
    status, detail = "OK", f"completed {o.num_steps} steps"
    model.train()
    for step in range(o.num_steps):
        t0 = time.perf_counter()
        # 1. learning rate for this step (a pure function of the step)
        lr = plan.schedule.at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # 2. this rank's rows of the step's global batch
        rows = train_batch(plan.split, seed=o.seed, step=step, batch_size=o.batch_size)
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
        tokens_seen += tokens_per_step
        epoch_losses.append(loss_value)
        grad_norm_max = max(grad_norm_max, grad_norm)
        elapsed = time.perf_counter() - t0
        yield StepMetrics(step=step, train_loss=loss_value, grad_norm=grad_norm, lr=lr,
                          tokens_per_sec=tokens_per_step / elapsed if elapsed > 0 else 0.0,
                          wall_ms=elapsed * 1000.0, tokens_seen=tokens_seen)

        # 6. epoch boundary: evaluate, guard, checkpoint, maybe stop
        if (step + 1) % o.steps_per_epoch and step + 1 != o.num_steps:
            continue
        val_loss = evaluate(model, plan.split, batch_size=o.batch_size, device=device, loss_chunk_rows=chunk)
        _check_divergence(plan, epoch, val_loss, history)
        history.append(val_loss)
        train_loss = float(np.mean(epoch_losses))
        sha = optimizer_state_sha(optimizer)
        path = epoch_checkpoint_path(o.run_dir, epoch)
        wall = time.perf_counter() - epoch_started
        if ctx.is_main:
            _save(plan, model, path, _training_facts(plan, ctx, epoch=epoch, step=step + 1,
                                                     tokens_seen=tokens_seen, val_loss=val_loss))
            write_sidecar(sidecar_path(path), {
                "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                "train_ppl": math.exp(min(train_loss, 700.0)), "val_ppl": math.exp(min(val_loss, 700.0)),
                "optimizer_state_sha": sha, "wall_seconds": wall, "tokens_seen": tokens_seen,
                "grad_norm_max": grad_norm_max, "step": step + 1, "lr": lr,
            })
        checkpoints.append(str(path))
        yield EpochEnd(epoch=epoch, train_loss=train_loss, val_loss=val_loss, grad_norm_max=grad_norm_max,
                       tokens_seen=tokens_seen, wall_seconds=wall, optimizer_state_sha=sha, checkpoint=str(path))
        if val_loss < best:
            best, patience = val_loss, 0
        else:
            patience += 1
        epoch += 1
        epoch_losses, grad_norm_max, epoch_started = [], 0.0, time.perf_counter()
        if step + 1 < o.num_steps and epoch >= o.min_epochs_before_early_stop:
            if val_loss <= plan.target_val_loss:
                status, detail = "EARLY_STOP", f"val_loss {val_loss:.4f} reached --target-val-loss {plan.target_val_loss}"
                break
            if patience > o.patience_epochs:
                status, detail = "EARLY_STOP", f"no val_loss improvement for {patience} epochs (best {best:.4f})"
                break
    yield Finished(status=status, detail=detail, init_val_loss=init_val,
                   final_val_loss=history[-1], best_val_loss=min(history), epochs_completed=len(history),
                   steps_recorded=(step + 1), tokens_seen=tokens_seen, wall_seconds=time.perf_counter() - started,
                   val_loss_history=tuple(history), checkpoints=tuple(checkpoints))
