"""`apr readiness FILE --model-card CARD.md [--json] [--require-token]` and `apr card FILE -o CARD.md`."""

from __future__ import annotations

import argparse

from apr.cli import exit_codes
from apr.cli.output import emit_result, err, escape, out, read_json_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("readiness", help="the seven publish gates: GO / NO-GO, each blocker with its fix")
    p.add_argument("file", help="the .apr file")
    p.add_argument("--model-card", help="the model card (Markdown with YAML front matter)")
    p.add_argument("--require-token", action="store_true", help="also require HF_TOKEN to be set")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run_readiness_cmd, reads_checkpoints=("file",), needs_extras=("train",))

    c = sub.add_parser("card", help="write a model card from a checkpoint's metadata and training report")
    c.add_argument("file", help="the .apr file")
    c.add_argument("--report", help="a training report (`apr pretrain --json` output) for the metrics")
    c.add_argument("--run-dir", metavar="DIR", help="the training run whose DIR/metrics.jsonl gives the "
                   "\"Training results\" table (default: NAME.metrics.jsonl beside FILE, or the run of RUN/ckpt/FILE)")
    c.add_argument("-o", "--output", required=True, help="the card to write (CARD.md); with the [plot] extra, "
                   "the loss curve goes beside it as CARD-loss.png")
    c.add_argument("-f", "--force", action="store_true", help="replace an existing card")
    c.add_argument("--json", action="store_true", help="print one JSON document")
    c.set_defaults(handler=run_card_cmd, reads_checkpoints=("file",), stdout_output=("output", "MODEL_CARD.md"))


def run_readiness_cmd(args: argparse.Namespace) -> int:
    from apr.cli.qa_cmd import render_gates
    from apr.readiness import ReadinessOptions, run_readiness

    console = err()
    report = run_readiness(
        args.file,
        ReadinessOptions(model_card=args.model_card, require_token=args.require_token),
        on_gate=None if args.json else lambda g: console.print(f"  {g.name} done", style="dim"),
    )
    code = exit_codes.GO if not report.failed else exit_codes.NO_GO
    if args.json:
        return emit_result("readiness", report.to_dict(), input=report.model, exit_code=code)
    else:
        o = out()
        o.print(f"[bold]apr readiness {escape(report.model)}[/] (sha256 {report.sha256[:12]})", markup=True)
        render_gates(report.gates, o)
        if report.failed:
            o.print(f"  verdict: [red]NO-GO[/] ({len(report.failed)} blocker(s): {escape(', '.join(g.name for g in report.failed))})", markup=True)
        else:
            o.print("  verdict: [green]GO[/]", markup=True)
    return code


def run_card_cmd(args: argparse.Namespace) -> int:
    from apr.format.atomic import atomic_write
    from apr.format.outputs import check_file_output
    from apr.readiness import build_card
    from apr.readiness.card_training import plan_training_results, write_training_curve

    # the output policy: never the checkpoint or the report itself; an existing card needs --force
    check_file_output(args.output, force=args.force, inputs=(args.file, args.report))
    report = read_json_argument(args.report, "--report") if args.report else None
    plan = plan_training_results(args.file, args.output, run_dir=args.run_dir, force=args.force,
                                 inputs=(args.file, args.report))
    training = write_training_curve(plan) if plan is not None else None  # the PNG first: the card links it
    text = build_card(args.file, report, training=training)
    with atomic_write(args.output) as handle:
        handle.write(text.encode("utf-8", "backslashreplace"))  # a lone surrogate from metadata, escaped
    if args.json:
        return emit_result("card", {"output": args.output, "bytes": len(text.encode("utf-8", "backslashreplace")),
                                    "metrics_log": training.source if training else None,
                                    "training_results_rows": len(training.rows) if training else 0,
                                    "loss_curve": str(plan.curve_path) if plan and training and training.curve else None},
                           input=args.file)
    else:
        out().print(f"✓ wrote model card → {args.output}")
        if training is not None:
            curve = f", loss curve {plan.curve_path}" if plan and training.curve else f" (no loss curve: {training.curve_missing_reason})"
            out().print(f"  training results: {len(training.rows)} evaluation(s) from {training.source}{curve}",
                        markup=False, highlight=False)
    return exit_codes.OK
