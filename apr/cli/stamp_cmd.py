"""`apr stamp FILE [fields...] (-o OUT [--force] | --in-place) [--json]`, and `apr stamp FILE --recover`.

Sets identity, provenance and an embedded tokenizer without touching tensor bytes
(docs/aprender-format.md §2; docs/stamp.md). Licenses are checked as SPDX expressions before
anything is read; every refusal writes nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from apr.cli.output import emit_result, err, out

_SHOWN = ("license", "data_source", "data_license", "hf_architecture", "hf_model_type", "architecture")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stamp",
        help="set license, data provenance, HF identity, family or tokenizer; tensor bytes untouched",
        description="Patch an .apr file's identity and provenance. Give at least one field, and either "
        "-o OUT (a stamped copy) or --in-place.",
    )
    p.add_argument("file", help="the .apr file to stamp")
    fields = p.add_argument_group("fields (an empty string clears a field)")
    fields.add_argument("--license", metavar="SPDX", help="license of the weights, an SPDX expression (Apache-2.0, 'Apache-2.0 OR MIT')")
    fields.add_argument("--data-source", metavar="STR", help="training data, e.g. bigcode/the-stack-dedup or teacher-only")
    fields.add_argument("--data-license", metavar="TEXT",
                        help="license of the training data: an SPDX expression (stored canonical), or free text "
                        "such as 'Apache-2.0 / permissive-aggregate' (stored verbatim, as aprender does)")
    fields.add_argument("--hf-architecture", metavar="CLASS", help="Hugging Face class, e.g. Qwen2ForCausalLM")
    fields.add_argument("--hf-model-type", metavar="SLUG", help="config.json model_type, e.g. qwen2")
    fields.add_argument("--architecture", metavar="SLUG", help="family slug that `apr pretrain --init` reads, e.g. qwen2")
    fields.add_argument("--tokenizer", metavar="DIR", help="embed the tokenizer in DIR (tokenizer.json, else vocab.json + merges.txt); sets HAS_VOCAB")
    fields.add_argument("--name", metavar="STR", help="the model's name")
    fields.add_argument("--description", metavar="STR", help="one line describing the model")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="OUT", help="write the stamped copy here")
    where.add_argument("--in-place", action="store_true", help="stamp FILE itself (crash-safe; rewrites only the header and metadata when they fit)")
    where.add_argument("--recover", action="store_true", help="only undo an interrupted --in-place stamp of FILE")
    p.add_argument("--strict", action="store_true",
                   help="--data-license must be an SPDX expression too (free text refused, exit 5)")
    p.add_argument("-f", "--force", action="store_true", help="with -o: replace an existing output file")
    p.add_argument("--allow-damaged", action="store_true",
                   help="with -o: salvage a FILE whose footer CRC does not match (the copy keeps the mismatch; "
                   "the report says so)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run, stdout_output=("output", "stamped.apr"))  # -o -: apr.cli.stdout_output


def build_patch(args: argparse.Namespace):
    """The `ProvenancePatch` the flags ask for; licenses validated first, the tokenizer read last."""
    from apr.stamp import ProvenancePatch, validate_data_license, validate_license

    license_ = validate_license(args.license, flag="--license") if args.license is not None else None
    data_license = (
        validate_data_license(args.data_license, strict=getattr(args, "strict", False))
        if args.data_license is not None else None
    )
    tokenizer = None
    if args.tokenizer is not None:
        from apr.tokenizer import read_tokenizer_dir

        tokenizer = read_tokenizer_dir(args.tokenizer)
    return ProvenancePatch(
        license=license_, data_source=args.data_source, data_license=data_license,
        hf_architecture=args.hf_architecture, hf_model_type=args.hf_model_type, architecture=args.architecture,
        name=args.name, description=args.description, tokenizer=tokenizer,
    )


def _document(result: Any) -> dict[str, Any]:
    meta = result.metadata
    stamped = {key: meta.get(key) or None for key in (*_SHOWN, "name", "description")}
    vocabulary = meta.get("tokenizer.vocabulary")
    return {
        "command": "stamp",
        "input": result.input,
        "output": result.output,
        "input_bytes": result.input_bytes,
        "output_bytes": result.output_bytes,
        "tensor_count": result.tensor_count,
        "stamped": stamped,
        "tokenizer_vocab_size": len(vocabulary) if isinstance(vocabulary, list) else None,
        "header_flags_bits": result.flags,
        "mode": "in-place" if result.mode == "unchanged" else result.mode,
        "unchanged": result.mode == "unchanged",
        "copy_method": result.copy_method,
        "tensor_bytes_copied": result.tensor_bytes_copied,
        "recovered": result.recovered,
        "elapsed_ms": round(result.elapsed_ms, 3),
        "damaged": result.damaged.to_dict() if result.damaged is not None else None,
    }


def run(args: argparse.Namespace) -> int:
    from apr.errors import UsageError
    from apr.stamp import recover_file, stamp_file

    if args.recover:
        outcome = recover_file(args.file)
        if args.json:
            return emit_result("stamp", {"recovered": outcome}, input=args.file)
        else:
            text = {"none": "nothing to recover", "rolled-back": "interrupted stamp rolled back; the file is as before it",
                    "stale": "removed a stale journal; the file was not touched"}[outcome]
            out().print(f"✓ {args.file}: {text}", markup=False, highlight=False)
        return 0
    if args.output is None and not args.in_place:
        raise UsageError("apr stamp needs -o OUT or --in-place", field="-o",
                         hint=f"apr stamp {args.file} ... -o stamped.apr   (or --in-place to stamp the file itself)")
    if args.force and args.in_place:
        raise UsageError("--force applies to -o only", field="--force", hint="drop --force")
    if args.allow_damaged and args.output is None:
        raise UsageError("--allow-damaged applies to -o only", field="--allow-damaged",
                         hint="an in-place stamp never reads tensor data; drop --allow-damaged")
    if args.output is not None:
        from apr.format.outputs import refuse_overlap

        refuse_overlap(args.output, [args.tokenizer])  # FILE itself is checked by stamp_file
    patch = build_patch(args)
    if not args.json:
        err().print(f"Reading {args.file}", markup=False, highlight=False)
    result = stamp_file(args.file, patch, output=args.output, in_place=args.in_place, force=args.force,
                        allow_damaged=args.allow_damaged)
    doc = _document(result)
    if args.json:
        return emit_result("stamp", doc, input=doc["input"])
    console = out()
    console.print(
        f"✓ Stamped {result.input} → {result.output} ({result.tensor_count} tensors, "
        f"{result.input_bytes} → {result.output_bytes} bytes)", markup=False, highlight=False,
    )
    for key in _SHOWN:
        value = doc["stamped"][key]
        console.print(f"  {key + ':':<16} {value if value is not None else '(unset)'}", markup=False, highlight=False)
    for key in ("name", "description"):
        if doc["stamped"][key] is not None:
            console.print(f"  {key + ':':<16} {doc['stamped'][key]}", markup=False, highlight=False)
    if patch.tokenizer is not None:
        console.print(f"  {'tokenizer:':<16} {doc['tokenizer_vocab_size']} tokens, "
                      f"{len(patch.tokenizer.merges)} merges (HAS_VOCAB)", markup=False, highlight=False)
    how = {"in-place": "header and metadata rewritten in place",
           "unchanged": "already stamped with these values; nothing written",
           "rewrite": f"{result.tensor_bytes_copied} tensor bytes copied ({result.copy_method})"}[result.mode]
    err().print(f"  {how}; {doc['elapsed_ms']:.1f} ms", markup=False, highlight=False)
    if result.damaged is not None:
        err().print(f"warning: {result.damaged.path}: damaged input stamped (--allow-damaged): "
                    f"{result.damaged.carried_over}; the output's footer keeps the mismatch",
                    markup=False, highlight=False)
    return 0
