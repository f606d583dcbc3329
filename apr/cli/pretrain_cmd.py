"""`apr pretrain`: train a llama/qwen2/qwen3 model on token shards, on CPU or CUDA (or several
GPUs under torchrun), writing one identity-carrying checkpoint per epoch.

aprender's flags (docs/aprender-format.md §5.5) plus ``--config`` for a from-scratch shape. All
checks run before anything is built or written (`apr.train.plan`); the loop lives in
`apr.train.loop`. Progress goes to stderr; ``--json`` prints the run report on stdout. The folder
checkpoints go to (``--run-dir``/ckpt) passes the output policy first (`refuse_run_dir_overlap`).
"""

from __future__ import annotations

import argparse
import os
import logging
from typing import Any

logger = logging.getLogger("apr.cli.pretrain")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "pretrain", help="train a llama/qwen2/qwen3 model on token shards (CPU, CUDA, torchrun)",
        description="Pre-train or fine-tune a decoder-only model on `apr tokenize` shards. With --init, "
                    "start from an APR checkpoint (SPEC §49 pretrained-init; apr-pretrain-from-init-v1).",
    )
    p.add_argument("--dataset", required=True, metavar="DIR", help="token shards from `apr tokenize`")
    p.add_argument("--tokenizer", metavar="DIR|FILE.apr",
                   help="tokenizer to embed in checkpoints (default: the one embedded in --init)")
    p.add_argument("--run-dir", required=True, metavar="DIR", help="checkpoints go to DIR/ckpt/epoch-NNN.apr")
    p.add_argument("--mode", choices=("finetune", "from-scratch"), default="finetune",
                   help="hyper-parameter defaults: finetune lr 5e-5/warmup 100/target 2.2; "
                        "from-scratch 3e-4/1000/3.0 (default finetune)")
    p.add_argument("--lr", type=float, help="peak learning rate (overrides the mode default)")
    p.add_argument("--num-steps", type=int, default=1000, help="optimizer steps (default 1000; 0 = evaluate "
                   "the --init weights and re-emit them as ckpt/init.apr)")
    p.add_argument("--warmup-steps", type=int, help="linear warmup steps (overrides the mode default)")
    p.add_argument("--batch-size", type=int, default=16, help="global sequences per step (default 16)")
    p.add_argument("--seq-length", type=int, default=1024, help="tokens per sequence (default 1024)")
    p.add_argument("--steps-per-epoch", type=int, default=100, help="steps between checkpoints (default 100)")
    p.add_argument("--seed", type=int, default=42, help="seed for init and batch sampling (default 42)")
    p.add_argument("--target-val-loss", type=float, help="stop early once val_loss reaches it (mode default)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--init", metavar="FILE.apr", help="initial weights from an APR checkpoint (§49 "
                   "pretrained-init); optimizer state starts fresh")
    p.add_argument("--resume", metavar="RUN_DIR|CKPT",
                   help="continue the same run from its latest checkpoint (or CKPT): weights, AdamW, schedule "
                        "position, data cursor and RNG states; the other flags must describe the same run")
    p.add_argument("--save-every-steps", type=int, metavar="N",
                   help="also checkpoint (with training state) every N steps inside an epoch")
    p.add_argument("--keep-last", type=int, metavar="K",
                   help="keep only this run's last K checkpoints and its best by val_loss (default: keep all)")
    p.add_argument("--allow-world-size-change", action="store_true",
                   help="with --resume: accept another number of processes (same global batch; equal within "
                        "DDP's float tolerance, not bit for bit)")
    p.add_argument("--force-under-provisioned", action="store_true",
                   help="run even when D < 20*N (chinchilla-gate-v1); logs a BYPASSED warning")
    p.add_argument("--val-shard", metavar="DIR", help="held-out token shards (default: 10%% tail of --dataset)")
    p.add_argument("--config", metavar="config.json", help="Hugging Face config.json for a from-scratch shape")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (slow start, faster steps)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite checkpoints already in --run-dir")
    p.add_argument("--log-every-steps", type=int, metavar="N",
                   help="append a row to RUN_DIR/metrics.jsonl every N steps (default: num_steps/100, "
                        "between 1 and 100); a row after every evaluation too")
    p.add_argument("--report-to", choices=("none", "tensorboard"), default="none",
                   help="also write the metrics as TensorBoard events under RUN_DIR/tb/ "
                        "(needs pip install 'apr-contracts[tensorboard]')")
    p.add_argument("--json", action="store_true", help="print the run report as one JSON document")
    p.set_defaults(handler=run, reads_checkpoints=("init",), needs_extras=("train",))


def options_from_args(args: argparse.Namespace) -> Any:
    from apr.train.plan import PretrainOptions

    return PretrainOptions(
        dataset=args.dataset, run_dir=args.run_dir, tokenizer=args.tokenizer, mode=args.mode, lr=args.lr,
        num_steps=args.num_steps, warmup_steps=args.warmup_steps, batch_size=args.batch_size,
        seq_length=args.seq_length, steps_per_epoch=args.steps_per_epoch, seed=args.seed,
        target_val_loss=args.target_val_loss, device=args.device, init=args.init,
        force_under_provisioned=args.force_under_provisioned, val_shard=args.val_shard, config=args.config,
        force=args.force, compile=args.compile, resume=args.resume, save_every_steps=args.save_every_steps,
        keep_last=args.keep_last, allow_world_size_change=args.allow_world_size_change,
    )


def refuse_run_dir_overlap(args: argparse.Namespace) -> None:
    """The checkpoint folder (``--run-dir``/ckpt, where `--force` overwrites epoch files) may not be,
    hold or lie inside anything the run reads: ``--init runs/a/ckpt/epoch-002.apr --run-dir runs/a
    --force`` would overwrite its own starting point (`apr.format.outputs.refuse_overlap`)."""
    from apr.format.outputs import refuse_overlap
    from apr.train.checkpoint import checkpoint_dir

    # --init must be a file: a folder there is FALSIFY-APR-PRETRAIN-INIT-003's refusal (the precise
    # one, from the plan), not an overlap with the run folder.
    init = args.init if args.init is None or not os.path.isdir(args.init) else None
    refuse_overlap(checkpoint_dir(args.run_dir), [args.dataset, args.val_shard, args.tokenizer, init,
                                                  args.config], flag="--run-dir")


def run(args: argparse.Namespace) -> int:
    from apr.cli.output import emit_result, err, out
    from apr.train.ddp import init_distributed, shutdown
    from apr.train.loop import EpochEnd, Finished, InitEvaluated, StepMetrics, run_pretrain
    from apr.train.metrics_log import check_log_targets, log_path
    from apr.train.plan import plan_pretrain

    check_reporting_flags(args)  # a missing tensorboard extra is refused before any training work
    refuse_run_dir_overlap(args)
    options = options_from_args(args)
    ctx = init_distributed(options.device)
    try:
        plan = plan_pretrain(options, world_size=ctx.world_size)
        report: dict[str, Any] = _report_head(plan, ctx)
        steps: list[dict[str, Any]] = []
        epochs: list[dict[str, Any]] = []
        show = ctx.is_main
        # a resumed run continues its own log (apr.train.metrics_log.continue_log, on rank 0 in
        # _recorder); a new run checks the run folder's earlier metrics on every rank before rank 0
        # creates any (the barrier), so all refuse together instead of the others waiting on rank 0
        start = plan.resume.progress.step if plan.resume is not None else 0
        replaced = [] if plan.resume is not None else check_log_targets(
            options.run_dir, force=options.force, tensorboard=args.report_to == "tensorboard")
        if ctx.enabled:
            import torch.distributed

            torch.distributed.barrier()
        recorder = _recorder(args, plan, report, replaced) if ctx.is_main else _NoRecorder()
        with recorder, _progress(err(), enabled=show, total=options.num_steps, completed=start) as bar:
            for event in run_pretrain(plan, ctx=ctx):
                recorder.on_event(event)
                if isinstance(event, InitEvaluated):
                    report["init_val_loss"] = event.val_loss
                    report["optimizer_fresh"] = {"state_entries": event.optimizer_state_entries,
                                                 "scheduler_step": event.scheduler_step}
                    report["device"], report["param_count"] = event.device, event.param_count
                    report["resume"] = ({"checkpoint": event.resumed_from, "step": event.start_step,
                                         "val_loss": event.val_loss} if event.resumed_from else None)
                elif isinstance(event, StepMetrics):
                    steps.append(_as_dict(event))
                    bar.advance(event)
                elif isinstance(event, EpochEnd):
                    epochs.append(_as_dict(event))
                elif isinstance(event, Finished):
                    report.update(_as_dict(event))
        report["per_step_metrics"] = steps
        report["metrics_log"] = str(log_path(options.run_dir))
        report["epochs"] = epochs
        if ctx.is_main:
            if args.json:
                return emit_result("pretrain", report, input=args.dataset)
            else:
                out().print(f"{report['status']}: {report['detail']}; init val_loss {report['init_val_loss']:.4f}, "
                            f"final val_loss {report['final_val_loss']:.4f}, {report['epochs_completed']} epoch(s), "
                            f"checkpoints in {options.run_dir}/ckpt", markup=False, highlight=False)
        return 0
    finally:
        shutdown(ctx)


def check_reporting_flags(args: argparse.Namespace) -> None:
    """``--log-every-steps`` is a positive count, and ``--report-to tensorboard`` has its package:
    both refused at once, before the plan reads any data (exit 64 and exit 9 with the pip command)."""
    from apr.cli.extras import require_extras
    from apr.errors import UsageError

    if args.log_every_steps is not None and args.log_every_steps < 1:
        raise UsageError(f"--log-every-steps must be >= 1, got {args.log_every_steps}", field="--log-every-steps",
                         hint="pass a positive number of steps, or leave it out for the default")
    if args.report_to == "tensorboard":
        require_extras("pretrain --report-to tensorboard", ("tensorboard",))


def _recorder(args: argparse.Namespace, plan: Any, report: dict[str, Any], replaced: list[Any]) -> Any:
    """Rank 0's recorder: metrics.jsonl always (a fresh file; on --resume the run's own log cut back
    to the checkpoint's step and continued), TensorBoard on request, the earlier run's event files
    (``replaced``, allowed by --force) removed first."""
    from apr.train.metrics_log import MetricsLogWriter, continue_log, log_path
    from apr.train.metrics_recorder import MetricsRecorder, default_log_every

    o = plan.options
    tensorboard = args.report_to == "tensorboard"
    for event_file in replaced:
        event_file.unlink(missing_ok=True)
    os.makedirs(o.run_dir, exist_ok=True)
    start, wall_offset = 0, 0.0
    if plan.resume is not None:  # the same run continued: keep its rows up to the checkpoint, append after
        start = plan.resume.progress.step
        kept = continue_log(log_path(o.run_dir), start, expect_evaluation=plan.resume.kind == "epoch")
        wall_offset = kept[-1].wall_s if kept else 0.0
    sinks: list[Any] = [MetricsLogWriter(log_path(o.run_dir), fresh=plan.resume is None)]
    try:
        if tensorboard:
            from apr.train.tensorboard_sink import TensorBoardSink, tensorboard_dir

            sinks.append(TensorBoardSink(tensorboard_dir(o.run_dir), run_config=report))
    except BaseException:
        sinks[0].close()
        raise
    return MetricsRecorder(sinks, log_every=args.log_every_steps or default_log_every(o.num_steps),
                           steps_per_epoch=o.steps_per_epoch, num_steps=o.num_steps, start_step=start,
                           wall_offset=wall_offset)


class _NoRecorder:
    """Ranks other than 0 write no metrics."""

    def on_event(self, event: Any) -> None:
        pass

    def __enter__(self) -> _NoRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _as_dict(record: Any) -> dict[str, Any]:
    from dataclasses import asdict

    document = asdict(record)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in document.items()}


def _report_head(plan: Any, ctx: Any) -> dict[str, Any]:
    cfg = plan.model_config
    return {
        "command": "pretrain",
        "run_dir": plan.options.run_dir,
        "mode": plan.options.mode,
        "world_size": ctx.world_size,
        "model": {"architecture": cfg.family, "hf_architecture": cfg.hf_architecture,
                  "hidden_size": cfg.hidden_size, "num_layers": cfg.num_layers, "vocab_size": cfg.vocab_size},
        "init": {"path": plan.init.path, "sha256": plan.init_sha256} if plan.init else None,
        "chinchilla": plan.chinchilla.to_json(),
        "warnings": list(plan.warnings),
        "schedule": {"lr_max": plan.schedule.lr_max, "lr_min": plan.schedule.lr_min,
                     "warmup_steps": plan.schedule.warmup_steps, "total_steps": plan.schedule.total_steps},
        "target_val_loss": plan.target_val_loss,
    }


class _NoBar:
    def advance(self, event: Any) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _Bar:
    """A transient rich bar on stderr: step, loss, lr and tokens/s."""

    def __init__(self, console: Any, total: int, completed: int = 0) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]pretrain"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[tps]:,.0f} tok/s"),
            TimeRemainingColumn(), console=console, transient=True,
        )
        self._task = self._progress.add_task("pretrain", total=total, completed=completed, loss=float("nan"), lr=0.0,
                                             tps=0.0)

    def advance(self, event: Any) -> None:
        self._progress.update(self._task, advance=1, loss=event.train_loss, lr=event.lr, tps=event.tokens_per_sec)

    def __enter__(self) -> _Bar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


def _progress(console: Any, *, enabled: bool, total: int, completed: int = 0) -> Any:
    return _Bar(console, total, completed) if enabled and total > 0 else _NoBar()
