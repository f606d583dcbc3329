"""Hugging Face ↔ GGUF tensor names, and llama's q/k row permutation.

The table is llama.cpp's (``gguf-py`` ``tensor_mapping.py``, reference/formats.md "HF → GGUF
tensor names") for the families we convert: llama, qwen2 and qwen3 share one naming scheme.
Both directions are exact inverses on the names they accept (tested: a bijection), and a name
outside the table is an error rather than passed through, so nothing is silently misnamed.

llama.cpp's RoPE for llama pairs adjacent rows, Hugging Face's pairs row i with i + D/2, so the
converter permutes the rows of q_proj and k_proj (`permute_qk`); qwen2/qwen3 are stored as is.
"""

from __future__ import annotations

import re

import numpy as np

from apr.errors import ConvertError

SUPPORTED_FAMILIES: tuple[str, ...] = ("llama", "qwen2", "qwen3")

# model.layers.N.<suffix> <-> blk.N.<suffix>
_LAYER_SUFFIXES: dict[str, str] = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.o_proj.bias": "attn_output.bias",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_GLOBAL: dict[str, str] = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
# Phi-3's fused projections, as llama.cpp's phi3 architecture names them (export only: ffn_up
# holds gate | up there, so the reverse map would collide with llama's ffn_up).
_FUSED_SUFFIXES: dict[str, str] = {
    "self_attn.qkv_proj.weight": "attn_qkv.weight",
    "mlp.gate_up_proj.weight": "ffn_up.weight",
}
# Gemma 2's sandwich norms, as llama.cpp's gemma2 names them (post_attention_layernorm there
# normalises the attention output, so it is not llama's ffn_norm)
_SANDWICH_SUFFIXES: dict[str, str] = {
    "post_attention_layernorm.weight": "post_attention_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
}
_FAMILY_SUFFIXES: dict[str, dict[str, str]] = {"phi3": _FUSED_SUFFIXES, "gemma2": _SANDWICH_SUFFIXES}
_LAYER_SUFFIXES_BACK = {v: k for k, v in _LAYER_SUFFIXES.items()}
_GLOBAL_BACK = {v: k for k, v in _GLOBAL.items()}
# Matched with fullmatch: `$` would also match before a trailing newline, so "…q_proj.weight\n"
# would map to the clean name of another tensor and the maps would stop being a bijection.
_HF_LAYER = re.compile(r"model\.layers\.(0|[1-9][0-9]*)\.(.+)")
_GGUF_LAYER = re.compile(r"blk\.(0|[1-9][0-9]*)\.(.+)")

GGUF_MAX_NAME_BYTES = 63  # ggml's C reader rejects names of 64 bytes or more


def hf_to_gguf(name: str) -> str:
    """llama.cpp's name for Hugging Face tensor ``name``.

    Raises:
        ConvertError: the name is not one of a llama/qwen2/qwen3 checkpoint's tensors.

    Example:
        >>> hf_to_gguf("model.layers.3.self_attn.q_proj.weight")
        'blk.3.attn_q.weight'
    """
    if name in _GLOBAL:
        return _GLOBAL[name]
    match = _HF_LAYER.fullmatch(name)
    if match and match.group(2) in _LAYER_SUFFIXES:
        return f"blk.{match.group(1)}.{_LAYER_SUFFIXES[match.group(2)]}"
    raise ConvertError(
        f"tensor {name!r} has no llama.cpp name (not a llama/qwen2/qwen3 tensor)",
        field=name,
        hint="only llama, qwen2 and qwen3 checkpoints can be exported to GGUF",
    )


def hf_to_gguf_for(family: str, name: str) -> str:
    """`hf_to_gguf`, plus the tensors one llama.cpp architecture names its own way: phi3's fused
    projections, gemma2's sandwich norms.

    Example:
        >>> hf_to_gguf_for("phi3", "model.layers.0.mlp.gate_up_proj.weight")
        'blk.0.ffn_up.weight'
        >>> hf_to_gguf_for("gemma2", "model.layers.0.post_attention_layernorm.weight")
        'blk.0.post_attention_norm.weight'
    """
    match = _HF_LAYER.fullmatch(name)
    own = _FAMILY_SUFFIXES.get(family, {})
    if match and match.group(2) in own:
        return f"blk.{match.group(1)}.{own[match.group(2)]}"
    return hf_to_gguf(name)


def gguf_to_hf(name: str) -> str:
    """Hugging Face's name for llama.cpp tensor ``name`` (the inverse of `hf_to_gguf`).

    Raises:
        ConvertError: the name is not one of a llama/qwen2/qwen3 GGUF's tensors.

    Example:
        >>> gguf_to_hf("blk.3.ffn_down.weight")
        'model.layers.3.mlp.down_proj.weight'
    """
    if name in _GLOBAL_BACK:
        return _GLOBAL_BACK[name]
    match = _GGUF_LAYER.fullmatch(name)
    if match and match.group(2) in _LAYER_SUFFIXES_BACK:
        return f"model.layers.{match.group(1)}.{_LAYER_SUFFIXES_BACK[match.group(2)]}"
    raise ConvertError(
        f"GGUF tensor {name!r} has no Hugging Face name in a llama/qwen2/qwen3 model",
        field=name,
        hint="only llama, qwen2 and qwen3 GGUF files can be imported",
    )


def is_qk_projection(hf_name: str) -> bool:
    """Whether ``hf_name`` is a q_proj or k_proj weight/bias (the rows llama permutes)."""
    return bool(re.search(r"\.self_attn\.[qk]_proj\.(weight|bias)\Z", hf_name))


def _heads_for(hf_name: str, num_heads: int, num_kv_heads: int) -> int:
    return num_kv_heads if ".k_proj." in hf_name else num_heads


def permute_qk(rows: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute``: HF rotate-half row order -> GGUF interleaved order.

    ``rows`` may be a weight (R, C), a bias (R,), or the byte rows of a K-quant tensor (R, B):
    only axis 0 moves. Returns a new contiguous array.
    """
    r = rows.shape[0]
    if r % (2 * n_heads):
        raise ConvertError(f"{r} rows cannot be split into {n_heads} heads of pairs", hint="check num_heads/num_kv_heads")
    rest = rows.shape[1:]
    return np.ascontiguousarray(rows.reshape(n_heads, 2, r // n_heads // 2, *rest).swapaxes(1, 2).reshape(rows.shape))


def unpermute_qk(rows: np.ndarray, n_heads: int) -> np.ndarray:
    """The inverse of `permute_qk` (GGUF -> Hugging Face)."""
    r = rows.shape[0]
    if r % (2 * n_heads):
        raise ConvertError(f"{r} rows cannot be split into {n_heads} heads of pairs", hint="check num_heads/num_kv_heads")
    rest = rows.shape[1:]
    return np.ascontiguousarray(rows.reshape(n_heads, r // n_heads // 2, 2, *rest).swapaxes(1, 2).reshape(rows.shape))


def qk_heads(hf_name: str, num_heads: int, num_kv_heads: int) -> int:
    """The head count llama.cpp permutes ``hf_name`` with (kv heads for k_proj)."""
    return _heads_for(hf_name, num_heads, num_kv_heads)


__all__ = [
    "GGUF_MAX_NAME_BYTES",
    "SUPPORTED_FAMILIES",
    "gguf_to_hf",
    "hf_to_gguf",
    "hf_to_gguf_for",
    "is_qk_projection",
    "permute_qk",
    "qk_heads",
    "unpermute_qk",
]
