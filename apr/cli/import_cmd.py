"""`apr import SRC -o OUT.apr [--quantize f16|bf16|q8|q4|q4_k] [--tokenizer PATH] [--allow-no-config]`.

SRC is a Hugging Face model folder (config.json, model.safetensors or a sharded index, tokenizer
files), one ``.safetensors`` file beside its config.json, or a ``.gguf`` file (docs/convert.md).
"""

from __future__ import annotations

import argparse

from apr.cli.output import emit_result, err, json_names, out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import a Hugging Face folder or a GGUF file into an .apr file",
                       description="Import a Hugging Face model folder (config.json + safetensors + tokenizer) "
                       "or a llama/qwen2/qwen3 .gguf file into APR v2, tokenizer embedded.")
    p.add_argument("source", help="model folder, .safetensors file or .gguf file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.apr", help="the .apr file to write")
    p.add_argument("--quantize", metavar="Q", help="store float weights as f16, bf16, q8, q4 or q4_k (default: as in the source)")
    p.add_argument("--tokenizer", metavar="PATH", help="embed this tokenizer folder or tokenizer.json instead of the source's")
    p.add_argument("--allow-no-config", action="store_true", help="import a folder without config.json (identity stays unset)")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing output file")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from apr.cli.convert_progress import progress_bar
    from apr.convert.targets import parse_import_quant
    from apr.errors import UsageError

    quant = parse_import_quant(args.quantize)
    source = Path(args.source)
    with progress_bar("importing", show=not args.json) as progress:
        if source.suffix.lower() == ".gguf":
            if args.tokenizer is not None:
                raise UsageError("--tokenizer applies to Hugging Face sources; a GGUF file carries its own",
                                 field="--tokenizer", hint="drop --tokenizer for .gguf sources")
            from apr.convert.gguf_import import import_gguf

            report = import_gguf(source, args.output, quantize=quant, force=args.force, progress=progress)
        else:
            from apr.convert.hf_import import import_hf

            report = import_hf(source, args.output, quantize=quant, tokenizer=args.tokenizer,
                               allow_no_config=args.allow_no_config, force=args.force, progress=progress)
    if args.json:
        return emit_result("import", json_names(report.to_dict(), path="output", file_size="bytes"), input=args.source)
    out().print(
        f"{report.path}: {report.tensor_count} tensors, {report.param_count:,} parameters, "
        f"{report.file_size:,} bytes ({report.architecture or 'unknown family'}, "
        f"hf_architecture={report.hf_architecture!r}, tokenizer {'embedded' if report.has_vocab else 'MISSING'})",
        markup=False, highlight=False,
    )
    if report.dequantized:
        err().print(f"note: {dequantized_line(report.dequantized)}", markup=False, highlight=False)
    from apr.convert.fallbacks import group_fallbacks

    for group in group_fallbacks(report.fallbacks):  # once per reason, not once per tensor
        err().print(f"note: {group.line()}", markup=False, highlight=False)
    return 0


def dequantized_line(info: dict) -> str:
    """What a dequantizing GGUF import did, and what it cost in size.

    >>> dequantized_line({"tensors": 2, "types": {"Q4_1": 2}, "stored_as": "F32", "source_bytes": 100, "stored_bytes": 710})
    'dequantized 2 tensors (Q4_1 x2) to F32: 100 bytes in the GGUF became 710 bytes (7.1x); ggml types APR holds raw (F32, F16, BF16, Q4_K, Q6_K) stay raw'
    """
    types = ", ".join(f"{name} x{count}" for name, count in sorted(info["types"].items()))
    growth = info["stored_bytes"] / info["source_bytes"] if info["source_bytes"] else float("inf")
    return (f"dequantized {info['tensors']} tensors ({types}) to {info['stored_as']}: {info['source_bytes']:,} bytes "
            f"in the GGUF became {info['stored_bytes']:,} bytes ({growth:.1f}x); ggml types APR holds raw "
            "(F32, F16, BF16, Q4_K, Q6_K) stay raw")
