"""Tensor-name schemas: which tensors a decoder of an architecture holds, per layer and globally.

Pure functions of names (no shapes, no bytes): `schema_problems` lists every required tensor that
is missing and every tensor the schema does not know, so a Gemma 2 file (pre/post feed-forward
norms) or a Qwen2-MoE file (experts, a router) is refused by name before anything is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_LAYER = re.compile(r"^model\.layers\.(0|[1-9][0-9]*)\.(.+)$")


@dataclass(frozen=True, slots=True)
class TensorSchema:
    """Hugging Face tensor names: global ones, and per-layer suffixes after ``model.layers.N.``."""

    global_required: tuple[str, ...]
    global_optional: tuple[str, ...]
    layer_required: tuple[str, ...]
    layer_optional: tuple[str, ...] = ()

    def knows(self, name: str) -> bool:
        """Whether ``name`` is a tensor of this schema (required or optional)."""
        if name in self.global_required or name in self.global_optional:
            return True
        match = _LAYER.match(name)
        return match is not None and match.group(2) in self.layer_required + self.layer_optional


LLAMA_LAYER: tuple[str, ...] = (
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
    "self_attn.o_proj.weight", "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
    "mlp.down_proj.weight",
)
# Phi-3: q, k and v in one projection (rows q | k | v), gate and up in one (rows gate | up)
FUSED_LAYER: tuple[str, ...] = (
    "input_layernorm.weight", "self_attn.qkv_proj.weight", "self_attn.o_proj.weight",
    "post_attention_layernorm.weight", "mlp.gate_up_proj.weight", "mlp.down_proj.weight",
)
# Gemma 2: a norm after attention (post_attention_layernorm) and two around the MLP
SANDWICH_LAYER: tuple[str, ...] = LLAMA_LAYER + ("pre_feedforward_layernorm.weight", "post_feedforward_layernorm.weight")
QKV_BIAS_LAYER: tuple[str, ...] = ("self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias")
QK_NORM_LAYER: tuple[str, ...] = ("self_attn.q_norm.weight", "self_attn.k_norm.weight")
GLOBAL_REQUIRED: tuple[str, ...] = ("model.embed_tokens.weight", "model.norm.weight")
GLOBAL_OPTIONAL: tuple[str, ...] = ("lm_head.weight",)  # absent when tied (save_pretrained leaves it out)


def schema_problems(schema: TensorSchema, names: Iterable[str], *, limit: int = 6) -> list[str]:
    """Missing and unexpected tensors, in words (at most ``limit`` of each, with the count).

    Example:
        >>> s = TensorSchema(("model.norm.weight",), (), ("mlp.up_proj.weight",))
        >>> schema_problems(s, ["model.norm.weight", "model.layers.0.mlp.up_proj.weight",
        ...                     "model.layers.0.mlp.experts.0.up_proj.weight"])
        ['1 unexpected tensor: model.layers.0.mlp.experts.0.up_proj.weight']
    """
    names = list(names)
    present = set(names)
    unexpected = [n for n in names if not schema.knows(n)]
    layers = sorted({int(m.group(1)) for m in map(_LAYER.match, names) if m})
    missing = [n for n in schema.global_required if n not in present]
    missing += [f"model.layers.{i}.{suffix}" for i in layers for suffix in schema.layer_required
                if f"model.layers.{i}.{suffix}" not in present]
    problems = []
    for label, found in (("unexpected", unexpected), ("missing", missing)):
        if found:
            shown = ", ".join(found[:limit]) + (", ..." if len(found) > limit else "")
            problems.append(f"{len(found)} {label} tensor{'s' if len(found) != 1 else ''}: {shown}")
    return problems


__all__ = ["SANDWICH_LAYER", "FUSED_LAYER", "GLOBAL_OPTIONAL", "GLOBAL_REQUIRED", "LLAMA_LAYER", "QKV_BIAS_LAYER", "QK_NORM_LAYER",
           "TensorSchema", "schema_problems"]
