"""`apr export FILE [--format safetensors|gguf] [--quantize f32|f16|q8_0|q4_k|q6_k] -o OUT`.

The format follows OUT's name when ``--format`` is left out (``.gguf``: gguf; otherwise a folder),
and a ``--format`` that contradicts the name is refused (`export_format`).

safetensors: a Hugging Face model folder that transformers and tokenizers load; gguf: a file
llama.cpp loads (docs/convert.md). The output never is, holds or lies inside FILE; into an existing
folder, ``--force`` replaces only what an earlier export wrote (`apr.format.outputs`). FILE's CRCs
are checked as it is read: a damaged FILE is refused unless ``--allow-damaged`` (which says so).
"""

from __future__ import annotations

import argparse

from apr.cli.output import emit_result, err, json_names, out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export an .apr file as a Hugging Face folder or a GGUF file",
                       description="Export a llama/qwen2/qwen3 .apr file to a Hugging Face model folder "
                       "(--format safetensors) or a llama.cpp GGUF file (--format gguf).")
    p.add_argument("file", help="the .apr file")
    p.add_argument("--format", choices=("safetensors", "gguf"), default=None,
                   help="output format; default from OUT: gguf for a .gguf name, else safetensors (a folder)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (safetensors) or .gguf file")
    p.add_argument("--quantize", metavar="Q", help="gguf only: f32 (default), f16, q8_0, q4_k or q6_k")
    p.add_argument("-f", "--force", action="store_true",
                   help="replace an existing output (in a folder: only the files an earlier export wrote)")
    p.add_argument("--allow-damaged", action="store_true",
                   help="salvage: export a FILE whose CRCs do not match instead of refusing it (the report says so)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run, reads_checkpoints=("file",), stdout_output=("output", stream_name))


def stream_name(args: argparse.Namespace) -> str:
    """``-o -``: the file to stream (apr.cli.stdout_output). Only a GGUF export is one file, and
    ``-`` has no suffix to infer it from, so ``--format gguf`` is required."""
    from apr.errors import UsageError

    if args.format != "gguf":
        raise UsageError("-o - (standard output) streams a single GGUF file; a safetensors export is a folder",
                         field="--output", hint="apr export m.apr --format gguf -o - > m.gguf  (or -o FOLDER)")
    return "model.gguf"


def export_format(given: str | None, output: str) -> str:
    """The format to write: ``given`` (``--format``) checked against OUT, or inferred from its name.

    ``-o m.gguf`` without ``--format`` used to write a safetensors *folder* named ``m.gguf``. Without
    ``--format``, a ``.gguf`` OUT means gguf and anything else a folder. A ``.safetensors`` OUT is
    refused (the export writes a model folder: config and tokenizer beside the weights). Usage
    errors: ``--format safetensors`` with a ``.gguf`` OUT, and ``-`` (the CLI streams ``--format gguf -o -``
    through a temporary file before this is called: `stream_name`).
    """
    from pathlib import PurePath

    from apr.errors import UsageError

    if output == "-":
        raise UsageError("-o - (standard output) streams a single GGUF file only, through the command line",
                         field="--output", hint="apr export m.apr --format gguf -o - > m.gguf  (or -o FOLDER)")
    suffix = PurePath(output).suffix.lower()
    if suffix == ".safetensors":
        raise UsageError(f"-o {output!r}: the safetensors export writes a model folder (model.safetensors, "
                         "config.json, tokenizer files), not a single .safetensors file", field="--output",
                         hint=f"name the folder: -o {PurePath(output).with_suffix('')}")
    if given is None:
        return "gguf" if suffix == ".gguf" else "safetensors"
    if given == "safetensors" and suffix == ".gguf":  # (gguf into a folder: the output policy refuses it)
        raise UsageError(f"--format {given} contradicts -o {output!r}, which names a .gguf file", field="--format",
                         hint="give a .gguf name for --format gguf, a folder name for --format safetensors "
                         "(or leave --format out: OUT's name decides)")
    return given


def run(args: argparse.Namespace) -> int:
    from apr.cli.convert_progress import progress_bar
    from apr.errors import UsageError

    args.format = export_format(args.format, args.output)
    if args.format == "safetensors":
        if args.quantize is not None:
            raise UsageError("--quantize applies to --format gguf only", field="--quantize",
                             hint="the safetensors export keeps F32/F16/BF16 as stored and dequantizes the rest")
        from apr.convert.hf_export import export_safetensors

        with progress_bar("exporting", show=not args.json) as progress:
            report = export_safetensors(args.file, args.output, force=args.force, progress=progress,
                                        allow_damaged=args.allow_damaged)
    else:
        from apr.convert.gguf_export import export_gguf, parse_gguf_quant

        quant = parse_gguf_quant(args.quantize)
        with progress_bar("exporting", show=not args.json, unit_bytes=False) as progress:
            report = export_gguf(args.file, args.output, quantize=quant, force=args.force, progress=progress,
                                 allow_damaged=args.allow_damaged)
    if args.json:
        return emit_result("export", json_names(report.to_dict(), path="output", file_size="bytes"), input=args.file)
    out().print(f"{report.path}: {report.format}, {report.tensor_count} tensors, {report.file_size:,} bytes"
                + (f", {report.quantize}" if report.quantize else ""), markup=False, highlight=False)
    for kind, value in sorted(report.quant_error.items()):
        out().print(f"  {kind}: worst relative RMSE {value:.4%}", markup=False, highlight=False)
    from apr.convert.fallbacks import group_fallbacks

    for group in group_fallbacks(report.fallbacks):  # once per reason, not once per tensor
        err().print(f"note: {group.line()}", markup=False, highlight=False)
    if report.damaged is not None:
        err().print(f"warning: {report.damaged.path}: damaged input exported (--allow-damaged): "
                    f"{report.damaged.carried_over}", markup=False, highlight=False)
    return 0
