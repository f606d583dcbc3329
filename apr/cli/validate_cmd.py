"""`apr validate FILE [--strict] [--json]`: every structural check and the content checks.

Exit 0 when the file is valid, 5 (validation failed) otherwise; 3 for a missing file. A foreign
format (GGUF, safetensors, APR v1) fails the magic check with the command that converts it.
"""

from __future__ import annotations

import argparse

from apr.cli import exit_codes
from apr.cli.output import emit_result, err, literal, out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check an .apr file's structure, both CRCs and its tensor values")
    p.add_argument("file", help="the .apr file")
    p.add_argument("--strict", action="store_true", help="all-zero tensors fail instead of warning")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run, reads_checkpoints=("file",))


def run(args: argparse.Namespace) -> int:
    report = _validate_with_progress(args.file, strict=args.strict, show=not args.json)
    code = exit_codes.OK if report.passed else exit_codes.EXIT_VALIDATION
    if args.json:
        return emit_result("validate", report.to_dict(), input=report.path, exit_code=code)
    else:
        _render(report)
    return code


def _render(report) -> None:
    """The report for people; check details (tensor names, paths) are printed literally."""
    from apr.format.validate import Status

    console = out()
    style = {Status.PASS: "green", Status.FAIL: "red", Status.WARN: "yellow", Status.SKIP: "dim"}
    console.print(literal(report.path, style="bold"))
    for check in report.checks:
        line = literal("  ")
        line.append_text(literal(f"{check.status.value:4}", style=style[check.status]))
        line.append_text(literal(f" [{check.id:>2}] {check.name}: "))
        line.append_text(literal(check.detail))
        console.print(line)
    doc = report.to_dict()
    line = literal("  ")
    line.append_text(literal(doc["verdict"], style="green" if report.passed else "red"))
    line.append_text(literal(f": {doc['checks_ran']} of {doc['total_checks']} checks ran, {doc['failed']} failed"))
    console.print(line)
    if not report.passed:
        failed = "; ".join(f"[{c.id}] {c.name}: {c.detail}" for c in report.failed if c.status is Status.FAIL)
        message = literal("error:", style="bold red")
        message.append_text(literal(f" validation failed — {failed}"))
        err().print(message)


def _validate_with_progress(path: str, *, strict: bool, show: bool):
    from apr.format.validate import validate_file

    if not show:
        return validate_file(path, strict=strict)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(
        TextColumn("validating"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err(), transient=True
    ) as progress:
        task = progress.add_task("validate", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return validate_file(path, strict=strict, progress=update)
