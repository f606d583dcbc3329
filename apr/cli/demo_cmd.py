"""`apr demo [-o DIR] [--json]`: the README's main job on an embedded default.

Builds a small qwen2-shaped checkpoint from a fixed seed (no download, no torch), inspects it
with the quality score and validates it, printing where its files went. Later stages of the
pipeline (stamp, train, qa, readiness) add their steps here.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from apr.cli import exit_codes
from apr.cli.output import emit_json, err, out

# A tiny Qwen2 shape: every tensor name and the metadata a real qwen2 checkpoint carries.
DEMO_CONFIG: dict[str, Any] = {
    "hidden_size": 64,
    "num_layers": 2,
    "num_heads": 4,
    "num_kv_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 256,
    "max_position_embeddings": 512,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
}


def demo_tensors(seed: int = 0) -> dict[str, Any]:
    """Random but deterministic qwen2-named tensors for `DEMO_CONFIG` (float32)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    c = DEMO_CONFIG
    h, kv = c["hidden_size"], c["hidden_size"] // c["num_heads"] * c["num_kv_heads"]

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    tensors = {"model.embed_tokens.weight": w(c["vocab_size"], h), "model.norm.weight": np.ones(h, np.float32)}
    for i in range(c["num_layers"]):
        p = f"model.layers.{i}."
        tensors.update(
            {
                p + "input_layernorm.weight": np.ones(h, np.float32),
                p + "post_attention_layernorm.weight": np.ones(h, np.float32),
                p + "self_attn.q_proj.weight": w(h, h),
                p + "self_attn.q_proj.bias": w(h),
                p + "self_attn.k_proj.weight": w(kv, h),
                p + "self_attn.k_proj.bias": w(kv),
                p + "self_attn.v_proj.weight": w(kv, h),
                p + "self_attn.v_proj.bias": w(kv),
                p + "self_attn.o_proj.weight": w(h, h),
                p + "mlp.gate_proj.weight": w(c["intermediate_size"], h),
                p + "mlp.up_proj.weight": w(c["intermediate_size"], h),
                p + "mlp.down_proj.weight": w(h, c["intermediate_size"]),
            }
        )
    return tensors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="build, inspect and validate a small demo checkpoint (no download)")
    p.add_argument("-o", "--output", default="demo-out", help="folder for the demo's files (default: demo-out)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from apr.cli.inspect_cmd import _render, inspect_document
    from apr.format import open_file, save_file
    from apr.format.validate import validate_file

    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, "demo-qwen2.apr")
    tensors = demo_tensors()
    metadata = {
        "model_type": "qwen2",
        "name": "demo-qwen2",
        "architecture": "qwen2",
        "hf_architecture": "Qwen2ForCausalLM",
        "hf_model_type": "qwen2",
        "param_count": int(sum(t.size for t in tensors.values())),
        **DEMO_CONFIG,
    }
    console = err()
    console.print(f"[bold]1/3[/] writing a demo qwen2 checkpoint to {path}")
    save_file(tensors, path, metadata)
    console.print("[bold]2/3[/] inspecting it (apr inspect --quality --explain)")
    with open_file(path) as reader:
        doc = inspect_document(reader, quality=True, explain=True)
    console.print("[bold]3/3[/] validating it (apr validate)")
    report = validate_file(path)
    if args.json:
        emit_json({"checkpoint": path, "inspect": doc, "validate": report.to_dict()})
    else:
        _render(doc)
        verdict = report.to_dict()
        out().print(
            f"\nvalidate: {verdict['verdict']} ({verdict['checks_ran']} checks ran, {verdict['failed']} failed)"
        )
        out().print(f"files: {os.path.abspath(args.output)}")
    return exit_codes.OK if report.passed else exit_codes.EXIT_VALIDATION
