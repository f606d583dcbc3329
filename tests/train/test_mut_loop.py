"""apr/train/loop.py's epoch and stopping control, stated exactly (issue 23): the decision functions
as tables below, at and above each boundary, and tiny in-process runs whose every event, sidecar
and checkpoint field is compared with a value derived from the inputs (the schedule, the batch
shape, the step losses), not read back from the output under test."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from apr.errors import DatasetError, TrainingAbortedError
from apr.format import open_file
from apr.train import loop
from apr.train.loop import (
    EpochEnd,
    Finished,
    StepMetrics,
    close_epoch,
    is_epoch_end,
    is_save_step,
    run_pretrain,
    stop_decision,
)
from apr.train.train_state import Progress

B, T = 8, 64  # batch rows and sequence length of every run here
TOKENS = B * T


def options(dataset_dir: Path, val_dir: Path, tokenizer_dir: Path, config_path: Path, run_dir: Path, **changes):
    from apr.train.plan import PretrainOptions

    values = dict(dataset=str(dataset_dir), val_shard=str(val_dir), tokenizer=str(tokenizer_dir),
                  config=str(config_path), run_dir=str(run_dir), mode="from-scratch", lr=3e-3, warmup_steps=2,
                  batch_size=B, seq_length=T, device="cpu", seed=7, num_steps=5, steps_per_epoch=2)
    values.update(changes)
    return PretrainOptions(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_plan(tmp_path: Path, dataset_dir: Path, val_dir: Path, tokenizer_dir: Path, config_path: Path):
    from apr.train.plan import plan_pretrain

    def build(**changes):
        return plan_pretrain(options(dataset_dir, val_dir, tokenizer_dir, config_path, tmp_path / "run", **changes))

    return build


def bounded(plan, events) -> list:
    """The events of one run, refusing more than it can yield: an InitEvaluated, at most one
    StepMetrics and one EpochEnd per planned step, a Finished. A loop that never stops fails here
    (a test failure) instead of hanging the suite (which mutation testing reads as a timeout)."""
    limit = 2 + 2 * plan.options.num_steps
    seen = []
    for event in events:
        seen.append(event)
        assert len(seen) <= limit, f"more than {limit} events for {plan.options.num_steps} steps: the loop did not stop"
    return seen


def events_of(plan, *, ctx=None) -> list:
    from apr.train.device import torch_threads

    with torch_threads(1):
        return bounded(plan, run_pretrain(plan, ctx=ctx))


def only(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def sidecar(path: str | Path) -> dict:
    return json.loads(Path(str(path).removesuffix(".apr") + ".metadata.json").read_text())


def state(path: str | Path) -> dict:
    return json.loads(Path(str(path).removesuffix(".apr") + ".state.json").read_text())


# --- the decision functions -------------------------------------------------------------------

@pytest.mark.parametrize(("step", "per_epoch", "num_steps", "expected"), [
    (0, 2, 5, False), (1, 2, 5, True), (2, 2, 5, False), (3, 2, 5, True), (4, 2, 5, True),  # the last step
    (0, 1, 3, True), (2, 3, 9, True), (3, 3, 9, False), (5, 3, 9, True), (7, 4, 10, True), (8, 4, 10, False),
    (9, 4, 10, True), (4, 10, 5, True), (3, 10, 5, False),
])
def test_is_epoch_end_table(step: int, per_epoch: int, num_steps: int, expected: bool) -> None:
    assert is_epoch_end(step, per_epoch, num_steps) is expected


@pytest.mark.parametrize(("step", "every", "expected"), [
    (0, None, False), (5, None, False), (0, 1, True), (0, 2, False), (1, 2, True), (2, 2, False), (2, 3, True),
    (3, 3, False), (5, 3, True),
])
def test_is_save_step_table(step: int, every: int | None, expected: bool) -> None:
    assert is_save_step(step, every) is expected


def progress(**values) -> Progress:
    return Progress(**{"step": 4, "epoch": 3, "best": 2.0, "patience": 0, **values})


STOP = dict(num_steps=10, min_epochs=3, patience_epochs=2, target_val_loss=1.5)


@pytest.mark.parametrize(("values", "val_loss", "expected"), [
    ({}, 1.6, None),  # nothing fires
    ({}, 1.5, ("EARLY_STOP", "val_loss 1.5000 reached --target-val-loss 1.5")),  # at the target
    ({}, 1.4, ("EARLY_STOP", "val_loss 1.4000 reached --target-val-loss 1.5")),
    ({}, math.nextafter(1.5, 2.0), None),  # just above it
    ({"epoch": 2}, 1.0, None),  # before min_epochs
    ({"step": 9}, 1.0, ("EARLY_STOP", "val_loss 1.0000 reached --target-val-loss 1.5")),  # one step left
    ({"step": 10}, 1.0, None),  # the last step: the run ends OK
    ({"step": 11}, 1.0, None),
    ({"patience": 2}, 3.0, None),  # at patience_epochs
    ({"patience": 3}, 3.0, ("EARLY_STOP", "no val_loss improvement for 3 epochs (best 2.0000)")),
    ({"patience": 3, "epoch": 2}, 3.0, None),
    ({"patience": 3, "step": 10}, 3.0, None),
    ({"patience": 3}, 1.0, ("EARLY_STOP", "val_loss 1.0000 reached --target-val-loss 1.5")),  # target first
])
def test_stop_decision_table(values: dict, val_loss: float, expected: tuple | None) -> None:
    assert stop_decision(progress(**values), val_loss, **STOP) == expected


class FakeOptions:
    num_steps, min_epochs_before_early_stop, patience_epochs = 10, 1, 0


class FakePlan:
    options, target_val_loss, regime = FakeOptions(), 0.5, "finetune"


def test_close_epoch_records_and_reopens() -> None:
    p = Progress(step=4, epoch=0, epoch_losses=[3.0, 4.0, 8.0], grad_norm_max=0.7, history=[], best=math.inf)
    assert close_epoch(p, 2.0, FakePlan()) == (0, 5.0, 0.7)  # type: ignore[arg-type]
    assert (p.epoch, p.epoch_losses, p.grad_norm_max, p.history, p.best, p.patience) == (1, [], 0.0, [2.0], 2.0, 0)
    assert p.stop_status is None and p.stop_detail is None  # improved, above target
    p.epoch_losses = [1.0]
    assert close_epoch(p, 2.0, FakePlan()) == (1, 1.0, 0.0)  # type: ignore[arg-type]  # equal is no improvement
    assert (p.epoch, p.history, p.best, p.patience) == (2, [2.0, 2.0], 2.0, 1)
    assert (p.stop_status, p.stop_detail) == ("EARLY_STOP", "no val_loss improvement for 1 epochs (best 2.0000)")


def test_close_epoch_target_stop_and_improvement_resets_patience() -> None:
    p = Progress(step=2, epoch=1, epoch_losses=[1.0], history=[3.0], best=3.0, patience=4)
    close_epoch(p, 0.5, FakePlan())  # type: ignore[arg-type]
    assert (p.best, p.patience) == (0.5, 0)
    assert (p.stop_status, p.stop_detail) == ("EARLY_STOP", "val_loss 0.5000 reached --target-val-loss 0.5")


class ScratchPlan:
    regime = "from_scratch"

    class model_config:
        vocab_size = 512


@pytest.mark.parametrize(("plan", "cap"), [(FakePlan(), 10.0), (ScratchPlan(), 2.0 * math.log(512))])
def test_epoch0_cap_and_divergence_boundaries(plan, cap: float) -> None:
    assert loop._epoch0_cap(plan) == cap
    loop._check_divergence(plan, 0, cap, [])  # at the cap: accepted
    with pytest.raises(TrainingAbortedError) as info:
        loop._check_divergence(plan, 0, math.nextafter(cap, math.inf), [])
    assert (info.value.reason, info.value.epoch, info.value.step) == ("DIVERGENCE", 0, None)
    regime = "finetune" if plan.regime == "finetune" else "from_scratch"
    assert info.value.message == (f"GATE-TRAIN-005 ship-blocker fired: DIVERGENCE at epoch 0: val_loss "
                                  f"{math.nextafter(cap, math.inf):.4f} > {cap:.4f} ({regime} cap)")
    assert info.value.hint == "lower --lr by 10x, or use --mode from-scratch for a cold start"
    loop._check_divergence(plan, 1, 50.0, [])  # the cap is epoch 0's only; no history: no ratio


def test_divergence_ratio_boundary_and_message() -> None:
    loop._check_divergence(FakePlan(), 2, 6.0, [9.0, 3.0])  # exactly 2x the previous: accepted
    loop._check_divergence(FakePlan(), 2, 17.0, [9.0, 3.0, 8.5])  # the previous, not the first
    with pytest.raises(TrainingAbortedError) as info:
        loop._check_divergence(FakePlan(), 2, math.nextafter(6.0, 7.0), [1.0, 3.0])
    assert (info.value.reason, info.value.epoch) == ("DIVERGENCE", 2)
    assert info.value.message == ("GATE-TRAIN-005 ship-blocker fired: DIVERGENCE at epoch 2: val_loss 6.0000 > "
                                  "2.0 x 3.0000 (ratio 2.00)")
    assert info.value.hint == "lower --lr by 10x; the last good checkpoint is the previous epoch's"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_val_loss_is_numerical_instability(value: float) -> None:
    with pytest.raises(TrainingAbortedError) as info:
        loop._check_divergence(FakePlan(), 4, value, [1.0])
    assert (info.value.reason, info.value.epoch) == ("NUMERICAL_INSTABILITY", 4)
    assert info.value.message == f"GATE-TRAIN-007 NaN/Inf guard fired: NUMERICAL_INSTABILITY at epoch 4: val_loss = {value}"
    assert info.value.hint == "lower --lr by 10x; check the data"


# --- model helpers ----------------------------------------------------------------------------

def test_evaluate_is_token_weighted_and_keeps_the_mode(make_plan) -> None:
    from apr.train.model import CausalLM

    plan = make_plan()
    torch.manual_seed(0)
    model = CausalLM(plan.model_config)
    windows = plan.split.val_windows
    model.eval()
    with torch.no_grad():
        batch = torch.from_numpy(windows)
        expected = float(model(batch[:, :-1], batch[:, 1:], loss_chunk_rows=0))
    for size, training in ((3, True), (len(windows), False), (5, True)):
        model.train(training)
        got = loop.evaluate(model, plan.split, batch_size=size, device=torch.device("cpu"), loss_chunk_rows=0)
        assert got == pytest.approx(expected, rel=1e-6) and model.training is training
    assert all(p.grad is None for p in model.parameters())


def test_load_weights_ties_the_head_and_refuses_a_mismatch(make_plan) -> None:
    from apr.train.model import CausalLM

    plan = make_plan()
    model = CausalLM(plan.model_config)
    tensors = {name: np.full(shape, 0.25, dtype=np.float32) for name, shape in plan.model_config.parameter_shapes().items()}
    loop.load_weights(model, tensors)
    assert torch.equal(model.lm_head.weight, torch.full_like(model.lm_head.weight, 0.25))
    assert all(bool((p == 0.25).all()) for p in model.parameters())
    with pytest.raises(RuntimeError, match="weight load mismatch: missing"):
        loop.load_weights(model, {k: v for k, v in tensors.items() if k != "model.norm.weight"})
    with pytest.raises(RuntimeError, match="unexpected"):
        loop.load_weights(model, {**tensors, "extra.weight": np.zeros(1, np.float32)})


def test_build_model_is_seeded_and_loads_init(make_plan) -> None:
    plan = make_plan()
    first, second = loop.build_model(plan, torch.device("cpu")), loop.build_model(plan, torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters(), strict=True))
    other = loop.build_model(replace(plan, options=replace(plan.options, seed=8)), torch.device("cpu"))
    assert not torch.equal(first.model.embed_tokens.weight, other.model.embed_tokens.weight)


def test_check_split_ids_refuses_train_and_val_ids(make_plan) -> None:
    plan = make_plan()
    loop.check_split_ids(plan)
    bad_train = replace(plan.split, train=(*plan.split.train[:-1], np.array([1, 2, 512], dtype=np.int64)))
    with pytest.raises(DatasetError):
        loop.check_split_ids(replace(plan, split=bad_train))
    bad_val = plan.split.val_windows.copy()
    bad_val[-1, -1] = 512
    with pytest.raises(DatasetError):
        loop.check_split_ids(replace(plan, split=replace(plan.split, val_windows=bad_val)))


# --- whole runs, every field --------------------------------------------------------------------

def test_a_run_yields_exact_events_sidecars_and_metadata(make_plan) -> None:
    plan = make_plan(save_every_steps=1)
    events = events_of(plan)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["InitEvaluated", "StepMetrics", "StepMetrics", "EpochEnd", "StepMetrics", "StepMetrics",
                     "EpochEnd", "StepMetrics", "EpochEnd", "Finished"]
    init, steps, epochs, finished = events[0], only(events, StepMetrics), only(events, EpochEnd), events[-1]
    assert (init.optimizer_state_entries, init.scheduler_step, init.device, init.world_size, init.resumed_from,
            init.start_step) == (0, 0, "cpu", 1, None, 0)
    assert init.param_count == plan.model_config.param_count and math.isfinite(init.val_loss)
    for i, m in enumerate(steps):
        assert (m.step, m.lr, m.tokens_seen, m.gpu_util_pct) == (i, plan.schedule.at(i), (i + 1) * TOKENS, None)
        assert math.isfinite(m.train_loss) and m.grad_norm > 0 and m.wall_ms > 0
        assert m.tokens_per_sec * m.wall_ms / 1000.0 == pytest.approx(TOKENS)
    groups = [steps[0:2], steps[2:4], steps[4:5]]
    run_dir = Path(plan.options.run_dir)
    for k, (epoch, group) in enumerate(zip(epochs, groups, strict=True)):
        path = run_dir / "ckpt" / f"epoch-{k:03d}.apr"
        assert (epoch.epoch, epoch.checkpoint, epoch.tokens_seen) == (k, str(path), (group[-1].step + 1) * TOKENS)
        assert epoch.train_loss == float(np.mean([m.train_loss for m in group]))
        assert epoch.grad_norm_max == max(m.grad_norm for m in group) and epoch.wall_seconds > 0
        record = sidecar(path)
        assert list(record) == ["epoch", "train_loss", "val_loss", "train_ppl", "val_ppl", "optimizer_state_sha",
                                "wall_seconds", "tokens_seen", "grad_norm_max", "step", "lr"]
        assert record == {"epoch": k, "train_loss": epoch.train_loss, "val_loss": epoch.val_loss,
                          "train_ppl": math.exp(epoch.train_loss), "val_ppl": math.exp(epoch.val_loss),
                          "optimizer_state_sha": epoch.optimizer_state_sha, "wall_seconds": record["wall_seconds"],
                          "tokens_seen": epoch.tokens_seen, "grad_norm_max": epoch.grad_norm_max,
                          "step": group[-1].step + 1, "lr": group[-1].lr}
        with open_file(path) as reader:
            training = reader.metadata["training"]
        assert training == {"mode": "from-scratch", "seed": 7, "lr": 3e-3, "batch_size": B, "seq_length": T,
                            "num_steps": 5, "world_size": 1, "init_sha256": None, "epoch": k,
                            "step": group[-1].step + 1, "tokens_seen": epoch.tokens_seen, "val_loss": epoch.val_loss}
        saved = state(path)
        assert (saved["kind"], saved["val_loss"], saved["progress"]["step"]) == ("epoch", epoch.val_loss,
                                                                                 group[-1].step + 1)
    assert finished == Finished(
        status="OK", detail="completed 5 steps", init_val_loss=init.val_loss, final_val_loss=epochs[-1].val_loss,
        best_val_loss=min(e.val_loss for e in epochs), epochs_completed=3, steps_recorded=5, tokens_seen=5 * TOKENS,
        wall_seconds=finished.wall_seconds, val_loss_history=tuple(e.val_loss for e in epochs),
        checkpoints=tuple(e.checkpoint for e in epochs))
    assert finished.wall_seconds >= sum(e.wall_seconds for e in epochs)
    step_files = sorted(p.name for p in (run_dir / "ckpt").glob("step-*.apr"))
    assert step_files == ["step-0000001.apr", "step-0000003.apr"]  # steps 2, 4 and 5 close epochs
    step_state = state(run_dir / "ckpt" / "step-0000003.apr")
    assert (step_state["kind"], step_state["val_loss"], step_state["progress"]["step"]) == ("step", None, 3)
    assert step_state["progress"]["epoch_losses"] == [steps[2].train_loss]
    with open_file(run_dir / "ckpt" / "step-0000003.apr") as reader:
        assert reader.metadata["training"]["epoch"] is None and reader.metadata["training"]["step"] == 3
        assert reader.metadata["training"]["val_loss"] is None and reader.metadata["training"]["tokens_seen"] == 3 * TOKENS
    assert len({state(p)["run_id"] for p in (run_dir / "ckpt").glob("*.apr")}) == 1


def test_num_steps_zero_re_emits_the_weights(make_plan) -> None:
    plan = make_plan(num_steps=0)
    events = events_of(plan)
    assert [type(e).__name__ for e in events] == ["InitEvaluated", "Finished"]
    init, finished = events
    path = Path(plan.options.run_dir) / "ckpt" / "init.apr"
    assert finished == Finished(status="OK", detail="--num-steps 0: initial weights evaluated and re-emitted",
                                init_val_loss=init.val_loss, final_val_loss=init.val_loss, best_val_loss=init.val_loss,
                                epochs_completed=0, steps_recorded=0, tokens_seen=0,
                                wall_seconds=finished.wall_seconds, checkpoints=(str(path),))
    record = sidecar(path)
    assert record == {"epoch": None, "train_loss": None, "val_loss": init.val_loss, "train_ppl": None,
                      "val_ppl": math.exp(init.val_loss), "optimizer_state_sha": hashlib.sha256().hexdigest(),
                      "wall_seconds": record["wall_seconds"], "tokens_seen": 0, "grad_norm_max": None}
    assert record["wall_seconds"] > 0
    with open_file(path) as reader:
        assert reader.metadata["training"] == {
            "mode": "from-scratch", "seed": 7, "lr": 3e-3, "batch_size": B, "seq_length": T, "num_steps": 0,
            "world_size": 1, "init_sha256": None, "epoch": None, "step": 0, "tokens_seen": 0, "val_loss": init.val_loss}
    assert sorted(p.name for p in path.parent.iterdir()) == ["init.apr", "init.metadata.json"]


def fake_evaluate(monkeypatch: pytest.MonkeyPatch, values: list[float]) -> None:
    trace = iter(values)
    monkeypatch.setattr(loop, "evaluate", lambda *a, **kw: next(trace))


@pytest.mark.parametrize(("values", "per_epoch", "status", "detail", "steps_done"), [
    ([6.0, 5.0, 4.0, 3.0, 2.0], 1, "EARLY_STOP", "val_loss 3.0000 reached --target-val-loss 3.0", 3),
    ([6.0, 5.0, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5], 1, "EARLY_STOP",
     "no val_loss improvement for 6 epochs (best 5.0000)", 7),
    ([6.0, 2.0, 2.0, 2.0], 2, "OK", "completed 5 steps", 5),  # target reached, but only 3 epochs: at the end
])
def test_early_stopping_ends_the_loop(make_plan, monkeypatch: pytest.MonkeyPatch, values: list[float],
                                      per_epoch: int, status: str, detail: str, steps_done: int) -> None:
    fake_evaluate(monkeypatch, values)
    num_steps = 9 if per_epoch == 1 else 5
    events = events_of(make_plan(num_steps=num_steps, steps_per_epoch=per_epoch, target_val_loss=3.0))
    finished = events[-1]
    assert (finished.status, finished.detail, finished.steps_recorded) == (status, detail, steps_done)
    assert len(only(events, StepMetrics)) == steps_done and finished.tokens_seen == steps_done * TOKENS
    history = tuple(values[1:1 + len(only(events, EpochEnd))])
    assert finished.val_loss_history == history and finished.final_val_loss == history[-1]
    assert finished.best_val_loss == min(history) and finished.init_val_loss == 6.0
    saved = state(finished.checkpoints[-1])["progress"]
    assert (saved["stop_status"], saved["stop_detail"]) == ((status, detail) if status != "OK" else (None, None))


def test_divergence_aborts_before_the_checkpoint(make_plan, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_evaluate(monkeypatch, [6.0, 5.0, 11.0])
    plan = make_plan()
    with pytest.raises(TrainingAbortedError) as info:
        events_of(plan)
    assert (info.value.reason, info.value.epoch) == ("DIVERGENCE", 1)
    assert sorted(p.name for p in (Path(plan.options.run_dir) / "ckpt").glob("*.apr")) == ["epoch-000.apr"]


@pytest.mark.parametrize("field", ["train_loss", "grad_norm"])
def test_the_nan_guard_names_the_step_and_field(make_plan, monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    calls = {"n": 0}
    if field == "train_loss":
        from apr.train.model import CausalLM

        real = CausalLM.forward

        def poisoned(self, input_ids, targets=None, **kw):
            out = real(self, input_ids, targets, **kw)
            if self.training:
                calls["n"] += 1
                return out * float("nan") if calls["n"] == 2 else out
            return out

        monkeypatch.setattr(CausalLM, "forward", poisoned)
    else:
        real_clip = torch.nn.utils.clip_grad_norm_

        def clip(*a, **kw):
            calls["n"] += 1
            norm = real_clip(*a, **kw)
            return torch.tensor(float("inf")) if calls["n"] == 2 else norm

        monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    with pytest.raises(TrainingAbortedError) as info:
        events_of(make_plan())
    assert (info.value.reason, info.value.step, info.value.epoch) == ("NUMERICAL_INSTABILITY", 1, None)
    value = "nan" if field == "train_loss" else "inf"
    assert info.value.message == f"GATE-TRAIN-007 NaN/Inf guard fired: NUMERICAL_INSTABILITY at step 1: {field} = {value}"
    assert info.value.hint == "lower --lr by 10x; check the data"


def test_huge_losses_clamp_the_perplexities(make_plan, monkeypatch: pytest.MonkeyPatch) -> None:
    from apr.train.model import CausalLM

    real = CausalLM.forward
    monkeypatch.setattr(CausalLM, "forward", lambda self, i, t=None, **kw: real(self, i, t, **kw) * 0 + 700.5)
    monkeypatch.setattr(loop, "_check_divergence", lambda *a, **kw: None)
    events = events_of(make_plan(num_steps=1, steps_per_epoch=1))
    record = sidecar(only(events, EpochEnd)[0].checkpoint)
    assert record["train_loss"] == pytest.approx(700.5) and record["val_loss"] == pytest.approx(700.5)
    assert record["train_ppl"] == math.exp(700.0) and record["val_ppl"] == math.exp(700.0)


def test_keep_last_prunes_only_when_asked(make_plan, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(loop, "prune_checkpoints", lambda folder, **kw: calls.append((Path(folder), kw)))
    plan = make_plan(num_steps=2, steps_per_epoch=1)
    events_of(plan)
    assert calls == []
    plan = make_plan(num_steps=2, steps_per_epoch=1, keep_last=1, force=True)
    events_of(plan)
    run_id = state(Path(plan.options.run_dir) / "ckpt" / "epoch-000.apr")["run_id"]
    assert calls == [(Path(plan.options.run_dir) / "ckpt", {"run_id": run_id, "keep_last": 1})] * 2


def test_compile_wraps_the_forward(make_plan, monkeypatch: pytest.MonkeyPatch) -> None:
    wrapped = []
    monkeypatch.setattr(loop.torch, "compile", lambda module: wrapped.append(module) or module)
    events_of(make_plan(num_steps=1, steps_per_epoch=1, compile=True))
    assert len(wrapped) == 1 and isinstance(wrapped[0], loop.CausalLM)


def test_a_non_main_rank_writes_nothing(make_plan, monkeypatch: pytest.MonkeyPatch) -> None:
    from apr.train.ddp import DistContext

    monkeypatch.setattr(loop, "mean_across", lambda value, ctx: value)
    monkeypatch.setattr(loop, "wrap_model", lambda model, ctx: model)
    plan = make_plan(num_steps=2, steps_per_epoch=1)
    ctx = DistContext(rank=1, world_size=2, local_rank=1, device=torch.device("cpu"))
    seen = []
    real_batch = loop.train_batch
    monkeypatch.setattr(loop, "train_batch", lambda *a, **kw: seen.append(real_batch(*a, **kw)) or seen[-1])
    from apr.train.device import torch_threads

    with torch_threads(1):
        events = bounded(plan, run_pretrain(plan, ctx=ctx))
    assert events[0].world_size == 2 and events[-1].steps_recorded == 2
    assert events[-1].tokens_seen == 2 * TOKENS  # the global batch, whatever the rank
    assert not (Path(plan.options.run_dir) / "ckpt").exists()
    assert [len(rows) for rows in seen] == [B, B]  # the global batch is drawn, then sliced


def test_a_resumed_run_reports_where_it_starts(make_plan, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_plan(num_steps=4, steps_per_epoch=2, save_every_steps=1)
    reference = events_of(first)
    ckpt = Path(first.options.run_dir) / "ckpt"
    for later in [*ckpt.glob("epoch-001.*"), *ckpt.glob("step-0000003.*")]:
        later.unlink()
    resumed_at = []
    restored = []
    monkeypatch.setattr(loop, "on_resume", lambda run_dir, step: resumed_at.append((run_dir, step)))
    real_restore = loop.restore_rng
    monkeypatch.setattr(loop, "restore_rng", lambda *a: restored.append(1) or real_restore(*a))
    plan = make_plan(num_steps=4, steps_per_epoch=2, save_every_steps=1, resume=first.options.run_dir)
    events = events_of(plan)
    init = events[0]
    assert (init.resumed_from, init.start_step, init.scheduler_step) == (str(ckpt / "epoch-000.apr"), 2, 2)
    assert init.optimizer_state_entries == len(list(loop.CausalLM(plan.model_config).parameters()))
    assert resumed_at == [(first.options.run_dir, 2)] and restored == [1]
    assert [m.step for m in only(events, StepMetrics)] == [2, 3]
    assert events[-1].init_val_loss == reference[0].val_loss  # the run's own start, not the resume's
    assert state(ckpt / "epoch-001.apr")["run_id"] == state(ckpt / "epoch-000.apr")["run_id"]
    assert events[-1].checkpoints == tuple(e.checkpoint for e in only(reference, EpochEnd))


# --- what the decisions above cannot see ----------------------------------------------------------

def test_every_forward_gets_the_chunk_and_the_optimizer_the_schedule(make_plan, monkeypatch: pytest.MonkeyPatch) -> None:
    from apr.train.model import CausalLM

    chunks = []
    real = CausalLM.forward
    monkeypatch.setattr(CausalLM, "forward", lambda self, i, t=None, **kw: chunks.append(kw.get("loss_chunk_rows"))
                        or real(self, i, t, **kw))
    plan = make_plan(loss_chunk_rows=7)
    events_of(plan)
    assert len(chunks) > 5 and set(chunks) == {7}  # training and evaluation alike
    for k, last in ((0, 1), (1, 3), (2, 4)):
        groups = state(Path(plan.options.run_dir) / "ckpt" / f"epoch-{k:03d}.apr")["optimizer"]["param_groups"]
        assert [g["lr"] for g in groups] == [plan.schedule.at(last)] * 2  # what AdamW applied, not only reported


def test_wall_times_are_durations(make_plan) -> None:
    import time

    plan = make_plan()
    began = time.perf_counter()
    events = events_of(plan)
    took = time.perf_counter() - began
    assert all(0 < m.wall_ms <= took * 1000 for m in only(events, StepMetrics))
    assert all(0 < e.wall_seconds <= took for e in only(events, EpochEnd))
    assert 0 < events[-1].wall_seconds <= took
    began = time.perf_counter()
    zero = events_of(make_plan(num_steps=0, force=True))
    took = time.perf_counter() - began
    assert 0 < zero[-1].wall_seconds <= took
    assert 0 < sidecar(zero[-1].checkpoints[0])["wall_seconds"] <= took


def test_a_non_main_rank_takes_its_rows_and_writes_no_init(make_plan, monkeypatch: pytest.MonkeyPatch) -> None:
    from apr.train.ddp import DistContext
    from apr.train.device import torch_threads
    from apr.train.model import CausalLM

    monkeypatch.setattr(loop, "mean_across", lambda value, ctx: value)
    monkeypatch.setattr(loop, "wrap_model", lambda model, ctx: model)
    ctx = DistContext(rank=1, world_size=4, local_rank=1, device=torch.device("cpu"))
    zero = make_plan(num_steps=0)
    with torch_threads(1):
        assert [type(e).__name__ for e in bounded(zero, run_pretrain(zero, ctx=ctx))] == ["InitEvaluated", "Finished"]
    assert not (Path(zero.options.run_dir) / "ckpt").exists()
    seen = []
    real = CausalLM.forward
    monkeypatch.setattr(CausalLM, "forward", lambda self, i, t=None, **kw: (seen.append(i.clone()) if self.training
                                                                             else None) or real(self, i, t, **kw))
    plan = make_plan(num_steps=1, steps_per_epoch=1)
    with torch_threads(1):
        bounded(plan, run_pretrain(plan, ctx=ctx))
    rows = loop.train_batch(plan.split, seed=7, step=0, batch_size=B)[2:4]  # rank 1 of 4: rows 2 and 3
    assert len(seen) == 1 and torch.equal(seen[0], torch.from_numpy(rows[:, :-1]))


def test_epoch_zero_above_its_cap_aborts_in_the_loop(make_plan, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_evaluate(monkeypatch, [6.0, 13.0])  # 2 ln 512 = 12.48: from-scratch's cap
    plan = make_plan()
    with pytest.raises(TrainingAbortedError) as info:
        events_of(plan)
    assert (info.value.reason, info.value.epoch) == ("DIVERGENCE", 0)
    assert not list((Path(plan.options.run_dir) / "ckpt").glob("*.apr"))


def test_an_init_run_loads_and_inherits(make_plan, tmp_path: Path) -> None:
    from apr.format import Flags, save_file

    first = make_plan(num_steps=1, steps_per_epoch=1)
    recorded = only(events_of(first), EpochEnd)[0]
    with open_file(recorded.checkpoint) as reader:
        metadata, flags = dict(reader.metadata), reader.flags
        tensors = {name: np.array(reader.get_tensor(name)) for name in reader.keys()}
        assert flags & Flags.HAS_VOCAB and metadata["tokenizer.vocabulary"]
    init = tmp_path / "stamped.apr"
    save_file(tensors, init, {**metadata, "license": "MIT", "data_source": "stdlib", "data_license": "PSF-2.0"}, flags)
    plan = make_plan(num_steps=1, steps_per_epoch=1, init=str(init), config=None, mode="finetune",
                     force_under_provisioned=True, force=True, seed=1009)
    events = events_of(plan)
    assert events[0].val_loss == pytest.approx(recorded.val_loss, abs=1e-6)  # the weights, not the seed's init
    with open_file(only(events, EpochEnd)[0].checkpoint) as reader:
        assert {k: reader.metadata[k] for k in ("license", "data_source", "data_license")} == {
            "license": "MIT", "data_source": "stdlib", "data_license": "PSF-2.0"}
        assert reader.metadata["training"]["init_sha256"] == hashlib.sha256(init.read_bytes()).hexdigest()


def test_run_pretrain_shuts_down_only_the_context_it_opened(make_plan, monkeypatch: pytest.MonkeyPatch) -> None:
    from apr.train.ddp import DistContext

    closed, built_on = [], []
    monkeypatch.setattr(loop, "shutdown", lambda ctx: closed.append(ctx))
    real_build = loop.build_model
    monkeypatch.setattr(loop, "build_model", lambda plan, device: built_on.append(device) or real_build(plan, device))
    plan = make_plan(num_steps=0)
    events_of(plan)
    assert len(closed) == 1 and closed[0].device == torch.device("cpu") and closed[0].world_size == 1
    assert built_on == [torch.device("cpu")]  # the model is built on the run's device
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    zero = make_plan(num_steps=0, force=True)
    bounded(zero, run_pretrain(zero, ctx=ctx))
    assert len(closed) == 1  # the caller's context stays open


def test_the_loop_stops_at_num_steps_without_early_stopping(make_plan, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = []
    real = loop.train_batch

    def draw(*a, **kw):
        drawn.append(kw["step"])
        assert len(drawn) <= 3, "a batch drawn past --num-steps 3"
        return real(*a, **kw)

    monkeypatch.setattr(loop, "train_batch", draw)
    events = events_of(make_plan(num_steps=3, steps_per_epoch=2))
    assert drawn == [0, 1, 2] and [m.step for m in only(events, StepMetrics)] == [0, 1, 2]
    assert (events[-1].status, events[-1].steps_recorded) == ("OK", 3)


def test_every_checkpoint_of_a_run_carries_its_own_fresh_run_id(make_plan, monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    import uuid
    from types import SimpleNamespace

    minted = iter([uuid.UUID(int=0xA1), uuid.UUID(int=0xB2)])
    monkeypatch.setattr(loop, "uuid", SimpleNamespace(uuid4=lambda: next(minted)))  # the loop's uuid only
    calls = []
    monkeypatch.setattr(loop, "prune_checkpoints", lambda folder, **kw: calls.append(kw["run_id"]))
    first = make_plan(num_steps=3, steps_per_epoch=2, save_every_steps=1, keep_last=9)
    events_of(first)
    ckpt = Path(first.options.run_dir) / "ckpt"
    expected = f"{0xA1:032x}"  # uuid4().hex of the run: 32 lowercase hex digits
    assert re.fullmatch("[0-9a-f]{32}", expected)
    assert {p.name: state(p)["run_id"] for p in ckpt.glob("*.apr")} == {
        "epoch-000.apr": expected, "epoch-001.apr": expected, "step-0000001.apr": expected}
    assert calls and set(calls) == {expected}  # retention prunes this run's checkpoints, by its id
    second = make_plan(num_steps=1, steps_per_epoch=1, force=True)
    events_of(second)
    assert state(Path(second.options.run_dir) / "ckpt" / "epoch-000.apr")["run_id"] == f"{0xB2:032x}"


def test_a_clock_that_does_not_advance_gives_zero_rates_and_grads_are_released(make_plan,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    from types import SimpleNamespace

    models = []
    real_build = loop.build_model
    monkeypatch.setattr(loop, "build_model", lambda plan, device: models.append(real_build(plan, device)) or models[-1])
    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=lambda: 100.0))  # every step takes 0 s
    events = events_of(make_plan(num_steps=3, steps_per_epoch=1))
    steps = only(events, StepMetrics)
    assert [(m.tokens_per_sec, m.wall_ms) for m in steps] == [(0.0, 0.0)] * 3  # no rate from a zero duration
    assert [e.wall_seconds for e in only(events, EpochEnd)] == [0.0] * 3 and events[-1].wall_seconds == 0.0
    assert len(models) == 1 and all(p.grad is None for p in models[0].parameters())  # zero_grad(set_to_none=True)
    shas = [e.optimizer_state_sha for e in only(events, EpochEnd)]
    assert all(re.fullmatch("[0-9a-f]{64}", sha) for sha in shas) and len(set(shas)) == 3  # AdamW moves each epoch
