"""Faults for contract arch-registry-v1 (`apr contracts verify --mutants`): each must turn a test red."""

from __future__ import annotations

from typing import Any


def resolve_accepting_any(architecture: Any, settings: Any = None, tensor_names: Any = None) -> Any:
    """The registry accepts every architecture, as llama when it does not know it."""
    from apr.arch.registry import REGISTRY, slug_of
    from apr.arch.resolve import Resolution

    slug = slug_of(architecture) if architecture else None
    return Resolution(slug or "llama", spec=REGISTRY.get(slug or "", REGISTRY["llama"]))


def no_schema_problems(schema: Any, names: Any, *, limit: int = 6) -> list[str]:
    return []


def no_config_problems(spec: Any, settings: Any) -> list[str]:
    return []


def mask_without_window(queries: Any, keys: Any, window: Any) -> Any:
    return keys[None, :] <= queries[:, None]


def mask_window_off_by_one(queries: Any, keys: Any, window: Any) -> Any:
    q, k = queries[:, None], keys[None, :]
    allowed = k <= q
    return allowed & (q - k <= window) if window is not None else allowed


def no_window(family: str, settings: Any) -> None:
    return None


def hf_config_without_window(self: Any) -> dict[str, Any]:
    """config.json as the real method writes it, without ``sliding_window``."""
    return _original_to_hf_config(self)


def _original_to_hf_config(config: Any) -> dict[str, Any]:
    """The unpatched method's result for ``config`` (a copy without the window)."""
    document = {
        "architectures": [config.hf_architecture], "model_type": config.hf_model_type,
        "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers, "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads, "intermediate_size": config.intermediate_size,
        "head_dim": config.head_dim, "max_position_embeddings": config.max_position_embeddings,
        "rope_theta": config.rope_theta, "rms_norm_eps": config.rms_norm_eps,
        "tie_word_embeddings": config.tie_word_embeddings, "initializer_range": config.initializer_range,
        "hidden_act": config.hidden_act, "attention_bias": False,
    }
    return document


def norm_without_plus_one(self: Any, x: Any) -> Any:
    """RMSNorm in llama's form for every family: x / rms(x) * w (gemma's 1 + w dropped)."""
    import torch

    dtype = x.dtype
    x = x.float()
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
    return self.weight * x.to(dtype)


def embed_unscaled(self: Any, input_ids: Any) -> Any:
    return self.embed_tokens(input_ids)


def always_silu(name: str, x: Any) -> Any:
    import torch.nn.functional as F

    return F.silu(x)


def hf_config_as_silu(self: Any) -> dict[str, Any]:
    document = _original_to_hf_config(self)
    document["hidden_act"] = "silu"
    if self.sliding_window is not None:
        document["sliding_window"] = self.sliding_window
    return document


def no_norm_offset(family: str, name: str) -> float:
    return 0.0


def project_k_v_swapped(self: Any, x: Any, cos: Any, sin: Any) -> Any:
    """Phi-3's fused rows read as q | v | k."""
    from apr.train.model import apply_rope

    if not self.fused:
        raise AssertionError("mutant written for the fused path")
    B, T, _ = x.shape
    q_dim, kv_dim = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
    q, v, k = self.qkv_proj(x).split((q_dim, kv_dim, kv_dim), dim=-1)
    q = q.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
    k = k.view(B, T, self.num_kv_heads, self.head_dim).transpose(1, 2)
    v = v.view(B, T, self.num_kv_heads, self.head_dim).transpose(1, 2)
    return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v


def mlp_up_gate_swapped(self: Any, x: Any) -> Any:
    """Phi-3's gate_up rows read as up | gate."""
    from apr.train.model import activation

    up, gate = self.gate_up_proj(x).chunk(2, dim=-1) if self.fused else (self.up_proj(x), self.gate_proj(x))
    return self.down_proj(activation(self.hidden_act, gate) * up)


def no_arch_keys(writer: Any, arch: str, config: Any) -> None:
    return None


def add_attention_without_sandwich(self: Any, x: Any, attended: Any) -> Any:
    """gemma2's post-attention norm dropped: the llama residual."""
    return x + attended


def attend_without_softcap(self: Any, q: Any, k: Any, v: Any, mask: Any, *, causal: bool) -> Any:
    import torch.nn.functional as F

    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None,
                                          scale=self.scale)


def logits_without_softcap(self: Any, h: Any) -> Any:
    return self.lm_head(h)


def every_layer_windowed(self: Any, layer: int) -> Any:
    return self.sliding_window
