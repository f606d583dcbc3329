"""`apr publish REPO FILE --model-card CARD.md [--formats apr,safetensors,gguf] [--quantize Q]
[--revision R] [--private] [--commit-message M] [--dry-run] [--staging DIR] [--json]`.

Readiness first (NO-GO: the blockers and their fixes, exit 1, nothing staged or uploaded); then the
staging folder (`apr.publish.staging`); then, with a token and without ``--dry-run``, one commit to
the Hub (`apr.publish.upload`). Without a token it prints what it would commit and keeps the folder.
"""

from __future__ import annotations

import argparse

from apr.cli import exit_codes
from apr.cli.output import emit_result, err, escape, out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("publish", help="readiness, then stage and upload a checkpoint to the Hugging Face Hub",
                       description="Run the readiness gates on FILE; on GO, build a staging folder laid out as the "
                       "Hub repository (README.md card, the .apr, a transformers folder, the GGUF) and commit it "
                       "to REPO with huggingface_hub. Without a token, or with --dry-run, print the commit instead.")
    p.add_argument("repo", metavar="REPO", help="the Hub repository, OWNER/NAME")
    p.add_argument("file", help="the .apr checkpoint to publish")
    p.add_argument("--model-card", required=True, metavar="CARD.md", help="the model card (apr card writes one)")
    p.add_argument("--formats", default="apr,safetensors,gguf", help="comma-separated: apr, safetensors, gguf")
    p.add_argument("--quantize", default="q8_0", help="the GGUF's type: f16, q8_0, q6_k, q4_k (default q8_0)")
    p.add_argument("--revision", help="the branch to commit to (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--commit-message", help="the commit's message (default: apr publish)")
    p.add_argument("--dry-run", action="store_true", help="stage and print the commit; upload nothing")
    p.add_argument("--staging", metavar="DIR", help="the staging folder (default: NAME.publish)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run, reads_checkpoints=("file",), needs_extras=("train",))


def run(args: argparse.Namespace) -> int:
    from apr.publish.staging import build_staging, parse_formats, plan_publish
    from apr.publish.upload import hub_token, upload_staging
    from apr.readiness import ReadinessOptions, run_readiness

    plan = plan_publish(args.repo, args.file, model_card=args.model_card, formats=parse_formats(args.formats),
                        quantize=args.quantize, staging=args.staging)
    console = err()
    report = run_readiness(plan.checkpoint, ReadinessOptions(model_card=str(plan.model_card)),
                           on_gate=None if args.json else lambda g: console.print(f"  {g.name} done", style="dim"))
    doc: dict = {"repo": plan.repo, "sha256": report.sha256,
                 "verdict": report.verdict, "readiness": report.to_dict(), "staging": None, "files": [],
                 "uploaded": False, "dry_run": bool(args.dry_run), "commit": None}
    if report.failed:
        if args.json:
            return emit_result("publish", doc, input=str(plan.checkpoint), exit_code=exit_codes.NO_GO)
        else:
            from apr.cli.qa_cmd import render_gates

            o = out()
            o.print(f"[bold]apr publish {escape(plan.repo)}[/]: readiness NO-GO, nothing staged or uploaded",
                    markup=True)
            render_gates(report.gates, o)
        return exit_codes.NO_GO
    files = build_staging(plan, sha256=report.sha256, verdict=report.verdict)
    doc["staging"], doc["files"] = str(plan.staging), [f.to_dict() for f in files]
    token = None if args.dry_run else hub_token()
    if token is not None:
        result = upload_staging(plan.staging, plan.repo, token=token, revision=args.revision, private=args.private,
                                commit_message=args.commit_message)
        doc["uploaded"], doc["commit"] = True, result.to_dict()
    if args.json:
        return emit_result("publish", doc, input=str(plan.checkpoint))
    o = out()
    o.print(f"✓ readiness GO; staged {len(files)} files in {plan.staging} (sha256 {report.sha256[:12]})")
    for f in files:
        o.print(f"    {escape(f.path):<40} {f.bytes:>14,} bytes")
    if doc["uploaded"]:
        o.print(f"✓ committed to https://huggingface.co/{plan.repo}: {escape(str(doc['commit']['commit_url']))}")
    else:
        why = "--dry-run" if args.dry_run else "no Hugging Face token (set HF_TOKEN or run `hf auth login`)"
        o.print(f"  not uploaded ({why}); the commit would be: create_repo({plan.repo!r}, exist_ok=True"
                f"{', private=True' if args.private else ''}), then upload_folder({str(plan.staging)!r}"
                f"{', revision=' + repr(args.revision) if args.revision else ''})")
    return exit_codes.OK
