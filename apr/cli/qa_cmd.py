"""`apr qa FILE [--json] [--skip-GATE ...] [--min-executed N] [--previous-report FILE]`.

Exit 0 when the verdict is GO, 1 (NO-GO) otherwise; 3 for a missing file. The JSON document is
aprender's QaReport plus ``verdict`` and ``sha256`` (docs/aprender-format.md §4.2); the throughput
gates add ``unit`` (``tokens/cpu-second``: their value and threshold are CPU-time rates, not
wall-clock ones, so the same file gets the same verdict on an idle and on a busy machine).
"""

from __future__ import annotations

import argparse

from apr.cli import exit_codes
from apr.cli.output import emit_result, err, escape, out, previous_qa_report_problem, read_json_argument

_GATE_NAMES = (
    "capability_match", "tensor_contract", "metadata_plausibility", "golden_output", "throughput",
    "format_parity", "gpu_speedup", "performance_regression",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("qa", help="run the QA gates on a checkpoint: GO / NO-GO")
    p.add_argument("file", help="the .apr file")
    for name in _GATE_NAMES:
        p.add_argument(f"--skip-{name.replace('_', '-')}", dest=f"skip_{name}", action="store_true",
                       help=f"skip the {name} gate (reported as skipped, never as passed)")
    p.add_argument("--min-executed", type=int, default=0, help="NO-GO unless at least N gates ran")
    p.add_argument("--previous-report", help="a previous `apr qa --json` report for performance_regression")
    p.add_argument("--assert-tps", type=float, default=10.0,
                   help="throughput threshold in tokens per CPU-second of one thread (default 10); measured in "
                   "CPU time, so the verdict does not depend on the machine's load (docs/publish.md)")
    p.add_argument("--prompt", default="The", help="prompt for golden_output and throughput")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run, reads_checkpoints=("file",), needs_extras=("train",))


def render_gates(gates, console) -> None:
    for g in gates:
        status = "[dim]SKIP[/]" if g.skipped else "[green]PASS[/]" if g.passed else "[red]FAIL[/]"
        console.print(f"  {status} {escape(g.name):<22} ", end="", markup=True)
        console.print(g.message, markup=False, highlight=False)
        if not g.skipped and not g.passed and g.fix:
            console.print(f"         fix: {g.fix}", markup=False, highlight=False)


def run(args: argparse.Namespace) -> int:
    from apr.qa import QaOptions, run_qa

    previous = read_json_argument(args.previous_report, "--previous-report", check=previous_qa_report_problem) if args.previous_report else None
    skip = frozenset(name for name in _GATE_NAMES if getattr(args, f"skip_{name}"))
    options = QaOptions(prompt=args.prompt, assert_tps=args.assert_tps, previous_report=previous, skip=skip)
    console = err()
    report = run_qa(args.file, options, min_executed=args.min_executed,
                    on_gate=None if args.json else lambda g: console.print(f"  {g.name} done", style="dim"))
    if args.json:
        return emit_result("qa", report.to_dict(), input=report.model,
                           exit_code=exit_codes.GO if report.passed else exit_codes.NO_GO)
    else:
        o = out()
        o.print(f"[bold]apr qa {escape(report.model)}[/] (sha256 {report.sha256[:12]})", markup=True)
        render_gates(report.gates, o)
        colour = "green" if report.passed else "red"
        o.print(f"  verdict: [{colour}]{escape(report.verdict)}[/] — {escape(report.summary)}", markup=True)
    return exit_codes.GO if report.passed else exit_codes.NO_GO
