"""`apr diff A B [--atol X] [--json]`: what differs between two checkpoints, each an .apr file, a
safetensors file or folder, or a GGUF file (exit 0 same, 1 different, like `diff`; 3 a missing file,
4 an invalid one)."""

from __future__ import annotations

import argparse

from apr.cli import exit_codes
from apr.cli.output import emit_result, escape, literal, out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help="compare two checkpoints (.apr, safetensors, GGUF): metadata, flags, tensor set, "
                       "per-tensor error",
                       description="Compare two checkpoints key by key and tensor by tensor (one tensor in memory at a "
                       "time). Either side may be an .apr file, a .safetensors file or Hugging Face folder, or a .gguf "
                       "file, read as an import would (Hugging Face names, nothing written): `apr diff model.apr "
                       "model-q8_0.gguf` gives each tensor's quantization error. Exit 0 when they are the same within "
                       "--atol, 1 when they differ.")
    p.add_argument("a", help="the first checkpoint: .apr, .safetensors, a Hugging Face folder or .gguf")
    p.add_argument("b", help="the second checkpoint (any of the same)")
    p.add_argument("--atol", type=float, default=0.0,
                   help="largest |a - b| per element still called equal (default 0: bit-equal values)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run, reads_checkpoints=("a", "b"), json_input=("a", "b"))


def run(args: argparse.Namespace) -> int:
    import math

    from apr.errors import UsageError
    from apr.format.diff import diff_checkpoints

    if not (math.isfinite(args.atol) and args.atol >= 0):
        raise UsageError(f"--atol must be a finite number >= 0, got {args.atol}", field="--atol")
    result = diff_checkpoints(args.a, args.b, atol=args.atol)
    if args.json:
        return emit_result("diff", result.to_dict(), input=[args.a, args.b],
                           exit_code=exit_codes.OK if result.equal else exit_codes.EXIT_GENERIC)
    else:
        _render(result)
    return exit_codes.OK if result.equal else exit_codes.EXIT_GENERIC


def _render(result) -> None:
    o = out()
    o.print(literal(f"apr diff {result.a} {result.b}", style="bold"))
    if result.formats != ("apr", "apr"):
        o.print(literal(f"  formats: {result.formats[0]} -> {result.formats[1]} (metadata: the config keys both "
                        "sides have; tensors by Hugging Face name)"))
    for key, (va, vb) in sorted(result.metadata.items()):
        o.print(literal(f"  metadata {key}: {va!r} -> {vb!r}"))
    if result.flags:
        o.print(literal(f"  flags: {' | '.join(result.flags[0]) or '(none)'} -> {' | '.join(result.flags[1]) or '(none)'}"))
    for name in result.only_a:
        o.print(literal(f"  - tensor {name} (only in A)"))
    for name in result.only_b:
        o.print(literal(f"  + tensor {name} (only in B)"))
    for t in result.changed_tensors:
        if t.max_abs is None:
            o.print(literal(f"  tensor {t.name}: shape {t.shape[0]} -> {t.shape[1]}"))
        else:
            dtype = f" dtype {t.dtype[0]} -> {t.dtype[1]};" if t.dtype[0] != t.dtype[1] else ""
            o.print(literal(f"  tensor {t.name}:{dtype} max|a-b| {t.max_abs:.3g}, rel L2 {t.rel_l2:.3g}, "
                            f"cosine {t.cosine:.6f}"))
    same = len(result.tensors) - len(result.changed_tensors)
    verdict = "same" if result.equal else "different"
    o.print(f"  {verdict}: {len(result.metadata)} metadata key(s), {len(result.changed_tensors)} tensor(s) changed, "
            f"{same} equal within atol {escape(str(result.atol))}, {len(result.only_a) + len(result.only_b)} "
            "only on one side")
